"""The TransformerLens export (alta/unrolled.py, alta/lens.py) against the interpreter: outputs,
every variable after every ALTA layer (past halting too), every defined head after attention,
and which sequences each layer ran on; frozen states after halting; export and reload (and
the cache filter for decoding); the length limit; the README's worked example; a trained MLP
exported to PyTorch and TransformerLens against the Flax model with it."""

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
    decoded_hooks,
    export_transformer_lens,
    hooked_transformer,
    lens_tokens,
    load_transformer_lens,
)
from alta.tasks import find_task
from alta.unrolled import evaluate, unroll
from alta.verify import _Comparer

# Per program: (inputs, sampler size, most ALTA layers unrolled). The unrolled models of the
# wide programs hold hundreds of millions of parameters per few layers (SCAN's 36 heads,
# frac_prevs's 2,207 MLP units): here they run a few inputs
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
    with torch.no_grad():  # only the residuals decoding reads: the same trace
        _, kept = loaded.run_with_cache(tokens, names_filter=decoded_hooks(loaded, 6))
    assert len(kept.cache_dict) == 1 + 3 * 6 < len(cache.cache_dict)
    filtered = decode_cache(kept, model, tokens, 6)
    assert filtered.outputs == trace.outputs
    for got, want in zip([filtered.initial] + [vars(r) for r in filtered.layers],
                         [trace.initial] + [vars(r) for r in trace.layers], strict=True):
        for key, value in want.items():
            if isinstance(value, dict):
                assert value.keys() == got[key].keys()
                assert all(np.array_equal(value[n], got[key][n]) for n in value)
            else:
                assert np.array_equal(value, got[key])


def test_lengths_beyond_n_ctx_are_a_clear_error(compiled):
    model = compiled("parity")
    lens, _ = hooked_transformer(model, 2, max_length=5)
    with pytest.raises(AltaError, match="needs 6 positions.*exact only up to 5"):
        lens_tokens(model, ["1 0 1 1 0"], lens)
    with pytest.raises(AltaError, match="cannot export for 35"):
        unroll(compiled("subleq"), 1, max_length=35)
    with pytest.raises(AltaError, match="activation 'gelu'"):
        unroll(model, 1, (model.parameters.mlp, "gelu"))


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's block, as written, prints what the README says it prints."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- lens-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, "README.md lacks the TransformerLens example"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "programs").symlink_to(ROOT / "programs")
    exec(compile(found.group(1), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 + 2 and lines[-2:] == ["('1',) 1", "0"]
    assert [line.split()[0] for line in lines[:6]] == [str(n) for n in range(1, 7)]
    assert [line.endswith("ran") for line in lines[:6]] == [True] * 4 + [False] * 2


def test_learned_mlp_exports_agree_with_the_flax_model(parity_mlp, compiled, tmp_path):
    """An MLP trained on parity's traces (conftest.py), exported with `--mlp` to PyTorch and
    to TransformerLens: after every layer, each exported model's residual in the program's
    dimensions equals the Flax model's with the same MLP to float32 rounding, at every
    position; the decoded outputs are equal; the PyTorch model runs the same sequences in
    each layer. The learned MLP reads the raw values of undefined heads (parity_left at
    position 0), which average over padding too, so each batch holds inputs of one length
    and runs unpadded. (A stopped sequence's head dimensions keep changing in the
    TransformerLens model: docs/export.md.)"""
    import random

    from alta.checkpoint import save_checkpoint
    from alta.cli import main
    from alta.compiled import trace_compiled
    from alta.export import load_torch, run_torch, trace_torch
    from alta.framing import decode_outputs
    from alta.training import load_mlp, with_learned_mlp

    _, _, path, _ = parity_mlp
    model = compiled("parity")
    program = model.program
    flax_model = with_learned_mlp(model, *load_mlp(path))
    rng = random.Random(21)
    groups = [[" ".join(rng.choice("01") for _ in range(bits)) for _ in range(34)]
              for bits in (2, 5, 8)]  # 102 inputs, trained on up to 8 bits
    batches = [encode_batch(program, texts) for texts in groups]
    flax = [list(trace_compiled(model, batch, model=flax_model, shape=batch.tokens.shape))
            for batch in batches]
    layers = max(trace[-1].layer for trace in flax) + 1  # one past the last halting layer
    checkpoint = save_checkpoint(model, tmp_path / "parity.safetensors")
    for target, extra in (("torch", []), ("transformer-lens", ["--layers", layers])):
        assert main(["export", str(checkpoint), "--to", target, "-o", str(tmp_path / target),
                     "--mlp", str(path), *map(str, extra)]) == 0
    _, module = load_torch(tmp_path / "torch")
    lens, labels = load_transformer_lens(tmp_path / "transformer-lens")
    assert len(labels) == lens.cfg.d_model and any("scratch" in label for label in labels)
    B, D = lens.cfg.n_layers // layers, model.layout.width
    variables = [d for b in model.layout.blocks if not b.is_head for d in range(b.start, b.stop)]
    for texts, batch, want in zip(groups, batches, flax, strict=True):
        tokens = lens_tokens(model, texts, lens)
        with torch.no_grad():
            _, cache = lens.run_with_cache(tokens, names_filter=decoded_hooks(lens, layers))
        lens_states = [cache["blocks.0.hook_resid_pre"].numpy()] + [
            cache[f"blocks.{layer * B - 1}.hook_resid_post"].numpy()
            for layer in range(1, layers + 1)]
        steps = list(trace_torch(model, batch, model=module))
        assert [s.layer for s in steps] == [f.layer for f in want]
        for layer, lens_state in enumerate(lens_states):
            expected = want[min(layer, len(want) - 1)]
            got = {"lens": lens_state[..., :D]}
            # every dimension where the layer ran; the variables' also where it stopped
            ran = np.ones(len(texts), bool) if layer == 0 else \
                want[layer].active if layer < len(want) else np.zeros(len(texts), bool)
            if layer < len(steps):
                got["torch"] = steps[layer].after_mlp
                assert np.array_equal(steps[layer].active, expected.active)
                assert np.array_equal(steps[layer].running, expected.running)
            for name, state in got.items():
                np.testing.assert_allclose(state[ran], expected.after_mlp[ran], rtol=1e-5,
                                           atol=1e-4, err_msg=f"{name}, layer {layer}")
                np.testing.assert_allclose(state[..., variables], expected.after_mlp[
                    ..., variables], rtol=1e-5, atol=1e-4, err_msg=f"{name}, layer {layer}")
        outputs = decode_outputs(program, model.layout.decode(want[-1].after_mlp, program),
                                 batch.lengths)
        assert list(decode_cache(cache, model, tokens, layers).outputs) == list(outputs)
        assert list(run_torch(model, texts, module).outputs) == list(outputs)
        assert list(outputs) == list(run(program, texts).outputs)  # it learned parity
