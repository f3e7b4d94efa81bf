"""Sampler and oracle for sort_frequency.alta: words over a..e sorted by descending count,
ties in the order of first occurrence, copies kept together: "a b b c" -> b b a c."""

import random

SIZE = 60
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` letters, the length uniform. Half the inputs draw from a random subset
    of the letters with random weights; a quarter are built so that several letters tie."""
    n = rng.randint(0, size)
    letters = list("abcde")
    if n >= 2 and rng.random() < 0.25:
        tied = rng.sample(letters, rng.randint(2, 5))
        each = max(1, n // len(tied))
        words = [w for w in tied for _ in range(each)][:size]
        rng.shuffle(words)
        return " ".join(words)
    if rng.random() < 0.5:
        letters = rng.sample(letters, rng.randint(1, 5))
    weights = [rng.random() for _ in letters]
    return " ".join(rng.choices(letters, weights, k=n))


def oracle(text: str) -> str:
    words = text.split()
    counts = {}
    for w in words:                       # dicts keep insertion (first occurrence) order
        counts[w] = counts.get(w, 0) + 1
    order = sorted(counts, key=lambda w: -counts[w])      # stable: ties keep that order
    return " ".join(w for w in order for _ in range(counts[w]))
