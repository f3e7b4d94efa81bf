"""Numerical heads without declared values, compared only with constants: the checker
derives the values the comparisons need (alta/means.py), on both back ends against
Python's exact fractions, at lengths up to 120 words.

One program holds heads over several sources (0/1, a digit 0..9, -2..2 over a window) and
thresholds (`>`, `>=`, `<`, `<=`, `==`, `!=`, a threshold no mean can equal); the MLP writes
each comparison into a bool. Misuses (a head read other than by a comparison, no
max_length) are cases in tests/data/checker_errors.toml."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.interpreter import run
from alta.means import threshold_values

MAX_WORDS = 120
WORDS = [str(d) for d in range(10)]  # token ids 1..10; "<s>" 0

# name -> (head, the comparison the MLP writes, Python of the exact mean)
COMPARISONS = {
    "more_odd": ("odd_share", "odd_share > 0.5", lambda m: m > Fraction(1, 2)),
    "half_odd": ("odd_share", "odd_share == 1 / 2", lambda m: m == Fraction(1, 2)),
    "not_third": ("odd_share", "odd_share != 1 / 3", lambda m: m != Fraction(1, 3)),
    "big_mean": ("digit_mean", "digit_mean >= 4.5", lambda m: m >= Fraction(9, 2)),
    "small_mean": ("digit_mean", "digit_mean < 2.25", lambda m: m < Fraction(9, 4)),
    "low_window": ("window", "window <= -0.5", lambda m: m <= Fraction(-1, 2)),
    "odd_window": ("window", "window > 1 / 8", lambda m: m > Fraction(1, 8)),
}

SOURCE = f"""program thresholds
vocab "<s>" {" ".join(f'"{w}"' for w in WORDS)}
input "<s>" words
max_length {MAX_WORDS + 1}
max_layers 1
output more_odd where is_word

var is_word: bool = token != "<s>"
var odd: num {{0, 1}} = token % 2 == 0 and token > 0
var digit: num {{d for d in 0..9}} = token - 1 if token > 0 else 0
var signed: num {{v for v in -2..2}} = (token - 1) % 5 - 2 if token > 0 else 0
{chr(10).join(f"var {name}: bool = 0" for name in COMPARISONS)}

head odd_share = odd where is_word == 1
head digit_mean = digit where is_word == 1 at -{MAX_WORDS}..0
head window = signed where is_word == 1 at -6..0

mlp:
    if is_word == 1:
{chr(10).join(f"        {name} = {test}" for name, (_, test, _) in COMPARISONS.items())}
"""


def oracle(digits: list[int]) -> dict[str, list[int]]:
    """Per comparison, per word: its truth on the exact mean."""
    n = len(digits)
    # head -> its values, and the words (lo, hi) word i selects
    sources = {"odd_share": ([d % 2 for d in digits], lambda i: (0, n)),  # every word
               "digit_mean": (digits, lambda i: (0, i + 1)),  # the words so far
               "window": ([d % 5 - 2 for d in digits], lambda i: (max(0, i - 6), i + 1))}
    out = {}
    for name, (head, _, test) in COMPARISONS.items():
        values, selects = sources[head]
        out[name] = [int(test(Fraction(sum(values[lo:hi]), hi - lo)))
                     for lo, hi in map(selects, range(n))]
    return out


def random_inputs(seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    lengths = [MAX_WORDS, MAX_WORDS - 1, 1, 2] + [rng.randint(1, MAX_WORDS)
                                                  for _ in range(count)]
    inputs = []
    for n in lengths:  # some nearly balanced, so that means sit right at the thresholds
        pool = rng.choice([range(10), (1, 2), (0, 4, 5, 9)])
        inputs.append([rng.choice(pool) for _ in range(n)])
    return inputs


def _comparisons(values, inputs) -> list[dict[str, list[int]]]:
    return [{name: [int(v) for v in values[name][b, 1:len(d) + 1]] for name in COMPARISONS}
            for b, d in enumerate(inputs)]


def _text(digits: list[int]) -> str:
    return " ".join(str(d) for d in digits)


@pytest.fixture(scope="module")
def thresholds_program():
    return check_source(SOURCE, "thresholds.alta")


def test_the_derived_values_are_a_few_around_each_threshold(thresholds_program):
    """Three values per threshold at most (the nearest means on either side, and the
    threshold where a mean equals it), not every possible mean."""
    odd = thresholds_program.head("odd_share").type.values
    assert odd == threshold_values((0, 1), MAX_WORDS + 1, [Fraction(1, 3), Fraction(1, 2)])
    assert 0.5 in odd and 1 / 3 in odd and len(odd) == 6
    window = thresholds_program.head("window").type.values
    assert 1 / 8 not in window and -0.5 in window  # means of up to 7 values
    compiled = compile_program(thresholds_program)
    assert compiled.report.parameters < 20_000
    assert compiled.report.guaranteed_length == MAX_WORDS + 1


def test_interpreter_compares_as_python(thresholds_program):
    inputs = random_inputs(1, 150)
    result = run(thresholds_program, [_text(d) for d in inputs])
    assert _comparisons(result.final, inputs) == [oracle(d) for d in inputs]
    balanced = sum(v for d in inputs for v in oracle(d)["half_odd"])
    assert balanced > 20  # the inputs do sit on the thresholds


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_compiled_model_compares_as_python(thresholds_program, structured):
    compiled = compile_program(thresholds_program)
    inputs = random_inputs(2 + structured, 100)
    result = run_compiled(compiled, [_text(d) for d in inputs],
                          model=load_model(compiled, structured=structured))
    values = compiled.layout.decode(result.residual, compiled.program)
    assert _comparisons(values, inputs) == [oracle(d) for d in inputs]
    assert np.all(result.layers == 1)


def test_declaring_every_mean_gives_the_same_mlp(thresholds_program):
    """The same comparison with every mean of up to 40 values declared: the checker lists
    491 values instead of 3, but the MLP needs a bucket only per run of values that no
    comparison tells apart (two here, one step at 1/2), so both compile to the same MLP;
    only the head's scale differs (the declared values' narrowest window is smaller)."""
    declared = check_source("""program declared
vocab "<s>" "0" "1"
input "<s>" words
max_length 41
max_layers 1
output more where is_word
var is_word: bool = token != "<s>"
var odd: num {0, 1} = token == "1"
var more: bool = 0
head share: num {k / n for n in 1..40 for k in 0..n} = odd where is_word == 1
mlp:
    if is_word == 1:
        more = share > 0.5
""", "declared.alta")
    derived = check_source(declared.source.text.replace(
        "head share: num {k / n for n in 1..40 for k in 0..n} =", "head share ="),
        "derived.alta")
    assert len(declared.head("share").type.values) > 400
    assert len(derived.head("share").type.values) == 3
    big, small = compile_program(declared).report, compile_program(derived).report
    assert big.mlp_widths == small.mlp_widths
    assert big.parameters == small.parameters
    assert big.head_scales[0].tolerance < small.head_scales[0].tolerance


def test_a_familys_members_compared_at_constant_indices_derive_their_own_values():
    """`share[0] > 0.5` and `share[1] <= 0.25`: each member gets the values around its own
    constant; both back ends agree with Python on inputs up to 40 words."""
    program = check_source("""program members
vocab "a" "b" "<s>"
input "<s>" words
max_length 41
max_layers 1
output both where is_word
var is_word: bool = token != "<s>"
var both: bool = 0
for k in 0..1:
    var is_k[k]: num {0, 1} = token == k
    head share[k] = is_k[k] where is_word == 1 at -40..0
mlp:
    if is_word == 1:
        both = share[0] > 0.5 and share[1] <= 0.25
""", "members.alta")
    assert 0.5 in program.head("share[0]").type.values
    assert 0.25 in program.head("share[1]").type.values
    assert 0.5 not in program.head("share[1]").type.values
    rng = random.Random(9)
    words = [[rng.choice("aab") for _ in range(rng.randint(1, 40))] for _ in range(120)]
    texts = [" ".join(w) for w in words]

    def expected(w):
        return [int(Fraction(w[:i + 1].count("a"), i + 1) > Fraction(1, 2)
                    and Fraction(w[:i + 1].count("b"), i + 1) <= Fraction(1, 4))
                for i in range(len(w))]

    interpreted = run(program, texts).final["both"]
    compiled = compile_program(program)
    decoded = compiled.layout.decode(run_compiled(compiled, texts).residual, program)["both"]
    for b, w in enumerate(words):
        assert [int(v) for v in interpreted[b, 1:len(w) + 1]] == expected(w)
        assert [int(v) for v in decoded[b, 1:len(w) + 1]] == expected(w)
