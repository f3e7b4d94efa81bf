"""Sampler and oracle for length.alta: words over the letters a..e, "a b c a" -> 4."""

import random

SIZE = min(60, PARAMS["MAX_TOKENS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` letters, the length uniform (so the empty input and one letter occur)."""
    return " ".join(rng.choice("abcde") for _ in range(rng.randint(0, size)))


def oracle(text: str) -> str:
    return str(len(text.split()))
