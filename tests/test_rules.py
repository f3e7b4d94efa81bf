"""compiler/rules.py: the MLP body as rules, against the interpreter's `apply_mlp` driven
directly on hand-built states (helpers.py builds them):

1. rules are a faithful cover of the MLP, disjoint per written variable: every full
   assignment of what the MLP reads (and writes) is checked, rule by rule, against
   `apply_mlp`;
2. rule counts (minimisation) on the bundled programs and on if/elif chains;
3. out-of-range writes on some path are located compile errors naming the path;
4. an `if` that assigns nothing adds no rule (only a fault-detector read).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    ALL,
    INLINE,
    Assignments,
    assert_located,
    compiled_program,
    enumerate_assignments,
    interpreter_mlp,
    interpreter_state,
    is_head,
    load,
    mlp_names,
    prog,
    values_of,
)

from alta import ir
from alta.checker import check_source
from alta.compiler import compile_program
from alta.compiler.rules import minimise, mlp_rules
from alta.compiler.values import reachable_values
from alta.errors import AltaError, AltaRuntimeError
from alta.interpreter import run
from alta.semantics import set_to_bits

# ---- 1. rules are a faithful, disjoint cover of the MLP -------------------------------------

def firing(program: ir.Program, rules, a: Assignments) -> np.ndarray:
    """(rules, batch): whether every atom of the rule holds on the assignment."""
    positions = {n: {v: k for k, v in enumerate(values_of(program.type_of(n)))}
                 for n in a.names}
    out = np.ones((len(rules), a.size), bool)
    for r, rule in enumerate(rules):
        for atom in rule.atoms:
            assert atom.name in a.index, (atom.name, "is not read or written by the MLP")
            where = positions[atom.name]
            assert atom.values and all(v in where for v in atom.values), atom
            allowed = np.zeros(len(where), bool)
            allowed[[where[v] for v in atom.values]] = True
            out[r] &= allowed[a.index[atom.name]]
    return out


def apply_rules(program: ir.Program, rules, a: Assignments, fire: np.ndarray) -> dict:
    """The state after the firing rules' writes: per variable the MLP touches, the index of
    its value in its domain. A rule removes its old value (which must be the state) and adds
    its new one; a guarded write's set rule only adds and its clear unit only removes, so
    wherever one of those fires the other must too."""
    after = {n: a.index[n].copy() for n in a.names if n in program.variable_index}
    added = {n: np.zeros(len(v), bool) for n, v in after.items()}
    removed = {n: np.zeros(len(v), bool) for n, v in after.items()}
    for r, rule in enumerate(rules):
        rows = fire[r]
        if not rows.any():
            continue
        for w in rule.writes:
            dom = values_of(program.type_of(w.variable))
            assert w.old != w.new or w.old is None, rule
            if w.old is not None:
                assert np.all(a.index[w.variable][rows] == dom.index(w.old)), \
                    (rule, "old value is not the state")
                removed[w.variable] |= rows
            if w.new is not None:
                after[w.variable][rows] = dom.index(w.new)
                added[w.variable] |= rows
    for name in after:
        assert np.array_equal(added[name], removed[name]), (name, "a value added but none "
                                                                   "removed, or the reverse")
    return after


def assert_matches_interpreter(program, a: Assignments, after: dict, got: dict) -> None:
    for name, index in after.items():
        type_ = program.type_of(name)
        dom = values_of(type_)
        have = got[name][:, 0]
        if isinstance(type_, ir.Numerical):
            want = np.asarray(dom, dtype=np.float64)[index]
            bad = ~np.isclose(want, have, rtol=1e-9, atol=1e-12)
        elif isinstance(type_, ir.SetValued):
            want = np.array([set_to_bits(v) for v in dom], dtype=np.int64)[index]
            bad = want != have
        else:
            want = index
            bad = want != have
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            shown = {n: a.value(n, b) for n in a.names}
            raise AssertionError(f"{program.name}: '{name}' after the MLP on {shown}: rules "
                                 f"give {dom[index[b]]}, interpreter {have[b]}")
    state = interpreter_state(program, a)
    for var in program.variables:  # nothing else changes
        if var.name not in after:
            assert np.array_equal(got[var.name], state[var.name]), var.name


@pytest.mark.parametrize("name", ALL)
def test_rules_are_a_faithful_disjoint_cover(name):
    program = load(name)
    rng = np.random.default_rng(0)
    domains = reachable_values(program)
    raw = mlp_rules(program, domains)
    minimised = minimise(program, raw, domains)
    assert compiled_program(name).rules.mlp == tuple(minimised)
    for jitter in (0.0, 0.24):  # exact values, then numerical heads anywhere in their bucket
        a = enumerate_assignments(program, rng, jitter)
        got = interpreter_mlp(program, a)
        results = []
        for rules in (minimised, raw):
            fire = firing(program, rules, a)
            # At most one rule adds a value to a variable and at most one removes one; rules
            # for different variables may fire together.
            for var in {w.variable for r in rules for w in r.writes}:
                for side in ("old", "new"):
                    writers = [r for r, rule in enumerate(rules) if any(
                        w.variable == var and getattr(w, side) is not None for w in rule.writes)]
                    counts = fire[writers].sum(axis=0)
                    assert counts.max(initial=0) <= 1, \
                        f"{int((counts > 1).sum())} assignments fire several rules on {var}"
            results.append(apply_rules(program, rules, a, fire))
            assert_matches_interpreter(program, a, results[-1], got)
        for var in results[0]:  # minimised and unminimised rules agree everywhere
            assert np.array_equal(results[0][var], results[1][var]), var


def test_every_inline_program_reads_what_it_should():
    """The enumeration above covers each kind of value the brief asks for."""
    kinds = set()
    for name in INLINE:
        program = load(name)
        for n in mlp_names(program):
            t = program.type_of(n)
            kinds.add((type(t).__name__, is_head(program, n)))
    assert kinds >= {("Categorical", False), ("Categorical", True), ("Numerical", False),
                     ("Numerical", True), ("SetValued", False)}


# ---- 2. rule counts -------------------------------------------------------------------------

def test_sequential_parity_needs_at_most_seven_units():
    for name in ("parity", "parity_absolute"):
        report = compiled_program(name).report
        assert report.rules <= 3 and report.reset_units == 4
        assert report.rules + report.reset_units <= 7
        # the fault detector: one rule per head read, one reset per selection head
        assert report.fault_rules == report.fault_resets == 2
        assert report.mlp_widths[2] == (report.rules + report.reset_units + report.fault_rules
                                        + report.fault_resets)


def test_sum_mod_2_parity_is_far_below_the_reference():
    report = compiled_program("parity_sum_mod_2").report
    assert report.unminimised_rules >= 100  # one per count: minimisation does the work
    assert report.rules <= 4  # the reference needs 200


def test_if_elif_chain_writing_the_same_thing_is_one_rule():
    program = load("chain_same")
    rules = compiled_program("chain_same").rules.mlp
    assert len(rules) == 1
    (rule,) = rules
    assert [(a.name, set(a.values)) for a in rule.atoms] == [("y", {0})]  # x dropped
    assert [(w.variable, w.old, w.new) for w in rule.writes] == [("y", 0, 1)]
    assert len(mlp_rules(program, reachable_values(program))) == 8  # one per branch


def test_atoms_merge_across_values_and_nested_branches():
    rules = compiled_program("chain_some").rules.mlp
    assert len(rules) == 1
    (rule,) = rules
    assert {a.name: set(a.values) for a in rule.atoms} == {"x": {0, 2, 5, 7}, "y": {0}}


def test_writes_with_many_values_are_guarded():
    """'s' in `regions` takes 100 paths in its first region: a rule per path and 2 x 19
    clear units instead of 100 x 19 forked rules (the test above checks the result)."""
    rules = compiled_program("regions").rules.mlp
    writes = [w for r in rules for w in r.writes if w.variable == "s"]
    assert any(w.old is None for w in writes) and any(w.new is None for w in writes)
    assert all(w.old is not None for r in rules for w in r.writes if w.variable == "phase")
    assert len(writes) < 300


# ---- 3. out-of-range writes are located compile errors --------------------------------------

_BASE = """\
program t
vocab "0" "1" "2" "3"
input words
output y
max_layers 1
var x: cat 4 = token
var y: cat 4 = 0
var v: num {0, 1} = token % 2
var w: num {0, 1} = 0
var s: set 3 of [{}, {0}, {1, 2}] = {}
head left = x at -1
"""


BAD_WRITES = [
    # (body, the line's text, the variable, a piece of the path description)
    ("mlp:\n    if x > 1:\n        y = x + 1\n", "y = x + 1", "'y'", "x = 3"),
    ("def f(a):\n    return a + 2\nmlp:\n    if x != 0:\n        y = f(x)\n",
     "y = f(x)", "'y'", "x = 2"),
    ("mlp:\n    if x == 2:\n        s = {x % 3}\n", "s = {x % 3}", "'s'", "x = 2"),
    ("mlp:\n    w = v / 2\n", "w = v / 2", "'w'", "v = 1"),
    ("mlp:\n    if left == 3:\n        y = left + x\n", "y = left + x", "'y'", "left = 3"),
    ("mlp:\n    let t = x * 2\n    if t > 2:\n        y = t - 1\n", "y = t - 1", "'y'", "x = 3"),
]


@pytest.mark.parametrize("body, text, variable, path", BAD_WRITES)
def test_out_of_range_write_is_a_located_compile_error(body, text, variable, path):
    source = _BASE + body
    program = check_source(source, "t.alta")  # the checker cannot see it: run-time values
    line = next(i for i, ln in enumerate(source.splitlines(), 1) if text in ln)
    with pytest.raises(AltaError) as err:
        compile_program(program)
    diagnostic = err.value.first
    assert diagnostic.span is not None and diagnostic.span.line == line, str(err.value)
    assert variable in diagnostic.message and "on the path where" in diagnostic.message
    assert path in diagnostic.message, diagnostic.message
    assert f"t.alta:{line}:" in str(err.value)


def test_out_of_range_write_overwritten_later_on_the_path_is_still_an_error():
    source = _BASE + "mlp:\n    y = x + 1\n    if x == 3:\n        y = 0\n"
    program = check_source(source, "t.alta")
    with pytest.raises(AltaError) as err:
        compile_program(program)
    assert err.value.first.span.line == source.splitlines().index("    y = x + 1") + 1
    assert "x = 3" in err.value.first.message


def test_overwritten_out_of_range_write_is_a_run_time_error_in_the_interpreter():
    """The oracle for the test above: the interpreter rejects the same program's input."""
    from alta.errors import AltaRuntimeError
    from alta.interpreter import run

    source = _BASE + "mlp:\n    y = x + 1\n    if x == 3:\n        y = 0\n"
    program = check_source(source, "t.alta")
    assert run(program, ["0 1 2"]).outputs == ("1 2 3",)
    with pytest.raises(AltaRuntimeError, match="writes 4 to 'y'") as info:
        run(program, ["3"])
    assert_located(info.value, source, "y = x + 1", message="at layer 1, position 0, input '3'")


# ---- 4. an `if` that assigns nothing --------------------------------------------------------

FLIP = prog("""
    vocab "0" "1" "<s>"
    input "<s>" words
    output x where p > 0
    max_layers 1
    max_length 20
    var x: cat 3 = token
    var p: cat 20 = position
    head left = x at -1
    mlp:
        x = 1 - x if x < 2 else 2
""")


def test_if_that_assigns_nothing_changes_no_value_and_no_rule():
    """Where its condition is defined, an if that assigns nothing is a no-op on both back
    ends: the same outputs as without it (oracle: every bit flipped) and the same rules."""
    guarded = FLIP + ("    if p > 0 and left == 1:\n        pass\n"
                      "    if x == 0:\n        let a = 3\n")
    unguarded = FLIP + "    if left == 1:\n        pass\n"
    inputs = ["0 1 1", "1", "", "0 0 0 1"]
    want = [" ".join(str(1 - int(b)) for b in text.split()) for text in inputs]
    plain, empty = (check_source(s, "t.alta") for s in (FLIP, guarded))
    assert list(run(plain, inputs).outputs) == list(run(empty, inputs).outputs) == want
    rules = [compile_program(p).rules for p in (plain, empty)]
    assert (rules[0].mlp, rules[0].halting) == (rules[1].mlp, rules[1].halting)
    # ... but the compiled fault detector checks the condition's read of `left`
    assert not rules[0].faults and rules[1].faults
    # without the guard, position 0 (the start token) reads `left`, which selects nothing,
    # and both back ends say so
    program = check_source(unguarded, "t.alta")
    with pytest.raises(AltaRuntimeError, match=r"reads head 'left'.* at layer 1, position 0"):
        run(program, inputs)
    from alta.compiled import run_compiled

    with pytest.raises(AltaRuntimeError, match=r"reads head 'left'.* at layer 1, position 0"):
        run_compiled(compile_program(program), inputs)
