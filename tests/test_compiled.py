"""alta/compiled.py: `run_compiled` (the whole run in one jitted while_loop) and `verify`
(layer by layer) on compiled programs, against the interpreter's outputs, layer counts and
halting."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import BUNDLED, check, compiled_program, load

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
