"""Sampler and oracle for sort_frequency.alta: words over a..e sorted by descending count,
ties in the order of first occurrence, copies kept together: "a b b c" -> b b a c."""

import random

from alta.programs._common import LETTERS, counts, weighted_letters

SIZE = min(60, PARAMS["MAX_TOKENS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` letters, the length uniform. Half the inputs draw from a random subset
    of the letters with random weights; a quarter are built so that several letters tie."""
    n = rng.randint(0, size)
    if n >= 2 and rng.random() < 0.25:
        tied = rng.sample(list(LETTERS), rng.randint(2, 5))
        each = max(1, n // len(tied))
        words = [w for w in tied for _ in range(each)][:size]
        rng.shuffle(words)
        return " ".join(words)
    return weighted_letters(rng, n)


def oracle(text: str) -> str:
    in_order = counts(text.split())  # in the order of first occurrences
    order = sorted(in_order, key=lambda w: -in_order[w])  # stable: ties keep that order
    return " ".join(w for w in order for _ in range(in_order[w]))
