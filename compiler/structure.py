"""Parameters -> execution plan: the structure of compiled weights that a model can exploit.

Compiled weights are mostly zeros laid out in a known pattern: each head's Q, K, V and O are
diagonal on one block of the residual, the MLP's rule layers read a handful of dimensions
each, and a halting condition reads a few units of the MLP expansion. `plan_execution`
finds that structure once (at compile or load time), checking it against the weights
themselves, so the model (alta/model.py) computes only what is nonzero. Where the weights do
not have the structure (edited, or learned), the plan says so and the model runs dense. The
numbers are the same to float32 rounding: the dense products only add exact zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from alta import ir
from alta.compiler.faults import ONE, averaged, plan_faults
from alta.compiler.layout import ResidualLayout
from alta.compiler.scores import score_terms
from alta.parameters import DenseParameters, Parameters


class TermBlocks(NamedTuple):
    """Where one term of a head's score (compiler/scores.py) reads: Q's block from the query
    rows onto `key_size` columns from `column`, K's diagonal from the key rows onto them."""

    query: int
    query_size: int
    key: int
    key_size: int
    column: int
    diagonal: bool  # Q's block is diagonal too (`key == query`): a scaling, not a product


class HeadBlocks(NamedTuple):
    """Where a compiled head reads and writes: block starts and sizes in the residual."""

    terms: tuple[TermBlocks, ...]  # none: every allowed position scores the same
    value: int
    value_size: int
    output: int
    scores_of: int | None = None  # an earlier head with the same scores and mask, if any
    weights_of: int | None = None  # an earlier head with the same scores, mask and sink
    counts: bool = False  # its value is the constant 1: it outputs the keys' attention share
    # Its value block is categorical and its output one numerical dimension: the mean of
    # the values' numbers (each value dimension weighted by its number), not a copy.
    averages_numbers: bool = False


ColumnBlocks = tuple[tuple[np.ndarray, np.ndarray], ...]  # (input rows, output columns) each


class Gathers(NamedTuple):
    """Columns that read k inputs each, computed as k scaled gathers of the layer's input:
    column `columns[i]` is sum_j input[inputs[i, j]] * W[rows[i, j], columns[i]]."""

    inputs: np.ndarray  # (n, k): where the rows are in the input as this layer receives it
    rows: np.ndarray  # (n, k): the weight rows (units of the previous layer)
    columns: np.ndarray  # (n,)


class Block(NamedTuple):
    """A dense block: input[inputs] @ W[rows][:, columns]."""

    inputs: np.ndarray
    rows: np.ndarray
    columns: np.ndarray


@dataclass(frozen=True, eq=False)
class SparseLayer:
    """How a sparse MLP layer runs: its gathers' outputs, then its blocks', concatenated, are
    its columns in the order `columns`. A hidden layer's units may be in any order, as the
    activation is elementwise: a sparse layer followed by another hands its output on in
    that order (the next one's `inputs` say where each row went), and only a layer whose
    output must be in column order (the last, or one a dense layer reads) reorders it."""

    gathers: tuple[Gathers, ...]
    blocks: tuple[Block, ...]
    order: np.ndarray | None  # the gather back to column order; None: left as computed

    @property
    def columns(self) -> np.ndarray:
        parts = [g.columns for g in self.gathers] + [b.columns for b in self.blocks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def multiply_adds(self) -> int:
        """Per position: one per gathered input, and each block's rows x columns."""
        return (sum(g.inputs.size for g in self.gathers)
                + sum(b.inputs.size * b.columns.size for b in self.blocks))


@dataclass(frozen=True, eq=False)
class ExecutionPlan:
    heads: tuple[HeadBlocks, ...] | None  # None: attention runs on the dense weights
    mlp: tuple[SparseLayer | None, ...]  # per MLP layer; None: that layer runs dense
    halting: tuple[np.ndarray, ...] | None  # residual dims, then each halting layer's units
    # that reach the output; None: the whole readout runs


def model_heads(program: ir.Program, parameters: Parameters) -> tuple[ir.Head, ...]:
    """The model's heads: the program's, then (compiled with a fault detector) the selection
    heads that count what each of them selects."""
    if parameters.attention.query.shape[0] == len(program.heads):  # compiled without one
        return program.heads
    return plan_faults(program).program.heads


def plan_execution(program: ir.Program, layout: ResidualLayout, parameters: Parameters,
                   mlp_density: float = 0.1, mlp_min_size: int = 50_000,
                   overhead: int = 128, gather_inputs: int = 2) -> ExecutionPlan:
    """The structured form of every part of the model that has one.

    An MLP layer runs sparse when it has at least `mlp_min_size` weights, at most
    `mlp_density` of them nonzero (small matrices multiply faster than they split): its
    columns that read at most `gather_inputs` inputs as gathers, the others as column
    blocks; `overhead` is what one more block product costs, in multiply-adds per position."""
    heads = _head_blocks(program, layout, parameters)
    mlp = mlp_plan(parameters.mlp, mlp_density, mlp_min_size, overhead, gather_inputs)
    halting = halting_units(parameters.halting) if parameters.halting else None
    return ExecutionPlan(heads, mlp, halting)


def _head_blocks(program: ir.Program, layout: ResidualLayout, parameters: Parameters
                 ) -> tuple[HeadBlocks, ...] | None:
    heads = model_heads(program, parameters)
    blocks = tuple(HeadBlocks(
        terms=tuple(TermBlocks(layout.block(t.query).start, layout.block(t.query).size,
                               layout.block(t.key).start, t.width, t.column, t.diagonal)
                    for t in score_terms(program, h)),
        value=layout.block(averaged(h)).start, value_size=layout.block(averaged(h)).size,
        output=layout.block(h.name).start,
        averages_numbers=(layout.block(averaged(h)).kind, layout.block(h.name).kind) == (
            "categorical", "numerical")) for h in heads)
    if not _block_diagonal(parameters, blocks):
        return None
    blocks = _shared_scores(parameters, blocks, tuple(h.offsets for h in heads))
    return tuple(b._replace(counts=_counts(layout, parameters, h, b))
                 for h, b in enumerate(blocks))


def _block_diagonal(parameters: Parameters, blocks: tuple[HeadBlocks, ...]) -> bool:
    """Whether the attention weights are exactly diagonal on those blocks (else the
    structured path would compute something else, and the dense one must be used)."""
    attention = parameters.attention
    for h, b in enumerate(blocks):
        query, key = np.zeros_like(attention.query[h]), np.zeros_like(attention.key[h])
        for t in b.terms:
            _copy_diagonal(key, attention.key[h], t.key, t.column, t.key_size)
            if t.diagonal:
                _copy_diagonal(query, attention.query[h], t.query, t.column, t.key_size)
            else:
                rows, cols = slice(t.query, t.query + t.query_size), slice(
                    t.column, t.column + t.key_size)
                query[rows, cols] = attention.query[h][rows, cols]
        if not (np.array_equal(query, attention.query[h])
                and np.array_equal(key, attention.key[h])):
            return False
        value, output = np.zeros_like(attention.value[h]), np.zeros_like(attention.output[h])
        if b.averages_numbers:  # the value block into column 0, that onto the output
            rows = slice(b.value, b.value + b.value_size)
            value[rows, 0] = attention.value[h][rows, 0]
            output[0, b.output] = attention.output[h][0, b.output]
        else:
            _copy_diagonal(value, attention.value[h], b.value, 0, b.value_size)
            _copy_diagonal(output, attention.output[h], 0, b.output, b.value_size)
        if not (np.array_equal(value, attention.value[h])
                and np.array_equal(output, attention.output[h])):
            return False
    return True


def _copy_diagonal(out: np.ndarray, w: np.ndarray, row: int, col: int, size: int) -> None:
    """Copies the diagonal of w's (row, col) block of `size` into `out`."""
    idx = np.arange(size)
    out[row + idx, col + idx] = w[row + idx, col + idx]


def _shared_scores(parameters: Parameters, blocks: tuple[HeadBlocks, ...],
                   offsets: tuple) -> tuple[HeadBlocks, ...]:
    """Marks each head whose scores and mask equal an earlier head's (a compiled head and
    its selection head), so that the structured path computes them once."""
    attention = parameters.attention
    out, seen = [], {}
    for h, b in enumerate(blocks):
        weights = (np.asarray(attention.query[h]).tobytes(),
                   np.asarray(attention.key[h]).tobytes()) if b.terms else ()
        key = (b.terms, weights, offsets[h])
        earlier = seen.setdefault(key, h)
        sink = attention.sink[h] if attention.sink is not None else None
        same = seen.setdefault((*key, sink), h)
        out.append(b._replace(scores_of=earlier if earlier != h else None,
                              weights_of=same if same != h else None))
    return tuple(out)


def _counts(layout: ResidualLayout, parameters: Parameters, h: int, blocks: HeadBlocks) -> bool:
    """Whether head h is a selection head whose output is just the attention share of the
    keys (its value, the constant dimension, copied with weight 1)."""
    if ONE not in {b.name for b in layout.blocks}:
        return False
    one = layout.block(ONE).start
    attention = parameters.attention
    return bool(blocks.value == one and blocks.value_size == 1
                and attention.value[h, one, 0] == 1.0
                and attention.output[h, 0, blocks.output] == 1.0)


def mlp_plan(layers: tuple[DenseParameters, ...], density: float = 0.1,
             min_size: int = 50_000, overhead: int = 128, gather_inputs: int = 2
             ) -> tuple[SparseLayer | None, ...]:
    """Per MLP layer, how it runs sparse (None: dense). Gathers cost about as much per input
    as a block costs per multiply-add times its rows, so only columns that read very few
    inputs (a compiled MLP's expansion layers read one or two each) are gathered."""
    nonzeros = [np.asarray(layer.weight) != 0 for layer in layers]
    sparse = [w.size >= min_size and w.mean() <= density for w in nonzeros]
    plans: list[SparseLayer | None] = []
    position = None  # where each unit of the previous layer's output is (None: in order)
    for i, nonzero in enumerate(nonzeros):
        if not sparse[i]:
            plans.append(None)
            position = None
            continue
        def where(rows, position=position):
            return rows if position is None else position[rows]

        counts = nonzero.sum(axis=0)
        gathers = []
        for k in range(gather_inputs + 1):
            columns = np.flatnonzero(counts == k)
            if columns.size:
                rows = np.array([np.flatnonzero(nonzero[:, c]) for c in columns],
                                np.int64).reshape(columns.size, k)
                by_input = np.lexsort(rows.T[::-1]) if k else np.arange(columns.size)
                rows, columns = rows[by_input], columns[by_input]  # reads in input order
                gathers.append(Gathers(where(rows), rows, columns))
        rest = np.flatnonzero(counts > gather_inputs)
        blocks = tuple(Block(where(rows), rows, rest[cols])
                       for rows, cols in column_blocks(nonzero[:, rest], overhead)) \
            if rest.size else ()
        layer = SparseLayer(tuple(gathers), blocks, None)
        columns = layer.columns
        if i + 1 < len(nonzeros) and sparse[i + 1]:
            position = np.argsort(columns)  # unit c is at position[c] of the output
        else:
            order = np.argsort(columns)
            layer = SparseLayer(layer.gathers, layer.blocks,
                                None if np.array_equal(columns, np.arange(columns.size)) else order)
            position = None
        plans.append(layer)
    return tuple(plans)


def column_blocks(nonzero: np.ndarray, overhead: int) -> ColumnBlocks:
    """Groups the columns of a sparsity pattern into blocks (input rows, columns), greedily
    in the order of their supports: a column joins the current block while that costs fewer
    multiply-adds than starting a new one.

    A compiled rule reads a handful of dimensions and rules about one variable read nearly
    the same ones, so columns with similar inputs share a block: far fewer multiply-adds
    than the dense product, in a few matrix products rather than a gather per nonzero."""
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
    return tuple(blocks)


def halting_units(layers: tuple[DenseParameters, ...]) -> tuple[np.ndarray, ...]:
    """The residual dimensions and, per halting layer, the units that reach its output (the
    others have zero weight into everything after them, so dropping them is exact): the
    compiled halting readout keeps a copy of the whole MLP expansion, of which a condition
    like `done == 1` reads one unit."""
    needed = [np.arange(np.shape(layers[-1].weight)[1])]
    for layer in reversed(layers):
        w = np.asarray(layer.weight)[:, needed[0]]
        needed.insert(0, np.flatnonzero(np.any(w != 0, axis=1)))
    return tuple(needed)
