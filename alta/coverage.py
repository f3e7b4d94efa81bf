"""Rule coverage: which compiled MLP rules fire on a set of inputs, and which never do.

A rule fires at a position and layer when every one of its atoms holds in the state after
attention (an atom on a head whose output is undefined there does not hold). Counting this
over a training distribution shows whether it exercises every part of the program: a rule
that never fires is behaviour the data cannot teach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta import ir
from alta.compiler.rules import Rule
from alta.semantics import set_to_bits, snap


@dataclass(frozen=True)
class Coverage:
    rules: tuple[Rule, ...]
    hits: np.ndarray  # (rules,) positions x layers where each rule fired
    positions: int  # positions x layers seen

    @property
    def uncovered(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.hits == 0)]


def rule_hits(program: ir.Program, rules, values: dict[str, np.ndarray],
              undefined: dict[str, np.ndarray]) -> np.ndarray:
    """How often each rule fires over a flat set of states: `values[name]` (rows,) in the
    interpreter's encoding, `undefined[head]` (rows,) where a head output is undefined."""
    hits = np.zeros(len(rules), np.int64)
    cache: dict[tuple, np.ndarray] = {}
    for r, rule in enumerate(rules):
        fires = None
        for atom in rule.atoms:
            key = (atom.name, atom.values)
            if key not in cache:
                cache[key] = _holds(program, atom.name, atom.values, values[atom.name],
                                    undefined.get(atom.name))
            fires = cache[key] if fires is None else fires & cache[key]
        hits[r] = len(next(iter(values.values()))) if fires is None else int(fires.sum())
    return hits


def _holds(program, name, allowed, values, undefined) -> np.ndarray:
    type_ = program.type_of(name)
    if isinstance(type_, ir.SetValued):
        allowed = [set_to_bits(v) for v in allowed]
        holds = np.isin(values, allowed)
    elif isinstance(type_, ir.Numerical):  # reads snap to the nearest declared value
        snapped = snap(values.astype(np.float64), type_.values)
        holds = np.isin(snapped, np.asarray(sorted(allowed), np.float64))
    else:
        holds = np.isin(values, list(allowed))
    return holds if undefined is None else holds & ~undefined


def coverage_of_run(program: ir.Program, rules, texts: list[str]) -> Coverage:
    """Run the interpreter on `texts` and count the rules firing at every layer."""
    from alta.interpreter import run

    result = run(program, texts, trace=True)
    hits = np.zeros(len(rules), np.int64)
    seen = 0
    valid = result.batch.valid
    for record in result.trace:
        b, p = np.nonzero(record.active[:, None] & valid)
        values = {name: v[b, p] for name, v in record.after_attention.items()}
        undefined = {name: m[b, p] for name, m in record.undefined.items()}
        hits += rule_hits(program, rules, values, undefined)
        seen += len(b)
    return Coverage(tuple(rules), hits, seen)


def coverage_of_dataset(program: ir.Program, rules, shards) -> Coverage:
    """Count the rules firing on the after-attention states of a trace dataset's shards."""
    hits = np.zeros(len(rules), np.int64)
    seen = 0
    heads = {h.name for h in program.heads}
    for columns in shards:
        if not columns:
            continue
        values, undefined = {}, {}
        for name in [v.name for v in program.variables] + sorted(heads):
            raw = columns[f"attention.{name}"]
            type_ = program.type_of(name)
            missing = np.array([x is None for x in raw])
            if isinstance(type_, ir.SetValued):
                data = np.array([0 if x is None else set_to_bits(x) for x in raw], dtype=np.int64)
            else:
                data = np.array([0 if x is None else x for x in raw],
                                dtype=np.float64 if isinstance(type_, ir.Numerical) else np.int64)
            values[name] = data
            if name in heads:
                undefined[name] = missing
        hits += rule_hits(program, rules, values, undefined)
        seen += len(columns["example"])
    return Coverage(tuple(rules), hits, seen)
