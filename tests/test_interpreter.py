"""The interpreter (alta/interpreter.py, alta/evaluation.py): language semantics checked
against independent Python oracles.

Every test builds a small ALTA program, runs it with `alta.interpreter.run` on many
generated inputs (fixed seeds, so failures reproduce) and compares what it computes with
plain Python computing the same thing directly: Python's own operators, `sorted`, dict
look-ups, hand-written attention loops. docs/language.md (its "Semantics" section above all)
is the specification the oracles follow.
"""

from __future__ import annotations

import random
from textwrap import dedent, indent

import numpy as np
import pytest
from helpers import (
    assert_located,
    check,
    header,
    per_position,
    prog,
    random_word_inputs,
    vocab_line,
)

from alta.checker import check_source
from alta.errors import AltaError, AltaRuntimeError
from alta.interpreter import run

# ---- helpers --------------------------------------------------------------------------------

def line_of(source: str, needle: str) -> int:
    """1-based line number of the first line of (dedented) `source` containing `needle`."""
    lines = prog(source).splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def runs_of_0_to_4_layers(src: str, seed: int):
    """(layers, inputs, result): the program run on 20 random digit inputs with max_layers 0,
    1, ..., 4."""
    program = check(src)
    inputs = random_word_inputs(random.Random(seed), 20, 10)
    for layers in range(5):
        yield layers, inputs, run(program, inputs, max_layers=layers)


def nearest(x: float, values) -> float:
    """Nearest declared value (the oracles below avoid exact ties)."""
    best = min(values, key=lambda v: abs(v - x))
    assert sum(abs(abs(v - x) - abs(best - x)) < 1e-12 for v in values) == 1, "tie in oracle"
    return best


# ---- arithmetic and expressions versus Python's own operators -------------------------------

# Each of these is valid Python with the same meaning: the oracle is Python's eval.
NAMED_EXPRESSIONS = [
    "x + p", "x - p", "x * p", "-x + p", "x - -p", "+x - 3",
    "x // (p + 1)", "x % (p + 1)", "(x - 5) // (p + 1)", "(x - 5) % (p + 1)",
    "x // (-p - 1)", "x % (-p - 1)", "(x - 9) // (-p - 1)", "(x - 9) % (-p - 1)",
    "x ^ p", "x | p", "x & p", "x ^ p & 3 | 8", "x + p ^ 3", "x * 2 // 3 % 4",
    "min(x, p)", "max(x, p)", "min(x, p, 4)", "max(x - 7, 2 - p, -1)", "abs(x - p)",
    "abs(-x) * -1", "round(x / (p + 1))", "round((x - 5) / 2)", "round(x / 4 + p / 8)",
    "(x < p) + (x == p) * 2", "(x >= 5) ^ (p % 2 == 1)", "x - p * 2 if x > p else p - x * 3",
    "x if x % 2 == 0 else p if p % 3 == 0 else -7",
    "(x if p > 2 else -x) + (1 if x in {1, 3, 5, 7} else 0)", "100 if x not in {0, 9} else 200",
    "(x > 2 and p < 4) + (x == 0 or p == 0) + (not x > 4)",
    "(x > 2 and not (p > 3 or x == p)) * 5",
]


def assert_expressions_match_python(exprs, wrap: str, inputs, consts=None, name="t"):
    """y_k = WRAP(expr_k) (WRAP a format string) for each expression over x (the token) and p
    (the position), in one program; at every position of every input, each y_k must be what
    Python's eval of the same text gives. `consts` are constant tables, given to both."""
    consts = consts or {}
    lines = [header("y0", name=name).rstrip("\n"),
             *(f"const {n} = {v}" for n, v in consts.items()),
             "var x: cat 10 = token", "var p: cat 16 = position"]
    lines += [f"var y{k}: cat 1000 = 0" for k in range(len(exprs))]
    lines += ["mlp:"] + [f"    y{k} = {wrap.format(e)}" for k, e in enumerate(exprs)]
    program = check_source("\n".join(lines) + "\n", f"{name}.alta")
    result = run(program, inputs)
    for b, text in enumerate(inputs):
        for k, expr in enumerate(exprs):
            want = [eval(wrap.format(expr), {"x": int(t), "p": i, **consts})
                    for i, t in enumerate(text.split())]
            assert per_position(result, f"y{k}", b) == want, (expr, text)


def test_named_expressions_match_python_operators():
    inputs = random_word_inputs(random.Random(1), 40, 10, max_len=16)
    assert_expressions_match_python(NAMED_EXPRESSIONS, "({}) + 500", inputs)


class _ExprGen:
    """Random integer/boolean expressions whose ALTA and Python spellings coincide."""

    def __init__(self, rng: random.Random, names=("x", "p")) -> None:
        self.rng = rng
        self.names = list(names)

    def atom(self) -> str:
        return self.rng.choice([*self.names, str(self.rng.randrange(12))])

    def int_expr(self, depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.2:
            return self.atom()
        a, b = self.int_expr(depth - 1), self.int_expr(depth - 1)
        choice = rng.randrange(12)
        if choice == 0:
            return f"{a} + {b}"
        if choice == 1:
            return f"{a} - {b}" if rng.random() < 0.5 else f"({a}) - ({b})"
        if choice == 2:
            return f"({a}) * ({b})"
        if choice == 3:  # floor division, positive and negative divisors
            return f"({a}) // (abs({b}) + 1)" if rng.random() < 0.5 else \
                f"({a}) // (-abs({b}) - 1)"
        if choice == 4:
            return f"({a}) % (abs({b}) + 1)" if rng.random() < 0.5 else \
                f"({a}) % (-1 - abs({b}))"
        if choice == 5:
            return f"{a} ^ {b}"
        if choice == 6:
            return f"({a}) | ({b}) & {self.int_expr(depth - 1)}"
        if choice == 7:
            name = rng.choice(["min", "max"])
            extra = f", {self.int_expr(depth - 1)}" if rng.random() < 0.3 else ""
            return f"{name}({a}, {b}{extra})"
        if choice == 8:
            return f"abs({a}) - -{b}" if rng.random() < 0.5 else f"-({a})"
        if choice == 9:
            return f"({a} if {self.bool_expr(depth - 1)} else {b})"
        if choice == 10:
            return f"T[({a}) % 10]"
        return f"({self.bool_expr(depth - 1)})"

    def bool_expr(self, depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.4:
            if rng.random() < 0.2:
                members = ", ".join(str(rng.randrange(-3, 12)) for _ in range(3))
                return f"{self.int_expr(depth - 1)} {rng.choice(['in', 'not in'])} {{{members}}}"
            op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
            return f"{self.int_expr(depth - 1)} {op} {self.int_expr(depth - 1)}"
        choice = rng.randrange(3)
        if choice == 0:
            return f"{self.bool_expr(depth - 1)} and {self.bool_expr(depth - 1)}"
        if choice == 1:
            return f"{self.bool_expr(depth - 1)} or {self.bool_expr(depth - 1)}"
        return f"not {self.bool_expr(depth - 1)}"


@pytest.mark.parametrize("seed", range(4))
def test_random_expressions_match_python(seed):
    """Precedence, floor division/modulo signs, xor/or/and, min/max/abs, tables, if-else."""
    rng = random.Random(seed)
    gen = _ExprGen(rng)
    table = [rng.randrange(-20, 20) for _ in range(10)]
    exprs = [gen.int_expr(rng.randrange(1, 5)) for _ in range(40)]
    inputs = random_word_inputs(rng, 10, 10, max_len=16)
    assert_expressions_match_python(exprs, "({}) % 1000", inputs, {"T": table}, name="fuzz")


def test_numerical_variables_and_float_arithmetic():
    rng = random.Random(2)
    src = header("y") + prog("""
        var x: cat 10 = token
        var w: num {t / 4 for t in 0..9} = token / 4
        var y: cat 1000 = 0
        var z: cat 1000 = 0
        var v: num {t / 8 for t in 0..20} = 0
        mlp:
            y = round(w * 3 - x / 3 + 50)
            z = round(abs(w - 1.3) * 100)
            v = 2.25 - w / 2 if w >= 0.5 else w + 0.25
        """)
    program = check(src)
    inputs = random_word_inputs(rng, 30, 10)
    result = run(program, inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [round(x / 4 * 3 - x / 3 + 50) for x in xs]
        assert per_position(result, "z", b) == [round(abs(x / 4 - 1.3) * 100) for x in xs]
        want_v = [2.25 - x / 8 if x / 4 >= 0.5 else x / 4 + 0.25 for x in xs]
        assert np.allclose(per_position(result, "v", b), want_v)
        assert result.outputs[b] == " ".join(str(round(x / 4 * 3 - x / 3 + 50)) for x in xs)


def test_numerical_variable_reads_snap_so_repeated_steps_stay_exact():
    """Adding 0.1 thirty times drifts in floating point (3.0000000000000013), but every read
    of a numerical variable snaps to its nearest declared value, so the sum stays on the grid
    and the halting test `w == x * 3 / 10` holds after exactly 3x layers."""
    src = header("w", "halt when w == x * 3 / 10", name="steps") + prog("""
        var x: cat 10 = token
        var w: num {k / 10 for k in 0..27} = 0
        mlp:
            if w < x * 3 / 10:
                w = w + 0.1
        """)
    rng = random.Random(28)
    inputs = random_word_inputs(rng, 30, 10, max_len=4)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert result.layers[b] == 3 * max(xs)
        assert result.outputs[b] == " ".join(f"{x * 3 / 10:g}" for x in xs)
    assert result.halted.all()


def test_set_expressions_match_python_sets():
    """Sets built at run time from integers, | & - ^, len, in / not in: as Python's sets."""
    rng = random.Random(3)

    def int_expr():
        return rng.choice(["x", "p", "x + p", "x * 3 + p", str(rng.randrange(8)), "(x ^ p)"])

    def set_expr(depth):
        if depth <= 0 or rng.random() < 0.3:
            return "{" + ", ".join(f"({int_expr()}) % 8" for _ in range(rng.randint(1, 3))) + "}"
        return f"({set_expr(depth - 1)}) {rng.choice(['|', '&', '-', '^'])} ({set_expr(depth - 1)})"

    exprs = [set_expr(rng.randrange(1, 4)) for _ in range(30)]
    lines = ["program sets", vocab_line(10), "input words", "output n0", "max_layers 1",
             "var x: cat 10 = token", "var p: cat 16 = position"]
    for k in range(len(exprs)):
        lines += [f"var s{k}: set 8 = {{}}", f"var n{k}: cat 9 = 0", f"var m{k}: bool = false"]
    lines.append("mlp:")
    for k, e in enumerate(exprs):
        lines += [f"    s{k} = {e}", f"    n{k} = len({e})",
                  f"    m{k} = (x % 8) in {e} and not ((p % 8) not in {e})"]
    program = check_source("\n".join(lines) + "\n", "sets.alta")
    inputs = random_word_inputs(rng, 10, 10, max_len=16)
    result = run(program, inputs)
    for b, text in enumerate(inputs):
        for i, tok in enumerate(text.split()):
            env = {"x": int(tok), "p": i}
            for k, e in enumerate(exprs):
                want = eval(e, env)
                mask = int(result.final[f"s{k}"][b, i])
                assert {v for v in range(8) if (mask >> v) & 1} == want, (e, env)
                assert result.final[f"n{k}"][b, i] == len(want)
                assert bool(result.final[f"m{k}"][b, i]) == (
                    env["x"] % 8 in want and env["p"] % 8 in want)
    # Set-valued outputs print as {a,b,...}.
    assert result.outputs[0] == " ".join(str(len(eval(exprs[0], {"x": int(t), "p": i})))
                                         for i, t in enumerate(inputs[0].split()))


def test_num_type_with_float_set_literal():
    src = header("w") + prog("""
        var x: cat 10 = token
        var w: num {0, 0.5, 1} = 0
        mlp:
            w = x / 2 if x <= 2 else 1
        """)
    rng = random.Random(22)
    inputs = random_word_inputs(rng, 20, 10)
    result = run(check(src), inputs)
    for text, out in zip(inputs, result.outputs):
        assert out == " ".join(f"{(x / 2 if x <= 2 else 1):g}" for x in map(int, text.split()))


# ---- short-circuit evaluation protects reads of undefined heads -----------------------------

GUARDED = """
    program guarded
    {vocab}
    input words
    output a
    max_layers 1
    var x: cat 10 = token
    var first: bool = position == 0
    var a: cat 10 = 0
    var b: bool = false
    var c: bool = false
    var d: bool = false
    var e: cat 20 = 0
    var f: cat 10 = 0
    var g: cat 10 = 0
    head left = x at -1

    def left_or(default):
        if first:
            return default
        return left

    mlp:
        a = 0 if first else left
        if not first and left > x:
            b = true
        c = first or left == x
        d = (not first and left == 3) or x == 3
        if first:
            e = 19
        elif left + x > 9:
            e = left + x - 9
        else:
            e = 0
        f = left_or(x)
        let ok = not first
        if ok:
            g = left
"""


def test_short_circuit_guards_reads_of_undefined_heads():
    rng = random.Random(5)
    program = check(GUARDED.format(vocab=vocab_line(10)))
    inputs = random_word_inputs(rng, 50, 10, max_len=12)
    result = run(program, inputs)  # position 0 has no left neighbour: must not raise
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        lefts = [None] + xs[:-1]
        assert per_position(result, "a", b) == [0 if i == 0 else lefts[i] for i in range(len(xs))]
        assert per_position(result, "b", b) == [int(i > 0 and lefts[i] > x)
                                                for i, x in enumerate(xs)]
        assert per_position(result, "c", b) == [int(i == 0 or lefts[i] == x)
                                                for i, x in enumerate(xs)]
        assert per_position(result, "d", b) == [int((i > 0 and lefts[i] == 3) or x == 3)
                                                for i, x in enumerate(xs)]
        assert per_position(result, "e", b) == [
            19 if i == 0 else (lefts[i] + x - 9 if lefts[i] + x > 9 else 0)
            for i, x in enumerate(xs)]
        assert per_position(result, "f", b) == [x if i == 0 else lefts[i]
                                                for i, x in enumerate(xs)]
        assert per_position(result, "g", b) == [0 if i == 0 else lefts[i]
                                                for i, x in enumerate(xs)]


def test_unguarded_read_of_the_same_head_is_an_error():
    src = GUARDED.format(vocab=vocab_line(10)).replace("a = 0 if first else left",
                                                      "a = left")
    with pytest.raises(AltaRuntimeError, match="'left'") as info:
        run(check(src), ["3 4 5"])
    assert_located(info.value, src, "a = left", "left",
                   "reads head 'left', whose output is undefined here")


def test_short_circuit_guards_division_and_table_indices():
    """Short-circuit and masked branches also protect divisions and out-of-range indices."""
    src = header("a", name="guards") + prog("""
        const T = [7, 8, 9]
        var x: cat 10 = token
        var a: bool = false
        var b: bool = false
        var c: cat 20 = 0
        var d: cat 21 = 0
        var e: cat 20 = 0
        mlp:
            a = x == 0 or 10 // x > 2
            b = x != 0 and 10 % x == 0
            c = 19 if x == 0 else 10 // x
            if x < 3:
                d = T[x]
            elif x == 3:
                d = 0
            else:
                d = 20 // (x - 3)
            e = T[x] if x < 3 and T[x] != 8 else 0
        """)
    rng = random.Random(23)
    inputs = random_word_inputs(rng, 40, 10)
    result = run(check(src), inputs)
    t = [7, 8, 9]
    for b, text in enumerate(inputs):
        xs = [int(v) for v in text.split()]
        assert per_position(result, "a", b) == [int(x == 0 or 10 // x > 2) for x in xs]
        assert per_position(result, "b", b) == [int(x != 0 and 10 % x == 0) for x in xs]
        assert per_position(result, "c", b) == [19 if x == 0 else 10 // x for x in xs]
        assert per_position(result, "d", b) == [t[x] if x < 3 else 0 if x == 3 else 20 // (x - 3)
                                                for x in xs]
        assert per_position(result, "e", b) == [t[x] if x < 3 and t[x] != 8 else 0 for x in xs]


# ---- an `if` that assigns nothing still evaluates its condition -----------------------------

# `far` reads x 100 positions ahead: it selects nothing on these short inputs.
SILENT = prog("""
    vocab "0" "1"
    output x
    max_layers 1
    var x: cat 2 = token
    head far = x at 100
    mlp:
    {body}
""")


FAR_UNDEFINED = ("reads head 'far', whose output is undefined here (its attention selected no "
             "position, or several for a categorical head); at layer 1, position 0, input '0 1'")


@pytest.mark.parametrize("body, line, column", [
    pytest.param("""
        if far == 0:
            pass
    """, 7, 8, id="pass"),
    pytest.param("""
        if x == 1:
            pass
        elif far == 1:
            pass
        else:
            pass
    """, 9, 10, id="elif-pass"),
    pytest.param("""
        if far == 1:
            let a = 2
            let b = a + 1
    """, 7, 8, id="constant-lets"),
    pytest.param("""
        for k in 0..1:
            if far == k:
                let a = k
    """, 8, 12, id="loop-of-lets"),
])
def test_if_that_assigns_nothing_still_reads_its_condition(body, line, column):
    source = SILENT.replace("{body}", indent(dedent(body).strip("\n"), "    "))
    program = check_source(source, "t.alta")
    assert program.mlp, "the if was dropped"
    with pytest.raises(AltaRuntimeError) as info:
        run(program, ["0 1"])
    first = info.value.first
    assert (first.span.line, first.span.column) == (line, column)
    assert first.message == FAR_UNDEFINED
    assert str(info.value).startswith(f"t.alta:{line}:{column}: error: {FAR_UNDEFINED}\n")


# ---- enums ----------------------------------------------------------------------------------

def test_enums_in_state_halting_and_output_names():
    """An enum-typed variable steps through its members; output prints member names."""
    src = f"""
        program phases
        {vocab_line(10)}
        input words
        enum Phase {{Idle, Counting, Finished, Unused,}}
        output phase
        halt when phase == Finished
        var x: cat 10 = token
        var phase: cat Phase = Idle if token > 0 else Finished
        var count: cat 10 = 0
        mlp:
            if phase == Idle:
                phase = Counting
            elif phase == Counting:
                if count + 1 >= x:
                    phase = Finished
                count = count + 1
        """
    program = check(src)
    names = ["Idle", "Counting", "Finished", "Unused"]
    rng = random.Random(6)
    inputs = random_word_inputs(rng, 40, 10)
    for limit in (1, 3, 20):
        result = run(program, inputs, max_layers=limit)
        for b, text in enumerate(inputs):
            xs = [int(t) for t in text.split()]
            # Python simulation of the same state machine, layer by layer.
            phase = [0 if x > 0 else 2 for x in xs]
            count = [0] * len(xs)
            layers = 0
            while any(ph != 2 for ph in phase) and layers < limit:
                layers += 1
                for i, x in enumerate(xs):
                    if phase[i] == 0:
                        phase[i] = 1
                    elif phase[i] == 1:
                        if count[i] + 1 >= x:
                            phase[i] = 2
                        count[i] += 1
            assert result.layers[b] == layers
            assert bool(result.halted[b]) == all(ph == 2 for ph in phase)
            assert result.outputs[b] == " ".join(names[ph] for ph in phase)
            assert per_position(result, "count", b) == count


# ---- constant tables indexed at run time ----------------------------------------------------

def test_one_dimensional_tables_indexed_at_run_time():
    rng = random.Random(7)
    for _ in range(5):
        ints = [rng.randrange(0, 50) for _ in range(10)]
        bools = [rng.random() < 0.5 for _ in range(26)]
        floats = [rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in range(10)]
        bool_text = ", ".join("true" if v else "false" for v in bools)
        src = header("y") + prog(f"""
            const INTS = {ints}
            const BOOLS = [{bool_text}]
            const FLOATS = {floats}
            var x: cat 10 = token
            var p: cat 16 = position
            var y: cat 50 = 0
            var z: bool = false
            var w: num {{0, 0.25, 0.5, 1}} = 0
            var u: cat 100 = 0
            mlp:
                y = INTS[x]
                z = BOOLS[x + p]
                w = FLOATS[(x * p) % 10]
                u = INTS[INTS[x] % 10] + INTS[9 - x]
            """)
        inputs = random_word_inputs(rng, 10, 10, max_len=16)
        result = run(check(src), inputs)
        for b, text in enumerate(inputs):
            xs = [int(t) for t in text.split()]
            assert per_position(result, "y", b) == [ints[x] for x in xs]
            assert per_position(result, "z", b) == [int(bools[x + i]) for i, x in enumerate(xs)]
            assert per_position(result, "w", b) == [floats[(x * i) % 10] for i, x in enumerate(xs)]
            assert per_position(result, "u", b) == [ints[ints[x] % 10] + ints[9 - x] for x in xs]


def _grid_program(grid, expr: str) -> str:
    return header("y") + prog(f"""
        const GRID = {grid}
        var x: cat 10 = token
        var p: cat 16 = position
        var y: cat 100 = 0
        mlp:
            y = {expr}
        """)


def test_two_dimensional_table_with_constant_row():
    rng = random.Random(8)
    grid = [[rng.randrange(100) for _ in range(16)] for _ in range(10)]
    src = _grid_program(grid, "GRID[3][p] + 0 * x")
    inputs = random_word_inputs(rng, 20, 10, max_len=16)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        assert per_position(result, "y", b) == [grid[3][i] for i in range(len(text.split()))]
    # A row picked by an unrolled loop's constant, the column at run time.
    src = _grid_program(grid, "0").replace(
        "    y = 0", "    for r in 0..9:\n        if x == r:\n            y = GRID[r][p]")
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        assert per_position(result, "y", b) == [grid[int(t)][i]
                                                for i, t in enumerate(text.split())]


@pytest.mark.parametrize("expr, oracle", [
    ("GRID[x][p]", lambda g, x, p: g[x][p]),
    ("GRID[x][2]", lambda g, x, p: g[x][2]),
    ("(GRID[x])[p]", lambda g, x, p: g[x][p]),
])
def test_two_dimensional_table_with_run_time_row(expr, oracle):
    rng = random.Random(9)
    grid = [[rng.randrange(100) for _ in range(16)] for _ in range(10)]
    inputs = random_word_inputs(rng, 20, 10, max_len=16)
    result = run(check(_grid_program(grid, expr)), inputs)
    for b, text in enumerate(inputs):
        assert per_position(result, "y", b) == [oracle(grid, int(t), i)
                                                for i, t in enumerate(text.split())]


def test_three_dimensional_table_and_float_and_bool_indices():
    rng = random.Random(30)
    cube = [[[rng.randrange(100) for _ in range(4)] for _ in range(3)] for _ in range(2)]
    floats = [[0, 0.5, 1], [1, 1, 0.5]]
    src = header("y", name="cube") + prog(f"""
        const C = {cube}
        const F = {floats}
        var x: cat 10 = token
        var p: cat 16 = position
        var y: cat 100 = 0
        var w: num {{0, 0.5, 1}} = 0
        var z: cat 100 = 0
        mlp:
            y = C[x % 2][p % 3][x % 4]
            w = F[x % 2][p % 3]
            z = C[x > 4][1][p % 4] + [5, 6][x > 3]
        """)
    inputs = random_word_inputs(rng, 30, 10, max_len=16)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [cube[x % 2][i % 3][x % 4]
                                                for i, x in enumerate(xs)]
        assert per_position(result, "w", b) == [floats[x % 2][i % 3] for i, x in enumerate(xs)]
        assert per_position(result, "z", b) == [cube[x > 4][1][i % 4] + [5, 6][x > 3]
                                                for i, x in enumerate(xs)]


# ---- attention: selection, zero/several selected, padding, relative offsets -----------------

ATTENTION = """
    program attention
    {vocab}
    input words
    output p
    max_layers 1
    const KEYS = {keys}
    const QUERIES = {queries}
    const QSETS = {qsets}
    const MEMBERS = {members}

    def query_set(t):
        for t0 in 0..9:
            if t == t0:
                return QSETS[t0]
        return {{}}

    var p: cat 32 = position
    var k: cat 5 = KEYS[token]
    var q: cat 5 = QUERIES[token]
    var s: set 5 of MEMBERS = query_set(token)
    var nv: num {{0, 1, 2, 3}} = token % 4

    head eq = p where k == q
    head member = p where k in s
    head left = p at -1
    head right2 = p at 2
    head both = p at {{-1, 1}}
    head window = p at {{-2, -1, 0, 1, 2}}
    head eq_near = p where k == q at {{-3, -2, -1}}
    head everyone = p
    head mean_eq: num {{v / 6 for v in 0..18}} = nv where k == q
    head mean_in: num {{v / 6 for v in 0..18}} = nv where k in s
    head mean_near: num {{v / 6 for v in 0..18}} = nv at {{-1, 1}}
    head mean_wide: num {{v / 6 for v in 0..18}} = nv at {{-3, -2, -1, 0, 1, 2, 3}}
    head mean_all: num {{v / 6 for v in 0..18}} = nv
    head copy_left = nv at -1
"""


def _selected(keys_q, xs, i, rule, offsets):
    """Positions j selected by query position i (the oracle for one head)."""
    out = []
    for j in range(len(xs)):
        if offsets is not None and j - i not in offsets:
            continue
        if rule is not None and not rule(j, i):
            continue
        out.append(j)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_attention_selection_matches_oracle(seed):
    """Every head form against a direct loop over positions, on a batch of mixed lengths
    (padding is never selected); zero or several selected -> undefined (categorical), zero
    selected -> undefined (numerical); values taken from the state at the start of the layer."""
    rng = random.Random(100 + seed)
    keys = [rng.randrange(5) for _ in range(10)]
    queries = [rng.randrange(5) for _ in range(10)]
    qsets = [frozenset(rng.sample(range(5), rng.randint(0, 2))) for _ in range(10)]
    members = sorted(set(qsets) | {frozenset()}, key=lambda s: (len(s), sorted(s)))

    def show(s):
        return "{" + ", ".join(map(str, sorted(s))) + "}"

    src = ATTENTION.format(vocab=vocab_line(10), keys=keys, queries=queries,
                           qsets="[" + ", ".join(show(s) for s in qsets) + "]",
                           members="[" + ", ".join(show(s) for s in members) + "]")
    program = check(src)
    inputs = random_word_inputs(rng, 30, 10, min_len=1, max_len=14)
    result = run(program, inputs, trace=True)
    (record,) = result.trace
    heads = {
        "eq": (lambda xs: lambda j, i: keys[xs[j]] == queries[xs[i]], None),
        "member": (lambda xs: lambda j, i: keys[xs[j]] in qsets[xs[i]], None),
        "left": (None, {-1}),
        "right2": (None, {2}),
        "both": (None, {-1, 1}),
        "window": (None, {-2, -1, 0, 1, 2}),
        "eq_near": (lambda xs: lambda j, i: keys[xs[j]] == queries[xs[i]], {-3, -2, -1}),
        "everyone": (None, None),
    }
    numerical = {
        "mean_eq": heads["eq"],
        "mean_in": heads["member"],
        "mean_near": (None, {-1, 1}),
        "mean_wide": (None, {-3, -2, -1, 0, 1, 2, 3}),
        "mean_all": (None, None),
        "copy_left": (None, {-1}),
    }
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        n = len(xs)
        for name, (rule, offsets) in heads.items():
            for i in range(n):
                sel = _selected(keys, xs, i, rule(xs) if rule else None, offsets)
                undefined = bool(record.undefined[name][b, i])
                assert undefined == (len(sel) != 1), (name, text, i, sel)
                if len(sel) == 1:
                    assert record.after_attention[name][b, i] == sel[0], (name, text, i)
        for name, (rule, offsets) in numerical.items():
            for i in range(n):
                sel = _selected(keys, xs, i, rule(xs) if rule else None, offsets)
                assert bool(record.undefined[name][b, i]) == (not sel), (name, text, i)
                if sel:
                    mean = sum(xs[j] % 4 for j in sel) / len(sel)
                    assert record.after_attention[name][b, i] == pytest.approx(mean), \
                        (name, text, i)


def test_reading_a_mean_snaps_to_the_nearest_declared_value():
    """A numerical head's mean, read by the MLP, is its nearest declared value."""
    declared = [0, 0.3, 0.65, 1]  # midpoints 0.15, 0.475, 0.825 are never k/n for n <= 12
    src = header("y", name="snap") + prog("""
        var b: num {0, 1} = token % 2
        var one: bool = true
        head share: num {v / 100 for v in [0, 30, 65, 100]} = b where one == one
        head near: num {v / 100 for v in [0, 30, 65, 100]} = b at {-1, 0, 1}
        var y: cat 101 = 0
        var z: cat 101 = 0
        var h: num {0, 0.3, 0.65, 1} = 0
        mlp:
            y = round(share * 100)
            z = round(near * 100)
            h = near
        """)
    rng = random.Random(15)
    inputs = random_word_inputs(rng, 60, 10, max_len=12)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        bits = [int(t) % 2 for t in text.split()]
        share = nearest(sum(bits) / len(bits), declared)
        assert per_position(result, "y", b) == [round(share * 100)] * len(bits)
        near = []
        for i in range(len(bits)):
            window = bits[max(0, i - 1):i + 2]
            near.append(nearest(sum(window) / len(window), declared))
        assert per_position(result, "z", b) == [round(v * 100) for v in near]
        assert per_position(result, "h", b) == pytest.approx(near)


def test_heads_read_the_state_at_the_start_of_the_layer():
    """Shifting a value right one position per layer: after k layers position i holds the
    token at i - k (or the start marker); heads never see the MLP's writes of the same layer."""
    src = header("v", "max_layers 10", name="shift", extra=("<s>",),
                 framing='input "<s>" words') + prog("""
        var v: vocab = token
        head left = v at -1
        var start: bool = position == 0
        mlp:
            if not start:
                v = left
        """)
    for layers, inputs, result in runs_of_0_to_4_layers(src, seed=16):
        for b, text in enumerate(inputs):
            seq = ["<s>", *text.split()]
            want = [seq[max(i - layers, 0)] for i in range(len(seq))]
            assert result.outputs[b] == " ".join(want)
            assert result.layers[b] == layers


def test_snapping_ties_go_to_the_larger_declared_value():
    """docs/language.md, "Semantics": ties when snapping go to the larger declared value."""
    src = header("y", name="ties") + prog("""
        var b: num {0, 1} = token % 2
        head share: num {0, 0.5, 1} = b
        var y: cat 3 = 0
        mlp:
            y = round(share * 2)
        """)
    rng = random.Random(24)
    inputs = random_word_inputs(rng, 60, 10, max_len=8)
    result = run(check(src), inputs)
    for text, out in zip(inputs, result.outputs):
        bits = [int(t) % 2 for t in text.split()]
        mean = sum(bits) / len(bits)
        # Nearest of {0, 0.5, 1}; exactly 0.25 or 0.75 go up.
        snapped = 0.0 if mean < 0.25 else 0.5 if mean < 0.75 else 1.0
        assert out == " ".join([str(round(snapped * 2))] * len(bits)), text


def test_long_inputs_absolute_attention_and_counting():
    """General (N x N, chunked) attention on long, mixed-length inputs: a `key == query` head
    over absolute positions finds the left neighbour, and a numerical head counts (selector
    width) exactly."""
    n_max = 700
    src = f"""
        program long
        {vocab_line(10)}
        input words
        max_length N
        output left
        max_layers 1
        const N = {n_max}
        var x: cat 10 = token
        var pos: cat N + 1 = position + 1
        var prev: cat N + 1 = position
        var is_first: num {{0, 1}} = position == 0
        var seven: bool = token == 7
        var one: bool = true
        var left: cat 11 = 10
        var sevens: cat N + 1 = 0
        head left_x = x where pos == prev
        head first_share: num {{1 / n for n in 1..N}} = is_first where one == one
        mlp:
            if prev > 0:
                left = left_x
            sevens = round(1 / first_share)
        """
    rng = random.Random(25)
    inputs = random_word_inputs(rng, 24, 10, min_len=1, max_len=n_max)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "left", b) == [10] + xs[:-1]
        assert per_position(result, "sevens", b) == [len(xs)] * len(xs)


HEAD_OFFSET_FORMS = [
    "{-3, -2, -1}",
    "(-3..-1)",
    "-3..-1",
]


@pytest.mark.parametrize("offsets", HEAD_OFFSET_FORMS)
def test_head_types_constant_offsets_and_offset_ranges(offsets):
    src = f"""
        program heads
        {vocab_line(10, ("<s>",))}
        input "<s>" words
        enum Kind {{Low, High}}
        output t
        max_layers 1
        const OFF = -1
        var t: vocab = token
        var kind: cat Kind = High if token >= 5 and token != "<s>" else Low
        var start: bool = position == 0
        head prev_token: vocab = t at OFF
        head prev_kind: cat Kind = kind at OFF
        head prev_start: bool = start at OFF
        var high: num {{0, 1}} = 1 if token >= 5 and token != "<s>" else 0
        head behind: num {{v / 3 for v in 0..3}} = high at {offsets}
        var copied: vocab = token
        var k: cat Kind = Low
        var after_start: bool = false
        var highs: cat 4 = 0
        mlp:
            if not start:
                copied = prev_token
                k = prev_kind
                after_start = prev_start
            if position_ok:
                highs = round(behind * 3)
        var position_ok: bool = position >= 3
        """
    rng = random.Random(26)
    inputs = random_word_inputs(rng, 40, 10)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        seq = ["<s>", *text.split()]
        kinds = [int(t != "<s>" and int(t) >= 5) for t in seq]
        tokens = [10 if t == "<s>" else int(t) for t in seq]
        assert per_position(result, "copied", b) == [tokens[0]] + tokens[:-1]
        assert per_position(result, "k", b) == [0] + kinds[:-1]
        assert per_position(result, "after_start", b) == [0, 1] + [0] * (len(seq) - 2)
        assert per_position(result, "highs", b) == [
            sum(kinds[i - 3:i]) if i >= 3 else 0 for i in range(len(seq))]


def test_head_outputs_become_undefined_again_after_each_layer():
    """A head defined in layer 1 is recomputed in layer 2; where it then selects nothing,
    reading it is an error (it never keeps the previous layer's value)."""
    src = header("y", "max_layers 2", name="again") + prog("""
        var x: cat 10 = token
        var q: cat 10 = 0
        var c: cat 3 = 0
        var y: cat 10 = 9
        head h = x where x == q
        mlp:
            c = c + 1
            q = 5
            y = h
        """)
    program = check(src)
    # With a single 0 and a single 5 the head is defined in both layers.
    assert run(program, ["0 5 1", "5 0"]).outputs == ("5 5 5", "5 5")
    assert run(program, ["0 5 1"], max_layers=1).outputs == ("0 0 0",)
    with pytest.raises(AltaRuntimeError, match="'h'.*layer 2, position 0, input '0 1'") as info:
        run(program, ["0 5 1", "0 1"])
    assert_located(info.value, src, "y = h", "h", "reads head 'h'")


def test_trace_records_the_state_around_every_layer():
    """The trace's after-attention state is the state before the MLP (plus head outputs),
    and its after-MLP state is the next layer's starting state; checked against a Python
    simulation of a right-shift with a running sum."""
    src = header("s", "max_layers 4", name="traced") + prog("""
        var x: cat 10 = token
        var s: cat 100 = token
        var first: bool = position == 0
        head left = x at -1
        mlp:
            if not first:
                x = left
                s = s + left
        """)
    rng = random.Random(27)
    inputs = random_word_inputs(rng, 15, 10)
    result = run(check(src), inputs, trace=True)
    assert [r.layer for r in result.trace] == [1, 2, 3, 4]
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        n = len(xs)
        x, s = list(xs), list(xs)
        assert result.initial["x"][b, :n].tolist() == x
        for record in result.trace:
            assert record.after_attention["x"][b, :n].tolist() == x
            assert record.after_attention["s"][b, :n].tolist() == s
            assert record.undefined["left"][b, :n].tolist() == [True] + [False] * (n - 1)
            assert record.after_attention["left"][b, 1:n].tolist() == x[:-1]
            x, s = [x[0]] + x[:-1], [s[0]] + [s[i] + x[i - 1] for i in range(1, n)]
            assert record.after_mlp["x"][b, :n].tolist() == x
            assert record.after_mlp["s"][b, :n].tolist() == s
        assert result.outputs[b] == " ".join(map(str, s))


# ---- parallel assignment --------------------------------------------------------------------

def test_parallel_assignment_swaps_and_rotates():
    src = header("a", "max_layers 10", name="swap") + prog("""
        var a: cat 10 = token
        var b: cat 10 = (token * 3) % 10
        var c: cat 10 = (token + 7) % 10
        var d: cat 20 = 0
        var e: cat 20 = 0
        mlp:
            a = b
            b = a
            c = (c + a) % 10
            d = c + 1
            e = d
        """)
    for layers, inputs, result in runs_of_0_to_4_layers(src, seed=17):
        for bi, text in enumerate(inputs):
            for i, x in enumerate(int(t) for t in text.split()):
                a, b, c, d, e = x, (x * 3) % 10, (x + 7) % 10, 0, 0
                for _ in range(layers):
                    a, b, c, d, e = b, a, (c + a) % 10, c + 1, d  # Python's own parallel assignment
                got = [int(result.final[v][bi, i]) for v in "abcde"]
                assert got == [a, b, c, d, e], (text, i, layers)


@pytest.mark.parametrize("seed", range(4))
def test_random_multi_layer_programs_match_a_python_simulation(seed):
    """Random programs with relative and absolute heads and random MLP updates, run for
    several layers, against a direct Python simulation of docs/design.md's layer semantics
    (heads read the start-of-layer state, the MLP assigns in parallel, a conditional
    expression guards the reads of heads that are undefined near the start)."""
    rng = random.Random(200 + seed)
    o1, o2 = rng.randint(1, 3), rng.randint(1, 3)
    table = [rng.randrange(-20, 20) for _ in range(10)]
    everything = _ExprGen(rng, ("a", "b", "c", "pos", "h1", "h2", "h3"))
    safe = _ExprGen(rng, ("a", "b", "c", "pos", "h3"))
    e_guarded = everything.int_expr(3)
    e_other, e_b, e_c = safe.int_expr(3), safe.int_expr(3), everything.int_expr(2)
    layers = rng.randint(2, 5)
    src = header("a", f"max_layers {layers}", name="random_layers") + prog(f"""
        const T = {table}
        var a: cat 10 = token
        var b: cat 10 = (token * 3 + 1) % 10
        var c: cat 10 = 0
        var pos: cat 32 = position
        var half: cat 32 = position // 2
        head h1 = a at -{o1}
        head h2 = b at -{o2}
        head h3 = c where pos == half
        mlp:
            let g = pos >= {o1} and pos >= {o2}
            a = ({e_guarded}) % 10 if g else ({e_other}) % 10
            b = ({e_b}) % 10
            if g:
                c = ({e_c}) % 10
        """)
    inputs = random_word_inputs(rng, 12, 10, max_len=14)
    result = run(check(src), inputs)
    for bi, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        n = len(xs)
        a, b, c = list(xs), [(x * 3 + 1) % 10 for x in xs], [0] * n
        for _ in range(layers):
            new_a, new_b, new_c = list(a), list(b), list(c)
            for i in range(n):
                env = {"a": a[i], "b": b[i], "c": c[i], "pos": i, "T": table,
                       "h1": a[i - o1] if i >= o1 else None,
                       "h2": b[i - o2] if i >= o2 else None, "h3": c[i // 2]}
                g = i >= o1 and i >= o2
                new_a[i] = eval(f"({e_guarded}) % 10", env) if g else eval(f"({e_other}) % 10",
                                                                           env)
                new_b[i] = eval(f"({e_b}) % 10", env)
                if g:
                    new_c[i] = eval(f"({e_c}) % 10", env)
            a, b, c = new_a, new_b, new_c
        assert per_position(result, "a", bi) == a, (src, text)
        assert per_position(result, "b", bi) == b, (src, text)
        assert per_position(result, "c", bi) == c, (src, text)


# ---- halting and layer limits ---------------------------------------------------------------

COUNTER = header("c", "halt when c >= x", name="counter") + prog("""
    var x: cat 10 = token
    var c: cat 10 = 0
    var ticks: cat 50 = 0
    mlp:
        ticks = ticks + 1
        if c < x:
            c = c + 1
""")


def test_batches_halt_per_sequence():
    """Each sequence runs exactly max(tokens) layers; after it halts its state is frozen,
    even while longer sequences in the same batch keep running."""
    program = check(COUNTER)
    rng = random.Random(18)
    inputs = [""] + random_word_inputs(rng, 40, 10, max_len=8)
    result = run(program, inputs, trace=True)
    need = [max((int(t) for t in text.split()), default=0) for text in inputs]
    assert result.layers.tolist() == need
    assert result.halted.all()
    assert len(result.trace) == max(need)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert result.outputs[b] == " ".join(map(str, xs))
        # ticks counts the layers this sequence really ran.
        assert per_position(result, "ticks", b) == [need[b]] * len(xs)
    for record in result.trace:
        for b in range(len(inputs)):
            assert bool(record.active[b]) == (record.layer <= need[b])
            n = int(result.batch.lengths[b])
            want = min(record.layer, need[b])
            assert record.after_mlp["ticks"][b, :n].tolist() == [want] * n


def test_halted_sequences_are_not_evaluated_any_more():
    """A sequence that has halted is not run again: here every position would read an
    undefined head from layer 11 on, which only the long sequence (whose last position,
    holding 15, never reads) survives."""
    src = header("y", "halt when c >= x", name="frozen", tokens=16) + prog("""
        var x: cat 16 = token
        var c: cat 16 = 0
        var ticks: cat 20 = 0
        var y: cat 16 = 0
        head nxt = x at 1
        mlp:
            ticks = min(ticks + 1, 19)
            if c < x:
                c = c + 1
            if ticks >= 10 and x <= 9:
                y = nxt
        """)
    program = check(src)
    rng = random.Random(31)
    short = random_word_inputs(rng, 20, 10, max_len=6)          # halt within 9 layers
    long = [" ".join(random_word_inputs(rng, 1, 16, max_len=6) + ["15"]) for _ in range(5)]
    inputs = short[:10] + long + short[10:]
    result = run(program, inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert result.layers[b] == max(xs)
        want = [xs[i + 1] if x <= 9 and max(xs) > 10 else 0 for i, x in enumerate(xs)]
        assert per_position(result, "y", b) == want
    # The same sequences would fail if they kept running.
    again = src.replace("halt when c >= x", "max_layers 12")
    with pytest.raises(AltaRuntimeError, match="'nxt'.*at layer 11, position 0, input") as info:
        run(check(again), short[:1])
    assert_located(info.value, again, "y = nxt", "nxt", "reads head 'nxt'")


def test_max_layers_runs_at_most_n_layers_and_reports_not_halting():
    program = check(COUNTER)
    rng = random.Random(19)
    inputs = random_word_inputs(rng, 30, 10, max_len=6)
    need = [max(int(t) for t in text.split()) for text in inputs]
    for limit in range(10):
        result = run(program, inputs, max_layers=limit)
        assert result.layers.tolist() == [min(n, limit) for n in need]
        assert result.halted.tolist() == [n <= limit for n in need]
        assert result.not_halted == [b for b, n in enumerate(need) if n > limit]
        for b, text in enumerate(inputs):
            assert result.outputs[b] == " ".join(str(min(int(t), limit)) for t in text.split())
    # The limit declared in the program applies when the caller gives none.
    declared = check(COUNTER.replace("halt when", "max_layers 4\nhalt when"))
    result = run(declared, inputs)
    assert result.layers.tolist() == [min(n, 4) for n in need]
    assert result.halted.tolist() == [n <= 4 for n in need]


def test_without_halting_condition_runs_exactly_max_layers():
    src = header("c", "max_layers 6", name="fixed") + prog("""
        var c: cat 50 = 0
        mlp:
            c = c + 1
        """)
    program = check(src)
    rng = random.Random(20)
    inputs = random_word_inputs(rng, 10, 10)
    result = run(program, inputs)
    assert result.layers.tolist() == [6] * len(inputs)
    assert result.halted.all()
    assert all(out == " ".join(["6"] * len(t.split())) for t, out in zip(inputs, result.outputs))
    for limit in (0, 1, 3):
        assert run(program, inputs, max_layers=limit).layers.tolist() == [limit] * len(inputs)


def test_halting_checked_before_the_first_layer():
    program = check(COUNTER)
    result = run(program, ["0 0 0", "", "0"])
    assert result.layers.tolist() == [0, 0, 0]
    assert result.halted.all()
    assert result.outputs == ("0 0 0", "", "0")


# ---- sort_unique: a set-valued query counts the keys smaller than mine ----------------------

SORT_UNIQUE = """
    program sort_unique
    const N = {n}
    {vocab}
    input "<s>" words
    max_length N + 1
    output result where x != START
    halt when stage == 2

    const START = N
    # The keys smaller than each value, plus the start token's key (for selector width).
    const SMALLER = [{{v for v in 0..t - 1}} | {{START}} for t in 0..N - 1]

    def smaller_than(t):
        for k in 0..N - 1:
            if t == k:
                return SMALLER[k]
        return {{}}

    var x: cat N + 1 = token
    var lt: set N + 1 of (SMALLER + [{{}}]) = smaller_than(token)
    var is_start: num {{0, 1}} = token == START
    var rank: cat N + 1 = N
    var target: cat N + 1 = position - 1 if position >= 1 else N
    var stage: cat 3 = 0
    var result: cat N + 1 = 0

    # 1 / (1 + number of values smaller than mine): the start token and every smaller key.
    head share: num {{1 / n for n in 1..N + 1}} = is_start where x in lt
    head value_at_rank = x where rank == target

    mlp:
        stage = stage + 1
        if stage == 0 and x != START:
            rank = round(1 / share) - 1
        if stage == 1 and x != START:
            result = value_at_rank
"""


def test_sort_unique_with_set_valued_queries_matches_sorted():
    n = 16
    src = SORT_UNIQUE.format(n=n, vocab=vocab_line(n, ("<s>",)))
    program = check(src)
    rng = random.Random(21)
    inputs = [" ".join(map(str, rng.sample(range(n), rng.randint(0, n)))) for _ in range(80)]
    result = run(program, inputs)
    for text, out in zip(inputs, result.outputs):
        assert out == " ".join(str(v) for v in sorted(int(t) for t in text.split()))
    assert result.layers.tolist() == [2] * len(inputs)
    assert result.halted.all()


def test_sort_unique_duplicate_keys_make_the_rank_head_undefined():
    """With a repeated value two positions share a rank: the categorical head selects
    several positions and reading it is an error, not a silent pick."""
    n = 16
    src = SORT_UNIQUE.format(n=n, vocab=vocab_line(n, ("<s>",)))
    with pytest.raises(AltaRuntimeError, match="value_at_rank") as info:
        run(check(src), ["3 1 3"])
    assert_located(info.value, src, "result = value_at_rank", "value_at_rank",
                   "reads head 'value_at_rank'")


# ---- run-time errors ------------------------------------------------------------------------

UNDEFINED = header("y", "halt when c == 3 or x == 0", name="undefined") + prog("""
    var x: cat 10 = token
    var c: cat 10 = 0
    var y: cat 10 = 0
    head next = x at 1
    mlp:
        c = c + 1
        if c == 2 and x == 7:
            y = next
""")


def test_undefined_read_error_names_line_head_layer_position_and_input():
    program = check(UNDEFINED)
    # Sequence 0 halts before the first layer; in sequence 1 the last position holds a 7 and
    # has no right neighbour, read at layer 3 (when c, read before the MLP, is 2).
    inputs = ["0 0", "1 7 2 7", "7 1"]
    with pytest.raises(AltaRuntimeError) as info:
        run(program, inputs)
    message = str(info.value)
    line = line_of(UNDEFINED, "y = next")
    assert message.startswith(f"t.alta:{line}:")
    assert "'next'" in message
    assert "layer 3" in message
    assert "position 3" in message
    assert "'1 7 2 7'" in message
    assert "y = next" in message  # the source line is shown
    diag = info.value.first
    assert diag.span.line == line and diag.severity == "error"
    # Without the bad input nothing is undefined where it is read.
    result = run(program, ["0 0", "7 1", "1 2 3"])
    assert result.outputs == ("0 0", "1 0", "0 0 0")


@pytest.mark.parametrize("inputs, position, text", [
    (["5 5 5", "5 2 3 2"], 1, "5 2 3 2"),   # the key 2 appears twice: several selected
    (["5 5", "4 6"], 0, "4 6"),             # no key 3 at all: none selected
])
def test_undefined_from_zero_or_several_selected(inputs, position, text):
    src = header("y", name="several") + prog("""
        var x: cat 10 = token
        var three: cat 10 = 3
        var two: cat 10 = 2
        var y: cat 10 = 0
        head h = x where x == want
        var want: cat 10 = 2 if token != 4 else 3
        mlp:
            if x != 5:
                y = h
        """)
    with pytest.raises(AltaRuntimeError) as info:
        run(check(src), inputs)
    message = str(info.value)
    assert "'h'" in message and "layer 1" in message
    assert f"position {position}" in message and repr(text) in message
    assert_located(info.value, src, "y = h", "h", "reads head 'h'")


def test_numerical_head_with_nothing_selected_is_undefined():
    src = header("y", name="empty_mean") + prog("""
        var x: cat 10 = token
        var v: num {0, 1} = 1
        var nine: cat 10 = 9
        var y: cat 2 = 0
        head m: num {0, 0.5, 1} = v where x == nine
        mlp:
            y = round(m)
        """)
    program = check(src)
    assert run(program, ["9 1"]).outputs == ("1 1",)
    with pytest.raises(AltaRuntimeError, match="'m'.*position 0, input '1 2'") as info:
        run(program, ["9", "1 2"])
    assert_located(info.value, src, "y = round(m)", "m)", "reads head 'm'")


@pytest.mark.parametrize("statement, match, token", [
    ("y = 10 // (x - 3) + 10", "division by zero", "3"),
    ("y = 10 % (x - 3)", "division by zero", "3"),
    ("y = x * 20", "writes 180 to 'y'", "9"),
    ("y = [1, 2, 3][x]", "index out of range", "4"),
])
def test_run_time_errors_are_located(statement, match, token):
    src = header("y", name="errors") + prog(f"""
        var x: cat 10 = token
        var y: cat 100 = 0
        mlp:
            if x != 0:
                {statement}
        """)
    program = check(src)
    # Guarded by the `if`, x == 0 never reaches the statement; 1 and 2 are safe everywhere.
    assert run(program, ["0 1 2", "0"]).outputs == tuple(
        " ".join(str(eval(statement.split(" = ")[1], {"x": x}) if x else 0) for x in xs)
        for xs in ([0, 1, 2], [0]))
    with pytest.raises(AltaRuntimeError, match=match) as info:
        run(program, ["0 1 2", f"1 {token} 0"])
    message = str(info.value)
    assert "layer 1" in message and "position 1" in message and "'1 " + token + " 0'" in message
    assert message.startswith(f"t.alta:{line_of(src, statement)}:")


@pytest.mark.parametrize("clause", [
    "output x where 10 // x > 1\n        max_layers 1",
    "output x\n        halt when 10 // x > 1",
    "output x\n        halt when [1, 2, 3][x - 1] > 0",
], ids=["output-filter-division", "halt-division", "halt-table-index"])
def test_run_time_faults_in_halting_and_output_filters_are_located(clause):
    src = f"""
        program t
        {vocab_line(10)}
        input words
        {clause}
        var x: cat 10 = token
        """
    program = check(src)
    with pytest.raises(AltaRuntimeError, match="position 1, input '1 0'") as info:
        run(program, ["1 1", "1 0"])
    needle = "10 // x" if "//" in clause else "[1, 2, 3]"
    assert str(info.value).startswith(f"t.alta:{line_of(src, needle)}:")


def test_out_of_range_set_write_is_an_alta_error():
    src = header("s") + prog("""
        var x: cat 10 = token
        var s: set 8 = {}
        mlp:
            s = {x}
        """)
    program = check(src)
    assert run(program, ["1 7"]).outputs == ("{1} {7}",)
    with pytest.raises(AltaRuntimeError, match="'s'.*position 1, input '1 9'") as info:
        run(program, ["1 9"])
    assert_located(info.value, src, "s = {x}",
                   message="writes {9} to 's', not one of its declared sets")


@pytest.mark.parametrize("inputs", [["1 2", "1 2 3 4"], ["1 2 3 4", "1 2"]],
                         ids=["in-a-later-sequence", "in-the-first-sequence"])
def test_initialisation_error_is_located(inputs):
    src = header("q") + prog("""
        var q: cat 3 = position
        """)
    with pytest.raises(AltaRuntimeError, match="position 3, input '1 2 3 4'") as info:
        run(check(src), inputs)
    assert_located(info.value, src, "var q: cat 3 = position", "position",
                   "initialising 'q': writes 3 to 'q', outside 0..2 (cat 3)")


@pytest.mark.parametrize("statement", ["s = s | {70}", "y = 1 if s == {70} else 0"])
def test_constant_set_element_out_of_range_is_an_alta_error(statement):
    src = header("y") + prog(f"""
        var y: cat 2 = 0
        var s: set 8 = {{}}
        mlp:
            {statement}
        """)
    with pytest.raises(AltaError) as info:
        run(check(src), ["1 2"])
    assert_located(info.value, src, statement, "{70}",
                   "set {70} has elements outside 0..62, the range of set values")


# ---- negative categorical values: cat a..b ----------------------------------------------------

def ranged_source(lo: int, hi: int, lo2: int, hi2: int, shift: int, a: int, b: int) -> str:
    """Variables, a head, a table index and comparisons over `cat LO..HI` ranges."""
    return header("y where x != 10", extra=("<s>",), framing='input "<s>" words',
                  name="ranged") + prog(f"""
        var x: cat 11 = token
        var d: cat {lo}..{hi} = max({lo}, min({hi}, token + {shift}))
        var k: cat {lo - 3}..{lo + 7} = token - 3 + {lo} if token < 10 else {lo}
        var y: cat {lo2}..{hi2} = {lo2}
        head left = d at -1
        const TABLE = [v * v % 7 for v in {lo}..{hi}]
        mlp:
            if x != 10:
                if left < 0:
                    y = max({lo2}, min({hi2}, left * {a} + {b}))
                elif k >= {lo}:
                    y = max({lo2}, min({hi2}, TABLE[left - {lo}] - k))
        """)


def ranged_oracle(setting: tuple, text: str) -> str:
    lo, hi, lo2, hi2, shift, a, b = setting
    tokens = [10] + [int(w) for w in text.split()]
    out = []
    for i in range(1, len(tokens)):
        left = max(lo, min(hi, tokens[i - 1] + shift))
        k = tokens[i] - 3 + lo
        if left < 0:
            out.append(max(lo2, min(hi2, left * a + b)))
        elif k >= lo:
            out.append(max(lo2, min(hi2, (left * left % 7) - k)))
        else:
            out.append(lo2)
    return " ".join(map(str, out))


def test_negative_categorical_values_on_both_back_ends():
    """`cat LO..HI` variables (initialised from tokens, read by a head, compared, used as
    table indices less LO, written with clamped arithmetic) against Python on random
    ranges; the compiled model against the interpreter on some of them."""
    from alta.compiled import run_compiled
    from alta.compiler import compile_program

    rng = random.Random(31)
    for i in range(10):
        lo = rng.randint(-12, 0)
        lo2 = rng.randint(-20, 0)
        setting = (lo, lo + rng.randint(0, 14), lo2, lo2 + rng.randint(0, 30),
                   rng.randint(-12, 3), rng.randint(-3, 3), rng.randint(-5, 5))
        program = check_source(ranged_source(*setting), "ranged.alta")
        texts = random_word_inputs(rng, 25, 10, max_len=20)
        result = run(program, texts)
        assert list(result.outputs) == [ranged_oracle(setting, t) for t in texts], setting
        if i < 2:
            assert run_compiled(compile_program(program), texts).outputs == result.outputs


def test_a_write_outside_a_negative_range_names_the_range():
    program = check_source(header("y") + prog("""
        var x: cat 10 = token
        var y: cat -3..3 = 0
        mlp:
            y = x - 5
        """), "t.alta")
    with pytest.raises(AltaRuntimeError, match=r"outside -3\.\.3"):
        run(program, ["9"])
    assert run(program, ["2 8 5"]).outputs == ("-3 3 0",)
