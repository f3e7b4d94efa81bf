"""The Universal Transformer (Flax NNX): one shared layer applied until every sequence halts.

A layer is multi-head attention then an MLP, each with a residual connection and no layer
norm. Compiled programs fill it with their weights (`from_weights`); randomly initialised, the
same class is what users train. Runs batched with padding masks, jitted, in float32, inside a
`jax.lax.while_loop` that stops when every sequence has halted or `max_layers` is reached; a
halted sequence (and every padding position) keeps its state.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from alta.config import ModelConfig

MASKED = -1e9  # a finite mask: a row with nothing allowed averages instead of making NaNs


def activation(name: str):
    if name == "clipped_relu":
        return lambda x: jnp.clip(x, 0.0, 1.0)
    if name == "relu":
        return jax.nn.relu
    if name == "gelu":
        return jax.nn.gelu
    raise ValueError(f"unknown activation {name!r}")


def softmax_with_sink(scores: jax.Array, sink: jax.Array | None) -> jax.Array:
    """Softmax over the last axis with one more logit, `sink` (broadcast over the keys),
    whose value is zero: with k keys scoring as high as the sink, each key gets 1 / (k + 1)
    (the compiled fault detector counts selected positions this way)."""
    if sink is None:
        return jax.nn.softmax(scores, axis=-1)
    sink = jnp.broadcast_to(sink, scores.shape[:-1] + (1,))
    top = jax.lax.stop_gradient(jnp.maximum(scores.max(axis=-1, keepdims=True), sink))
    e = jnp.exp(scores - top)
    return e / (e.sum(axis=-1, keepdims=True) + jnp.exp(sink - top))


def _softmax_parts(scores: jax.Array, sink: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """`softmax_with_sink` and the log of the keys' total, log sum_j exp(score_j), from one
    pass of exponentials."""
    top = scores.max(axis=-1, keepdims=True)
    if sink is not None:
        top = jnp.maximum(top, jnp.broadcast_to(sink, top.shape))
    top = jax.lax.stop_gradient(top)
    e = jnp.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    denominator = total if sink is None else total + jnp.exp(sink - top)
    return e / denominator, top + jnp.log(total)


def _check_weights(shapes: dict, weights: dict) -> None:
    missing = sorted(set(shapes) - set(weights))
    unexpected = sorted(set(weights) - set(shapes))
    if missing or unexpected:
        raise ValueError(f"weights do not fit the model: missing {missing}, "
                         f"unexpected {unexpected}")
    for name, shape in shapes.items():
        if tuple(np.shape(weights[name])) != shape:
            raise ValueError(f"weight {name} has shape {np.shape(weights[name])}, the model "
                             f"expects {shape}")


class HeadBlocks(NamedTuple):
    """Where a compiled head reads and writes: block starts and sizes in the residual."""

    query: int | None  # None: no key/query (every allowed position scores the same)
    key: int | None
    key_size: int
    value: int
    value_size: int
    output: int
    scores_of: int | None = None  # an earlier head with the same scores and mask, if any
    weights_of: int | None = None  # an earlier head with the same scores, mask and sink
    counts: bool = False  # its value is the constant 1: it outputs the keys' attention share


def shared_scores(weights: dict[str, np.ndarray], blocks: tuple[HeadBlocks, ...],
                  offsets: tuple) -> tuple[HeadBlocks, ...]:
    """Marks each head whose scores and mask equal an earlier head's (a compiled head and
    its selection head), so that the structured path computes them once."""
    out, seen = [], {}
    for h, b in enumerate(blocks):
        diagonals = ()
        if b.query is not None:
            diagonals = tuple(np.diagonal(weights[name][h, start:start + b.key_size,
                                                       :b.key_size]).tobytes()
                              for name, start in (("attention.query", b.query),
                                                  ("attention.key", b.key)))
        key = (b.query, b.key, b.key_size, diagonals, offsets[h] if offsets else None)
        earlier = seen.setdefault(key, h)
        sink = weights["attention.sink"][h] if "attention.sink" in weights else None
        same = seen.setdefault(key + (sink,), h)
        out.append(b._replace(scores_of=earlier if earlier != h else None,
                              weights_of=same if same != h else None))
    return tuple(out)


def _diagonal(param: nnx.Param, head: int, start: int, size: int) -> jax.Array:
    return jnp.diagonal(param[...][head, start:start + size, :size])


def head_blocks_of(weights: dict[str, np.ndarray], blocks: tuple[HeadBlocks, ...]) -> bool:
    """Whether the attention weights are exactly diagonal on those blocks (else the
    structured path would compute something else, and the dense one must be used)."""
    for h, b in enumerate(blocks):
        for name, start, size in (("attention.query", b.query, b.key_size),
                                  ("attention.key", b.key, b.key_size),
                                  ("attention.value", b.value, b.value_size)):
            w = weights[name][h]
            if start is None:
                if np.any(w):
                    return False
                continue
            expected = np.zeros_like(w)
            idx = np.arange(size)
            expected[start + idx, idx] = w[start + idx, idx]
            if not np.array_equal(w, expected):
                return False
        o = weights["attention.output"][h]
        expected = np.zeros_like(o)
        idx = np.arange(b.value_size)
        expected[idx, b.output + idx] = o[idx, b.output + idx]
        if not np.array_equal(o, expected):
            return False
    return True


class Structure(nnx.Variable):
    """Index arrays of the structured MLP path (fixed by the compiler, never trained)."""


class BlockSparseLayer(nnx.Module):
    """`x @ W` for a sparse `W` as a few dense blocks: block g multiplies the inputs
    `rows[g]` by `W[rows[g], cols[g]]`; `order` puts the blocks' outputs back in column order.

    A compiled rule reads a handful of dimensions and rules about one variable read nearly
    the same ones, so columns with similar inputs share a block: far fewer multiply-adds
    than the dense product, in a few matrix products rather than a gather per nonzero."""

    def __init__(self, blocks: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.rows = nnx.List([Structure(jnp.asarray(r, jnp.int32)) for r, _ in blocks])
        self.cols = nnx.List([Structure(jnp.asarray(c, jnp.int32)) for _, c in blocks])
        order = np.argsort(np.concatenate([c for _, c in blocks]))
        self.order = Structure(jnp.asarray(order, jnp.int32))

    def __call__(self, x: jax.Array, weight: jax.Array) -> jax.Array:
        parts = [x[..., r[...]] @ weight[r[...][:, None], c[...][None, :]]
                 for r, c in zip(self.rows, self.cols)]
        return jnp.concatenate(parts, axis=-1)[..., self.order[...]]


def column_blocks(nonzero: np.ndarray, overhead: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups the columns of a sparsity pattern into blocks (input rows, columns), greedily
    in the order of their supports: a column joins the current block while that costs fewer
    multiply-adds than starting a new one (`overhead`: what one more product costs, in
    multiply-adds per position)."""
    supports = [tuple(np.flatnonzero(nonzero[:, c])) for c in range(nonzero.shape[1])]
    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    rows: set = set()
    cols: list[int] = []
    for c in sorted(range(len(supports)), key=lambda c: supports[c]):
        support = set(supports[c])
        union = len(rows | support)
        if cols and union * (len(cols) + 1) - len(rows) * len(cols) > len(support) + overhead:
            blocks.append((np.array(sorted(rows), np.int64), np.array(cols, np.int64)))
            rows, cols = set(), []
        rows |= support
        cols.append(c)
    if cols:
        blocks.append((np.array(sorted(rows), np.int64), np.array(cols, np.int64)))
    return blocks


def sparse_mlp_of(weights: dict[str, np.ndarray], layers: int, density: float = 0.1,
                  min_size: int = 50_000, overhead: int = 128
                  ) -> list[BlockSparseLayer | None]:
    """The block-sparse form of each MLP layer that is large and sparse enough to gain from
    it (None: that layer stays dense; small matrices multiply faster than they split)."""
    out: list[BlockSparseLayer | None] = []
    for i in range(layers):
        w = weights[f"mlp.{i}.weight"]
        nonzero = w != 0
        if w.size < min_size or nonzero.mean() > density:
            out.append(None)
        else:
            out.append(BlockSparseLayer(column_blocks(nonzero, overhead)))
    return out


def halting_units_of(weights: dict[str, np.ndarray], layers: int) -> list[np.ndarray]:
    """The residual dimensions and, per halting layer, the units that reach its output (the
    others have zero weight into everything after them, so dropping them is exact): the
    compiled halting readout keeps a copy of the whole MLP expansion, of which a condition
    like `done == 1` reads one unit."""
    needed = [np.arange(weights[f"halting.{layers - 1}.weight"].shape[1])]
    for i in reversed(range(layers)):
        w = weights[f"halting.{i}.weight"][:, needed[0]]
        needed.insert(0, np.flatnonzero(np.any(w != 0, axis=1)))
    return needed


class Dense(nnx.Module):
    """x @ weight + bias (weight stored (in, out), as in compiled checkpoints)."""

    def __init__(self, weight: nnx.Param, bias: nnx.Param) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.weight[...] + self.bias[...]


class UniversalTransformer(nnx.Module):
    """Parameters are named as in compiled checkpoints: `embed.token`, `attention.query`,
    `mlp.0.weight`, ..., `halting.2.bias`."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs | None = None,
                 weights: dict[str, np.ndarray] | None = None,
                 head_blocks: tuple[HeadBlocks, ...] | None = None,
                 sparse_mlp: list[BlockSparseLayer | None] | None = None,
                 halting_units: list[np.ndarray] | None = None) -> None:
        """Randomly initialised from `rngs`, or filled with given `weights` (compiled ones).

        `head_blocks` (compiled models only) switches attention to its structured path: each
        head's Q, K, V and O are diagonal on one block of the residual, so the head reads and
        writes those slices instead of multiplying the whole residual through dense matrices.
        `sparse_mlp` (compiled models only) runs sparse MLP layers as a few dense blocks, and
        `halting_units` computes only the halting units that reach its output.
        The numbers are the same to float32 rounding: the dense products only add exact zeros
        (XLA may sum in another order)."""
        self.config = config
        self.head_blocks = head_blocks
        self.sparse_mlp = nnx.List(sparse_mlp) if sparse_mlp is not None else None
        self.halting_units = nnx.List([Structure(jnp.asarray(u, jnp.int32))
                                       for u in halting_units]) \
            if halting_units is not None else None
        shapes = config.parameter_shapes()
        if weights is not None:
            _check_weights(shapes, weights)

            def param(name):
                return nnx.Param(jnp.asarray(weights[name], dtype=jnp.float32))
        else:
            rngs = rngs or nnx.Rngs(0)
            normal = nnx.initializers.normal(stddev=0.02)

            def param(name):
                if name.endswith(".bias"):
                    return nnx.Param(jnp.zeros(shapes[name], jnp.float32))
                if name.startswith(("mlp.", "halting.")):  # fan-in scaled, like nnx.Linear
                    init = nnx.initializers.lecun_normal()
                    return nnx.Param(init(rngs.params(), shapes[name], jnp.float32))
                return nnx.Param(normal(rngs.params(), shapes[name], jnp.float32))

        self.token_embedding = param("embed.token")
        self.position_embedding = param("embed.position") if config.max_positions else None
        self.query = param("attention.query")
        self.key = param("attention.key")
        self.value = param("attention.value")
        self.output = param("attention.output")
        self.sink = param("attention.sink") if config.attention_sink else None
        self.mlp = nnx.List([Dense(param(f"mlp.{i}.weight"), param(f"mlp.{i}.bias"))
                             for i in range(len(config.mlp_widths) + 1)])
        self.halting = nnx.List([Dense(param(f"halting.{i}.weight"), param(f"halting.{i}.bias"))
                                 for i in range(len(config.halting_widths))]) \
            if config.halting_widths else None

    # -- the pieces of one layer ----------------------------------------------------------------

    def embed(self, tokens: jax.Array) -> jax.Array:
        x = self.token_embedding[...][tokens]
        if self.position_embedding is not None:
            x = x + self.position_embedding[...][None, : tokens.shape[1]]
        return x

    def attention_mask(self, valid: jax.Array) -> jax.Array:
        """(batch, heads, query, key): padding never selected; relative offsets as given."""
        return jnp.stack(self.head_masks(valid), axis=1)

    def head_masks(self, valid: jax.Array) -> list[jax.Array]:
        """Per head, (batch, query, key): the same array for heads with the same offsets."""
        n = valid.shape[1]
        relative = np.arange(n)[None, :] - np.arange(n)[:, None]
        masks = {}
        for offsets in self.config.head_offsets or (None,) * self.config.num_heads:
            if offsets not in masks:
                allowed = np.ones((n, n), bool) if offsets is None else np.isin(relative,
                                                                                  offsets)
                masks[offsets] = valid[:, None, :] & jnp.asarray(allowed)[None]
        return [masks[offsets]
                for offsets in self.config.head_offsets or (None,) * self.config.num_heads]

    def attend(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The attention output added to the residual, and the attention weights."""
        if self.config.num_heads == 0:
            return jnp.zeros_like(x), jnp.zeros(x.shape[:1] + (0,) + x.shape[1:2] * 2, x.dtype)
        if self.head_blocks is not None:
            return self._attend_blocks(x, valid)
        q = jnp.einsum("bnd,hdk->bhnk", x, self.query[...])
        k = jnp.einsum("bnd,hdk->bhnk", x, self.key[...])
        v = jnp.einsum("bnd,hdv->bhnv", x, self.value[...])
        scores = jnp.einsum("bhik,bhjk->bhij", q, k) * self.config.attention_scale
        scores = jnp.where(self.attention_mask(valid), scores, MASKED)
        sink = None if self.sink is None else self.sink[...][None, :, None, None]
        weights = softmax_with_sink(scores, sink)
        heads = jnp.einsum("bhij,bhjv->bhiv", weights, v)
        return jnp.einsum("bhiv,hvd->bid", heads, self.output[...]), weights

    def _attend_blocks(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        masks = self.head_masks(valid)
        outputs, dims = [], []  # written at once: one scatter, not one update per head
        all_weights = []
        scores_by_head, softmax_by_head = {}, {}
        for h, blocks in enumerate(self.head_blocks):
            if blocks.scores_of is not None:
                scores = scores_by_head[blocks.scores_of]
            elif blocks.query is not None:
                n = blocks.key_size
                q = x[..., blocks.query:blocks.query + n] * _diagonal(self.query, h,
                                                                        blocks.query, n)
                k = x[..., blocks.key:blocks.key + n] * _diagonal(self.key, h, blocks.key, n)
                scores = jnp.einsum("bik,bjk->bij", q, k) * self.config.attention_scale
                scores = jnp.where(masks[h], scores, MASKED)
            else:
                scores = jnp.where(masks[h], 0.0, MASKED).astype(x.dtype)
            scores_by_head[h] = scores
            sink = None if self.sink is None else self.sink[...][h]
            m = blocks.value_size
            o_scale = jnp.diagonal(self.output[...][h, :m, blocks.output:blocks.output + m])
            v_scale = _diagonal(self.value, h, blocks.value, m)
            if blocks.counts and blocks.scores_of in softmax_by_head:
                # The keys' share of the attention (1 - the sink's) from the twin head's
                # log-sum-exp: O(N) instead of another N x N softmax.
                log_total = softmax_by_head[blocks.scores_of][1]
                share = jax.nn.sigmoid(log_total - sink)
                outputs.append(share * v_scale * o_scale)
                dims.append(np.arange(blocks.output, blocks.output + 1))
                all_weights.append(softmax_with_sink(scores, sink))  # unused in a run: dropped
                continue
            if blocks.weights_of is not None:
                weights = softmax_by_head[blocks.weights_of][0]
            else:
                softmax_by_head[h] = _softmax_parts(scores, sink)
                weights = softmax_by_head[h][0]
            all_weights.append(weights)
            v = x[..., blocks.value:blocks.value + m] * v_scale
            o = jnp.einsum("bij,bjv->biv", weights, v)
            outputs.append(o * o_scale)
            dims.append(np.arange(blocks.output, blocks.output + m))
        out = jnp.zeros_like(x).at[..., np.concatenate(dims)].add(
            jnp.concatenate(outputs, axis=-1))
        return out, jnp.stack(all_weights, axis=1)

    def feed_forward(self, x: jax.Array) -> jax.Array:
        act = activation(self.config.activation)
        last = len(self.mlp) - 1
        for i, layer in enumerate(self.mlp):
            sparse = self.sparse_mlp[i] if self.sparse_mlp is not None else None
            x = layer(x) if sparse is None else sparse(x, layer.weight[...]) + layer.bias[...]
            if i < last:
                x = act(x)
        return x

    def layer(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One application of the shared layer: (state after attention, after the MLP)."""
        attended = x + self.attend(x, valid)[0]
        return attended, attended + self.feed_forward(attended)

    def halted(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """Per sequence: does the halting condition hold at every non-padding position?"""
        if self.halting is None:
            return jnp.zeros(x.shape[0], bool)
        if self.halting_units is None:
            h = x
            for layer in self.halting:
                h = jnp.clip(layer(h), 0.0, 1.0)
        else:
            units = [u[...] for u in self.halting_units]
            h = x[..., units[0]]
            for layer, inputs, outputs in zip(self.halting, units, units[1:]):
                weight = layer.weight[...][inputs[:, None], outputs[None, :]]
                h = jnp.clip(h @ weight + layer.bias[...][outputs], 0.0, 1.0)
        holds = h.sum(axis=-1) > 0.5
        return jnp.all(holds | ~valid, axis=1)

    def faulted(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """Per sequence: has the MLP set a fault flag (read an undefined head) anywhere?"""
        if not self.config.fault_dims:
            return jnp.zeros(x.shape[0], bool)
        dims = np.asarray(self.config.fault_dims)
        contiguous = np.array_equal(dims, np.arange(dims[0], dims[0] + len(dims)))
        flags = (x[..., dims[0]:dims[0] + len(dims)] if contiguous else x[..., dims]) > 0.5
        return jnp.any(flags.any(axis=-1) & valid, axis=1)

    def stops(self, x: jax.Array, valid: jax.Array, stop_on_fault=True) -> jax.Array:
        """Per sequence: halted, or (unless faults are allowed) faulted."""
        return self.halted(x, valid) | (self.faulted(x, valid) & stop_on_fault)

    # -- the whole run -------------------------------------------------------------------------

    def __call__(self, tokens: jax.Array, lengths: jax.Array,
                 max_layers: int | jax.Array | None = None, stop_on_fault=True):
        """Run to halting: (final residual (B, N, D), layers run (B,), stopped (B,)).

        A sequence stops when it halts or, unless `stop_on_fault` is false, when the MLP
        flags an undefined read (the flags stay in the residual for the caller to read)."""
        limit = self.config.max_layers if max_layers is None else max_layers
        valid = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
        x = self.embed(tokens)
        running = ~self.stops(x, valid, stop_on_fault)
        layers = jnp.zeros(tokens.shape[0], jnp.int32)

        def keep_going(carry):
            _, running, layer, _ = carry
            return jnp.any(running) & (layer < limit)

        def step(carry):
            x, running, layer, layers = carry
            _, new = self.layer(x, valid)
            update = running[:, None, None] & valid[:, :, None]
            x = jnp.where(update, new, x)
            layers = layers + running.astype(jnp.int32)
            running = running & ~self.stops(x, valid, stop_on_fault)
            return x, running, layer + 1, layers

        x, running, _, layers = jax.lax.while_loop(keep_going, step, (x, running, 0, layers))
        return x, layers, ~running

    # -- weights ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, nnx.Param]:
        named = {"embed.token": self.token_embedding, "attention.query": self.query,
                 "attention.key": self.key, "attention.value": self.value,
                 "attention.output": self.output}
        if self.sink is not None:
            named["attention.sink"] = self.sink
        if self.position_embedding is not None:
            named["embed.position"] = self.position_embedding
        for prefix, layers in (("mlp", self.mlp), ("halting", self.halting or [])):
            for i, layer in enumerate(layers):
                named[f"{prefix}.{i}.weight"] = layer.weight
                named[f"{prefix}.{i}.bias"] = layer.bias
        return named

    def export_weights(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(param[...]) for name, param in self.parameters().items()}

    @classmethod
    def from_weights(cls, config: ModelConfig, weights: dict[str, np.ndarray],
                     head_blocks: tuple[HeadBlocks, ...] | None = None,
                     sparse_mlp: list[BlockSparseLayer | None] | None = None,
                     halting_units: list[np.ndarray] | None = None):
        return cls(config, weights=weights, head_blocks=head_blocks, sparse_mlp=sparse_mlp,
                   halting_units=halting_units)


@nnx.jit
def run_model(model: UniversalTransformer, tokens, lengths, max_layers, stop_on_fault=True):
    return model(tokens, lengths, max_layers, stop_on_fault)


@nnx.jit
def run_layer(model: UniversalTransformer, x, valid):
    return model.layer(x, valid)


@nnx.jit
def embed_and_check(model: UniversalTransformer, tokens, valid, stop_on_fault=True):
    x = model.embed(tokens)
    return x, model.stops(x, valid, stop_on_fault)


@nnx.jit
def check_halted(model: UniversalTransformer, x, valid, stop_on_fault=True):
    return model.stops(x, valid, stop_on_fault)
