"""The compiled back end: run a compiled program's Universal Transformer on input strings.

`run_compiled` is the fast path (the whole run in one jitted `while_loop`);
`trace_compiled` steps layer by layer and yields every residual, for verification. Both
advance with the model's one masked layer (`UniversalTransformer.step`), frame inputs and
read outputs back exactly as the interpreter does (alta.framing), and turn the fault
detector's flags into the interpreter's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from alta.compiler import CompiledProgram
from alta.compiler.structure import model_heads
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
    """The compiled program's Universal Transformer. `structured` runs the paths of its
    execution plan (compiler/structure.py: the same numbers as the dense path, to float32
    rounding): attention reads each head's blocks as slices, sparse MLP layers run as a few
    dense blocks, and the halting readout computes only the units that reach its output."""
    from alta.model import UniversalTransformer

    return UniversalTransformer(compiled.config, compiled.parameters,
                                compiled.execution if structured else None)


def attention_heads(compiled: CompiledProgram) -> tuple:
    """The model's heads: the program's, then the fault detector's selection heads."""
    return model_heads(compiled.program, compiled.parameters)


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

    from alta.model import check_halted, embed_and_check, run_step

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
        attended, x = run_step(model, x, valid, jnp.asarray(active))
        running = running & ~np.asarray(check_halted(model, x, valid))
        yield CompiledLayer(layer, active, np.asarray(attended), np.asarray(x), running.copy())
