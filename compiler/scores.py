"""A head's terms (alta.ir.Term) -> the bilinear forms of its attention score.

A term scores key position j against query position i as beta * k_j . M . q_i, where k_j is
the key's one-hot block at j, q_i the query's block at i and M the term's truth table over
their values (alta.ir.truth_table): 1 where the term holds. `key == query` is the identity
(Q and K diagonal), `key < query` a triangle, and a key-only test (`key <= 2`) reads the
key's own one-hot at i as its query: it sums to 1, so every column of M is the test's
column. A set-valued query is multi-hot, and M over its elements makes the score the count
of the set's elements equal to the key: 1 exactly where the key is in the set.

A head with T terms adds their forms and subtracts T - 1 (folded into a term whose query
block is one-hot, which then sums to 1 at every position), so a position where every term
holds scores beta and any other at most 0, as with a single equality: the head's scale,
its leakage bound and the fault detector's sink (compiler/weights.py, compiler/faults.py)
are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta import ir


@dataclass(frozen=True, eq=False)
class ScoreTerm:
    key: str  # the block read at the key position j (one-hot)
    query: str  # the block read at the query position i
    matrix: np.ndarray  # (key values, query block dimensions): the score over beta
    column: int  # its first column of Q and K; it uses as many as the key has values

    @property
    def width(self) -> int:
        return self.matrix.shape[0]

    @property
    def diagonal(self) -> bool:
        """Whether M is diagonal (Q and K both scale their blocks, as for `key == query`)."""
        m = self.matrix
        return m.shape[0] == m.shape[1] and not np.any(m - np.diag(np.diag(m)))


def score_terms(program: ir.Program, head: ir.Head) -> tuple[ScoreTerm, ...]:
    terms, column, one_hot = [], 0, None
    for term in head.where:
        key = program.variable(term.key).type
        query = program.variable(term.query).type if term.query is not None else None
        table = ir.truth_table(term.test, key, query).astype(np.float64)
        if query is None:  # the key's own one-hot stands for the query
            table = np.repeat(table, key.size, axis=1)
        if one_hot is None and not isinstance(query, ir.SetValued):
            one_hot = len(terms)
        terms.append(ScoreTerm(term.key, term.query or term.key, table, column))
        column += key.size
    if len(terms) > 1:
        if one_hot is None:  # only set-valued queries: a constant term on the first key
            size = program.variable(terms[0].key).type.size
            terms.append(ScoreTerm(terms[0].key, terms[0].key, np.zeros((size, size)), column))
            one_hot = len(terms) - 1
        t = terms[one_hot]
        terms[one_hot] = ScoreTerm(t.key, t.query, t.matrix - (len(head.where) - 1), t.column)
    return tuple(terms)


def key_width(program: ir.Program, head: ir.Head) -> int:
    """The columns of Q and K a head's score uses."""
    return sum(t.width for t in score_terms(program, head))
