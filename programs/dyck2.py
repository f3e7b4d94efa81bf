"""Sampler and oracle for dyck2.alta: strings of "()[]", 1 iff balanced (Dyck-2)."""

import random

SIZE = 60
UNIT = "chars"

PAIRS = {")": "(", "]": "["}


def _balanced(rng: random.Random, pairs: int) -> list[str]:
    """A random balanced string of `pairs` pairs with random kinds; the chance to open
    varies per string, so that both flat and deeply nested strings occur."""
    p_open = rng.choice([0.5, 0.5, 0.3, 0.8])
    p_square = rng.choice([0.5, 0.5, 0.1, 0.9])
    out, stack, opens = [], [], 0
    while len(out) < 2 * pairs:
        if not stack or (opens < pairs and rng.random() < p_open):
            c = "[" if rng.random() < p_square else "("
            out.append(c)
            stack.append(c)
            opens += 1
        else:
            out.append(")" if stack.pop() == "(" else "]")
    return out


def sample(rng: random.Random, size: int) -> str:
    """About 40 % balanced strings; the rest are balanced strings with one or two small
    edits (one bracket's kind changed, its direction flipped, two brackets swapped, one
    deleted, inserted or moved: mostly near misses such as "([)]"), prefixes of balanced
    strings, or uniformly random strings; lengths from 0 to `size`."""
    kind = rng.random()
    if kind < 0.05:
        return "".join(rng.choice("()[]") for _ in range(rng.randint(0, min(size, 3))))
    if kind < 0.12:
        return "".join(rng.choice("()[]") for _ in range(rng.randint(0, size)))
    s = _balanced(rng, rng.randint(0, size // 2))
    if kind < 0.5 or not s:
        return "".join(s)
    if kind < 0.58:
        return "".join(s[:rng.randint(0, len(s))])
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(s))
        edit = rng.choice(["kind", "kind", "swap", "swap", "flip", "delete", "insert", "move"])
        if edit == "kind":
            s[i] = {"(": "[", "[": "(", ")": "]", "]": ")"}[s[i]]
        elif edit == "swap":
            j = min(len(s) - 1, i + rng.choice([1, 1, 2, 3]))
            s[i], s[j] = s[j], s[i]
        elif edit == "flip":
            s[i] = {"(": ")", "[": "]", ")": "(", "]": "["}[s[i]]
        elif edit == "delete" and len(s) > 1:
            del s[i]
        elif edit == "insert" and len(s) < size:
            s.insert(i, rng.choice("()[]"))
        elif edit == "move":
            c = s.pop(i)
            s.insert(rng.randrange(len(s) + 1), c)
    return "".join(s)


def oracle(text: str) -> str:
    stack = []
    for c in text.replace(" ", ""):
        if c in "([":
            stack.append(c)
        elif not stack or stack.pop() != PAIRS[c]:
            return "0"
    return "0" if stack else "1"
