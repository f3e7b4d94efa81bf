"""alta/compiled.py: `run_compiled` (the whole run in one jitted while_loop) and `verify`
(layer by layer) on compiled programs, against the interpreter's outputs, final state, layer
counts and halting."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from helpers import BUNDLED, check, compiled_program, header, load, prog, random_word_inputs

from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.interpreter import run


def _sample(program, count, longest, seed, shortest=0):
    from alta.sampling import sample_inputs

    return sample_inputs(program, count, longest, seed=seed, min_length=shortest)


END_TO_END = {
    # name: groups of (count, longest, shortest) inputs, ~100 in all; each group is one batch
    # (padded to its longest input), so the few long inputs do not pad the many short ones
    # (the absolute program's dense attention reads 257-wide one-hots: long inputs are costly)
    "parity": [(88, 40, 0), (12, 200, 120)],
    "parity_absolute": [(99, 24, 0), (1, 256, 256)],
    "parity_sum_mod_2": [(100, 100, 0)],
}


@pytest.mark.parametrize("name", BUNDLED)
def test_compiled_model_agrees_with_the_interpreter(name):
    """`verify` (layer by layer) and `run_compiled` (one while_loop) against the interpreter."""
    from alta.compiled import load_model, run_compiled
    from alta.interpreter import run
    from alta.verify import verify

    program = load(name)
    compiled = compiled_program(name)
    model = load_model(compiled)
    longest_seen = 0
    for seed, (count, longest, shortest) in enumerate(END_TO_END[name]):
        texts = _sample(program, count, longest, seed, shortest)
        texts[-1] = " ".join(["1"] * longest)  # the longest, all ones
        if count > 2:
            texts[-2] = " ".join(["1", "0"] * (longest // 2))
        if shortest == 0:
            texts[0] = ""  # the empty input
        report = verify(compiled, texts, model=model)
        assert report.ok, report.divergence.format(f"{name}.alta")
        assert report.inputs == len(texts) and report.comparisons > 0
        if count > 1:  # (one jit compile per batch shape: skip the lone longest input)
            expected = run(program, texts)
            got = run_compiled(compiled, texts, model=model)
            assert got.outputs == expected.outputs
            assert np.array_equal(got.layers, expected.layers)
            assert np.array_equal(got.halted, expected.halted)
        longest_seen = max(longest_seen, max(len(t.split()) for t in texts))
    assert longest_seen == {"parity": 200, "parity_absolute": 256, "parity_sum_mod_2": 100}[name]


def test_a_program_without_heads_compiles_and_runs():
    program = check("""\
        program map_only
        vocab "0" "1" "2"
        output y
        max_layers 1
        var x: cat 3 = token
        var y: cat 3 = 0
        mlp:
            y = (x + 1) % 3
    """)
    compiled = compile_program(program)
    texts = ["0 1 2", "2 2", "", "1"]
    assert run_compiled(compiled, texts).outputs == run(program, texts).outputs
    assert run(program, ["0 1 2"]).outputs == ("1 2 0",)


# ---- one batch, sequences halting at different layers -------------------------------------

# The count goes on after `c >= x` holds: a halted sequence's state must stop changing while
# the rest of its batch runs on (else c reaches 9 everywhere).
STILL_COUNTING = header("c", "halt when c >= x", name="still_counting") + prog("""
    max_length 16
    var x: cat 10 = token
    var c: cat 10 = 0
    var first: bool = position == 0
    var seen: cat 10 = 0
    head left = c at -1
    mlp:
        c = min(c + 1, 9)
        if not first:
            seen = left
    """)


def test_a_batch_halting_at_different_layers_keeps_each_halted_state():
    """Each input halts after as many layers as its largest digit. In one compiled batch (one
    while_loop for all) every input's output, final state, layer count and halting must be
    the interpreter's, which runs each input for exactly its own layers."""
    program = check(STILL_COUNTING)
    compiled = compile_program(program)
    texts = ["", "0 0", "9", "1", "2 2"] + random_word_inputs(random.Random(41), 60, 10,
                                                              max_len=8)
    want = run(program, texts)
    assert want.layers.tolist() == [max(map(int, t.split()), default=0) for t in texts]
    got = run_compiled(compiled, texts)
    assert got.outputs == want.outputs
    assert np.array_equal(got.layers, want.layers) and np.array_equal(got.halted, want.halted)
    state, valid = compiled.layout.decode(got.residual, program), want.batch.valid
    for var in program.variables:
        assert np.array_equal(state[var.name][valid], want.final[var.name][valid]), var.name


# ---- numerical heads over negative values -------------------------------------------------

# v takes negative values (the largest magnitude among them); `near` averages v over the
# position and its left neighbour, `all` over every position; both are read in each of three
# layers (n_k, a_k), while the MLP swaps v's -3 and 1, so head outputs must be exact after
# every layer's reset. Several means fall between, or exactly midway between, declared values.
NEGATIVE_MEANS = header("n2", "max_layers 3", name="negative_means", tokens=5) + prog("""
    max_length 20
    var v: num {-3, -1, -0.5, 0, 1} = [-3, -1, -0.5, 0, 1][token]
    var one: bool = 1
    var layer: cat 3 = 0
    var n0: cat 9 = 0
    var n1: cat 9 = 0
    var n2: cat 9 = 0
    var a0: cat 9 = 0
    var a1: cat 9 = 0
    var a2: cat 9 = 0
    head near: num {-3, -2, -1, -0.5, 0, 1} = v at {-1, 0}
    head all: num {-3, -2, -1, -0.5, 0, 0.5, 1} = v where one == one
    mlp:
        layer = min(layer + 1, 2)
        v = -3 if v == 1 else (1 if v == -3 else v)
        if layer == 0:
            n0 = round((near + 3) * 2)
            a0 = round((all + 3) * 2)
        elif layer == 1:
            n1 = round((near + 3) * 2)
            a1 = round((all + 3) * 2)
        else:
            n2 = round((near + 3) * 2)
            a2 = round((all + 3) * 2)
    """)


def negative_means_oracle(text: str) -> dict[str, list[int]]:
    """NEGATIVE_MEANS in exact rationals: the means snapped to the nearest declared value,
    ties to the larger."""
    def snap(mean, declared):
        return min(declared, key=lambda d: (abs(d - mean), -d))

    table = [Fraction(-3), Fraction(-1), Fraction(-1, 2), Fraction(0), Fraction(1)]
    near_values = [Fraction(x) for x in (-3, -2, -1, Fraction(-1, 2), 0, 1)]
    all_values = near_values[:-1] + [Fraction(1, 2), Fraction(1)]
    v = [table[int(t)] for t in text.split()]
    out = {}
    for layer in range(3):
        near = [snap(sum(v[max(i - 1, 0):i + 1]) / len(v[max(i - 1, 0):i + 1]), near_values)
                for i in range(len(v))]
        every = snap(sum(v) / len(v), all_values) if v else None
        out[f"n{layer}"] = [int((m + 3) * 2) for m in near]
        out[f"a{layer}"] = [int((every + 3) * 2)] * len(v)
        v = [Fraction(-3) if x == 1 else Fraction(1) if x == -3 else x for x in v]
    return out


def test_numerical_heads_over_negative_values_on_both_back_ends():
    program = check(NEGATIVE_MEANS)
    compiled = compile_program(program)
    assert compiled.report.guaranteed_length >= program.max_length
    rng = random.Random(43)
    texts = random_word_inputs(rng, 150, 5, max_len=20)
    # runs of two tokens, whose means land on (and near) the midpoints
    texts += [" ".join([str(a)] * m + [str(b)] * n) for a, b in [(0, 4), (1, 2), (0, 2), (2, 3)]
              for m, n in [(1, 1), (1, 3), (3, 1), (2, 5), (7, 9)]]
    want = run(program, texts)
    for b, text in enumerate(texts):
        n = len(text.split())
        for name, values in negative_means_oracle(text).items():
            assert want.final[name][b, :n].tolist() == values, (name, text)
    got = run_compiled(compiled, texts)
    assert got.outputs == want.outputs and np.array_equal(got.layers, want.layers)
    state, valid = compiled.layout.decode(got.residual, program), want.batch.valid
    for var in program.variables:
        assert np.array_equal(state[var.name][valid], want.final[var.name][valid]), var.name


@pytest.mark.parametrize("name", ["parity", "dyck@KINDS=1,MAX_LENGTH=100", "most_frequent",
                                  "sort_unique"])
def test_the_decoded_compiled_trace_is_the_interpreters(name, compiled):
    """`alta run MODEL --trace`: the residual read back at every layer is the interpreter's
    trace: variables equal, head outputs equal where defined (numerical ones to float32),
    and the selection heads mark exactly the undefined ones."""
    from alta.compiled import decoded_trace
    from alta.reports import format_trace

    model = compiled(name)
    program = model.program
    from alta.sampling import draw_inputs
    from alta.tasks import find_task

    for text in draw_inputs(program, find_task(program), 4, 6, seed=3):
        ours, theirs = decoded_trace(model, [text]), run(program, [text], trace=True)
        assert ours.outputs == theirs.outputs and len(ours.trace) == len(theirs.trace)
        for name_, values in theirs.initial.items():
            np.testing.assert_array_equal(ours.initial[name_], values)
        for mine, want in zip(ours.trace, theirs.trace):
            valid = theirs.batch.valid
            for v in program.variables:
                np.testing.assert_array_equal(mine.after_mlp[v.name][valid],
                                              want.after_mlp[v.name][valid])
            for h in program.heads:
                undefined = want.undefined[h.name] & valid
                np.testing.assert_array_equal(mine.undefined[h.name] & valid, undefined)
                defined = valid & ~undefined
                np.testing.assert_allclose(np.asarray(mine.after_attention[h.name], float)[defined],
                                           np.asarray(want.after_attention[h.name], float)[defined],
                                           atol=1e-4)
        if not any(h.numerical for h in program.heads):  # then even the printed tables agree
            assert format_trace(program, ours) == format_trace(program, theirs)
