"""Sampler and oracle for scan.alta: SCAN commands (Lake & Baroni 2018) -> action sequences.

The grammar (every command it generates, about 20,910 of them, at most 9 words):

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> X opposite DIR | X around DIR | D | U        (X is U or "turn")
    D -> U DIR | turn DIR                              (DIR is "left" or "right")
    U -> walk | look | run | jump

`oracle` is a small recursive interpreter of this grammar in plain Python, written from the
semantics (not from the program): "x and y" is x then y, "x after y" is y then x, twice and
thrice repeat, "U left" is I_TURN_LEFT then U's action, "U opposite left" turns twice first,
"U around left" is (I_TURN_LEFT U) four times, and with "turn" there is no U action.
"""

from __future__ import annotations

import random
from functools import cache, lru_cache

SIZE = 9
UNIT = "words"

VERBS = ("walk", "look", "run", "jump")
DIRECTIONS = ("left", "right")
ACTION = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
REPEAT = {"twice": 2, "thrice": 3}
CONJUNCTIONS = ("and", "after")


# ---- the grammar, enumerated ---------------------------------------------------------------

def _v_phrases() -> list[str]:
    out = list(VERBS)                                                    # V -> U
    out += [f"{x} {d}" for x in VERBS + ("turn",) for d in DIRECTIONS]   # V -> D
    out += [f"{x} {m} {d}" for m in ("opposite", "around")               # V -> X op DIR
            for x in VERBS + ("turn",) for d in DIRECTIONS]
    return out


def _s_phrases() -> list[str]:
    vs = _v_phrases()
    return vs + [f"{v} {r}" for r in REPEAT for v in vs]


@lru_cache(maxsize=1)
def _all() -> tuple[str, ...]:
    ss = _s_phrases()
    return tuple(ss + [f"{a} {c} {b}" for c in CONJUNCTIONS for a in ss for b in ss])


def all_commands() -> list[str]:
    """Every command the grammar generates (20,910), in a fixed order."""
    return list(_all())


@cache
def _by_length(size: int) -> tuple[str, ...]:
    return tuple(c for c in _all() if len(c.split()) <= size)


def sample(rng: random.Random, size: int) -> str:
    """A command drawn uniformly from those of at most `size` words (all of them for
    size >= 9). No command is shorter than one word: a size below 1 counts as 1."""
    pool = _by_length(max(size, 1))
    return pool[rng.randrange(len(pool))]


# ---- the semantics -------------------------------------------------------------------------

def _u(word: str) -> list[str]:
    if word not in ACTION:
        raise ValueError(f"not a U: {word!r}")
    return [ACTION[word]]


def _v(words: list[str]) -> list[str]:
    if len(words) == 1:
        return _u(words[0])
    if len(words) == 2:                                   # D -> U DIR | turn DIR
        x, d = words
        if d not in TURN:
            raise ValueError(f"not a D: {' '.join(words)!r}")
        return [TURN[d]] + ([] if x == "turn" else _u(x))
    if len(words) == 3:                                   # V -> X opposite/around DIR
        x, m, d = words
        if d not in TURN or m not in ("opposite", "around"):
            raise ValueError(f"not a V: {' '.join(words)!r}")
        step = [TURN[d]] + ([] if x == "turn" else _u(x))
        if m == "opposite":
            return [TURN[d]] + step
        return step * 4
    raise ValueError(f"not a V: {' '.join(words)!r}")


def _s(words: list[str]) -> list[str]:
    if words and words[-1] in REPEAT:
        return _v(words[:-1]) * REPEAT[words[-1]]
    return _v(words)


def _c(words: list[str]) -> list[str]:
    for conjunction in CONJUNCTIONS:
        if conjunction in words:
            i = words.index(conjunction)
            first, second = _s(words[:i]), _s(words[i + 1:])
            return first + second if conjunction == "and" else second + first
    return _s(words)


def oracle(text: str) -> str:
    """The action sequence of a SCAN command, space-separated; "" for a text that is not a
    command (the program prints an empty line for it)."""
    try:
        return " ".join(_c(text.split()))
    except ValueError:
        return ""


def benchmark(rng: random.Random) -> str:
    """One of the longest commands: 9 words, 48 actions."""
    return "jump around left thrice and walk around right thrice"
