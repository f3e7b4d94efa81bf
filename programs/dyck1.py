"""Sampler and oracle for dyck1.alta: strings of "(" and ")", 1 iff balanced."""

import random

SIZE = 100
UNIT = "chars"


def _balanced(rng: random.Random, pairs: int) -> list[str]:
    """A random balanced string of `pairs` pairs; the chance to open varies per string, so
    that both flat ("()()()") and deep ("((()))") strings occur."""
    p_open = rng.choice([0.5, 0.5, 0.3, 0.8])
    out, depth, opens = [], 0, 0
    while len(out) < 2 * pairs:
        if depth == 0 or (opens < pairs and rng.random() < p_open):
            out.append("(")
            depth, opens = depth + 1, opens + 1
        elif opens == pairs or depth > 0:
            out.append(")")
            depth -= 1
    return out


def sample(rng: random.Random, size: int) -> str:
    """About half balanced strings; the rest are balanced strings with one or two small
    edits (a flipped, deleted, inserted or moved bracket: near misses), prefixes of
    balanced strings, or uniformly random strings; lengths from 0 to `size`."""
    kind = rng.random()
    if kind < 0.06:
        return "".join(rng.choice("()") for _ in range(rng.randint(0, min(size, 3))))
    if kind < 0.15:
        return "".join(rng.choice("()") for _ in range(rng.randint(0, size)))
    s = _balanced(rng, rng.randint(0, size // 2))
    if kind < 0.55 or not s:
        return "".join(s)
    if kind < 0.65:
        return "".join(s[:rng.randint(0, len(s))])
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(s))
        edit = rng.choice(["flip", "delete", "insert", "move"])
        if edit == "flip":
            s[i] = "(" if s[i] == ")" else ")"
        elif edit == "delete" and len(s) > 1:
            del s[i]
        elif edit == "insert" and len(s) < size:
            s.insert(i, rng.choice("()"))
        elif edit == "move":
            c = s.pop(i)
            s.insert(rng.randrange(len(s) + 1), c)
    return "".join(s)


def oracle(text: str) -> str:
    depth = 0
    for c in text.replace(" ", ""):
        depth += 1 if c == "(" else -1
        if depth < 0:
            return "0"
    return "1" if depth == 0 else "0"
