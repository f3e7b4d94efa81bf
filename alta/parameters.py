"""The Universal Transformer's parameters as a typed tree of arrays (no JAX import).

The tree has the model's own shape: `UniversalTransformer` (alta/model.py) has an attribute
for every field here, so a parameter's name is its attribute path, `embed.token`,
`attention.query`, `mlp.0.weight`, `halting.2.bias`: the names of checkpoint tensors and of
NNX's state alike. The compiler builds this tree, checkpoints flatten it, and the model is
built from it; swapping a part (a learned MLP for the compiled one) is `replace`.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from alta.config import ModelConfig


@dataclass(frozen=True, eq=False)
class DenseParameters:
    weight: Any  # (in, out)
    bias: Any  # (out,)


@dataclass(frozen=True, eq=False)
class EmbeddingParameters:
    token: Any  # (vocab, D)
    position: Any = None  # (max_positions, D); None: no position embedding
    # (max_positions, vocab, D): a row per token at each position, for variables whose
    # initialiser reads both; None: none (the embedding is token row + position row)
    token_at_position: Any = None


@dataclass(frozen=True, eq=False)
class AttentionParameters:
    query: Any  # (H, D, key width), the softmax scale folded in by the compiler
    key: Any  # (H, D, key width)
    value: Any  # (H, D, value width)
    output: Any  # (H, value width, D)
    sink: Any = None  # (H,) one more logit per head; None: no sink


@dataclass(frozen=True, eq=False)
class Parameters:
    """Leaves are arrays, or (from `parameter_shapes`) shape tuples."""

    embed: EmbeddingParameters
    attention: AttentionParameters
    mlp: tuple[DenseParameters, ...]
    halting: tuple[DenseParameters, ...] = ()  # () when the program has no halting condition

    def flat(self) -> dict[str, Any]:
        """{attribute path: leaf}, in field order, without the absent (None) leaves."""
        return dict(_flatten(self, ""))

    @property
    def size(self) -> int:
        return int(sum(np.size(v) for v in self.flat().values()))

    def map(self, fn) -> Parameters:
        return _unflatten(self, {name: fn(leaf) for name, leaf in self.flat().items()}, "")


def parameter_shapes(config: ModelConfig) -> Parameters:
    """The shape of every parameter the config implies (a tree of shape tuples)."""
    D, H = config.width, config.num_heads

    def dense(sizes):
        return tuple(DenseParameters((a, b), (b,)) for a, b in itertools.pairwise(sizes))

    return Parameters(
        embed=EmbeddingParameters(
            (config.vocab_size, D), (config.max_positions, D) if config.max_positions else None,
            (config.max_positions, config.vocab_size, D) if config.token_at_position else None),
        attention=AttentionParameters((H, D, config.key_width), (H, D, config.key_width),
                                      (H, D, config.value_width), (H, config.value_width, D),
                                      (H,) if config.attention_sink else None),
        mlp=dense((D, *config.mlp_widths, D)),
        halting=dense((D, *config.halting_widths)) if config.halting_widths else ())


def parameters_from_flat(tensors: dict[str, np.ndarray], config: ModelConfig) -> Parameters:
    """The tree the config implies, filled from flat tensors by name.

    Raises ValueError naming the missing, unexpected or misshapen tensors."""
    like = parameter_shapes(config)
    expected = like.flat()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"missing {missing}, unexpected {unexpected}")
    for name, shape in expected.items():
        if tuple(np.shape(tensors[name])) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(np.shape(tensors[name]))}, "
                             f"its config says {shape}")
    return _unflatten(like, tensors, "")


def dense_from_flat(tensors: dict[str, np.ndarray], sizes: tuple[int, ...],
                    prefix: str = "mlp") -> tuple[DenseParameters, ...]:
    """Dense layers of widths `sizes` from flat tensors named as the model's `prefix` part
    (a learned MLP is stored under the name of the part it replaces). Raises ValueError
    naming what is missing or misshapen."""
    like = tuple(DenseParameters((a, b), (b,)) for a, b in itertools.pairwise(sizes))
    for name, shape in _flatten(like, f"{prefix}."):
        if name not in tensors or tuple(np.shape(tensors[name])) != shape:
            raise ValueError(f"weight {name} is missing or has the wrong shape")
    return _unflatten(like, tensors, f"{prefix}.")


def _flatten(node, prefix: str):
    if node is None:
        return
    if dataclasses.is_dataclass(node):
        for f in fields(node):
            yield from _flatten(getattr(node, f.name), f"{prefix}{f.name}.")
    elif isinstance(node, tuple) and (not node or dataclasses.is_dataclass(node[0])):
        for i, child in enumerate(node):
            yield from _flatten(child, f"{prefix}{i}.")
    else:
        yield prefix[:-1], node


def _unflatten(like, leaves: dict[str, Any], prefix: str):
    """A tree shaped as `like`, its leaves taken from `leaves` by name."""
    if like is None:
        return None
    if dataclasses.is_dataclass(like):
        return type(like)(**{f.name: _unflatten(getattr(like, f.name), leaves,
                                                f"{prefix}{f.name}.")
                             for f in fields(like)})
    if isinstance(like, tuple) and (not like or dataclasses.is_dataclass(like[0])):
        return tuple(_unflatten(child, leaves, f"{prefix}{i}.") for i, child in enumerate(like))
    return leaves[prefix[:-1]]
