"""Sampler and oracle for most_frequent.alta: words over a..e, "a b b c" -> b.

Ties go to the word whose first occurrence comes first; the empty input prints nothing."""

import random

from alta.programs._common import LETTERS, counts, weighted_letters

SIZE = min(60, PARAMS["MAX_TOKENS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "tokens"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` letters, the length uniform. Most inputs draw from a random subset of
    the letters with random weights (clear winners); a third are built to tie: two or more
    letters with the same count, shuffled, plus maybe fewer of others."""
    n = rng.randint(0, size)
    if n >= 2 and rng.random() < 1 / 3:
        letters = list(LETTERS)
        tied = rng.sample(letters, rng.randint(2, 5))
        top = rng.randint(1, n // len(tied)) if n >= len(tied) else 1
        words = [w for w in tied for _ in range(top)]
        others = [w for w in letters if w not in tied]
        for w in others:
            words += [w] * rng.randint(0, max(0, min(top - 1, size - len(words))))
        words = words[:size]
        rng.shuffle(words)
        return " ".join(words)
    return weighted_letters(rng, n)


def oracle(text: str) -> str:
    words = text.split()
    if not words:
        return ""
    in_order = counts(words)  # in the order of first occurrences
    best = max(in_order.values())
    return next(w for w, c in in_order.items() if c == best)
