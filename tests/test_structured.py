"""The structured paths (attention by blocks, MLP layers as gathers and scatters) compute
the dense path's numbers, to float32 rounding."""

import numpy as np
import pytest

from alta.checker import check_file
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.model import UniversalTransformer, sparse_mlp_of
from alta.sampling import sample_inputs
from conftest import PROGRAMS
from program_generator import generate_with_stats


def everything_sparse(compiled):
    """The structured model with every MLP layer on its sparse path, however small."""
    layers = len(compiled.config.mlp_widths) + 1
    model = load_model(compiled, True)
    return UniversalTransformer.from_weights(
        compiled.config, compiled.weights, model.head_blocks,
        sparse_mlp_of(compiled.weights, layers, density=1.0, min_size=0))


def assert_same_run(compiled, texts):
    structured, dense = everything_sparse(compiled), load_model(compiled, False)
    assert structured.head_blocks is not None and dense.head_blocks is None
    assert all(layer is not None for layer in structured.sparse_mlp)
    a = run_compiled(compiled, texts, model=structured)
    b = run_compiled(compiled, texts, model=dense)
    # The dense products only add exact zeros; what may differ is the order in which XLA
    # sums a head's weighted values: float32 rounding, nothing more.
    np.testing.assert_allclose(a.residual, b.residual, rtol=0, atol=1e-6)
    assert a.outputs == b.outputs
    assert np.array_equal(a.layers, b.layers) and np.array_equal(a.halted, b.halted)


@pytest.mark.parametrize("name", ["parity", "parity_absolute", "parity_sum_mod_2"])
def test_bundled_programs(name):
    program = check_file(PROGRAMS / f"{name}.alta")
    assert_same_run(compile_program(program), sample_inputs(program, 24, 40, seed=5))


def test_random_programs():
    for seed in range(300, 315):
        generated, stats = generate_with_stats(seed)
        assert_same_run(compile_program(stats.program), generated.inputs)


def test_weights_without_the_structure_fall_back_to_dense():
    compiled = compile_program(check_file(PROGRAMS / "parity.alta"))
    weights = dict(compiled.weights)
    query = weights["attention.key"].copy()
    query[0, 0, 0] = 0.5  # no longer a diagonal block read of one head's key
    weights["attention.key"] = query
    from dataclasses import replace

    assert load_model(replace(compiled, weights=weights), True).head_blocks is None
