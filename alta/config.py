"""The Universal Transformer's shape, as plain data (no JAX import: checkpoints and the
command line read it without loading a model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    width: int  # D, the residual stream
    num_heads: int
    key_width: int
    value_width: int
    mlp_widths: tuple[int, ...]  # hidden layer widths; the MLP maps D -> ... -> D
    activation: str = "clipped_relu"  # "clipped_relu" (compiled) | "relu" | "gelu"
    max_positions: int = 0  # rows of the position embedding; 0: no position embedding
    token_at_position: bool = False  # an embedding row per (position, token) as well
    head_offsets: tuple[tuple[int, ...] | None, ...] = ()  # per head; None: any position
    attention_scale: float = 1.0  # compiled weights fold their scale into the queries
    halting_widths: tuple[int, ...] = ()  # hidden widths of the halting readout; () = none
    max_layers: int = 1000
    attention_sink: bool = False  # a per-head sink logit (`attention.sink`), as compiled
    fault_dims: tuple[int, ...] = ()  # residual flags that stop a sequence with an error

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        data = dict(data)
        data["mlp_widths"] = tuple(data["mlp_widths"])
        data["halting_widths"] = tuple(data.get("halting_widths", ()))
        data["fault_dims"] = tuple(data.get("fault_dims", ()))
        data["head_offsets"] = tuple(None if o is None else tuple(o)
                                     for o in data.get("head_offsets", ()))
        return cls(**data)
