"""The structured paths (attention by blocks, MLP layers as dense blocks, the halting units
that matter) compute the dense path's numbers, to float32 rounding."""

import itertools

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
    # parity_absolute's dense model at its 256 bits would run 256 layers of 1.25 M
    # parameters at every position (a minute); the structured path at full length is
    # checked against the interpreter in test_library.py.
    size = 32 if name == "parity_absolute" else None
    texts = task.inputs(24, size, seed=5) if task else sample_inputs(program, 24, 40, seed=5)
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


def test_batches_that_span_uneven_chunks_run_and_step_as_the_dense_path():
    """37 additions of 49 positions: several chunks of sequences, the last padded with
    empty ones; the whole run and the layer-by-layer trace agree with the dense model."""
    from alta.compiled import trace_compiled
    from alta.framing import encode_batch
    from alta.model import CHUNK_POSITIONS

    compiled = compiled_library("addition")
    texts = find_task(compiled.program).inputs(37, seed=11)
    structured, dense = load_model(compiled), load_model(compiled, False)
    chunks, size = structured._chunking(37, 49)
    assert chunks > 1 and chunks * size > 37 and CHUNK_POSITIONS < 37 * 49
    a = run_compiled(compiled, texts, model=structured)
    b = run_compiled(compiled, texts, model=dense)
    np.testing.assert_allclose(a.residual, b.residual, rtol=0, atol=1e-6)
    assert a.outputs == b.outputs and np.array_equal(a.layers, b.layers)
    batch = encode_batch(compiled.program, texts)
    traced = list(zip(trace_compiled(compiled, batch, model=structured),
                      trace_compiled(compiled, batch, model=dense), strict=True))
    assert len(traced) == a.layers.max() + 1
    for s, d in traced:
        assert np.array_equal(s.active, d.active) and np.array_equal(s.running, d.running)
        # The trace steps at a bucket shape (more, masked, keys): float32 rounding of the
        # sums may differ by a few ulps after several layers, never more.
        np.testing.assert_allclose(s.after_mlp, d.after_mlp, rtol=0, atol=1e-5)


@pytest.mark.parametrize("gather_inputs", [0, 2])
def test_sparse_layers_in_plan_order_multiply_as_the_dense_weights(gather_inputs):
    """Chains of sparse and dense layers, hidden units handed on in each plan's order,
    against the plain products of the same random weights."""
    import jax.numpy as jnp
    from flax import nnx

    from alta.compiler.structure import mlp_plan
    from alta.model import Dense, FeedForward
    from alta.parameters import DenseParameters

    rng = np.random.default_rng(gather_inputs)
    sizes, layers = (40, 70, 90, 30, 40), []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        density = 0.5 if i == 2 else 0.04  # the third layer stays dense
        w = (rng.random((a, b)) < density) * rng.normal(size=(a, b))
        w[:, 3] = 0  # a column that reads nothing
        layers.append(DenseParameters(w.astype(np.float32),
                                      rng.normal(size=b).astype(np.float32)))
    plan = mlp_plan(tuple(layers), density=0.1, min_size=0, gather_inputs=gather_inputs)
    assert [p is None for p in plan] == [False, False, True, False]
    for p, layer in zip(plan, layers):
        if p is not None:
            assert sorted(p.columns) == list(range(layer.weight.shape[1]))
            for g in p.gathers:
                for rows, c in zip(g.rows, g.columns):
                    assert list(rows) == list(np.flatnonzero(layer.weight[:, c]))
    x = rng.random((50, sizes[0])).astype(np.float32)
    sparse = FeedForward([Dense(p, b) for p, b in zip(layers, plan)], "clipped_relu")
    dense = FeedForward([Dense(p) for p in layers], "clipped_relu")
    expected = np.asarray(dense(jnp.asarray(x)))
    features_first = nnx.jit(lambda f, x: f.features_first(x))(sparse, jnp.asarray(x.T))
    np.testing.assert_allclose(np.asarray(features_first).T, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(nnx.jit(lambda f, x: f(x))(sparse, jnp.asarray(x))),
                               expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("detector", [True, False])
def test_one_offset_heads_attend_as_the_dense_softmax(detector):
    """Heads that see one relative offset run as shifts of their keys (alta.model.OneKey):
    their outputs and weights, at queries with their key, without it (the first and last
    positions) and at padding, with the fault detector's sinks and without them (a query
    with no key then weighs every key alike), equal the dense attention's on states from
    real runs."""
    import jax.numpy as jnp
    from flax import nnx

    from alta.framing import encode_batch
    from alta.model import Attention, features_first, features_last

    compiled = (compiled_library("parity") if detector else
                compile_program(check_file(PROGRAMS / "parity.alta"), fault_detector=False))
    offsets = compiled.config.head_offsets
    assert any(o is not None and len(o) == 1 for o in offsets)
    p = compiled.parameters.attention
    assert (p.sink is not None) == detector
    texts = find_task(compiled.program).inputs(9, None, seed=3)
    batch = encode_batch(compiled.program, texts)
    x = jnp.asarray(run_compiled(compiled, texts, max_layers=2).residual)
    valid = jnp.asarray(batch.valid)
    assert not batch.valid.all()  # some padding
    heads = compiled.execution.heads
    structured = Attention(p, offsets, compiled.config.attention_scale, heads)
    dense = Attention(p, offsets, compiled.config.attention_scale)
    # jitted whole: run op by op, each head's few dozen operations compile one by one
    got, got_weights = nnx.jit(lambda a, x, v: a.features_first(x, v))(
        structured, features_first(x), valid)
    want, want_weights = nnx.jit(lambda a, x, v: a(x, v))(dense, x, valid)
    np.testing.assert_allclose(features_last(got), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_weights, want_weights, rtol=0, atol=1e-6)
