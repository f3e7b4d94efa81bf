"""Sampler and oracle for dyck2.alta: strings of "()[]", 1 iff balanced (Dyck-2)."""

import random

from alta.programs._common import near_misses

SIZE = 60
UNIT = "chars"

PAIRS = {")": "(", "]": "["}


def sample(rng: random.Random, size: int) -> str:
    """About 40 % balanced strings; the rest are balanced strings with one or two small
    edits (one bracket's kind changed, its direction flipped, two brackets swapped, one
    deleted, inserted or moved: mostly near misses such as "([)]"), prefixes of balanced
    strings, or uniformly random strings; lengths from 0 to `size`."""
    return near_misses(rng, size, ("()", "[]"), cuts=(0.05, 0.12, 0.5, 0.58),
                       edits=("kind", "kind", "swap", "swap", "flip", "delete", "insert",
                              "move"))


def oracle(text: str) -> str:
    stack = []
    for c in text.replace(" ", ""):
        if c in "([":
            stack.append(c)
        elif not stack or stack.pop() != PAIRS[c]:
            return "0"
    return "0" if stack else "1"
