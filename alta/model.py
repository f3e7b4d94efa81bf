"""The Universal Transformer (Flax NNX): one shared layer applied until every sequence halts.

A layer is multi-head attention then an MLP, each with a residual connection and no layer
norm. Compiled programs fill it with their weights (`from_weights`); randomly initialised, the
same class is what users train. Runs batched with padding masks, jitted, in float32, inside a
`jax.lax.while_loop` that stops when every sequence has halted or `max_layers` is reached; a
halted sequence (and every padding position) keeps its state.
"""

from __future__ import annotations

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


def _mlp_shapes(width: int, hidden: tuple[int, ...], out: int) -> list[tuple[int, int]]:
    sizes = (width,) + tuple(hidden) + (out,)
    return list(zip(sizes[:-1], sizes[1:]))


class UniversalTransformer(nnx.Module):
    """Parameters are named as in compiled checkpoints: `embed.token`, `attention.query`,
    `mlp.0.weight`, ..., `halting.2.bias`."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        D, H = config.width, config.num_heads
        normal = nnx.initializers.normal(stddev=0.02)
        self.token_embedding = nnx.Param(normal(rngs.params(), (config.vocab_size, D)))
        self.position_embedding = (nnx.Param(normal(rngs.params(), (config.max_positions, D)))
                                   if config.max_positions else None)
        self.query = nnx.Param(normal(rngs.params(), (H, D, config.key_width)))
        self.key = nnx.Param(normal(rngs.params(), (H, D, config.key_width)))
        self.value = nnx.Param(normal(rngs.params(), (H, D, config.value_width)))
        self.output = nnx.Param(normal(rngs.params(), (H, config.value_width, D)))
        self.mlp = nnx.List([nnx.Linear(i, o, rngs=rngs)
                             for i, o in _mlp_shapes(D, config.mlp_widths, D)])
        halting = config.halting_widths
        self.halting = nnx.List([nnx.Linear(i, o, rngs=rngs) for i, o in
                                 zip((D,) + halting[:-1], halting)]) if halting else None

    # -- the pieces of one layer ----------------------------------------------------------------

    def embed(self, tokens: jax.Array) -> jax.Array:
        x = self.token_embedding[...][tokens]
        if self.position_embedding is not None:
            x = x + self.position_embedding[...][None, : tokens.shape[1]]
        return x

    def attention_mask(self, valid: jax.Array) -> jax.Array:
        """(batch, heads, query, key): padding never selected; relative offsets as given."""
        n = valid.shape[1]
        relative = np.arange(n)[None, :] - np.arange(n)[:, None]
        per_head = [np.ones((n, n), bool) if offsets is None else np.isin(relative, offsets)
                    for offsets in (self.config.head_offsets or (None,) * self.config.num_heads)]
        return valid[:, None, None, :] & jnp.asarray(np.stack(per_head))[None]

    def attend(self, x: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The attention output added to the residual, and the attention weights."""
        q = jnp.einsum("bnd,hdk->bhnk", x, self.query[...])
        k = jnp.einsum("bnd,hdk->bhnk", x, self.key[...])
        v = jnp.einsum("bnd,hdv->bhnv", x, self.value[...])
        scores = jnp.einsum("bhik,bhjk->bhij", q, k) * self.config.attention_scale
        scores = jnp.where(self.attention_mask(valid), scores, MASKED)
        weights = jax.nn.softmax(scores, axis=-1)
        heads = jnp.einsum("bhij,bhjv->bhiv", weights, v)
        return jnp.einsum("bhiv,hvd->bid", heads, self.output[...]), weights

    def feed_forward(self, x: jax.Array) -> jax.Array:
        act = activation(self.config.activation)
        for i, layer in enumerate(self.mlp):
            x = layer(x)
            if i < len(self.mlp) - 1:
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
        h = x
        for layer in self.halting:
            h = jnp.clip(layer(h), 0.0, 1.0)
        holds = h.sum(axis=-1) > 0.5
        return jnp.all(holds | ~valid, axis=1)

    # -- the whole run -------------------------------------------------------------------------

    def __call__(self, tokens: jax.Array, lengths: jax.Array,
                 max_layers: int | jax.Array | None = None):
        """Run to halting: (final residual (B, N, D), layers run (B,), halted (B,))."""
        limit = self.config.max_layers if max_layers is None else max_layers
        valid = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
        x = self.embed(tokens)
        running = ~self.halted(x, valid)
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
            running = running & ~self.halted(x, valid)
            return x, running, layer + 1, layers

        x, running, _, layers = jax.lax.while_loop(keep_going, step, (x, running, 0, layers))
        return x, layers, ~running

    # -- weights ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, nnx.Param]:
        named = {"embed.token": self.token_embedding, "attention.query": self.query,
                 "attention.key": self.key, "attention.value": self.value,
                 "attention.output": self.output}
        if self.position_embedding is not None:
            named["embed.position"] = self.position_embedding
        for prefix, layers in (("mlp", self.mlp), ("halting", self.halting or [])):
            for i, layer in enumerate(layers):
                named[f"{prefix}.{i}.weight"] = layer.kernel
                named[f"{prefix}.{i}.bias"] = layer.bias
        return named

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        params = self.parameters()
        missing = sorted(set(params) - set(weights))
        unexpected = sorted(set(weights) - set(params))
        if missing or unexpected:
            raise ValueError(f"weights do not fit the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, param in params.items():
            value = np.asarray(weights[name], dtype=np.float32)
            if value.shape != param[...].shape:
                raise ValueError(f"weight {name} has shape {value.shape}, the model expects "
                                 f"{param[...].shape}")
            param[...] = jnp.asarray(value)

    def export_weights(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(param[...]) for name, param in self.parameters().items()}

    @classmethod
    def from_weights(cls, config: ModelConfig, weights: dict[str, np.ndarray]):
        model = cls(config, rngs=nnx.Rngs(0))
        model.load_weights(weights)
        return model


@nnx.jit
def run_model(model: UniversalTransformer, tokens, lengths, max_layers):
    return model(tokens, lengths, max_layers)


@nnx.jit
def run_layer(model: UniversalTransformer, x, valid):
    return model.layer(x, valid)


@nnx.jit
def embed_and_check(model: UniversalTransformer, tokens, valid):
    x = model.embed(tokens)
    return x, model.halted(x, valid)


@nnx.jit
def check_halted(model: UniversalTransformer, x, valid):
    return model.halted(x, valid)
