"""A numerical head over a categorical variable of plain integers (`cat N`, `cat -4..5`,
`bool`) averages their numbers, on both back ends against Python's exact fractions.

One program holds a head per form: a window of four digits, a window over negative
categories, a majority over every word so far (up to 40) and a single offset. The MLP
copies the means into numerical variables with the same declared values (or compares one
with a threshold), so the interpreter's final state and the compiled model's decoded
residual must both hold the declared value nearest the exact mean. Misuses (enum members
and tokens are not numbers) are cases in tests/data/checker_errors.toml."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.interpreter import run

MAX_WORDS = 40
WINDOW = 4

SOURCE = f"""program digit_means
const MAX_WORDS = {MAX_WORDS}
const WINDOW = {{k / n for n in 1..{WINDOW} for k in 0..9 * n}}
const SIGNED = {{k / 2 for k in -8..10}}
const SHARES = {{k / n for n in 1..MAX_WORDS for k in 0..n}}
vocab "<s>" "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"
input "<s>" words
max_length MAX_WORDS + 1
max_layers 1
output window where is_word

var is_word: bool = token != "<s>"
var tok: vocab = token
var digit: cat 10 = token - 1 if token > 0 else 0
var signed_digit: cat -4..5 = token - 5 if token > 0 else 0
var odd: bool = token > 0 and token % 2 == 0
var window: num WINDOW = 0
var signed: num SIGNED = 0
var share: num SHARES = 0
var majority: bool = 0
var previous: num {{k for k in 0..9}} = 0

head window_mean: num WINDOW = digit where tok != "<s>" at -{WINDOW - 1}..0
head signed_mean: num SIGNED = signed_digit where tok != "<s>" at -1..0
head odd_share: num SHARES = odd where tok != "<s>" at -MAX_WORDS..0
head previous_digit: num {{k for k in 0..9}} = digit at -1

mlp:
    if is_word == 1:
        window = window_mean
        signed = signed_mean
        share = odd_share
        majority = odd_share > 0.5
        previous = previous_digit
"""

NAMES = ("window", "signed", "share", "majority", "previous")


def oracle(digits: list[int]) -> dict[str, list[float]]:
    """Per variable, per word: the exact mean (as the nearest float), from the digits."""
    def mean(values):
        return Fraction(sum(values), len(values))

    out = {name: [] for name in NAMES}
    for i in range(len(digits)):
        odd = mean([x % 2 for x in digits[:i + 1]])
        out["window"].append(float(mean(digits[max(0, i - WINDOW + 1):i + 1])))
        out["signed"].append(float(mean([x - 4 for x in digits[max(0, i - 1):i + 1]])))
        out["share"].append(float(odd))
        out["majority"].append(float(odd > Fraction(1, 2)))
        out["previous"].append(float(digits[i - 1] if i else 0))
    return out


def random_inputs(seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    lengths = [MAX_WORDS, MAX_WORDS - 1, 1] + [rng.randint(1, MAX_WORDS) for _ in range(count)]
    return [[rng.randrange(10) for _ in range(n)] for n in lengths]


def _text(digits: list[int]) -> str:
    return " ".join(str(d) for d in digits)


def _means(values: dict[str, np.ndarray], inputs) -> list[dict[str, list[float]]]:
    return [{name: [float(v) for v in values[name][b, 1:len(digits) + 1]] for name in NAMES}
            for b, digits in enumerate(inputs)]


def _assert_equal(got, inputs) -> None:
    for row, digits in zip(got, inputs, strict=True):
        expected = oracle(digits)
        for name in NAMES:
            assert np.allclose(row[name], expected[name], rtol=1e-6, atol=1e-9), (
                name, digits)


@pytest.fixture(scope="module")
def means_program():
    return check_source(SOURCE, "digit_means.alta")


@pytest.fixture(scope="module")
def means_compiled(means_program):
    return compile_program(means_program)


def test_interpreter_averages_the_numbers_of_categories(means_program):
    inputs = random_inputs(1, 200)
    result = run(means_program, [_text(d) for d in inputs])
    _assert_equal(_means(result.final, inputs), inputs)


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_compiled_model_averages_the_numbers_of_categories(means_compiled, structured):
    """The value projection carries each one-hot dimension's number into the head's one
    column; the structured path sums the value block the same way."""
    assert (means_compiled.execution.heads is not None) or not structured
    inputs = random_inputs(2 + structured, 100)
    model = load_model(means_compiled, structured=structured)
    result = run_compiled(means_compiled, [_text(d) for d in inputs], model=model)
    assert not result.faults
    values = means_compiled.layout.decode(result.residual, means_compiled.program)
    _assert_equal(_means(values, inputs), inputs)
    if structured:
        assert any(b.averages_numbers for b in means_compiled.execution.heads)
