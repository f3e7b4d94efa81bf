"""The sequential addition program (programs/addition_sequential.alta) against Python's own
integers, on both back ends, with operands of independent lengths and long carry chains."""

import random

from alta.compiled import run_compiled
from alta.interpreter import run

NAME = "addition_sequential"


def operand_pairs(count: int, most: int, seed: int) -> list[tuple[int, int]]:
    """`count` random pairs, each operand of 1 to `most` digits (drawn independently), then
    the pairs whose carries run through every place."""
    rng = random.Random(seed)

    def number(digits: int) -> int:
        return rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits)

    pairs = [(number(rng.randint(1, most)), number(rng.randint(1, most))) for _ in range(count)]
    nines = 10 ** most - 1
    return pairs + [(nines, 1), (1, nines), (nines, nines), (0, 0), (0, nines), (nines // 9, 8)]


def texts_of(pairs):
    return [f"{a}+{b}" for a, b in pairs]


def assert_sums(result, pairs):
    """Python's sums, each after digits + 3 layers (as the reference's addition halts)."""
    assert list(result.outputs) == [str(a + b) for a, b in pairs]
    assert result.halted.all()
    assert list(result.layers) == [max(len(str(a)), len(str(b))) + 3 for a, b in pairs]


def test_random_sums_match_python_on_the_interpreter(program):
    pairs = operand_pairs(400, 30, seed=0)
    assert_sums(run(program(NAME), texts_of(pairs)), pairs)


def test_random_sums_match_python_compiled(compiled):
    pairs = operand_pairs(30, 22, seed=1)
    assert_sums(run_compiled(compiled(NAME), texts_of(pairs)), pairs)
