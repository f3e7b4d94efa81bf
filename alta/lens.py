"""Compiled programs as standard TransformerLens models (torch and transformer_lens).

`hooked_transformer` loads the standard-block weights of alta/unrolled.py into a
`transformer_lens.HookedTransformer` (bidirectional attention with per-head attention sinks,
absolute positions, no layer norm, ReLU MLPs, no attention scale); `export_transformer_lens`
writes one to a directory (config.json, model.safetensors, residual_labels.json,
alta.json) and `load_transformer_lens` rebuilds it with TransformerLens's own classes.
`lens_tokens` frames inputs (PAD after each input), `decode_cache` reads a `run_with_cache`
cache back into the program's variables at every ALTA layer. docs/export.md explains the
construction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alta.errors import AltaError
from alta.unrolled import UnrolledTrace, decode_states, frame, unroll

CONFIG, WEIGHTS, LABELS, INFO = "config.json", "model.safetensors", "residual_labels.json", \
    "alta.json"


def _lens():
    try:
        import torch
        import transformer_lens
    except ImportError as exc:
        raise AltaError.at(f"exporting to TransformerLens needs torch and transformer-lens "
                           f"3.x ({exc})") from None
    if not hasattr(transformer_lens, "HookedTransformer") or "use_attention_sinks" not in \
            transformer_lens.HookedTransformerConfig.__dataclass_fields__:
        raise AltaError.at("this transformer-lens has no HookedTransformer with attention "
                           "sinks ('use_attention_sinks'); install transformer-lens 3.x")
    return torch, transformer_lens


def _config_dict(unrolled) -> dict:
    block = unrolled.blocks[0]
    heads, _, d_head = block.attn.W_Q.shape
    return {
        "n_layers": len(unrolled.blocks), "d_model": unrolled.d_model, "d_head": int(d_head),
        "n_heads": int(heads), "d_mlp": int(block.mlp.W_in.shape[1]),
        "d_vocab": int(unrolled.W_E.shape[0]), "d_vocab_out": int(unrolled.W_U.shape[1]),
        "n_ctx": unrolled.n_ctx, "act_fn": "relu", "normalization_type": None,
        "attention_dir": "bidirectional", "positional_embedding_type": "standard",
        "use_attn_scale": False, "use_attention_sinks": True, "default_prepend_bos": False,
        "original_architecture": "alta-unrolled", "init_weights": False, "device": "cpu",
    }


def _build(config: dict, tensors: dict):
    torch, tl = _lens()
    cfg = tl.HookedTransformerConfig(**config)
    model = tl.HookedTransformer(cfg)
    state = {name: torch.as_tensor(np.asarray(value, np.float32)) for name, value in
             tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if not m.endswith((".mask", ".IGNORE"))]
    if missing or unexpected:
        raise AltaError.at(f"the exported weights do not fit TransformerLens's model: missing "
                           f"{missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def hooked_transformer(compiled, layers: int, mlp=None, *, max_length: int | None = None):
    """(HookedTransformer, residual labels) for `layers` ALTA layers of a compiled program.

    `mlp`: a learned MLP file (`alta train`) to use in place of the compiled one, or None.
    `max_length`: the longest framed input the model must take (its n_ctx; default the
    program's max_length, else alta.unrolled.DEFAULT_CONTEXT)."""
    unrolled = unroll(compiled, layers, _learned(compiled, mlp), max_length)
    return _build(_config_dict(unrolled), unrolled.state_dict()), list(unrolled.labels)


def _learned(compiled, mlp):
    if mlp is None:
        return None
    from alta.training import learned_layers, load_mlp

    manifest, weights = load_mlp(Path(mlp))
    return learned_layers(compiled, manifest, weights), manifest["activation"]


def export_transformer_lens(checkpoint_path, directory, layers: int, mlp=None, *,
                            max_length: int | None = None) -> Path:
    """Write the TransformerLens model of a compiled checkpoint to `directory`: config.json
    (the HookedTransformerConfig's arguments), model.safetensors (its state_dict),
    residual_labels.json (one label per residual dimension) and alta.json (the program, the
    ALTA layers and the blocks per layer, for decoding)."""
    from alta.checkpoint import load_checkpoint
    from alta.files import write_tensors

    compiled = load_checkpoint(checkpoint_path)
    unrolled = unroll(compiled, layers, _learned(compiled, mlp), max_length)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in unrolled.state_dict().items()}
    write_tensors(directory / WEIGHTS, tensors, {"format": "alta-transformer-lens",
                                                 "program": compiled.program.name})
    (directory / CONFIG).write_text(json.dumps(_config_dict(unrolled), indent=1) + "\n")
    (directory / LABELS).write_text(json.dumps(list(unrolled.labels), indent=0) + "\n")
    info = {"program": compiled.program.name, "layers": layers,
            "blocks_per_layer": unrolled.blocks_per_layer, "n_ctx": unrolled.n_ctx,
            "pad_token": unrolled.pad_token, "vocab": list(compiled.program.vocab),
            "checkpoint": str(checkpoint_path), "learned_mlp": None if mlp is None else str(mlp)}
    (directory / INFO).write_text(json.dumps(info, indent=1) + "\n")
    return directory


def load_transformer_lens(directory):
    """(HookedTransformer, residual labels) from an export directory."""
    from alta.files import read_tensors

    directory = Path(directory)
    for name in (CONFIG, WEIGHTS, LABELS):
        if not (directory / name).is_file():
            raise AltaError.at(f"{directory}: not a TransformerLens export (no {name})")
    try:
        config = json.loads((directory / CONFIG).read_text())
        labels = json.loads((directory / LABELS).read_text())
    except json.JSONDecodeError as exc:
        raise AltaError.at(f"{directory}: corrupt export ({exc})") from None
    _, tensors = read_tensors(directory / WEIGHTS, missing="weights file",
                              fail=lambda why: AltaError.at(f"{directory / WEIGHTS}: {why}"))
    if len(labels) != config.get("d_model"):
        raise AltaError.at(f"{directory}: {len(labels)} residual labels for d_model "
                           f"{config.get('d_model')}")
    return _build(config, tensors), labels


def lens_tokens(compiled, texts, model):
    """Framed inputs as a (batch, positions) tensor of token ids, PAD (the id after the
    vocabulary) after each input. Raises AltaError for an input longer than the model's
    n_ctx, the longest the export is exact for."""
    torch, _ = _lens()
    tokens, _ = frame(compiled, texts, model.cfg.n_ctx)
    return torch.as_tensor(tokens)


def decoded_hooks(model, layers: int):
    """A `names_filter` for `run_with_cache` that keeps only the residuals `decode_cache`
    reads: per ALTA layer, its first block's resid_mid (after attention), its last block's
    resid_mid (STOP) and resid_post (after the MLP); and block 0's resid_pre."""
    B = model.cfg.n_layers // layers
    names = {"blocks.0.hook_resid_pre"}
    for layer in range(layers):
        first, last = layer * B, layer * B + B - 1
        names |= {f"blocks.{first}.hook_resid_mid", f"blocks.{last}.hook_resid_mid",
                  f"blocks.{last}.hook_resid_post"}
    return names.__contains__


def decode_cache(cache, compiled, tokens, layers: int) -> UnrolledTrace:
    """A `run_with_cache` cache of `tokens` (whole, or filtered by `decoded_hooks`) -> the
    program's variables and heads at every ALTA layer and position, which sequences each
    layer ran on, and the outputs."""
    tokens = np.asarray(tokens)
    lengths = (tokens != len(compiled.program.vocab)).sum(axis=1)
    n = 1 + max(int(name.split(".")[1]) for name in cache.cache_dict
                if name.endswith("hook_resid_post"))

    def get(name):
        return cache[name].detach().cpu().numpy() if name in cache.cache_dict else None

    mids = [get(f"blocks.{i}.hook_resid_mid") for i in range(n)]
    posts = [get(f"blocks.{i}.hook_resid_post") for i in range(n)]
    return decode_states(compiled, get("blocks.0.hook_resid_pre"), mids, posts, lengths, layers)
