"""The records the checker and the lowering pass around, instead of shared mutable state.

- `Env`: the program's declarations, as far as the checker has got (frozen: each of the
  checker's stages makes a new one, so what an expression may see is what was declared
  before the stage that lowers it).
- `Scope`: lexical bindings of constants, locals and loop variables (frozen: binding a
  name makes a new scope; program names live in the `Env`).
- `Context`: where an expression stands (compile time, an initialiser, the MLP, a state
  condition; inside which helpers), with the `Env` and the `Effects`.
- `Effects`: the one mutable record: what lowering reports besides the IR it returns
  (warnings, the names read, the helpers called) and the supply of fresh local ids.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from alta import ast, ir
from alta.errors import AltaError, Diagnostic, Source, Span

BUILTINS = ("min", "max", "abs", "round", "len")
INPUT_NAMES = ("token", "position")

Where = Literal["const", "init", "mlp", "state"]  # "state": the halting condition, output


@dataclass(frozen=True)
class ConstBinding:
    value: object
    kind: ir.Kind
    # Bound by compile-time code generation (a loop variable, a helper's argument, or a let
    # computed from one) rather than written in the source as this value.
    generic: bool = False


@dataclass(frozen=True)
class LocalBinding:
    uid: int
    kind: ir.Kind


Binding = ConstBinding | LocalBinding


@dataclass(frozen=True, eq=False)
class Scope:
    """Bindings of one block (`names`), inside those of the blocks around it (`parent`)."""

    names: Mapping[str, Binding] = field(default_factory=dict)
    parent: Scope | None = None

    def lookup(self, name: str) -> Binding | None:
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def child(self) -> Scope:
        return Scope({}, self)

    def bind(self, name: str, binding: Binding) -> Scope:
        """This block with `name` bound too."""
        return Scope({**self.names, name: binding}, self.parent)


@dataclass(frozen=True)
class Family:
    """A family of variables or heads (`for k in 0..2:` + `var depth[k]: ...`): its name, what
    its members are, their indices in order (members are named `depth[0]`, ...) and where it
    is declared."""

    name: str
    what: Literal["variable", "head"]
    indices: tuple[int, ...]
    span: Span

    def member(self, index: int) -> str:
        return member_name(self.name, index)

    def describe(self) -> str:
        """Its members in words: `depth[0] .. depth[2]`, or a list where indices skip."""
        first, last = self.indices[0], self.indices[-1]
        if len(self.indices) > 2 and self.indices == tuple(range(first, last + 1)):
            return f"{self.member(first)} .. {self.member(last)}"
        return ", ".join(self.member(i) for i in self.indices)


def member_name(family: str, index: int) -> str:
    """The name a family's member goes by everywhere after checking (the IR, traces,
    checkpoints, pictures): as it is written in the source, `depth[2]`."""
    return f"{family}[{index}]"


@dataclass(frozen=True, eq=False)
class Env:
    """The declarations visible to the code being lowered (the mappings are never changed
    once in an `Env`)."""

    source: Source
    # Every name of a variable or head: plain names and family names from the start, family
    # members (`depth[0]`) once the families are expanded.
    state_names: frozenset[str]
    family_names: frozenset[str] = frozenset()
    families: Mapping[str, Family] = field(default_factory=dict)  # name -> Family, expanded
    vocab: tuple[str, ...] = ()
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    enum_of_member: Mapping[str, str] = field(default_factory=dict)
    functions: Mapping[str, ast.FuncDecl] = field(default_factory=dict)
    declared: Mapping[str, Span] = field(default_factory=dict)  # name -> where
    pending_constants: Mapping[str, Span] = field(default_factory=dict)  # not evaluated yet
    globals: Scope = field(default_factory=Scope)  # constants and enum members
    head_names: frozenset[str] = frozenset()
    variables: Mapping[str, ir.Variable] = field(default_factory=dict)
    heads: Mapping[str, ir.Head] = field(default_factory=dict)
    # What a variable's or head's values name: "vocab" (tokens), "enum E", or None.
    label_domains: Mapping[str, str | None] = field(default_factory=dict)

    def error(self, message: str, span: Span | None, notes: tuple[str, ...] = ()) -> AltaError:
        return AltaError.at(message, span, self.source, notes)

    def undefined(self, name: ast.Name, what: str = "name") -> AltaError:
        known = list(self.declared) + list(BUILTINS)
        close = difflib.get_close_matches(name.id, known, n=1)
        notes = (f"did you mean '{close[0]}'?",) if close else ()
        return self.error(f"undefined {what} '{name.id}'", name.span, notes)

    def token_id(self, lit: ast.StrLit) -> int:
        if lit.value not in self._token_ids:
            raise self.error(f'"{lit.value}" is not in the vocabulary', lit.span,
                             (f"the vocab is: {' '.join(self.vocab)}",))
        return self._token_ids[lit.value]

    @cached_property
    def _token_ids(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.vocab)}

    def variable(self, name: ast.Name, if_head: str) -> ir.Variable:
        """The variable `name`; the error `if_head` if it is a head."""
        if name.id in self.head_names:
            raise self.error(if_head, name.span)
        if name.id not in self.variables:
            raise self.undefined(name, "variable")
        return self.variables[name.id]


def no_head_here(role: str, head: str) -> str:
    """Why a state-level expression (`role`) cannot read a head."""
    return (f"{role} cannot read head '{head}': head outputs are undefined between layers; "
            "copy it into a variable in the MLP")


@dataclass(eq=False)
class Effects:
    """What lowering reports besides the IR, gathered over one whole check."""

    warnings: list[Diagnostic] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)  # variables and heads read
    called: set[str] = field(default_factory=set)  # helpers inlined somewhere
    uids: Iterator[int] = field(default_factory=itertools.count)  # ids of run-time locals


@dataclass(frozen=True)
class Context:
    """What an expression may read where it appears, and where lowering reports to."""

    env: Env
    effects: Effects
    where: Where
    inlining: tuple[str, ...] = ()  # the helpers being inlined, outermost first

    @property
    def in_function(self) -> str | None:
        return self.inlining[-1] if self.inlining else None

    def at(self, where: Where) -> Context:
        return replace(self, where=where)

    def error(self, message: str, span: Span | None, notes: tuple[str, ...] = ()) -> AltaError:
        return self.env.error(message, span, notes)

    def warn(self, message: str, span: Span | None) -> None:
        self.effects.warnings.append(Diagnostic("warning", message, span, self.env.source))
