"""Rules + residual layout -> the weights of a Universal Transformer layer (numpy).

- Embeddings: token-initialised and constant variables in the token embedding, position-
  initialised ones in a position embedding (only when the program has some).
- Attention, per head: Q and K map the query and key blocks onto a shared one-hot space, so
  q.k is 1 on a match and 0 otherwise, times a scale `beta` chosen so that softmax puts all
  but a negligible mass on the selected positions up to the guaranteed length; V and O copy
  the value block into the head's own block.
- MLP, four layers with clipped ReLU min(1, max(0, x)) after the first three:
  1. sharpen categorical and set dimensions (2x - 1/2: head outputs that are nearly one-hot
     become exactly so), steps at the midpoints between numerical values, and a raw copy of
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
from alta.compiler.layout import ResidualLayout
from alta.compiler.rules import Rule, RuleSet, evaluate_scalar
from alta.errors import AltaError

DEFAULT_GUARANTEED_LENGTH = 100_000  # for programs that declare no max_length
FLOAT32_EPS = 2.0 ** -24


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


@dataclass
class _Units:
    """Allocates units of one layer and remembers what each one is."""

    names: list[str] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def add(self, key, label: str) -> int:
        self.index[key] = len(self.names)
        self.names.append(label)
        return self.index[key]

    def __len__(self) -> int:
        return len(self.names)


def _atom_names(rules: RuleSet) -> list[str]:
    names = {a.name for r in rules.mlp + rules.halting for a in r.atoms}
    return sorted(names)


def build_weights(program: ir.Program, layout: ResidualLayout, rules: RuleSet,
                  max_length: int | None = None) -> tuple[dict[str, np.ndarray], CompileReport]:
    """All weights as named float32 arrays, and the compiler's report on them."""
    D = layout.width
    warnings: list[str] = []
    target = max_length or program.max_length or DEFAULT_GUARANTEED_LENGTH

    weights: dict[str, np.ndarray] = {}
    weights.update(_embeddings(program, layout))
    attention, scales = _attention(program, layout, target)
    weights.update(attention)

    read = _atom_names(rules)
    l1, l2 = _Units(), _Units()
    cols1: list[tuple[dict[int, float], float]] = []  # per unit: weights by input dim, bias
    cols2: list[tuple[dict[int, float], float]] = []

    def unit1(key, label, ws, bias):
        l1.add(key, label)
        cols1.append((ws, bias))

    def unit2(key, label, ws, bias):
        l2.add(key, label)
        cols2.append((ws, bias))

    for name in read:
        block = layout.block(name)
        type_ = program.type_of(name)
        if block.kind in ("categorical", "set"):
            for v in range(block.size):
                unit1((name, "bit", v), f"{name}[{block.labels[v]}] sharpened",
                      {block.start + v: 2.0}, -0.5)
            if block.kind == "categorical":
                for v in range(block.size):
                    unit2((name, v), f"{name} == {block.labels[v]}",
                          {l1.index[(name, "bit", v)]: 1.0}, 0.0)
            else:
                for s in type_.sets:
                    ws = {l1.index[(name, "bit", v)]: (1.0 if v in s else -1.0)
                          for v in range(block.size)}
                    unit2((name, s), f"{name} == {type_.format(s)}", ws, 1.0 - len(s))
        else:
            values = type_.values
            for k in range(len(values) - 1):
                gap = values[k + 1] - values[k]
                mid = (values[k + 1] + values[k]) / 2
                slope = 2.0 / gap  # saturates a quarter gap either side of the midpoint
                unit1((name, "step", k), f"{name} > {mid:g}", {block.start: slope},
                      0.5 - slope * mid)
            for k, value in enumerate(values):
                ws, bias = {}, 0.0
                if k == 0:
                    bias = 1.0
                else:
                    ws[l1.index[(name, "step", k - 1)]] = 1.0
                if k < len(values) - 1:
                    ws[l1.index[(name, "step", k)]] = -1.0
                unit2((name, value), f"{name} ~ {value:g}", ws, bias)

    # Raw copies of head dimensions, for the reset units.
    resets = []  # (layer-2 unit, residual dim, output weight)
    head_bias = np.zeros(D)
    for head in program.heads:
        block = layout.block(head.name)
        if block.kind == "numerical":
            values = program.type_of(head.value).values
            lo, hi = min(values), max(values)
            span = hi - lo
            unit1((head.name, "raw"), f"{head.name} raw", {block.start: 1.0 / span} if span
                  else {}, -lo / span if span else 0.0)
            unit2((head.name, "raw"), f"{head.name} raw", {l1.index[(head.name, "raw")]: 1.0},
                  0.0)
            resets.append((l2.index[(head.name, "raw")], block.start, -span))
            head_bias[block.start] = -lo
        else:
            for v in range(block.size):
                key = (head.name, "raw", v)
                unit1(key, f"{head.name}[{block.labels[v]}] raw", {block.start + v: 1.0}, 0.0)
                unit2(key, f"{head.name}[{block.labels[v]}] raw", {l1.index[key]: 1.0}, 0.0)
                resets.append((l2.index[key], block.start + v, -1.0))

    W1, b1 = _dense(cols1, D)
    W2, b2 = _dense(cols2, len(l1))

    E2 = len(l2)
    R = len(rules.mlp) + len(resets)
    W3, b3 = np.zeros((E2, R)), np.zeros(R)
    W4, b4 = np.zeros((R, D)), head_bias.copy()
    for r, rule in enumerate(rules.mlp):
        _rule_unit(W3, b3, r, rule, l2)
        for w in rule.writes:
            _write(W4[r], program, layout, w.variable, w.old, -1.0)
            _write(W4[r], program, layout, w.variable, w.new, +1.0)
    for i, (unit, dim, out) in enumerate(resets):
        r = len(rules.mlp) + i
        W3[unit, r] = 1.0
        W4[r, dim] = out

    H = len(rules.halting)
    WH, bH = np.zeros((E2, H)), np.zeros(H)
    for r, rule in enumerate(rules.halting):
        _rule_unit(WH, bH, r, rule, l2)

    weights.update({"mlp.0.weight": W1, "mlp.0.bias": b1, "mlp.1.weight": W2, "mlp.1.bias": b2,
                    "mlp.2.weight": W3, "mlp.2.bias": b3, "mlp.3.weight": W4, "mlp.3.bias": b4})
    if program.halt is not None:
        # The halting readout keeps its own copy of the expansion, so that a learned MLP can
        # replace the compiled one without changing when the model stops.
        weights.update({"halting.0.weight": W1, "halting.0.bias": b1, "halting.1.weight": W2,
                        "halting.1.bias": b2, "halting.2.weight": WH, "halting.2.bias": bH})
    weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    guaranteed = min([s.guaranteed_length for s in scales] + [target])
    if program.max_length and guaranteed < program.max_length:
        warnings.append(f"float32 attention is exact only up to {guaranteed} positions, "
                        f"below the declared max_length {program.max_length}")
    report = CompileReport(
        width=D, heads=len(program.heads), mlp_widths=(len(l1), E2, R),
        rules=len(rules.mlp), reset_units=len(resets), unminimised_rules=rules.unminimised,
        halting_rules=H, atoms_per_rule=rules.atoms_per_rule,
        parameters=int(sum(v.size for v in weights.values())), head_scales=tuple(scales),
        guaranteed_length=guaranteed, warnings=tuple(warnings))
    return weights, report


def _dense(cols, rows: int) -> tuple[np.ndarray, np.ndarray]:
    W = np.zeros((rows, len(cols)))
    b = np.zeros(len(cols))
    for u, (ws, bias) in enumerate(cols):
        for i, w in ws.items():
            W[i, u] = w
        b[u] = bias
    return W, b


def _rule_unit(W, b, r: int, rule: Rule, units: _Units) -> None:
    for atom in rule.atoms:
        for value in atom.values:
            W[units.index[(atom.name, value)], r] = 1.0
    b[r] = 1.0 - len(rule.atoms)


def _write(row: np.ndarray, program, layout: ResidualLayout, name: str, value,
           sign: float) -> None:
    block = layout.block(name)
    if block.kind == "categorical":
        row[block.start + int(value)] += sign
    elif block.kind == "numerical":
        row[block.start] += sign * float(value)
    else:
        for v in value:
            row[block.start + v] += sign


def _embeddings(program: ir.Program, layout: ResidualLayout) -> dict[str, np.ndarray]:
    D = layout.width
    token = np.zeros((len(program.vocab), D))
    position_vars = [v for v in program.variables if v.init_from == "position"]
    out = {"embed.token": token}
    for var in program.variables:
        if var.init_from == "token":
            for t, value in enumerate(var.token_table):
                _write(token[t], program, layout, var.name, value, 1.0)
        elif var.init_from == "constant":
            value = var.init.value
            for t in range(len(program.vocab)):
                _write(token[t], program, layout, var.name, value, 1.0)
    if position_vars:
        if program.max_length is None:
            raise AltaError.at(f"variable '{position_vars[0].name}' is initialised from "
                               "'position', so compiling needs 'max_length N' (the size of the "
                               "position embedding)", position_vars[0].span, program.source)
        position = np.zeros((program.max_length, D))
        for var in position_vars:
            for p in range(program.max_length):
                value = evaluate_scalar(var.init, {"position": p})
                if not var.type.contains(value if not isinstance(value, bool) else int(value)):
                    raise AltaError.at(
                        f"initialiser gives {value!r} at position {p}, which is not a value of "
                        f"'{var.name}' ({var.type.describe()}); positions go up to max_length - "
                        f"1 = {program.max_length - 1}", var.span, program.source)
                _write(position[p], program, layout, var.name, value, 1.0)
        out["embed.position"] = position
    return out


def _attention(program: ir.Program, layout: ResidualLayout,
               target: int) -> tuple[dict[str, np.ndarray], list[HeadScale]]:
    D = layout.width
    H = len(program.heads)
    dk = max([program.variable(h.key).type.size for h in program.heads if h.key] + [1])
    dv = max([layout.block(h.name).size for h in program.heads] + [1])
    Q, K = np.zeros((H, D, dk)), np.zeros((H, D, dk))
    V, out_proj = np.zeros((H, D, dv)), np.zeros((H, dv, D))
    scales = []
    for h, head in enumerate(program.heads):
        scale = _head_scale(program, head, target)
        scales.append(scale)
        if head.key is not None:
            key, query = layout.block(head.key), layout.block(head.query)
            for v in range(key.size):
                K[h, key.start + v, v] = 1.0
                Q[h, query.start + v, v] = scale.beta
        value, out = layout.block(head.value), layout.block(head.name)
        for v in range(value.size):
            V[h, value.start + v, v] = 1.0
            out_proj[h, v, out.start + v] = 1.0
    return ({"attention.query": Q, "attention.key": K, "attention.value": V,
             "attention.output": out_proj}, scales)


def _head_scale(program: ir.Program, head: ir.Head, target: int) -> HeadScale:
    """The softmax scale that keeps this head's output within tolerance up to `target`.

    A selected position scores beta, any other allowed one 0, so at length N the mass off the
    selection is below N exp(-beta). Categorical outputs are sharpened at 1/4 by the MLP;
    numerical outputs must stay within a quarter of the smallest gap between the head's
    declared values, split between softmax leakage and float32 rounding of the mean.
    """
    if not head.numerical:
        tolerance, magnitude = 0.25, 1.0
        rounding_limit = math.inf
    else:
        values = head.type.values
        gaps = [b - a for a, b in zip(values, values[1:])] or [1.0]
        tolerance = min(gaps) / 4
        source = program.variable(head.value).type.values
        magnitude = max(max(source) - min(source), 1e-12)
        largest = max(abs(v) for v in source) or 1.0
        # A float32 weighted sum of N terms errs by at most about (N + 3) u max|value|.
        rounding_limit = (tolerance / 2) / (largest * FLOAT32_EPS) - 3
    leak_budget = tolerance / 2 if head.numerical else tolerance
    # beta is chosen for `target` positions, with a safety factor of e^2 on the leakage.
    beta = max(math.log(target * magnitude / leak_budget) + 2.0, 1.0)
    guaranteed = min(target, int(min(rounding_limit, 1e12)))
    return HeadScale(head.name, beta, max(guaranteed, 0), tolerance)
