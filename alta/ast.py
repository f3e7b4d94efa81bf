"""The ALTA abstract syntax tree: frozen dataclasses, every node with its source span.

The AST mirrors what the user wrote (names unresolved, loops and helper calls as written);
`alta.checker` turns it into the Program IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from alta.errors import Span
from alta.kinds import ArithmeticOp, ComparisonOp, FrameKind, LogicalOp, OutputAt, UnaryOp

SourceUnaryOp = Literal[UnaryOp, "+"]
SourceBinaryOp = Literal[ArithmeticOp, ".."]  # `a..b`: a range, known at compile time
SourceCompareOp = Literal[ComparisonOp, "in", "not in"]
CollectionKind = Literal["tuple", "list", "set"]
SettingKey = Literal["max_layers", "max_length"]

V = TypeVar("V", int, float, str, bool)
Op = TypeVar("Op", SourceBinaryOp, SourceCompareOp)


@dataclass(frozen=True)
class Node:
    span: Span


def walk(node):
    """Every AST node in `node` (one, or a tuple of them), depth first."""
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
    elif isinstance(node, Node):
        yield node
        for value in vars(node).values():
            yield from walk(value)


# ---- expressions ------------------------------------------------------------------------

@dataclass(frozen=True)
class Lit(Node, Generic[V]):
    """A literal as written; each kind of literal is its own node type."""

    value: V


class IntLit(Lit[int]):
    pass


class FloatLit(Lit[float]):
    pass


class StrLit(Lit[str]):
    """A string: a token of the vocabulary, wherever it stands for a value."""


class BoolLit(Lit[bool]):
    pass


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Unary(Node):
    op: SourceUnaryOp
    operand: Expr


@dataclass(frozen=True)
class Operation(Node, Generic[Op]):
    """`left op right`, for arithmetic (and ranges) and for comparisons."""

    op: Op
    left: Expr
    right: Expr


class Binary(Operation[SourceBinaryOp]):
    pass


class Compare(Operation[SourceCompareOp]):
    pass


@dataclass(frozen=True)
class BoolOp(Node):
    op: LogicalOp
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class IfExpr(Node):
    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(frozen=True)
class Call(Node):
    func: Name
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Index(Node):
    value: Expr
    index: Expr


@dataclass(frozen=True)
class Collection(Node):
    kind: CollectionKind
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class CompFor(Node):
    """One `for TARGETS in ITERABLE [if CONDITION]` clause of a comprehension."""

    targets: tuple[Name, ...]
    iterable: Expr
    condition: Expr | None


@dataclass(frozen=True)
class Comprehension(Node):
    """`[ELEMENT for ... in ... if ... for ... in ...]`: the clauses nest as in Python, the
    first outermost, each seeing the targets of those before it."""

    kind: Literal["list", "set"]
    element: Expr
    clauses: tuple[CompFor, ...]


Expr = (IntLit | FloatLit | StrLit | BoolLit | Name | Unary | Binary | Compare | BoolOp |
        IfExpr | Call | Index | Collection | Comprehension)


# ---- statements -------------------------------------------------------------------------

# A variable or head where a name is expected: `x`, or a family's member `x[INDEX]` (an
# `Index` of a `Name`, its index known at compile time).
StateRef = Name | Index


@dataclass(frozen=True)
class Assign(Node):
    target: StateRef
    value: Expr


@dataclass(frozen=True)
class Let(Node):
    target: Name
    value: Expr


@dataclass(frozen=True)
class If(Node):
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]  # if/elif conditions and bodies
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True)
class For(Node):
    targets: tuple[Name, ...]
    iterable: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Pass(Node):
    pass


@dataclass(frozen=True)
class Return(Node):
    value: Expr


Stmt = Assign | Let | If | For | Pass | Return


# ---- types ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CatType(Node):
    size: Expr  # an integer, a constant or an enum name


@dataclass(frozen=True)
class BoolType(Node):
    pass


@dataclass(frozen=True)
class VocabType(Node):
    pass


@dataclass(frozen=True)
class CountType(Node):
    """`head NAME: count ...`: the head yields how many positions it selects."""


@dataclass(frozen=True)
class NumType(Node):
    values: Expr | None  # None: `num` alone, values the checker derives


@dataclass(frozen=True)
class SetType(Node):
    size: Expr
    sets: Expr | None


TypeExpr = CatType | BoolType | VocabType | NumType | SetType


@dataclass(frozen=True)
class SameKind(Node):
    """`head h: same = ...`: a categorical head whose selected positions may be several, as
    long as they all hold the same value."""


# ---- declarations -----------------------------------------------------------------------

@dataclass(frozen=True)
class ProgramDecl(Node):
    name: Name


@dataclass(frozen=True)
class VocabDecl(Node):
    tokens: tuple[StrLit, ...]


@dataclass(frozen=True)
class FrameItem(Node):
    kind: FrameKind
    token: StrLit | None = None
    count: Expr | None = None  # repetitions of a fixed token (a buffer)


@dataclass(frozen=True)
class InputDecl(Node):
    items: tuple[FrameItem, ...]
    allow: tuple[StrLit, ...] = ()  # framing tokens that may also be typed in the input


@dataclass(frozen=True)
class OutputDecl(Node):
    variable: StateRef
    at: OutputAt | int | Name  # an int or a constant's name: a position index
    where: Expr | None
    default: Expr | None


@dataclass(frozen=True)
class HaltDecl(Node):
    condition: Expr


@dataclass(frozen=True)
class SettingDecl(Node):
    key: SettingKey
    value: Expr


@dataclass(frozen=True)
class ConstDecl(Node):
    name: Name
    value: Expr


@dataclass(frozen=True)
class ParamDecl(Node):
    """`param NAME = DEFAULT [in ALLOWED]`: a constant that the user may override."""

    name: Name
    value: Expr
    allowed: Expr | None


@dataclass(frozen=True)
class EnumDecl(Node):
    name: Name
    members: tuple[Name, ...]


@dataclass(frozen=True)
class VarDecl(Node):
    name: Name
    type: TypeExpr
    init: Expr | None
    index: Expr | None = None  # `var depth[k]: ...`: a family's member (inside a FamilyDecl)


@dataclass(frozen=True)
class HeadDecl(Node):
    name: Name
    type: TypeExpr | SameKind | CountType | None
    value: StateRef | None  # None: a count head without a value (as it should be)
    where: Expr | None  # tests of keys against queries or constants; None: every position
    offsets: Expr | None
    index: Expr | None = None  # `head h[k] = ...`: a family's member (inside a FamilyDecl)


@dataclass(frozen=True)
class FamilyDecl(Node):
    """`for TARGETS in ITERABLE:` + indexed declarations: each declaration is repeated for
    every item of the constant collection, with the targets bound to it (alta/families.py)."""

    targets: tuple[Name, ...]
    iterable: Expr
    decls: tuple[VarDecl | HeadDecl, ...]


@dataclass(frozen=True)
class MlpDecl(Node):
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class FuncDecl(Node):
    name: Name
    params: tuple[Name, ...]
    body: tuple[Stmt, ...]


Decl = (ProgramDecl | VocabDecl | InputDecl | OutputDecl | HaltDecl | SettingDecl |
        ConstDecl | ParamDecl | EnumDecl | VarDecl | HeadDecl | FamilyDecl | MlpDecl |
        FuncDecl)


@dataclass(frozen=True)
class Module(Node):
    decls: tuple[Decl, ...]
