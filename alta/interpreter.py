"""The symbolic interpreter: runs a Program on a batch of inputs, to DESIGN.md's semantics.

One layer, at every position of every running sequence at once: every head reads the state
as it was at the start of the layer; the MLP runs on the post-attention state with parallel
assignment; head outputs then become undefined again. Halting is checked on the initial state
and after every layer, per sequence; a halted sequence's state no longer changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from alta import ir, semantics
from alta.batching import BatchSettings, plan_batches, windows
from alta.errors import AltaRuntimeError
from alta.evaluation import EvaluationFault, Evaluator, State, evaluate_condition
from alta.framing import Batch, decode_outputs, encode, encode_batch, framed_batch


@dataclass(frozen=True)
class LayerRecord:
    """The state of every sequence in the batch around one layer (for traces).

    Arrays are (batch, positions); sequences that had already halted keep their values and
    are marked inactive.
    """

    layer: int  # 1-based
    active: np.ndarray  # (batch,) sequences this layer ran on
    after_attention: dict[str, np.ndarray]  # variables and head outputs
    undefined: dict[str, np.ndarray]  # head name -> where its output was undefined
    after_mlp: dict[str, np.ndarray]  # variables only


@dataclass(frozen=True)
class RunResult:
    batch: Batch
    initial: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    layers: np.ndarray  # (batch,) layers each sequence ran
    halted: np.ndarray  # (batch,) True where the halting condition held (or no halting)
    trace: tuple[LayerRecord, ...] | None
    outputs: tuple[str, ...]

    @property
    def not_halted(self) -> list[int]:
        return [int(b) for b in np.flatnonzero(~self.halted)]


def run(program: ir.Program, texts, max_layers: int | None = None,
        trace: bool = False) -> RunResult:
    """Frame the input strings, run them as one batch, and read the outputs back."""
    return run_batch(program, encode_batch(program, texts), max_layers, trace)


def initial_state(program: ir.Program, batch: Batch) -> dict[str, np.ndarray]:
    """Every variable's value before the first layer (from token, position or constant)."""
    shape = batch.tokens.shape
    valid = batch.valid
    positions = np.broadcast_to(np.arange(shape[1], dtype=np.int64)[None, :], shape)
    values = {}
    for var in program.variables:
        dtype = _dtype(var.type)
        if var.init_from == "token":
            table = var.token_table
            if isinstance(var.type, ir.SetValued):
                table = [semantics.set_to_bits(s) for s in table]
            values[var.name] = np.asarray(table, dtype=dtype)[batch.tokens]
            continue
        evaluator = Evaluator(program, State({}, {}),
                              {"position": positions, "token": batch.tokens})
        try:
            value = np.broadcast_to(np.asarray(evaluator.eval(var.init, valid), dtype=dtype),
                                    shape).copy()
            evaluator.check_value(var.init, var.name, value, valid)
            value = evaluator.stored(var.name, value)
        except EvaluationFault as fault:
            raise _runtime_error(program, fault, batch, 0, np.arange(shape[0]),
                                 f"initialising '{var.name}'") from None
        values[var.name] = value
    return values


def run_batch(program: ir.Program, batch: Batch, max_layers: int | None = None,
              trace: bool = False) -> RunResult:
    limit = program.max_layers if max_layers is None else max_layers
    valid = batch.valid
    state = initial_state(program, batch)
    initial = {k: v.copy() for k, v in state.items()}
    n = len(batch.texts)
    layers = np.zeros(n, dtype=np.int64)
    running = ~_halted(program, state, valid, batch, 0, np.arange(n))
    records: list[LayerRecord] = []
    layer = 0
    while running.any() and layer < limit:
        layer += 1
        rows = np.flatnonzero(running)
        everyone = len(rows) == n  # no halted sequence to skip: avoid copying the state
        sub = state if everyone else {k: v[rows] for k, v in state.items()}
        sub_valid = valid if everyone else valid[rows]
        attended, undefined = attend(program, sub, sub_valid)
        try:
            updated = apply_mlp(program, attended, undefined, sub_valid)
        except EvaluationFault as fault:
            raise _runtime_error(program, fault, batch, layer, rows) from None
        for k, v in updated.items():
            if everyone:
                state[k] = v
            else:
                state[k][rows] = v
        layers[rows] = layer
        if trace:
            records.append(_record(layer, running, rows, state, attended, undefined))
        running[rows] = ~_halted(program, updated, sub_valid, batch, layer, rows)
    halted = ~running if program.halt is not None else np.ones(n, dtype=bool)
    try:
        outputs = tuple(decode_outputs(program, state, batch.lengths))
    except EvaluationFault as fault:
        raise _runtime_error(program, fault, batch, layer, np.arange(n),
                             "reading the output") from None
    return RunResult(batch, initial, state, layers, halted,
                     tuple(records) if trace else None, outputs)


def _halted(program: ir.Program, values, valid, batch: Batch, layer: int,
            rows) -> np.ndarray:
    if program.halt is None:
        return np.zeros(len(rows), dtype=bool)
    try:
        holds = evaluate_condition(program, program.halt, values, valid)
    except EvaluationFault as fault:
        raise _runtime_error(program, fault, batch, layer, rows,
                             "checking the halting condition") from None
    return np.all(holds | ~valid, axis=1)


def _record(layer, running, rows, state, attended, undefined) -> LayerRecord:
    n = len(running)
    full_attended, full_undefined = {}, {}
    for name, value in attended.items():
        if name in state:
            full_attended[name] = state[name].copy()  # overwritten below with pre-MLP values
        else:
            full_attended[name] = np.zeros((n,) + value.shape[1:], dtype=value.dtype)
        full_attended[name][rows] = value
    for name, mask in undefined.items():
        full_undefined[name] = np.ones((n,) + mask.shape[1:], dtype=bool)
        full_undefined[name][rows] = mask
    return LayerRecord(layer, running.copy(), full_attended, full_undefined,
                       {k: v.copy() for k, v in state.items()})


# ---- one layer ---------------------------------------------------------------------------------

def attend(program: ir.Program, values: dict[str, np.ndarray],
           valid: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every head, on the state at the start of the layer: (values + head outputs, undefined)."""
    out = dict(values)
    undefined = {}
    for head in program.heads:
        out[head.name], undefined[head.name] = attend_head(head, values, valid)
    return out, undefined


def attend_head(head: ir.Head, values, valid) -> tuple[np.ndarray, np.ndarray]:
    """One head's output and where it is undefined, for every query position."""
    batch, n = valid.shape
    if head.counts:  # how many positions it selects: defined everywhere, 0 included
        count = np.zeros((batch, n), dtype=np.int64)
        for rows, selected in _selections(head, values, valid):
            count[rows] = selected.sum(axis=2)
        return count, np.zeros((batch, n), dtype=bool)
    value = np.asarray(values[head.value], dtype=np.float64 if head.numerical else np.int64)
    if head.same:
        return _agreed_value(head, values, valid, value)
    if not head.where and head.offsets is not None and len(head.offsets) == 1:
        # A single relative offset selects at most one position: a shift, not N x N.
        (offset,) = head.offsets
        return _shift(value, offset), ~_shift(valid, offset)
    if not head.where and head.offsets is not None and len(head.offsets) <= 4:
        count = np.zeros((batch, n), dtype=np.int64)
        total = np.zeros((batch, n), dtype=value.dtype)
        for offset in head.offsets:
            picked, ok = _shift(value, offset), _shift(valid, offset)
            count += ok
            total += np.where(ok, picked, 0)
    else:
        count = np.zeros((batch, n), dtype=np.int64)
        total = np.zeros((batch, n), dtype=value.dtype)
        for rows, selected in _selections(head, values, valid):
            count[rows] = selected.sum(axis=2)
            if head.numerical:
                total[rows] = np.einsum("bij,bj->bi", selected, value[rows], dtype=np.float64)
            else:
                picked = selected.argmax(axis=2)
                total[rows] = np.take_along_axis(value[rows], picked, axis=1)
    if head.numerical:
        return total / np.maximum(count, 1), (count == 0)
    return total, (count != 1)


_ATTENTION_CHUNK = 1 << 23


def _selections(head: ir.Head, values, valid):
    """(rows, selection of those rows), over the batch in chunks that bound the (chunk, n,
    n) selection's size."""
    batch, n = valid.shape
    step = max(1, _ATTENTION_CHUNK // max(n * n, 1))
    for start in range(0, batch, step):
        rows = slice(start, start + step)
        yield rows, selection(head, {k: v[rows] for k, v in values.items()}, valid[rows])


def _agreed_value(head: ir.Head, values, valid, value) -> tuple[np.ndarray, np.ndarray]:
    """A `same` head: the value its selected positions share; undefined where none is
    selected or two of them differ."""
    out = np.zeros(valid.shape, dtype=value.dtype)
    undefined = np.ones(valid.shape, dtype=bool)
    for rows, selected in _selections(head, values, valid):
        picked = np.take_along_axis(value[rows], selected.argmax(axis=2), axis=1)
        differs = (selected & (value[rows][:, None, :] != picked[:, :, None])).any(axis=2)
        out[rows] = picked
        undefined[rows] = differs | ~selected.any(axis=2)
    return out, undefined


def selection(head: ir.Head, values, valid) -> np.ndarray:
    """(batch, query i, key j): whether position i selects position j."""
    batch, n = valid.shape
    selected = np.broadcast_to(valid[:, None, :], (batch, n, n))
    for term in head.where:  # keys at j (the last axis), queries at i
        selected = selected & ir.selects(term.test, lambda name: values[name][:, None, :],
                                         lambda name: values[name][:, :, None])
    if head.offsets is not None:
        relative = np.arange(n)[None, :] - np.arange(n)[:, None]
        selected = selected & np.isin(relative, head.offsets)[None]
    return selected


def _shift(x: np.ndarray, offset: int) -> np.ndarray:
    """out[:, i] = x[:, i + offset], zero (False) where i + offset is outside."""
    n = x.shape[1]
    k = min(abs(offset), n)
    out = np.empty_like(x)
    if offset >= 0:
        out[:, :n - k] = x[:, k:]
        out[:, n - k:] = 0
    else:
        out[:, k:] = x[:, :n - k]
        out[:, :k] = 0
    return out


def apply_mlp(program: ir.Program, attended: dict[str, np.ndarray],
              undefined: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, np.ndarray]:
    """The MLP body at every valid position; returns the new variable values."""
    evaluator = Evaluator(program, State(attended, undefined))
    writes = {v.name: attended[v.name] for v in program.variables}
    wrote = {v.name: np.zeros(valid.shape, dtype=bool) for v in program.variables}
    evaluator.run_block(program.mlp, valid, writes, wrote)
    return {name: np.asarray(value, dtype=_dtype(program.variable(name).type))
            for name, value in writes.items()}


def _dtype(type_: ir.ValueType):
    return np.float64 if isinstance(type_, ir.Numerical) else np.int64


def _runtime_error(program: ir.Program, fault: EvaluationFault, batch: Batch, layer: int,
                   rows, context: str = "") -> AltaRuntimeError:
    b = int(rows[fault.sequence])
    return AltaRuntimeError.at_run(fault.message, fault.node.span, program.source, layer,
                                   fault.position, batch.texts[b], context)


# ---- many inputs -------------------------------------------------------------------------------

# The interpreter's batches: numpy, so no shapes to bucket, but inputs of similar lengths
# together (less padding) and many of them (the per-layer Python cost is per batch).
BATCHES = BatchSettings(tokens=1 << 16, most_rows=1024, least_positions=1, window=4096)


def run_many(program: ir.Program, texts: Iterable[str], max_layers: int | None = None,
             settings: BatchSettings = BATCHES) -> Iterator[list[tuple[str, str, bool]]]:
    """(input, output, halted) per input, any number of inputs read lazily a window at a time:
    yields each window's results in input order as soon as it has run.

    The error raised is the one `run` of all the inputs as one batch raises (the first layer
    with an error, in it the first read, then the first input): after the first error nothing
    more is yielded, the remaining inputs run only up to its layer (a later error cannot
    win), and the inputs that failed run again together, which picks the winner by those
    very rules (each input's run is independent of its batch)."""
    limit = program.max_layers if max_layers is None else max_layers
    failed: list[tuple[int, AltaRuntimeError]] = []  # (input index, its batch's error)
    offset = 0
    for window in windows(texts, settings.window):
        encoded = [encode(program, text) for text in window]
        results: list[tuple[str, str, bool] | None] = [None] * len(window)
        for plan in plan_batches([len(e) for e in encoded], None, settings):
            rows = sorted(plan.indices)  # in input order: a batch's error names its first
            batch = framed_batch([window[i] for i in rows], [encoded[i] for i in rows])
            cap = min([limit] + [e.layer for _, e in failed])
            try:
                result = run_batch(program, batch, cap)
            except AltaRuntimeError as error:
                row = batch.texts.index(error.text)  # a repeated text fails the same way
                failed.append((offset + rows[row], error))
                continue
            for row, i in enumerate(rows):
                results[i] = (window[i], result.outputs[row], bool(result.halted[row]))
        offset += len(window)
        if not failed:
            yield results
    if failed:
        failed.sort(key=lambda f: f[0])
        run(program, [e.text for _, e in failed], max_layers)  # raises the winner
        raise failed[0][1]  # not reached: each of them fails alone
