"""Families of declarations: `for k in 0..K - 1:` around indexed `var` and `head` lines.

A family block repeats each of its declarations for every item of a constant collection,
with the block's names bound to the item (as the MLP's `for` unrolls its body). Each
declaration is one family, `depth`, whose members are named by the index it gives,
`depth[0]`, `depth[1]`, ...; the checker sees the members as ordinary declarations (their
expressions lowered in a scope with the family's names bound), so the Program IR, both back
ends and everything downstream see plain variables and heads with those names. Elsewhere a
member is written `depth[INDEX]`, INDEX known at compile time (alta.lowering.state_ref).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alta import ast
from alta.environment import Context, Family, Scope, member_name
from alta.errors import Span
from alta.lowering import bind_targets, const_eval, constant_items
from alta.semantics import show

StateDecl = ast.VarDecl | ast.HeadDecl


@dataclass(frozen=True)
class Declared:
    """One variable or head to check: a plain declaration, or a family's member (its name
    the member's, its index gone), with the scope its expressions are lowered in."""

    decl: StateDecl
    scope: Scope


def expand_state(decls, ctx: Context) -> tuple[list[Declared], dict[str, Family]]:
    """Every variable and head declaration in source order, families expanded (a block's
    members iteration by iteration, as its lines would be written out), and the families."""
    out: list[Declared] = []
    families: dict[str, Family] = {}
    for d in decls:
        if isinstance(d, (ast.VarDecl, ast.HeadDecl)):
            if d.index is not None:
                raise ctx.error(f"'{d.name.id}[...]' declares a member of a family: put it in "
                                f"a block 'for k in ...:' that gives its indices", d.index.span)
            out.append(Declared(d, ctx.env.globals))
        elif isinstance(d, ast.FamilyDecl):
            members, indices = _expand_family(d, ctx)
            out.extend(members)
            for decl in d.decls:
                what = "variable" if isinstance(decl, ast.VarDecl) else "head"
                families[decl.name.id] = Family(decl.name.id, what,
                                                tuple(indices[decl.name.id]), decl.name.span)
    return out, families


def _expand_family(d: ast.FamilyDecl,
                   ctx: Context) -> tuple[list[Declared], dict[str, list[int]]]:
    """The block's members, and each family's indices in order."""
    items = constant_items(d.iterable, ctx.env.globals, ctx,
                           "a family of declarations ('for ... in ...:' at top level)")
    if not items:
        raise ctx.error("this family of declarations runs over an empty collection, so it "
                        "declares nothing", d.iterable.span)
    for decl in d.decls:
        if decl.index is None:
            raise ctx.error(f"a declaration in a family block declares one member per item: "
                            f"index its name, e.g. '{decl.name.id}[{d.targets[0].id}]'",
                            decl.name.span)
    out, seen, indices = [], {}, {decl.name.id: [] for decl in d.decls}
    for item in items:
        scope = bind_targets(d.targets, item, ctx.env.globals, d.iterable.span, ctx)
        for decl in d.decls:
            index = const_eval(decl.index, scope, ctx)
            if isinstance(index, bool) or not isinstance(index, int):
                raise ctx.error(f"a family member's index must be an integer, got "
                                f"{show(index)}", decl.index.span)
            first = seen.setdefault((decl.name.id, index), show(item))
            if first != show(item):
                raise ctx.error(f"family '{decl.name.id}' gets the index {index} twice (for "
                                f"{first} and for {show(item)}): each member needs its own",
                                decl.index.span)
            indices[decl.name.id].append(index)
            name = ast.Name(_member_span(decl), member_name(decl.name.id, index))
            out.append(Declared(replace(decl, name=name, index=None), scope))
    return out, indices


def _member_span(decl: StateDecl) -> Span:
    """`depth[k]` in the declaration: the name to the closing bracket."""
    name, index = decl.name.span, decl.index.span
    return Span(name.line, name.column, index.end_line, index.end_column + 1)
