"""The type rules of ALTA's operations, and their evaluation at compile time.

Each function here takes operands already lowered to IR (alta.lowering lowers them) and
the AST node they came from (for its operator and its spans): it checks the operands'
kinds, folds the operation to an `ir.Const` when every operand is one, and otherwise builds
the IR node that computes it at run time. Constant tables are indexed here too, and
constant sets made; the scalar rules themselves are alta.semantics'.
"""

from __future__ import annotations

from alta import ast, ir
from alta.environment import Context
from alta.errors import Span
from alta.semantics import SET_ELEMENTS, apply_binary, apply_builtin, apply_compare, show, sort_key

# ---- kinds ------------------------------------------------------------------------------

KIND_WORDS = {"int": "an integer", "bool": "a boolean", "float": "a number",
              "set": "a set", "table": "a table (list or tuple)"}


def kind_of_value(value) -> ir.Kind:
    """The kind of a compile-time value (a tuple is a "table")."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, frozenset):
        return "set"
    return "table"


def is_numeric(kind: ir.Kind) -> bool:
    return kind in ("int", "bool", "float")


def coerce(value, kind: ir.Kind):
    """A value as an expression of `kind` holds it: a boolean as an int, an int as a float."""
    if kind == "int" and isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, (int, bool)):
        return float(value)
    return value


def require_truth(e: ir.Expr, what: str, ctx: Context) -> None:
    if e.kind not in ("bool", "int", "float"):
        raise ctx.error(f"{what} must be a boolean, not {KIND_WORDS[e.kind]}", e.span)


def numeric(e: ir.Expr, op: str, ctx: Context) -> None:
    if not is_numeric(e.kind):
        raise ctx.error(f"type error: '{op}' needs numbers, not {KIND_WORDS[e.kind]}", e.span)


def require_assignable(value: ir.Expr, type_: ir.ValueType, name: str, span: Span,
                       ctx: Context) -> None:
    want = ir.kind_of(type_)
    ok = (value.kind == want or (want == "int" and value.kind == "bool")
          or (want == "float" and is_numeric(value.kind)))
    if not ok:
        raise ctx.error(f"type error: '{name}' is {type_.describe()} but the value is "
                        f"{KIND_WORDS[value.kind]}", span)


def check_constant_write(value: ir.Expr, type_: ir.ValueType, name: str, span: Span,
                         ctx: Context) -> None:
    if isinstance(value, ir.Const) and not type_.contains(
            coerce(value.value, ir.kind_of(type_))):
        raise ctx.error(f"value {show(value.value)} is out of range for '{name}' "
                        f"({type_.describe()})", span)


def join_kinds(a: ir.Expr, b: ir.Expr, span: Span, ctx: Context) -> ir.Kind:
    if a.kind == b.kind:
        return a.kind
    if is_numeric(a.kind) and is_numeric(b.kind):
        return "float" if "float" in (a.kind, b.kind) else "int"
    raise ctx.error(f"type error: the two branches give {KIND_WORDS[a.kind]} and "
                    f"{KIND_WORDS[b.kind]}", span)


# ---- operators ----------------------------------------------------------------------------

def unary(e: ast.Unary, operand: ir.Expr, ctx: Context) -> ir.Expr:
    if e.op == "+":
        numeric(operand, "+", ctx)
        return operand
    if e.op == "-":
        numeric(operand, "-", ctx)
        kind = "int" if operand.kind == "bool" else operand.kind
        if isinstance(operand, ir.Const):
            return ir.Const(e.span, kind, -operand.value)
        return ir.Unary(e.span, kind, "-", operand)
    require_truth(operand, "'not'", ctx)
    if isinstance(operand, ir.Const):
        return ir.Const(e.span, "bool", not operand.value)
    return ir.Unary(e.span, "bool", "not", operand)


def binary(e: ast.Binary, left: ir.Expr, right: ir.Expr, ctx: Context) -> ir.Expr:
    op = e.op
    if op == "..":
        if not (isinstance(left, ir.Const) and isinstance(right, ir.Const)
                and left.kind == right.kind == "int"):
            raise ctx.error("a range 'a..b' needs two integers known at compile time", e.span)
        return ir.Const(e.span, "table", tuple(range(left.value, right.value + 1)))
    if left.kind == "table" or right.kind == "table":
        if op == "+" and left.kind == right.kind == "table":
            return ir.Const(e.span, "table", tuple(left.value) + tuple(right.value))
        raise ctx.error(f"type error: '{op}' does not apply to a table", e.span)
    if left.kind == "set" or right.kind == "set":
        if left.kind != right.kind or op not in ("|", "&", "-", "^"):
            raise ctx.error(f"type error: '{op}' between {KIND_WORDS[left.kind]} and "
                            f"{KIND_WORDS[right.kind]}", e.span)
        small_set(left, ctx)
        small_set(right, ctx)
        kind = "set"
    else:
        numeric(left, op, ctx)
        numeric(right, op, ctx)
        if op == "/":
            kind = "float"
        elif op in ("^", "|", "&"):
            if "float" in (left.kind, right.kind):
                raise ctx.error(f"type error: '{op}' needs integers or booleans", e.span)
            kind = "bool" if left.kind == right.kind == "bool" else "int"
        else:
            kind = "float" if "float" in (left.kind, right.kind) else "int"
    if isinstance(left, ir.Const) and isinstance(right, ir.Const):
        try:
            value = apply_binary(op, left.value, right.value)
        except ZeroDivisionError:
            raise ctx.error("division by zero", e.span) from None
        return ir.Const(e.span, kind, value)
    if op in ("/", "//", "%") and isinstance(right, ir.Const) and right.value == 0:
        raise ctx.error("division by zero", e.right.span)
    return ir.Binary(e.span, kind, op, left, right)


def compare(e: ast.Compare, left: ir.Expr, right: ir.Expr, ctx: Context) -> ir.Expr:
    """An ordering or (in)equality; `in` and `not in` are `membership`."""
    if e.op in ("==", "!="):
        if (left.kind == "set") != (right.kind == "set") or "table" in (left.kind, right.kind):
            raise ctx.error(f"type error: cannot compare {KIND_WORDS[left.kind]} with "
                            f"{KIND_WORDS[right.kind]}", e.span)
    else:
        numeric(left, e.op, ctx)
        numeric(right, e.op, ctx)
    if isinstance(left, ir.Const) and isinstance(right, ir.Const):
        return ir.Const(e.span, "bool", apply_compare(e.op, left.value, right.value))
    if left.kind == "set":
        small_set(left, ctx)
        small_set(right, ctx)
    return ir.Compare(e.span, "bool", e.op, left, right)


def membership(e: ast.Compare, left: ir.Expr, right: ir.Expr, ctx: Context) -> ir.Expr:
    negated = e.op == "not in"
    if right.kind == "table" or (right.kind == "set" and isinstance(right, ir.Const)):
        if isinstance(left, ir.Const):
            return ir.Const(e.span, "bool", (left.value in right.value) != negated)
        container = ir.Const(right.span, "set", frozenset(right.value))
        return ir.Member(e.span, "bool", left, container, negated)
    if right.kind != "set":
        raise ctx.error(f"type error: 'in' needs a set or a collection on the right, not "
                        f"{KIND_WORDS[right.kind]}", e.right.span)
    if left.kind not in ("int", "bool"):
        raise ctx.error(f"type error: only integers can be members of a set, not "
                        f"{KIND_WORDS[left.kind]}", e.left.span)
    return ir.Member(e.span, "bool", left, right, negated)


def small_set(e: ir.Expr, ctx: Context) -> None:
    """Run-time set values hold integers 0 .. SET_ELEMENTS - 1."""
    if isinstance(e, ir.Const) and any(not 0 <= v < SET_ELEMENTS for v in e.value):
        raise ctx.error(f"set {show(e.value)} has elements outside 0..{SET_ELEMENTS - 1}, "
                        "the range of set values", e.span)


def constant_set(values: list, span: Span, ctx: Context) -> ir.Const:
    """A set of integers is a set value; of other numbers or of sets, a sorted table."""
    kinds = {kind_of_value(v) for v in values}
    if kinds <= {"int", "bool"}:
        return ir.Const(span, "set", frozenset(int(v) for v in values))
    if "table" in kinds or ("set" in kinds and kinds != {"set"}):
        raise ctx.error("set elements must be numbers, or all sets", span)
    return ir.Const(span, "table", tuple(sorted(set(values), key=sort_key)))


# ---- tables -------------------------------------------------------------------------------

def index(e: ast.Index, base: ir.Expr, i: ir.Expr, ctx: Context) -> ir.Expr:
    """`base[i]`: a constant table, with a constant index or a run-time one."""
    if i.kind not in ("int", "bool"):
        raise ctx.error(f"an index must be an integer, not {KIND_WORDS[i.kind]}",
                        e.index.span)
    if isinstance(base, ir.Lookup):  # a table already indexed at run time
        table, indices = base.table, base.indices
    elif isinstance(base, ir.Const) and base.kind == "table":
        table, indices = base.value, ()
    else:
        raise ctx.error(f"only tables can be indexed, not {KIND_WORDS[base.kind]}",
                        e.value.span)
    if isinstance(i, ir.Const):
        try:
            table = _select_axis(table, len(indices), int(i.value))
        except (IndexError, TypeError):
            raise ctx.error(f"index {i.value} is out of range for this table",
                            e.index.span) from None
        if not indices:
            return ir.Const(e.span, kind_of_value(table), table)
    else:
        indices = indices + (i,)
    leaf = _table_leaf_kind(table, len(indices))
    if leaf is None:
        raise ctx.error("a table indexed by a run-time value must be rectangular, with "
                        "numbers (or sets) in every cell", e.span)
    # A "table" kind means more indices must follow (T[x] of a 2-D T); used as a value,
    # it is a type error wherever it lands.
    return ir.Lookup(e.span, leaf, table, indices)


def _select_axis(table, axis: int, index: int):
    """table[..., index, ...] along `axis` (the axes before it are indexed at run time)."""
    if index < 0:
        raise IndexError(index)
    if axis == 0:
        return table[index]
    return tuple(_select_axis(row, axis - 1, index) for row in table)


def _table_leaf_kind(table, depth: int) -> ir.Kind | None:
    """The kind of a table's cells `depth` levels down: a number kind, "table" when the
    cells are themselves rows (more indices to come), None if ragged or not numbers."""
    def shape(t):
        if not isinstance(t, tuple):
            return ()
        if not t:
            return None
        shapes = {shape(row) for row in t}
        return (len(t),) + shapes.pop() if len(shapes) == 1 and None not in shapes else None

    full = shape(table)
    if full is None or len(full) < depth:
        return None
    kinds = {kind_of_value(v) for v in _flatten(table, len(full))}
    if kinds == {"set"}:
        return "table" if len(full) > depth else "set"
    if not kinds <= {"int", "bool", "float"}:
        return None
    if len(full) > depth:
        return "table"
    return "float" if "float" in kinds else ("bool" if kinds == {"bool"} else "int")


def _flatten(table, depth: int) -> list:
    if depth == 0:
        return [table]
    return [x for row in table for x in _flatten(row, depth - 1)]


# ---- built-ins -----------------------------------------------------------------------------

def builtin(e: ast.Call, args: list[ir.Expr], ctx: Context) -> ir.Expr:
    name = e.func.id
    if name in ("abs", "round", "len") and len(args) != 1:
        raise ctx.error(f"'{name}' takes 1 argument, got {len(args)}", e.span)
    if name in ("min", "max"):
        return _min_max(e, name, args, ctx)
    (arg,) = args
    if name == "len":
        if arg.kind == "table" or (arg.kind == "set" and isinstance(arg, ir.Const)):
            return ir.Const(e.span, "int", len(arg.value))
        if arg.kind != "set":
            raise ctx.error(f"'len' needs a set or a collection, not {KIND_WORDS[arg.kind]}",
                            e.span)
        return ir.Builtin(e.span, "int", "len", (arg,))
    numeric(arg, name, ctx)
    kind = "int" if name == "round" or arg.kind != "float" else "float"
    if isinstance(arg, ir.Const):
        return ir.Const(e.span, kind, apply_builtin(name, (arg.value,)))
    return ir.Builtin(e.span, kind, name, (arg,))


def _min_max(e: ast.Call, name: str, args: list[ir.Expr], ctx: Context) -> ir.Expr:
    if len(args) == 1 and isinstance(args[0], ir.Const) and args[0].kind == "table":
        values = args[0].value
        if not values:
            raise ctx.error(f"'{name}' of an empty collection", e.span)
        value = min(values) if name == "min" else max(values)
        return ir.Const(e.span, kind_of_value(value), value)
    if len(args) < 2:
        raise ctx.error(f"'{name}' takes two or more numbers, or one constant collection",
                        e.span)
    for a in args:
        numeric(a, name, ctx)
    kind = "float" if any(a.kind == "float" for a in args) else "int"
    out = args[0]
    for a in args[1:]:
        if isinstance(out, ir.Const) and isinstance(a, ir.Const):
            out = ir.Const(e.span, kind, apply_builtin(name, (out.value, a.value)))
        else:
            out = ir.Builtin(e.span, kind, name, (out, a))
    return out
