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

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from alta.compiler.structure import ColumnBlocks, ExecutionPlan, HeadBlocks
from alta.config import ModelConfig
from alta.parameters import (
    AttentionParameters,
    DenseParameters,
    EmbeddingParameters,
    Parameters,
    parameter_shapes,
    parameters_from_flat,
)

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


def _diagonal(param: nnx.Param, head: int, start: int, size: int) -> jax.Array:
    return jnp.diagonal(param[...][head, start:start + size, :size])


def _param(value) -> nnx.Param:
    return nnx.Param(jnp.asarray(value, dtype=jnp.float32))


class Structure(nnx.Variable):
    """Index arrays of the structured paths (fixed by the compiler, never trained)."""


class Embedding(nnx.Module):
    def __init__(self, p: EmbeddingParameters) -> None:
        self.token = _param(p.token)
        self.position = _param(p.position) if p.position is not None else None

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.token[...][tokens]
        if self.position is not None:
            x = x + self.position[...][None, : tokens.shape[1]]
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
        """The attention output added to the residual, and the attention weights."""
        if self.query.shape[0] == 0:
            return jnp.zeros_like(x), jnp.zeros(x.shape[:1] + (0,) + x.shape[1:2] * 2, x.dtype)
        if self.blocks is not None:
            return self._by_blocks(x, valid)
        q = jnp.einsum("bnd,hdk->bhnk", x, self.query[...])
        k = jnp.einsum("bnd,hdk->bhnk", x, self.key[...])
        v = jnp.einsum("bnd,hdv->bhnv", x, self.value[...])
        scores = jnp.einsum("bhik,bhjk->bhij", q, k) * self.scale
        scores = jnp.where(jnp.stack(self.head_masks(valid), axis=1), scores, MASKED)
        sink = None if self.sink is None else self.sink[...][None, :, None, None]
        weights = softmax_with_sink(scores, sink)
        heads = jnp.einsum("bhij,bhjv->bhiv", weights, v)
        return jnp.einsum("bhiv,hvd->bid", heads, self.output[...]), weights

    def _by_blocks(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        masks = self.head_masks(valid)
        outputs, dims = [], []  # written at once: one scatter, not one update per head
        all_weights = []
        scores_by_head, softmax_by_head = {}, {}
        for h, blocks in enumerate(self.blocks):
            if blocks.scores_of is not None:
                scores = scores_by_head[blocks.scores_of]
            elif blocks.query is not None:
                n = blocks.key_size
                q = x[..., blocks.query:blocks.query + n] * _diagonal(self.query, h,
                                                                        blocks.query, n)
                k = x[..., blocks.key:blocks.key + n] * _diagonal(self.key, h, blocks.key, n)
                scores = jnp.einsum("bik,bjk->bij", q, k) * self.scale
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


class BlockSparse(nnx.Module):
    """`x @ W` for a sparse `W` as a few dense blocks: block g multiplies the inputs
    `rows[g]` by `W[rows[g], cols[g]]`; `order` puts the blocks' outputs back in column
    order (the blocks are an execution plan's, compiler/structure.py)."""

    def __init__(self, blocks: ColumnBlocks) -> None:
        self.rows = nnx.List([Structure(jnp.asarray(r, jnp.int32)) for r, _ in blocks])
        self.cols = nnx.List([Structure(jnp.asarray(c, jnp.int32)) for _, c in blocks])
        order = np.argsort(np.concatenate([c for _, c in blocks]))
        self.order = Structure(jnp.asarray(order, jnp.int32))

    def __call__(self, x: jax.Array, weight: jax.Array) -> jax.Array:
        parts = [x[..., r[...]] @ weight[r[...][:, None], c[...][None, :]]
                 for r, c in zip(self.rows, self.cols)]
        return jnp.concatenate(parts, axis=-1)[..., self.order[...]]


class Dense(nnx.Module):
    """x @ weight + bias (weight stored (in, out), as in checkpoints); with `blocks`, the
    product runs as those dense blocks of a sparse weight."""

    def __init__(self, p: DenseParameters, blocks: ColumnBlocks | None = None) -> None:
        self.weight, self.bias = _param(p.weight), _param(p.bias)
        self.blocks = BlockSparse(blocks) if blocks is not None else None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.blocks is None:
            return x @ self.weight[...] + self.bias[...]
        return self.blocks(x, self.weight[...]) + self.bias[...]


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
    embed = EmbeddingParameters(draw(e.token), draw(e.position))
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
        units = plan.halting if plan is not None and parameters.halting else None
        self.halting_units = nnx.List([Structure(jnp.asarray(u, jnp.int32)) for u in units]) \
            if units is not None else None

    # -- one layer -------------------------------------------------------------------------------

    def layer(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One application of the shared layer: (state after attention, after the MLP)."""
        attended = x + self.attention(x, valid)[0]
        return attended, attended + self.mlp(attended)

    def step(self, x: jax.Array, valid: jax.Array, active: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
        """One layer for the `active` sequences (B,); the others, and every padding
        position, keep their state: (state after attention, next state)."""
        attended, new = self.layer(x, valid)
        return attended, jnp.where(active[:, None, None] & valid[:, :, None], new, x)

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

        def body(carry):
            x, running, layer, layers = carry
            _, x = self.step(x, valid, running)
            layers = layers + running.astype(jnp.int32)
            running = running & ~self.stops(x, valid, stop_on_fault)
            return x, running, layer + 1, layers

        x, running, _, layers = jax.lax.while_loop(keep_going, body, (x, running, 0, layers))
        return x, layers, ~running

    # -- weights ---------------------------------------------------------------------------------

    def export_weights(self) -> dict[str, np.ndarray]:
        """Every parameter by its attribute path (the checkpoint names)."""
        return export_weights(self)


@nnx.jit
def run_model(model: UniversalTransformer, tokens, lengths, max_layers, stop_on_fault=True):
    return model(tokens, lengths, max_layers, stop_on_fault)


@nnx.jit
def run_step(model: UniversalTransformer, x, valid, active):
    return model.step(x, valid, active)


@nnx.jit
def embed_and_check(model: UniversalTransformer, tokens, valid, stop_on_fault=True):
    x = model.embed(tokens)
    return x, model.stops(x, valid, stop_on_fault)


@nnx.jit
def check_halted(model: UniversalTransformer, x, valid, stop_on_fault=True):
    return model.stops(x, valid, stop_on_fault)
