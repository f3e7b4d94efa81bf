"""compiler/buckets.py: where the compiled MLP's numerical steps sit. The windows between
possible means are what they claim (brute force over small cases), and a head guarantees no
more positions than float32 can tell apart."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

from helpers import NEAR_TIE, check, prog, program_head

from alta import semantics
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.compiler.buckets import bucket_thresholds, mean_windows
from alta.interpreter import run
from alta.means import farey_neighbours


def test_farey_neighbours_by_brute_force():
    rng = random.Random(7)
    for _ in range(300):
        order = rng.randint(1, 30)
        denominator = rng.randint(1, 60)
        t = Fraction(rng.randint(-6 * denominator, 6 * denominator), denominator)
        below, above = farey_neighbours(t, order)
        fractions = {Fraction(s, k) for k in range(1, order + 1)
                     for s in range(-8 * k - 1, 8 * k + 2)}
        assert below == max(f for f in fractions if f < t), (t, order)
        assert above == min(f for f in fractions if f >= t), (t, order)


def test_mean_windows_contain_no_possible_mean():
    """No mean of at most k values lies strictly inside a window, and each window brackets
    its snapping boundary (brute force over every multiset)."""
    rng = random.Random(8)
    for _ in range(40):
        source = sorted(rng.sample([0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1], rng.randint(1, 3)))
        values = sorted(rng.sample([j / 12 for j in range(13)], rng.randint(2, 6)))
        count = rng.randint(1, 7)
        exact = [Fraction(v).limit_denominator(100) for v in source]
        means = {sum(c, Fraction(0)) / k for k in range(1, count + 1)
                 for c in itertools.combinations_with_replacement(exact, k)}
        boundaries = semantics.snap_boundaries(values)
        for (below, above), t in zip(mean_windows(values, source, count), boundaries):
            assert below < Fraction(float(t)) <= above
            assert not any(below < m < above for m in means), (source, values, count)


def test_variable_steps_are_the_middle_half_of_each_gap():
    program = check(NEAR_TIE)
    steps = bucket_thresholds(program, "n").steps
    assert [(s.start, s.end) for s in steps] == [(0.25, 0.75)]


def test_a_head_guarantees_no_more_positions_than_float32_can_tell_apart():
    """With no max_length a {0, 1/2, 1} head over every position used to claim 100,000
    positions, though means such as 24,999/100,000 against the boundary 1/4 are beyond
    float32; the windows between possible means bound the length it can be exact for."""
    program = check(program_head("0 1", "y") + prog("""
        var b: num {0, 1} = token
        var one: bool = true
        var y: cat 3 = 0
        head share: num {0, 0.5, 1} = b where one == one
        mlp:
            y = round(share * 2)
        """))
    compiled = compile_program(program)
    longest = compiled.report.guaranteed_length
    assert 100 < longest < 100_000
    ones = (longest - 1) // 4  # a mean just below 1/4, as close as this length allows
    text = " ".join(["1"] * ones + ["0"] * (longest - ones))
    assert run(program, [text]).outputs == run_compiled(compiled, [text]).outputs
