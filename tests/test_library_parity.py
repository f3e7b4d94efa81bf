"""The three parity programs against Python's own parity, on random bit strings."""

import random

import numpy as np
import pytest

from alta.interpreter import run

PARITY_PROGRAMS = ["parity", "parity_absolute", "parity_sum_mod_2"]


def random_bits(count: int, max_length: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(0, 1) for _ in range(rng.randint(0, max_length))] for _ in range(count)]


def expected_layers(name: str, n: int) -> int:
    # Pinned by the reference: N bits take N layers (relative, start token) or N - 1
    # (absolute, no start token); sum mod 2 is one layer.
    return {"parity": n, "parity_absolute": max(n - 1, 0), "parity_sum_mod_2": 1}[name]


@pytest.mark.parametrize("name", PARITY_PROGRAMS)
def test_random_bit_strings_match_python(program, name):
    inputs = random_bits(1000, 64, seed=PARITY_PROGRAMS.index(name))
    assert {len(b) for b in inputs} >= {0, 1, 64}
    result = run(program(name), [" ".join(map(str, b)) for b in inputs])
    got = [int(o) for o in result.outputs]
    assert got == [sum(b) % 2 for b in inputs]
    assert result.halted.all()
    assert list(result.layers) == [expected_layers(name, len(b)) for b in inputs]


@pytest.mark.parametrize("name", PARITY_PROGRAMS)
@pytest.mark.parametrize("bits, parity", [("1 0 1", 0), ("1 0 1 1", 1), ("1", 1), ("", 0)])
def test_reference_examples(program, name, bits, parity):
    assert run(program(name), [bits]).outputs == (str(parity),)


def test_relative_parity_runs_far_past_any_fixed_length(program):
    inputs = random_bits(20, 300, seed=7)
    result = run(program("parity"), [" ".join(map(str, b)) for b in inputs])
    assert [int(o) for o in result.outputs] == [sum(b) % 2 for b in inputs]


def test_halted_sequences_stop_changing(program):
    # A short and a long input in one batch: the short one's final state is the state it
    # had when it halted, whatever the batch did afterwards.
    short, long_ = "1 1", " ".join(["1"] * 20)
    batch = run(program("parity"), [short, long_], trace=True)
    alone = run(program("parity"), [short])
    for name, value in alone.final.items():
        assert np.array_equal(batch.final[name][0, :3], value[0])
    assert list(batch.layers) == [2, 20]
    assert not batch.trace[5].active[0] and batch.trace[5].active[1]


def test_layer_budget_is_reported_not_silent(program):
    result = run(program("parity"), ["1 0 1 1 1", "1"], max_layers=3)
    assert list(result.halted) == [False, True]
    assert list(result.layers) == [3, 1]
    assert result.not_halted == [0]


def test_absolute_parity_rejects_inputs_past_max_length(program):
    from alta.errors import AltaError

    too_long = " ".join(["1"] * 257)
    with pytest.raises(AltaError, match=f"input '{too_long}' needs 257 positions, but "
                                        "parity_absolute declares max_length 256"):
        run(program("parity_absolute"), [too_long])


def test_sum_mod_2_is_exact_up_to_its_declared_maximum(program):
    # Every count of ones 0..100 at its worst spacing (buckets 1/n and 1/(n+1)).
    inputs = [" ".join(["1"] * k + ["0"] * (100 - k)) for k in range(101)]
    result = run(program("parity_sum_mod_2"), inputs)
    assert [int(o) for o in result.outputs] == [k % 2 for k in range(101)]
