"""Sampler and oracle for frac_prevs.alta: words from a, b, c, x; per position, the
fraction of the words so far that are "x", printed like ALTA prints a num value: the
shortest decimal that reads back as the same float32 (1/3 -> 0.33333334, 1 -> 1)."""

import random
from fractions import Fraction

from alta.programs._common import shortest_float32

SIZE = min(60, PARAMS["MAX_LENGTH"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` words; the share of "x" is drawn per input (0 to 1), so that all-x,
    no-x and everything between occur."""
    length = rng.randint(0, size)
    p = rng.choice([0.0, 1.0, rng.random(), rng.random()])
    return " ".join("x" if rng.random() < p else rng.choice("abc") for _ in range(length))


def oracle(text: str) -> str:
    out, xs = [], 0
    for n, word in enumerate(text.split(), start=1):
        xs += word == "x"
        out.append(shortest_float32(Fraction(xs, n)))
    return " ".join(out)

