"""A head's `where` clause (an AST expression) -> its terms (alta.ir.Term), with the checks.

A `where` is made of tests `KEY op QUERY` (the key variable at the selected position j on
the left, the query variable at the querying position i on the right) and `KEY op CONSTANT`
(key-only tests), joined by `and`, `or` and `not`. The compiled model scores a position by
adding one bilinear form per term (compiler/scores.py), so the clause must split, at its
top-level `and`s, into parts that each test one key variable and at most one query
variable; tests of the key alone join any term of that key. Everything else is a located
error saying why.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from alta import ast, ir
from alta.environment import Context
from alta.lowering import check_labels, const_eval, state_name, state_ref
from alta.semantics import show

ORDERING = ("<", "<=", ">", ">=")

_FORMS = ("a head's 'where' tests its key (a variable, on the left) against a query variable "
          "or a constant: 'key == query', 'key < query', 'key in query' (a set-valued "
          "query), 'key <= 2', 'key in {1, 2}', joined by 'and', 'or' and 'not'")


def selection_terms(where: ast.Expr | None, ctx: Context) -> tuple[ir.Term, ...]:
    """The terms of a head's `where` (none without one), each checked."""
    if where is None:
        return ()
    groups: dict[tuple[str, str | None], list[tuple[ir.Selection, ast.Expr]]] = {}
    for part in _conjuncts(where):
        selection = _selection(part, ctx)
        key, query = _one_pair(selection, part, ctx)
        _check_decided(selection, key, query, part, ctx)
        groups.setdefault((key, query), []).append((selection, part))
    # A test of the key alone joins the first term with that key (one bilinear form less).
    for key, query in list(groups):
        if query is None:
            partner = next((pair for pair in groups if pair[0] == key and pair[1] is not None),
                           None)
            if partner is not None:
                groups[partner].extend(groups.pop((key, query)))
    return tuple(_term(key, query, parts) for (key, query), parts in groups.items())


def _term(key: str, query: str | None, parts) -> ir.Term:
    selections = [s for s, _ in parts]
    span = parts[0][1].span
    test = selections[0] if len(selections) == 1 else ir.JoinedTests(span, "and",
                                                                       tuple(selections))
    return ir.Term(key, query, test, span)


def _conjuncts(e: ast.Expr):
    if isinstance(e, ast.BoolOp) and e.op == "and":
        for value in e.values:
            yield from _conjuncts(value)
    else:
        yield e


def _selection(e: ast.Expr, ctx: Context) -> ir.Selection:
    if isinstance(e, ast.BoolOp):
        return ir.JoinedTests(e.span, e.op, tuple(_selection(v, ctx) for v in e.values))
    if isinstance(e, ast.Unary) and e.op == "not":
        return ir.NotTest(e.span, _selection(e.operand, ctx))
    if isinstance(e, ast.Compare):
        return _key_test(e, ctx)
    raise ctx.error(_FORMS, e.span)


def _key_test(e: ast.Compare, ctx: Context) -> ir.KeyTest:
    scope = ctx.env.globals  # family members as `depth[k]` become their names
    e = replace(e, left=state_ref(e.left, scope, ctx), right=state_ref(e.right, scope, ctx))
    if not _names_state(e.left, ctx):
        hint = " (write the key first: 'key > 2', not '2 < key')" if _names_state(
            e.right, ctx) else ""
        raise ctx.error("the left side of a head's test must be its key, a variable read at "
                        "the selected position" + hint, e.left.span)
    key = head_operand(e.left, "key", ctx)
    if not isinstance(key.type, ir.Categorical):
        raise ctx.error(f"a head's key must be categorical; '{key.name}' is "
                        f"{key.type.describe()}", e.left.span)
    if _names_state(e.right, ctx):
        query = head_operand(e.right, "query", ctx)
        _check_query(e, key, query, ctx)
        return ir.KeyTest(e.span, key.name, e.op, query.name)
    return ir.KeyTest(e.span, key.name, e.op, None, _constant(e, key, ctx))


def _names_state(e: ast.Expr, ctx: Context) -> bool:
    """Whether `e` is a name that is not a constant: a variable or head (or undefined)."""
    return isinstance(e, ast.Name) and (e.id in ctx.env.state_names
                                        or ctx.env.globals.lookup(e.id) is None)


def head_operand(name: ast.StateRef, role: str, ctx: Context) -> ir.Variable:
    name = state_name(name, ctx.env.globals, ctx, f"a head's {role}")
    var = ctx.env.variable(name, f"a head's {role} must be a variable, not head '{name.id}' "
                                 "(heads read the state at the start of the layer)")
    ctx.effects.reads.add(name.id)
    return var


def _check_query(e: ast.Compare, key: ir.Variable, query: ir.Variable, ctx: Context) -> None:
    span = e.right.span
    if e.op == "in":
        if not isinstance(query.type, ir.SetValued):
            raise ctx.error(f"'key in query' needs a set-valued query; '{query.name}' is "
                            f"{query.type.describe()}", span)
    elif e.op == "not in":
        raise ctx.error("'not in' tests the key against a constant set ('key not in {1, 2}'); "
                        "a set-valued query is tested with 'key in query' only", span)
    elif not isinstance(query.type, ir.Categorical):
        hint = " (use 'in' for a set query)" if isinstance(query.type, ir.SetValued) else ""
        raise ctx.error(f"'key {e.op} query' needs a categorical query; '{query.name}' is "
                        f"{query.type.describe()}{hint}", span)
    if (query.type.size, _low(query.type)) != (key.type.size, _low(key.type)):
        raise ctx.error(f"query/key range mismatch: query '{query.name}' ranges over "
                        f"{_range_words(query.type)}, key '{key.name}' over "
                        f"{_range_words(key.type)}", span)
    domains = ctx.env.label_domains
    if isinstance(query.type, ir.Categorical) and domains.get(key.name) != domains.get(
            query.name):
        raise ctx.error(f"query '{query.name}' holds {_labels(domains.get(query.name))}, but "
                        f"key '{key.name}' holds {_labels(domains.get(key.name))}: a test "
                        "compares values of one kind", span)


def _constant(e: ast.Compare, key: ir.Variable, ctx: Context) -> int | frozenset[int]:
    """The constant of a key-only test, every value of it one of the key's values."""
    value = const_eval(e.right, ctx.env.globals, ctx)
    if e.op in ("in", "not in"):
        if not isinstance(value, (frozenset, tuple)) or not all(_is_int(v) for v in value):
            raise ctx.error(f"'key {e.op} ...' needs a constant set of integers or tokens, "
                            "e.g. {1, 2} or {\"a\", \"b\"}, or a set-valued query variable",
                            e.right.span)
        if isinstance(e.right, ast.Collection):
            for item in e.right.items:
                check_labels(item, ctx.env.globals, e.left, ctx)
        values = frozenset(int(v) for v in value)
    else:
        if not _is_int(value):
            raise ctx.error(f"a head's key test compares with an integer, a token or an enum "
                            f"member; this is {show(value)}", e.right.span)
        check_labels(e.right, ctx.env.globals, e.left, ctx)
        values = frozenset({int(value)})
    outside = sorted(v for v in values if not key.type.contains(v))
    if outside:
        shown = ", ".join(show(v) for v in outside)
        raise ctx.error(f"{shown} {'is' if len(outside) == 1 else 'are'} not "
                        f"{'a value' if len(outside) == 1 else 'values'} of '{key.name}' "
                        f"({key.type.describe()}): a key-only test names values of the key",
                        e.right.span)
    return values if e.op in ("in", "not in") else int(value)


def _one_pair(selection: ir.Selection, part: ast.Expr, ctx: Context) -> tuple[str, str | None]:
    """The one key and (at most) one query variable a top-level part of `where` tests."""
    tests = list(ir.key_tests(selection))
    keys = list(dict.fromkeys(t.key for t in tests))
    queries = list(dict.fromkeys(t.query for t in tests if t.query is not None))
    if len(keys) > 1 or len(queries) > 1:
        word = "not" if isinstance(part, ast.Unary) else part.op
        names = (f"keys {_names(keys)}" if len(keys) > 1 else f"queries {_names(queries)}")
        raise ctx.error(f"this '{word}' joins tests of {names}: one head's score adds one "
                        "term per key and query variable, so tests of different variables "
                        "can only be joined by a top-level 'and'; use two heads", part.span)
    query = queries[0] if queries else None
    if query is not None and isinstance(ctx.env.variables[query].type, ir.SetValued) and not (
            isinstance(selection, ir.KeyTest) and selection.op == "in"):
        raise ctx.error(f"the set-valued query '{query}' can only be tested as "
                        f"'{keys[0]} in {query}', joined to other tests by a top-level 'and' "
                        "(the score is linear in the set's elements)", part.span)
    return keys[0], query


def _check_decided(selection: ir.Selection, key: str, query: str | None, part: ast.Expr,
                   ctx: Context) -> None:
    """A part that holds for every pair of key and query values (or for none) is almost
    certainly a mistake, as `x == 5` for a `cat 3` x is in the MLP. A key of one value
    (a type sized by a parameter, as dyck's levels with one bracket kind) decides every
    test of it by its type: that is the setting's meaning, not a mistake."""
    variables = ctx.env.variables
    query_type = variables[query].type if query is not None else None
    if isinstance(query_type, ir.SetValued) or variables[key].type.size == 1:
        return
    table = ir.truth_table(selection, variables[key].type, query_type)
    if table.all() or not table.any():
        pair = f"'{key}'" + (f" and '{query}'" if query else "")
        what = ("holds for every value of " + pair + ", so it selects as if it were not there"
                if table.all() else "holds for no value of " + pair + ", so the head "
                "would select nothing")
        raise ctx.error(f"this test {what}", part.span)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer))  # bool is an int


def _low(type_: ir.ValueType) -> int:
    return type_.low if isinstance(type_, ir.Categorical) else 0


def _range_words(type_: ir.ValueType) -> str:
    """How many values a key or query ranges over (and from where, if not 0)."""
    low = _low(type_)
    return f"{type_.size} values" + (f" ({low}..{low + type_.size - 1})" if low else "")


def _labels(domain: str | None) -> str:
    if domain is None:
        return "integers"
    return "tokens (vocab)" if domain == "vocab" else f"members of {domain}"


def _names(names: list[str]) -> str:
    return " and ".join(f"'{n}'" for n in names)
