"""Lowering: AST statements and expressions -> IR, evaluating what is known at compile time.

Names resolve through a `Scope` (constants, locals, loop variables) and then the `Env` (the
program's declarations); both, and the `Context` of what each place may read, are
alta.environment's records. Lowering recurses through the AST; each operation's type rules
and folding are alta.operations'. What lowering checks itself: what each place may read,
labels (tokens vs enum members), comparisons that can never hold, and locals. Whatever is
known at compile time becomes an `ir.Const` (constants, operations on them, comprehensions,
`if`s with a constant condition); loops over constant collections unroll, and helper calls
are inlined: a helper's statements become one expression (`ir.LetIn` for its run-time
arguments and lets, `ir.Cond` for its `if`s). What is left reads only variables, heads,
locals and the input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alta import ast, ir
from alta.environment import (
    BUILTINS,
    INPUT_NAMES,
    ConstBinding,
    Context,
    LocalBinding,
    Scope,
    no_head_here,
)
from alta.errors import Span
from alta.operations import (
    binary,
    builtin,
    check_constant_write,
    coerce,
    compare,
    constant_set,
    index,
    join_kinds,
    kind_of_value,
    membership,
    require_assignable,
    require_truth,
    unary,
)
from alta.semantics import show

MAX_UNROLL = 100_000  # guard against runaway compile-time loops


# ---- statements -------------------------------------------------------------------------

def lower_block(stmts, scope: Scope, ctx: Context) -> tuple[ir.Stmt, ...]:
    """A block's statements; a `let` binds for the statements after it."""
    out: list[ir.Stmt] = []
    for stmt in stmts:
        lowered, scope = _lower_stmt(stmt, scope, ctx)
        out.extend(lowered)
    return tuple(out)


def _lower_stmt(s: ast.Stmt, scope: Scope, ctx: Context) -> tuple[list[ir.Stmt], Scope]:
    """What one statement becomes (loops unrolled, decided `if`s gone), and the scope for
    the statements after it."""
    match s:
        case ast.Pass():
            return [], scope
        case ast.Assign():
            return [_lower_assign(s, scope, ctx)], scope
        case ast.Let():
            value = lower_expr(s.value, scope, ctx)
            scope, uid = _bind_let(s, value, scope, ctx)
            return ([] if uid is None else [ir.LetStmt(s.span, uid, s.target.id, value)]), scope
        case ast.If():
            return _lower_if(list(s.branches), s.orelse, scope, ctx), scope
        case ast.For():
            out = []
            for item in _iterate(s, scope, ctx):
                inner = bind_targets(s.targets, item, scope.child(), s.iterable.span, ctx)
                out.extend(lower_block(s.body, inner, ctx))
            return out, scope
        case ast.Return():
            raise ctx.error("'return' outside a function", s.span)
    raise AssertionError(s)


def _lower_if(branches, orelse, scope: Scope, ctx: Context) -> list[ir.Stmt]:
    if not branches:
        return list(lower_block(orelse, scope.child(), ctx))
    (cond_ast, body), rest = branches[0], branches[1:]
    cond = lower_expr(cond_ast, scope, ctx)
    require_truth(cond, "an 'if' condition", ctx)
    if isinstance(cond, ir.Const):  # decided at compile time: keep one branch
        if cond.value:
            return list(lower_block(body, scope.child(), ctx))
        return _lower_if(rest, orelse, scope, ctx)
    then = lower_block(body, scope.child(), ctx)
    other = tuple(_lower_if(rest, orelse, scope, ctx))
    # Kept even when neither branch assigns anything (`if h == 0: pass`, a body of lets):
    # the interpreter still evaluates the condition, so reading an undefined value there
    # is an error as everywhere else. The compiler's per-variable slices leave it out.
    return [ir.IfStmt(cond_ast.span, cond, then, other)]


def _lower_assign(s: ast.Assign, scope: Scope, ctx: Context) -> ir.Stmt:
    name, env = state_ref(s.target, scope, ctx), ctx.env
    if isinstance(name, ast.Index):  # `T[0] = ...` for a constant table or a local
        raise ctx.error(f"cannot assign to an item of '{name.value.id}': only variables "
                        "(and a family's members, 'depth[0] = ...') are assigned", name.span)
    if ctx.in_function:
        raise ctx.error(f"helper function '{ctx.in_function}' cannot assign '{name.id}': "
                        "helpers are pure; return a value instead", s.span)
    if name.id in env.head_names:
        raise ctx.error(f"cannot write to head '{name.id}': head outputs are computed by "
                        "attention; write a variable instead", name.span)
    if name.id not in env.variables:
        if scope.lookup(name.id) is not None:
            raise ctx.error(f"cannot assign to '{name.id}': it is a constant or a local "
                            "('let' bindings are fixed)", name.span)
        raise env.undefined(name, "variable")
    var = env.variables[name.id]
    value = lower_expr(s.value, scope, ctx)
    require_assignable(value, var.type, var.name, s.value.span, ctx)
    check_labels(s.value, scope, var.name, ctx)
    check_constant_write(value, var.type, var.name, s.value.span, ctx)
    return ir.Assign(s.span, var.name, value)


def _bind_let(s: ast.Let, value: ir.Expr, scope: Scope,
              ctx: Context) -> tuple[Scope, int | None]:
    """Binds a `let` in this block: a constant, or a run-time local (its uid)."""
    _bind_local_name(s.target, scope, ctx)
    if isinstance(value, ir.Const):
        generic = _generic(s.value, scope)
        return scope.bind(s.target.id, ConstBinding(value.value, value.kind, generic)), None
    uid = next(ctx.effects.uids)
    return scope.bind(s.target.id, LocalBinding(uid, value.kind)), uid


def _bind_local_name(name: ast.Name, scope: Scope, ctx: Context) -> None:
    if name.id in ctx.env.declared or name.id in INPUT_NAMES or name.id in BUILTINS:
        raise ctx.error(f"local '{name.id}' would shadow a program name; choose another",
                        name.span)
    if name.id in scope.names:
        raise ctx.error(f"duplicate local '{name.id}' in this block", name.span)


def constant_items(e: ast.Expr, scope: Scope, ctx: Context, what: str):
    """The items of a constant collection in order (a set's in sorted order)."""
    value = lower_expr(e, scope, ctx)
    if not isinstance(value, ir.Const) or not isinstance(value.value, (tuple, frozenset)):
        raise ctx.error(f"{what} runs over a constant collection (a list, tuple, set or "
                        "range a..b known at compile time)", e.span)
    items = value.value
    return sorted(items) if isinstance(items, frozenset) else items


def _iterate(s: ast.For, scope: Scope, ctx: Context):
    items = constant_items(s.iterable, scope, ctx, "a 'for' loop")
    if len(items) > MAX_UNROLL:
        raise ctx.error(f"loop would unroll {len(items)} times (limit {MAX_UNROLL})",
                        s.iterable.span)
    return items


def bind_targets(targets, item, scope: Scope, span: Span, ctx: Context) -> Scope:
    if len(targets) == 1:
        values = (item,)
    elif isinstance(item, tuple) and len(item) == len(targets):
        values = item
    else:
        raise ctx.error(f"cannot unpack {show(item)} into {len(targets)} names", span)
    for target, value in zip(targets, values):
        _bind_local_name(target, scope, ctx)
        scope = scope.bind(target.id, ConstBinding(value, kind_of_value(value), generic=True))
    return scope


# ---- expressions --------------------------------------------------------------------------

def const_eval(expr: ast.Expr, scope: Scope, ctx: Context):
    """The value of an expression that must be known at compile time."""
    value = lower_expr(expr, scope, ctx.at("const"))
    if not isinstance(value, ir.Const):
        raise ctx.error("expected a value known at compile time", expr.span)
    return value.value


def lower_expr(e: ast.Expr, scope: Scope, ctx: Context) -> ir.Expr:
    """One expression, checked; an `ir.Const` wherever its value is known."""
    match e:
        case ast.IntLit():
            return ir.Const(e.span, "int", e.value)
        case ast.FloatLit():
            return ir.Const(e.span, "float", e.value)
        case ast.BoolLit():
            return ir.Const(e.span, "bool", e.value)
        case ast.StrLit():
            return ir.Const(e.span, "int", ctx.env.token_id(e))
        case ast.Name():
            return _lower_name(e, scope, ctx)
        case ast.Unary():
            return unary(e, lower_expr(e.operand, scope, ctx), ctx)
        case ast.Binary():
            return binary(e, lower_expr(e.left, scope, ctx), lower_expr(e.right, scope, ctx), ctx)
        case ast.Compare():
            return _lower_compare(e, scope, ctx)
        case ast.BoolOp():
            return _lower_bool_op(e, scope, ctx)
        case ast.IfExpr():
            return _lower_if_expr(e, scope, ctx)
        case ast.Collection():
            return _lower_collection(e, scope, ctx)
        case ast.Comprehension():
            return _lower_comprehension(e, scope, ctx)
        case ast.Index():
            member = state_ref(e, scope, ctx)
            if member is not e:
                return _read_state(member, ctx)
            return index(e, lower_expr(e.value, scope, ctx), lower_expr(e.index, scope, ctx), ctx)
        case ast.Call():
            return _lower_call(e, scope, ctx)
    raise AssertionError(e)


def _lower_name(e: ast.Name, scope: Scope, ctx: Context) -> ir.Expr:
    env = ctx.env
    match scope.lookup(e.id):
        case ConstBinding(value=value, kind=kind):
            return ir.Const(e.span, kind, value)
        case LocalBinding(uid=uid, kind=kind):
            return ir.Local(e.span, kind, uid, e.id)
    if e.id in INPUT_NAMES:
        if ctx.where != "init":
            raise ctx.error(f"'{e.id}' can only be read in a variable's initialiser; "
                            "copy it into a variable there", e.span)
        return ir.InputRead(e.span, "int", e.id)
    if e.id in env.families:
        state_ref(e, scope, ctx)  # raises: a family is read through its members
    if e.id in env.state_names:
        return _read_state(e, ctx)
    if e.id in env.functions or e.id in BUILTINS:
        raise ctx.error(f"'{e.id}' is a function: call it, e.g. {e.id}(...)", e.span)
    if e.id in env.enums:
        raise ctx.error(f"'{e.id}' is an enum type, not a value", e.span)
    if e.id in env.pending_constants:
        line = env.pending_constants[e.id].line
        raise ctx.error(f"constant '{e.id}' is used before its declaration on line {line}: "
                        "a constant may only use constants declared before it", e.span)
    raise env.undefined(e)


def state_ref(e: ast.Expr, scope: Scope, ctx: Context) -> ast.Expr:
    """A family's member as written, `depth[k]`, -> the `Name` it goes by (`depth[2]`, its
    index evaluated at compile time in `scope`); every misuse of a family or an index on a
    variable is an error here. Any other expression comes back unchanged (a constant table
    indexed, a plain name), as do members before the families are expanded (constants
    cannot read them: lowering the name says so)."""
    env = ctx.env
    if isinstance(e, ast.Name) and e.id in env.families and scope.lookup(e.id) is None:
        family = env.families[e.id]
        raise ctx.error(f"'{e.id}' is a family of {family.what}s ({family.describe()}): "
                        f"name one of its members, e.g. '{family.member(family.indices[0])}'",
                        e.span)
    if not isinstance(e, ast.Index):
        return e
    base = state_ref(e.value, scope, ctx) if isinstance(e.value, ast.Index) else e.value
    if not isinstance(base, ast.Name) or scope.lookup(base.id) is not None:
        return e
    if base.id in env.families:
        return _member(env.families[base.id], e, scope, ctx)
    if base.id in env.state_names and base.id not in env.family_names:
        what, type_ = (("head", env.heads.get(base.id)) if base.id in env.head_names else
                       ("variable", env.variables.get(base.id)))
        shown = f" ({type_.type.describe()})" if type_ is not None else ""
        raise ctx.error(f"'{base.id}' is a {what}{shown}, not a table or a family: only "
                        "constant tables and families of declarations ('for k in ...:' "
                        "around 'var' and 'head' lines) take an index", e.span)
    return e


def state_name(e: ast.StateRef, scope: Scope, ctx: Context, role: str) -> ast.Name:
    """Where the syntax names a variable or head (`role`: a head's value, the output):
    the plain name, or the family member `e` names."""
    name = state_ref(e, scope, ctx)
    if isinstance(name, ast.Name):
        return name
    base = name.value
    if isinstance(base, ast.Name) and base.id not in ctx.env.declared:
        raise ctx.env.undefined(base, "variable")
    raise ctx.error(f"{role} must be a variable or a family's member, not an item of a "
                    "table", name.span)


def _member(family, e: ast.Index, scope: Scope, ctx: Context) -> ast.Name:
    """The member `family[INDEX]` names, as a `Name` spanning `e`."""
    index = lower_expr(e.index, scope, ctx)
    if not isinstance(index, ir.Const):
        raise ctx.error(f"the index of family '{family.name}' must be known at compile time "
                        "(a constant, a parameter or a loop variable), but this one is known "
                        "only at run time", e.index.span)
    if index.kind not in ("int", "bool") or isinstance(index.value, bool):
        raise ctx.error(f"the index of family '{family.name}' must be an integer, got "
                        f"{show(index.value)}", e.index.span)
    if index.value not in family.indices:
        raise ctx.error(f"family '{family.name}' has no member {family.member(index.value)}: "
                        f"its members are {family.describe()} (line {family.span.line})",
                        e.index.span)
    return ast.Name(e.span, family.member(index.value))


def _read_state(e: ast.Name, ctx: Context) -> ir.Expr:
    env = ctx.env
    is_head = e.id in env.head_names
    if ctx.where == "const":
        raise ctx.error(f"this needs a value known at compile time, but '{e.id}' is a "
                        f"{'head' if is_head else 'variable'}, known only at run time", e.span)
    if ctx.where == "init":
        raise ctx.error(f"an initialiser cannot read '{e.id}': initialisers read only "
                        "'token', 'position' and constants", e.span)
    if is_head and ctx.where != "mlp":
        raise ctx.error(no_head_here("this expression", e.id), e.span)
    ctx.effects.reads.add(e.id)
    type_ = env.heads[e.id].type if is_head else env.variables[e.id].type
    return ir.Read(e.span, ir.kind_of(type_), e.id, is_head)


def _lower_compare(e: ast.Compare, scope: Scope, ctx: Context) -> ir.Expr:
    left = lower_expr(e.left, scope, ctx)
    right = lower_expr(e.right, scope, ctx)
    if e.op in ("in", "not in"):
        return membership(e, left, right, ctx)
    out = compare(e, left, right, ctx)
    if isinstance(out, ir.Compare) and e.op in ("==", "!="):
        check_labels(e.right, scope, state_ref(e.left, scope, ctx), ctx)
        check_labels(e.left, scope, state_ref(e.right, scope, ctx), ctx)
        _check_comparable_value(left, right, _generic(e.right, scope), ctx)
        _check_comparable_value(right, left, _generic(e.left, scope), ctx)
    return out


def _check_comparable_value(read: ir.Expr, const: ir.Expr, generic: bool,
                            ctx: Context) -> None:
    """`x == 7` where 7 is not a value of x can never hold (nor `x != 7` fail): an error
    wherever it is written (MLP, halting condition, output filter), a warning where the
    constant comes from a loop variable or a helper's argument (generic code, unrolled or
    inlined at compile time, where such a case is expected)."""
    if not (isinstance(read, ir.Read) and isinstance(const, ir.Const)):
        return
    env = ctx.env
    type_ = env.heads[read.name].type if read.is_head else env.variables[read.name].type
    if isinstance(type_, ir.SetValued) or type_.contains(coerce(const.value, read.kind)):
        return
    message = (f"{show(const.value)} is not a value of '{read.name}' ({type_.describe()}), so "
               "this comparison is decided in advance")
    if not generic:
        raise ctx.error(message, const.span)
    ctx.warn(message + " (here, in code unrolled or inlined at compile time)", const.span)


def _generic(e: ast.Expr, scope: Scope) -> bool:
    """Whether `e` uses a name bound by compile-time code generation (see ConstBinding)."""
    return any(isinstance(binding := scope.lookup(name.id), ConstBinding) and binding.generic
               for name in ast_names(e))


def ast_names(node):
    """Every `Name` in an AST expression."""
    return (n for n in ast.walk(node) if isinstance(n, ast.Name))


# ---- labelled values: tokens and enum members -------------------------------------------

def _labels_of(e: ast.Expr, scope: Scope, ctx: Context):
    """(node, domain) for the parts of `e` that are labelled values written as such:
    string literals (tokens) and enum members, through the branches of `a if c else b`.
    (Reads of variables are integers like any categorical value, and may be copied
    between categorical variables of any kind.)"""
    env = ctx.env
    match e:
        case ast.StrLit():
            yield e, "vocab"
        case ast.Name(id=name) if name in env.enum_of_member:
            binding = scope.lookup(name)
            if isinstance(binding, ConstBinding) and env.globals.names.get(name) is binding:
                yield e, f"enum {env.enum_of_member[name]}"
        case ast.IfExpr():
            yield from _labels_of(e.then, scope, ctx)
            yield from _labels_of(e.orelse, scope, ctx)


def check_labels(value: ast.Expr, scope: Scope, target: ast.Expr | str, ctx: Context) -> None:
    """A string literal (a token) where an enum member belongs, a member of another enum,
    or a member where a token belongs is a type error: both are integers, but they name
    different things. `target` is the variable written, or the expression compared with
    (checked when it is a variable or head read as such)."""
    if isinstance(target, ast.Name) and target.id in ctx.env.state_names:
        target = target.id
    if not isinstance(target, str) or ctx.env.label_domains.get(target) is None:
        return
    want = ctx.env.label_domains[target]
    for node, got in _labels_of(value, scope, ctx):
        if got != want:
            what = f'"{node.value}"' if isinstance(node, ast.StrLit) else f"'{node.id}'"
            raise ctx.error(f"type error: {what} is {_domain_words(got)}, but '{target}' "
                            f"holds {_domain_words(want, plural=True)}", node.span)


def _domain_words(domain: str, plural: bool = False) -> str:
    if domain == "vocab":
        return "tokens (vocab)" if plural else "a token (vocab)"
    enum = domain.removeprefix("enum ")
    return f"members of enum {enum}" if plural else f"a member of enum {enum}"


# ---- logic, conditionals, collections ----------------------------------------------------

def _lower_bool_op(e: ast.BoolOp, scope: Scope, ctx: Context) -> ir.Expr:
    out = None
    for item in e.values:
        value = lower_expr(item, scope, ctx)
        require_truth(value, f"an operand of '{e.op}'", ctx)
        if out is None:
            out = value
        elif isinstance(out, ir.Const):  # short-circuit at compile time
            decided = bool(out.value) if e.op == "or" else not out.value
            out = ir.Const(out.span, "bool", bool(out.value)) if decided else value
        else:
            out = ir.Logical(e.span, "bool", e.op, out, value)
    if isinstance(out, ir.Const):
        return ir.Const(out.span, "bool", bool(out.value))
    if out.kind == "bool":
        return out
    return ir.Compare(out.span, "bool", "!=", out, ir.Const(out.span, out.kind, 0))


def _lower_if_expr(e: ast.IfExpr, scope: Scope, ctx: Context) -> ir.Expr:
    cond = lower_expr(e.cond, scope, ctx)
    require_truth(cond, "a condition", ctx)
    if isinstance(cond, ir.Const):
        return lower_expr(e.then if cond.value else e.orelse, scope, ctx)
    then = lower_expr(e.then, scope, ctx)
    orelse = lower_expr(e.orelse, scope, ctx)
    return ir.Cond(e.span, join_kinds(then, orelse, e.span, ctx), cond, then, orelse)


def _lower_collection(e: ast.Collection, scope: Scope, ctx: Context) -> ir.Expr:
    items = [lower_expr(i, scope, ctx) for i in e.items]
    if all(isinstance(i, ir.Const) for i in items):
        values = [i.value for i in items]
        if e.kind == "set":
            return constant_set(values, e.span, ctx)
        return ir.Const(e.span, "table", tuple(values))
    if e.kind != "set":
        raise ctx.error("a list or tuple must be known at compile time", e.span)
    # A set built from run-time integers: union of singletons.
    out = None
    for item in items:
        if item.kind not in ("int", "bool"):
            raise ctx.error("set elements must be integers", item.span)
        single = ir.Builtin(item.span, "set", "singleton", (item,))
        out = single if out is None else ir.Binary(e.span, "set", "|", out, single)
    return out


def _lower_comprehension(e: ast.Comprehension, scope: Scope, ctx: Context) -> ir.Expr:
    values = [const_eval(e.element, inner, ctx)
              for inner in _comprehension_scopes(e.clauses, scope, ctx)]
    if e.kind == "set":
        return constant_set(values, e.span, ctx)
    return ir.Const(e.span, "table", tuple(values))


def _comprehension_scopes(clauses: tuple[ast.CompFor, ...], scope: Scope, ctx: Context):
    """The scopes the element is evaluated in, in order: one per combination of items of
    the clauses (the first outermost) that passes every clause's condition."""
    if not clauses:
        yield scope
        return
    first, rest = clauses[0], clauses[1:]
    for item in constant_items(first.iterable, scope, ctx, "a comprehension"):
        inner = bind_targets(first.targets, item, scope.child(), first.iterable.span, ctx)
        if first.condition is None or const_eval(first.condition, inner, ctx):
            yield from _comprehension_scopes(rest, inner, ctx)


# ---- calls: helpers are inlined (built-ins are alta.operations') ---------------------------

def _lower_call(e: ast.Call, scope: Scope, ctx: Context) -> ir.Expr:
    name, env = e.func.id, ctx.env
    if name in BUILTINS:
        return builtin(e, [lower_expr(a, scope, ctx) for a in e.args], ctx)
    if name not in env.functions:
        if scope.lookup(name) is not None or name in env.declared:
            raise ctx.error(f"'{name}' is not a function", e.func.span)
        raise env.undefined(e.func, "function")
    func = env.functions[name]
    if len(e.args) != len(func.params):
        raise ctx.error(f"'{name}' takes {len(func.params)} argument(s), got "
                        f"{len(e.args)}", e.span)
    if name in ctx.inlining:
        chain = " -> ".join(ctx.inlining[ctx.inlining.index(name):] + (name,))
        raise ctx.error(f"recursive call ({chain}): helper functions are inlined and "
                        "cannot be recursive", e.span)
    ctx.effects.called.add(name)
    args = [lower_expr(a, scope, ctx) for a in e.args]
    inner = env.globals.child()
    lets = []
    for param, arg in zip(func.params, args):
        _bind_local_name(param, inner, ctx)
        if isinstance(arg, ir.Const):
            inner = inner.bind(param.id, ConstBinding(arg.value, arg.kind, generic=True))
        else:
            uid = next(ctx.effects.uids)
            inner = inner.bind(param.id, LocalBinding(uid, arg.kind))
            lets.append((uid, param.id, arg))
    body = _function_body(list(func.body), inner, replace(ctx, inlining=ctx.inlining + (name,)),
                          func)
    for uid, pname, arg in reversed(lets):
        body = ir.LetIn(e.span, body.kind, uid, pname, arg, body)
    return body


@dataclass(frozen=True)
class _Bind:
    """A pseudo-statement binding loop variables, used when loops unroll inside helpers."""

    targets: tuple[ast.Name, ...]
    value: object
    span: Span


def _function_body(stmts: list, scope: Scope, ctx: Context, func: ast.FuncDecl) -> ir.Expr:
    """A helper's statements (lets, ifs, loops, returns) become one expression."""
    while stmts:
        s, rest = stmts[0], stmts[1:]
        match s:
            case ast.Pass():
                stmts = rest
            case _Bind():
                scope = bind_targets(s.targets, s.value, scope.child(), s.span, ctx)
                stmts = rest
            case ast.Return():
                return lower_expr(s.value, scope, ctx)
            case ast.Let():
                value = lower_expr(s.value, scope, ctx)
                scope, uid = _bind_let(s, value, scope.child(), ctx)
                if uid is not None:
                    body = _function_body(rest, scope, ctx, func)
                    return ir.LetIn(s.span, body.kind, uid, s.target.id, value, body)
                stmts = rest
            case ast.For():
                unrolled = []
                for item in _iterate(s, scope, ctx):
                    unrolled.append(_Bind(s.targets, item, s.iterable.span))
                    unrolled.extend(s.body)
                stmts = unrolled + rest
            case ast.If():
                (cond_ast, body), others = s.branches[0], s.branches[1:]
                orelse = [ast.If(s.span, others, s.orelse)] if others else list(s.orelse)
                cond = lower_expr(cond_ast, scope, ctx)
                require_truth(cond, "an 'if' condition", ctx)
                if isinstance(cond, ir.Const):
                    stmts = (list(body) if cond.value else orelse) + rest
                    continue
                then = _function_body(list(body) + rest, scope, ctx, func)
                other = _function_body(orelse + rest, scope, ctx, func)
                return ir.Cond(s.span, join_kinds(then, other, s.span, ctx), cond, then, other)
            case ast.Assign():
                _lower_assign(s, scope, ctx)  # raises: helpers are pure
                raise AssertionError(s)
            case _:
                raise AssertionError(s)
    raise ctx.error(f"helper function '{func.name.id}' can reach its end without 'return'",
                    func.name.span)
