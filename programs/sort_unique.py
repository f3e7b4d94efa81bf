"""Sampler and oracle for sort_unique.alta: distinct keys 0..59 as words, sorted."""

import random

from alta.programs._common import KEYS, in_some_order
from alta.programs._common import sorted_keys as oracle

__all__ = ["SIZE", "UNIT", "oracle", "sample"]

SIZE = min(60, PARAMS["MAX_WORDS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` distinct keys (at most 60), drawn from all of 0..59 or, for a quarter of
    the inputs, from a short run of consecutive keys; in random, sorted or reversed order."""
    n = rng.randint(0, min(size, KEYS))
    if rng.random() < 0.25:
        low = rng.randint(0, KEYS - n)
        keys = list(range(low, low + n))
        rng.shuffle(keys)
    else:
        keys = rng.sample(range(KEYS), n)
    return in_some_order(rng, keys)
