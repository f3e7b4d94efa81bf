"""What several bundled task modules share (alta.tasks: a sampler and an oracle per program).

Not a task itself (no program goes with it): the building blocks of samplers that several
tasks draw alike, and the oracles of tasks that several programs solve. Each task module
imports what it needs as `alta.programs._common`, since alta.tasks loads task modules by
path rather than as members of a package.
"""

import random
import struct
from decimal import Decimal
from fractions import Fraction

# ---- bits: parity, parity_absolute, parity_sum_mod_2 ---------------------------------------


def sample_bits(rng: random.Random, size: int) -> str:
    """0 to `size` bits, the length uniform and then each bit a fair coin."""
    return " ".join(rng.choice("01") for _ in range(rng.randint(0, size)))


def parity(text: str) -> str:
    return str(text.split().count("1") % 2)


# ---- two numbers, "a+b": addition, addition_sequential ---------------------------------------


def number(rng: random.Random, digits: int) -> str:
    """A non-negative integer of exactly `digits` digits, without leading zeros."""
    if digits == 1:
        return str(rng.randrange(10))
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(digits - 1))


def sample_sum(rng: random.Random, size: int) -> str:
    """Operands of 1 to `size` digits each, lengths drawn independently, no leading zeros."""
    return f"{number(rng, rng.randint(1, size))}+{number(rng, rng.randint(1, size))}"


def longer_operand(text: str) -> int:
    """The longer operand's digits (the size of an addition)."""
    return max(len(part) for part in text.split("+"))


def integer_sum(text: str) -> str:
    a, b = text.split("+")
    return str(int(a) + int(b))


def reference_sum(rng: random.Random) -> str:
    """The reference's timed input: 49 tokens framed, two 23-digit operands."""
    return f"{number(rng, 23)}+{number(rng, 23)}"


# ---- words over a..e: histogram, most_frequent, sort_frequency ------------------------------

LETTERS = "abcde"


def weighted_letters(rng: random.Random, n: int) -> str:
    """`n` letters, half the time from a random subset of them, each letter with a random
    weight, so that counts are skewed and some are large."""
    letters = list(LETTERS)
    if rng.random() < 0.5:
        letters = rng.sample(letters, rng.randint(1, 5))
    weights = [rng.random() for _ in letters]
    return " ".join(rng.choices(letters, weights, k=n))


def counts(words: list[str]) -> dict[str, int]:
    """How often each word occurs, in the order of their first occurrences."""
    out: dict[str, int] = {}
    for w in words:  # dicts keep insertion (first occurrence) order
        out[w] = out.get(w, 0) + 1
    return out


# ---- keys 0..59 as words: sort, sort_unique --------------------------------------------------

KEYS = 60


def in_some_order(rng: random.Random, keys: list[int]) -> str:
    """The keys as drawn, or sorted (a tenth of the time), or reversed (another tenth)."""
    order = rng.random()
    if order < 0.1:
        keys.sort()
    elif order < 0.2:
        keys.sort(reverse=True)
    return " ".join(map(str, keys))


def sorted_keys(text: str) -> str:
    return " ".join(str(k) for k in sorted(int(w) for w in text.split()))


# ---- brackets: dyck ----------------------------------------------------------------------------


def balanced(rng: random.Random, pairs: int, kinds: tuple[str, ...]) -> list[str]:
    """A random balanced string of `pairs` pairs of brackets (`kinds`: "()" or "()", "[]").
    The chance to open varies per string, so that both flat ("()()()") and deep
    ("((()))") strings occur; with two kinds, so does the share of the second kind."""
    p_open = rng.choice([0.5, 0.5, 0.3, 0.8])
    p_second = rng.choice([0.5, 0.5, 0.1, 0.9]) if len(kinds) > 1 else 0.0
    out, stack, opens = [], [], 0
    while len(out) < 2 * pairs:
        if not stack or (opens < pairs and rng.random() < p_open):
            kind = kinds[1] if len(kinds) > 1 and rng.random() < p_second else kinds[0]
            out.append(kind[0])
            stack.append(kind)
            opens += 1
        else:
            out.append(stack.pop()[1])
    return out


def near_misses(rng: random.Random, size: int, kinds: tuple[str, ...],
                cuts: tuple[float, float, float, float], edits: tuple[str, ...]) -> str:
    """A bracket string of length 0 to `size`. `cuts` are the cumulative chances of a short
    random string (up to 3 brackets), a random string, a balanced string and a prefix of
    one; the rest are balanced strings with one or two `edits` (near misses): "flip" a
    bracket's direction, change its "kind", "swap" it with one of the next three,
    "delete", "insert" or "move" one."""
    alphabet = "".join(kinds)
    kind = rng.random()
    if kind < cuts[0]:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, min(size, 3))))
    if kind < cuts[1]:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))
    s = balanced(rng, rng.randint(0, size // 2), kinds)
    if kind < cuts[2] or not s:
        return "".join(s)
    if kind < cuts[3]:
        return "".join(s[:rng.randint(0, len(s))])
    flipped = {c: d for x in kinds for c, d in (x, x[::-1])}  # "(" <-> ")", "[" <-> "]"
    # "(" -> "[" -> ... -> "(": with two kinds a swap, with more every kind changes
    other_kind = {c: d for x, y in zip(kinds, kinds[1:] + kinds[:1]) for c, d in zip(x, y)}
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(s))
        edit = rng.choice(edits)
        if edit == "kind":
            s[i] = other_kind[s[i]]
        elif edit == "swap":
            j = min(len(s) - 1, i + rng.choice([1, 1, 2, 3]))
            s[i], s[j] = s[j], s[i]
        elif edit == "flip":
            s[i] = flipped[s[i]]
        elif edit == "delete" and len(s) > 1:
            del s[i]
        elif edit == "insert" and len(s) < size:
            s.insert(i, rng.choice(alphabet))
        elif edit == "move":
            c = s.pop(i)
            s.insert(rng.randrange(len(s) + 1), c)
    return "".join(s)


# ---- numbers as ALTA prints them: frac_prevs (and the tests of printing) --------------------


def shortest_float32(x: Fraction | float) -> str:
    """The fewest significant digits (9 always suffice) whose decimal rounds to the same
    float32 as `x`, written out as Python writes floats (scientific below 1e-4 and from
    1e16 up, with two exponent digits or more), with no trailing ".0"."""
    def f32(value: float) -> bytes:
        return struct.pack("<f", value)

    target = f32(float(x))
    nearest = struct.unpack("<f", target)[0]
    for digits in range(1, 10):
        text = f"{nearest:.{digits - 1}e}"
        if f32(float(text)) == target:
            break
    mantissa, exponent = text.split("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    if nearest == 0 or -4 <= int(exponent) < 16:
        return format(Decimal(f"{mantissa}e{exponent}").normalize(), "f")
    return f"{mantissa}e{int(exponent):+03d}"
