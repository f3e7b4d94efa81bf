"""Interpreter vs compiled model, at every layer, position and variable.

The compiled model is stepped layer by layer; after attention and after the MLP its residual
stream is decoded back into variables (`ResidualLayout.decode`) and compared with
the interpreter's trace: variables at every non-padding position, head outputs wherever the
interpreter says they are defined, and the layer at which each sequence halts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from alta import ir
from alta.batching import DEFAULT as DEFAULT_BATCHES
from alta.batching import plan_batches, power_of_two_at_least
from alta.compiled import DENSE_POSITIONS, exact_length, trace_compiled
from alta.compiler import CompiledProgram
from alta.compiler.buckets import bucket_thresholds
from alta.errors import AltaRuntimeError
from alta.framing import encode, encode_batch
from alta.interpreter import run_batch
from alta.semantics import bits_to_set, snap


@dataclass(frozen=True)
class Divergence:
    input: str
    layer: int
    stage: str  # "initial state" | "after attention" | "after the MLP" | "halting" | "fault"
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
    def __init__(self, program: ir.Program) -> None:
        self.program, self.texts = program, ()
        self.count = 0
        self.buckets = {}

    def compare(self, names, expected: dict, got: dict, where: np.ndarray, layer: int,
                stage: str) -> Divergence | None:
        for name in names:
            want, have = expected[name], got[name]
            type_ = self.program.type_of(name)
            if isinstance(type_, ir.Numerical):  # compare what each back end's MLP reads
                want = snap(want, type_.values)  # the interpreter: the exact rule
                # The compiled MLP: its steps, which sit between the possible means.
                if name not in self.buckets:
                    self.buckets[name] = bucket_thresholds(self.program, name)
                have = self.buckets[name].read(have)
                differs = want != have
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


def _framework(name: str):
    """(build the model, trace a batch, run input strings) of the compiled model in the
    Flax ("flax") or the exported PyTorch ("torch", alta.export) implementation."""
    if name == "torch":
        from alta.export import run_torch, torch_model, trace_torch

        return torch_model, trace_torch, run_torch
    from alta.compiled import ModelRunner, run_compiled

    # Flax: each batch shape on the path that suits it (alta.compiled.structured_for).
    return (lambda compiled: ModelRunner(compiled, keep=False)), trace_compiled, run_compiled


def verify(compiled: CompiledProgram, texts, max_layers: int | None = None, model=None,
           chunk: int = 64, progress=None, framework: str = "flax") -> VerifyReport:
    """Compare the interpreter with the compiled model on `texts`, `chunk` inputs at a
    time; stop at the first divergence. `progress(inputs done, inputs)` after each batch.
    `framework`: the compiled model's Flax implementation ("flax", `model` a Flax model) or
    its PyTorch export ("torch", `model` an alta.pytorch module)."""
    build, trace, run_texts = _framework(framework)
    texts = tuple(texts)
    model = model if model is not None else build(compiled)
    comparer = _Comparer(compiled.program)
    depth = 0
    # Similar lengths together (a batch runs until its longest input halts), at a few
    # bucket shapes (alta.batching: a few compiled steps however many inputs); inputs that
    # fit one batch of the dense path run as one (a layer of it costs about the same
    # whatever its size, and each further shape is a further two compilations).
    settings = replace(DEFAULT_BATCHES, tokens=max(DEFAULT_BATCHES.tokens, chunk),
                       most_rows=power_of_two_at_least(chunk), together=DENSE_POSITIONS)
    lengths = [len(encode(compiled.program, t)) for t in texts]
    done = 0
    for plan in plan_batches(lengths, exact_length(compiled), settings):
        part = tuple(texts[i] for i in plan.indices)
        try:
            found, layers = _verify_batch(compiled, part, max_layers, model, comparer, trace)
        except AltaRuntimeError:  # some input reads an undefined head: one at a time
            found, layers = _verify_faulty(compiled, part, max_layers, model, comparer, trace,
                                           run_texts)
        depth = max(depth, layers)
        done += len(part)
        if progress is not None:
            progress(done, len(texts))
        if found:
            return VerifyReport(len(texts), depth, comparer.count, found)
    return VerifyReport(len(texts), depth, comparer.count, None)


def _verify_faulty(compiled: CompiledProgram, texts: tuple[str, ...], max_layers, model,
                   comparer, trace, run_texts) -> tuple[Divergence | None, int]:
    """Inputs of a batch the interpreter stops on: each alone, either compared as usual, or
    the compiled model must stop with the interpreter's error for it."""
    from alta.compiled import fault_error

    depth = 0
    for text in texts:
        try:
            found, layers = _verify_batch(compiled, (text,), max_layers, model, comparer, trace)
        except AltaRuntimeError as err:
            run = run_texts(compiled, [text], max_layers=max_layers, model=model,
                            undefined="stop")
            got = fault_error(compiled, run.batch, run.faults[0]).first if run.faults else None
            comparer.count += 1
            if got is None or (got.message, got.span) != (err.first.message, err.first.span):
                line = err.first.span.line if err.first.span else 1
                return Divergence(text, 0, "fault", None, "error", err.first.message,
                                  got.message if got else "no error", line), depth
            continue
        depth = max(depth, layers)
        if found:
            return found, depth
    return None, depth


def _verify_batch(compiled: CompiledProgram, texts: tuple[str, ...], max_layers, model,
                  comparer, trace) -> tuple[Divergence | None, int]:
    program = compiled.program
    batch = encode_batch(program, texts)
    interpreted = run_batch(program, batch, max_layers, trace=True)
    valid = batch.valid
    variables = [v.name for v in program.variables]
    expected = iter(interpreted.trace)
    comparer.texts = texts
    last = None
    for got in trace(compiled, batch, max_layers, model):
        last = got
        if got.layer == 0:
            found = comparer.compare(variables, interpreted.initial,
                                     compiled.layout.decode(got.after_mlp, program),
                                     valid, 0, "initial state")
            if found:
                return found, 0
            continue
        want = next(expected, None)
        if want is None or not np.array_equal(want.active, got.active):
            interp_active = want.active if want is not None else np.zeros_like(got.active)
            return _halting(program, texts, interp_active, got.active, got.layer - 1), got.layer
        attended = compiled.layout.decode(got.after_attention, program)
        for head in program.heads:
            defined = valid & ~want.undefined[head.name] & want.active[:, None]
            found = comparer.compare([head.name], want.after_attention, attended, defined,
                                     want.layer, "after attention")
            if found:
                return found, got.layer
        found = comparer.compare(variables, want.after_mlp,
                                 compiled.layout.decode(got.after_mlp, program), valid,
                                 want.layer, "after the MLP")
        if found:
            return found, got.layer
    depth = last.layer if last is not None else 0
    leftover = next(expected, None)
    if leftover is not None:  # the interpreter ran a layer the compiled model did not
        return _halting(program, texts, leftover.active, np.zeros_like(leftover.active),
                        depth), depth
    if program.halt is not None and not np.array_equal(last.running, ~interpreted.halted):
        return _halting(program, texts, ~interpreted.halted, last.running, depth), depth
    return None, depth


def _halting(program, texts, interpreter_running, compiled_running, layer) -> Divergence:
    b = int(np.flatnonzero(interpreter_running != compiled_running)[0])
    line = program.halt.span.line if program.halt is not None else 1

    def state(running):
        return "ran this layer" if running[b] else "had halted"

    return Divergence(texts[b], layer, "halting", None, "halt", state(interpreter_running),
                      state(compiled_running), line)
