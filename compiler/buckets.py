"""Where the compiled MLP's numerical steps sit: one ramp between each two declared values.

The MLP reads a numerical dimension through clipped-ReLU steps: step k is 0 at or below
`start` and 1 at or above `end`, and bucket k (the declared value values[k]) is step k-1
minus step k. The interpreter snaps a number to the nearest declared value, ties up
(alta.semantics.snap, on the exact value); the compiled model must read the same bucket
from a float32 approximation of that value. So a step's ramp must lie strictly between the
values the signal can really take on either side of the snapping boundary:

- a numerical **variable** only ever holds declared values: the ramp is the middle half of
  the gap (values[k] + gap/4 .. values[k + 1] - gap/4), exact within a quarter gap;
- a numerical **head** yields the mean of the k values it selects, and a mean need not be a
  declared value. If the value variable's values are rationals n_i / q, every mean of k of
  them is s / (q k) for an integer s between k min(n) and k max(n). For each boundary we
  find, exactly (integers; a Stern-Brocot descent, so ~1,000 boundaries and 100,000
  positions cost milliseconds), the largest such mean below the boundary and the smallest
  at or above it (declared values count too, so a block holding one reads as it), and put
  the ramp in the middle half of that *window*. A window is narrower than the gap (at 7/24,
  a 24-position head declared {1/4, 1/3, ...} has the window 2/7 .. 7/24), which bounds how
  far float32 may move the mean: that bound, hence the guaranteed length, comes from the
  narrowest window, and a shorter length allows fewer means, so wider windows.

`bucket_thresholds(program, name)` is the whole answer for one variable or head;
`mean_windows` and `steps_between` are its parts, for signals of other shapes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from alta import ir, semantics
from alta.means import achievable_means

DEFAULT_GUARANTEED_LENGTH = 100_000  # for programs that declare no max_length
FLOAT32_EPS = 2.0 ** -24
ROUNDING_SLACK = 8  # float32 operations besides the mean's sum: softmax, step units, weights


@dataclass(frozen=True)
class Step:
    """A clipped-ReLU ramp: 0 at or below `start`, 1 at or above `end`. The signal's values
    that must read below it are at most `below`, those that must read above at least
    `above` (start and end are the middle half of that window)."""

    start: float
    end: float
    below: Fraction
    above: Fraction

    @property
    def tolerance(self) -> float:
        """How far the signal may be off and still be read exactly."""
        return float(self.above - self.below) / 4


@dataclass(frozen=True)
class Buckets:
    """How the MLP reads one numerical variable or head: `steps[k]` separates values[k]
    from values[k + 1]. `positions` is the longest sequence for which float32 attention
    keeps every possible mean within its step's tolerance (None: not a head)."""

    values: tuple[float, ...]
    steps: tuple[Step, ...]
    positions: int | None = None

    @property
    def tolerance(self) -> float:
        return min((s.tolerance for s in self.steps), default=math.inf)

    def read(self, x) -> np.ndarray:
        """The declared value the compiled MLP reads from raw dimension values `x` (where a
        value lies on a ramp, the ramp's middle decides)."""
        middles = np.array([(s.start + s.end) / 2 for s in self.steps])
        return np.asarray(self.values)[np.searchsorted(middles, x, side="right")]


def steps_between(values: Sequence[float], windows) -> tuple[Step, ...]:
    """Ramps in the middle half of each window (below, above) between two values."""
    steps = []
    for below, above in windows:
        quarter = (above - below) / 4
        steps.append(Step(float(below + quarter), float(above - quarter), below, above))
    return tuple(steps)


def bucket_thresholds(program: ir.Program, name: str, length: int | None = None) -> Buckets:
    """The steps of a numerical variable or head. For a head, `length` is the longest
    sequence to plan for (default: the program's max_length, else 100,000); the result's
    `positions` says how much of it float32 can guarantee."""
    type_ = program.type_of(name)
    if name in program.head_index and program.head(name).counts:
        target = length or program.max_length or DEFAULT_GUARANTEED_LENGTH
        return count_buckets(type_.size - 1, target)
    assert isinstance(type_, ir.Numerical), name
    values = type_.values
    if name not in program.head_index:
        return Buckets(values, steps_between(values, _gaps(values)))
    head = program.head(name)
    source = program.variable(head.value).type.values
    target = length or program.max_length or DEFAULT_GUARANTEED_LENGTH
    offsets = len(head.offsets) if head.offsets is not None else None
    return _head_buckets(values, source, offsets, target)


def sink_weight(maximum: int) -> int:
    """How many matches a count head's attention sink weighs as: the head's maximum count
    M (at least 1). The sink's logit is a match's plus ln M (compiler/weights.py)."""
    return max(maximum, 1)


def count_share(count, maximum: int):
    """What a count head's dimension holds for `count` selected positions: their share of
    the attention, k / (k + M), the sink taking the rest. With the sink weighing as M
    matches, the shares stay nearly evenly spaced (gaps above 1 / (4 M)) and small, so
    float32 resolves them far longer than k / (k + 1) (whose gaps shrink as 1 / k^2)."""
    return count / (count + sink_weight(maximum))


# The sink's logit ln M + beta and a match's beta are float32: M acts as M (1 + d) with
# |d| a few tens of u, moving each share by at most that relative amount; counted as this
# many more roundings in the bound below.
SINK_ROUNDING = 32


@functools.lru_cache(maxsize=64)
def count_buckets(maximum: int, target: int) -> Buckets:
    """How the MLP reads a count head: bucket k is the count k, the steps sit in the middle
    half of each gap between the shares of k and k + 1 (no other value is possible, so the
    windows are the gaps themselves). The guaranteed length is the most positions c <= target
    for which float32 keeps the shares of every count up to min(c, maximum) inside their
    windows, by the bound for means of values in [0, 1] (`_float32_positions`: the shares
    are means of 1 at the selected positions and 0 at the sink)."""
    weight = sink_weight(maximum)
    shares = [Fraction(k, k + weight) for k in range(maximum + 1)]
    windows = list(itertools.pairwise(shares))

    def exact(c: int) -> bool:  # counts 0..min(c, maximum) read exactly
        c = min(c, maximum)
        return _float32_positions(windows[:c], (0.0, 1.0)) - SINK_ROUNDING // 2 >= c

    low, high = 0, target
    while low < high:  # the largest exact c (exact is monotone: fewer counts, fewer windows)
        mid = (low + high + 1) // 2
        low, high = (mid, high) if exact(mid) else (low, mid - 1)
    return Buckets(tuple(range(maximum + 1)), steps_between(shares, windows), low)


def _gaps(values: Sequence[float]) -> list[tuple[Fraction, Fraction]]:
    exact = [Fraction(v) for v in values]
    return list(itertools.pairwise(exact))


@functools.lru_cache(maxsize=64)
def _head_buckets(values: tuple[float, ...], source: tuple[float, ...], offsets: int | None,
                  target: int) -> Buckets:
    """The longest length N <= target at which float32 keeps every mean of at most
    min(N, offsets) selected values inside its window, and the steps for it."""
    def count(n: int) -> int:  # how many positions a head can select in n positions
        return max(min(n, offsets) if offsets is not None else n, 1)

    def bound(n: int) -> tuple[list, int]:
        windows = mean_windows(values, source, count(n))
        return windows, _float32_positions(windows, source)

    windows, limit = bound(target)
    if limit >= count(target):
        return Buckets(values, steps_between(values, windows), target)
    # Fewer positions allow fewer means, so wider windows: the limit only grows as n
    # shrinks, and n = limit(target) is feasible. Find the largest feasible n.
    low, high = max(limit, 0), target - 1
    while low < high:
        mid = (low + high + 1) // 2
        if bound(mid)[1] >= count(mid):
            low = mid
        else:
            high = mid - 1
    windows, _ = bound(low)
    return Buckets(values, steps_between(values, windows), low)


def mean_windows(values: Sequence[float], source: Sequence[float],
                 count: int) -> list[tuple[Fraction, Fraction]]:
    """Per snapping boundary between values[k] and values[k + 1] (alta.semantics), the
    largest mean of at most `count` values of `source` below it and the smallest at or
    above it (exact rationals). The declared values themselves count as means, so the
    windows hold them too."""
    exact_values = [Fraction(v) for v in values]
    achievable = achievable_means(source, count)
    windows = []
    for k, boundary in enumerate(semantics.snap_boundaries(values)):
        t = Fraction(float(boundary))
        below, above = achievable.around(t)
        # values[k] < t <= values[k + 1]: the checker keeps declared values apart.
        below = exact_values[k] if below is None else max(below, exact_values[k])
        above = exact_values[k + 1] if above is None else min(above, exact_values[k + 1])
        windows.append((below, above))
    return windows


def _float32_positions(windows, source: Sequence[float]) -> int:
    """The most selectable positions k for which float32 attention and the step units keep
    every mean within its window's tolerance.

    Half of a step's tolerance is left to softmax leakage (the head's beta is chosen for
    that); the other half bounds rounding. The selected positions get equal softmax
    weights, each within (k + 1) u of 1/k (a sum of at most k exponentials), and the
    weighted sum of k values adds k u more, so a mean errs by about (2k + 2) u times the
    mean of the values' magnitudes: at most max|value|, and the mean's own magnitude when
    the values share a sign (then small means are precise). The step units and the
    weights' own rounding add a few u more (ROUNDING_SLACK); the reset units leave the head
    block at exactly 0 (compiler/weights.py), so no error carries over between layers."""
    low, high = min(source), max(source)
    largest = max(abs(low), abs(high))
    signed = low >= 0 or high <= 0
    limit = math.inf
    for below, above in windows:
        scale = max(abs(float(below)), abs(float(above))) if signed else largest
        if scale == 0:
            continue
        budget = float(above - below) / 8  # half of the tolerance, a quarter of the window
        limit = min(limit, (budget / (FLOAT32_EPS * scale) - ROUNDING_SLACK) / 2)
    return int(max(min(limit, 1e12), 0))
