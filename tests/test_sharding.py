"""Batches across devices (alta.devices): a fresh process with 4 CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`; this process has one, as JAX picks its
devices once) runs library programs on many sampled inputs, traces and verifies them, runs
`alta run`, and trains both kinds of model (a learned MLP, the end-to-end model); everything
it reports must equal this process's single-device run, the interpreter and the task's
oracle (trained weights to float32 tolerance).

The 4-device part is `python tests/test_sharding.py OUT` (the `__main__` block below), so the
two sides run the same functions on the same arguments."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import PROGRAMS, ROOT, compiled_library

DEVICES = 4
# name: (inputs, size): small sizes keep the runs short; every input fits 16 positions, so a
# program runs at a few padded shapes (8 and 4 rows; batches of 3 and of 1 input pad up to
# the devices' 4 rows).
PROGRAMS_RUN = {"parity": (45, 12), "histogram": (23, 10), "frac_prevs": (19, 10)}
SETTINGS = {"tokens": 256, "most_rows": 8, "least_positions": 16, "window": 11}
TRACED = 7  # inputs of 9 to 16 positions, traced and verified as one batch of 8 rows


def _texts(name: str) -> list[str]:
    from alta.tasks import find_task

    count, size = PROGRAMS_RUN[name]
    return find_task(compiled_library(name).program).inputs(count, size, seed=13)


def _traced(name: str) -> list[str]:
    from alta.framing import encode

    program = compiled_library(name).program
    return [t for t in _texts(name) if len(encode(program, t)) > 8][:TRACED]


def _runs() -> dict:
    """What both sides compare: per program, the outcomes of `run_many` (parity also through
    the executables kept in the cache, written then read again), the final residuals of one
    batch, a decoded trace, and verification."""
    from alta.batching import BatchSettings
    from alta.compiled import ModelRunner, decoded_trace, load_model, run_compiled, run_many
    from alta.verify import verify

    out = {}
    for name in PROGRAMS_RUN:
        compiled = compiled_library(name)
        model = load_model(compiled)
        models = {"flax": model}
        if name == "parity":  # the first runner keeps its executables, the second loads them
            models.update(kept=ModelRunner(compiled), loaded=ModelRunner(compiled))
        runs = {how: [(o.output, o.layers, o.halted)
                      for window in run_many(compiled, _texts(name), model=runner,
                                             settings=BatchSettings(**SETTINGS))
                      for o in window]
                for how, runner in models.items()}
        traced = _traced(name)
        trace = decoded_trace(compiled, traced, model=model)
        report = verify(compiled, traced, model=model)
        out[name] = {"runs": runs,
                     "residual": run_compiled(compiled, traced, model=model).residual,
                     "final": trace.final, "trace outputs": trace.outputs,
                     "layers": [(r.layer, r.active, r.after_attention, r.undefined,
                                 r.after_mlp) for r in trace.trace],
                     "verified": (report.ok, report.inputs, report.layers,
                                  report.comparisons)}
    return out


def _command(tmp: Path) -> str:
    """`alta run` of the parity program on the compiled backend, its stdout."""
    from alta.cli import main

    inputs = tmp / "inputs.txt"
    inputs.write_text("\n".join(_texts("parity")) + "\n")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", str(PROGRAMS / "parity.alta"), "--backend", "compiled",
                     "--inputs", str(inputs)]) == 0
    return printed.getvalue()


def _trained() -> tuple[dict, list]:
    """A learned MLP (`alta train`: train_mlp) of a few steps on batches the devices divide,
    with input noise: its weights and loss curve."""
    from alta.training import TrainSettings, train_mlp

    rng = np.random.default_rng(5)
    x = rng.normal(size=(96, 12)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=(12, 12)).astype(np.float32))
    mlp, curve = train_mlp(x, y, TrainSettings(hidden=(16,), steps=6, batch_size=32,
                                               input_noise=0.05, seed=3))
    return mlp.export_weights(), curve


def _trained_end_to_end() -> tuple[dict, list, list]:
    """The experiment's end-to-end model (train_end_to_end) on parity inputs, a few steps on
    batches the devices divide: its weights, loss curve and printed outputs."""
    from alta.training import EndToEndSettings, end_to_end_outputs, examples_of, train_end_to_end

    compiled = compiled_library("parity")
    examples = examples_of(compiled.program, _texts("parity")[:40])
    model, curve = train_end_to_end(compiled, examples, EndToEndSettings(
        hidden=(16,), steps=5, batch_size=8, seed=2))
    return model.export_weights(), curve, end_to_end_outputs(compiled, model, examples)


def _everything(tmp: Path) -> dict:
    import jax

    return {"devices": jax.device_count(), "runs": _runs(), "command": _command(tmp),
            "trained": _trained(), "end to end": _trained_end_to_end()}


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[dict, dict]:
    """The 4-device process's results and this process's (one device), computed at the same
    time."""
    import jax

    assert jax.device_count() == 1
    tmp = tmp_path_factory.mktemp("sharded")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={DEVICES}").strip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"),
                                                      env.get("PYTHONPATH")]))
    with subprocess.Popen([sys.executable, __file__, str(tmp)], env=env,
                          stderr=subprocess.PIPE, text=True) as process:
        try:
            single = _everything(tmp_path_factory.mktemp("single"))
            _, errors = process.communicate(timeout=600)
        finally:
            process.kill()
    assert process.returncode == 0, errors[-4000:]
    return pickle.loads((tmp / "results.pickle").read_bytes()), single


@pytest.fixture(scope="module")
def sharded(both) -> dict:
    return both[0]


@pytest.fixture(scope="module")
def single(both) -> dict:
    return both[1]


def _equal(a, b) -> bool:
    """Nested results equal exactly (arrays element by element)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    return a == b


def test_the_process_has_the_devices(sharded):
    assert sharded["devices"] == DEVICES


@pytest.mark.parametrize("name", PROGRAMS_RUN)
def test_sharded_runs_equal_the_single_device_run_and_the_oracles(sharded, single, name):
    from alta.interpreter import run
    from alta.tasks import find_task

    got, want = sharded["runs"][name], single["runs"][name]
    texts = _texts(name)
    task = find_task(compiled_library(name).program)
    result = run(compiled_library(name).program, texts)
    interpreted = list(zip(result.outputs, result.layers.tolist(), result.halted.tolist()))
    assert [o for o, _, _ in interpreted] == [task.oracle(t) for t in texts]
    assert got["runs"].keys() == want["runs"].keys()
    for how in want["runs"]:
        assert got["runs"][how] == want["runs"][how] == interpreted, how
    # Residuals to float32 rounding (the devices run other shapes), decoded values exactly.
    np.testing.assert_allclose(got["residual"], want["residual"], rtol=1e-5, atol=1e-5)
    for key in ("final", "layers", "trace outputs"):
        assert _equal(got[key], want[key]), key
    assert list(got["trace outputs"]) == [task.oracle(t) for t in _traced(name)]
    assert got["verified"] == want["verified"] and got["verified"][0]


def test_alta_run_on_devices_prints_the_single_device_output(sharded, single):
    from alta.tasks import find_task

    task = find_task(compiled_library("parity").program)
    assert sharded["command"] == single["command"]
    assert sharded["command"].splitlines() == [task.oracle(t) for t in _texts("parity")]


def test_data_parallel_training_equals_single_device_training(sharded, single):
    (got, got_curve), (want, want_curve) = sharded["trained"], single["trained"]
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose([loss for _, loss in got_curve],
                               [loss for _, loss in want_curve], rtol=1e-4)


def test_data_parallel_end_to_end_training_equals_single_device_training(sharded, single):
    (got, got_curve, got_outputs), (want, want_curve, want_outputs) = (
        sharded["end to end"], single["end to end"])
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose([loss for _, loss in got_curve],
                               [loss for _, loss in want_curve], rtol=1e-4)
    assert got_outputs == want_outputs and len(want_outputs) == 40


def test_one_device_puts_plain_arrays_and_runs_functions_as_they_are():
    import jax

    from alta.devices import padded_rows, per_device, put_batch

    def fn(a):
        return a

    assert per_device(fn, (True,)) is fn
    (array,) = put_batch(np.arange(6))
    assert isinstance(array, jax.Array) and len(array.devices()) == 1
    assert [padded_rows(n) for n in (1, 2, 3, 8)] == [1, 2, 3, 8]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    (out / "results.pickle").write_bytes(pickle.dumps(_everything(out)))
