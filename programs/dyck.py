"""Sampler and oracle for dyck.alta: strings of brackets, 1 iff balanced (Dyck-KINDS: the first
KINDS of "()", "[]", "{}", "<>"; a bracket of another kind is never balanced)."""

import random

from alta.programs._common import near_misses

KINDS = ("()", "[]", "{}", "<>")[:PARAMS["KINDS"]]  # noqa: F821 (PARAMS: the program's parameters)
SIZE = PARAMS["MAX_LENGTH"]  # noqa: F821
UNIT = "chars"

PARTNERS = {close: open_ for open_, close in KINDS}


def sample(rng: random.Random, size: int) -> str:
    """Lengths from 0 to `size`: with one kind, about half balanced strings; with more,
    about 40 %. The rest are balanced strings with one or two small edits (near misses
    such as "([)]": with several kinds mostly one bracket's kind changed or two brackets
    swapped, else a bracket flipped, deleted, inserted or moved), prefixes of balanced
    strings, or uniformly random strings."""
    if len(KINDS) == 1:
        return near_misses(rng, size, KINDS, cuts=(0.06, 0.15, 0.55, 0.65),
                           edits=("flip", "delete", "insert", "move"))
    return near_misses(rng, size, KINDS, cuts=(0.05, 0.12, 0.5, 0.58),
                       edits=("kind", "kind", "swap", "swap", "flip", "delete", "insert",
                              "move"))


def oracle(text: str) -> str:
    stack = []
    for c in text.replace(" ", ""):
        if c in PARTNERS:
            if not stack or stack.pop() != PARTNERS[c]:
                return "0"
        elif any(c == open_ for open_, _ in KINDS):
            stack.append(c)
        else:  # a bracket of a kind this setting does not have
            return "0"
    return "0" if stack else "1"
