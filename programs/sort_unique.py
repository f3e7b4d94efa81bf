"""Sampler and oracle for sort_unique.alta: distinct keys 0..59 as words, sorted."""

import random

SIZE = 60
UNIT = "tokens"
KEYS = 60


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
    order = rng.random()
    if order < 0.1:
        keys.sort()
    elif order < 0.2:
        keys.sort(reverse=True)
    return " ".join(map(str, keys))


def oracle(text: str) -> str:
    return " ".join(str(k) for k in sorted(int(w) for w in text.split()))
