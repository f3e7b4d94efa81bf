"""Numerical heads and variables declared `num` without values, copied and printed: the
checker derives their values (every mean a head can take, alta.means.every_mean; for a
variable, what is written into it), the compiler copies them linearly (compiler/rules.py,
`linear_copies`; compiler/weights.py), and both back ends print what a plain Python oracle
of exact fractions prints, on random inputs up to each program's max_length.

The programs: the library's frac_prevs (k / n per position, n <= 60), and one of several
layers that copies heads over signed and digit values into variables, copies variables on,
writes constants on some paths and compares a derived variable with a constant. Misuses
(other writes and reads, a head over an undeclared variable, too many means) are cases in
tests/data/checker_errors.toml ("derived values")."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from helpers import compiled_library, library_program

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.compiler.rules import linear_copies
from alta.interpreter import run

FRAC_LENGTH = 60


def printed(x: Fraction) -> str:
    """How a number prints: its float32's shortest round-trip decimal (numpy's Dragon4,
    not ALTA's own formatting), without a trailing '.'; every value here is at least 1e-4
    or 0, where ALTA prints positional notation."""
    return np.format_float_positional(np.float32(float(x)), unique=True, trim="-")


def frac_oracle(text: str) -> str:
    words = text.split()
    return " ".join(printed(Fraction(words[:n].count("x"), n))
                    for n in range(1, len(words) + 1))


def frac_inputs(seed: int, count: int) -> list[str]:
    """Words from a, b, c, x up to 60, the share of x drawn per input (all, none, any)."""
    rng = random.Random(seed)
    lengths = [FRAC_LENGTH, FRAC_LENGTH - 1, 1, 2] + [rng.randint(1, FRAC_LENGTH)
                                                      for _ in range(count)]
    texts = []
    for n in lengths:
        p = rng.choice([0.0, 1.0, 0.5, rng.random()])
        texts.append(" ".join("x" if rng.random() < p else rng.choice("abc")
                              for _ in range(n)))
    return texts


def test_frac_prevs_derives_every_fraction_and_compiles_small():
    program = library_program("frac_prevs")
    fractions = sorted({Fraction(k, n) for n in range(1, FRAC_LENGTH + 1)
                        for k in range(n + 1)})
    assert program.head("share").type.values == tuple(map(float, fractions))
    assert program.variable("frac").type.values == tuple(map(float, fractions))
    report = compiled_library("frac_prevs").report
    assert report.parameters < 1_000  # declaring the 1,103 fractions cost 7.3 M
    assert report.rules == 1
    assert report.guaranteed_length == FRAC_LENGTH
    assert [s.guaranteed_length for s in report.head_scales] == [FRAC_LENGTH]


def test_frac_prevs_interpreter_prints_the_exact_fractions():
    texts = frac_inputs(1, 300)
    assert list(run(library_program("frac_prevs"), texts).outputs) == \
        [frac_oracle(t) for t in texts]


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_frac_prevs_compiled_model_prints_the_exact_fractions(structured):
    compiled = compiled_library("frac_prevs")
    texts = frac_inputs(2 + structured, 300)
    result = run_compiled(compiled, texts, model=load_model(compiled, structured=structured))
    assert list(result.outputs) == [frac_oracle(t) for t in texts]


# ---- several layers: signed and digit sources, copies of copies, constants -----------------

LENGTH = 40
DIGITS = [str(d) for d in range(10)]

SOURCE = f"""program copies
vocab {" ".join(f'"{d}"' for d in DIGITS)}
input words
max_length {LENGTH}
max_layers 3
output last_mean

var digit: cat 10 = token
var signed: num {{v for v in -2..2}} = token % 5 - 2
var layer: cat 4 = 0
var window: num = 0     # this layer's signed window mean, or -3 at odd digits
var last_mean: num = 0  # the previous layer's window
var digits: num = 0.5   # the digit mean of the prefix, from layer 2 on
var big: bool = 0

head signed_window: num = signed at -5..0
head digit_mean: num = digit at -{LENGTH - 1}..0

mlp:
    if layer < 3:
        layer = layer + 1
    last_mean = window
    if digit % 2 == 0:
        window = signed_window
    else:
        window = -3
    if layer >= 1:
        digits = digit_mean
    big = window > 0.5
"""


def copies_oracle(ds: list[int], layers: int = 3) -> dict[str, list[Fraction]]:
    """Each variable after `layers` layers, per position, in exact fractions."""
    n = len(ds)
    signed = [d % 5 - 2 for d in ds]
    window_mean = [Fraction(sum(signed[max(0, i - 5):i + 1]), i + 1 - max(0, i - 5))
                   for i in range(n)]
    digit_mean = [Fraction(sum(ds[:i + 1]), i + 1) for i in range(n)]
    state = {"layer": [0] * n, "window": [Fraction(0)] * n, "last_mean": [Fraction(0)] * n,
             "digits": [Fraction(1, 2)] * n, "big": [0] * n}
    for _ in range(layers):
        old = state
        state = {"layer": [v + 1 for v in old["layer"]], "last_mean": old["window"],
                 "window": [window_mean[i] if ds[i] % 2 == 0 else Fraction(-3)
                            for i in range(n)],
                 "digits": [digit_mean[i] if old["layer"][i] >= 1 else old["digits"][i]
                            for i in range(n)],
                 "big": [int(w > Fraction(1, 2)) for w in old["window"]]}
    return state


def copies_inputs(seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    lengths = [LENGTH, LENGTH - 1, 1, 6] + [rng.randint(1, LENGTH) for _ in range(count)]
    return [[rng.choice(rng.choice([range(10), (0, 4, 5, 9), (2, 8)])) for _ in range(n)]
            for n in lengths]


@pytest.fixture(scope="module")
def copies_program():
    return check_source(SOURCE, "copies.alta")


@pytest.fixture(scope="module")
def copies_compiled(copies_program):
    return compile_program(copies_program)


def test_derived_variables_hold_what_is_written_into_them(copies_program):
    window = {Fraction(s, k) for k in range(1, 7) for s in range(-2 * k, 2 * k + 1)}
    assert copies_program.variable("window").type.values == \
        tuple(map(float, sorted(window | {Fraction(-3)})))
    assert copies_program.variable("last_mean").type.values == \
        copies_program.variable("window").type.values
    digits = {Fraction(s, k) for k in range(1, LENGTH + 1) for s in range(9 * k + 1)}
    assert copies_program.variable("digits").type.values == \
        tuple(map(float, sorted(digits | {Fraction(1, 2)})))


def test_copies_compile_to_a_unit_per_copy_not_a_rule_per_value(copies_compiled):
    report = copies_compiled.report
    assert report.parameters < 20_000
    assert report.guaranteed_length == LENGTH


def _check_against_oracle(values, inputs) -> None:
    for b, ds in enumerate(inputs):
        want = copies_oracle(ds)
        for name in ("window", "last_mean", "digits"):
            assert values[name][b, :len(ds)].tolist() == [float(v) for v in want[name]], name
        assert values["big"][b, :len(ds)].tolist() == want["big"]


def test_interpreter_copies_as_python(copies_program):
    inputs = copies_inputs(3, 200)
    result = run(copies_program, [" ".join(map(str, d)) for d in inputs])
    _check_against_oracle(result.final, inputs)
    assert list(result.outputs) == [" ".join(printed(v) for v in copies_oracle(d)["last_mean"])
                                    for d in inputs]


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_compiled_model_copies_as_python(copies_compiled, structured):
    inputs = copies_inputs(4 + structured, 200)
    texts = [" ".join(map(str, d)) for d in inputs]
    result = run_compiled(copies_compiled, texts,
                          model=load_model(copies_compiled, structured=structured))
    _check_against_oracle(copies_compiled.layout.decode(result.residual,
                                                        copies_compiled.program), inputs)
    assert np.all(result.layers == 3)
    assert list(result.outputs) == [" ".join(printed(v) for v in copies_oracle(d)["last_mean"])
                                    for d in inputs]


# Copies that snapping could change: the compiler must not copy them linearly (each read
# then goes through the buckets, as any read does), and both back ends agree with Python.
SNAPPED = """program snapped
vocab "a" "b" "x"
input words
max_length 12
max_layers 1
output copy
var v: num {0, 1, 5} = 5 if token == "x" else 1 if token == "b" else 0
var copy: num {0, 1, 3, 5} = 0
head pair: num {0, 1, 5} = v at -1..0
mlp:
    copy = pair
"""

CROWDED = """program crowded
vocab "a" "b" "x"
input words
max_length 40
max_layers 1
output copy
var is_x: num {0, 1} = token == "x"
var tag: bool = token != "a"
# Every k / n, n <= 6 (i = 7 n + k), and 0.4999995 (i = 0).
const VALUES = {(i % 7) / (i // 7) if i > 0 else 0.4999995 for i in 0..48
                if i == 0 or (i >= 7 and i % 7 <= i // 7)}
var copy: num VALUES = 0
head near: num = is_x where tag == 1 at -5..0
mlp:
    if tag == 1:
        copy = near
"""


def _snapped_oracle(words: list[str]) -> list[Fraction]:
    """The mean of 0 (a), 1 (b), 5 (x) over this word and the one before, read as the
    nearest of 0, 1, 5 (ties up)."""
    v = [{"a": 0, "b": 1, "x": 5}[w] for w in words]
    out = []
    for i in range(len(v)):
        mean = Fraction(sum(v[max(0, i - 1):i + 1]), len(v[max(0, i - 1):i + 1]))
        out.append(Fraction(min((0, 1, 5), key=lambda d: (abs(mean - d), -d))))
    return out


def _crowded_oracle(words: list[str]) -> list[Fraction]:
    """At b and x, the share of x among the b and x of the six words ending here."""
    out = []
    for i, w in enumerate(words):
        picked = [u for u in words[max(0, i - 5):i + 1] if u != "a"]
        out.append(Fraction(picked.count("x"), len(picked)) if w != "a" else Fraction(0))
    return out


@pytest.mark.parametrize("source, oracle, length", [(SNAPPED, _snapped_oracle, 12),
                                                     (CROWDED, _crowded_oracle, 40)],
                         ids=["snapped-by-the-head", "crowded-target"])
def test_copies_that_snapping_could_change_are_not_linear(source, oracle, length):
    """SNAPPED: the head's declared values miss means (5/2 reads as 1, and as 3 it would
    copy); CROWDED: the target has a value 5e-7 from the mean 1/2, closer than the head's
    scale keeps its leakage. Neither copy is linear; both back ends print Python's."""
    program = check_source(source, "t.alta")
    assert not linear_copies(program).sources
    rng = random.Random(7)
    words = [[rng.choice("abx") for _ in range(rng.randint(1, length))] for _ in range(300)]
    texts = [" ".join(w) for w in words]
    expected = [" ".join(printed(v) for v in oracle(w)) for w in words]
    assert list(run(program, texts).outputs) == expected
    assert list(run_compiled(compile_program(program), texts).outputs) == expected


# ---- families: members copied and compared at the MLP's loop indices -------------------------

FAMILY_LENGTH = 30
FAMILY = f"""program shares
vocab "a" "b" "c"
input words
max_length {FAMILY_LENGTH}
max_layers 1
output share[1]

var majority: cat 4 = 3           # the letter that is more than half so far, else 3
for k in 0..2:
    var is_k[k]: num {{0, 1}} = token == k
    var share[k]: num = 0
    head so_far[k]: num = is_k[k] at -{FAMILY_LENGTH - 1}..0

mlp:
    for k in 0..2:
        share[k] = so_far[k]
        if so_far[k] > 0.5:
            majority = k
"""


def test_family_members_at_loop_indices_derive_their_values():
    """`share[k] = so_far[k]` and `so_far[k] > 0.5` inside the MLP's `for`: each member may
    be any of the family's, so each gets every mean, and both back ends agree with Python
    on the shares and the majority (the enumeration forks each mean over two classes, at
    most and more than 1/2, not over its 465 values)."""
    program = check_source(FAMILY, "shares.alta")
    fractions = tuple(float(f) for f in sorted({Fraction(k, n)
                                                for n in range(1, FAMILY_LENGTH + 1)
                                                for k in range(n + 1)}))
    for k in range(3):
        assert program.head(f"so_far[{k}]").type.values == fractions
        assert program.variable(f"share[{k}]").type.values == fractions
    compiled = compile_program(program)
    assert compiled.report.parameters < 5_000
    assert compiled.report.guaranteed_length == FAMILY_LENGTH
    rng = random.Random(11)
    words = [[rng.choice(rng.choice(["abc", "aab", "c"])) for _ in range(rng.randint(1, 30))]
             for _ in range(300)]
    texts = [" ".join(w) for w in words]

    def expected(w):
        shares = {k: [Fraction(w[:i + 1].count(letter), i + 1) for i in range(len(w))]
                  for k, letter in enumerate("abc")}
        majority = [next((k for k in range(3) if shares[k][i] > Fraction(1, 2)), 3)
                    for i in range(len(w))]
        return shares, majority

    interpreted = run(program, texts).final
    decoded = compiled.layout.decode(run_compiled(compiled, texts).residual, program)
    for values in (interpreted, decoded):
        for b, w in enumerate(words):
            shares, majority = expected(w)
            for k in range(3):
                assert values[f"share[{k}]"][b, :len(w)].tolist() == \
                    [float(v) for v in shares[k]]
            assert values["majority"][b, :len(w)].tolist() == majority
