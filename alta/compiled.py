"""The compiled back end: run a compiled program's Universal Transformer on input strings.

`run_compiled` is the fast path (the whole run in one jitted `while_loop`);
`trace_compiled` steps layer by layer and keeps every residual, for verification.
Both frame inputs and read outputs back exactly as the interpreter does (alta.framing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from alta.compiler import CompiledProgram
from alta.compiler.layout import decode_state
from alta.errors import AltaError
from alta.framing import Batch, decode_outputs, encode_batch


@dataclass(frozen=True)
class CompiledRun:
    batch: Batch
    residual: np.ndarray  # (batch, positions, D) final
    layers: np.ndarray
    halted: np.ndarray
    outputs: tuple[str, ...]

    @property
    def not_halted(self) -> list[int]:
        return [int(b) for b in np.flatnonzero(~self.halted)]


@dataclass(frozen=True)
class CompiledLayer:
    layer: int  # 0: the initial state (embeddings)
    active: np.ndarray  # (batch,) sequences this layer ran on
    after_attention: np.ndarray | None  # (batch, positions, D); None for layer 0
    after_mlp: np.ndarray
    running: np.ndarray  # (batch,) still running after this layer's halting check


def load_model(compiled: CompiledProgram, structured: bool = True):
    """The compiled program's Universal Transformer. `structured` uses the paths that exploit
    the compiled weights' structure (same numbers as the dense path to float32 rounding):
    attention reads each head's blocks as slices, and sparse MLP layers gather the few
    inputs each unit reads (the rule layer) or scatter the few outputs each rule writes."""
    from alta.model import (
        HeadBlocks,
        UniversalTransformer,
        halting_units_of,
        head_blocks_of,
        sparse_mlp_of,
    )

    blocks = None
    if structured:
        layout, program = compiled.layout, compiled.program
        blocks = tuple(HeadBlocks(
            query=layout.block(h.query).start if h.key else None,
            key=layout.block(h.key).start if h.key else None,
            key_size=layout.block(h.key).size if h.key else 0,
            value=layout.block(h.value).start, value_size=layout.block(h.value).size,
            output=layout.block(h.name).start) for h in program.heads)
        if not head_blocks_of(compiled.weights, blocks):
            blocks = None
    sparse = halting = None
    if structured:
        sparse = sparse_mlp_of(compiled.weights, len(compiled.config.mlp_widths) + 1)
        if compiled.config.halting_widths:
            halting = halting_units_of(compiled.weights, len(compiled.config.halting_widths))
    return UniversalTransformer.from_weights(compiled.config, compiled.weights, blocks, sparse,
                                             halting)


def _check_length(compiled: CompiledProgram, batch: Batch) -> None:
    longest = int(batch.lengths.max(initial=0))
    if longest > compiled.report.guaranteed_length:
        raise AltaError.at(f"an input needs {longest} positions, but the compiled model of "
                           f"{compiled.program.name} is exact only up to "
                           f"{compiled.report.guaranteed_length} (recompile with a larger "
                           "max_length)")


def run_compiled(compiled: CompiledProgram, texts, max_layers: int | None = None,
                 model=None) -> CompiledRun:
    import jax.numpy as jnp

    from alta.model import run_model

    program = compiled.program
    batch = encode_batch(program, texts)
    _check_length(compiled, batch)
    model = model or load_model(compiled)
    limit = program.max_layers if max_layers is None else max_layers
    residual, layers, halted = run_model(model, jnp.asarray(batch.tokens),
                                         jnp.asarray(batch.lengths), limit)
    residual = np.asarray(residual)
    halted = np.asarray(halted) if program.halt is not None else np.ones(len(texts), bool)
    values = decode_state(program, compiled.layout, residual)
    outputs = tuple(decode_outputs(program, values, batch.lengths))
    return CompiledRun(batch, residual, np.asarray(layers), halted, outputs)


def trace_compiled(compiled: CompiledProgram, batch: Batch, max_layers: int | None = None,
                   model=None) -> Iterator[CompiledLayer]:
    """The initial state, then every layer's residuals, one layer at a time (nothing is kept,
    so long runs of wide models fit in memory)."""
    import jax.numpy as jnp

    from alta.model import check_halted, embed_and_check, run_layer

    _check_length(compiled, batch)
    model = model or load_model(compiled)
    limit = compiled.program.max_layers if max_layers is None else max_layers
    valid = jnp.asarray(batch.valid)
    x, halted = embed_and_check(model, jnp.asarray(batch.tokens), valid)
    has_halting = compiled.program.halt is not None
    running = ~np.asarray(halted) if has_halting else np.ones(len(batch.texts), bool)
    yield CompiledLayer(0, np.zeros_like(running), None, np.asarray(x), running.copy())
    layer = 0
    while running.any() and layer < limit:
        layer += 1
        active = running.copy()
        attended, new = run_layer(model, x, valid)
        update = active[:, None, None] & batch.valid[:, :, None]
        x = jnp.where(jnp.asarray(update), new, x)
        if has_halting:
            running = running & ~np.asarray(check_halted(model, x, valid))
        yield CompiledLayer(layer, active, np.asarray(attended), np.asarray(x), running.copy())
