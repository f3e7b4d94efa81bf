"""The Universal Transformer (Flax NNX): one shared layer applied until every sequence halts.

A layer is multi-head attention then an MLP, each with a residual connection and no layer
norm. Compiled programs fill it with their parameters (alta/parameters.py) and an execution
plan (compiler/structure.py) that runs only the weights' nonzero structure; randomly
initialised, the same class is what users train. Runs batched with padding masks, jitted, in
float32, inside a `jax.lax.while_loop` that stops when every sequence has halted or
`max_layers` is reached; `UniversalTransformer.step` is the one masked layer every loop uses
(a halted sequence, and every padding position, keeps its state). Only NNX modules live here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from alta.compiler.structure import ExecutionPlan, HeadBlocks, SparseLayer
from alta.config import ModelConfig
from alta.devices import per_device
from alta.parameters import (
    AttentionParameters,
    DenseParameters,
    EmbeddingParameters,
    Parameters,
    parameter_shapes,
    parameters_from_flat,
)

CHUNK_POSITIONS = 512  # positions per chunk of sequences on the structured paths (see _chunking)
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


class OneKey(NamedTuple):
    """The scores of a head with no score terms that sees one relative offset: 0 at the key
    `offset` positions away, if that position exists and is not padding; MASKED elsewhere."""

    offset: int
    valid: jax.Array  # (B, N) the keys that are not padding
    mask: jax.Array  # (B, N, N) the scores' mask (for the dense weights only)

    def has_key(self) -> jax.Array:
        """(B, N): does the query at i have its key, at i + offset?"""
        return shift_keys(self.valid, self.offset, False)


class OneKeyWeights(NamedTuple):
    """`softmax_with_sink` of OneKey scores, per query: the weight of its one key where it
    has one; elsewhere the weight each key gets, as all its scores are MASKED (uniform
    without a sink, none beside a sink above MASKED)."""

    offset: int
    has_key: jax.Array  # (B, N)
    weight: jax.Array  # (B, N)
    mask: jax.Array  # (B, N, N)

    def attend(self, v: jax.Array) -> jax.Array:
        """The weighted values (m, B, N) of values v (m, B, N): O(N), not O(N^2)."""
        return self.weight * jnp.where(self.has_key, shift_keys(v, self.offset, 0.0),
                                       v.sum(axis=-1, keepdims=True))

    def dense(self) -> jax.Array:
        """The same weights as a (B, N, N) matrix."""
        return jnp.where(self.has_key[..., None] & ~self.mask, 0.0, self.weight[..., None])


def shift_keys(a: jax.Array, offset: int, fill) -> jax.Array:
    """a[..., i + offset] at i along the last axis (positions), `fill` past either end."""
    n = a.shape[-1]
    if abs(offset) >= n:
        return jnp.full_like(a, fill)
    pad = jnp.full(a.shape[:-1] + (abs(offset),), fill, a.dtype)
    if offset >= 0:
        return jnp.concatenate([a[..., offset:], pad], axis=-1)
    return jnp.concatenate([pad, a[..., :n + offset]], axis=-1)


def _one_key_parts(scores: OneKey, sink: jax.Array | None
                   ) -> tuple[OneKeyWeights, jax.Array]:
    """`_softmax_parts` of OneKey scores, computed per query from the same formulas
    (the scores a query sees are all MASKED but one 0, or all MASKED), without the N x N
    matrix: exp(MASKED - top) is exactly 0 next to a top of 0."""
    has = scores.has_key()
    n = scores.valid.shape[-1]
    score = jnp.where(has, 0.0, MASKED)
    top = score if sink is None else jnp.maximum(score, sink)
    top = jax.lax.stop_gradient(top)
    e = jnp.exp(score - top)  # the one key's (or, with none, each key's) exponential
    total = jnp.where(has, e, n * e)
    denominator = total if sink is None else total + jnp.exp(sink - top)
    weights = OneKeyWeights(scores.offset, has, e / denominator, scores.mask)
    return weights, (top + jnp.log(total))[..., None]


def _dense_weights(weights) -> jax.Array:
    return weights.dense() if isinstance(weights, OneKeyWeights) else weights


def _softmax_parts(scores, sink: jax.Array | None) -> tuple:
    """`softmax_with_sink` and the log of the keys' total, log sum_j exp(score_j), from one
    pass of exponentials (OneKey scores: per query, see `_one_key_parts`)."""
    if isinstance(scores, OneKey):
        return _one_key_parts(scores, sink)
    top = scores.max(axis=-1, keepdims=True)
    if sink is not None:
        top = jnp.maximum(top, jnp.broadcast_to(sink, top.shape))
    top = jax.lax.stop_gradient(top)
    e = jnp.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    denominator = total if sink is None else total + jnp.exp(sink - top)
    return e / denominator, top + jnp.log(total)


def _diagonal(param: nnx.Param, head: int, start: int, size: int, column: int = 0) -> jax.Array:
    return jnp.diagonal(param[...][head, start:start + size, column:column + size])


def _param(value) -> nnx.Param:
    return nnx.Param(jnp.asarray(value, dtype=jnp.float32))


class Embedding(nnx.Module):
    def __init__(self, p: EmbeddingParameters) -> None:
        self.token = _param(p.token)
        self.position = _param(p.position) if p.position is not None else None
        self.token_at_position = (_param(p.token_at_position)
                                  if p.token_at_position is not None else None)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.token[...][tokens]
        if self.position is not None:
            x = x + self.position[...][None, : tokens.shape[1]]
        if self.token_at_position is not None:
            x = x + self.token_at_position[...][jnp.arange(tokens.shape[1])[None, :], tokens]
        return x


class Attention(nnx.Module):
    """Multi-head attention whose heads each see the positions at their relative `offsets`
    (None: all), and a per-head sink logit if the weights have one.

    With `blocks` (an execution plan's, compiler/structure.py) each head reads and writes its
    own blocks of the residual as slices, instead of multiplying the whole residual through
    dense matrices, and heads that share scores or softmax with an earlier head reuse them."""

    def __init__(self, p: AttentionParameters, offsets: tuple, scale: float,
                 blocks: tuple[HeadBlocks, ...] | None = None) -> None:
        self.query, self.key = _param(p.query), _param(p.key)
        self.value, self.output = _param(p.value), _param(p.output)
        self.sink = _param(p.sink) if p.sink is not None else None
        self.offsets = tuple(offsets) or (None,) * p.query.shape[0]
        self.scale = scale
        self.blocks = blocks

    def head_masks(self, valid: jax.Array) -> list[jax.Array]:
        """Per head, (batch, query, key): padding never selected; relative offsets as given.
        The same array for heads with the same offsets."""
        n = valid.shape[1]
        relative = np.arange(n)[None, :] - np.arange(n)[:, None]
        masks = {}
        for offsets in self.offsets:
            if offsets not in masks:
                allowed = np.ones((n, n), bool) if offsets is None else np.isin(relative,
                                                                                  offsets)
                masks[offsets] = valid[:, None, :] & jnp.asarray(allowed)[None]
        return [masks[offsets] for offsets in self.offsets]

    def __call__(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The attention output added to the residual (B, N, D), and the attention weights."""
        if self.query.shape[0] == 0:
            return jnp.zeros_like(x), jnp.zeros(x.shape[:1] + (0,) + x.shape[1:2] * 2, x.dtype)
        if self.blocks is not None:
            out, weights = self.features_first(features_first(x), valid)
            return features_last(out), weights
        q = jnp.einsum("bnd,hdk->bhnk", x, self.query[...])
        k = jnp.einsum("bnd,hdk->bhnk", x, self.key[...])
        v = jnp.einsum("bnd,hdv->bhnv", x, self.value[...])
        scores = jnp.einsum("bhik,bhjk->bhij", q, k) * self.scale
        scores = jnp.where(jnp.stack(self.head_masks(valid), axis=1), scores, MASKED)
        sink = None if self.sink is None else self.sink[...][None, :, None, None]
        weights = softmax_with_sink(scores, sink)
        heads = jnp.einsum("bhij,bhjv->bhiv", weights, v)
        return jnp.einsum("bhiv,hvd->bid", heads, self.output[...]), weights

    def features_first(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The structured path on a residual laid out (D, B, N): each head's blocks are rows
        (contiguous), and its output rows are placed by one concatenation, not a scatter."""
        if self.query.shape[0] == 0:
            return jnp.zeros_like(x), jnp.zeros(x.shape[1:2] + (0,) + x.shape[2:3] * 2, x.dtype)
        masks = self.head_masks(valid)
        outputs, starts = [], []
        all_weights = []
        scores_by_head, softmax_by_head = {}, {}
        for h, blocks in enumerate(self.blocks):
            sink = None if self.sink is None else self.sink[...][h]
            if blocks.scores_of is not None:
                scores = scores_by_head[blocks.scores_of]
            elif not blocks.terms and self._one_offset(h):
                scores = OneKey(self.offsets[h][0], valid, masks[h])
            elif blocks.terms:
                q, k = self._terms(x, h, blocks.terms)
                scores = jnp.einsum("kbi,kbj->bij", q, k) * self.scale
                scores = jnp.where(masks[h], scores, MASKED)
            else:
                scores = jnp.where(masks[h], 0.0, MASKED).astype(x.dtype)
            scores_by_head[h] = scores
            m = blocks.value_size
            if blocks.averages_numbers:  # one output row: the value dimensions' numbers
                scale = (self.value[...][h, blocks.value:blocks.value + m, 0]
                         * self.output[...][h, 0, blocks.output])[:, None, None]
            else:
                o_scale = jnp.diagonal(self.output[...][h, :m, blocks.output:blocks.output + m])
                scale = (_diagonal(self.value, h, blocks.value, m) * o_scale)[:, None, None]
            starts.append(blocks.output)
            if blocks.counts and blocks.scores_of in softmax_by_head:
                # The keys' share of the attention (1 - the sink's) from the twin head's
                # log-sum-exp: O(N) instead of another N x N softmax.
                log_total = softmax_by_head[blocks.scores_of][1]
                outputs.append(jax.nn.sigmoid(log_total - sink)[None, ..., 0] * scale)
                all_weights.append(_dense_weights(_softmax_parts(scores, sink)[0]))
                continue  # (unused in a run: dropped)
            if blocks.weights_of is not None:
                weights = softmax_by_head[blocks.weights_of][0]
            else:
                softmax_by_head[h] = _softmax_parts(scores, sink)
                weights = softmax_by_head[h][0]
            all_weights.append(_dense_weights(weights))
            v = x[blocks.value:blocks.value + m] * scale
            if blocks.averages_numbers:
                v = v.sum(axis=0, keepdims=True)
            outputs.append(weights.attend(v) if isinstance(weights, OneKeyWeights)
                           else jnp.einsum("bij,mbj->mbi", weights, v))
        return _rows(x, starts, outputs), jnp.stack(all_weights, axis=1)

    def _one_offset(self, h: int) -> bool:
        """Whether head h (with no score terms) sees one relative offset: at most one key
        per query, so its softmax is a shift of the keys (OneKey), not an N x N product."""
        offsets = self.offsets[h]
        return offsets is not None and len(offsets) == 1

    def _terms(self, x: jax.Array, h: int, terms) -> tuple[jax.Array, jax.Array]:
        """Head h's queries and keys (columns, B, N) from its terms' blocks of x (D, B, N):
        K scales a key block; Q scales a query block too (`key == query`) or maps it through
        its small matrix (a comparison, a key-only test)."""
        qs, ks = [], []
        for t in terms:
            n = t.key_size
            ks.append(x[t.key:t.key + n] * _diagonal(self.key, h, t.key, n,
                                                     t.column)[:, None, None])
            if t.diagonal:
                qs.append(x[t.query:t.query + n] * _diagonal(self.query, h, t.query, n,
                                                             t.column)[:, None, None])
            else:
                block = self.query[...][h, t.query:t.query + t.query_size,
                                        t.column:t.column + n]
                qs.append(jnp.einsum("mbi,mk->kbi", x[t.query:t.query + t.query_size], block))
        if len(terms) == 1:
            return qs[0], ks[0]
        return jnp.concatenate(qs), jnp.concatenate(ks)

    def multiply_adds(self, n: int) -> int:
        """What `features_first` multiplies for one sequence of n positions: each score
        computed once (n x n x key size, and the query and key scalings), each softmax's
        weighted values (n x n x value size, and the scaling; n x value size for a head that
        sees one offset), a counting head's n."""
        total, softmaxes = 0, set()
        for h, blocks in enumerate(self.blocks):
            keys = 1 if not blocks.terms and self._one_offset(h) else n  # per query
            if blocks.scores_of is None:
                for t in blocks.terms:
                    q = t.key_size if t.diagonal else t.query_size * t.key_size
                    total += n * n * t.key_size + n * (q + t.key_size)
            if blocks.counts and blocks.scores_of in softmaxes:
                total += n
                continue
            if blocks.weights_of is None:
                softmaxes.add(h)
            width = 1 if blocks.averages_numbers else blocks.value_size
            total += n * keys * width + n * blocks.value_size
        return total


def _rows(x: jax.Array, starts: list[int], parts: list[jax.Array]) -> jax.Array:
    """Zeros shaped as `x` but for the rows from each start, which hold its part: one
    concatenation when the parts do not overlap (compiled heads write their own blocks)."""
    order = sorted(range(len(parts)), key=starts.__getitem__)
    pieces, row = [], 0
    for i in order:
        if starts[i] < row:  # overlapping outputs: add them up instead
            out = jnp.zeros_like(x)
            for start, part in zip(starts, parts):
                out = out.at[start:start + part.shape[0]].add(part)
            return out
        if starts[i] > row:
            pieces.append(jnp.zeros((starts[i] - row,) + x.shape[1:], x.dtype))
        pieces.append(parts[i])
        row = starts[i] + parts[i].shape[0]
    if row < x.shape[0]:
        pieces.append(jnp.zeros((x.shape[0] - row,) + x.shape[1:], x.dtype))
    return jnp.concatenate(pieces, axis=0)


def features_first(x: jax.Array) -> jax.Array:
    """(B, N, D) -> (D, B, N): the structured paths' layout, in which a block of the residual
    is contiguous rows and the MLP's gathers copy whole rows."""
    return jnp.moveaxis(x, -1, 0)


def features_last(x: jax.Array) -> jax.Array:
    return jnp.moveaxis(x, 0, -1)


class BlockSparse(nnx.Module):
    """`W^T x` for a sparse `W` and inputs laid out features-first, (in, positions), as its
    execution plan says (compiler/structure.py): columns that read one or two inputs as
    scaled row gathers, the others as a few dense blocks, all indexed by constants (XLA sees
    fixed gathers of whole rows, not index arrays)."""

    def __init__(self, plan: SparseLayer) -> None:
        self.plan = plan

    def blocks_of(self, weight: jax.Array, bias: jax.Array) -> SparseWeights:
        """The nonzero pieces of the weights the plan reads, gathered from the whole
        matrices: once per run, not once per layer and chunk (XLA does not hoist them out of
        the loops)."""
        plan = self.plan
        return SparseWeights(
            tuple(weight[g.rows, g.columns[:, None]][:, :, None] for g in plan.gathers),
            tuple(weight[b.rows[:, None], b.columns[None, :]].T for b in plan.blocks),
            bias[plan.columns][:, None])

    def __call__(self, x: jax.Array, w: SparseWeights) -> jax.Array:
        plan, parts = self.plan, []
        for g, gathered in zip(plan.gathers, w.gathers):
            n, k = g.inputs.shape
            part = (jnp.zeros((n,) + x.shape[1:], x.dtype) if k == 0
                    else x[g.inputs[:, 0]] * gathered[:, 0])
            for j in range(1, k):
                part = part + x[g.inputs[:, j]] * gathered[:, j]
            parts.append(part)
        parts += [block @ x[b.inputs] for b, block in zip(plan.blocks, w.blocks)]
        y = jnp.concatenate(parts, axis=0) + w.bias
        return y if plan.order is None else y[plan.order]


class SparseWeights(NamedTuple):
    """A sparse layer's weights as its plan reads them: per gather (n, k, 1), per block
    (columns, rows), and the bias in the plan's column order (columns, 1)."""

    gathers: tuple[jax.Array, ...]
    blocks: tuple[jax.Array, ...]
    bias: jax.Array


class Dense(nnx.Module):
    """x @ weight + bias (weight stored (in, out), as in checkpoints); with `blocks`, the
    product runs sparse as that plan says."""

    def __init__(self, p: DenseParameters, blocks: SparseLayer | None = None) -> None:
        self.weight, self.bias = _param(p.weight), _param(p.bias)
        self.blocks = BlockSparse(blocks) if blocks is not None else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.blocks is None:
            return x @ self.weight[...] + self.bias[...]
        flat = x.reshape(-1, x.shape[-1]).T
        return self.features_first(flat).T.reshape(x.shape[:-1] + (-1,))

    def sparse_weights(self) -> SparseWeights | None:
        """What the sparse product reads (None: this layer runs dense)."""
        return None if self.blocks is None else self.blocks.blocks_of(self.weight[...],
                                                                        self.bias[...])

    def features_first(self, x: jax.Array, sparse: SparseWeights | None = None) -> jax.Array:
        """The layer on inputs laid out (in, positions); outputs (out, positions), in the
        plan's order of units (column order unless the next sparse layer reads them).
        `sparse`: `sparse_weights()`, if the caller has it already."""
        if self.blocks is None:
            return self.weight[...].T @ x + self.bias[...][:, None]
        return self.blocks(x, self.sparse_weights() if sparse is None else sparse)


def export_weights(module: nnx.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's parameters as arrays named by their attribute paths, after `prefix`."""
    return {prefix + ".".join(map(str, path)): np.asarray(param[...])
            for path, param in nnx.to_flat_state(nnx.state(module, nnx.Param))}


class FeedForward(nnx.List):
    """Dense layers with `activation` between them: the Universal Transformer's MLP, and the
    MLP that `alta train` fits, so a learned one replaces the compiled one by assignment
    (`model.mlp = learned`)."""

    def __init__(self, layers: Sequence[Dense], activation: str) -> None:
        super().__init__(layers)
        self.activation = activation

    def export_weights(self) -> dict[str, np.ndarray]:
        """Named as the Universal Transformer's MLP (`mlp.0.weight`, ...), whose place a
        learned one takes."""
        return export_weights(self, "mlp.")

    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation(self.activation)
        for i, layer in enumerate(self):
            x = layer(x)
            if i < len(self) - 1:
                x = act(x)
        return x

    def sparse_weights(self) -> tuple[SparseWeights | None, ...]:
        """Per layer, what its sparse product reads (Dense.sparse_weights)."""
        return tuple(layer.sparse_weights() for layer in self)

    def features_first(self, x: jax.Array,
                       sparse: tuple[SparseWeights | None, ...] | None = None) -> jax.Array:
        """The MLP on a residual laid out (D, ...): sparse layers hand their units on in
        their plans' order (the activation is elementwise), dense ones multiply W^T x.
        `sparse`: `sparse_weights()`, gathered once for a whole run."""
        act = activation(self.activation)
        h = x.reshape(x.shape[0], -1)
        sparse = self.sparse_weights() if sparse is None else sparse
        for i, (layer, weights) in enumerate(zip(self, sparse)):
            h = layer.features_first(h, weights)
            if i < len(self) - 1:
                h = act(h)
        return h.reshape(x.shape)


def random_dense(sizes: Sequence[int], rngs: nnx.Rngs) -> tuple[DenseParameters, ...]:
    """Fan-in scaled weights (as nnx.Linear) and zero biases, for widths `sizes`."""
    init = nnx.initializers.lecun_normal()
    return tuple(DenseParameters(init(rngs.params(), (a, b), jnp.float32),
                                 jnp.zeros((b,), jnp.float32))
                 for a, b in itertools.pairwise(sizes))


def random_parameters(config: ModelConfig, rngs: nnx.Rngs) -> Parameters:
    """Embeddings and attention from N(0, 0.02^2), MLP and halting readout fan-in scaled."""
    shapes = parameter_shapes(config)
    normal = nnx.initializers.normal(stddev=0.02)

    def draw(shape):
        return None if shape is None else normal(rngs.params(), shape, jnp.float32)

    e, a = shapes.embed, shapes.attention
    embed = EmbeddingParameters(draw(e.token), draw(e.position), draw(e.token_at_position))
    attention = AttentionParameters(*(draw(s) for s in (a.query, a.key, a.value, a.output,
                                                        a.sink)))
    D = config.width
    mlp = random_dense((D, *config.mlp_widths, D), rngs)
    halting = random_dense((D, *config.halting_widths), rngs) if config.halting_widths else ()
    return Parameters(embed, attention, mlp, halting)


class UniversalTransformer(nnx.Module):
    """Attributes mirror `alta.parameters.Parameters`, so each parameter's NNX path is its
    checkpoint name: `embed.token`, `attention.query`, `mlp.0.weight`, `halting.2.bias`."""

    def __init__(self, config: ModelConfig, parameters: Parameters | None = None,
                 plan: ExecutionPlan | None = None, *, rngs: nnx.Rngs | None = None) -> None:
        """Filled with `parameters` (compiled ones), or randomly initialised from `rngs`.

        `plan` (compiled models only, compiler/structure.py) switches on the structured
        paths: attention by blocks, sparse MLP layers as a few dense blocks, and only the
        halting units that reach its output. The numbers are the same to float32 rounding:
        the dense products only add exact zeros (XLA may sum in another order)."""
        if parameters is None:
            parameters = random_parameters(config, rngs or nnx.Rngs(0))
        parameters_from_flat(parameters.flat(), config)  # raises naming what does not fit
        self.config = config
        mlp_blocks = plan.mlp if plan is not None else (None,) * len(parameters.mlp)
        self.embed = Embedding(parameters.embed)
        self.attention = Attention(parameters.attention, config.head_offsets,
                                   config.attention_scale, plan.heads if plan else None)
        self.mlp = FeedForward([Dense(p, blocks) for p, blocks in zip(parameters.mlp,
                                                                       mlp_blocks)],
                               config.activation)
        self.halting = nnx.List([Dense(p) for p in parameters.halting]) \
            if parameters.halting else None
        self.plan = plan  # static: its index arrays are constants of the jitted code
        # The structured paths keep the residual features-first, (D, B, N), between layers.
        self.features_first = plan is not None and plan.heads is not None

    # -- one layer (the public methods take and return residuals (B, N, D)) ------------------

    def layer(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One application of the shared layer: (state after attention, after the MLP)."""
        sparse = self._sparse_weights()
        attended, new = self._by_chunks(lambda s, v: self._layer(s, v, sparse), self._state(x),
                                        self._chunks(valid, x.shape[1]))
        return self._residual(attended, x.shape[0]), self._residual(new, x.shape[0])

    def step(self, x: jax.Array, valid: jax.Array, active: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
        """One layer for the `active` sequences (B,); the others, and every padding
        position, keep their state: (state after attention, next state)."""
        sparse = self._sparse_weights()
        attended, new = self._by_chunks(lambda s, v, a: self._step(s, v, a, sparse),
                                        self._state(x),
                                        self._chunks(valid, x.shape[1]),
                                        self._chunks(active, x.shape[1]))
        return self._residual(attended, x.shape[0]), self._residual(new, x.shape[0])

    def halted(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """Per sequence: does the halting condition hold at every non-padding position?"""
        return self._halted(self._whole(x), valid)

    def faulted(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """Per sequence: has the MLP set a fault flag (read an undefined head) anywhere?"""
        return self._faulted(self._whole(x), valid)

    def stops(self, x: jax.Array, valid: jax.Array, stop_on_fault=True) -> jax.Array:
        """Per sequence: halted, or (unless faults are allowed) faulted."""
        return self._stops(self._whole(x), valid, stop_on_fault)

    # -- the same on the model's own layout of the residual: its "state" ----------------------
    # The structured paths keep the residual features-first and in chunks of sequences,
    # (chunks, D, sequences per chunk, N), and run each layer chunk by chunk: a chunk's
    # intermediates (the MLP's hidden layers are ~2x D wide) stay in the cache, where the
    # whole batch's would not. The dense path keeps (B, N, D) as one chunk.

    def _chunking(self, batch: int, positions: int) -> tuple[int, int]:
        """(chunks, sequences per chunk) for a batch: about `CHUNK_POSITIONS` positions a
        chunk, the batch split evenly (padded with at most chunks - 1 empty sequences)."""
        if not self.features_first:
            return 1, batch
        chunks = max(1, min(batch, -(-batch * positions // CHUNK_POSITIONS)))
        return chunks, -(-batch // chunks)

    def _chunks(self, a: jax.Array, positions: int) -> jax.Array:
        """Per-sequence values (B, ...) of a batch of `positions` positions as (chunks, per
        chunk, ...), padded with zeros (False): a padding sequence has no valid position, so
        it halts before running."""
        if not self.features_first:
            return a[None]
        chunks, size = self._chunking(a.shape[0], positions)
        return self._pad(a, chunks * size).reshape((chunks, size) + a.shape[1:])

    @staticmethod
    def _pad(a: jax.Array, size: int) -> jax.Array:
        return jnp.pad(a, [(0, size - a.shape[0])] + [(0, 0)] * (a.ndim - 1))

    def _state(self, x: jax.Array) -> jax.Array:
        if not self.features_first:
            return x[None]
        chunks, size = self._chunking(*x.shape[:2])
        x = self._pad(x, chunks * size).reshape((chunks, size) + x.shape[1:])
        return jnp.moveaxis(x, -1, 1)

    def _residual(self, state: jax.Array, batch: int) -> jax.Array:
        if not self.features_first:
            return state[0]
        x = jnp.moveaxis(state, 1, -1)
        return x.reshape((-1,) + x.shape[2:])[:batch]

    def _whole(self, x: jax.Array) -> jax.Array:
        """A residual (B, N, D) as one chunk's state."""
        return features_first(x) if self.features_first else x

    @staticmethod
    def _by_chunks(fn, *chunked):
        """`fn` on each chunk (the leading axis of every argument), one after the other."""
        if chunked[0].shape[0] == 1:
            return jax.tree.map(lambda y: y[None], fn(*(a[0] for a in chunked)))
        return jax.lax.map(lambda args: fn(*args), chunked)

    def _dims(self, state: jax.Array, dims) -> jax.Array:
        """Residual dimensions `dims` (an index array or a slice) of one chunk's state as
        (B, N, len(dims))."""
        return features_last(state[dims]) if self.features_first else state[..., dims]

    def _sparse_weights(self) -> tuple | None:
        """What the structured MLP reads, gathered from its weights once per call (see
        BlockSparse.blocks_of); None on the dense path."""
        return self.mlp.sparse_weights() if self.features_first else None

    def _layer(self, s: jax.Array, valid: jax.Array, sparse: tuple | None
               ) -> tuple[jax.Array, jax.Array]:
        if self.features_first:
            attended = s + self.attention.features_first(s, valid)[0]
            return attended, attended + self.mlp.features_first(attended, sparse)
        attended = s + self.attention(s, valid)[0]
        return attended, attended + self.mlp(attended)

    def _step(self, s: jax.Array, valid: jax.Array, active: jax.Array, sparse: tuple | None
              ) -> tuple[jax.Array, jax.Array]:
        attended, new = self._layer(s, valid, sparse)
        keep = active[:, None] & valid
        return attended, jnp.where(keep[None] if self.features_first else keep[..., None],
                                   new, s)

    def _advance(self, s: jax.Array, valid: jax.Array, active: jax.Array, stop_on_fault,
                 sparse: tuple | None) -> tuple[jax.Array, jax.Array]:
        """One chunk's next state, and which of its sequences stop there."""
        _, s = self._step(s, valid, active, sparse)
        return s, self._stops(s, valid, stop_on_fault)

    def _halted(self, s: jax.Array, valid: jax.Array) -> jax.Array:
        if self.halting is None:
            return jnp.zeros(valid.shape[0], bool)
        if self.plan is None or self.plan.halting is None:
            h = features_last(s) if self.features_first else s
            for layer in self.halting:
                h = jnp.clip(layer(h), 0.0, 1.0)
        else:
            units = self.plan.halting
            h = self._dims(s, units[0])
            for layer, inputs, outputs in zip(self.halting, units, units[1:]):
                weight = layer.weight[...][inputs[:, None], outputs[None, :]]
                h = jnp.clip(h @ weight + layer.bias[...][outputs], 0.0, 1.0)
        holds = h.sum(axis=-1) > 0.5
        return jnp.all(holds | ~valid, axis=1)

    def _faulted(self, s: jax.Array, valid: jax.Array) -> jax.Array:
        if not self.config.fault_dims:
            return jnp.zeros(valid.shape[0], bool)
        dims = np.asarray(self.config.fault_dims)
        contiguous = np.array_equal(dims, np.arange(dims[0], dims[0] + len(dims)))
        flags = self._dims(s, slice(dims[0], dims[0] + len(dims)) if contiguous else dims)
        return jnp.any((flags > 0.5).any(axis=-1) & valid, axis=1)

    def _stops(self, s: jax.Array, valid: jax.Array, stop_on_fault=True) -> jax.Array:
        return self._halted(s, valid) | (self._faulted(s, valid) & stop_on_fault)

    # -- the whole run -------------------------------------------------------------------------

    def __call__(self, tokens: jax.Array, lengths: jax.Array,
                 max_layers: int | jax.Array | None = None, stop_on_fault=True):
        """Run to halting: (final residual (B, N, D), layers run (B,), stopped (B,)).

        A sequence stops when it halts or, unless `stop_on_fault` is false, when the MLP
        flags an undefined read (the flags stay in the residual for the caller to read)."""
        limit = self.config.max_layers if max_layers is None else max_layers
        batch = tokens.shape[0]
        valid = self._chunks(jnp.arange(tokens.shape[1])[None, :] < lengths[:, None],
                             tokens.shape[1])
        s = self._state(self.embed(tokens))
        running = ~self._by_chunks(lambda s, v: self._stops(s, v, stop_on_fault), s, valid)
        layers = jnp.zeros(running.shape, jnp.int32)
        sparse = self._sparse_weights()

        def keep_going(carry):
            _, running, layer, _ = carry
            return jnp.any(running) & (layer < limit)

        def body(carry):
            s, running, layer, layers = carry
            s, stops = self._by_chunks(
                lambda s, v, r: self._advance(s, v, r, stop_on_fault, sparse), s, valid,
                running)
            layers = layers + running.astype(jnp.int32)
            return s, running & ~stops, layer + 1, layers

        s, running, _, layers = jax.lax.while_loop(keep_going, body, (s, running, 0, layers))
        return (self._residual(s, batch), layers.reshape(-1)[:batch],
                ~running.reshape(-1)[:batch])

    # -- cost -----------------------------------------------------------------------------------

    def multiply_adds(self, positions: int) -> dict[str, int]:
        """Multiply-adds one layer executes for one sequence of `positions` positions, by
        part, as the paths this model runs compute them (the benchmark's FLOP count)."""
        n, config = positions, self.config
        if self.attention.blocks is None:
            k, v = config.key_width, config.value_width
            attention = config.num_heads * (n * config.width * (2 * k + v) + n * n * (k + v)
                                             + n * v * config.width)
        else:
            attention = self.attention.multiply_adds(n)
        mlp = sum(n * (layer.blocks.plan.multiply_adds() if layer.blocks is not None
                       else layer.weight.shape[0] * layer.weight.shape[1])
                  for layer in self.mlp)
        halting = 0
        if self.halting is not None:
            if self.plan is not None and self.plan.halting is not None:
                units = self.plan.halting
                halting = n * sum(len(a) * len(b) for a, b in itertools.pairwise(units))
            else:
                halting = n * sum(layer.weight.shape[0] * layer.weight.shape[1]
                                  for layer in self.halting)
        return {"attention": attention, "mlp": mlp, "halting": halting}

    # -- weights ---------------------------------------------------------------------------------

    def export_weights(self) -> dict[str, np.ndarray]:
        """Every parameter by its attribute path (the checkpoint names)."""
        return export_weights(self)


@nnx.jit
def run_model(model: UniversalTransformer, tokens, lengths, max_layers, stop_on_fault=True):
    return per_device(UniversalTransformer.__call__, (False, True, True, False, False))(
        model, tokens, lengths, max_layers, stop_on_fault)


def _embed_and_check(model: UniversalTransformer, tokens, valid, stop_on_fault):
    x = model.embed(tokens)
    return x, model.stops(x, valid, stop_on_fault)


@nnx.jit
def embed_and_check(model: UniversalTransformer, tokens, valid, stop_on_fault=True):
    """The initial residual, and which sequences stop before the first layer."""
    return per_device(_embed_and_check, (False, True, True, False))(model, tokens, valid,
                                                                    stop_on_fault)


def _step_and_check(model: UniversalTransformer, x, valid, active, stop_on_fault):
    attended, x = model.step(x, valid, active)
    return attended, x, model.stops(x, valid, stop_on_fault)


@nnx.jit
def step_and_check(model: UniversalTransformer, x, valid, active, stop_on_fault=True):
    """One layer for the `active` sequences (`UniversalTransformer.step`), and which
    sequences stop after it: one compiled function per shape for a layer-by-layer run."""
    return per_device(_step_and_check, (False, True, True, True, False))(
        model, x, valid, active, stop_on_fault)
