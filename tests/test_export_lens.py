"""The TransformerLens export (alta/unrolled.py, alta/lens.py) against the interpreter: outputs,
every variable after every ALTA layer (past halting too), every defined head after attention,
and which sequences each layer ran on; frozen states after halting; export and reload; the
length limit; the README's worked example."""

import re

import numpy as np
import pytest
from helpers import LIBRARY, ROOT

pytest.importorskip("transformer_lens")
import torch

from alta.errors import AltaError
from alta.framing import encode_batch
from alta.interpreter import run
from alta.lens import (
    decode_cache,
    export_transformer_lens,
    hooked_transformer,
    lens_tokens,
    load_transformer_lens,
)
from alta.tasks import find_task
from alta.unrolled import evaluate, unroll
from alta.verify import _Comparer

# Per program: (inputs, sampler size, most ALTA layers unrolled). The unrolled models of the
# wide programs hold hundreds of millions of parameters per few layers (dyck's 466-wide
# key space, SCAN's 36 heads, frac_prevs's 2,207 MLP units): here they run a few inputs
# over their first layers; `python benchmarks/export_lens.py` checks 100 inputs of each at
# full depth.
HEAVY = {"addition": (8, 2, 2), "dyck": (4, 2, 1), "frac_prevs": (8, 3, 1),
         "scan": (4, 1, 1), "sort_frequency": (16, 3, 3), "subleq": (12, 2, 3)}
LIGHT = {"parity": (100, 12, 99), "parity_absolute": (100, 8, 99)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices over many blocks: on a shared 2-core machine, thread hand-offs cost more
    # than the arithmetic (15 s instead of 0.8 s for parity's 88 blocks).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def lens_run(compiled, texts, layers, max_length=None):
    model, labels = hooked_transformer(compiled, layers, max_length=max_length)
    tokens = lens_tokens(compiled, texts, model)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    return model, labels, tokens, cache


def compare_with_interpreter(compiled, texts, layers, trace):
    """The decoded trace against the interpreter's, layer by layer; past the interpreter's
    last layer the state is the final one and no sequence runs."""
    program = compiled.program
    want = run(program, texts, max_layers=min(layers, program.max_layers), trace=True)
    assert list(trace.outputs) == list(want.outputs)
    valid = want.batch.valid
    variables = [v.name for v in program.variables]
    comparer = _Comparer(program)
    comparer.texts = tuple(texts)
    assert comparer.compare(variables, want.initial, trace.initial, valid, 0, "initial") is None
    for record in trace.layers:
        expected = want.trace[record.layer - 1] if record.layer <= len(want.trace) else None
        active = expected.active if expected is not None else np.zeros(len(texts), bool)
        assert np.array_equal(record.active, active), f"layer {record.layer}: who ran"
        after = expected.after_mlp if expected is not None else want.final
        found = comparer.compare(variables, after, record.after_mlp, valid, record.layer, "mlp")
        assert found is None, found.format(program.name)
        if expected is None:
            continue
        for head in program.heads:
            defined = valid & ~expected.undefined[head.name] & active[:, None]
            found = comparer.compare([head.name], expected.after_attention,
                                     record.after_attention, defined, record.layer, "attention")
            assert found is None, found.format(program.name)
    return want


@pytest.mark.parametrize("name", LIBRARY)
def test_the_lens_model_computes_the_interpreters_trace(name, compiled):
    model = compiled(name)
    program = model.program
    count, size, most = HEAVY.get(name) or LIGHT.get(name) or (100, 3, 99)
    texts = find_task(program).inputs(count, size=size, seed=11)
    needed = int(run(program, texts).layers.max())
    layers = min(needed + 1, most, program.max_layers + 1)  # a layer past halting if we can
    longest = int(encode_batch(program, texts).lengths.max())
    lens, _, tokens, cache = lens_run(model, texts, layers, max_length=longest)
    trace = decode_cache(cache, model, tokens, layers)
    compare_with_interpreter(model, texts, layers, trace)
    if name == "parity":
        # The reference evaluator in numpy computes the same residual stream.
        _, _, posts = evaluate(unroll(model, layers, max_length=longest), tokens.numpy())
        final = cache[f"blocks.{lens.cfg.n_layers - 1}.hook_resid_post"].numpy()
        assert np.allclose(posts[-1], final, atol=1e-5)


def test_states_after_halting_are_the_halted_state(compiled):
    model = compiled("parity")
    texts = find_task(model.program).inputs(40, size=10, seed=5)
    layers = 12
    lens, _, tokens, cache = lens_run(model, texts, layers, max_length=12)
    halted_at = run(model.program, texts).layers
    B = lens.cfg.n_layers // layers
    D = model.layout.width
    states = [cache[f"blocks.{layer * B - 1}.hook_resid_post"].numpy()[..., :D]
              for layer in range(1, layers + 1)]
    states.insert(0, cache["blocks.0.hook_resid_pre"].numpy()[..., :D])
    valid = tokens.numpy() != len(model.program.vocab)
    assert (halted_at < layers).all()
    for b, h in enumerate(halted_at):
        for later in states[h + 1:]:
            assert np.array_equal(later[b][valid[b]], states[h][b][valid[b]])  # bit for bit


def test_export_reloads_with_transformer_lens(compiled, tmp_path):
    from alta.checkpoint import save_checkpoint

    model = compiled("parity")
    checkpoint = save_checkpoint(model, tmp_path / "parity.safetensors")
    directory = export_transformer_lens(checkpoint, tmp_path / "lens", 6, max_length=8)
    assert {p.name for p in directory.iterdir()} >= {"config.json", "model.safetensors",
                                                     "residual_labels.json"}
    loaded, labels = load_transformer_lens(directory)
    fresh, fresh_labels = hooked_transformer(model, 6, max_length=8)
    assert labels == fresh_labels and len(labels) == loaded.cfg.d_model
    assert "parity = 1 (line 20)" in labels[:model.layout.width]
    assert loaded.cfg.attention_dir == "bidirectional" and loaded.cfg.n_ctx == 8
    texts = find_task(model.program).inputs(30, size=6, seed=2)
    tokens = lens_tokens(model, texts, loaded)
    with torch.no_grad():
        _, cache = loaded.run_with_cache(tokens)
        assert torch.equal(loaded(tokens), fresh(tokens))
    trace = decode_cache(cache, model, tokens, 6)
    assert list(trace.outputs) == list(run(model.program, texts, max_layers=6).outputs)


def test_lengths_beyond_n_ctx_are_a_clear_error(compiled):
    model = compiled("parity")
    lens, _ = hooked_transformer(model, 2, max_length=5)
    with pytest.raises(AltaError, match="needs 6 positions.*exact only up to 5"):
        lens_tokens(model, ["1 0 1 1 0"], lens)
    with pytest.raises(AltaError, match="cannot export for 35"):
        unroll(compiled("subleq"), 1, max_length=35)
    with pytest.raises(AltaError, match="activation 'gelu'"):
        unroll(model, 1, (model.parameters.mlp, "gelu"))


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- lens-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, "README.md lacks the TransformerLens example"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "programs").symlink_to(ROOT / "programs")
    exec(compile(found.group(1), "README.md", "exec"), {})
