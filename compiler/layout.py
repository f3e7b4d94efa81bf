"""Program IR -> residual layout: which dimensions of the residual stream hold what, and the
one codec between variables' values and those dimensions.

Categorical values are one-hot blocks, numerical values one scalar dimension, set values
multi-hot blocks, a count head's count k one scalar dimension holding k / (k + M) (its
attention share, M its maximum count: compiler/buckets.py); every head output has a block
of its own. Each dimension knows its variable, its value and the source line that declared
it, so a residual vector can be read back into variables and any dimension explained.
`ResidualLayout.encode`, `.write` and `.decode` are the only places that map values to
dimensions and back: the compiler's weights, the compiled model's read-back and the trace
datasets all go through them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np

from alta import ir
from alta.compiler.buckets import count_share
from alta.semantics import set_to_bits, snap

BlockKind = Literal["categorical", "numerical", "set", "count"]


@dataclass(frozen=True)
class Block:
    name: str
    kind: BlockKind
    start: int
    size: int
    is_head: bool
    line: int
    labels: tuple[str, ...]  # what each dimension means ("3", "I_JUMP", "value", "has 2")
    low: int = 0  # a categorical block: the value of its first dimension (`cat -8..8`: -8)
    maximum: int = 0  # a count block: the head's maximum count (its share is k / (k + M))

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class ResidualLayout:
    blocks: tuple[Block, ...]

    @property
    def width(self) -> int:
        return self.blocks[-1].stop if self.blocks else 0

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)

    def dim(self, name: str, value=None) -> int:
        """The dimension of a categorical value or set element, or a numerical scalar."""
        b = self.block(name)
        return b.start if b.kind in ("numerical", "count") else b.start + int(value) - b.low

    def describe(self, d: int) -> tuple[str, str, int]:
        """(name, meaning, source line) of dimension d."""
        for b in self.blocks:
            if b.start <= d < b.stop:
                return b.name, b.labels[d - b.start], b.line
        raise IndexError(d)

    # -- the codec: values <-> dimensions -------------------------------------------------------

    def encode(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The interpreter's arrays (rows,) per name -> residual vectors (rows, D), float32:
        categorical one-hots, numerical scalars, sets (bit masks) multi-hot. Names not in
        `values` are left at zero."""
        rows = len(next(iter(values.values())))
        out = np.zeros((rows, self.width), np.float32)
        for block in self.blocks:
            if block.name in values:
                out[:, block.start:block.stop] = _encode_block(block, values[block.name])
        return out

    def write(self, row: np.ndarray, name: str, value, scale: float = 1.0) -> None:
        """Adds `scale` times one value of `name` (an IR value: int, float or frozenset) to
        the residual vector or weight row `row` (D,)."""
        block = self.block(name)
        if block.kind == "set":
            value = set_to_bits(value)
        row[block.start:block.stop] += scale * _encode_block(block, np.asarray([value]))[0]

    def decode(self, residual: np.ndarray, program: ir.Program,
               names: Collection[str] | None = None) -> dict[str, np.ndarray]:
        """Residual vectors (..., D) -> the interpreter's arrays per variable and head output
        (those in `names`, if given).

        Categorical: the largest dimension of the block; numerical variables: the nearest
        declared value (heads keep the raw mean: compiler.buckets says how the MLP reads it);
        sets: the bit mask of dimensions above one half; count heads: the count whose share
        is nearest (the compiled MLP's steps sit between them)."""
        values = {}
        for b in self.blocks:
            if names is not None and b.name not in names:
                continue
            x = residual[..., b.start:b.stop]
            if b.kind == "categorical":
                values[b.name] = np.argmax(x, axis=-1).astype(np.int64) + b.low
            elif b.kind == "count":  # the count whose share is nearest
                shares = count_share(np.arange(b.maximum + 1), b.maximum)
                middles = (shares[1:] + shares[:-1]) / 2
                values[b.name] = np.searchsorted(middles, x[..., 0].astype(np.float64),
                                                 side="right").astype(np.int64)
            elif b.kind == "numerical":
                raw = x[..., 0].astype(np.float64)
                known = b.name in program.variable_index  # not a head, nor the compiler's own
                values[b.name] = snap(raw, np.asarray(program.type_of(b.name).values)) \
                    if known else raw
            else:
                bits = (x > 0.5).astype(np.int64)
                values[b.name] = (bits << np.arange(b.size, dtype=np.int64)).sum(axis=-1)
        return values

    # -- serialisation --------------------------------------------------------------------------

    def to_json(self) -> list[dict]:
        return [{"name": b.name, "kind": b.kind, "start": b.start, "size": b.size,
                 "head": b.is_head, "line": b.line, "labels": list(b.labels),
                 **({"low": b.low} if b.low else {}),
                 **({"maximum": b.maximum} if b.kind == "count" else {})}
                for b in self.blocks]

    @classmethod
    def from_json(cls, data: list[dict]) -> ResidualLayout:
        return cls(tuple(Block(d["name"], d["kind"], d["start"], d["size"], d["head"], d["line"],
                               tuple(d["labels"]), d.get("low", 0), d.get("maximum", 0))
                         for d in data))


def build_layout(program: ir.Program, appended: tuple[str, ...] = ()) -> ResidualLayout:
    """Variables, then heads, then the `appended` names (the compiler's own state, kept last
    so that the program's dimensions are the same with or without it)."""
    blocks = []
    start = 0
    entries = [(v.name, v.type, False, v.span.line) for v in program.variables] + \
              [(h.name, "count" if h.counts else h.type, True, h.span.line)
               for h in program.heads]
    entries.sort(key=lambda entry: entry[0] in appended)
    for name, type_, is_head, line in entries:
        low = maximum = 0
        if type_ == "count":
            kind, labels = "count", ("share",)
            maximum = program.type_of(name).size - 1
        elif isinstance(type_, ir.Categorical):
            kind, labels, low = "categorical", tuple(map(type_.format, type_.values)), type_.low
        elif isinstance(type_, ir.Numerical):
            kind, labels = "numerical", ("value",)
        else:
            kind, labels = "set", tuple(f"has {v}" for v in range(type_.size))
        blocks.append(Block(name, kind, start, len(labels), is_head, line, labels, low,
                            maximum))
        start += len(labels)
    return ResidualLayout(tuple(blocks))


def _encode_block(block: Block, x: np.ndarray) -> np.ndarray:
    """(rows,) values of one block -> (rows, block.size)."""
    rows = len(x)
    if block.kind == "categorical":
        out = np.zeros((rows, block.size), np.float64)
        out[np.arange(rows), x.astype(np.int64) - block.low] = 1.0
        return out
    if block.kind == "numerical":
        return np.asarray(x, np.float64).reshape(rows, 1)
    if block.kind == "count":
        return count_share(np.asarray(x, np.float64), block.maximum).reshape(rows, 1)
    return ((x[:, None].astype(np.int64) >> np.arange(block.size)) & 1).astype(np.float64)
