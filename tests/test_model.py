"""The structured paths (attention by blocks, MLP layers as dense blocks, the halting units
that matter) compute the dense path's numbers, to float32 rounding."""

import numpy as np
import pytest
from helpers import PROGRAMS, compiled_library
from program_generator import generate_with_stats

from alta.checker import check_file
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.compiler.structure import column_blocks, halting_units, plan_execution
from alta.model import UniversalTransformer
from alta.sampling import sample_inputs
from alta.tasks import find_task


def everything_sparse(compiled):
    """The structured model with every MLP layer on its sparse path, however small."""
    plan = plan_execution(compiled.program, compiled.layout, compiled.parameters,
                          mlp_density=1.0, mlp_min_size=0)
    return UniversalTransformer(compiled.config, compiled.parameters, plan)


def assert_same_run(compiled, texts):
    structured, dense = everything_sparse(compiled), load_model(compiled, False)
    assert structured.attention.blocks is not None and dense.attention.blocks is None
    assert all(layer.blocks is not None for layer in structured.mlp)
    a = run_compiled(compiled, texts, model=structured)
    b = run_compiled(compiled, texts, model=dense)
    # The dense products only add exact zeros; what may differ is the order in which XLA
    # sums a head's weighted values: float32 rounding, nothing more.
    np.testing.assert_allclose(a.residual, b.residual, rtol=0, atol=1e-6)
    assert a.outputs == b.outputs
    assert np.array_equal(a.layers, b.layers) and np.array_equal(a.halted, b.halted)


@pytest.mark.parametrize("name", ["parity", "parity_absolute", "parity_sum_mod_2", "addition"])
def test_bundled_programs(name):
    program = check_file(PROGRAMS / f"{name}.alta")
    task = find_task(program)
    texts = task.inputs(24, seed=5) if task else sample_inputs(program, 24, 40, seed=5)
    assert_same_run(compiled_library(name), texts)


def test_random_programs():
    for seed in range(300, 315):
        generated, stats = generate_with_stats(seed)
        assert_same_run(compile_program(stats.program), generated.inputs)


def test_weights_without_the_structure_fall_back_to_dense():
    compiled = compile_program(check_file(PROGRAMS / "parity.alta"))
    key = compiled.parameters.attention.key.copy()
    key[0, 0, 0] = 0.5  # no longer a diagonal block read of one head's key
    from dataclasses import replace

    parameters = replace(compiled.parameters,
                         attention=replace(compiled.parameters.attention, key=key))
    broken = replace(compiled, parameters=parameters)
    assert load_model(broken, True).attention.blocks is None


@pytest.mark.parametrize("overhead", [0, 16, 10**6])
def test_column_blocks_cover_each_column_once_with_its_inputs(overhead):
    rng = np.random.default_rng(overhead)
    nonzero = rng.random((60, 90)) < 0.05
    nonzero[:, 7] = False  # a column that reads nothing
    blocks = column_blocks(nonzero, overhead)
    cols = np.concatenate([c for _, c in blocks])
    assert sorted(cols) == list(range(90))
    for rows, block_cols in blocks:
        outside = np.setdiff1d(np.arange(60), rows)
        assert not nonzero[np.ix_(outside, block_cols)].any()
    if overhead >= 10**6:
        assert len(blocks) == 1


def test_halting_units_reach_the_output():
    compiled = compile_program(check_file(PROGRAMS / "parity.alta"))
    units = halting_units(compiled.parameters.halting)
    assert len(units[-1]) == 1 and 0 < len(units[0]) < compiled.layout.width
