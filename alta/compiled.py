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
from alta.errors import AltaError, AltaRuntimeError, undefined_read
from alta.framing import Batch, decode_outputs, encode_batch


@dataclass(frozen=True)
class Fault:
    """Where a sequence's MLP read an undefined head: the first site in evaluation order
    flagged in that layer, at its first position."""

    sequence: int
    layer: int
    site: int  # index into CompiledProgram.faults
    position: int


@dataclass(frozen=True)
class CompiledRun:
    batch: Batch
    residual: np.ndarray  # (batch, positions, D) final
    layers: np.ndarray
    halted: np.ndarray
    outputs: tuple[str, ...]
    faults: tuple[Fault, ...] = ()  # per faulted sequence, in batch order

    @property
    def not_halted(self) -> list[int]:
        faulted = {f.sequence for f in self.faults}
        return [int(b) for b in np.flatnonzero(~self.halted) if int(b) not in faulted]

    @property
    def first_fault(self) -> Fault | None:
        """The fault the interpreter reports for this batch: the earliest layer, then the
        first site in evaluation order, then the first input and position."""
        return min(self.faults, key=lambda f: (f.layer, f.site, f.sequence, f.position),
                   default=None)


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
        shared_scores,
        sparse_mlp_of,
    )

    blocks = None
    if structured:
        layout = compiled.layout
        blocks = tuple(HeadBlocks(
            query=layout.block(h.query).start if h.key else None,
            key=layout.block(h.key).start if h.key else None,
            key_size=layout.block(h.key).size if h.key else 0,
            value=layout.block(h.value).start, value_size=layout.block(h.value).size,
            output=layout.block(h.name).start) for h in attention_heads(compiled))
        blocks = shared_scores(compiled.weights, blocks, compiled.config.head_offsets)
        blocks = tuple(b._replace(counts=_counts(compiled, h, b)) for h, b in enumerate(blocks))
        if not head_blocks_of(compiled.weights, blocks):
            blocks = None
    sparse = halting = None
    if structured:
        sparse = sparse_mlp_of(compiled.weights, len(compiled.config.mlp_widths) + 1)
        if compiled.config.halting_widths:
            halting = halting_units_of(compiled.weights, len(compiled.config.halting_widths))
    return UniversalTransformer.from_weights(compiled.config, compiled.weights, blocks, sparse,
                                             halting)


def _counts(compiled: CompiledProgram, h: int, blocks) -> bool:
    """Whether head h is a selection head whose output is just the attention share of the
    keys (its value, the constant dimension, copied with weight 1)."""
    from alta.compiler.faults import ONE

    if ONE not in {b.name for b in compiled.layout.blocks}:
        return False
    one = compiled.layout.block(ONE).start
    w = compiled.weights
    return (blocks.value == one and blocks.value_size == 1
            and w["attention.value"][h, one, 0] == 1.0
            and w["attention.output"][h, 0, blocks.output] == 1.0)


def attention_heads(compiled: CompiledProgram) -> tuple:
    """The model's heads: the program's, then (compiled with a fault detector) the selection
    heads that count what each of them selects."""
    if not compiled.config.attention_sink:
        return compiled.program.heads
    from alta.compiler.faults import plan_faults

    return plan_faults(compiled.program).program.heads


def _check_length(compiled: CompiledProgram, batch: Batch) -> None:
    longest = int(batch.lengths.max(initial=0))
    if longest > compiled.report.guaranteed_length:
        raise AltaError.at(f"an input needs {longest} positions, but the compiled model of "
                           f"{compiled.program.name} is exact only up to "
                           f"{compiled.report.guaranteed_length} (recompile with a larger "
                           "max_length)")


def run_compiled(compiled: CompiledProgram, texts, max_layers: int | None = None,
                 model=None, undefined: str = "error") -> CompiledRun:
    """Run the compiled model on input strings. Where the network flags a read of an
    undefined head, `undefined` says what happens: "error" stops that sequence and raises
    the interpreter's error for the batch; "stop" stops it and lists the faults on the
    result; "continue" runs on (the raw outputs; `faults` then says which sequences were
    flagged and where, but not in which layer)."""
    import jax.numpy as jnp

    from alta.model import run_model

    program = compiled.program
    batch = encode_batch(program, texts)
    _check_length(compiled, batch)
    model = model or load_model(compiled)
    limit = program.max_layers if max_layers is None else max_layers
    residual, layers, stopped = run_model(model, jnp.asarray(batch.tokens),
                                          jnp.asarray(batch.lengths), limit,
                                          undefined != "continue")
    residual, layers = np.asarray(residual), np.asarray(layers)
    faults = read_faults(compiled, residual, batch.valid, layers)
    result_halted = np.asarray(stopped) if program.halt is not None else np.ones(len(texts), bool)
    values = compiled.layout.decode(residual, program)
    outputs = tuple(decode_outputs(program, values, batch.lengths))
    result = CompiledRun(batch, residual, layers, result_halted, outputs, faults)
    if faults and undefined == "error":
        raise fault_error(compiled, batch, result.first_fault)
    return result


def read_faults(compiled: CompiledProgram, residual: np.ndarray, valid: np.ndarray,
                layers: np.ndarray) -> tuple[Fault, ...]:
    """The fault flags of final (or per-layer) residuals: per flagged sequence, its first
    site and that site's first position (the flags are set in the layer it stopped at)."""
    dims = list(compiled.config.fault_dims)
    if not dims:
        return ()
    flags = (residual[..., dims] > 0.5) & valid[..., None]  # (batch, positions, sites)
    out = []
    for b in np.flatnonzero(flags.any(axis=(1, 2))):
        site = int(np.flatnonzero(flags[b].any(axis=0))[0])
        position = int(np.flatnonzero(flags[b, :, site])[0])
        out.append(Fault(int(b), int(layers[b]), site, position))
    return tuple(out)


def fault_error(compiled: CompiledProgram, batch: Batch, fault: Fault) -> AltaRuntimeError:
    """The interpreter's error for an undefined read, from the checkpoint's site table."""
    site = compiled.faults[fault.site]
    return AltaRuntimeError.at_run(undefined_read(site.head), site.span,
                                   compiled.program.source, fault.layer, fault.position,
                                   batch.texts[fault.sequence])


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
    x, stopped = embed_and_check(model, jnp.asarray(batch.tokens), valid)
    running = ~np.asarray(stopped)
    yield CompiledLayer(0, np.zeros_like(running), None, np.asarray(x), running.copy())
    layer = 0
    while running.any() and layer < limit:
        layer += 1
        active = running.copy()
        attended, new = run_layer(model, x, valid)
        update = active[:, None, None] & batch.valid[:, :, None]
        x = jnp.where(jnp.asarray(update), new, x)
        running = running & ~np.asarray(check_halted(model, x, valid))
        yield CompiledLayer(layer, active, np.asarray(attended), np.asarray(x), running.copy())
