"""The Program IR: the checked, resolved program that both back ends consume.

Everything the source said at compile time is gone: constants are folded, enum members and
token literals are integers, loops are unrolled and helper functions are inlined. What is
left is a small typed tree per expression and statement, each node with the span of the
source that produced it, so a back end can report errors at a source line without ever
seeing the source text's syntax.

Expression kinds (`Kind`): "int" (categorical values, integers), "bool", "float" (numerical
values) and "set" (set values, as frozensets of ints); "table" only while checking, for
constant lists and tuples, and for a table indexed at run time that needs more indices.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

from alta import semantics
from alta.errors import Diagnostic, Source, Span
from alta.kinds import ArithmeticOp, ComparisonOp, FrameKind, LogicalOp, OutputAt, SelectOp, UnaryOp

Kind = Literal["int", "bool", "float", "set", "table"]
InputName = Literal["token", "position"]
BuiltinName = Literal["min", "max", "abs", "round", "len", "singleton"]  # singleton: {x}

Op = TypeVar("Op", ArithmeticOp, ComparisonOp, LogicalOp)


# ---- value types of variables and heads --------------------------------------------------

@dataclass(frozen=True)
class Categorical:
    """Values low .. low + size - 1 (`cat N`: 0 .. N-1; `cat -8..8`: low -8), optionally
    named (enum members or vocabulary tokens, low 0)."""

    size: int
    labels: tuple[str, ...] | None = None
    low: int = 0

    @property
    def values(self) -> range:
        return range(self.low, self.low + self.size)

    def describe(self) -> str:
        if self.labels is not None:
            shown = " ".join(self.labels[:6]) + (" ..." if self.size > 6 else "")
            return f"cat {self.size} ({shown})"
        if self.low:
            return f"cat {self.low}..{self.low + self.size - 1}"
        return f"cat {self.size}"

    def contains(self, value) -> bool:
        return isinstance(value, (int, bool)) and bool(semantics.category_fits(
            int(value), self.size, self.low))

    def format(self, value) -> str:
        value = int(value)
        return self.labels[value - self.low] if self.labels is not None else str(value)


@dataclass(frozen=True)
class Numerical:
    """A float with a finite, sorted set of declared values; reads snap to the nearest
    (alta.semantics: what "is a declared value" and "nearest" mean)."""

    values: tuple[float, ...]

    def describe(self) -> str:
        vals = ", ".join(f"{v:g}" for v in self.values[:5])
        more = ", ..." if len(self.values) > 5 else ""
        return f"num {{{vals}{more}}} ({len(self.values)} values)"

    def contains(self, value) -> bool:
        return isinstance(value, (int, float, bool)) and semantics.is_declared_scalar(
            float(value), self.values)

    def declared(self, value) -> float:
        """The declared value a number snaps to (what a write of it stores)."""
        return semantics.snap_scalar(float(value), self.values)

    def format(self, value) -> str:
        return semantics.format_number(value)


@dataclass(frozen=True)
class SetValued:
    """A set of ints in 0 .. size-1, from a declared list of possible sets."""

    size: int
    sets: tuple[frozenset[int], ...]

    def describe(self) -> str:
        return f"set {self.size} ({len(self.sets)} possible sets)"

    def contains(self, value) -> bool:
        return isinstance(value, frozenset) and value in self.sets

    def format(self, value) -> str:
        return "{" + ",".join(str(v) for v in sorted(value)) + "}"


ValueType = Categorical | Numerical | SetValued


def kind_of(type_: ValueType) -> Kind:
    """The expression kind a read of a variable of this type has."""
    return {Categorical: "int", Numerical: "float", SetValued: "set"}[type(type_)]


# ---- expressions -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Expr:
    span: Span
    kind: Kind


@dataclass(frozen=True)
class Const(Expr):
    value: object  # int | bool | float | frozenset | tuple (compile-time tables only)


@dataclass(frozen=True)
class Read(Expr):
    """The current value of a variable or head at this position."""

    name: str
    is_head: bool = False


@dataclass(frozen=True)
class InputRead(Expr):
    """`token` or `position`: only in variable initialisers."""

    which: InputName


@dataclass(frozen=True)
class Local(Expr):
    """A `let` binding or an inlined helper's parameter, by its unique id."""

    uid: int
    name: str


@dataclass(frozen=True)
class Unary(Expr):
    op: UnaryOp
    operand: Expr


@dataclass(frozen=True)
class Operation(Expr, Generic[Op]):
    """`left op right`; each family of operators is its own node type."""

    op: Op
    left: Expr
    right: Expr


class Binary(Operation[ArithmeticOp]):
    pass


class Compare(Operation[ComparisonOp]):
    pass


@dataclass(frozen=True)
class Member(Expr):
    """`element in container`; container is a set-kind expression or a constant set."""

    element: Expr
    container: Expr
    negated: bool = False


class Logical(Operation[LogicalOp]):
    """Short-circuit `and` / `or`: the right operand is only read where it decides."""


@dataclass(frozen=True)
class Cond(Expr):
    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(frozen=True)
class Builtin(Expr):
    name: BuiltinName
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Lookup(Expr):
    """A constant table indexed by run-time values: table[i0][i1]..."""

    table: tuple
    indices: tuple[Expr, ...]


@dataclass(frozen=True)
class LetIn(Expr):
    """`value` bound to a local for `body` (what an inlined helper call becomes)."""

    uid: int
    name: str
    value: Expr
    body: Expr


# ---- statements (the MLP body) -----------------------------------------------------------

@dataclass(frozen=True)
class Stmt:
    span: Span


@dataclass(frozen=True)
class Assign(Stmt):
    variable: str
    value: Expr


@dataclass(frozen=True)
class LetStmt(Stmt):
    uid: int
    name: str
    value: Expr


@dataclass(frozen=True)
class IfStmt(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


def walk(node):
    """Every IR expression and statement in `node` (one, or a tuple of them), depth first."""
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
    elif isinstance(node, (Expr, Stmt)):
        yield node
        for value in vars(node).values():
            if isinstance(value, (Expr, Stmt, tuple)):
                yield from walk(value)


# ---- declarations --------------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    name: str
    type: ValueType
    # "token and position": an embedding of each token at each position (compiler/weights.py)
    init_from: Literal[InputName, "token and position", "constant"]
    init: Expr  # may read `token` / `position`
    token_table: tuple | None  # init value per token id, when init_from == "token"
    span: Span


# ---- head selection: tests of keys against queries -------------------------------------------

@dataclass(frozen=True)
class KeyTest:
    """`key op query` in a head's `where`: the key variable, read at the selected position j,
    against the query variable read at the querying position i, or against a constant
    (`query` None: a key-only test; `constant` an int, or a frozenset for `in`)."""

    span: Span
    key: str
    op: SelectOp
    query: str | None = None
    constant: int | frozenset[int] | None = None


@dataclass(frozen=True)
class NotTest:
    span: Span
    operand: Selection


@dataclass(frozen=True)
class JoinedTests:
    span: Span
    op: LogicalOp
    operands: tuple[Selection, ...]


Selection = KeyTest | NotTest | JoinedTests


def key_tests(selection: Selection):
    """Every KeyTest in a selection, left to right."""
    if isinstance(selection, KeyTest):
        yield selection
    elif isinstance(selection, NotTest):
        yield from key_tests(selection.operand)
    else:
        for operand in selection.operands:
            yield from key_tests(operand)


def selects(selection: Selection, key_values, query_values) -> np.ndarray:
    """Whether `selection` holds, elementwise over key values and query values that
    broadcast together (`key_values(name)`, `query_values(name)`: arrays of integers, sets as
    bit masks). The one definition of a head's tests: the interpreter applies it to positions
    (keys at j, queries at i), the compiler to pairs of values (compiler/scores.py)."""
    if isinstance(selection, NotTest):
        return ~selects(selection.operand, key_values, query_values)
    if isinstance(selection, JoinedTests):
        join = np.logical_and if selection.op == "and" else np.logical_or
        return functools.reduce(join, (selects(s, key_values, query_values)
                                       for s in selection.operands))
    other = query_values(selection.query) if selection.query is not None else selection.constant
    return semantics.key_test(selection.op, key_values(selection.key), other)


def truth_table(selection: Selection, key: Categorical, query: ValueType | None) -> np.ndarray:
    """(key value, query value) -> whether `selection` (tests of one key and at most one query)
    holds: one column without a query; for a set-valued query one column per element e,
    whether the key is e and every other test holds (a set's score is the sum over its
    elements, compiler/scores.py)."""
    keys = np.asarray(key.values)[:, None]
    if query is None:
        queries = np.zeros((1, 1), dtype=np.int64)
    elif isinstance(query, SetValued):
        queries = semantics.singleton_bits(np.arange(query.size))[None, :]
    else:
        queries = np.asarray(query.values)[None, :]
    table = selects(selection, lambda name: keys, lambda name: queries)
    return np.broadcast_to(table, (keys.shape[0], queries.shape[1]))


@dataclass(frozen=True)
class Term:
    """One term of a head's selection: tests of one key variable and at most one query
    variable (None: tests of the key alone). A head selects where every term holds; the
    compiler gives each term one bilinear form of the attention score."""

    key: str
    query: str | None
    test: Selection
    span: Span


@dataclass(frozen=True)
class Head:
    """`name = value where TERMS at offsets`, or `name: count where TERMS at offsets`."""

    name: str
    # Categorical (selects one position), Numerical (mean), or for a count head the counts
    # 0..maximum as a Categorical
    type: ValueType
    value: str | None  # None: a count head (how many positions it selects; never undefined)
    where: tuple[Term, ...]  # all must hold; () without `where`: every position qualifies
    offsets: tuple[int, ...] | None  # relative offsets j - i, or None for any
    span: Span
    # Categorical only: defined where the selected positions (at least one) all hold the
    # same value, not only where exactly one is selected (`head h: same = ...`).
    same: bool = False

    @property
    def numerical(self) -> bool:
        return isinstance(self.type, Numerical)

    @property
    def counts(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class FrameItem:
    kind: FrameKind
    token: int | None = None
    count: int = 1
    # On the input item: the framing tokens the input text may also contain (`allow ...`);
    # every other token the framing places is reserved and cannot be typed.
    allow: tuple[int, ...] = ()


@dataclass(frozen=True)
class Output:
    variable: str
    at: OutputAt | int  # an int: a position index
    where: Expr | None
    default: object | None
    span: Span

    @property
    def reads(self) -> frozenset[str]:
        """The variables and heads a final state's output is read from."""
        return frozenset({self.variable} | {n.name for n in walk(self.where)
                                             if isinstance(n, Read)})


@dataclass(frozen=True)
class Program:
    name: str
    source: Source
    vocab: tuple[str, ...]
    framing: tuple[FrameItem, ...]
    variables: tuple[Variable, ...]
    heads: tuple[Head, ...]
    mlp: tuple[Stmt, ...]
    halt: Expr | None
    max_layers: int
    max_length: int | None
    output: Output
    warnings: tuple[Diagnostic, ...] = ()
    params: tuple[tuple[str, object], ...] = ()  # every parameter's value, as declared
    variable_index: dict = field(init=False, repr=False, compare=False)
    head_index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "variable_index", {v.name: v for v in self.variables})
        object.__setattr__(self, "head_index", {h.name: h for h in self.heads})

    def variable(self, name: str) -> Variable:
        return self.variable_index[name]

    def head(self, name: str) -> Head:
        return self.head_index[name]

    def type_of(self, name: str) -> ValueType:
        if name in self.variable_index:
            return self.variable_index[name].type
        return self.head_index[name].type
