"""Random inputs for a program, for verification and datasets.

The default sampler draws input pieces (words or characters) uniformly from the vocabulary,
leaving out the tokens the program's framing reserves (those it places itself and does not
`allow` in the input), at lengths uniform in a range. Deterministic for a seed. Where a
program has a task module (alta.tasks), its sampler is used instead (`draw_inputs`).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from alta import framing, ir

if TYPE_CHECKING:
    from alta.tasks import Task

DEFAULT_LENGTH = 32  # input pieces, for a program without a task module or a given size


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


def default_size(program: ir.Program, task: Task | None) -> int:
    """How large sampled inputs are when no size is given: the task module's size (in its
    unit), else DEFAULT_LENGTH pieces or what the program's max_length allows."""
    if task is not None:
        return task.size
    cap = longest_input(program)
    return DEFAULT_LENGTH if cap is None else min(cap, DEFAULT_LENGTH)


def draw_inputs(program: ir.Program, task: Task | None, count: int, size: int | None = None,
                seed: int = 0) -> list[str]:
    """`count` inputs of at most `size` units (default: `default_size`), deterministic for a
    seed: from the task module's sampler where the program has one (well-formed inputs for
    its task), else from the generic one."""
    if task is not None:
        return task.inputs(count, size, seed=seed)
    return sample_inputs(program, count, default_size(program, None) if size is None else size,
                         seed=seed)
