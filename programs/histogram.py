"""Sampler and oracle for histogram.alta: words over a..e, "a b a c" -> 2 1 2 1."""

import random

from alta.programs._common import weighted_letters

SIZE = min(60, PARAMS["MAX_TOKENS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` letters, the length uniform. Half the inputs draw from a random subset
    of the letters with random weights, so that counts are skewed and some are large."""
    return weighted_letters(rng, rng.randint(0, size))


def oracle(text: str) -> str:
    words = text.split()
    return " ".join(str(words.count(w)) for w in words)
