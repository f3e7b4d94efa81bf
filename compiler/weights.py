"""Rules + residual layout -> the weights of a Universal Transformer layer (numpy).

- Embeddings: token-initialised and constant variables in the token embedding, position-
  initialised ones in a position embedding (only when the program has some).
- Attention, per head: Q and K map the query and key blocks onto a shared space, one
  bilinear form per term of the head's `where` (compiler/scores.py), so q.k is 1 where the
  head selects and at most 0 otherwise, times a scale `beta` chosen so that softmax puts all
  but a negligible mass on the selected positions up to the guaranteed length; V and O copy
  the value block into the head's own block.
- MLP, four layers with clipped ReLU min(1, max(0, x)) after the first three:
  1. sharpen categorical and set dimensions (2x - 1/2: head outputs that are nearly one-hot
     become exactly so), steps between numerical values (placed by compiler/buckets.py
     between the values a variable or a head's mean can really take), and a raw copy of
     every head dimension;
  2. numerical bucket one-hots (difference of steps), set values as one-hots over their
     possible sets, pass-throughs;
  3. one unit per rule (weight 1 per atom value, bias 1 - #atoms: exactly 1 when every atom
     holds, exactly 0 otherwise) and one reset unit per head dimension;
  4. linear: each rule adds new - old for what it writes; reset units subtract the head
     outputs, which are undefined again after the MLP.
- Halting: rules of the halting condition over the same expansion (layers 1-2), summed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from alta import ir
from alta.compiler.buckets import DEFAULT_GUARANTEED_LENGTH, bucket_thresholds, sink_weight
from alta.compiler.faults import AGREES, FAULT, ONE, SELECTED, averaged, selection_buckets
from alta.compiler.layout import ResidualLayout
from alta.compiler.rules import Copy, RuleSet, evaluate_scalar
from alta.compiler.scores import key_width, score_terms
from alta.compiler.values import needs_max_length, token_position_table
from alta.errors import AltaError
from alta.parameters import (
    AttentionParameters,
    DenseParameters,
    EmbeddingParameters,
    Parameters,
)

MASKED_LOGIT = -1e9  # a sink logit that takes no attention (as the model's padding mask)


@dataclass(frozen=True)
class HeadScale:
    name: str
    beta: float
    guaranteed_length: int  # softmax leaves every head output within tolerance up to here
    tolerance: float


@dataclass(frozen=True)
class CompileReport:
    width: int
    heads: int
    mlp_widths: tuple[int, int, int]
    rules: int
    reset_units: int
    unminimised_rules: int
    halting_rules: int
    atoms_per_rule: float
    parameters: int
    head_scales: tuple[HeadScale, ...]
    guaranteed_length: int
    warnings: tuple[str, ...] = ()
    fault_rules: int = 0  # rule units of the fault detector (compiler.faults)
    fault_resets: int = 0  # its selection heads' reset units
    program_width: int = 0  # the residual dimensions of the program's own state (the rest:
    # the fault detector's)
    copy_units: int = 0  # rule-layer units that copy a number linearly (compiler.rules.Copy)


@dataclass
class _Layer:
    """One layer of units being built: each unit's input weights (sparse) and bias, and a
    key per unit so later layers can find it."""

    units: list[tuple[dict[int, float], float]] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def add(self, key, weights: dict[int, float], bias: float) -> int:
        self.index[key] = len(self.units)
        self.units.append((weights, bias))
        return self.index[key]

    def __len__(self) -> int:
        return len(self.units)

    def dense(self, inputs: int) -> tuple[np.ndarray, np.ndarray]:
        W, b = np.zeros((inputs, len(self.units))), np.zeros(len(self.units))
        for u, (ws, bias) in enumerate(self.units):
            for i, w in ws.items():
                W[i, u] = w
            b[u] = bias
        return W, b


@dataclass
class _Expansion:
    """MLP layers 1 and 2, and the head dimensions the rule layer must reset."""

    first: _Layer
    second: _Layer
    resets: list[tuple[int, int, float]]  # (layer-2 unit, residual dim, output weight)
    reset_bias: np.ndarray  # output bias (zero: the resets need none)
    # Per numerical name copied linearly (or removed so), its raw parts: (layer-2 unit,
    # the factor that gives the number back: +-P).
    raw: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def build_weights(program: ir.Program, layout: ResidualLayout, rules: RuleSet,
                  max_length: int | None = None, selection: dict | None = None
                  ) -> tuple[Parameters, CompileReport]:
    """All parameters (float32 arrays), and the compiler's report on them.

    `selection` names the selection heads of the fault detector (compiler.faults) and the
    head each counts for: they get the same query and key, a sink and the head's scale."""
    target = max_length or program.max_length or DEFAULT_GUARANTEED_LENGTH
    selection = selection or {}
    attention, scales = _attention(program, layout, target, selection)
    atoms = [a for r in rules.all_rules for a in r.atoms]
    copied = sorted({value.name for rule in rules.mlp for w in rule.writes
                     for value in (w.old, w.new) if isinstance(value, Copy)})
    expansion = _expansion(program, layout, sorted({a.name for a in atoms}), target,
                           _count_parts(program, atoms), copied)
    mlp = _mlp(program, layout, rules.mlp + rules.faults, expansion)
    halting = ()
    if program.halt is not None:
        # The halting readout keeps its own copy of the expansion, so that a learned MLP can
        # replace the compiled one without changing when the model stops.
        halting = (*mlp[:2], DenseParameters(*_rule_layer(rules.halting, expansion.second)))
    parameters = Parameters(_embeddings(program, layout), attention, mlp, halting).map(
        lambda v: np.asarray(v, dtype=np.float32))

    guaranteed = min([s.guaranteed_length for s in scales] + [target])
    warnings = []
    if program.max_length and guaranteed < program.max_length:
        warnings.append(f"float32 attention is exact only up to {guaranteed} positions, "
                        f"below the declared max_length {program.max_length}")
    report = CompileReport(
        width=layout.width, heads=len(program.heads) - len(selection),
        program_width=layout.width - sum(b.size for b in layout.blocks
                                         if b.name in selection or b.name == ONE
                                         or b.name.startswith(FAULT)),
        mlp_widths=(len(expansion.first), len(expansion.second), mlp[2].bias.shape[0]),
        rules=len(rules.mlp), reset_units=len(expansion.resets) - len(selection),
        copy_units=len(_copy_units(rules.mlp + rules.faults, expansion, layout)),
        fault_rules=len(rules.faults), fault_resets=len(selection),
        unminimised_rules=rules.unminimised, halting_rules=len(rules.halting),
        atoms_per_rule=rules.atoms_per_rule,
        parameters=parameters.size, head_scales=tuple(scales),
        guaranteed_length=guaranteed, warnings=tuple(warnings))
    return parameters, report


def _buckets(program: ir.Program, name: str):
    if name.endswith(SELECTED):  # k / (k + 1) is not a mean of its value: steps of its own
        return selection_buckets(program.type_of(name).values)
    return bucket_thresholds(program, name)


def _count_parts(program: ir.Program, atoms) -> dict[str, list[tuple]]:
    """Per count head and numerical name the rules read, its values in runs that no atom
    tells apart (a head read only as `n == 0` has two: 0, and 1..M; a mean read only as
    `share > 0.5`, two), so that it needs one bucket per run and steps only between runs,
    not a bucket per value."""
    tests: dict[str, list[frozenset]] = {}
    for atom in atoms:
        if (atom.name in program.head_index and program.head(atom.name).counts) or (
                not atom.name.endswith((SELECTED, AGREES))
                and isinstance(program.type_of(atom.name), ir.Numerical)):
            tests.setdefault(atom.name, []).append(atom.values)
    parts = {}
    for name, sets in tests.items():
        runs, signature = [], None
        for count in program.type_of(name).values:
            mine = tuple(count in values for values in sets)
            if mine != signature:
                runs.append(())
                signature = mine
            runs[-1] += (count,)
        parts[name] = runs
    return parts


def _expansion(program: ir.Program, layout: ResidualLayout, read: list[str], target: int,
               count_parts: dict[str, list[tuple[int, ...]]], copied: list[str]) -> _Expansion:
    first, second = _Layer(), _Layer()
    for name in read:
        if name.endswith(AGREES):
            _agreement(first, second, name, layout.block(name.removesuffix(AGREES)), target)
            continue
        block = layout.block(name)
        type_ = program.type_of(name)
        if block.kind == "count":
            # Steps only between runs of counts (compiler/buckets.py places them).
            _bucket_runs(first, second, name, block.start, _buckets(program, name).steps,
                         count_parts[name], list(type_.values))
        elif block.kind in ("categorical", "set"):
            for v in range(block.size):  # sharpen: 2x - 1/2
                first.add((name, "bit", v), {block.start + v: 2.0}, -0.5)
            if block.kind == "categorical":  # the unit of value low + v
                for v in range(block.size):
                    second.add((name, block.low + v), {first.index[(name, "bit", v)]: 1.0},
                               0.0)
            else:  # which possible set: +1 per element in it, -1 per element not in it
                for s in type_.sets:
                    second.add((name, s), {first.index[(name, "bit", v)]: (1.0 if v in s else
                                                                           -1.0)
                                           for v in range(block.size)}, 1.0 - len(s))
        else:
            # Each step ramps from 0 to 1 between the values the dimension can really hold
            # on either side of a snapping boundary (compiler/buckets.py); only the steps
            # between runs of values that no atom tells apart are needed.
            _bucket_runs(first, second, name, block.start, _buckets(program, name).steps,
                         count_parts.get(name) or [(v,) for v in type_.values],
                         list(type_.values))

    # Raw copies of head dimensions, for the reset units, and of the numerical variables
    # copied linearly (compiler/rules.py, `Copy`).
    resets, raw = [], {}
    reset_bias = np.zeros(layout.width)
    for head in program.heads:
        block = layout.block(head.name)
        if block.kind in ("numerical", "count"):
            # Subtract the mean exactly: divided by a power of two P >= 2 max|value|, its
            # positive (and, if the values have a sign, negative) part lies in [0, 1/2], so a
            # mean that float32 rounded a little past the declared range is not clipped, and
            # scaling by P is exact. The block is left at exactly 0, so nothing carries over
            # into the next layer's mean (compiler/buckets.py relies on it).
            raw[head.name] = _raw_parts(first, second, head.name, block.start,
                                        program.type_of(averaged(head)).values)
            resets.extend((unit, block.start, -factor) for unit, factor in raw[head.name])
        else:
            for v in range(block.size):
                key = (head.name, "raw", v)
                first.add(key, {block.start + v: 1.0}, 0.0)
                resets.append((second.add(key, {first.index[key]: 1.0}, 0.0), block.start + v,
                               -1.0))
    for name in copied:
        if name not in raw:
            raw[name] = _raw_parts(first, second, name, layout.dim(name),
                                   program.type_of(name).values)
    return _Expansion(first, second, resets, reset_bias,
                      {name: raw[name] for name in copied})


def _raw_parts(first: _Layer, second: _Layer, name: str, dim: int,
               values) -> list[tuple[int, float]]:
    """A numerical dimension divided by a power of two P >= 2 max|value| (exact), its
    positive part and, where its values have a sign, its negative part: each lies in [0,
    1/2] (a number a little past the values is not clipped), through layers 1 and 2.
    Returns (layer-2 unit, +-P) per part: unit times that factor is the part back."""
    largest = max(abs(v) for v in values) or 1.0
    power = 2.0 ** (math.ceil(math.log2(largest)) + 1)
    parts = []
    for sign in ((1.0, -1.0) if min(values) < 0 else (1.0,)):
        key = (name, "raw") if sign > 0 else (name, "raw", "negative")
        first.add(key, {dim: sign / power}, 0.0)
        parts.append((second.add(key, {first.index[key]: 1.0}, 0.0), sign * power))
    return parts


def _bucket_runs(first: _Layer, second: _Layer, name: str, dim: int, steps, runs,
                 values: list) -> None:
    """Steps between runs of values (steps[k] separates values[k] from values[k + 1]);
    bucket j is the step below its run minus the step above it, one unit that every value
    of the run reads as."""
    position = {v: k for k, v in enumerate(values)}
    for j, run in enumerate(runs[:-1]):
        step = steps[position[run[-1]]]  # between run[-1] and the next value
        slope = 1.0 / (step.end - step.start)
        first.add((name, "step", j), {dim: slope}, -slope * step.start)
    for j, run in enumerate(runs):
        ws = {}
        if j > 0:
            ws[first.index[(name, "step", j - 1)]] = 1.0
        if j < len(runs) - 1:
            ws[first.index[(name, "step", j)]] = -1.0
        unit = second.add((name, run[0]), ws, 1.0 if j == 0 else 0.0)
        second.index.update({(name, value): unit for value in run})


def _agreement(first: _Layer, second: _Layer, name: str, block, target: int) -> None:
    """Whether a `same` head's selected values agree, from its averaged one-hot: one ramp
    per value from 1 - 3/(4N) to 1 - 1/(4N). Values that differ leave every component at
    most 1 - 1/N (k - 1 of k positions at best), values that agree one within the softmax
    leakage, under 1/(4N) (the head's scale: `_head_scale`), of 1; at most one ramp is on."""
    low, high = 1.0 - 0.75 / target, 1.0 - 0.25 / target
    slope = 1.0 / (high - low)
    for v in range(block.size):
        first.add((name, "top", v), {block.start + v: slope}, -slope * low)
    tops = {first.index[(name, "top", v)]: 1.0 for v in range(block.size)}
    second.add((name, 1.0), tops, 0.0)
    second.add((name, 0.0), {unit: -1.0 for unit in tops}, 1.0)


def _mlp(program: ir.Program, layout: ResidualLayout, rules: tuple,
         expansion: _Expansion) -> tuple[DenseParameters, ...]:
    W1, b1 = expansion.first.dense(layout.width)
    W2, b2 = expansion.second.dense(len(expansion.first))
    rule_w, rule_b = _rule_layer(rules, expansion.second)
    reset_w = np.zeros((len(expansion.second), len(expansion.resets)))
    copies = _copy_units(rules, expansion, layout)
    copy_w, copy_b = np.zeros((len(expansion.second), len(copies))), np.zeros(len(copies))
    W4 = np.zeros((len(rules) + len(expansion.resets) + len(copies), layout.width))
    for r, rule in enumerate(rules):  # add new - old
        for w in rule.writes:
            if w.old is not None and not isinstance(w.old, Copy):
                layout.write(W4[r], w.variable, w.old, -1.0)
            if w.new is not None and not isinstance(w.new, Copy):
                layout.write(W4[r], w.variable, w.new, +1.0)
    for i, (unit, dim, out) in enumerate(expansion.resets):
        reset_w[unit, i] = 1.0
        W4[len(rules) + i, dim] = out
    # A copy's part, gated by its rule: raw part + (atoms that hold) - #atoms, clipped, is
    # the part where every atom holds and 0 elsewhere (the part lies in [0, 1/2]).
    for i, (r, part, factor, dim) in enumerate(copies):
        copy_w[part, i] = 1.0
        for atom in rules[r].atoms:
            for value in atom.values:
                copy_w[expansion.second.index[(atom.name, value)], i] = 1.0
        copy_b[i] = -float(len(rules[r].atoms))
        W4[len(rules) + len(expansion.resets) + i, dim] = factor
    return (DenseParameters(W1, b1), DenseParameters(W2, b2),
            DenseParameters(np.concatenate([rule_w, reset_w, copy_w], axis=1),
                            np.concatenate([rule_b, np.zeros(len(expansion.resets)), copy_b])),
            DenseParameters(W4, expansion.reset_bias))


def _copy_units(rules, expansion: _Expansion, layout: ResidualLayout
                ) -> list[tuple[int, int, float, int]]:
    """Per rule and `Copy` it adds (a new value) or removes (the old one), per raw part:
    (rule, layer-2 unit of the part, output weight: +-P for a new value, -+P for an old
    one, residual dimension)."""
    units = []
    for r, rule in enumerate(rules):
        for w in rule.writes:
            for value, sign in ((w.new, 1.0), (w.old, -1.0)):
                if isinstance(value, Copy):
                    units.extend((r, part, sign * factor, layout.dim(w.variable))
                                 for part, factor in expansion.raw[value.name])
    return units


def _rule_layer(rules, second: _Layer) -> tuple[np.ndarray, np.ndarray]:
    """One unit per rule: weight 1 per atom value, bias 1 - #atoms."""
    W, b = np.zeros((len(second), len(rules))), np.zeros(len(rules))
    for r, rule in enumerate(rules):
        for atom in rule.atoms:
            for value in atom.values:
                W[second.index[(atom.name, value)], r] = 1.0
        b[r] = 1.0 - len(rule.atoms)
    return W, b


def _embeddings(program: ir.Program, layout: ResidualLayout) -> EmbeddingParameters:
    D = layout.width
    token = np.zeros((len(program.vocab), D))
    position_vars = [v for v in program.variables if v.init_from == "position"]
    joint_vars = [v for v in program.variables if v.init_from == "token and position"]
    for var in program.variables:
        if var.init_from == "token":
            for t, value in enumerate(var.token_table):
                layout.write(token[t], var.name, value, 1.0)
        elif var.init_from == "constant":
            value = var.init.value
            for t in range(len(program.vocab)):
                layout.write(token[t], var.name, value, 1.0)
    if position_vars or joint_vars:
        if program.max_length is None:
            raise needs_max_length(program, (position_vars + joint_vars)[0])
        joint = None
        if joint_vars:
            # Not a sum of a token's row and a position's: a row per (position, token).
            joint = np.zeros((program.max_length, len(program.vocab), D))
            for var in joint_vars:
                for (t, p), value in token_position_table(program, var).items():
                    layout.write(joint[p, t], var.name, value, 1.0)
        position = np.zeros((program.max_length, D))
        for var in position_vars:
            for p in range(program.max_length):
                value = evaluate_scalar(var.init, {"position": p})
                if not var.type.contains(value if not isinstance(value, bool) else int(value)):
                    raise AltaError.at(
                        f"initialiser gives {value!r} at position {p}, which is not a value of "
                        f"'{var.name}' ({var.type.describe()}); positions go up to max_length - "
                        f"1 = {program.max_length - 1}", var.span, program.source)
                if isinstance(var.type, ir.Numerical):  # stored as the declared value
                    value = var.type.declared(value)
                layout.write(position[p], var.name, value, 1.0)
        return EmbeddingParameters(token, position, joint)
    return EmbeddingParameters(token)


def _attention(program: ir.Program, layout: ResidualLayout, target: int, selection: dict
               ) -> tuple[AttentionParameters, list[HeadScale]]:
    D = layout.width
    H = len(program.heads)
    dk = max([key_width(program, h) for h in program.heads] + [1])
    dv = max([layout.block(h.name).size for h in program.heads] + [1])
    Q, K = np.zeros((H, D, dk)), np.zeros((H, D, dk))
    V, out_proj = np.zeros((H, D, dv)), np.zeros((H, dv, D))
    sink = np.full(H, MASKED_LOGIT)
    scales, betas = [], {}
    for h, head in enumerate(program.heads):
        if head.name in selection:
            # A match scores beta and so does the sink: with k positions selected the sink
            # keeps 1 / (k + 1). beta must leave the non-matching positions, together, under
            # 1/16 of the sink's weight at the target length; the head's own scale usually
            # does (then the two heads' scores are equal and computed once).
            counted = betas[selection[head.name]]
            beta = max(counted, math.log(16.0 * target)) if head.where else 0.0
            sink[h] = beta
        else:
            scale = _head_scale(program, head, target)
            scales.append(scale)
            beta = betas[head.name] = scale.beta
            if head.counts:  # the sink weighs as M matches: k of them keep k / (k + M)
                match = beta if head.where else 0.0
                sink[h] = match + math.log(sink_weight(head.type.size - 1))
        for term in score_terms(program, head):  # K one-hot onto its columns, Q the form
            key, query = layout.block(term.key), layout.block(term.query)
            columns = slice(term.column, term.column + term.width)
            K[h, key.start:key.stop, columns] = np.eye(term.width)
            Q[h, query.start:query.stop, columns] = beta * term.matrix.T
        value, out = layout.block(averaged(head)), layout.block(head.name)
        if value.kind == "categorical" and out.kind == "numerical":
            # The mean of a categorical variable's numbers: each value's one-hot dimension
            # carries the number itself into the head's one column.
            for v, number in enumerate(program.variable(head.value).type.values):
                V[h, value.start + v, 0] = float(number)
            out_proj[h, 0, out.start] = 1.0
            continue
        for v in range(value.size):
            V[h, value.start + v, v] = 1.0
            out_proj[h, v, out.start + v] = 1.0
    has_sink = selection or any(h.counts for h in program.heads)
    return AttentionParameters(Q, K, V, out_proj, sink if has_sink else None), scales


def _head_scale(program: ir.Program, head: ir.Head, target: int) -> HeadScale:
    """The softmax scale that keeps this head's output within tolerance up to `target`.

    A selected position scores beta, any other allowed one 0, so at length N the mass off the
    selection is below N exp(-beta). Categorical outputs are sharpened at 1/4 by the MLP;
    a numerical output must stay within a quarter of the window of possible means around
    each step (compiler/buckets.py), half of it for softmax leakage and half for float32
    rounding of the mean; the buckets say up to which length the rounding fits.
    """
    if head.counts:  # the mean of 1 (the selected) and 0 (the sink): k / (k + M)
        buckets = bucket_thresholds(program, head.name)
        tolerance = buckets.tolerance if buckets.steps else 0.25
        magnitude, exact_up_to = 1.0, buckets.positions
    elif head.same:  # the agreement ramps need the leakage under 1/(4N)
        tolerance, magnitude = 0.25 / target, 1.0
        exact_up_to = target
    elif not head.numerical:
        tolerance, magnitude = 0.25, 1.0
        exact_up_to = target
    else:
        buckets = bucket_thresholds(program, head.name)
        tolerance = buckets.tolerance if buckets.steps else 0.25
        source = program.variable(head.value).type.values
        magnitude = max(max(source) - min(source), 1e-12)
        exact_up_to = buckets.positions
    leak_budget = tolerance / 2 if head.numerical or head.counts else tolerance
    # beta is chosen for `target` positions, with a safety factor of e^2 on the leakage.
    beta = max(math.log(target * magnitude / leak_budget) + 2.0, 1.0)
    guaranteed = min(target, exact_up_to)
    return HeadScale(head.name, beta, max(guaranteed, 0), tolerance)
