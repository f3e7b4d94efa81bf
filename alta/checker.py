"""AST -> Program IR: name resolution, types, compile-time evaluation and static checks.

The checker evaluates everything that is known at compile time (constants, enums, tables,
comprehensions, loops over constant collections, helper functions) and leaves a Program IR
whose expressions only read variables, heads, locals and the input. Errors are located
`AltaError`s; warnings (unused variables and heads, comparisons that can never hold) travel
on the Program.

This module checks the declarations, in the order in which their names become available to
later ones (vocabulary; enums, constants and helpers; settings and framing; variables, then
heads; the MLP; halting and output), each stage making the next `Env`
(alta.environment). The statements and expressions inside them are lowered by
alta.lowering.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from alta import ast, ir
from alta.environment import (
    BUILTINS,
    INPUT_NAMES,
    ConstBinding,
    Context,
    Effects,
    Env,
    member_name,
    no_head_here,
)
from alta.errors import AltaError, Source, Span, read_text
from alta.families import expand_state
from alta.lowering import (
    MAX_UNROLL,
    ast_names,
    check_labels,
    const_eval,
    lower_block,
    lower_expr,
    state_name,
)
from alta.means import MAX_DERIVED_MEANS, every_mean, rational, threshold_values
from alta.operations import (
    check_constant_write,
    coerce,
    is_numeric,
    kind_of_value,
    require_assignable,
    require_truth,
)
from alta.selection import head_operand, selection_terms
from alta.semantics import SET_ELEMENTS, show, too_close
from alta.syntax import parse

__all__ = ["BUILTINS", "DEFAULT_MAX_LAYERS", "INPUT_NAMES", "MAX_UNROLL", "check_file",
           "check_source"]

DEFAULT_MAX_LAYERS = 1000


Params = Mapping[str, object]  # parameter name -> value (a Python value, or text to parse)


def check_file(path: str | Path, params: Params | None = None) -> ir.Program:
    """Read, parse and check one `.alta` file; `params` overrides its `param` defaults."""
    return check_source(read_text(path), str(path), params)


def check_source(text: str, path: str = "<string>", params: Params | None = None) -> ir.Program:
    """Parse and check ALTA source text; `params` overrides its `param` defaults (values
    are Python values or text as `--set NAME=VALUE` gives it: `100`, `0.5`, `true`)."""
    module = parse(text, path)
    source = Source(text if text.endswith("\n") else text + "\n", path)
    return _check(module, source, Path(path).stem, dict(params or {}))


# ---- the whole program ------------------------------------------------------------------

def _check(module: ast.Module, source: Source, default_name: str,
           params: dict[str, object]) -> ir.Program:
    """The checker's stages, in the order names become available to later ones."""
    decls: dict[type, list] = {}
    for d in module.decls:
        decls.setdefault(type(d), []).append(d)
    families = frozenset(d.name.id for f in module.decls if isinstance(f, ast.FamilyDecl)
                         for d in f.decls)
    env = Env(source, state_names=frozenset(d.name.id for d in module.decls
                                            if isinstance(d, (ast.VarDecl, ast.HeadDecl)))
              | families, family_names=families)
    ctx = Context(env, Effects(), "const")
    programs = _single(decls, ast.ProgramDecl, "program", ctx)
    ctx = replace(ctx, env=_check_vocab(_single(decls, ast.VocabDecl, "vocab", ctx), ctx))
    ctx = replace(ctx, env=_check_compile_time_names(module.decls, params, ctx))
    settings = _check_settings(decls.get(ast.SettingDecl, []), ctx)
    framing = _check_framing(_single(decls, ast.InputDecl, "input", ctx), ctx)
    ctx = replace(ctx, env=_check_state(module.decls, ctx,
                                        _MeanUses(module.decls, settings.get("max_length"),
                                                  ctx.env.globals)))
    env = ctx.env
    mlps = _single(decls, ast.MlpDecl, "mlp", ctx)
    mlp = lower_block(mlps[0].body, env.globals.child(), ctx.at("mlp")) if mlps else ()
    halt = _check_halt(_single(decls, ast.HaltDecl, "halt", ctx), settings, ctx)
    output = _check_output(_single(decls, ast.OutputDecl, "output", ctx), ctx)
    _warn_unused(ctx)
    return ir.Program(
        name=programs[0].name.id if programs else default_name, source=source,
        vocab=env.vocab, framing=framing, variables=tuple(env.variables.values()),
        heads=tuple(env.heads.values()), mlp=mlp, halt=halt,
        max_layers=settings.get("max_layers", DEFAULT_MAX_LAYERS),
        max_length=settings.get("max_length"), output=output,
        warnings=tuple(ctx.effects.warnings),
        params=tuple((d.name.id, env.globals.lookup(d.name.id).value)
                     for d in decls.get(ast.ParamDecl, [])))


def _single(by_kind: dict[type, list], cls: type, keyword: str, ctx: Context) -> list:
    found = by_kind.get(cls, [])
    if len(found) > 1:
        raise ctx.error(f"duplicate '{keyword}' declaration: already declared on line "
                        f"{found[0].span.line}", found[1].span)
    return found


def _declare(declared: dict[str, Span], name: ast.Name, what: str, ctx: Context) -> None:
    """Adds `name` to `declared`, the names declared so far."""
    if name.id in declared:
        first = declared[name.id]
        raise ctx.error(f"duplicate name '{name.id}': already declared on line {first.line}",
                        name.span)
    if name.id in BUILTINS or name.id in INPUT_NAMES:
        raise ctx.error(f"'{name.id}' is a built-in name and cannot be declared as a {what}",
                        name.span)
    declared[name.id] = name.span


def _check_compile_time_names(decls, params: dict[str, object], ctx: Context) -> Env:
    """Enums, constants, parameters and helpers. Their names are declared first, in source
    order (so a duplicate is reported where it comes second); enums and helpers may then be
    used anywhere, whatever the order, while a constant (or parameter) may only use
    constants declared before it (they are evaluated in source order, and this rules out
    cycles). `params` overrides parameters' defaults."""
    declared, pending, functions = dict(ctx.env.declared), {}, {}
    for d in decls:
        match d:
            case ast.EnumDecl():
                _declare(declared, d.name, "enum", ctx)
                for member in d.members:
                    _declare(declared, member, "enum member", ctx)
            case ast.ConstDecl() | ast.ParamDecl():
                _declare(declared, d.name, "constant" if isinstance(d, ast.ConstDecl)
                         else "parameter", ctx)
                pending[d.name.id] = d.name.span
            case ast.FuncDecl():
                _declare(declared, d.name, "function", ctx)
                functions[d.name.id] = d
    # Each enum's members are 0, 1, ...
    enums = {d.name.id: tuple(m.id for m in d.members) for d in decls
             if isinstance(d, ast.EnumDecl)}
    enum_of_member = {member: enum for enum, members in enums.items() for member in members}
    globals_ = ctx.env.globals
    for members in enums.values():
        for i, member in enumerate(members):
            globals_ = globals_.bind(member, ConstBinding(i, "int"))
    env = replace(ctx.env, declared=declared, functions=functions, enums=enums,
                  enum_of_member=enum_of_member, globals=globals_)
    _check_param_names([d for d in decls if isinstance(d, ast.ParamDecl)], params, ctx)
    for d in decls:
        if isinstance(d, (ast.ConstDecl, ast.ParamDecl)):
            env = replace(env, pending_constants=dict(pending))
            value = (const_eval(d.value, env.globals, replace(ctx, env=env))
                     if isinstance(d, ast.ConstDecl) else
                     _param_value(d, params, replace(ctx, env=env)))
            binding = ConstBinding(value, kind_of_value(value))
            del pending[d.name.id]
            env = replace(env, globals=env.globals.bind(d.name.id, binding))
    return replace(env, pending_constants={})


def _check_param_names(decls: list[ast.ParamDecl], params: dict[str, object],
                       ctx: Context) -> None:
    """Every parameter to be set is one the program declares."""
    names = [d.name.id for d in decls]
    for name in params:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            raise AltaError.at(
                f"{ctx.env.source.path} has no parameter '{name}' to set",
                notes=((f"did you mean '{close[0]}'?",) if close else ()) +
                      (f"its parameters: {', '.join(names)}" if names else
                       "it declares no parameters ('param NAME = VALUE')",))


_PARAM_KINDS = {"int": "an integer", "float": "a number", "bool": "a boolean"}


def _param_value(d: ast.ParamDecl, params: dict[str, object], ctx: Context):
    """A parameter's value: its default, or the value `params` sets, of the default's kind
    and among the values its `in ...` allows."""
    default = const_eval(d.value, ctx.env.globals, ctx)
    kind = kind_of_value(default)
    if kind not in _PARAM_KINDS or (kind == "float" and not math.isfinite(default)):
        raise ctx.error(f"a parameter's value must be an integer, a number or a boolean, got "
                        f"{show(default)}", d.value.span)
    allowed = None
    if d.allowed is not None:
        allowed = const_eval(d.allowed, ctx.env.globals, ctx)
        if not isinstance(allowed, (tuple, frozenset)) or not allowed:
            raise ctx.error("a parameter's allowed values must be a range or a set, e.g. "
                            "'in 1..100' or 'in {8, 16, 32}'", d.allowed.span)
    if allowed is not None and not _among(default, allowed):
        raise ctx.error(f"the default {show(default)} is not among the values 'in "
                        f"{_text(d.allowed, ctx)}' allows", d.value.span)
    if d.name.id not in params:
        return default
    raw = params[d.name.id]
    value = _param_literal(raw) if isinstance(raw, str) else raw
    if kind == "float" and kind_of_value(value) == "int":
        value = float(value)
    if kind_of_value(value) != kind or (kind == "float" and not math.isfinite(value)):
        shown = repr(raw) if isinstance(raw, str) else show(raw)
        raise ctx.error(f"parameter '{d.name.id}' is {_PARAM_KINDS[kind]} (its default is "
                        f"{show(default)}): cannot set it to {shown}", d.name.span)
    if allowed is not None and not _among(value, allowed):
        raise ctx.error(f"parameter '{d.name.id}' is set to {show(value)}, which is not among "
                        f"the values 'in {_text(d.allowed, ctx)}' allows", d.allowed.span)
    return value


def _among(value, allowed) -> bool:
    """`value in allowed`, with booleans and numbers kept apart (True is not 1 here)."""
    return any(type(v) is type(value) and v == value for v in allowed) or (
        isinstance(value, float) and any(kind_of_value(v) == "int" and v == value
                                         for v in allowed))


def _param_literal(text: str):
    """The value `--set NAME=TEXT` means: an integer, a number or true/false (else the
    text itself, which no parameter accepts)."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for parse_as in (int, float):
        try:
            return parse_as(text)
        except ValueError:
            pass
    return text


def _text(expr: ast.Expr, ctx: Context) -> str:
    """The source text of a one-line expression."""
    span = expr.span
    if span.line != span.end_line:
        return "..."
    return ctx.env.source.line(span.line)[span.column - 1:span.end_column - 1]


def _check_settings(decls: list[ast.SettingDecl], ctx: Context) -> dict[str, int]:
    settings, lines = {}, {}
    for d in decls:
        if d.key in settings:
            raise ctx.error(f"duplicate '{d.key}' declaration: already declared on line "
                            f"{lines[d.key]}", d.span)
        settings[d.key] = _positive_int(d.value, d.key, ctx)
        lines[d.key] = d.span.line
    return settings


def _positive_int(expr: ast.Expr, what: str, ctx: Context) -> int:
    value = const_eval(expr, ctx.env.globals, ctx)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ctx.error(f"{what} must be a positive integer, got {show(value)}", expr.span)
    return value


# ---- vocabulary, framing, halting, output -------------------------------------------------

def _check_vocab(decls: list[ast.VocabDecl], ctx: Context) -> Env:
    if not decls:
        raise ctx.error("program has no 'vocab' declaration: list its tokens, e.g. "
                        'vocab "0" "1"', Span(1, 1, 1, 1))
    vocab: dict[str, int] = {}  # token -> id
    for tok in decls[0].tokens:
        if tok.value in vocab:
            raise ctx.error(f'duplicate token "{tok.value}" in vocab', tok.span)
        if not tok.value or any(c.isspace() for c in tok.value):
            raise ctx.error(f'token "{tok.value}" must be non-empty and contain no spaces',
                            tok.span)
        vocab[tok.value] = len(vocab)
    return replace(ctx.env, vocab=tuple(vocab))


def _check_framing(decls: list[ast.InputDecl], ctx: Context) -> tuple[ir.FrameItem, ...]:
    if not decls:
        return (ir.FrameItem("words"),)
    env = ctx.env
    items, inputs = [], 0
    for item in decls[0].items:
        if item.kind == "token":
            count = 1 if item.count is None else const_eval(item.count, env.globals, ctx)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ctx.error(f"a repeat count must be a non-negative integer, got "
                                f"{show(count)}", item.count.span)
            items.append(ir.FrameItem("token", env.token_id(item.token), count))
        else:
            inputs += 1
            items.append(ir.FrameItem(item.kind))
    if inputs != 1:
        raise ctx.error("'input' must place the input exactly once, as 'words' or 'chars'",
                        decls[0].span)
    placed = {item.token for item in items if item.kind == "token"}
    allow = []
    for lit in decls[0].allow:
        token = env.token_id(lit)
        if token not in placed:
            raise ctx.error(f'"{lit.value}" is not a framing token of this input, so the '
                            "input may contain it anyway: 'allow' lists only tokens that "
                            "the framing places", lit.span)
        if token not in allow:
            allow.append(token)
    if allow:
        at = next(i for i, item in enumerate(items) if item.kind != "token")
        items[at] = ir.FrameItem(items[at].kind, allow=tuple(allow))
    return tuple(items)


def _check_halt(decls: list[ast.HaltDecl], settings: dict, ctx: Context) -> ir.Expr | None:
    if not decls:
        if "max_layers" not in settings:
            raise ctx.error("program has no 'halt when ...' and no 'max_layers N': it "
                            "would never stop; declare one of them", Span(1, 1, 1, 1))
        return None
    halt = lower_expr(decls[0].condition, ctx.env.globals, ctx.at("state"))
    require_truth(halt, "the halting condition", ctx)
    return halt


def _check_output(decls: list[ast.OutputDecl], ctx: Context) -> ir.Output:
    if not decls:
        raise ctx.error("program has no 'output' declaration: say what 'alta run' prints, "
                        "e.g. 'output result at last'", Span(1, 1, 1, 1))
    d, env = decls[0], ctx.env
    name = state_name(d.variable, env.globals, ctx, "the output")
    var = env.variable(name, no_head_here("output", name.id))
    where = None
    if d.where is not None:
        where = lower_expr(d.where, env.globals, ctx.at("state"))
        require_truth(where, "an output filter", ctx)
    default = None
    if d.default is not None:
        default = const_eval(d.default, env.globals, ctx)
        check_labels(d.default, env.globals, var.name, ctx)
        if not var.type.contains(default):
            raise ctx.error(f"output default {show(default)} is not a value of "
                            f"'{var.name}' ({var.type.describe()})", d.default.span)
    ctx.effects.reads.add(var.name)
    return ir.Output(var.name, _output_at(d.at, ctx), where, default, d.span)


def _output_at(at: ast.Name | int | str, ctx: Context) -> int | str:
    """`at first`, `at last`, or the position index: a number or a constant's name."""
    if not isinstance(at, ast.Name):
        return at
    if ctx.env.globals.lookup(at.id) is None:
        known = ["first", "last", *(n for n in ctx.env.declared if ctx.env.globals.lookup(n))]
        close = difflib.get_close_matches(at.id, known, n=1)
        raise ctx.error(f"'output ... at' takes first, last, an integer or a constant; "
                        f"'{at.id}' is not a constant", at.span,
                        (f"did you mean '{close[0]}'?",) if close else ())
    value = const_eval(at, ctx.env.globals, ctx)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ctx.error(f"'output ... at' needs first, last or a non-negative integer; "
                        f"'{at.id}' is {show(value)}", at.span)
    return value


# ---- variables, heads ---------------------------------------------------------------------

@dataclass(frozen=True)
class _MeanUses:
    """What a numerical head without declared values needs to derive them: the MLP and
    helpers that read it (`_state_uses`), the program's max_length, and the scope of
    its constants (not a family's loop names: the MLP's loops bind their own)."""

    decls: tuple
    max_length: int | None
    scope: object
    underived: frozenset[str] = frozenset()  # variables declared `num` without values


def _check_state(decls, ctx: Context, uses: _MeanUses) -> Env:
    """Variables, then heads (which read variables); families (alta.families) become their
    members, each checked in a scope with its family's names bound."""
    written = [d for f in decls if isinstance(f, ast.FamilyDecl) for d in f.decls] + [
        d for d in decls if isinstance(d, (ast.VarDecl, ast.HeadDecl))]
    written.sort(key=lambda d: (isinstance(d, ast.HeadDecl), d.span.line, d.span.column))
    declared = dict(ctx.env.declared)
    for d in written:
        what = "variable" if isinstance(d, ast.VarDecl) else "head"
        _declare(declared, d.name, what if d.index is None else f"family of {what}s", ctx)
    env = replace(ctx.env, declared=declared)
    members, families = expand_state(decls, replace(ctx, env=env))
    var_decls = [m for m in members if isinstance(m.decl, ast.VarDecl)]
    head_decls = [m for m in members if isinstance(m.decl, ast.HeadDecl)]
    env = replace(env, head_names=frozenset(m.decl.name.id for m in head_decls),
                  state_names=env.state_names | {m.decl.name.id for m in members},
                  families=families)
    variables, domains, pending = {}, dict(env.label_domains), {}
    for m in var_decls:
        d = m.decl
        if _undeclared_num(d.type):  # values derived below, from what the MLP writes
            type_ = _initial_type(d, replace(ctx, env=replace(env, globals=m.scope)))
            pending[d.name.id] = True
        else:
            type_ = _check_type(d.type, replace(ctx, env=replace(env, globals=m.scope)))
        domains[d.name.id] = _label_domain(d.type, env)
        env = replace(env, label_domains=dict(domains), variables=dict(variables))
        variables[d.name.id] = _check_var(d, type_, replace(ctx, env=replace(env,
                                                                             globals=m.scope)))
    env = replace(env, variables=variables)
    uses = replace(uses, underived=frozenset(pending))
    heads = {}
    for m in head_decls:
        d = m.decl
        head = _check_head(d, replace(ctx, env=replace(env, globals=m.scope)), uses)
        heads[d.name.id] = head
        if isinstance(head.type, ir.Categorical):  # it yields the value's tokens or members
            domains[d.name.id] = domains.get(head.value)
    if pending:
        variables.update(_derive_variables({n: variables[n] for n in pending}, variables,
                                           heads, uses, replace(ctx, env=env)))
    return replace(env, variables=variables, heads=heads, label_domains=domains)


def _undeclared_num(t) -> bool:
    return isinstance(t, ast.NumType) and t.values is None


def _initial_type(d: ast.VarDecl, ctx: Context) -> ir.Numerical:
    """The type a variable declared `num` without values is checked with until its values
    are derived: its initial value, which must be a constant number."""
    if d.init is None:
        return ir.Numerical((0.0,))
    value = _constant(d.init, ctx.env.globals, frozenset(), ctx)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(_underived(d.name.id, "its initial value is not a constant number"),
                        d.init.span)
    return ir.Numerical((float(value),))


def _label_domain(t: ast.TypeExpr, env: Env) -> str | None:
    """What the values of a variable of type `t` name: tokens, an enum's members, or None."""
    match t:
        case ast.VocabType():
            return "vocab"
        case ast.CatType(size=ast.Name(id=enum)) if enum in env.enums:
            return f"enum {enum}"
    return None


def _check_type(t: ast.TypeExpr, ctx: Context) -> ir.ValueType:
    env = ctx.env
    match t:
        case ast.BoolType():
            return ir.Categorical(2)
        case ast.VocabType():
            return ir.Categorical(len(env.vocab), env.vocab)
        case ast.CatType(size=ast.Name(id=enum)) if enum in env.enums:
            return ir.Categorical(len(env.enums[enum]), env.enums[enum])
        case ast.CatType():
            return _categorical_type(t, ctx)
        case ast.NumType():
            return _numerical_type(t, ctx)
        case ast.SetType():
            return _set_type(t, ctx)
    raise AssertionError(t)


def _categorical_type(t: ast.CatType, ctx: Context) -> ir.Categorical:
    """`cat N` (values 0..N-1) or `cat a..b` (a to b, which may be negative)."""
    value = const_eval(t.size, ctx.env.globals, ctx)
    if isinstance(value, tuple):
        if not value or value != tuple(range(value[0], value[0] + len(value))) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ctx.error(f"a categorical range a..b needs integers a <= b, got "
                            f"{show(value)}", t.size.span)
        return ir.Categorical(len(value), low=value[0])
    return ir.Categorical(_positive_int(t.size, "a categorical range", ctx))


def _numerical_type(t: ast.NumType, ctx: Context) -> ir.Numerical:
    if t.values is None:
        raise ctx.error("declare the values here ('num {0, 0.5, 1}'): ALTA derives them only "
                        "for a numerical variable or head", t.span)
    values = const_eval(t.values, ctx.env.globals, ctx)
    if not isinstance(values, (frozenset, tuple)) or not values or not all(
            is_numeric(kind_of_value(v)) for v in values):
        raise ctx.error("a numerical type needs a non-empty set of numbers, e.g. "
                        "num {0, 0.5, 1}", t.values.span)
    declared = tuple(sorted({float(v) for v in values}))
    close = too_close(declared)
    if close is not None:
        raise ctx.error(f"declared values {close[0]!r} and {close[1]!r} are too close "
                        "to tell apart (numbers within a relative 1e-9 of a declared "
                        "value count as that value)", t.values.span)
    return ir.Numerical(declared)


def _set_type(t: ast.SetType, ctx: Context) -> ir.SetValued:
    size = _positive_int(t.size, "a set range", ctx)
    if size > SET_ELEMENTS:
        raise ctx.error(f"set variables hold at most {SET_ELEMENTS} values, got {size}",
                        t.size.span)
    if t.sets is None:
        if size > 12:
            raise ctx.error(f"declare the possible sets ('set {size} of [...]'): all "
                            f"2^{size} subsets are too many", t.span)
        sets = [frozenset(c) for r in range(size + 1)
                for c in itertools.combinations(range(size), r)]
    else:
        value = const_eval(t.sets, ctx.env.globals, ctx)
        if not isinstance(value, (tuple, frozenset)) or not all(
                isinstance(s, frozenset) for s in value):
            raise ctx.error("possible sets must be a list of sets, e.g. [{}, {0}, {0, 1}]",
                            t.sets.span)
        sets = list(dict.fromkeys(value))
        for s in sets:
            if not all(isinstance(x, int) and 0 <= x < size for x in s):
                raise ctx.error(f"possible set {sorted(s)} has values outside 0..{size - 1}",
                                t.sets.span)
    return ir.SetValued(size, tuple(sets))


def _check_var(d: ast.VarDecl, type_: ir.ValueType, ctx: Context) -> ir.Variable:
    env, kind = ctx.env, ir.kind_of(type_)
    if d.init is None:
        default = {"int": 0, "float": 0.0, "set": frozenset()}[kind]
        if not type_.contains(default):
            raise ctx.error(f"'{d.name.id}' has no initial value and its default "
                            f"{default!r} is not one of its values: add '= ...'", d.span)
        init = ir.Const(d.span, kind, default)
        return ir.Variable(d.name.id, type_, "constant", init, None, d.span)
    init = lower_expr(d.init, env.globals, ctx.at("init"))
    require_assignable(init, type_, d.name.id, d.init.span, ctx)
    check_labels(d.init, env.globals, d.name.id, ctx)
    inputs = {node.which for node in ir.walk(init) if isinstance(node, ir.InputRead)}
    if inputs == {"token", "position"}:
        return ir.Variable(d.name.id, type_, "token and position", init, None, d.span)
    if not inputs:
        check_constant_write(init, type_, d.name.id, d.init.span, ctx)
        if isinstance(type_, ir.Numerical):  # a numerical variable holds declared values
            init = ir.Const(init.span, "float", type_.declared(init.value))
        return ir.Variable(d.name.id, type_, "constant", init, None, d.span)
    if inputs == {"token"}:
        table = []
        for token_id, token in enumerate(env.vocab):
            scope = env.globals.child().bind("token", ConstBinding(token_id, "int"))
            value = coerce(lower_expr(d.init, scope, ctx.at("init")).value, kind)
            if not type_.contains(value):
                raise ctx.error(f"initialiser gives {show(value)} for token \"{token}\", "
                                f"which is not a value of '{d.name.id}' "
                                f"({type_.describe()})", d.init.span)
            table.append(type_.declared(value) if isinstance(type_, ir.Numerical) else value)
        return ir.Variable(d.name.id, type_, "token", init, tuple(table), d.span)
    return ir.Variable(d.name.id, type_, "position", init, None, d.span)


def _check_head(d: ast.HeadDecl, ctx: Context, uses: _MeanUses) -> ir.Head:
    if isinstance(d.type, ast.CountType):
        return _check_count_head(d, uses.max_length, ctx)
    if isinstance(d.value, ast.Name) and d.value.id == "count" \
            and d.value.id not in ctx.env.state_names:
        raise ctx.error("there is no variable 'count'; a head that counts the positions it "
                        f"selects is declared 'head {d.name.id}: count where ...' (no value)",
                        d.value.span)
    value = head_operand(d.value, "value", ctx)
    if isinstance(value.type, ir.SetValued):
        raise ctx.error(f"a head's value must be categorical or numerical; "
                        f"'{value.name}' is a set", d.value.span)
    terms = selection_terms(d.where, ctx)
    offsets = None if d.offsets is None else _offsets(d.offsets, ctx)
    if isinstance(d.type, ast.SameKind):
        if not isinstance(value.type, ir.Categorical):
            raise ctx.error(f"'same' is for a categorical head (it yields the one value its "
                            f"positions share); '{value.name}' is numerical, and a numerical "
                            "head averages", d.type.span)
        return ir.Head(d.name.id, value.type, value.name, terms, offsets, d.span, same=True)
    return ir.Head(d.name.id, _head_type(d, value, offsets, ctx, uses), value.name, terms,
                   offsets, d.span)


def _check_count_head(d: ast.HeadDecl, max_length: int | None, ctx: Context) -> ir.Head:
    """`head n: count where ... at ...`: the number of selected positions, an integer
    0..maximum; the maximum is what one position can select: the most of its offsets that
    land inside max_length positions, else max_length itself."""
    if d.value is not None:
        raise ctx.error(f"a count head counts the positions it selects and reads no value: "
                        f"write 'head {d.name.id}: count where ...' without "
                        f"'= {d.value.id if isinstance(d.value, ast.Name) else '...'}'",
                        d.value.span)
    terms = selection_terms(d.where, ctx)
    offsets = None if d.offsets is None else _offsets(d.offsets, ctx)
    if offsets is None:
        if max_length is None:
            raise ctx.error(f"count head '{d.name.id}' can select every position, so its "
                            "counts are bounded only by the input's length: declare "
                            "'max_length N' (counts 0..N) or give it offsets ('at -4..-1')",
                            d.name.span)
        maximum = max_length
    elif max_length is None:
        maximum = len(offsets)
    else:  # the most offsets that land inside the sequence, at any query position
        maximum = max(bisect.bisect_right(offsets, max_length - 1 - i)
                      - bisect.bisect_left(offsets, -i) for i in range(max_length))
    return ir.Head(d.name.id, ir.Categorical(maximum + 1), None, terms, offsets, d.span)


def _offsets(expr: ast.Expr, ctx: Context) -> tuple[int, ...]:
    raw = const_eval(expr, ctx.env.globals, ctx)
    raw = (raw,) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(raw, (tuple, frozenset)) or not raw or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in raw):
        raise ctx.error("relative offsets must be an integer or a set of integers, "
                        "e.g. 'at -1' or 'at {-1, 1}'", expr.span)
    return tuple(sorted(set(raw)))


def _head_type(d: ast.HeadDecl, value: ir.Variable, offsets: tuple[int, ...] | None,
               ctx: Context, uses: _MeanUses) -> ir.ValueType:
    """A categorical head yields its value's type; a numerical one, the declared values. A
    head declared `num {...}` over a categorical variable of plain integers averages them."""
    if value.name in uses.underived:
        raise ctx.error(f"a head averages declared values, but '{value.name}' has none: "
                        f"declare them ('var {value.name}: num {{...}}')", d.value.span)
    if isinstance(value.type, ir.Categorical):
        if d.type is None:
            return value.type
        if _undeclared_num(d.type):
            if value.type.labels is not None:
                domain = ctx.env.label_domains.get(value.name)
                what = "tokens" if domain == "vocab" else "enum members"
                raise ctx.error(f"a numerical head averages numbers, but '{value.name}' holds "
                                f"{what} ({value.type.describe()})", d.value.span)
            if offsets is not None and len(offsets) == 1:
                return ir.Numerical(tuple(float(v) for v in value.type.values))
            return _threshold_type(d, value, offsets, ctx, uses)
        declared = _check_type(d.type, ctx)
        if isinstance(declared, ir.Numerical):
            if value.type.labels is not None:
                domain = ctx.env.label_domains.get(value.name)
                what = "tokens" if domain == "vocab" else "enum members"
                raise ctx.error(f"a numerical head averages numbers, but '{value.name}' holds "
                                f"{what} ({value.type.describe()})", d.value.span)
            return declared
        if not isinstance(declared, ir.Categorical) or (declared.size, declared.low) != (
                value.type.size, value.type.low):
            raise ctx.error(
                f"categorical head output range ({declared.describe()}) differs from its "
                f"value's range ('{value.name}' is {value.type.describe()})", d.type.span)
        return declared
    if d.type is not None and not _undeclared_num(d.type):
        declared = _check_type(d.type, ctx)
        if not isinstance(declared, ir.Numerical):
            raise ctx.error(f"a head over numerical '{value.name}' is numerical (it "
                            "averages): declare 'num {...}'", d.type.span)
        return declared
    if offsets is not None and len(offsets) == 1:
        return value.type  # one position at most: the value itself
    return _threshold_type(d, value, offsets, ctx, uses)


def _threshold_type(d: ast.HeadDecl, value: ir.Variable, offsets: tuple[int, ...] | None,
                    ctx: Context, uses: _MeanUses) -> ir.Numerical:
    """A numerical head without declared values: the values the MLP's reads of it need
    (alta.means), for as many positions as the head can select. Read only by comparisons
    with constants (`h > 0.5`, `h == 1 / 3`): the nearest means around each constant. Also
    copied into numerical variables (`frac = h`, to be printed): every mean it can take."""
    name = d.name.id
    found = _state_uses(name, uses, ctx)
    count = len(offsets) if offsets is not None else uses.max_length
    source = value.type.values
    if found.other is not None:
        why = f"line {found.other[0].line} {found.other[1]}"
    elif count is None:
        why = "without max_length, the means it can take have no bound"
    elif found.copies:
        not_numerical = [(target, span) for target, span in found.copies
                         if not isinstance(getattr(ctx.env.variables.get(target), "type", None),
                                           ir.Numerical)]
        means = every_mean(source, count)
        if not_numerical:
            target, span = not_numerical[0]
            raise ctx.error(f"numerical head '{name}' is copied into '{target}', which is not "
                            "a numerical variable", span,
                            (f"a head without declared values may be copied only into "
                             f"numerical variables ('var {target}: num = 0')",))
        if means is not None:
            return ir.Numerical(means)
        why = (f"its means over {count} positions are too many to list (over "
               f"{MAX_DERIVED_MEANS:,})")
    elif not found.constants:
        why = "it is never read"
    else:
        return ir.Numerical(threshold_values(source, count, found.constants))
    raise ctx.error(f"numerical head '{name}' averages over several positions: declare its "
                    f"output values, e.g. 'head {name}: num {{0, 0.5, 1}} = ...'", d.name.span,
                    ("ALTA derives them for a head the MLP only compares with constants or "
                     f"copies into numerical variables ('x = {name}'); {why}",))


@dataclass(frozen=True)
class _Uses:
    """How the MLP and helpers read a variable or head: the constants they compare it with,
    the variables they copy it into (`x = h`), and where (and how) they read it otherwise,
    if they do."""

    constants: tuple[Fraction, ...]
    copies: tuple[tuple[str, Span], ...]  # (variable, the assignment)
    other: tuple[Span, str] | None


def _state_uses(name: str, uses: _MeanUses, ctx: Context) -> _Uses:
    """How the MLP reads `name` (in a helper, any read counts as otherwise: a helper's code
    is generic). An assignment's target is a write, not a read."""
    found, copies, other = set(), [], None
    code = [d for d in uses.decls if isinstance(d, (ast.MlpDecl, ast.FuncDecl))]
    local = _local_names(code)  # bound by loops, lets and parameters: not constants here

    def visit(node, parent, in_helper):
        nonlocal other
        reads = _reads_head(node, name, uses.scope, local, ctx)
        if reads is not False:  # None: its family, at an index the MLP's loops give: maybe
            targets = _copied_into(node, parent, uses.scope, local, ctx) \
                if not in_helper else ()
            constant = _compared_with(node, parent, uses.scope, local, ctx) \
                if not in_helper else None
            if targets:
                copies.extend((target, parent.span) for target in targets)
            elif constant is not None:
                found.add(constant)
            elif reads is None:
                other = other or (node.span, "reads its family at an index known only once the "
                                             "MLP's loops are unrolled, other than by comparing "
                                             "it with a constant or copying it into a variable")
            else:
                other = other or (node.span, "reads it other than by comparing it with a "
                                             "constant or copying it into a variable")
        elif isinstance(node, tuple):
            for item in node:
                visit(item, parent, in_helper)
        elif isinstance(node, ast.Assign):
            visit(node.value, node, in_helper)
        elif isinstance(node, ast.Node):
            for child in vars(node).values():
                visit(child, node, in_helper)

    for d in code:
        visit(d.body, d, isinstance(d, ast.FuncDecl))
    return _Uses(tuple(sorted(found)), tuple(copies), other)


def _copied_into(node: ast.Expr, parent, scope, local: frozenset[str], ctx: Context
                 ) -> tuple[str, ...]:
    """The variables `parent` may copy `node` into, if it is an assignment of `node` itself
    (`frac = share`): a variable, or a family's member (every member, at an index the MLP's
    loops give)."""
    if not isinstance(parent, ast.Assign) or parent.value is not node:
        return ()
    return _assigned_names(parent.target, scope, local, ctx)


def _assigned_names(target, scope, local: frozenset[str], ctx: Context) -> tuple[str, ...]:
    """The variables (or heads) a name or family index may stand for before the MLP's loops
    are unrolled: a name; a family's member at a constant index; every member of the
    family at an index only the loops give. None of them for anything else."""
    if isinstance(target, ast.Name):
        return () if target.id in local else (target.id,)
    if isinstance(target, ast.Index) and isinstance(target.value, ast.Name):
        index = _constant(target.index, scope, local, ctx)
        if isinstance(index, int) and not isinstance(index, bool):
            return (member_name(target.value.id, index),)
        family = ctx.env.families.get(target.value.id)
        if index is None and family is not None:
            return tuple(family.member(i) for i in family.indices)
    return ()


def _derive_variables(pending: dict[str, ir.Variable], variables: dict[str, ir.Variable],
                      heads: dict[str, ir.Head], uses: _MeanUses, ctx: Context
                      ) -> dict[str, ir.Variable]:
    """Numerical variables declared `num` without values: the MLP may only write them
    copies of numerical heads and variables (`frac = share`) and constants, and only
    compare them with constants, copy them on or print them; their values are their
    initial value, the constants written and every value of what is copied into them."""
    code = [d for d in uses.decls if isinstance(d, (ast.MlpDecl, ast.FuncDecl))]
    local = _local_names(code)
    sources: dict[str, set[str]] = {name: set() for name in pending}
    values: dict[str, set[float]] = {name: {var.init.value} for name, var in pending.items()}
    for d in code:
        for node in ast.walk(d.body):
            if not isinstance(node, ast.Assign):
                continue
            targets = [t for t in _assigned_names(node.target, uses.scope, local, ctx)
                       if t in pending]  # at a loop's index: any member it may be
            if not targets:
                continue
            if isinstance(d, ast.FuncDecl):
                raise ctx.error(_underived(targets[0], "a helper writes it"), node.span)
            value = node.value
            copied = [s for s in (_assigned_names(value, uses.scope, local, ctx)
                                  if isinstance(value, (ast.Name, ast.Index)) else ())
                      if s in pending or s in variables or s in heads]
            constant = None if copied else _constant(value, uses.scope, local, ctx)
            if not copied and (isinstance(constant, bool)
                               or not isinstance(constant, (int, float))):
                raise ctx.error(_underived(targets[0], "this writes it something other than "
                                                       "a constant of the program (not of "
                                                       "the MLP's loops) or a copy"), value.span)
            for target in targets:
                sources[target] |= set(copied)
                if not copied:
                    values[target].add(float(constant))
    for name in pending:
        found = _state_uses(name, uses, ctx)
        if found.other is not None:
            raise ctx.error(_underived(name, found.other[1]), found.other[0])
    changed = True
    while changed:  # copies of copies: to a fixpoint
        changed = False
        for name in pending:
            for source in sources[name]:
                if source in pending:
                    more = values[source]
                else:
                    type_ = (heads[source] if source in heads else variables[source]).type
                    if isinstance(type_, ir.Categorical) and type_.labels is not None:
                        raise ctx.error(_underived(name, f"'{source}', copied into it, holds "
                                                         "labels, not numbers"),
                                        pending[name].span)
                    more = {float(v) for v in type_.values}
                if not more <= values[name]:
                    values[name] |= more
                    changed = True
    derived = {}
    for name, var in pending.items():
        declared = tuple(sorted(values[name]))
        close = too_close(declared)
        if close is not None:
            raise ctx.error(f"the values derived for '{name}' include {close[0]!r} and "
                            f"{close[1]!r}, too close to tell apart: declare its values",
                            var.span)
        derived[name] = replace(var, type=ir.Numerical(declared))
    return derived


def _underived(name: str, why: str) -> str:
    declared = name.split("[")[0] + "[...]" if "[" in name else name  # a family's member
    return (f"'{name}' declares no values, and ALTA derives them only where the MLP writes it "
            f"nothing but constants and copies of numerical heads or variables ('{name} = h') "
            f"and reads it only to copy it on or to compare it with a constant; here {why}: "
            f"declare its values ('var {declared}: num {{...}}')")


def _local_names(code) -> frozenset[str]:
    """Every name the MLP and helpers bind (loop targets, lets, comprehension targets,
    parameters), which may shadow a constant of the same name."""
    bound = set()
    for node in ast.walk(tuple(code)):
        if isinstance(node, (ast.For, ast.CompFor)):
            bound |= {t.id for t in node.targets}
        elif isinstance(node, ast.Let):
            bound.add(node.target.id)
        elif isinstance(node, ast.FuncDecl):
            bound |= {p.id for p in node.params}
    return frozenset(bound)


def _constant(expr: ast.Expr, scope, local: frozenset[str], ctx: Context):
    """The value of `expr` if it is a constant of the program (not of a loop), else None."""
    if any(name.id in local for name in ast_names(expr)):
        return None
    try:
        return const_eval(expr, scope, ctx)
    except AltaError:
        return None


def _reads_head(node, head: str, scope, local: frozenset[str], ctx: Context) -> bool | None:
    """Whether `node` reads `head`: its name, or (a family's member, `share[0]`) the family
    at that index; None where it is the family at an index known only once the MLP's loops
    are unrolled (`share[k]`), which may be it."""
    if isinstance(node, ast.Name):
        return node.id == head
    if not (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
            and head.startswith(node.value.id + "[")):
        return False
    index = _constant(node.index, scope, local, ctx)
    if index is None:
        return None
    return isinstance(index, int) and member_name(node.value.id, index) == head


def _compared_with(name: ast.Expr, parent, scope, local: frozenset[str], ctx: Context
                   ) -> Fraction | None:
    """The constant `name` is compared with by `parent` (`name < 0.5`, `1 / 3 == name`)."""
    if not isinstance(parent, ast.Compare) or parent.op in ("in", "not in"):
        return None
    other = parent.right if parent.left is name else parent.left
    value = _constant(other, scope, local, ctx)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return rational(value)


def _warn_unused(ctx: Context) -> None:
    env, reads = ctx.env, ctx.effects.reads
    for v in env.variables.values():
        if v.name not in reads:
            ctx.warn(f"variable '{v.name}' is never read", v.span)
    for h in env.heads.values():
        if h.name not in reads:
            ctx.warn(f"head '{h.name}' is never read by the MLP", h.span)
    for f in env.functions.values():
        if f.name.id not in ctx.effects.called:
            ctx.warn(f"helper function '{f.name.id}' is never called (helpers are "
                     "checked where they are inlined, so its body is unchecked)", f.span)
