"""The checker (alta/checker.py): bad programs fail with a located `AltaError` that says
what is wrong, warnings are not errors, valid programs are accepted, and what it evaluates at
compile time (constants, comprehensions, helper functions, unrolled loops, let scoping) means
what Python means.

The error cases are a table, tests/data/checker_errors.toml: a small program, the distinctive
part of its message and the exact line and column the error points at (most start from
`helpers.BASE`, a valid four-line program, with the bad part from line 5 on). Cases marked
xfail describe the behaviour we want where the checker currently gets it wrong (wrong wording,
wrong place, or a Python exception instead of an `AltaError`); `strict=True` makes them fail
loudly once fixed, so the mark gets removed. Compile-time evaluation is checked by running the
checked program with the interpreter on generated inputs against Python computing the same
thing.
"""

from __future__ import annotations

import random

import pytest
from helpers import (
    BASE,
    Case,
    assert_rejected_with_a_located_message,
    base,
    case_params,
    check,
    check_error,
    header,
    load_cases,
    per_position,
    prog,
    random_word_inputs,
)

from alta import ir
from alta.checker import check_source
from alta.interpreter import run

# ---- bad programs ---------------------------------------------------------------------------

CASES = load_cases("checker")  # tests/data/checker_errors.toml


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_program_is_rejected_with_a_located_message(case: Case):
    assert_rejected_with_a_located_message(case)


# ---- warnings are not errors ----------------------------------------------------------------

def test_unused_variables_and_heads_are_warnings_not_errors():
    program = check_source(prog("""
        vocab "0" "1"
        output x at last
        max_layers 1
        var x: cat 2 = token
        var spare: cat 3 = 0
        head peek = x at -1
        mlp:
            x = 1 - x
        """), "ok.alta")
    found = {(w.span.line, w.message) for w in program.warnings}
    assert all(w.severity == "warning" for w in program.warnings)
    assert found == {(5, "variable 'spare' is never read"),
                     (6, "head 'peek' is never read by the MLP")}
    assert program.warnings[0].format().startswith("ok.alta:5:1: warning: ")


def test_comparison_that_never_holds_warns_in_generic_code():
    # Written as a literal it is an error (cases "mlp-compare-value-outside-range" and
    # "halt-on-value-outside-range"); from a loop variable or a helper's argument, code that is
    # generic by construction, only a warning.
    program = check_source(base("""
        def is_x(b):
            return x == b
        mlp:
            for k in 0..2:
                if x == k:
                    x = 0
            if is_x(5):
                x = 1
        """), "ok.alta")
    found = [(w.span.line, w.span.column, w.message) for w in program.warnings]
    generic = ", so this comparison is decided in advance (here, in code unrolled or inlined " \
        "at compile time)"
    assert found == [(9, 17, "2 is not a value of 'x' (cat 2)" + generic),
                     (6, 17, "5 is not a value of 'x' (cat 2)" + generic)]


# ---- valid programs the checker wrongly rejects ---------------------------------------------

@pytest.mark.parametrize("source", [
    pytest.param(base("""
        var f: num {0, 0.5, 1} = 0
        mlp:
            x = round(f)
        """), id="numerical-type-as-set-literal-with-floats"),
    pytest.param(base("""
        const T = [[1, 0], [0, 1]]
        mlp:
            x = T[x][x]
        """), id="two-dimensional-table-indexed-at-run-time"),
    pytest.param(base("""
        var f: num [0, 0.5, 1] = 0
        const T = [[1, 0], [0, 1]]
        mlp:
            x = T[0][x]
            f = 0.5
        """), id="numerical-type-as-list-and-constant-first-index"),
])
def test_valid_program_is_accepted(source: str):
    check_source(source, "ok.alta")


def test_uncalled_helper_is_a_warning():
    # Helpers are checked where they are inlined; one nobody calls is flagged, not ignored.
    program = check_source(base("""
        def f(a):
            return a + nothing
        """), "ok.alta")
    [warning] = [w for w in program.warnings if "helper" in w.message]
    assert "'f' is never called" in warning.message and warning.span.line == 5


# ---- enums may be declared after the constants that use them --------------------------------

def test_enum_declared_after_a_constant_that_uses_it():
    source = prog("""
        vocab "0" "1" "2"
        output phase
        max_layers 1
        const START = [LOW, HIGH, HIGH]      # per token
        const LAST = max(START)
        var phase: cat Level = START[0] if token == "0" else LAST
        enum Level {LOW, HIGH}
    """)
    program = check_source(source, "t.alta")
    assert program.variable("phase").type == ir.Categorical(2, ("LOW", "HIGH"))
    assert run(program, ["0 1 2 0"]).outputs == ("LOW HIGH HIGH LOW",)


def test_constant_used_before_its_declaration_says_so():
    source = BASE + prog("""
        const A = B + 1
        const B = 2
    """)
    assert check_error(source) == (5, 11, "constant 'B' is used before its declaration on "
                                          "line 6: a constant may only use constants declared "
                                          "before it")


# ---- a comparison that can never hold is an error wherever it is written --------------------

NEVER = "2 is not a value of 'x' (cat 2), so this comparison is decided in advance"


@pytest.mark.parametrize("source, line, column", [
    pytest.param(prog("""
        vocab "0" "1"
        output x where x == 2
        max_layers 1
        var x: cat 2 = token
    """), 2, 21, id="output-filter"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        halt when x != 2
        var x: cat 2 = token
    """), 3, 16, id="halting"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        max_layers 1
        var x: cat 2 = token
        mlp:
            if x == 2:
                x = 0
    """), 6, 13, id="mlp"),
    pytest.param(prog("""
        vocab "0" "1"
        output y
        max_layers 1
        var x: cat 2 = token
        var y: bool = 0
        mlp:
            y = 2 == x
    """), 7, 9, id="mlp-value-on-the-left"),
])
def test_comparison_that_never_holds_is_an_error_everywhere(source, line, column):
    assert check_error(source) == (line, column, NEVER)


# ---- tokens and enum members are not interchangeable ----------------------------------------

LABELS = prog("""
    vocab "a" "b"
    output t
    max_layers 1
    enum Color {RED, GREEN}
    enum Size {SMALL, LARGE}
    var t: vocab = token
    var c: cat Color = RED
""")


@pytest.mark.parametrize("body, line, column, message", [
    ('mlp:\n    c = "a"\n', 9, 9,
     "type error: \"a\" is a token (vocab), but 'c' holds members of enum Color"),
    ('mlp:\n    c = GREEN if t == "a" else "b"\n', 9, 32,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
    ('var d: cat Color = "b"\n', 8, 20,
     "type error: \"b\" is a token (vocab), but 'd' holds members of enum Color"),
    ("mlp:\n    t = GREEN\n", 9, 9,
     "type error: 'GREEN' is a member of enum Color, but 't' holds tokens (vocab)"),
    ("mlp:\n    c = LARGE\n", 9, 9,
     "type error: 'LARGE' is a member of enum Size, but 'c' holds members of enum Color"),
    ('mlp:\n    if c == "b":\n        t = "a"\n', 9, 13,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
])
def test_token_where_an_enum_member_belongs_is_a_type_error(body, line, column, message):
    assert check_error(LABELS + body) == (line, column, message)


def test_tokens_and_members_where_they_belong_are_fine():
    # Only values written as labels are checked: reads are integers like any categorical
    # value, so copying one categorical variable into another is not a label error.
    program = check_source(LABELS + prog("""
        var n: cat 5 = token            # a plain categorical may hold token ids
        var d: cat Color = token
        mlp:
            c = GREEN if t == "b" else RED
            t = "a" if c == GREEN else t
            n = "b"
            d = t
    """), "t.alta")
    # parallel assignment: `c == GREEN` reads c as it was before the MLP (RED), so t stays
    assert run(program, ["a b b"]).outputs == ("a b b",)


# ---- compile-time evaluation: comprehensions, constants, helpers, unrolled loops, lets ------

def test_comprehensions_ranges_and_constant_folding():
    src = header("a", tokens=20) + prog("""
        const N = 20
        const SQUARES = [v * v for v in 0..N - 1]
        const ODD_CUBES = [v * v * v for v in 0..N - 1 if v % 2 == 1]
        const PAIRS = [(v, (v * 7 + 3) % 11) for v in 0..N - 1]
        const SWAPPED = [b * 100 + a for a, b in PAIRS if a != b]
        const EVENS = {v for v in 0..N - 1 if v % 2 == 0}
        const GRID = [[r * c for c in 0..4] for r in 0..3]
        const JOINED = [len(ODD_CUBES), len(EVENS), min(SQUARES), max(SWAPPED)] + [-1, -2]
        const TOTAL = len(PAIRS) * 2 - GRID[3][4] + JOINED[1]
        var x: cat N = token
        var a: cat 400 = 0
        var b: cat 8000 = 0
        var c: cat 2000 = 0
        var d: bool = false
        var e: cat 2000 = 0
        var f: cat 5 = 0
        mlp:
            a = SQUARES[x]
            b = ODD_CUBES[x // 2]
            c = SWAPPED[x % len(SWAPPED)]
            d = x in EVENS
            e = JOINED[x % 4] + TOTAL
            f = GRID[2][x % 5] % 5
        """)
    n = 20
    squares = [v * v for v in range(n)]
    odd_cubes = [v ** 3 for v in range(n) if v % 2 == 1]
    pairs = [(v, (v * 7 + 3) % 11) for v in range(n)]
    swapped = [b * 100 + a for a, b in pairs if a != b]
    evens = {v for v in range(n) if v % 2 == 0}
    grid = [[r * c for c in range(5)] for r in range(4)]
    joined = [len(odd_cubes), len(evens), min(squares), max(swapped), -1, -2]
    total = len(pairs) * 2 - grid[3][4] + joined[1]
    rng = random.Random(10)
    inputs = random_word_inputs(rng, 30, n, max_len=12)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "a", b) == [squares[x] for x in xs]
        assert per_position(result, "b", b) == [odd_cubes[x // 2] for x in xs]
        assert per_position(result, "c", b) == [swapped[x % len(swapped)] for x in xs]
        assert per_position(result, "d", b) == [int(x in evens) for x in xs]
        assert per_position(result, "e", b) == [joined[x % 4] + total for x in xs]
        assert per_position(result, "f", b) == [grid[2][x % 5] % 5 for x in xs]



def nested_source(m: int, r: int) -> str:
    """A program whose tables come from nested comprehensions with modulus M, residue R."""
    return header("a", tokens=10) + prog(f"""
        const M = {m}
        const R = {r}
        const PAIRS = [(a, b) for a in 0..9 if a % M != R for b in a..9 if (a * b) % M == R]
        const COUNTS = [len([1 for a in 0..x for b, c in PAIRS if b == a and c >= x])
                        for x in 0..9]
        const SUMS = {{a + b for a in 0..4 for b in 0..a if a != b}}
        const FIRST = [p for p, q in PAIRS] + [0]
        var x: cat 10 = token
        var a: cat 100 = 0
        var s: bool = 0
        var f: cat 10 = 0
        mlp:
            a = COUNTS[x]
            s = x in SUMS
            f = FIRST[x % len(FIRST)]
        """)


def nested_oracle(m: int, r: int, x: int) -> tuple[int, int, int]:
    """Python's comprehensions computing what nested_source's MLP writes for token x."""
    pairs = [(a, b) for a in range(10) if a % m != r for b in range(a, 10) if (a * b) % m == r]
    counts = [len([1 for a in range(x0 + 1) for b, c in pairs if b == a and c >= x0])
              for x0 in range(10)]
    sums = {a + b for a in range(5) for b in range(a + 1) if a != b}
    first = [p for p, q in pairs] + [0]
    return counts[x], int(x in sums), first[x % len(first)]


def test_nested_comprehensions_mean_what_pythons_mean_on_both_back_ends():
    rng = random.Random(12)
    settings = [(rng.randint(1, 6), rng.randint(0, 3)) for _ in range(12)]
    for i, (m, r) in enumerate(settings):
        program = check(nested_source(m, r))
        inputs = random_word_inputs(rng, 20, 10, max_len=12)
        result = run(program, inputs)
        for b, text in enumerate(inputs):
            want = [nested_oracle(m, r, int(t)) for t in text.split()]
            got = zip(*(per_position(result, name, b) for name in "asf"))
            assert list(got) == want, (m, r, text)
        if i < 1:  # the compiled model reads the same tables
            from alta.compiled import run_compiled
            from alta.compiler import compile_program

            compiled = run_compiled(compile_program(program), inputs)
            assert compiled.outputs == result.outputs

def test_helper_functions_with_early_returns_and_loops():
    rng = random.Random(11)
    pairs = [(a, rng.randrange(7)) for a in range(20) if rng.random() < 0.6]
    src = header("y", name="helpers", tokens=20) + prog(f"""
        const PAIRS = {pairs}
        var x: cat 20 = token
        var p: cat 20 = position
        var y: cat 100 = 0
        var z: cat 100 = 0
        var w: cat 100 = 0

        def first_divisor(n):
            for d in 2..9:
                if n % d == 0:
                    return d
            return 0

        def classify(n, m):
            let s = n + m
            if s > 25:
                return 1
            elif s > 12:
                return first_divisor(s) + 2
            else:
                for k, v in PAIRS:
                    if k == n:
                        return v + 20
            return 99

        def clamp(v, lo, hi):
            return max(lo, min(v, hi))

        def pick(flag, a, b):
            if flag:
                return a
            pass
            return b

        mlp:
            y = classify(x, p)
            z = clamp(x * 3 - p, 5, 40) + first_divisor(7 * 3)
            w = pick(x > p, classify(p, x), clamp(x, 0, 3))
        """)
    lookup = dict(pairs)

    def first_divisor(n):
        for d in range(2, 10):
            if n % d == 0:
                return d
        return 0

    def classify(n, m):
        s = n + m
        if s > 25:
            return 1
        if s > 12:
            return first_divisor(s) + 2
        if n in lookup:
            return lookup[n] + 20
        return 99

    inputs = random_word_inputs(rng, 40, 20, max_len=20)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [classify(x, i) for i, x in enumerate(xs)]
        assert per_position(result, "z", b) == [max(5, min(x * 3 - i, 40)) + 3
                                                for i, x in enumerate(xs)]
        assert per_position(result, "w", b) == [classify(i, x) if x > i else min(x, 3)
                                                for i, x in enumerate(xs)]


def test_for_loops_over_constant_tuples_unroll():
    rng = random.Random(12)
    for _ in range(5):
        keys = rng.sample(range(30), 12)
        table = [(k, rng.randrange(50), rng.random() < 0.5) for k in keys]
        cuts = sorted(rng.sample(range(1, 30), 3))
        table_text = ", ".join(f"({k}, {v}, {'true' if f else 'false'})" for k, v, f in table)
        ranges = [(0, 0, cuts[0] - 1), (1, cuts[0], cuts[1] - 1), (2, cuts[1], cuts[2] - 1),
                  (3, cuts[2], 29)]
        src = header("y", name="loops", tokens=30) + prog(f"""
            const TABLE = [{table_text}]
            const RANGES = {ranges}
            var x: cat 30 = token
            var y: cat 50 = 49
            var flag: bool = false
            var band: cat 4 = 0
            var hits: cat 10 = 0
            mlp:
                for key, value, f in TABLE:
                    if x == key:
                        y = value
                        flag = f
                for k, lo, hi in RANGES:
                    if lo <= x and x <= hi:
                        band = k
                for a in 0..2:
                    for bound in [5, 10, 20]:
                        if a == 1 and x < bound:
                            hits = bound // 5
            """)
        inputs = random_word_inputs(rng, 10, 30)
        result = run(check(src), inputs)
        values = {k: (v, f) for k, v, f in table}
        for b, text in enumerate(inputs):
            xs = [int(t) for t in text.split()]
            assert per_position(result, "y", b) == [values.get(x, (49, False))[0] for x in xs]
            assert per_position(result, "flag", b) == [int(values.get(x, (0, False))[1])
                                                       for x in xs]
            assert per_position(result, "band", b) == [
                next(k for k, lo, hi in ranges if lo <= x <= hi) for x in xs]
            # The last write that runs wins (bounds are tried in increasing order).
            want_hits = []
            for x in xs:
                h = 0
                for bound in [5, 10, 20]:
                    if x < bound:
                        h = bound // 5
                want_hits.append(h)
            assert per_position(result, "hits", b) == want_hits


def test_let_bindings_are_scoped_to_their_block_and_loop_iteration():
    src = header("y", name="lets") + prog("""
        var x: cat 10 = token
        var p: cat 16 = position
        var y: cat 100 = 0
        var z: cat 100 = 0
        mlp:
            let a = x
            let b = a + 1
            if b > 3:
                let c = b * 2
                y = c + p
            else:
                let c = 1
                y = c
            for i in 0..2:
                let t = x + i
                if t == 5:
                    z = i + 10
        """)
    rng = random.Random(29)
    inputs = random_word_inputs(rng, 30, 10)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [(x + 1) * 2 + i if x + 1 > 3 else 1
                                                for i, x in enumerate(xs)]
        assert per_position(result, "z", b) == [5 - x + 10 if 3 <= x <= 5 else 0 for x in xs]
