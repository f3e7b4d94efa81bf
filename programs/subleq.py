"""Sampler and oracle for subleq.alta: a SUBLEQ machine whose memory is the input.

The memory is L <= 32 words, integers in -64..63 (arithmetic wraps around mod 128). pc starts
at 0; an instruction a, b, c = mem[pc..pc+2] halts the machine if a or b is not an address
(0..L-1), else does mem[b] -= mem[a] and jumps to c if the result is <= 0 (else pc += 3).
The machine halts when pc is not in 0..L-3, and the run stops after MAX_STEPS instructions
in any case. The output is the final memory, space-separated.
"""

from __future__ import annotations

import random

SIZE = 32
UNIT = "memory cells"

MAX_CELLS = 32
MAX_STEPS = 128
LOW, HIGH = -64, 63


def _wrap(v: int) -> int:
    return (v - LOW) % (HIGH - LOW + 1) + LOW


def execute(memory: list[int], max_steps: int = MAX_STEPS) -> tuple[list[int], int, bool]:
    """Runs the machine: (final memory, instructions executed, whether it halted)."""
    mem = list(memory)
    n = len(mem)
    pc = 0
    for step in range(max_steps):
        if not 0 <= pc <= n - 3:
            return mem, step, True
        a, b, c = mem[pc], mem[pc + 1], mem[pc + 2]
        if not (0 <= a < n and 0 <= b < n):
            return mem, step, True
        mem[b] = _wrap(mem[b] - mem[a])
        pc = c if mem[b] <= 0 else pc + 3
    return mem, max_steps, not 0 <= pc <= n - 3


def oracle(text: str) -> str:
    memory = [int(word) for word in text.split()]
    return " ".join(str(v) for v in execute(memory)[0])


# ---- sampling ----------------------------------------------------------------------------

def _adder(rng: random.Random, size: int) -> list[int] | None:
    """B += A with a scratch cell Z, operands anywhere after the code, padding between."""
    if size < 12:
        return None
    n = rng.randint(12, size)
    cells = rng.sample(range(9, n), 3)
    a, b, z = cells
    mem = [rng.randint(LOW, HIGH) for _ in range(n)]
    mem[0:9] = [a, z, 3, z, b, 6, z, z, rng.choice([-1, -7, n, 40, HIGH])]
    mem[z] = 0
    mem[a], mem[b] = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
    return mem


def _multiplier(rng: random.Random, size: int) -> list[int] | None:
    """P += X * Y by a loop that adds X to P and decrements Y until it is <= 0."""
    if size < 20:
        return None
    # 0: X Z 3 | 3: Z P 6 | 6: Z Z 9 | 9: ONE Y 15 (Y <= 0: done) | 12: Z Z 0 | 15: Z Z -1
    x, y, z, one, p = 18, 19, 20, 21, 22
    if size < 23:
        return None
    n = rng.randint(23, size)
    mem = [rng.randint(LOW, HIGH) for _ in range(n)]
    mem[0:18] = [x, z, 3, z, p, 6, z, z, 9, one, y, 15, z, z, 0, z, z, -1]
    mem[x], mem[y], mem[z], mem[one], mem[p] = (
        rng.randint(-9, 9), rng.randint(0, 12), 0, 1, rng.randint(-5, 5))
    return mem


def _random_program(rng: random.Random, size: int) -> list[int]:
    """Random cells. Most are shaped as code: the words a, b of an instruction slot are
    mostly addresses and its c mostly an instruction start, so programs run for a while;
    the rest are values of every kind (invalid addresses halt the machine)."""
    n = rng.randint(0, size)
    code = rng.random() < 0.9
    mem = []
    for i in range(n):
        role = i % 3
        if code and role < 2 and rng.random() < 0.9:
            mem.append(rng.randrange(n))                 # an address
        elif code and role == 2 and n >= 3 and rng.random() < 0.7:
            mem.append(rng.randrange(n - 2))             # an instruction start
        elif rng.random() < 0.5:
            mem.append(rng.randint(-4, 4))               # small values: halts, loops
        else:
            mem.append(rng.randint(LOW, HIGH))
    return mem


def sample(rng: random.Random, size: int) -> str:
    """A memory of at most `size` cells whose run halts within MAX_STEPS (rejection with
    the oracle's interpreter): random programs, plus adders and multipliers with random
    operands and random cells around them."""
    size = min(size, MAX_CELLS)
    while True:
        kind = rng.random()
        mem = None
        if kind < 0.15:
            mem = _adder(rng, size)
        elif kind < 0.25:
            mem = _multiplier(rng, size)
        if mem is None:
            mem = _random_program(rng, size)
        if execute(mem)[2]:
            return " ".join(str(v) for v in mem)


def benchmark(rng: random.Random) -> str:
    """A 16-cell adder (the reference's benchmark size)."""
    while True:
        mem = _adder(rng, 16)
        if len(mem) == 16:
            return " ".join(str(v) for v in mem)
