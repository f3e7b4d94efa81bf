"""The scalar semantics (alta/semantics.py) and where the back ends used to disagree on it.

1. the scalar and vectorised forms of each rule agree;
2. set elements 0..62, on the checker and both back ends;
3. a write that is not a declared value is rejected by the checker, the interpreter and the
   compiler alike (defect 4);
4. numerical ties and near-ties are snapped up by both back ends (defect 1), with a
   generated property test against an oracle in exact rationals (fractions.Fraction).

The values the compiler plans for (defect 6) are tested in test_values.py, the bucket
windows in test_buckets.py.
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import numpy as np
import pytest
from helpers import NEAR_TIE, assert_located, check, prog, program_head

from alta import ir, semantics
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.errors import AltaError, AltaRuntimeError
from alta.interpreter import run
from alta.verify import verify


def both(program: ir.Program, inputs: list[str]) -> tuple[tuple, tuple]:
    """Outputs of the interpreter and of the in-memory compiled model (alta/model.py needs
    at least one head, so programs run on both declare one even where nothing reads it)."""
    return run(program, inputs).outputs, run_compiled(compile_program(program), inputs).outputs


def assert_rejected_on_both_back_ends(program: ir.Program, good: str, output: str, bad: str,
                                      run_error: str, compile_error: str, where: str,
                                      at: str | None = None) -> None:
    """The interpreter runs `good` (printing `output`) and stops on `bad` with RUN_ERROR; the
    compiler, which plans for every input, rejects the program with COMPILE_ERROR; both
    errors point at AT (default: WHERE) on the first line containing WHERE."""
    assert run(program, [good]).outputs == (output,)
    with pytest.raises(AltaRuntimeError, match=run_error) as info:
        run(program, [bad])
    assert_located(info.value, program.source.text, where, at)
    with pytest.raises(AltaError, match=compile_error) as info:
        compile_program(program)
    assert_located(info.value, program.source.text, where, at)


# ---- 1. scalar and vectorised forms agree ---------------------------------------------------

def test_snap_scalar_and_vectorised_agree_on_boundaries_and_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = np.unique(np.round(rng.uniform(-3, 3, size=rng.integers(1, 8)), 2))
        mids = (values[1:] + values[:-1]) / 2
        xs = np.concatenate([rng.uniform(-4, 4, 40), mids, np.nextafter(mids, -np.inf),
                             mids - 1e-7, values])
        vector = semantics.snap(xs, values)
        assert vector.tolist() == [semantics.snap_scalar(x, tuple(values)) for x in xs]
        # exact ties, and the float64 neighbour just below a midpoint, go up
        for k, mid in enumerate(mids):
            assert semantics.snap_scalar(mid, tuple(values)) == values[k + 1]
            assert semantics.snap_scalar(np.nextafter(mid, -np.inf), tuple(values)) == \
                values[k + 1]
            assert semantics.snap_scalar(mid - 1e-6, tuple(values)) == values[k]


def test_seven_24ths_is_a_tie_between_a_quarter_and_a_third():
    """In float64, 7/24 and (1/4 + 1/3) / 2 may differ in the last bit: still a tie."""
    values = (0.25, 1 / 3)
    assert semantics.snap_scalar(7 / 24, values) == 1 / 3
    assert semantics.snap(np.array([7 / 24, 2 / 7]), values).tolist() == [1 / 3, 0.25]


def test_is_declared_scalar_and_vectorised_agree():
    values = (0.0, 0.3, 1.0)
    xs = [0.0, 1e-13, 1e-10, -1e-13, 0.1 + 0.2, 0.3 + 1e-8, 1.0 + 5e-10, 1.0 + 5e-9, 0.5]
    want = [True, True, False, True, True, False, True, False, False]
    assert [semantics.is_declared_scalar(x, values) for x in xs] == want
    assert semantics.is_declared(np.array(xs), values).tolist() == want


def test_binary_operators_scalar_and_vectorised_agree():
    grid = list(itertools.product(range(-7, 8), range(-4, 5)))
    a = np.array([x for x, _ in grid], dtype=np.int64)
    b = np.array([y for _, y in grid], dtype=np.int64)
    for op in ("+", "-", "*", "//", "%", "^", "|", "&"):
        got = semantics.binary_array(op, "int", a, b)
        zero = semantics.zero_divisor(op, b)
        for k, (x, y) in enumerate(grid):
            try:
                want = semantics.apply_binary(op, x, y)
            except ZeroDivisionError:
                assert zero[k], (op, x, y)
                continue
            assert not np.any(zero) or not zero[k]
            assert got[k] == want, (op, x, y)
    halves = np.arange(-10, 11) / 4
    assert np.round(halves).astype(int).tolist() == \
        [semantics.apply_builtin("round", (float(x),)) for x in halves]


def test_table_bounds_and_set_elements_scalar_and_vectorised_agree():
    xs = np.arange(-3, 70)
    assert semantics.index_fits(xs, 5).tolist() == [bool(semantics.index_fits(int(x), 5))
                                                    for x in xs]
    assert semantics.element_fits(xs).tolist() == [0 <= x <= 62 for x in xs]
    bits = np.int64(semantics.set_to_bits({0, 5, 62}))
    assert semantics.has_element(bits, xs).tolist() == [int(x) in {0, 5, 62} for x in xs]
    assert semantics.bits_to_set(bits) == frozenset({0, 5, 62})


# ---- 2. set elements: 0..62 everywhere ------------------------------------------------------

SET_EDGE = program_head("a b", "z", "max_layers 2", name="set_edge") + prog("""
    var x: cat 63 = 62 if token == "b" else 0
    var t: cat 2 = token
    var s: set 63 of [{}, {0}, {62}] = {}
    var z: cat 3 = 0
    head same = t where x in s
    mlp:
        s = {x}
        if len(s) == 1:
            z = same + (1 if 62 in s else 0)
    """)


def test_set_element_62_on_both_back_ends():
    program = check(SET_EDGE)
    inputs = ["a b", "b", "b a", "a"]
    interpreted, compiled = both(program, inputs)
    # Layer 1 writes s = {x}; layer 2 reads it: the head finds the position whose x is in s
    # (itself: its token), and 62 is in s at a "b".
    assert interpreted == compiled == ("0 2", "2", "2 0", "0")


def test_set_limit_in_the_checker():
    check(program_head("a", "x") + prog("""
        var x: cat 2 = 0
        var s: set 63 of [{}, {62}] = {62}
        """))
    wide = program_head("a", "x") + prog("""
        var x: cat 2 = 0
        var s: set 64 of [{}, {63}] = {}
        """)
    with pytest.raises(AltaError, match="at most 63 values") as info:
        check(wide)
    assert_located(info.value, wide, "var s: set 64", "64", "at most 63 values, got 64")
    outside = program_head("a", "x") + prog("""
        var x: cat 2 = 0
        var s: set 63 of [{}, {62}] = {}
        mlp:
            if s == {63}:
                x = 1
        """)
    with pytest.raises(AltaError, match=r"outside 0\.\.62") as info:
        check(outside)
    assert_located(info.value, outside, "if s == {63}", "{63}", "outside 0..62")


SET_OVERFLOW = program_head("a b", "x") + prog("""
    var x: cat 64 = 63 if token == "b" else 62
    var s: set 63 of [{}, {62}] = {}
    mlp:
        s = {x}
    """)


def test_set_element_63_is_an_error_on_both_back_ends():
    assert_rejected_on_both_back_ends(check(SET_OVERFLOW), "a", "62", "a b",
                                      "set element out of range",
                                      "set element out of range on the path where x = 63",
                                      where="s = {x}", at="x}")


# ---- 3. a write that is not a declared value (defect 4) -------------------------------------

def test_a_write_within_1e_10_of_a_declared_value_is_rejected_by_the_checker():
    source = program_head("a", "x") + prog("""
        var x: num {0, 1} = 0
        mlp:
            x = 0.0000000001
        """)
    with pytest.raises(AltaError) as err:
        check(source)
    assert err.value.first.span.line == 7, str(err.value)
    assert "out of range for 'x'" in err.value.first.message
    initialised = program_head("a", "x") + prog("""
        var x: num {0, 1} = 0.0000000001
        """)
    with pytest.raises(AltaError, match="out of range for 'x'") as info:
        check(initialised)
    assert_located(info.value, initialised, "var x", "0.0000000001", "out of range for 'x'")


def test_a_computed_write_within_1e_10_is_rejected_by_both_back_ends():
    program = check(program_head("a b", "x") + prog("""
        var x: num {0, 1} = 0
        var k: cat 2 = token
        mlp:
            x = k / 10000000000
        """))
    assert_rejected_on_both_back_ends(program, "a", "0", "a b", "not one of its declared values",
                                      "writes 1e-10 to 'x'.*k = 1", where="x = k / ")


def test_float64_rounding_of_a_declared_value_is_that_value_and_stored_as_it():
    program = check(program_head("a b", "x") + prog("""
        var x: num {0, 0.3, 1} = 0
        var k: cat 2 = token
        head left = k at -1
        mlp:
            x = 0.1 * k + 0.2 * k
        """))
    result = run(program, ["a b"])
    assert result.final["x"][0].tolist() == [0.0, 0.3]  # 0.30000000000000004 stored as 0.3
    assert both(program, ["a b", "b"]) == (("0 0.3", "0.3"),) * 2


# ---- 4. numerical ties and near-ties (defect 1) ---------------------------------------------

TIE_SNAP = program_head("a b", "y", name="tie_snap") + prog("""
    var n: num {0, 1} = token == "b"
    var y: cat 2 = 0
    head m: num {0, 1} = n at -1..0
    mlp:
        y = round(m)
    """)


def test_a_mean_exactly_between_two_values_snaps_up_on_both_back_ends():
    program = check(TIE_SNAP)
    inputs = ["a b", "b a", "a a", "b b", "a b a b b a"]
    interpreted, compiled = both(program, inputs)
    assert interpreted == compiled == ("0 1", "1 1", "0 0", "1 1", "0 1 1 1 1 1")


def test_the_mean_7_24_snaps_to_a_third_on_both_back_ends():
    """7/24 lies exactly between 1/4 and 1/3 (2/7, a mean of 7 positions, just below it).
    The last position selects the 24 positions that are not "2": the softmax leaks a little
    onto the 16 "2"s (n = 0), which used to pull the compiled mean below the midpoint."""
    program = check(NEAR_TIE)
    rng = random.Random(24)
    sevens, twos = [], []
    for _ in range(10):
        window = ["1"] * 7 + ["0"] * 17
        rng.shuffle(window)
        sevens.append(" ".join(["2"] * 16 + window))
        twos.append(" ".join(["2"] * 16 + ["1", "1", "0", "0", "0", "0", "0"]))
    interpreted, compiled = both(program, sevens + twos)
    assert interpreted == compiled == ("4",) * 10 + ("3",) * 10


def snap_exact(mean: Fraction, declared: list[Fraction]) -> Fraction:
    """The oracle: the nearest declared value in exact rationals, ties to the larger."""
    return min(declared, key=lambda v: (abs(v - mean), -v))


def fraction_source(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else \
        f"{value.numerator} / {value.denominator}"


def generated_head_program(rng: random.Random):
    """A random numerical head (a random value table, offsets and/or a key == query
    selection that always includes the position itself, random declared values on a grid
    of 1/d) read into y = round(m * d); the oracle mirrors it in exact rationals."""
    d = rng.choice([2, 3, 4, 5, 6, 8, 12])
    grid = [Fraction(j, d) for j in range(d + 1)]
    declared = sorted(rng.sample(grid, rng.randint(2, len(grid))))
    source = rng.choice([[Fraction(0), Fraction(1)], [Fraction(0), Fraction(1, 2), Fraction(1)],
                         [Fraction(0), Fraction(1, 3), Fraction(2, 3), Fraction(1)],
                         [Fraction(1, 4), Fraction(3, 4)]])
    vocab = ["a", "b", "c", "d"]
    quoted = " ".join(f'"{t}"' for t in vocab)
    table = [rng.choice(source) for _ in vocab]
    keys = [rng.randrange(2) for _ in vocab]
    offsets = rng.choice([None, (-1, 0), tuple(range(-3, 1)), (-2, 0, 1), tuple(range(4)),
                          tuple(range(-5, 6)), (-7, -1, 0, 2)])
    keyed = offsets is None or rng.random() < 0.5
    max_length = rng.choice([12, 24, 30, None])
    def listed(items, show=str):
        return ", ".join(map(show, items))

    clauses = ("where k == k " if keyed else "") + (
        "at {" + listed(offsets) + "}" if offsets else "")
    length_line = f"max_length {max_length}" if max_length else ""
    text = f"""
        program generated
        vocab {quoted}
        {length_line}
        max_layers 1
        output y
        var v: num {{{listed(source, fraction_source)}}} = [{listed(table, fraction_source)}][token]
        var k: cat 2 = [{listed(keys)}][token]
        var y: cat {d + 1} = 0
        head m: num {{{listed(declared, fraction_source)}}} = v {clauses}
        mlp:
            y = round(m * {d})
        """

    def oracle(words: list[str]) -> str:
        ids = [vocab.index(w) for w in words]
        out = []
        for i in range(len(ids)):
            chosen = [j for j in range(len(ids))
                      if (not keyed or keys[ids[j]] == keys[ids[i]])
                      and (offsets is None or j - i in offsets)]
            mean = sum(table[ids[j]] for j in chosen) / len(chosen)
            out.append(str(int(snap_exact(mean, declared) * d)))
        return " ".join(out)

    return check(text), oracle, vocab, max_length or 30


@pytest.mark.parametrize("seed", range(8))
def test_generated_numerical_heads_snap_like_exact_rationals_on_both_back_ends(seed):
    rng = random.Random(1000 + seed)
    program, oracle, vocab, longest = generated_head_program(rng)
    inputs = [[rng.choice(vocab) for _ in range(rng.randint(1, longest))] for _ in range(150)]
    # long runs of one token make means land on (and near) midpoints
    inputs += [[vocab[a]] * m + [vocab[b]] * n for a, b in [(0, 1), (1, 2), (2, 3), (3, 0)]
               for m, n in [(1, 1), (1, 3), (3, 5), (7, 17), (5, 7)] if m + n <= longest]
    texts = [" ".join(words) for words in inputs]
    compiled = compile_program(program)
    assert compiled.report.guaranteed_length >= longest
    want = tuple(oracle(words) for words in inputs)
    assert run(program, texts).outputs == want
    assert run_compiled(compiled, texts).outputs == want
    report = verify(compiled, texts[:60])  # heads after attention, variables after the MLP
    assert report.ok, report.divergence
