"""Which means of at most k values of a finite set can occur, exactly (rationals).

A numerical head yields the mean of the values at the positions it selects. Both the
compiler (compiler/buckets.py: where its MLP's steps may sit) and the checker (the values a
head compared only with constants needs, `threshold_values`) ask the same question: the
nearest mean on either side of a number t. For values n_i / q, every mean of k of them is
s / (q k), so the answer is t's neighbours in a Farey sequence, found by a Stern-Brocot
descent in O(log k) integer steps.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from fractions import Fraction

RATIONAL_DENOMINATORS = 10 ** 6  # declared values are read as the rationals they print as


def achievable_means(source: Sequence[float], count: int) -> ListedMeans | FareyMeans:
    """The means of at most `count` values of `source` (a superset: sound for bounds)."""
    rationals = sorted({rational(v) for v in source})
    if count == 1 or len(rationals) == 1:
        return ListedMeans(rationals)  # one value, or the mean of copies of one value
    return FareyMeans(rationals, count)


MAX_DERIVED_MEANS = 100_000  # past this many, a printed mean's values must be declared


def every_mean(source: Sequence[float], count: int) -> tuple[float, ...] | None:
    """Every mean of at most `count` values of `source` (the superset `achievable_means`
    describes: each s / (q k) in [min, max], found as the Farey sequence of order `count`
    over each unit step of q times the range), as sorted floats; None where there are more
    than MAX_DERIVED_MEANS."""
    means = achievable_means(source, count)
    if isinstance(means, ListedMeans):
        return tuple(float(v) for v in means.values)
    low, high, order = int(means.low), int(means.high), means.count
    # |F_n| = 1 + sum of phi(k) for k <= n, at most 1 + n (n + 1) / 2: checked before listing.
    if (high - low) * order * (order + 1) // 2 > MAX_DERIVED_MEANS \
            and (high - low) * _farey_length(order) > MAX_DERIVED_MEANS:
        return None
    unit = list(_farey(order))[:-1]  # [0, 1)
    values = [Fraction(z) + f for z in range(low, high) for f in unit] + [Fraction(high)]
    return tuple(float(v / means.q) for v in values)


def _farey(order: int):
    """The Farey sequence of `order`: every fraction in [0, 1] with a denominator <= order,
    in increasing order (each next term from the last two)."""
    a, b, c, d = 0, 1, 1, order
    yield Fraction(0)
    while c <= order:
        k = (order + b) // d
        a, b, c, d = c, d, k * c - a, k * d - b
        yield Fraction(a, b)


def _farey_length(order: int) -> int:
    """How many fractions the Farey sequence of `order` has: 1 + phi(1) + ... + phi(order)
    (a sieve of Euler's totient)."""
    phi = list(range(order + 1))
    for p in range(2, order + 1):
        if phi[p] == p:  # a prime
            for m in range(p, order + 1, p):
                phi[m] -= phi[m] // p
    return 1 + sum(phi[1:])


def threshold_values(source: Sequence[float], count: int,
                     thresholds: Sequence[Fraction]) -> tuple[float, ...]:
    """Values to declare for a mean that is only compared with `thresholds`: around each,
    the nearest possible mean below and above it, and the threshold itself where a mean
    can equal it. Every possible mean then snaps to a value on its own side of every
    threshold (the nearest declared value lies between it and any threshold it does not
    reach), so each comparison reads the same on the snapped value as on the exact one."""
    means = achievable_means(source, count)
    negated = achievable_means([-v for v in source], count)
    values = set()
    for t in thresholds:
        below, at_or_above = means.around(t)
        above_negated, _ = negated.around(-t)  # the largest -m < -t: the smallest m > t
        values |= {v for v in (below, None if above_negated is None else -above_negated)
                   if v is not None}
        if at_or_above == t:
            values.add(t)
    return tuple(sorted(float(v) for v in values))


def rational(v: float) -> Fraction:
    """The rational a declared number stands for (1/3, not the float's binary fraction),
    when one with a small denominator rounds to it exactly; else the float itself."""
    r = Fraction(v).limit_denominator(RATIONAL_DENOMINATORS)
    return r if float(r) == v else Fraction(v)


class ListedMeans:
    """Exactly these values."""

    def __init__(self, values: list[Fraction]) -> None:
        self.values = values

    def around(self, t: Fraction) -> tuple[Fraction | None, Fraction | None]:
        i = bisect.bisect_left(self.values, t)  # values[:i] < t <= values[i:]
        return (self.values[i - 1] if i else None,
                self.values[i] if i < len(self.values) else None)


class FareyMeans:
    """Every s / (q k) with 1 <= k <= count inside [min, max] of the rationals n_i / q: a
    superset of the means of k of them (sound: it can only narrow a window)."""

    def __init__(self, values: list[Fraction], count: int) -> None:
        self.q = math.lcm(*(v.denominator for v in values))
        self.low, self.high = values[0] * self.q, values[-1] * self.q  # integers
        self.count = count

    def around(self, t: Fraction) -> tuple[Fraction | None, Fraction | None]:
        # x = s / (q k) is achievable iff q x = s / k has a denominator <= count: the
        # neighbours of q t in the Farey sequence of that order, clipped to the range.
        below, above = farey_neighbours(t * self.q, self.count)
        below = None if below < self.low else min(below, self.high)
        above = None if above > self.high else max(above, self.low)
        return (None if below is None else below / self.q,
                None if above is None else above / self.q)


def farey_neighbours(t: Fraction, order: int) -> tuple[Fraction, Fraction]:
    """The largest fraction < t and the smallest >= t among those with denominators <=
    order, by a Stern-Brocot descent that takes each run of moves in one direction at once
    (O(log order) rounds of integer arithmetic)."""
    p, r = t.numerator, t.denominator
    z = -((-p) // r) - 1  # z < t <= z + 1
    a, b, c, d = z, 1, z + 1, 1  # a/b < t <= c/d, neighbours: b c - a d = 1
    while True:
        # Move the upper bound down: (c + j a) / (d + j b) >= t for j <= (r c - p d) /
        # (p b - r a); p b - r a > 0 since a/b < t.
        j = min((r * c - p * d) // (p * b - r * a), (order - d) // b)
        if j > 0:
            c, d = c + j * a, d + j * b
        # Move the lower bound up: (a + i c) / (b + i d) < t for i < (p b - r a) /
        # (r c - p d), any i when t == c/d.
        gap = r * c - p * d
        i = (p * b - r * a - 1) // gap if gap > 0 else order
        i = min(i, (order - b) // d)
        if i > 0:
            a, b = a + i * c, b + i * d
        if j <= 0 and i <= 0:  # the mediant's denominator exceeds the order
            return Fraction(a, b), Fraction(c, d)
