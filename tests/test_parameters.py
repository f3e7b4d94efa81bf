"""The residual codec (ResidualLayout.encode / write / decode) and the parameter tree, whose
names are the model's own attribute paths."""

import numpy as np
import pytest
from conftest import PROGRAMS
from program_generator import generate_with_stats

from alta import ir
from alta.checker import check_file
from alta.compiler.layout import build_layout
from alta.semantics import set_to_bits

BUNDLED = sorted(p.stem for p in PROGRAMS.glob("*.alta"))


def _programs():
    yield from (check_file(PROGRAMS / f"{name}.alta") for name in BUNDLED)
    for seed in range(40, 52):
        yield generate_with_stats(seed)[1].program


def _random_values(program: ir.Program, rows: int, rng) -> dict[str, np.ndarray]:
    """Values each variable can hold, as the interpreter stores them."""
    values = {}
    for var in program.variables:
        t = var.type
        if isinstance(t, ir.Categorical):
            values[var.name] = rng.integers(0, t.size, rows)
        elif isinstance(t, ir.Numerical):
            values[var.name] = rng.choice(np.asarray(t.values, np.float64), rows)
        else:
            values[var.name] = np.array([set_to_bits(t.sets[i])
                                         for i in rng.integers(0, len(t.sets), rows)])
    return values


def test_codec_round_trips_and_write_matches_encode():
    rng = np.random.default_rng(0)
    checked = 0
    for program in _programs():
        layout = build_layout(program)
        values = _random_values(program, 64, rng)
        x = layout.encode(values)
        assert x.shape == (64, layout.width) and x.dtype == np.float32
        decoded = layout.decode(x, program)
        for name, want in values.items():
            np.testing.assert_array_equal(decoded[name], want, err_msg=name)
            checked += 1
        # Names not given are zero; `write` adds one value as `encode` lays it out.
        untouched = [b for b in layout.blocks if b.name not in values]
        assert all(not x[:, b.start:b.stop].any() for b in untouched)
        for r in range(4):
            row = np.zeros(layout.width)
            for var in program.variables:
                value = values[var.name][r]
                if isinstance(var.type, ir.SetValued):
                    value = frozenset(i for i in range(var.type.size) if int(value) >> i & 1)
                layout.write(row, var.name, value, -2.0)
            np.testing.assert_allclose(row, -2.0 * x[r], rtol=1e-6)
    assert checked > 100


@pytest.fixture(scope="module")
def parity():
    from alta.compiler import compile_program

    return compile_program(check_file(PROGRAMS / "parity.alta"))


def test_parameter_names_are_the_models_attribute_paths(parity):
    """The checkpoint names (Parameters.flat) are exactly NNX's state paths of the model
    built from them, with the same values."""
    from alta.compiled import load_model

    model = load_model(parity)
    exported = model.export_weights()
    assert set(exported) == set(parity.weights)
    assert {"embed.token", "attention.query", "attention.sink", "mlp.3.bias",
            "halting.2.weight"} <= set(exported)
    for name, value in parity.weights.items():
        np.testing.assert_array_equal(exported[name], value, err_msg=name)


def test_parameters_from_flat_names_what_does_not_fit(parity):
    from alta.parameters import parameters_from_flat

    tensors = dict(parity.weights)
    rebuilt = parameters_from_flat(tensors, parity.config)
    assert rebuilt.flat().keys() == tensors.keys()
    tensors.pop("halting.1.bias")
    tensors["mlp.9.weight"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['halting.1.bias'\], unexpected "
                                         r"\['mlp.9.weight'\]"):
        parameters_from_flat(tensors, parity.config)
    tensors = dict(parity.weights)
    tensors["embed.token"] = tensors["embed.token"][:, :-1]
    with pytest.raises(ValueError, match="tensor embed.token has shape"):
        parameters_from_flat(tensors, parity.config)


def test_a_learned_mlp_replaces_the_compiled_one_by_assignment(parity):
    """Assigning the compiled MLP's own layers back as a dense FeedForward leaves the run
    unchanged (to float32 rounding), and the model's names still match the checkpoint's."""
    from alta.compiled import load_model, run_compiled
    from alta.model import Dense, FeedForward

    model = load_model(parity)
    model.mlp = FeedForward([Dense(p) for p in parity.parameters.mlp], "clipped_relu")
    assert all(layer.blocks is None for layer in model.mlp)
    texts = ["1 0 1 1", "0", "1 1 1 1 1 0 1", "0 0 1"]
    a, b = run_compiled(parity, texts, model=model), run_compiled(parity, texts)
    assert a.outputs == b.outputs
    np.testing.assert_allclose(a.residual, b.residual, atol=1e-6)
    assert set(model.export_weights()) == set(parity.weights)
