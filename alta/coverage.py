"""Rule coverage: which compiled MLP rules fire on a set of inputs, and which never do.

A rule fires at a position and layer when every one of its atoms holds in the state after
attention (an atom on a head whose output is undefined there does not hold). Counting this
over a training distribution shows whether it exercises every part of the program: a rule
that never fires is behaviour the data cannot teach.

Minimality (`exercised_by`, `novel_inputs`): the rules a training set fires and the values
its states take, and, for other inputs (longer ones), which of them need a rule or a value
the training traces never exercise: the inputs a model trained on those traces has no
supervision for, so the ones it may be expected to get wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def rule_fires(program: ir.Program, rules, values: dict[str, np.ndarray],
               undefined: dict[str, np.ndarray]) -> np.ndarray:
    """Where each rule fires over a flat set of states, (rules, rows) bool: `values[name]`
    (rows,) in the interpreter's encoding, `undefined[head]` (rows,) where a head output is
    undefined."""
    rows = len(next(iter(values.values())))
    out = np.ones((len(rules), rows), bool)
    cache: dict[tuple, np.ndarray] = {}
    for r, rule in enumerate(rules):
        for atom in rule.atoms:
            key = (atom.name, atom.values)
            if key not in cache:
                cache[key] = _holds(program, atom.name, atom.values, values[atom.name],
                                    undefined.get(atom.name))
            out[r] &= cache[key]
    return out


def rule_hits(program: ir.Program, rules, values: dict[str, np.ndarray],
              undefined: dict[str, np.ndarray]) -> np.ndarray:
    """How often each rule fires over a flat set of states (as `rule_fires`)."""
    return rule_fires(program, rules, values, undefined).sum(axis=1)


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


def run_states(program: ir.Program, texts: list[str]
               ) -> Iterator[tuple[np.ndarray, dict, dict]]:
    """The interpreter's run of `texts`: per layer, the MLP's input states at every running
    position, flat: (input index per row, values by name, undefined by head)."""
    from alta.interpreter import run

    result = run(program, texts, trace=True)
    valid = result.batch.valid
    for record in result.trace:
        b, p = np.nonzero(record.active[:, None] & valid)
        yield (b, {name: v[b, p] for name, v in record.after_attention.items()},
               {name: m[b, p] for name, m in record.undefined.items()})


def coverage_of_run(program: ir.Program, rules, texts: list[str]) -> Coverage:
    """Run the interpreter on `texts` and count the rules firing at every layer."""
    hits = np.zeros(len(rules), np.int64)
    seen = 0
    for b, values, undefined in run_states(program, texts):
        hits += rule_hits(program, rules, values, undefined)
        seen += len(b)
    return Coverage(tuple(rules), hits, seen)


# ---- minimality: what a training set exercises, and which other inputs need more ---------

@dataclass(frozen=True)
class Exercised:
    """What the training inputs' traces exercise: the rules that fire, and per variable and
    head output the values its MLP inputs take (defined ones; numerical ones snapped)."""

    coverage: Coverage
    values: dict[str, frozenset]

    def unexercised_values(self, program: ir.Program) -> dict[str, tuple]:
        """Per name, the values it can take (alta.compiler.values) that training never
        shows, in the interpreter's encoding (sets as bit masks)."""
        from alta.compiler.values import reachable_values

        reachable = reachable_values(program)
        out = {}
        for name in [v.name for v in program.variables] + [h.name for h in program.heads]:
            missing = [v for v in reachable[name]
                       if _encoded(program, name, v) not in self.values[name]]
            if missing:
                out[name] = tuple(missing)
        return out


def _encoded(program: ir.Program, name: str, value):
    type_ = program.type_of(name)
    if isinstance(type_, ir.SetValued):
        return set_to_bits(value)
    return float(value) if isinstance(type_, ir.Numerical) else int(value)


def _state_values(program: ir.Program, name: str, values: np.ndarray) -> np.ndarray:
    """A name's states as `_encoded` compares them (numerical reads snap)."""
    type_ = program.type_of(name)
    if isinstance(type_, ir.Numerical):
        return snap(values.astype(np.float64), type_.values)
    return values.astype(np.int64)


def exercised_by(program: ir.Program, rules, texts: list[str]) -> Exercised:
    """What the traces of `texts` (the training inputs) exercise."""
    hits = np.zeros(len(rules), np.int64)
    seen, rows = {}, 0
    for b, values, undefined in run_states(program, texts):
        hits += rule_hits(program, rules, values, undefined)
        rows += len(b)
        for name, v in values.items():
            defined = ~undefined[name] if name in undefined else slice(None)
            seen.setdefault(name, set()).update(
                _state_values(program, name, v[defined]).tolist())
    return Exercised(Coverage(tuple(rules), hits, rows),
                     {name: frozenset(v) for name, v in seen.items()})


@dataclass(frozen=True)
class Novelty:
    """Per input, whether its run needs what training never exercised."""

    rule: np.ndarray  # (inputs,) bool: some position fires an unexercised rule
    value: np.ndarray  # (inputs,) bool: some MLP input holds a value training never shows

    @property
    def either(self) -> np.ndarray:
        return self.rule | self.value


def novel_inputs(program: ir.Program, exercised: Exercised, texts: list[str]) -> Novelty:
    """Which of `texts` need an unexercised rule or value (the interpreter's run of each)."""
    rules = exercised.coverage.rules
    unexercised = exercised.coverage.uncovered
    rule = np.zeros(len(texts), bool)
    value = np.zeros(len(texts), bool)
    for b, values, undefined in run_states(program, texts):
        if unexercised:
            fires = rule_fires(program, [rules[i] for i in unexercised], values, undefined)
            rule[b[fires.any(axis=0)]] = True
        for name, v in values.items():
            known = np.asarray(sorted(exercised.values.get(name, ())))
            new = ~np.isin(_state_values(program, name, v), known)
            if name in undefined:
                new &= ~undefined[name]
            value[b[new]] = True
    return Novelty(rule, value)


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
