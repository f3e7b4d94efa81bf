"""Interpreter vs compiled model, at every layer, position and variable.

The compiled model is stepped layer by layer; after attention and after the MLP its residual
stream is decoded back into variables (alta.compiler.layout.decode_state) and compared with
the interpreter's trace: variables at every non-padding position, head outputs wherever the
interpreter says they are defined, and the layer at which each sequence halts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta import ir
from alta.compiled import trace_compiled
from alta.compiler import CompiledProgram
from alta.compiler.layout import decode_state
from alta.evaluation import bits_to_set, nearest_values
from alta.framing import encode_batch
from alta.interpreter import run_batch


@dataclass(frozen=True)
class Divergence:
    input: str
    layer: int
    stage: str  # "initial state" | "after attention" | "after the MLP" | "halting"
    position: int | None
    name: str
    interpreter: str
    compiled: str
    line: int

    def format(self, path: str) -> str:
        where = f"position {self.position}, " if self.position is not None else ""
        return (f"{path}:{self.line}: interpreter and compiled model disagree on input "
                f"{self.input!r}: layer {self.layer} ({self.stage}), {where}'{self.name}': "
                f"interpreter {self.interpreter}, compiled {self.compiled}")


@dataclass(frozen=True)
class VerifyReport:
    inputs: int
    layers: int  # the most layers any input ran
    comparisons: int  # values compared
    divergence: Divergence | None

    @property
    def ok(self) -> bool:
        return self.divergence is None


def _show(program: ir.Program, name: str, raw) -> str:
    type_ = program.type_of(name)
    if isinstance(type_, ir.SetValued):
        return type_.format(bits_to_set(raw, type_.size))
    return type_.format(raw)


class _Comparer:
    def __init__(self, program: ir.Program, texts) -> None:
        self.program, self.texts = program, texts
        self.count = 0

    def compare(self, names, expected: dict, got: dict, where: np.ndarray, layer: int,
                stage: str) -> Divergence | None:
        for name in names:
            want, have = expected[name], got[name]
            type_ = self.program.type_of(name)
            if isinstance(type_, ir.Numerical):  # compare what the MLP would read
                declared = np.asarray(type_.values)
                want, have = nearest_values(want, declared), nearest_values(have, declared)
                differs = ~np.isclose(want, have, rtol=1e-6, atol=1e-9)
            else:
                differs = want != have
            self.count += int(where.sum())
            bad = np.argwhere(differs & where)
            if len(bad):
                b, i = (int(v) for v in bad[0])
                line = (self.program.variable(name).span.line if name in
                        self.program.variable_index else self.program.head(name).span.line)
                return Divergence(self.texts[b], layer, stage, i, name,
                                  _show(self.program, name, want[b, i]),
                                  _show(self.program, name, have[b, i]), line)
        return None


def verify(compiled: CompiledProgram, texts, max_layers: int | None = None,
           model=None) -> VerifyReport:
    program = compiled.program
    texts = tuple(texts)
    batch = encode_batch(program, texts)
    interpreted = run_batch(program, batch, max_layers, trace=True)
    initial, layers, running = trace_compiled(compiled, batch, max_layers, model)
    valid = batch.valid
    variables = [v.name for v in program.variables]
    comparer = _Comparer(program, texts)

    def report(divergence):
        return VerifyReport(len(texts), len(interpreted.trace), comparer.count, divergence)

    found = comparer.compare(variables, interpreted.initial,
                             decode_state(program, compiled.layout, initial), valid, 0,
                             "initial state")
    if found:
        return report(found)
    for want, got in zip(interpreted.trace, layers):
        if not np.array_equal(want.active, got.active):
            return report(_halting(program, texts, want.active, got.active, want.layer - 1))
        attended = decode_state(program, compiled.layout, got.after_attention)
        for head in program.heads:
            defined = valid & ~want.undefined[head.name] & want.active[:, None]
            found = comparer.compare([head.name], want.after_attention, attended, defined,
                                     want.layer, "after attention")
            if found:
                return report(found)
        found = comparer.compare(variables, want.after_mlp,
                                 decode_state(program, compiled.layout, got.after_mlp), valid,
                                 want.layer, "after the MLP")
        if found:
            return report(found)
    final_running = ~interpreted.halted if program.halt is not None else running
    if len(layers) != len(interpreted.trace) or not np.array_equal(running, final_running):
        depth = min(len(layers), len(interpreted.trace))
        ran_c = layers[-1].active if len(layers) > depth - 1 and layers else running
        return report(_halting(program, texts, ~interpreted.halted, running, depth))
    return report(None)


def _halting(program, texts, interpreter_running, compiled_running, layer) -> Divergence:
    b = int(np.flatnonzero(interpreter_running != compiled_running)[0])
    line = program.halt.span.line if program.halt is not None else 1

    def state(running):
        return "still running" if running[b] else "halted"

    return Divergence(texts[b], layer, "halting", None, "halt", state(interpreter_running),
                      state(compiled_running), line)
