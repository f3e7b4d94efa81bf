"""Sampler and oracle for dyck1.alta: strings of "(" and ")", 1 iff balanced."""

import random

from alta.programs._common import near_misses

SIZE = 100
UNIT = "chars"


def sample(rng: random.Random, size: int) -> str:
    """About half balanced strings; the rest are balanced strings with one or two small
    edits (a flipped, deleted, inserted or moved bracket: near misses), prefixes of
    balanced strings, or uniformly random strings; lengths from 0 to `size`."""
    return near_misses(rng, size, ("()",), cuts=(0.06, 0.15, 0.55, 0.65),
                       edits=("flip", "delete", "insert", "move"))


def oracle(text: str) -> str:
    depth = 0
    for c in text.replace(" ", ""):
        depth += 1 if c == "(" else -1
        if depth < 0:
            return "0"
    return "1" if depth == 0 else "0"
