"""Sampler and oracle for sort.alta: keys 0..59 as words, repeats allowed, sorted."""

import random

from alta.programs._common import KEYS, in_some_order
from alta.programs._common import sorted_keys as oracle

__all__ = ["SIZE", "UNIT", "oracle", "sample"]

SIZE = min(60, PARAMS["N"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` keys drawn with replacement from a random pool of 1, 2, 3, 5, 10 or 60
    keys (so from all-equal inputs to mostly distinct ones); in random, sorted or reversed
    order."""
    n = rng.randint(0, size)
    pool = rng.sample(range(KEYS), rng.choice([1, 2, 3, 5, 10, KEYS]))
    return in_some_order(rng, [rng.choice(pool) for _ in range(n)])
