"""Sampler and oracle for sort.alta: keys 0..59 as words, repeats allowed, sorted."""

import random

SIZE = 60
UNIT = "tokens"
KEYS = 60


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` keys drawn with replacement from a random pool of 1, 2, 3, 5, 10 or 60
    keys (so from all-equal inputs to mostly distinct ones); in random, sorted or reversed
    order."""
    n = rng.randint(0, size)
    pool = rng.sample(range(KEYS), rng.choice([1, 2, 3, 5, 10, KEYS]))
    keys = [rng.choice(pool) for _ in range(n)]
    order = rng.random()
    if order < 0.1:
        keys.sort()
    elif order < 0.2:
        keys.sort(reverse=True)
    return " ".join(map(str, keys))


def oracle(text: str) -> str:
    return " ".join(str(k) for k in sorted(int(w) for w in text.split()))
