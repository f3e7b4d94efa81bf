"""Sampler and oracle for addition.alta: two non-negative integers, "a+b"."""

import random

SIZE = min(40, PARAMS["MAX_DIGITS"])  # noqa: F821 (PARAMS: the program's parameters)
UNIT = "digits per operand"


def _number(rng: random.Random, digits: int) -> str:
    if digits == 1:
        return str(rng.randrange(10))
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(digits - 1))


def sample(rng: random.Random, size: int) -> str:
    """Operands of 1 to `size` digits each, lengths drawn independently, no leading zeros."""
    return f"{_number(rng, rng.randint(1, size))}+{_number(rng, rng.randint(1, size))}"


def size_of(text: str) -> int:
    """The longer operand's digits."""
    return max(len(part) for part in text.split("+"))


def oracle(text: str) -> str:
    a, b = text.split("+")
    return str(int(a) + int(b))


def benchmark(rng: random.Random) -> str:
    """The reference's timed input: 49 tokens framed, two 23-digit operands."""
    return f"{_number(rng, 23)}+{_number(rng, 23)}"
