"""alta/compiled.py: `run_compiled` (the whole run in one jitted while_loop) and `verify`
(layer by layer) on compiled programs, against the interpreter's outputs, final state, layer
counts and halting."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import (BUNDLED, check, compiled_program, header, load, prog,
                     random_word_inputs)

from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.compiler.layout import decode_state
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
    state, valid = decode_state(program, compiled.layout, got.residual), want.batch.valid
    for var in program.variables:
        assert np.array_equal(state[var.name][valid], want.final[var.name][valid]), var.name
