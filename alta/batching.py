"""Many inputs as a few fixed-shape batches: which inputs run together, padded to what.

A compiled model is compiled by XLA once per array shape, and a batch runs until its deepest
input halts, so the inputs are (1) read a window at a time (memory is bounded by the window,
not the input file), (2) ordered by length within the window, so that a batch holds inputs of
similar length and padding is small, and (3) padded to shapes drawn from a few buckets: a
position count that is a power of two (at least `least_positions`, at most the longest input
the model is exact for) and a row count that is a power of two, so that a program compiles a
handful of executables however many inputs it runs. Results go back in input order
(`Planned.indices` says where each row came from).

Pure planning over lengths: no JAX, no model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchSettings:
    """How large batches are. `tokens` (rows x positions per batch) bounds a batch's memory
    and keeps the per-layer work large enough to amortise a layer's fixed cost; on CPUs,
    batches of a few thousand positions ran fastest per input (benchmarks/whole_process.py)."""

    tokens: int = 2048  # padded positions per batch, rows x positions
    most_rows: int = 128
    least_positions: int = 8
    window: int = 1024  # inputs read ahead and ordered by length
    # Inputs that fit one batch of at most this many padded positions run as that one batch,
    # whatever their position buckets: one shape to compile instead of several, where the
    # padding costs next to nothing (0: never).
    together: int = 0

    def __post_init__(self) -> None:
        if self.together < 0:
            raise ValueError(f"batch settings must not be negative: {self}")
        if min(self.tokens, self.most_rows, self.least_positions, self.window) < 1:
            raise ValueError(f"batch settings must be positive: {self}")
        if self.most_rows & (self.most_rows - 1):
            raise ValueError(f"most_rows must be a power of two, got {self.most_rows}")


DEFAULT = BatchSettings()


@dataclass(frozen=True)
class Planned:
    """One batch: its inputs (indices into the window, shortest first) and padded shape."""

    indices: tuple[int, ...]
    rows: int  # >= len(indices)
    positions: int  # >= the longest input's length


def power_of_two_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def position_bucket(length: int, cap: int | None, settings: BatchSettings = DEFAULT
                    ) -> int:
    """The padded position count for inputs of up to `length` positions: a power of two of
    at least `settings.least_positions`, or `cap` (the longest input the model is exact for)
    where that power would pass it (an input longer than `cap` is the caller's to reject)."""
    bucket = max(power_of_two_at_least(length), settings.least_positions)
    if cap is not None and length <= cap:
        bucket = min(bucket, cap)
    return bucket


def row_bucket(count: int, settings: BatchSettings = DEFAULT) -> int:
    """The padded row count of a batch of `count` inputs: a power of two (`count` itself
    past `settings.most_rows`, where a caller asked for one large batch)."""
    return power_of_two_at_least(count) if count <= settings.most_rows else count


def rows_for(positions: int, settings: BatchSettings = DEFAULT) -> int:
    """How many inputs a full batch of `positions` positions holds: a power of two, at most
    `settings.most_rows`, about `settings.tokens` positions in all."""
    rows = max(settings.tokens // max(positions, 1), 1)
    return min(1 << (rows.bit_length() - 1), settings.most_rows)


def plan_batches(lengths: Sequence[int], cap: int | None = None,
                 settings: BatchSettings = DEFAULT) -> list[Planned]:
    """Batches for inputs of `lengths` (positions each, in input order): ordered by length
    (ties in input order), split where the position bucket changes or a batch is full, each
    padded to bucket shapes; all in one batch, padded to the longest's bucket, where that
    batch has at most `settings.together` padded positions. Every index appears in exactly
    one batch."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if order and len(order) <= settings.most_rows:
        positions = position_bucket(lengths[order[-1]], cap, settings)
        rows = row_bucket(len(order), settings)
        if rows * positions <= min(settings.together, max(settings.tokens, positions)):
            return [Planned(tuple(order), rows, positions)]
    plans = []
    for positions, group in itertools.groupby(
            order, key=lambda i: position_bucket(lengths[i], cap, settings)):
        members = list(group)
        full = rows_for(positions, settings)
        for start in range(0, len(members), full):
            indices = tuple(members[start:start + full])
            plans.append(Planned(indices, row_bucket(len(indices), settings), positions))
    return plans


def windows(items: Iterable, size: int) -> Iterator[list]:
    """`items` in consecutive lists of `size` (the last may be shorter), read lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
