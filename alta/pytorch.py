"""An ALTA program's compiled Universal Transformer as a plain PyTorch module.

This one file needs only torch, numpy, safetensors and the standard library: copy it
anywhere, load the weights `alta compile` (or `alta export --to torch`) wrote, run token ids:

    model = UniversalTransformer.from_file("model.safetensors")   # .to("cuda") works too
    run = model.run([[2, 1, 0, 1, 1]])       # framed token ids, one list per input
    run.residual, run.layers, run.halted     # (B, N, D) final state, layers run, halted

It computes what ALTA's Flax model (alta/model.py) computes, to float32 rounding: token (and
position) embeddings; then one shared layer, repeated: multi-head attention, each head seeing
only the relative offsets it declares and never padding, softmax with a per-head sink logit;
the MLP (clipped ReLU, ReLU or GELU between its dense layers); both with residual
connections and no layer norm. Before the first layer and after every layer a sequence stops
when its halting readout holds at every position, or when a fault flag (the network's
record of a read of an undefined head) is set; a stopped sequence, and every padding
position, keeps its state. `max_layers` bounds the loop.

Tensor names and shapes are the checkpoint's (the module's `state_dict` keys are the same
names); the model's shape comes from the JSON manifest in the file's header metadata (key
"alta", its "config"). The manifest also says how to frame an input ("vocab", "framing") and
where each value sits in the residual ("layout"); ALTA's own `alta.export.run_torch` does
that framing and decoding. Mostly-zero weight matrices (compiled rules read a few dimensions
each) are multiplied as sparse CSR matrices, on activations kept features-first; the result
is the dense product's, summed in another order.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

FORMAT = "alta-compiled-transformer"
FORMAT_VERSION = 2
MANIFEST_KEY = "alta"
MASKED = -1e9  # as the Flax model: finite, so a row with nothing allowed averages, not NaNs
EXP_FLOOR = -80.0  # exp() of less is taken as 0 (see _exp_shifted)
SPARSE_DENSITY = 0.1  # a weight matrix with at most this share nonzero multiplies as sparse
SPARSE_MIN_SIZE = 4096  # ... when it has at least this many entries (small ones: dense)


@dataclass(frozen=True)
class Config:
    """The model's shape, as the manifest's "config" states it (ALTA's ModelConfig)."""

    vocab_size: int
    width: int
    num_heads: int
    key_width: int
    value_width: int
    mlp_widths: tuple[int, ...]
    activation: str = "clipped_relu"
    max_positions: int = 0
    token_at_position: bool = False
    head_offsets: tuple[tuple[int, ...] | None, ...] = ()
    attention_scale: float = 1.0
    halting_widths: tuple[int, ...] = ()
    max_layers: int = 1000
    attention_sink: bool = False
    fault_dims: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: dict) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}")
        data = dict(data)
        for name in ("mlp_widths", "halting_widths", "fault_dims"):
            data[name] = tuple(int(v) for v in data.get(name, ()))
        data["head_offsets"] = tuple(None if o is None else tuple(int(v) for v in o)
                                     for o in data.get("head_offsets", ()))
        try:
            config = cls(**data)
        except TypeError as exc:
            raise ValueError(f"malformed model config ({exc})") from None
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; expected one of "
                             f"{', '.join(ACTIVATIONS)}")
        if config.head_offsets and len(config.head_offsets) != config.num_heads:
            raise ValueError(f"{len(config.head_offsets)} head offsets for "
                             f"{config.num_heads} heads")
        return config


ACTIVATIONS = {
    "clipped_relu": lambda x: x.clamp_(0.0, 1.0),
    "relu": lambda x: x.clamp_(min=0.0),
    "gelu": lambda x: nn.functional.gelu(x, approximate="tanh"),  # jax.nn.gelu's default
}


class Run(NamedTuple):
    """A run of a batch. `halted`: the sequence stopped, because its halting readout holds
    or (with `stop_on_fault`) a fault flag is set; `faulted` says which flags are set at the
    end. With `keep_states`: `states[l]` is the residual after l layers (0: the embeddings;
    a stopped sequence keeps its state), `attended[l - 1]` after layer l's attention (NaN
    for the sequences that did not run layer l)."""

    residual: torch.Tensor  # (B, N, D) float32
    layers: torch.Tensor  # (B,) int64: layers run
    halted: torch.Tensor  # (B,) bool
    faulted: torch.Tensor  # (B,) bool
    states: torch.Tensor | None = None  # (layers + 1, B, N, D), with `keep_states`
    attended: torch.Tensor | None = None  # (layers, B, N, D)


class Layer(NamedTuple):
    """One layer of `UniversalTransformer.trace` (as ALTA's `trace_compiled`): layer 0 is
    the initial state. `attended` is None for layer 0 and NaN for the sequences that did not
    run this layer."""

    layer: int
    active: torch.Tensor  # (B,) bool: the sequences this layer ran on
    attended: torch.Tensor | None  # (B, N, D) after attention
    state: torch.Tensor  # (B, N, D) after the layer
    running: torch.Tensor  # (B,) bool: still running after this layer's halting check


class _Step(NamedTuple):
    layer: int
    active: torch.Tensor
    attended: torch.Tensor | None  # (D, B, N), full batch
    state: torch.Tensor | None  # (D, B, N), a copy (the loop updates x in place)
    x: torch.Tensor
    layers: torch.Tensor
    running: torch.Tensor
    faulted: torch.Tensor


def _batch_first(t: torch.Tensor) -> torch.Tensor:
    """(..., D, B, N) -> (..., B, N, D), contiguous."""
    n = t.dim()
    return t.permute(*range(n - 3), n - 2, n - 1, n - 3).contiguous()


class Dense(nn.Module):
    """x @ weight + bias; weight stored (in, out), as in the checkpoint."""

    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(fan_in, fan_out), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(fan_out), requires_grad=False)


class Embedding(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(config.vocab_size, config.width),
                                  requires_grad=False)
        self.position = nn.Parameter(torch.zeros(config.max_positions, config.width),
                                     requires_grad=False) if config.max_positions else None
        # A row per token at each position (initialisers that read both): not a sum.
        self.token_at_position = nn.Parameter(
            torch.zeros(config.max_positions, config.vocab_size, config.width),
            requires_grad=False) if config.token_at_position else None


class Attention(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        H, D, K, V = config.num_heads, config.width, config.key_width, config.value_width
        for name, shape in (("query", (H, D, K)), ("key", (H, D, K)), ("value", (H, D, V)),
                            ("output", (H, V, D))):
            setattr(self, name, nn.Parameter(torch.zeros(shape), requires_grad=False))
        self.sink = nn.Parameter(torch.zeros(H), requires_grad=False) \
            if config.attention_sink else None


class UniversalTransformer(nn.Module):
    """Attribute paths are the checkpoint's tensor names: `embed.token`, `attention.query`,
    `mlp.0.weight`, `halting.2.bias`. Inference only (float32, no gradients)."""

    def __init__(self, config: Config | dict, tensors: dict | None = None,
                 sparse: bool = True) -> None:
        """The model of `config` (a `Config` or the manifest's "config" dict), filled with
        `tensors` (name -> array or tensor; all of them, of the config's shapes). `sparse`:
        multiply mostly-zero matrices as sparse ones (False: every product dense)."""
        super().__init__()
        self.config = config if isinstance(config, Config) else Config.from_json(config)
        config = self.config
        D = config.width
        self.embed = Embedding(config)
        self.attention = Attention(config)
        widths = (D, *config.mlp_widths, D)
        self.mlp = nn.ModuleList(Dense(a, b) for a, b in itertools.pairwise(widths))
        widths = (D, *config.halting_widths)
        self.halting = nn.ModuleList(Dense(a, b) for a, b in itertools.pairwise(widths)) \
            if config.halting_widths else None
        self.sparse = sparse
        self.manifest: dict | None = None
        self._prepared = None
        if tensors is not None:
            self.load_tensors(tensors)

    # -- weights --------------------------------------------------------------------------------

    def load_tensors(self, tensors: dict) -> None:
        """Fill every parameter from `tensors` by name; ValueError naming what is missing,
        unexpected or misshapen."""
        state = {name: torch.as_tensor(np.asarray(value, np.float32))
                 if not isinstance(value, torch.Tensor) else value.float()
                 for name, value in tensors.items()}
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"the tensors do not fit the model config: {exc}") from None
        for name, value in self.state_dict().items():
            if not torch.isfinite(value).all():
                raise ValueError(f"tensor {name} holds NaN or infinite values")

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device | None = None,
                  sparse: bool = True) -> UniversalTransformer:
        """The model in a `.safetensors` file written by ALTA (its manifest on `.manifest`)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such model file: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
        manifest = read_manifest(path, metadata)
        try:
            model = cls(manifest["config"], tensors, sparse=sparse)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        model.manifest = manifest
        return model.to(device) if device is not None else model

    @property
    def device(self) -> torch.device:
        return self.embed.token.device

    def _execution(self) -> _Execution:
        """The weights in the form the run multiplies them in, rebuilt whenever a parameter
        changed (in place, or by a move to another device)."""
        key = tuple((p.data_ptr(), p._version, p.device) for p in self.parameters())
        if self._prepared is None or self._prepared[0] != key:
            self._prepared = (key, _Execution(self))
        return self._prepared[1]

    # -- running --------------------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, tokens, lengths, max_layers: int | None = None,
                stop_on_fault: bool = True, keep_states: bool = False) -> Run:
        """Run a padded batch to halting. `tokens` (B, N) holds framed token ids (anything
        at padding positions), `lengths` (B,) how many positions of each row are the
        input's; `max_layers` defaults to the config's. With `stop_on_fault` false a
        sequence runs on past a fault flag (the flags stay in the residual). `keep_states`
        keeps every layer's residual (memory: layers x B x N x D floats, twice; `trace`
        hands them out one layer at a time instead)."""
        states, attended = [], []
        for step in self._loop(tokens, lengths, max_layers, stop_on_fault, keep_states):
            if keep_states:
                states.append(step.state)
                if step.layer:
                    attended.append(step.attended)
        x, layers, running, faulted = step.x, step.layers, step.running, step.faulted
        if not keep_states:
            return Run(_batch_first(x), layers, ~running, faulted)
        D, B, N = x.shape
        return Run(_batch_first(x), layers, ~running, faulted,
                   _batch_first(torch.stack(states)),
                   _batch_first(torch.stack(attended)) if attended else
                   x.new_zeros((0, B, N, D)))

    @torch.no_grad()
    def trace(self, tokens, lengths, max_layers: int | None = None,
              stop_on_fault: bool = True) -> Iterator[Layer]:
        """As `forward`, one layer at a time: the initial state (layer 0), then every
        layer run (nothing is kept between layers)."""
        for step in self._loop(tokens, lengths, max_layers, stop_on_fault, True):
            yield Layer(step.layer, step.active, None if step.attended is None else
                        _batch_first(step.attended), _batch_first(step.state),
                        step.running.clone())

    def _loop(self, tokens, lengths, max_layers, stop_on_fault: bool, states: bool):
        """The run's loop, features first: a `_Step` for the initial state and after each
        layer (with `states`, full after-attention and after-layer residuals in it)."""
        config = self.config
        tokens, lengths = self._check_inputs(tokens, lengths)
        limit = config.max_layers if max_layers is None else int(max_layers)
        if limit < 0:
            raise ValueError(f"max_layers must be non-negative, got {limit}")
        run = self._execution()
        B, N = tokens.shape
        valid = torch.arange(N, device=self.device)[None, :] < lengths[:, None]
        blocked = ~run.head_masks(valid)
        x = run.embed(tokens.masked_fill(~valid, 0))  # (D, B, N): features first
        running = ~run.stops(x, valid, stop_on_fault)
        layers = torch.zeros(B, dtype=torch.int64, device=self.device)
        active = torch.zeros_like(running)

        def step(layer, attended):
            faulted = run.faulted(x, valid)
            return _Step(layer, active, attended, x.clone() if states else None, x, layers,
                         running, faulted)

        yield step(0, None)
        layer = 0
        while layer < limit and bool(running.any()):
            layer += 1
            active = running.clone()
            every = bool(running.all())
            rows = None if every else torch.nonzero(running).squeeze(1)
            sub_x = x if every else x[:, rows]
            sub_valid = valid if every else valid[rows]
            after_attention, new = run.layer(sub_x, blocked if every else blocked[rows])
            new = torch.where(sub_valid[None], new, sub_x)
            stopped = run.stops(new, sub_valid, stop_on_fault)
            if every:
                x = new
                layers += 1
                running &= ~stopped
            else:
                x.index_copy_(1, rows, new)
                layers.index_add_(0, rows, torch.ones_like(rows))
                running.index_copy_(0, rows, ~stopped)
                if states:
                    after_attention = torch.full_like(x, float("nan")).index_copy_(
                        1, rows, after_attention)
            if states or not (layer < limit and bool(running.any())):
                yield step(layer, after_attention if states else None)

    def run(self, sequences, max_layers: int | None = None, stop_on_fault: bool = True,
            keep_states: bool = False) -> Run:
        """`forward` on a list of token-id sequences (framed inputs), padded here."""
        sequences = [list(s) for s in sequences]
        if not sequences:
            raise ValueError("no sequences to run")
        N = max(1, max(len(s) for s in sequences))
        tokens = torch.zeros((len(sequences), N), dtype=torch.int64)
        for b, s in enumerate(sequences):
            tokens[b, :len(s)] = torch.as_tensor(s, dtype=torch.int64)
        lengths = torch.as_tensor([len(s) for s in sequences], dtype=torch.int64)
        return self(tokens, lengths, max_layers, stop_on_fault, keep_states)

    def _check_inputs(self, tokens, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.as_tensor(tokens, device=self.device)
        lengths = torch.as_tensor(lengths, device=self.device)
        if tokens.dim() != 2 or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be a (batch, positions) integer array, got "
                             f"{tuple(tokens.shape)} {tokens.dtype}")
        if lengths.shape != tokens.shape[:1] or lengths.dtype.is_floating_point:
            raise ValueError(f"lengths must be ({tokens.shape[0]},) integers, one per row of "
                             f"tokens, got {tuple(lengths.shape)} {lengths.dtype}")
        B, N = tokens.shape
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
            raise ValueError(f"lengths must lie in 0..{N} (the positions of tokens)")
        P = self.config.max_positions
        if P and N > P:
            raise ValueError(f"{N} positions, but the position embedding has {P} rows")
        tokens, lengths = tokens.long(), lengths.long()
        valid = torch.arange(N, device=self.device)[None, :] < lengths[:, None]
        bad = valid & ((tokens < 0) | (tokens >= self.config.vocab_size))
        if bool(bad.any()):
            b, i = (int(v) for v in torch.nonzero(bad)[0])
            raise ValueError(f"token id {int(tokens[b, i])} at row {b}, position {i} is not "
                             f"in the vocabulary (0..{self.config.vocab_size - 1})")
        return tokens, lengths


class _Linear:
    """y = x @ W + b on features-first activations: (in, M) -> (out, M). Where W is mostly
    zeros its transpose is a sparse (CSR) matrix, and where each output has at most one
    nonzero weight (a compiled head's Q, K, V and O copy single dimensions) the product is a
    gather of input rows times their weights."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, sparse: bool) -> None:
        wt = weight.t().contiguous()
        self.bias = None if bias is None else bias[:, None]
        self.rows = self.scale = None
        nonzero = wt != 0
        if not sparse or wt.numel() < SPARSE_MIN_SIZE or \
                int(nonzero.sum()) > SPARSE_DENSITY * wt.numel():
            self.wt = wt
        elif int(nonzero.sum(dim=1).max()) <= 1:
            self.rows = nonzero.to(torch.uint8).argmax(dim=1)  # 0 where a row has none
            self.scale = wt.gather(1, self.rows[:, None])  # ... and its weight is 0 there
        else:
            with warnings.catch_warnings():  # "sparse CSR support is in beta": it works
                warnings.filterwarnings("ignore", "Sparse CSR", UserWarning)
                self.wt = wt.to_sparse_csr()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = x[self.rows].mul_(self.scale) if self.rows is not None else self.wt @ x
        return y if self.bias is None else y.add_(self.bias)


class _Execution:
    """One model's weights arranged for the run (built by `UniversalTransformer._execution`).
    Activations are features first, (D, B, N), so every weight product is one matrix
    product over all positions."""

    def __init__(self, model: UniversalTransformer) -> None:
        config = self.config = model.config
        H, K, V = config.num_heads, config.key_width, config.value_width
        a = model.attention
        self.token = model.embed.token
        self.position = model.embed.position
        self.token_at_position = model.embed.token_at_position
        projection = torch.cat([a.query.permute(0, 2, 1).reshape(H * K, -1),
                                a.key.permute(0, 2, 1).reshape(H * K, -1),
                                a.value.permute(0, 2, 1).reshape(H * V, -1)])
        self.qkv = _Linear(projection.t(), None, model.sparse)
        self.output = _Linear(a.output.reshape(H * V, -1), None, model.sparse)
        self.sink = a.sink
        self.offsets = config.head_offsets or (None,) * H
        self.mlp = [_Linear(d.weight, d.bias, model.sparse) for d in model.mlp]
        self.activation = ACTIVATIONS[config.activation]
        self.halting = [_Linear(d.weight, d.bias, model.sparse) for d in model.halting] \
            if model.halting is not None else None
        dims = list(config.fault_dims)
        self.fault_dims = torch.as_tensor(dims, dtype=torch.int64, device=model.device) \
            if dims else None

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token[tokens]  # (B, N, D)
        if self.position is not None:
            x = x + self.position[None, :tokens.shape[1]]
        if self.token_at_position is not None:
            positions = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
            x = x + self.token_at_position[positions, tokens]
        return x.permute(2, 0, 1).contiguous()

    def head_masks(self, valid: torch.Tensor) -> torch.Tensor:
        """(B, H, N, N) bool: query i may select key j (j not padding, j - i allowed)."""
        N = valid.shape[1]
        positions = torch.arange(N, device=valid.device)
        relative = positions[None, :] - positions[:, None]
        allowed = {}
        for offsets in self.offsets:
            if offsets not in allowed:
                allowed[offsets] = torch.ones((N, N), dtype=torch.bool, device=valid.device) \
                    if offsets is None else torch.isin(relative, torch.as_tensor(
                        offsets, dtype=relative.dtype, device=valid.device))
        per_head = torch.stack([allowed[o] for o in self.offsets]) if self.offsets else \
            torch.zeros((0, N, N), dtype=torch.bool, device=valid.device)
        return per_head[None] & valid[:, None, None, :]

    def attend(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """What attention adds to the residual, (D, B, N)."""
        config = self.config
        H, K, V = config.num_heads, config.key_width, config.value_width
        D, B, N = x.shape
        if H == 0:
            return torch.zeros_like(x)
        qkv = self.qkv(x.reshape(D, B * N))
        q = qkv[:H * K].reshape(H, K, B, N).permute(2, 0, 3, 1)  # (B, H, N, K)
        k = qkv[H * K:2 * H * K].reshape(H, K, B, N).permute(2, 0, 1, 3)  # (B, H, K, N)
        v = qkv[2 * H * K:].reshape(H, V, B, N).permute(2, 0, 3, 1)  # (B, H, N, V)
        scores = torch.matmul(q, k).mul_(config.attention_scale).masked_fill_(blocked, MASKED)
        weights = softmax_with_sink(scores, self.sink)
        heads = torch.matmul(weights, v)  # (B, H, N, V)
        return self.output(heads.permute(1, 3, 0, 2).reshape(H * V, B * N)).reshape(D, B, N)

    def layer(self, x: torch.Tensor, blocked: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """One application of the shared layer: (state after attention, after the MLP).
        `blocked` (B, H, N, N): the keys each head may not select."""
        D, B, N = x.shape
        attended = x + self.attend(x, blocked)
        h = attended.reshape(D, B * N)
        for i, dense in enumerate(self.mlp):
            h = dense(h)
            if i < len(self.mlp) - 1:
                h = self.activation(h)
        return attended, attended + h.reshape(D, B, N)

    def halted(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B,): the halting readout holds at every non-padding position."""
        D, B, N = x.shape
        if self.halting is None:
            return torch.zeros(B, dtype=torch.bool, device=x.device)
        h = x.reshape(D, B * N)
        for dense in self.halting:
            h = dense(h).clamp_(0.0, 1.0)
        holds = (h.sum(dim=0) > 0.5).reshape(B, N)
        return (holds | ~valid).all(dim=1)

    def faulted(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B,): a fault flag is set at some non-padding position."""
        if self.fault_dims is None:
            return torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
        flags = (x[self.fault_dims] > 0.5).any(dim=0)  # (B, N)
        return (flags & valid).any(dim=1)

    def stops(self, x: torch.Tensor, valid: torch.Tensor, stop_on_fault: bool) -> torch.Tensor:
        stopped = self.halted(x, valid)
        return stopped | self.faulted(x, valid) if stop_on_fault else stopped


def softmax_with_sink(scores: torch.Tensor, sink: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis of (B, H, N, N) with one more logit per head, `sink`,
    whose value is zero (as the Flax model's `softmax_with_sink`); overwrites `scores`."""
    if sink is None:
        top = scores.amax(dim=-1, keepdim=True)
        e = _exp_shifted(scores, top)
        return e.div_(e.sum(dim=-1, keepdim=True))
    sink = sink[None, :, None, None]
    top = torch.maximum(scores.amax(dim=-1, keepdim=True), sink)
    e = _exp_shifted(scores, top)
    return e.div_(e.sum(dim=-1, keepdim=True) + torch.exp(sink - top))


def _exp_shifted(x: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """exp(x - top), in place. Below exp(-80) (1.8e-35) it is 0: a masked score (-1e9) gives
    exactly 0, as in float32 with denormals flushed, and CPU exp is many times slower on
    such inputs than on ordinary ones."""
    x = x.sub_(top)
    tiny = x < EXP_FLOOR
    return x.clamp_(min=EXP_FLOOR).exp_().masked_fill_(tiny, 0.0)


def read_manifest(path: Path, metadata: dict) -> dict:
    """The ALTA manifest of a model file's header metadata, checked for what this file
    reads."""
    if MANIFEST_KEY not in metadata:
        raise ValueError(f"{path}: no ALTA manifest in its metadata (not written by ALTA?)")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not an ALTA compiled model (format "
                         f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {manifest.get('format_version')!r}; this "
                         f"file reads version {FORMAT_VERSION}")
    if not isinstance(manifest.get("config"), dict):
        raise ValueError(f"{path}: its manifest has no model config")
    return manifest


if __name__ == "__main__":  # python alta_pytorch.py model.safetensors 2,1,0,1 ...
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python alta_pytorch.py MODEL.safetensors IDS [IDS ...]  "
                 "(IDS: comma-separated framed token ids of one input)")
    loaded = UniversalTransformer.from_file(sys.argv[1])
    result = loaded.run([[int(t) for t in arg.split(",") if t] for arg in sys.argv[2:]])
    for b in range(len(sys.argv) - 2):
        print(f"input {b}: {int(result.layers[b])} layers, "
              f"{'halted' if result.halted[b] else 'did not halt'}"
              f"{', faulted' if result.faulted[b] else ''}")
