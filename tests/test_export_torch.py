"""The PyTorch export (alta/pytorch.py, alta/export.py, `alta export --to torch`): on every
library program's sampled inputs, PyTorch outputs against the interpreter's, and its final
and per-layer residuals, layer counts and halting against the Flax model's; learned MLPs
against the Flax model with the same MLP; the exported directory run where ALTA cannot be
imported; bad inputs."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import LIBRARY, alta_main, compiled_library

torch = pytest.importorskip("torch")

from alta.checkpoint import save_checkpoint  # noqa: E402
from alta.cli import main  # noqa: E402
from alta.compiled import bucket_shape, run_compiled, trace_compiled  # noqa: E402
from alta.config import ModelConfig  # noqa: E402
from alta.errors import AltaError  # noqa: E402
from alta.export import export_torch, load_torch, run_torch, torch_model  # noqa: E402
from alta.framing import encode_batch  # noqa: E402
from alta.interpreter import run  # noqa: E402
from alta.pytorch import Config, UniversalTransformer  # noqa: E402
from alta.tasks import find_task  # noqa: E402

SAMPLES, FLAX = 100, 12  # inputs per program: against the interpreter, and the Flax model
SIZES = {"parity_absolute": 40}  # its sampler's default (100 bits) takes 100 layers of N x N
ATOL, RTOL = 1e-4, 1e-5  # float32 rounding: the two sum the same products in other orders


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the test workers already share the cores, and OpenMP threads that
    wait on each other under contention run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", LIBRARY)
def test_torch_agrees_with_the_interpreter_and_the_flax_model(name, compiled):
    """Outputs, layers and halting against the interpreter on SAMPLES inputs; on FLAX of
    them (and the longest), after every layer's attention and MLP, the residual against the
    Flax model's, stepped layer by layer."""
    model = compiled(name)
    program = model.program
    texts = find_task(program).inputs(SAMPLES, size=SIZES.get(name), seed=16)
    expected = run(program, texts)
    module = torch_model(model)
    got = run_torch(model, texts, module)
    assert got.outputs == expected.outputs
    assert np.array_equal(got.layers, expected.layers)
    assert np.array_equal(got.halted, expected.halted)

    chosen = sorted(set(range(FLAX)) | {int(np.argmax(got.batch.lengths))})
    batch = encode_batch(program, [texts[i] for i in chosen])
    width = batch.tokens.shape[1]
    # The Flax model steps at a bucket width; run at the same one, since an undefined head
    # (never read) averages over every position, padding included.
    tokens = np.zeros((len(chosen), bucket_shape(model, batch)[1]), np.int64)
    tokens[:, :width] = batch.tokens
    for flax, step in zip(trace_compiled(model, batch), module.trace(tokens, batch.lengths),
                          strict=True):
        assert step.layer == flax.layer
        assert np.array_equal(step.active.numpy(), flax.active)
        np.testing.assert_allclose(step.state.numpy()[:, :width], flax.after_mlp, rtol=RTOL,
                                   atol=ATOL, err_msg=f"layer {flax.layer}")
        if flax.after_attention is not None:
            attended, active = step.attended.numpy()[:, :width], flax.active
            np.testing.assert_allclose(attended[active], flax.after_attention[active],
                                       rtol=RTOL, atol=ATOL)
            assert np.isnan(attended[~active]).all()
        assert np.array_equal(step.running.numpy(), flax.running)
    assert flax.layer == int(expected.layers[chosen].max())
    np.testing.assert_allclose(got.residual[chosen, :width], flax.after_mlp, rtol=RTOL,
                               atol=ATOL)


def test_the_dense_path_and_one_run_with_every_state(compiled):
    """`sparse=False` (every product dense) and `forward(keep_states=True)` give the sparse
    trace's numbers; `max_layers` stops early as the Flax model does."""
    model = compiled("addition")
    texts = find_task(model.program).inputs(12, seed=3)
    batch = encode_batch(model.program, texts)
    sparse, dense = torch_model(model), torch_model(model, sparse=False)
    assert {type(lin.wt).__name__ for lin in dense._execution().mlp} == {"Tensor"}
    whole = dense(batch.tokens, batch.lengths, keep_states=True)
    trace = list(sparse.trace(batch.tokens, batch.lengths))
    assert whole.states.shape[0] == len(trace) and whole.attended.shape[0] == len(trace) - 1
    for step in trace:
        np.testing.assert_allclose(whole.states[step.layer], step.state, atol=ATOL)
    np.testing.assert_allclose(whole.residual, trace[-1].state, atol=ATOL)
    short = run_torch(model, texts, sparse, max_layers=2)
    flax = run_compiled(model, texts, max_layers=2, shape=batch.tokens.shape)
    np.testing.assert_allclose(short.residual, flax.residual, rtol=RTOL, atol=ATOL)
    assert short.layers.max() == 2 and not short.halted.any() and not flax.halted.any()


def test_faults_stop_as_in_the_flax_model(compiled):
    """Token ids whose MLP reads an undefined head (parity without its start token): the
    same fault flags, layers, stops and residual, stopping there or running on."""
    import jax.numpy as jnp

    from alta.compiled import load_model
    from alta.model import run_model

    model = compiled("parity")
    tokens = np.array([[1, 0, 1, 0], [2, 1, 0, 1]])  # the first lacks "<s>" (id 2)
    lengths = np.array([3, 4])
    module, flax = torch_model(model), load_model(model)
    for stop in (True, False):
        got = module(tokens, lengths, max_layers=12, stop_on_fault=stop)
        residual, layers, halted = run_model(flax, jnp.asarray(tokens), jnp.asarray(lengths),
                                             12, stop)
        np.testing.assert_allclose(got.residual, np.asarray(residual), atol=ATOL)
        assert np.array_equal(got.layers, np.asarray(layers))
        assert np.array_equal(got.halted, np.asarray(halted))
        assert got.faulted.tolist() == [True, False]
    assert got.layers.tolist() == [12, 3]


def test_undefined_reads_give_the_interpreters_error():
    """run_torch turns fault flags into the error run_compiled (and the interpreter) give."""
    from helpers import check

    from alta.compiler import compile_program
    from alta.errors import AltaRuntimeError

    program = check("""
        program eager
        vocab "0" "1"
        output x
        max_layers 2
        var x: cat 2 = token
        head left = x at -1
        mlp:
            x = left
    """)
    model = compile_program(program)
    texts = ["1 0 1", ""]
    errors = []
    for runner in (run_compiled, run_torch):
        with pytest.raises(AltaRuntimeError) as info:
            runner(model, texts)
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "left" in errors[0]
    with pytest.raises(AltaRuntimeError) as info:
        run(program, texts)
    assert str(info.value) == errors[0]
    for undefined in ("stop", "continue"):
        want = run_compiled(model, texts, undefined=undefined,
                            shape=encode_batch(program, texts).tokens.shape)
        got = run_torch(model, texts, undefined=undefined)
        assert got.faults == want.faults and got.outputs == want.outputs
        assert np.array_equal(got.layers, want.layers)


def test_module_shape_and_names_follow_alta(compiled):
    """The state_dict's names are the checkpoint's; the standalone Config has ModelConfig's
    fields and defaults (it reads the manifest ALTA writes)."""
    model = compiled("sort")
    module = torch_model(model)
    assert sorted(module.state_dict()) == sorted(model.weights)
    for name, value in model.weights.items():
        assert np.array_equal(module.state_dict()[name].numpy(), value)
    ours = {f.name: f.default for f in dataclasses.fields(Config)}
    alta_fields = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    assert ours == alta_fields
    assert Config.from_json(model.config.to_json()) == Config(**dataclasses.asdict(
        model.config))


def test_verify_checks_the_torch_model_at_every_layer():
    """`alta.verify` with framework="torch": random programs (heads selecting zero or several
    positions, inputs that read undefined heads) agree with the interpreter at every layer,
    position and variable; a changed weight is found."""
    from program_generator import generate_with_stats

    from alta.compiler import compile_program
    from alta.verify import verify

    for seed in range(8):
        generated, stats = generate_with_stats(seed)
        model = compile_program(stats.program)
        report = verify(model, generated.inputs, framework="torch")
        assert report.ok, report.divergence.format(f"seed{seed}.alta")
        assert report.comparisons > 0
    model = compiled_library("sort")
    texts = find_task(model.program).inputs(20, seed=1)
    module = torch_model(model)
    assert verify(model, texts, model=module, framework="torch").ok
    weights = dict(model.weights)
    weights["mlp.0.bias"] = weights["mlp.0.bias"] + 0.5  # every first-layer unit shifted
    module.load_tensors(weights)
    found = verify(model, texts, model=module, framework="torch").divergence
    assert found is not None and found.interpreter != found.compiled


# ---- learned MLPs ------------------------------------------------------------------------------

def _learned_mlp(compiled, path, width: int, hidden, activation: str, seed: int):
    """A random MLP saved as `alta train` saves one (what is exported is its weights)."""
    from flax import nnx

    from alta.checkpoint import source_hash
    from alta.model import Dense, FeedForward, random_dense
    from alta.training import TrainSettings, save_mlp

    mlp = FeedForward([Dense(p) for p in random_dense((width, *hidden, width),
                                                       nnx.Rngs(seed))], activation)
    dataset = {"program": compiled.program.name, "settings": {},
               "source_sha256": source_hash(compiled.program.source.text)}
    return save_mlp(mlp, TrainSettings(hidden=hidden, activation=activation), dataset, [],
                    0.0, path)


@pytest.mark.parametrize("activation,full", [("relu", False), ("gelu", True),
                                             ("clipped_relu", False)])
def test_learned_mlp_export_agrees_with_the_flax_model(compiled, tmp_path, activation, full):
    """With a learned MLP over the program's dimensions (widened to the fault detector's)
    or over the whole residual: the exported model against the Flax model with the same
    MLP (`alta run --mlp`), residual, layers and halting."""
    from alta.compiler.layout import build_layout
    from alta.training import load_mlp, with_learned_mlp

    model = compiled("parity")
    width = model.config.width if full else build_layout(model.program).width
    path = _learned_mlp(model, tmp_path / "mlp.safetensors", width, (24, 16), activation, 5)
    export_torch(model, tmp_path / "out", mlp=path)
    loaded, module = load_torch(tmp_path / "out")
    assert module.config.activation == activation and module.config.mlp_widths == (24, 16)
    assert module.manifest["export"]["mlp"]["learned"]["file"] == "mlp.safetensors"
    flax = with_learned_mlp(model, *load_mlp(path))
    texts = find_task(model.program).inputs(30, seed=4)
    shape = encode_batch(model.program, texts).tokens.shape  # as the torch run (see above)
    # Random values written into the fault detector's dimensions meet its sharp attention
    # in the next layer, which magnifies float32 rounding without bound: one layer there.
    layers = 1 if full else 4
    want = run_compiled(model, texts, max_layers=layers, model=flax, undefined="continue",
                        shape=shape)
    got = run_torch(loaded, texts, module, max_layers=layers, undefined="continue")
    np.testing.assert_allclose(got.residual, want.residual, rtol=RTOL, atol=ATOL)
    assert np.array_equal(got.layers, want.layers)
    assert np.array_equal(got.halted, want.halted)
    assert got.outputs == want.outputs


# ---- the exported directory, without ALTA ------------------------------------------------------

_STANDALONE = """
import json, sys
sys.modules["alta"] = None  # `import alta` fails from here on
sys.path.insert(0, sys.argv[1])
import numpy as np
from alta_pytorch import UniversalTransformer

model = UniversalTransformer.from_file(sys.argv[1] + "/model.safetensors")
sequences = json.loads(sys.argv[2])
result = model.run(sequences)
np.save(sys.argv[3], result.residual.numpy())
print(json.dumps({"layers": result.layers.tolist(), "halted": result.halted.tolist(),
                  "alta": [m for m in sys.modules if m.split(".")[0] == "alta"
                           and sys.modules[m] is not None]}))
"""


def test_the_cli_exports_a_directory_that_runs_without_alta(compiled, tmp_path):
    model = compiled("addition")
    checkpoint = save_checkpoint(model, tmp_path / "addition.safetensors")
    done = alta_main("export", checkpoint, "--to", "torch", "-o", tmp_path / "export")
    assert done.returncode == 0, done.stderr
    assert "addition" in done.stdout and str(tmp_path / "export") in done.stdout
    exported = tmp_path / "export"
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "alta_pytorch.py",
                                                          "model.safetensors"]
    readme = (exported / "README.md").read_text()
    assert "UniversalTransformer.from_file" in readme and "789+456" in readme
    assert b"pickle" not in (exported / "model.safetensors").read_bytes()[:8] and \
        (exported / "model.safetensors").read_bytes()[8:9] == b"{"  # a safetensors header

    elsewhere = tmp_path / "elsewhere"  # a copy, away from the repository
    shutil.copytree(exported, elsewhere)
    texts = find_task(model.program).inputs(8, seed=9)
    batch = encode_batch(model.program, texts)
    sequences = [batch.tokens[b, :n].tolist() for b, n in enumerate(batch.lengths)]
    done = subprocess.run([sys.executable, "-I", "-c", _STANDALONE, str(elsewhere),
                           json.dumps(sequences), str(tmp_path / "residual.npy")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["alta"] == []
    flax = run_compiled(model, texts)
    assert report["layers"] == flax.layers.tolist()
    assert report["halted"] == flax.halted.tolist()
    np.testing.assert_allclose(np.load(tmp_path / "residual.npy"), flax.residual,
                               rtol=RTOL, atol=ATOL)
    loaded, module = load_torch(elsewhere)
    assert run_torch(loaded, texts, module).outputs == run(model.program, texts).outputs


# ---- bad inputs ----------------------------------------------------------------------------------

def test_bad_token_ids_and_shapes_are_clear_errors(compiled):
    module = torch_model(compiled("parity_absolute"))
    cases = [
        (([[0, 9]], [2]), "token id 9 at row 0, position 1 is not in the vocabulary"),
        (([[0, -1]], [2]), "token id -1"),
        (([[0, 1]], [3]), r"lengths must lie in 0\.\.2"),
        (([[0, 1]], [1, 1]), r"lengths must be \(1,\) integers"),
        (([0, 1], [2]), r"tokens must be a \(batch, positions\) integer array"),
        (([[0.0, 1.0]], [2]), "integer array"),
        ((np.zeros((1, 300), int), [300]), "300 positions, but the position embedding has 256"),
    ]
    for (tokens, lengths), message in cases:
        with pytest.raises(ValueError, match=message):
            module(tokens, lengths)
    with pytest.raises(ValueError, match="max_layers must be non-negative"):
        module([[0, 1]], [2], max_layers=-1)
    with pytest.raises(ValueError, match="no sequences"):
        module.run([])
    assert module([[0, 9]], [1]).layers.shape == (1,)  # padding may hold anything


def test_bad_model_files_are_clear_errors(compiled, tmp_path):
    from safetensors.numpy import save_file

    with pytest.raises(FileNotFoundError, match="no such model file"):
        UniversalTransformer.from_file(tmp_path / "missing.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(2, np.float32)}, str(plain))
    with pytest.raises(ValueError, match="no ALTA manifest"):
        UniversalTransformer.from_file(plain)
    good = save_checkpoint(compiled("parity"), tmp_path / "parity.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        UniversalTransformer.from_file(truncated)
    weights = dict(compiled("parity").weights)
    manifest = json.dumps({"format": "alta-compiled-transformer", "format_version": 2,
                           "config": compiled("parity").config.to_json()})
    weights["mlp.0.weight"] = weights["mlp.0.weight"][:, :3]
    del weights["halting.0.bias"]
    broken = tmp_path / "broken.safetensors"
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()},
              str(broken), metadata={"alta": manifest})
    with pytest.raises(ValueError, match="halting.0.bias") as info:
        UniversalTransformer.from_file(broken)
    assert "mlp.0.weight" in str(info.value)
    config = compiled("parity").config.to_json() | {"activation": "swish"}
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        UniversalTransformer(config)
    with pytest.raises(ValueError, match="unknown model config fields"):
        UniversalTransformer(config | {"activation": "relu", "depth": 3})


def test_export_errors(compiled, tmp_path, monkeypatch, capsys):
    model = compiled("parity")
    checkpoint = save_checkpoint(model, tmp_path / "parity.safetensors")
    a_file = tmp_path / "a_file"
    a_file.write_text("")

    def export(*args):
        code = main(["export", str(checkpoint), *map(str, args)])
        return code, capsys.readouterr().err

    code, err = export("--to", "torch", "-o", a_file)
    assert code == 1 and "it is a file, not a directory" in err
    code, err = export("--to", "torch", "-o", tmp_path / "x", "--layers", "3")
    assert code == 1 and "--layers" in err and "transformer-lens" in err
    code, err = export("--to", "transformer-lens", "-o", tmp_path / "x")
    assert code == 1 and "--layers N" in err
    code = main(["export", str(tmp_path / "nothing.safetensors"), "--to", "torch", "-o",
                 str(tmp_path / "x")])
    assert code == 1 and "no such checkpoint" in capsys.readouterr().err
    code, err = export("--to", "torch", "-o", tmp_path / "x", "--mlp", tmp_path / "no.st")
    assert code == 1 and "no such MLP file" in err
    other = compiled("parity_sum_mod_2")
    mlp = _learned_mlp(other, tmp_path / "other.safetensors", other.config.width, (8,),
                       "relu", 0)
    code, err = export("--to", "torch", "-o", tmp_path / "x", "--mlp", mlp)
    assert code == 1 and "another program, 'parity_sum_mod_2'" in err
    with pytest.raises(SystemExit):
        main(["export", str(checkpoint), "--to", "onnx", "-o", str(tmp_path / "x")])
    assert "invalid choice: 'onnx'" in capsys.readouterr().err

    import types

    import alta.lens

    calls = []  # the handler's call, without importing TransformerLens (many seconds)
    monkeypatch.setitem(sys.modules, "transformer_lens", types.ModuleType("transformer_lens"))
    monkeypatch.setattr(alta.lens, "export_transformer_lens",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or args[1])
    code, err = export("--to", "transformer-lens", "--layers", "3", "-o", tmp_path / "z",
                       "--mlp", mlp)
    assert code == 0, err
    assert calls == [((str(checkpoint), str(tmp_path / "z"), 3), {"mlp": str(mlp)})]
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "transformer_lens", None)
    code, err = export("--to", "transformer-lens", "--layers", "3", "-o", tmp_path / "x")
    assert code == 1 and 'needs transformer_lens, part of the \'export\' extra' in err
    monkeypatch.setitem(sys.modules, "alta.lens", None)
    code, err = export("--to", "transformer-lens", "--layers", "3", "-o", tmp_path / "x")
    assert code == 1 and "transformer-lens export is not available" in err
    monkeypatch.setitem(sys.modules, "torch", None)
    code, err = export("--to", "torch", "-o", tmp_path / "x")
    assert code == 1 and 'pip install -e ".[export]"' in err
    with pytest.raises(AltaError, match=r'pip install -e "\.\[export\]"'):
        export_torch(model, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
