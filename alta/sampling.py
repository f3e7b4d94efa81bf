"""Random inputs for a program, for verification and datasets.

The default sampler draws input pieces (words or characters) uniformly from the vocabulary,
leaving out the tokens the program's framing reserves (those it places itself and does not
`allow` in the input), at lengths uniform in a range. Deterministic for a seed.
"""

from __future__ import annotations

import random

from alta import framing, ir


def input_alphabet(program: ir.Program) -> list[str]:
    """What inputs are drawn from: the tokens the input may contain (alta.framing)."""
    return framing.input_alphabet(program)


def longest_input(program: ir.Program) -> int | None:
    """How many input pieces fit in max_length after the framing tokens, if bounded."""
    if program.max_length is None:
        return None
    fixed = sum(item.count for item in program.framing if item.kind == "token")
    return max(program.max_length - fixed, 0)


def sample_inputs(program: ir.Program, count: int, max_length: int, seed: int = 0,
                  min_length: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = input_alphabet(program)
    words = next(item.kind for item in program.framing if item.kind != "token") == "words"
    cap = longest_input(program)
    top = max_length if cap is None else min(max_length, cap)
    out = []
    for _ in range(count):
        size = rng.randint(min(min_length, top), top) if alphabet else 0  # all reserved
        pieces = [rng.choice(alphabet) for _ in range(size)]
        out.append(" ".join(pieces) if words else "".join(pieces))
    return out
