"""Sampler and oracle for parity_sum_mod_2.alta: bits separated by spaces, "1 0 1 1" -> 1."""

import random

SIZE = 100
UNIT = "bits"


def sample(rng: random.Random, size: int) -> str:
    """0 to `size` bits, the length uniform and then each bit a fair coin."""
    return " ".join(rng.choice("01") for _ in range(rng.randint(0, size)))


def oracle(text: str) -> str:
    return str(text.split().count("1") % 2)
