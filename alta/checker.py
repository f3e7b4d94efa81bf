"""AST -> Program IR: name resolution, types, compile-time evaluation and static checks.

The checker evaluates everything that is known at compile time (constants, enums, tables,
comprehensions, loops over constant collections, helper functions) and leaves a Program IR
whose expressions only read variables, heads, locals and the input. Errors are located
`AltaError`s; warnings (unused variables and heads, comparisons that can never hold) travel
on the Program.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path

from alta import ast, ir
from alta.errors import AltaError, Diagnostic, Source, Span, read_text
from alta.semantics import (
    SET_ELEMENTS,
    apply_binary,
    apply_builtin,
    apply_compare,
    show,
    sort_key,
    too_close,
)
from alta.syntax import parse

BUILTINS = ("min", "max", "abs", "round", "len")
INPUT_NAMES = ("token", "position")
DEFAULT_MAX_LAYERS = 1000
MAX_UNROLL = 100_000  # guard against runaway compile-time loops


def check_file(path: str | Path) -> ir.Program:
    """Read, parse and check one `.alta` file."""
    return check_source(read_text(path), str(path))


def check_source(text: str, path: str = "<string>") -> ir.Program:
    """Parse and check ALTA source text."""
    module = parse(text, path)
    source = Source(text if text.endswith("\n") else text + "\n", path)
    return _Checker(source, Path(path).stem).check(module)


# ---- scopes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _ConstBinding:
    value: object
    kind: str
    # Bound by compile-time code generation (a loop variable, a helper's argument, or a let
    # computed from one) rather than written in the source as this value.
    generic: bool = False


@dataclass(frozen=True)
class _LocalBinding:
    uid: int
    kind: str


class _Scope:
    """Lexical scope for constants, locals and loop variables (program names live above)."""

    def __init__(self, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.names: dict[str, object] = {}

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def child(self) -> _Scope:
        return _Scope(self)


@dataclass(frozen=True)
class _Context:
    """What an expression may read where it appears."""

    where: str  # "const" | "init" | "mlp" | "state" (halting, output)
    in_function: str | None = None


def _kind_of_value(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, frozenset):
        return "set"
    return "table"


_KIND_WORDS = {"int": "an integer", "bool": "a boolean", "float": "a number",
               "set": "a set", "table": "a table (list or tuple)"}


def _is_numeric(kind: str) -> bool:
    return kind in ("int", "bool", "float")


def _ast_names(node):
    """Every `Name` in an AST expression."""
    if isinstance(node, ast.Name):
        yield node
    elif isinstance(node, tuple):
        for item in node:
            yield from _ast_names(item)
    elif isinstance(node, ast.Node):
        for value in vars(node).values():
            yield from _ast_names(value)


def _domain_words(domain: str, plural: bool = False) -> str:
    if domain == "vocab":
        return "tokens (vocab)" if plural else "a token (vocab)"
    enum = domain.removeprefix("enum ")
    return f"members of enum {enum}" if plural else f"a member of enum {enum}"


class _Bind:
    """A pseudo-statement binding loop variables, used when loops unroll inside helpers."""

    def __init__(self, targets, value, span) -> None:
        self.targets, self.value, self.span = targets, value, span


class _Checker:
    def __init__(self, source: Source, default_name: str) -> None:
        self.source = source
        self.default_name = default_name
        self.warnings: list[Diagnostic] = []
        self.uids = itertools.count()
        self.vocab: tuple[str, ...] = ()
        self.vocab_ids: dict[str, int] = {}
        self.enums: dict[str, tuple[str, ...]] = {}
        self.globals = _Scope()
        self.variables: dict[str, ir.Variable] = {}
        self.heads: dict[str, ir.Head] = {}
        self.functions: dict[str, ast.FuncDecl] = {}
        self.declared: dict[str, Span] = {}
        self.head_names: set[str] = set()
        self.state_names: set[str] = set()
        self.called: set[str] = set()
        self.reads: set[str] = set()
        self.inlining: list[str] = []
        self.pending_constants: dict[str, Span] = {}  # declared, not evaluated yet
        self.enum_of_member: dict[str, str] = {}
        self.label_domains: dict[str, str | None] = {}  # see _label_domain

    # -- errors -----------------------------------------------------------------------------

    def error(self, message: str, span: Span | None, notes: tuple[str, ...] = ()) -> AltaError:
        return AltaError.at(message, span, self.source, notes)

    def warn(self, message: str, span: Span | None) -> None:
        self.warnings.append(Diagnostic("warning", message, span, self.source))

    def declare(self, name: ast.Name, what: str) -> None:
        if name.id in self.declared:
            first = self.declared[name.id]
            raise self.error(f"duplicate name '{name.id}': already declared on line {first.line}",
                             name.span)
        if name.id in BUILTINS or name.id in INPUT_NAMES:
            raise self.error(f"'{name.id}' is a built-in name and cannot be declared as a {what}",
                             name.span)
        self.declared[name.id] = name.span

    # -- the whole program ------------------------------------------------------------------

    def check(self, module: ast.Module) -> ir.Program:
        """The checker's stages, in the order names become available to later ones."""
        decls: dict[type, list] = {}
        for d in module.decls:
            decls.setdefault(type(d), []).append(d)
        self.state_names = {d.name.id for d in module.decls
                            if isinstance(d, (ast.VarDecl, ast.HeadDecl))}
        programs = self._single(decls, ast.ProgramDecl, "program")
        self._check_vocab(self._single(decls, ast.VocabDecl, "vocab"))
        self._check_compile_time_names(module.decls)
        settings = self._check_settings(decls.get(ast.SettingDecl, []))
        framing = self._check_framing(self._single(decls, ast.InputDecl, "input"))
        self._check_state(decls.get(ast.VarDecl, []), decls.get(ast.HeadDecl, []))
        mlps = self._single(decls, ast.MlpDecl, "mlp")
        mlp = self.lower_block(mlps[0].body, self.globals.child(), _Context("mlp")) if mlps else ()
        halt = self._check_halt(self._single(decls, ast.HaltDecl, "halt"), settings)
        output = self._check_output(self._single(decls, ast.OutputDecl, "output"))
        self._warn_unused()
        return ir.Program(
            name=programs[0].name.id if programs else self.default_name, source=self.source,
            vocab=self.vocab, framing=framing, variables=tuple(self.variables.values()),
            heads=tuple(self.heads.values()), mlp=mlp, halt=halt,
            max_layers=settings.get("max_layers", DEFAULT_MAX_LAYERS),
            max_length=settings.get("max_length"), output=output, warnings=tuple(self.warnings))

    def _check_compile_time_names(self, decls) -> None:
        """Enums, constants and helpers. Their names are declared first, in source order (so
        a duplicate is reported where it comes second); enums and helpers may then be used
        anywhere, whatever the order, while a constant may only use constants declared
        before it (constants are evaluated in source order, and this rules out cycles)."""
        for d in decls:
            if isinstance(d, ast.EnumDecl):
                self.declare(d.name, "enum")
                for member in d.members:
                    self.declare(member, "enum member")
            elif isinstance(d, ast.ConstDecl):
                self.declare(d.name, "constant")
                self.pending_constants[d.name.id] = d.name.span
            elif isinstance(d, ast.FuncDecl):
                self.declare(d.name, "function")
                self.functions[d.name.id] = d
        for d in decls:
            if isinstance(d, ast.EnumDecl):
                self._check_enum(d)
        for d in decls:
            if isinstance(d, ast.ConstDecl):
                value = self.const_eval(d.value, self.globals)
                self.globals.names[d.name.id] = _ConstBinding(value, _kind_of_value(value))
                del self.pending_constants[d.name.id]

    def _check_settings(self, decls: list[ast.SettingDecl]) -> dict[str, int]:
        settings, lines = {}, {}
        for d in decls:
            if d.key in settings:
                raise self.error(f"duplicate '{d.key}' declaration: already declared on line "
                                 f"{lines[d.key]}", d.span)
            settings[d.key] = self._positive_int(d.value, d.key)
            lines[d.key] = d.span.line
        return settings

    def _check_state(self, var_decls: list[ast.VarDecl], head_decls: list[ast.HeadDecl]) -> None:
        """Variables, then heads (which read variables)."""
        for d in var_decls:
            self.declare(d.name, "variable")
        for d in head_decls:
            self.declare(d.name, "head")
            self.head_names.add(d.name.id)
        for d in var_decls:
            self.variables[d.name.id] = self._check_var(d)
        for d in head_decls:
            self.heads[d.name.id] = self._check_head(d)

    def _check_halt(self, decls: list[ast.HaltDecl], settings: dict) -> ir.Expr | None:
        if not decls:
            if "max_layers" not in settings:
                raise self.error("program has no 'halt when ...' and no 'max_layers N': it "
                                 "would never stop; declare one of them", Span(1, 1, 1, 1))
            return None
        halt = self.lower_expr(decls[0].condition, self.globals, _Context("state"))
        self._require_truth(halt, "the halting condition")
        return halt

    def _single(self, by_kind, cls, keyword: str) -> list:
        found = by_kind.get(cls, [])
        if len(found) > 1:
            raise self.error(f"duplicate '{keyword}' declaration: already declared on line "
                             f"{found[0].span.line}", found[1].span)
        return found

    def _positive_int(self, expr: ast.Expr, what: str) -> int:
        value = self.const_eval(expr, self.globals)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(f"{what} must be a positive integer, got {show(value)}", expr.span)
        return value

    # -- vocabulary, framing, output ----------------------------------------------------------

    def _check_vocab(self, decls: list[ast.VocabDecl]) -> None:
        if not decls:
            raise self.error("program has no 'vocab' declaration: list its tokens, e.g. "
                             'vocab "0" "1"', Span(1, 1, 1, 1))
        for tok in decls[0].tokens:
            if tok.value in self.vocab_ids:
                raise self.error(f'duplicate token "{tok.value}" in vocab', tok.span)
            if not tok.value or any(c.isspace() for c in tok.value):
                raise self.error(f'token "{tok.value}" must be non-empty and contain no spaces',
                                 tok.span)
            self.vocab_ids[tok.value] = len(self.vocab_ids)
        self.vocab = tuple(self.vocab_ids)

    def _token_id(self, lit: ast.StrLit) -> int:
        if lit.value not in self.vocab_ids:
            raise self.error(f'"{lit.value}" is not in the vocabulary', lit.span,
                             (f"the vocab is: {' '.join(self.vocab)}",))
        return self.vocab_ids[lit.value]

    def _check_framing(self, decls: list[ast.InputDecl]) -> tuple[ir.FrameItem, ...]:
        if not decls:
            return (ir.FrameItem("words"),)
        items, inputs = [], 0
        for item in decls[0].items:
            if item.kind == "token":
                count = 1 if item.count is None else self.const_eval(item.count, self.globals)
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise self.error(f"a repeat count must be a non-negative integer, got "
                                     f"{show(count)}", item.count.span)
                items.append(ir.FrameItem("token", self._token_id(item.token), count))
            else:
                inputs += 1
                items.append(ir.FrameItem(item.kind))
        if inputs != 1:
            raise self.error("'input' must place the input exactly once, as 'words' or 'chars'",
                             decls[0].span)
        placed = {item.token for item in items if item.kind == "token"}
        allow = []
        for lit in decls[0].allow:
            token = self._token_id(lit)
            if token not in placed:
                raise self.error(f'"{lit.value}" is not a framing token of this input, so the '
                                 "input may contain it anyway: 'allow' lists only tokens that "
                                 "the framing places", lit.span)
            if token not in allow:
                allow.append(token)
        if allow:
            at = next(i for i, item in enumerate(items) if item.kind != "token")
            items[at] = ir.FrameItem(items[at].kind, allow=tuple(allow))
        return tuple(items)

    def _check_output(self, decls: list[ast.OutputDecl]) -> ir.Output:
        if not decls:
            raise self.error("program has no 'output' declaration: say what 'alta run' prints, "
                             "e.g. 'output result at last'", Span(1, 1, 1, 1))
        d = decls[0]
        var = self._state_variable(d.variable, "output")
        where = None
        if d.where is not None:
            where = self.lower_expr(d.where, self.globals, _Context("state"))
            self._require_truth(where, "an output filter")
        default = None
        if d.default is not None:
            default = self.const_eval(d.default, self.globals)
            self._check_labels(d.default, self.globals, var.name)
            if not var.type.contains(default):
                raise self.error(f"output default {show(default)} is not a value of "
                                 f"'{var.name}' ({var.type.describe()})", d.default.span)
        self.reads.add(var.name)
        return ir.Output(var.name, d.at, where, default, d.span)

    def _state_variable(self, name: ast.Name, role: str) -> ir.Variable:
        if name.id in self.head_names:
            raise self.error(f"{role} cannot read head '{name.id}': head outputs are undefined "
                             "between layers; copy it into a variable in the MLP", name.span)
        if name.id not in self.variables:
            raise self._undefined(name, "variable")
        return self.variables[name.id]

    # -- enums, variables, heads ----------------------------------------------------------------

    def _check_enum(self, d: ast.EnumDecl) -> None:
        """Binds the members (declared with the other compile-time names) to 0, 1, ..."""
        for i, member in enumerate(d.members):
            self.globals.names[member.id] = _ConstBinding(i, "int")
            self.enum_of_member[member.id] = d.name.id
        self.enums[d.name.id] = tuple(m.id for m in d.members)

    def _check_type(self, t: ast.TypeExpr) -> ir.ValueType:
        if isinstance(t, ast.BoolType):
            return ir.Categorical(2)
        if isinstance(t, ast.VocabType):
            return ir.Categorical(len(self.vocab), self.vocab)
        if isinstance(t, ast.CatType):
            if isinstance(t.size, ast.Name) and t.size.id in self.enums:
                labels = self.enums[t.size.id]
                return ir.Categorical(len(labels), labels)
            return ir.Categorical(self._positive_int(t.size, "a categorical range"))
        if isinstance(t, ast.NumType):
            values = self.const_eval(t.values, self.globals)
            if not isinstance(values, (frozenset, tuple)) or not values or not all(
                    _is_numeric(_kind_of_value(v)) for v in values):
                raise self.error("a numerical type needs a non-empty set of numbers, e.g. "
                                 "num {0, 0.5, 1}", t.values.span)
            declared = tuple(sorted({float(v) for v in values}))
            close = too_close(declared)
            if close is not None:
                raise self.error(f"declared values {close[0]!r} and {close[1]!r} are too close "
                                 "to tell apart (numbers within a relative 1e-9 of a declared "
                                 "value count as that value)", t.values.span)
            return ir.Numerical(declared)
        assert isinstance(t, ast.SetType)
        size = self._positive_int(t.size, "a set range")
        if size > SET_ELEMENTS:
            raise self.error(f"set variables hold at most {SET_ELEMENTS} values, got {size}",
                             t.size.span)
        if t.sets is None:
            if size > 12:
                raise self.error(f"declare the possible sets ('set {size} of [...]'): all "
                                 f"2^{size} subsets are too many", t.span)
            sets = [frozenset(c) for r in range(size + 1)
                    for c in itertools.combinations(range(size), r)]
        else:
            value = self.const_eval(t.sets, self.globals)
            if not isinstance(value, (tuple, frozenset)) or not all(
                    isinstance(s, frozenset) for s in value):
                raise self.error("possible sets must be a list of sets, e.g. [{}, {0}, {0, 1}]",
                                 t.sets.span)
            sets = list(dict.fromkeys(value))
            for s in sets:
                if not all(isinstance(x, int) and 0 <= x < size for x in s):
                    raise self.error(f"possible set {sorted(s)} has values outside 0..{size - 1}",
                                     t.sets.span)
        return ir.SetValued(size, tuple(sets))

    def _check_var(self, d: ast.VarDecl) -> ir.Variable:
        type_ = self._check_type(d.type)
        if isinstance(d.type, ast.VocabType):
            self.label_domains[d.name.id] = "vocab"
        elif isinstance(d.type, ast.CatType) and isinstance(d.type.size, ast.Name) \
                and d.type.size.id in self.enums:
            self.label_domains[d.name.id] = f"enum {d.type.size.id}"
        kind = ir.kind_of(type_)
        ctx = _Context("init")
        if d.init is None:
            default = {"int": 0, "float": 0.0, "set": frozenset()}[kind]
            if not type_.contains(default):
                raise self.error(f"'{d.name.id}' has no initial value and its default "
                                 f"{default!r} is not one of its values: add '= ...'", d.span)
            init = ir.Const(d.span, kind, default)
            return ir.Variable(d.name.id, type_, "constant", init, None, d.span)
        init = self.lower_expr(d.init, self.globals, ctx)
        self._require_assignable(init, type_, d.name.id, d.init.span)
        self._check_labels(d.init, self.globals, d.name.id)
        inputs = _inputs_read(init)
        if inputs == {"token", "position"}:
            raise self.error("an initialiser may read 'token' or 'position', not both",
                             d.init.span)
        if not inputs:
            self._check_constant_write(init, type_, d.name.id, d.init.span)
            if isinstance(type_, ir.Numerical):  # a numerical variable holds declared values
                init = ir.Const(init.span, "float", type_.declared(init.value))
            return ir.Variable(d.name.id, type_, "constant", init, None, d.span)
        if inputs == {"token"}:
            table = []
            for token_id, token in enumerate(self.vocab):
                scope = self.globals.child()
                scope.names["token"] = _ConstBinding(token_id, "int")
                value = self.lower_expr(d.init, scope, _Context("init")).value
                value = _coerce(value, kind)
                if not type_.contains(value):
                    raise self.error(f"initialiser gives {show(value)} for token \"{token}\", "
                                     f"which is not a value of '{d.name.id}' "
                                     f"({type_.describe()})", d.init.span)
                table.append(type_.declared(value) if isinstance(type_, ir.Numerical)
                             else value)
            return ir.Variable(d.name.id, type_, "token", init, tuple(table), d.span)
        return ir.Variable(d.name.id, type_, "position", init, None, d.span)

    def _check_head(self, d: ast.HeadDecl) -> ir.Head:
        value = self._head_operand(d.value, "value")
        if isinstance(value.type, ir.SetValued):
            raise self.error(f"a head's value must be categorical or numerical; "
                             f"'{value.name}' is a set", d.value.span)
        key = query = None
        if d.op is not None:
            key = self._head_operand(d.key, "key")
            query = self._head_operand(d.query, "query")
            if not isinstance(key.type, ir.Categorical):
                raise self.error(f"a head's key must be categorical; '{key.name}' is "
                                 f"{key.type.describe()}", d.key.span)
            if d.op == "==":
                if not isinstance(query.type, ir.Categorical):
                    raise self.error(f"'key == query' needs a categorical query; "
                                     f"'{query.name}' is {query.type.describe()} (use 'in' for "
                                     "a set query)", d.query.span)
            elif not isinstance(query.type, ir.SetValued):
                raise self.error(f"'key in query' needs a set-valued query; '{query.name}' is "
                                 f"{query.type.describe()}", d.query.span)
            if query.type.size != key.type.size:
                raise self.error(f"query/key range mismatch: query '{query.name}' ranges over "
                                 f"{query.type.size} values, key '{key.name}' over "
                                 f"{key.type.size}", d.query.span)
        offsets = None
        if d.offsets is not None:
            raw = self.const_eval(d.offsets, self.globals)
            raw = (raw,) if isinstance(raw, int) and not isinstance(raw, bool) else raw
            if not isinstance(raw, (tuple, frozenset)) or not raw or not all(
                    isinstance(o, int) and not isinstance(o, bool) for o in raw):
                raise self.error("relative offsets must be an integer or a set of integers, "
                                 "e.g. 'at -1' or 'at {-1, 1}'", d.offsets.span)
            offsets = tuple(sorted(set(raw)))
        if isinstance(value.type, ir.Categorical):
            type_ = value.type
            if d.type is not None:
                declared = self._check_type(d.type)
                if not isinstance(declared, ir.Categorical) or declared.size != type_.size:
                    raise self.error(
                        f"categorical head output range ({declared.describe()}) differs from its "
                        f"value's range ('{value.name}' is {type_.describe()})", d.type.span)
                type_ = declared
        else:
            if d.type is not None:
                type_ = self._check_type(d.type)
                if not isinstance(type_, ir.Numerical):
                    raise self.error(f"a head over numerical '{value.name}' is numerical (it "
                                     "averages): declare 'num {...}'", d.type.span)
            elif offsets is not None and len(offsets) == 1:
                type_ = value.type  # one position at most: the value itself
            else:
                raise self.error(f"numerical head '{d.name.id}' averages over several positions: "
                                 f"declare its output values, e.g. 'head {d.name.id}: num "
                                 "{0, 0.5, 1} = ...'", d.name.span)
        if isinstance(type_, ir.Categorical):  # the head yields the value's tokens or members
            self.label_domains[d.name.id] = self.label_domains.get(value.name)
        return ir.Head(d.name.id, type_, value.name, key and key.name, query and query.name,
                       d.op, offsets, d.span)

    def _head_operand(self, name: ast.Name, role: str) -> ir.Variable:
        if name.id in self.head_names:
            raise self.error(f"a head's {role} must be a variable, not head '{name.id}' (heads "
                             "read the state at the start of the layer)", name.span)
        if name.id not in self.variables:
            raise self._undefined(name, "variable")
        self.reads.add(name.id)
        return self.variables[name.id]

    def _warn_unused(self) -> None:
        for v in self.variables.values():
            if v.name not in self.reads:
                self.warn(f"variable '{v.name}' is never read", v.span)
        for h in self.heads.values():
            if h.name not in self.reads:
                self.warn(f"head '{h.name}' is never read by the MLP", h.span)
        for f in self.functions.values():
            if f.name.id not in self.called:
                self.warn(f"helper function '{f.name.id}' is never called (helpers are "
                          "checked where they are inlined, so its body is unchecked)", f.span)

    def _undefined(self, name: ast.Name, what: str = "name") -> AltaError:
        known = list(self.declared) + list(BUILTINS)
        close = difflib.get_close_matches(name.id, known, n=1)
        notes = (f"did you mean '{close[0]}'?",) if close else ()
        return self.error(f"undefined {what} '{name.id}'", name.span, notes)

    # -- statements ---------------------------------------------------------------------------

    def lower_block(self, stmts, scope: _Scope, ctx: _Context) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for stmt in stmts:
            out.extend(self.lower_stmt(stmt, scope, ctx))
        return tuple(out)

    def lower_stmt(self, s, scope: _Scope, ctx: _Context) -> list[ir.Stmt]:
        if isinstance(s, ast.Pass):
            return []
        if isinstance(s, ast.Assign):
            return [self._lower_assign(s, scope, ctx)]
        if isinstance(s, ast.Let):
            value = self.lower_expr(s.value, scope, ctx)
            self._bind_local_name(s.target, scope)
            if isinstance(value, ir.Const):
                scope.names[s.target.id] = _ConstBinding(value.value, value.kind,
                                                         self._generic(s.value, scope))
                return []
            uid = next(self.uids)
            scope.names[s.target.id] = _LocalBinding(uid, value.kind)
            return [ir.LetStmt(s.span, uid, s.target.id, value)]
        if isinstance(s, ast.If):
            return self._lower_if(list(s.branches), s.orelse, scope, ctx, s.span)
        if isinstance(s, ast.For):
            out = []
            for item in self._iterate(s, scope, ctx):
                inner = scope.child()
                self._bind_targets(s.targets, item, inner, s.iterable.span)
                out.extend(self.lower_block(s.body, inner, ctx))
            return out
        if isinstance(s, ast.Return):
            raise self.error("'return' outside a function", s.span)
        raise AssertionError(s)

    def _lower_if(self, branches, orelse, scope, ctx, span) -> list[ir.Stmt]:
        if not branches:
            return list(self.lower_block(orelse, scope.child(), ctx))
        (cond_ast, body), rest = branches[0], branches[1:]
        cond = self.lower_expr(cond_ast, scope, ctx)
        self._require_truth(cond, "an 'if' condition")
        if isinstance(cond, ir.Const):  # decided at compile time: keep one branch
            if cond.value:
                return list(self.lower_block(body, scope.child(), ctx))
            return self._lower_if(rest, orelse, scope, ctx, span)
        then = self.lower_block(body, scope.child(), ctx)
        other = tuple(self._lower_if(rest, orelse, scope, ctx, span))
        # Kept even when neither branch assigns anything (`if h == 0: pass`, a body of lets):
        # the interpreter still evaluates the condition, so reading an undefined value there
        # is an error as everywhere else. The compiler's per-variable slices leave it out.
        return [ir.IfStmt(cond_ast.span, cond, then, other)]

    def _lower_assign(self, s: ast.Assign, scope: _Scope, ctx: _Context) -> ir.Stmt:
        name = s.target
        if ctx.in_function:
            raise self.error(f"helper function '{ctx.in_function}' cannot assign '{name.id}': "
                             "helpers are pure; return a value instead", s.span)
        if name.id in self.head_names:
            raise self.error(f"cannot write to head '{name.id}': head outputs are computed by "
                             "attention; write a variable instead", name.span)
        if name.id not in self.variables:
            if scope.lookup(name.id) is not None:
                raise self.error(f"cannot assign to '{name.id}': it is a constant or a local "
                                 "('let' bindings are fixed)", name.span)
            raise self._undefined(name, "variable")
        var = self.variables[name.id]
        value = self.lower_expr(s.value, scope, ctx)
        self._require_assignable(value, var.type, var.name, s.value.span)
        self._check_labels(s.value, scope, var.name)
        self._check_constant_write(value, var.type, var.name, s.value.span)
        return ir.Assign(s.span, var.name, value)

    def _require_assignable(self, value: ir.Expr, type_: ir.ValueType, name: str,
                            span: Span) -> None:
        want = ir.kind_of(type_)
        ok = (value.kind == want or (want == "int" and value.kind == "bool")
              or (want == "float" and _is_numeric(value.kind)))
        if not ok:
            raise self.error(f"type error: '{name}' is {type_.describe()} but the value is "
                             f"{_KIND_WORDS[value.kind]}", span)

    def _check_constant_write(self, value: ir.Expr, type_, name: str, span: Span) -> None:
        if isinstance(value, ir.Const) and not type_.contains(
                _coerce(value.value, ir.kind_of(type_))):
            raise self.error(f"value {show(value.value)} is out of range for '{name}' "
                             f"({type_.describe()})", span)

    def _bind_local_name(self, name: ast.Name, scope: _Scope) -> None:
        if name.id in self.declared or name.id in INPUT_NAMES or name.id in BUILTINS:
            raise self.error(f"local '{name.id}' would shadow a program name; choose another",
                             name.span)
        if name.id in scope.names:
            raise self.error(f"duplicate local '{name.id}' in this block", name.span)

    def _constant_collection(self, e: ast.Expr, scope: _Scope, ctx: _Context, what: str):
        value = self.lower_expr(e, scope, ctx)
        if not isinstance(value, ir.Const) or not isinstance(value.value, (tuple, frozenset)):
            raise self.error(f"{what} runs over a constant collection (a list, tuple, set or "
                             "range a..b known at compile time)", e.span)
        return value.value

    def _iterate(self, s: ast.For, scope: _Scope, ctx: _Context):
        items = self._constant_collection(s.iterable, scope, ctx, "a 'for' loop")
        if len(items) > MAX_UNROLL:
            raise self.error(f"loop would unroll {len(items)} times (limit {MAX_UNROLL})",
                             s.iterable.span)
        return sorted(items) if isinstance(items, frozenset) else items

    def _bind_targets(self, targets, item, scope: _Scope, span: Span) -> None:
        if len(targets) == 1:
            values = (item,)
        elif isinstance(item, tuple) and len(item) == len(targets):
            values = item
        else:
            raise self.error(f"cannot unpack {show(item)} into {len(targets)} names", span)
        for target, value in zip(targets, values):
            self._bind_local_name(target, scope)
            scope.names[target.id] = _ConstBinding(value, _kind_of_value(value), generic=True)

    # -- expressions --------------------------------------------------------------------------

    def const_eval(self, expr: ast.Expr, scope: _Scope):
        value = self.lower_expr(expr, scope, _Context("const"))
        if not isinstance(value, ir.Const):
            raise self.error("expected a value known at compile time", expr.span)
        return value.value

    def _require_truth(self, e: ir.Expr, what: str) -> None:
        if e.kind not in ("bool", "int", "float"):
            raise self.error(f"{what} must be a boolean, not {_KIND_WORDS[e.kind]}", e.span)

    def _numeric(self, e: ir.Expr, op: str) -> None:
        if not _is_numeric(e.kind):
            raise self.error(f"type error: '{op}' needs numbers, not {_KIND_WORDS[e.kind]}",
                             e.span)

    def lower_expr(self, e: ast.Expr, scope: _Scope, ctx: _Context) -> ir.Expr:
        method = getattr(self, "_x_" + type(e).__name__)
        return method(e, scope, ctx)

    def _x_IntLit(self, e, scope, ctx):
        return ir.Const(e.span, "int", e.value)

    def _x_FloatLit(self, e, scope, ctx):
        return ir.Const(e.span, "float", e.value)

    def _x_BoolLit(self, e, scope, ctx):
        return ir.Const(e.span, "bool", e.value)

    def _x_StrLit(self, e, scope, ctx):
        return ir.Const(e.span, "int", self._token_id(e))

    def _x_Name(self, e: ast.Name, scope, ctx):
        binding = scope.lookup(e.id)
        if isinstance(binding, _ConstBinding):
            return ir.Const(e.span, binding.kind, binding.value)
        if isinstance(binding, _LocalBinding):
            return ir.Local(e.span, binding.kind, binding.uid, e.id)
        if e.id in INPUT_NAMES:
            if ctx.where != "init":
                raise self.error(f"'{e.id}' can only be read in a variable's initialiser; "
                                 "copy it into a variable there", e.span)
            return ir.InputRead(e.span, "int", e.id)
        if e.id in self.state_names:
            return self._read_state(e, ctx)
        if e.id in self.functions or e.id in BUILTINS:
            raise self.error(f"'{e.id}' is a function: call it, e.g. {e.id}(...)", e.span)
        if e.id in self.enums:
            raise self.error(f"'{e.id}' is an enum type, not a value", e.span)
        if e.id in self.pending_constants:
            line = self.pending_constants[e.id].line
            raise self.error(f"constant '{e.id}' is used before its declaration on line {line}: "
                             "a constant may only use constants declared before it", e.span)
        raise self._undefined(e)

    def _read_state(self, e: ast.Name, ctx: _Context) -> ir.Expr:
        if ctx.where == "const":
            raise self.error(f"this needs a value known at compile time, but '{e.id}' is a "
                             f"{'head' if e.id in self.head_names else 'variable'}, known only "
                             "at run time", e.span)
        if ctx.where == "init":
            raise self.error(f"an initialiser cannot read '{e.id}': initialisers read only "
                             "'token', 'position' and constants", e.span)
        if e.id in self.head_names:
            if ctx.where != "mlp":
                self._state_variable(e, "this expression")
            self.reads.add(e.id)
            head = self.heads[e.id]
            return ir.Read(e.span, ir.kind_of(head.type), e.id, True)
        self.reads.add(e.id)
        return ir.Read(e.span, ir.kind_of(self.variables[e.id].type), e.id)

    def _x_Unary(self, e: ast.Unary, scope, ctx):
        operand = self.lower_expr(e.operand, scope, ctx)
        if e.op == "+":
            self._numeric(operand, "+")
            return operand
        if e.op == "-":
            self._numeric(operand, "-")
            kind = "int" if operand.kind == "bool" else operand.kind
            if isinstance(operand, ir.Const):
                return ir.Const(e.span, kind, -operand.value)
            return ir.Unary(e.span, kind, "-", operand)
        self._require_truth(operand, "'not'")
        if isinstance(operand, ir.Const):
            return ir.Const(e.span, "bool", not operand.value)
        return ir.Unary(e.span, "bool", "not", operand)

    def _x_Binary(self, e: ast.Binary, scope, ctx):
        left = self.lower_expr(e.left, scope, ctx)
        right = self.lower_expr(e.right, scope, ctx)
        op = e.op
        if op == "..":
            if not (isinstance(left, ir.Const) and isinstance(right, ir.Const)
                    and left.kind == right.kind == "int"):
                raise self.error("a range 'a..b' needs two integers known at compile time",
                                 e.span)
            return ir.Const(e.span, "table", tuple(range(left.value, right.value + 1)))
        if left.kind == "table" or right.kind == "table":
            if op == "+" and left.kind == right.kind == "table":
                return ir.Const(e.span, "table", tuple(left.value) + tuple(right.value))
            raise self.error(f"type error: '{op}' does not apply to a table", e.span)
        if left.kind == "set" or right.kind == "set":
            if left.kind != right.kind or op not in ("|", "&", "-", "^"):
                raise self.error(f"type error: '{op}' between {_KIND_WORDS[left.kind]} and "
                                 f"{_KIND_WORDS[right.kind]}", e.span)
            self._small_set(left)
            self._small_set(right)
            kind = "set"
        else:
            self._numeric(left, op)
            self._numeric(right, op)
            if op == "/":
                kind = "float"
            elif op in ("^", "|", "&"):
                if "float" in (left.kind, right.kind):
                    raise self.error(f"type error: '{op}' needs integers or booleans", e.span)
                kind = "bool" if left.kind == right.kind == "bool" else "int"
            else:
                kind = "float" if "float" in (left.kind, right.kind) else "int"
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            return ir.Const(e.span, kind, self._fold_binary(op, left.value, right.value, e.span))
        if op in ("/", "//", "%") and isinstance(right, ir.Const) and right.value == 0:
            raise self.error("division by zero", e.right.span)
        return ir.Binary(e.span, kind, op, left, right)

    def _fold_binary(self, op, a, b, span):
        try:
            return apply_binary(op, a, b)
        except ZeroDivisionError:
            raise self.error("division by zero", span) from None

    def _x_Compare(self, e: ast.Compare, scope, ctx):
        left = self.lower_expr(e.left, scope, ctx)
        right = self.lower_expr(e.right, scope, ctx)
        if e.op in ("in", "not in"):
            return self._membership(e, left, right)
        if e.op in ("==", "!="):
            if (left.kind == "set") != (right.kind == "set") or "table" in (left.kind, right.kind):
                raise self.error(f"type error: cannot compare {_KIND_WORDS[left.kind]} with "
                                 f"{_KIND_WORDS[right.kind]}", e.span)
        else:
            self._numeric(left, e.op)
            self._numeric(right, e.op)
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            return ir.Const(e.span, "bool", apply_compare(e.op, left.value, right.value))
        if left.kind == "set":
            self._small_set(left)
            self._small_set(right)
        if e.op in ("==", "!="):
            self._check_labels(e.right, scope, e.left)
            self._check_labels(e.left, scope, e.right)
            self._check_comparable_value(left, right, self._generic(e.right, scope))
            self._check_comparable_value(right, left, self._generic(e.left, scope))
        return ir.Compare(e.span, "bool", e.op, left, right)

    def _check_comparable_value(self, read: ir.Expr, const: ir.Expr, generic: bool) -> None:
        """`x == 7` where 7 is not a value of x can never hold (nor `x != 7` fail): an error
        wherever it is written (MLP, halting condition, output filter), a warning where the
        constant comes from a loop variable or a helper's argument (generic code, unrolled or
        inlined at compile time, where such a case is expected)."""
        if not (isinstance(read, ir.Read) and isinstance(const, ir.Const)):
            return
        type_ = self.variables[read.name].type if not read.is_head else self.heads[read.name].type
        if isinstance(type_, ir.SetValued) or type_.contains(_coerce(const.value, read.kind)):
            return
        message = (f"{show(const.value)} is not a value of '{read.name}' ({type_.describe()}), so "
                   "this comparison is decided in advance")
        if generic:
            self.warn(message + " (here, in code unrolled or inlined at compile time)",
                      const.span)
            return
        raise self.error(message, const.span)

    def _generic(self, e: ast.Expr, scope: _Scope) -> bool:
        """Whether `e` uses a name bound by compile-time code generation (see _ConstBinding)."""
        for name in _ast_names(e):
            binding = scope.lookup(name.id)
            if isinstance(binding, _ConstBinding) and binding.generic:
                return True
        return False

    # -- labelled values: tokens and enum members -------------------------------------------

    def _label_domain(self, name: str) -> str | None:
        """What a variable's or head's values name: "vocab" (tokens), "enum E", or None."""
        return self.label_domains.get(name)

    def _labels_of(self, e: ast.Expr, scope: _Scope):
        """(node, domain) for the parts of `e` that are labelled values written as such:
        string literals (tokens) and enum members, through the branches of `a if c else b`.
        (Reads of variables are integers like any categorical value, and may be copied
        between categorical variables of any kind.)"""
        if isinstance(e, ast.StrLit):
            yield e, "vocab"
        elif isinstance(e, ast.Name):
            binding = scope.lookup(e.id)
            if isinstance(binding, _ConstBinding) and e.id in self.enum_of_member \
                    and self.globals.names.get(e.id) is binding:
                yield e, f"enum {self.enum_of_member[e.id]}"
        elif isinstance(e, ast.IfExpr):
            yield from self._labels_of(e.then, scope)
            yield from self._labels_of(e.orelse, scope)

    def _check_labels(self, value: ast.Expr, scope: _Scope, target: ast.Expr | str) -> None:
        """A string literal (a token) where an enum member belongs, a member of another enum,
        or a member where a token belongs is a type error: both are integers, but they name
        different things. `target` is the variable written, or the expression compared with
        (checked when it is a variable or head read as such)."""
        if isinstance(target, ast.Name) and target.id in self.state_names:
            target = target.id
        if not isinstance(target, str) or self._label_domain(target) is None:
            return
        want = self._label_domain(target)
        for node, got in self._labels_of(value, scope):
            if got != want:
                what = f'"{node.value}"' if isinstance(node, ast.StrLit) else f"'{node.id}'"
                raise self.error(f"type error: {what} is {_domain_words(got)}, but '{target}' "
                                 f"holds {_domain_words(want, plural=True)}", node.span)

    def _small_set(self, e: ir.Expr) -> None:
        """Run-time set values hold integers 0 .. SET_ELEMENTS - 1."""
        if isinstance(e, ir.Const) and any(not 0 <= v < SET_ELEMENTS for v in e.value):
            raise self.error(f"set {show(e.value)} has elements outside 0..{SET_ELEMENTS - 1}, "
                             "the range of set values", e.span)

    def _membership(self, e, left, right):
        negated = e.op == "not in"
        if right.kind == "table" or (right.kind == "set" and isinstance(right, ir.Const)):
            if isinstance(left, ir.Const):
                return ir.Const(e.span, "bool", (left.value in right.value) != negated)
            return ir.Member(e.span, "bool", left, ir.Const(right.span, "set",
                                                                frozenset(right.value)), negated)
        if right.kind != "set":
            raise self.error(f"type error: 'in' needs a set or a collection on the right, not "
                             f"{_KIND_WORDS[right.kind]}", e.right.span)
        if left.kind not in ("int", "bool"):
            raise self.error(f"type error: only integers can be members of a set, not "
                             f"{_KIND_WORDS[left.kind]}", e.left.span)
        return ir.Member(e.span, "bool", left, right, negated)

    def _x_BoolOp(self, e: ast.BoolOp, scope, ctx):
        out = None
        for item in e.values:
            value = self.lower_expr(item, scope, ctx)
            self._require_truth(value, f"an operand of '{e.op}'")
            if out is None:
                out = value
                continue
            if isinstance(out, ir.Const):  # short-circuit at compile time
                decided = bool(out.value) if e.op == "or" else not out.value
                out = ir.Const(out.span, "bool", bool(out.value)) if decided else value
            else:
                out = ir.Logical(e.span, "bool", e.op, out, value)
        if isinstance(out, ir.Const) or out.kind == "bool":
            return ir.Const(out.span, "bool", bool(out.value)) if isinstance(out, ir.Const) \
                else out
        return ir.Compare(out.span, "bool", "!=", out, ir.Const(out.span, out.kind, 0))

    def _x_IfExpr(self, e: ast.IfExpr, scope, ctx):
        cond = self.lower_expr(e.cond, scope, ctx)
        self._require_truth(cond, "a condition")
        if isinstance(cond, ir.Const):
            return self.lower_expr(e.then if cond.value else e.orelse, scope, ctx)
        then = self.lower_expr(e.then, scope, ctx)
        orelse = self.lower_expr(e.orelse, scope, ctx)
        return ir.Cond(e.span, self._join_kinds(then, orelse, e.span), cond, then, orelse)

    def _join_kinds(self, a: ir.Expr, b: ir.Expr, span: Span) -> str:
        if a.kind == b.kind:
            return a.kind
        if _is_numeric(a.kind) and _is_numeric(b.kind):
            return "float" if "float" in (a.kind, b.kind) else "int"
        raise self.error(f"type error: the two branches give {_KIND_WORDS[a.kind]} and "
                         f"{_KIND_WORDS[b.kind]}", span)

    def _x_Collection(self, e: ast.Collection, scope, ctx):
        items = [self.lower_expr(i, scope, ctx) for i in e.items]
        if all(isinstance(i, ir.Const) for i in items):
            values = [i.value for i in items]
            if e.kind == "set":
                return self._constant_set(values, e.span)
            return ir.Const(e.span, "table", tuple(values))
        if e.kind != "set":
            raise self.error("a list or tuple must be known at compile time", e.span)
        # A set built from run-time integers: union of singletons.
        out = None
        for item in items:
            if item.kind not in ("int", "bool"):
                raise self.error("set elements must be integers", item.span)
            single = ir.Builtin(item.span, "set", "singleton", (item,))
            out = single if out is None else ir.Binary(e.span, "set", "|", out, single)
        return out

    def _x_Comprehension(self, e: ast.Comprehension, scope, ctx):
        items = self._constant_collection(e.iterable, scope, ctx, "a comprehension")
        values = []
        for item in (sorted(items) if isinstance(items, frozenset) else items):
            inner = scope.child()
            self._bind_targets(e.targets, item, inner, e.iterable.span)
            if e.condition is not None and not self.const_eval(e.condition, inner):
                continue
            values.append(self.const_eval(e.element, inner))
        if e.kind == "set":
            return self._constant_set(values, e.span)
        return ir.Const(e.span, "table", tuple(values))

    def _constant_set(self, values: list, span: Span) -> ir.Const:
        """A set of integers is a set value; of other numbers or of sets, a sorted table."""
        kinds = {_kind_of_value(v) for v in values}
        if kinds <= {"int", "bool"}:
            return ir.Const(span, "set", frozenset(int(v) for v in values))
        if "table" in kinds or ("set" in kinds and kinds != {"set"}):
            raise self.error("set elements must be numbers, or all sets", span)
        return ir.Const(span, "table", tuple(sorted(set(values), key=sort_key)))

    def _x_Index(self, e: ast.Index, scope, ctx):
        base = self.lower_expr(e.value, scope, ctx)
        index = self.lower_expr(e.index, scope, ctx)
        if index.kind not in ("int", "bool"):
            raise self.error(f"an index must be an integer, not {_KIND_WORDS[index.kind]}",
                             e.index.span)
        if isinstance(base, ir.Lookup):  # a table already indexed at run time
            table, indices = base.table, base.indices
        elif isinstance(base, ir.Const) and base.kind == "table":
            table, indices = base.value, ()
        else:
            raise self.error(f"only tables can be indexed, not {_KIND_WORDS[base.kind]}",
                             e.value.span)
        depth = len(indices)
        if isinstance(index, ir.Const):
            try:
                table = _select_axis(table, depth, int(index.value))
            except (IndexError, TypeError):
                raise self.error(f"index {index.value} is out of range for this table",
                                 e.index.span) from None
            if not indices:
                value = table
                return ir.Const(e.span, _kind_of_value(value), value)
        else:
            indices = indices + (index,)
        leaf = _table_leaf_kind(table, len(indices))
        if leaf is None:
            raise self.error("a table indexed by a run-time value must be rectangular, with "
                             "numbers (or sets) in every cell", e.span)
        # A "table" kind means more indices must follow (T[x] of a 2-D T); used as a value,
        # it is a type error wherever it lands.
        return ir.Lookup(e.span, leaf, table, indices)

    def _x_Call(self, e: ast.Call, scope, ctx):
        name = e.func.id
        if name in BUILTINS:
            return self._builtin(e, [self.lower_expr(a, scope, ctx) for a in e.args])
        if name not in self.functions:
            if scope.lookup(name) is not None or name in self.declared:
                raise self.error(f"'{name}' is not a function", e.func.span)
            raise self._undefined(e.func, "function")
        func = self.functions[name]
        if len(e.args) != len(func.params):
            raise self.error(f"'{name}' takes {len(func.params)} argument(s), got "
                             f"{len(e.args)}", e.span)
        if name in self.inlining:
            chain = " -> ".join(self.inlining[self.inlining.index(name):] + [name])
            raise self.error(f"recursive call ({chain}): helper functions are inlined and "
                             "cannot be recursive", e.span)
        self.called.add(name)
        args = [self.lower_expr(a, scope, ctx) for a in e.args]
        inner = self.globals.child()
        lets = []
        for param, arg in zip(func.params, args):
            self._bind_local_name(param, inner)
            if isinstance(arg, ir.Const):
                inner.names[param.id] = _ConstBinding(arg.value, arg.kind, generic=True)
            else:
                uid = next(self.uids)
                inner.names[param.id] = _LocalBinding(uid, arg.kind)
                lets.append((uid, param.id, arg))
        self.inlining.append(name)
        try:
            body = self._function_body(list(func.body), inner,
                                       _Context(ctx.where, in_function=name), func)
        finally:
            self.inlining.pop()
        for uid, pname, arg in reversed(lets):
            body = ir.LetIn(e.span, body.kind, uid, pname, arg, body)
        return body

    def _function_body(self, stmts: list, scope: _Scope, ctx: _Context,
                       func: ast.FuncDecl) -> ir.Expr:
        """A helper's statements (lets, ifs, loops, returns) become one expression."""
        while stmts:
            s, rest = stmts[0], stmts[1:]
            if isinstance(s, ast.Pass):
                stmts = rest
                continue
            if isinstance(s, _Bind):
                scope = scope.child()
                self._bind_targets(s.targets, s.value, scope, s.span)
                stmts = rest
                continue
            if isinstance(s, ast.Return):
                return self.lower_expr(s.value, scope, ctx)
            if isinstance(s, ast.Let):
                value = self.lower_expr(s.value, scope, ctx)
                scope = scope.child()
                self._bind_local_name(s.target, scope)
                if isinstance(value, ir.Const):
                    scope.names[s.target.id] = _ConstBinding(value.value, value.kind,
                                                             self._generic(s.value, scope))
                    stmts = rest
                    continue
                uid = next(self.uids)
                scope.names[s.target.id] = _LocalBinding(uid, value.kind)
                body = self._function_body(rest, scope, ctx, func)
                return ir.LetIn(s.span, body.kind, uid, s.target.id, value, body)
            if isinstance(s, ast.For):
                unrolled = []
                for item in self._iterate(s, scope, ctx):
                    unrolled.append(_Bind(s.targets, item, s.iterable.span))
                    unrolled.extend(s.body)
                stmts = unrolled + rest
                continue
            if isinstance(s, ast.If):
                (cond_ast, body), others = s.branches[0], s.branches[1:]
                orelse = [ast.If(s.span, others, s.orelse)] if others else list(s.orelse)
                cond = self.lower_expr(cond_ast, scope, ctx)
                self._require_truth(cond, "an 'if' condition")
                if isinstance(cond, ir.Const):
                    stmts = (list(body) if cond.value else orelse) + rest
                    continue
                then = self._function_body(list(body) + rest, scope, ctx, func)
                other = self._function_body(orelse + rest, scope, ctx, func)
                return ir.Cond(s.span, self._join_kinds(then, other, s.span), cond, then, other)
            if isinstance(s, ast.Assign):
                self._lower_assign(s, scope, ctx)  # raises: helpers are pure
            raise AssertionError(s)
        raise self.error(f"helper function '{func.name.id}' can reach its end without "
                         "'return'", func.name.span)

    def _builtin(self, e: ast.Call, args: list[ir.Expr]) -> ir.Expr:
        name = e.func.id
        arity = {"abs": 1, "round": 1, "len": 1}
        if name in arity and len(args) != 1:
            raise self.error(f"'{name}' takes 1 argument, got {len(args)}", e.span)
        if name in ("min", "max"):
            if len(args) == 1 and isinstance(args[0], ir.Const) and args[0].kind == "table":
                values = args[0].value
                if not values:
                    raise self.error(f"'{name}' of an empty collection", e.span)
                value = min(values) if name == "min" else max(values)
                return ir.Const(e.span, _kind_of_value(value), value)
            if len(args) < 2:
                raise self.error(f"'{name}' takes two or more numbers, or one constant "
                                 "collection", e.span)
            for a in args:
                self._numeric(a, name)
            kind = "float" if any(a.kind == "float" for a in args) else "int"
            out = args[0]
            for a in args[1:]:
                if isinstance(out, ir.Const) and isinstance(a, ir.Const):
                    out = ir.Const(e.span, kind, apply_builtin(name, (out.value, a.value)))
                else:
                    out = ir.Builtin(e.span, kind, name, (out, a))
            return out
        (arg,) = args
        if name == "len":
            if arg.kind == "table" or (arg.kind == "set" and isinstance(arg, ir.Const)):
                return ir.Const(e.span, "int", len(arg.value))
            if arg.kind != "set":
                raise self.error(f"'len' needs a set or a collection, not "
                                 f"{_KIND_WORDS[arg.kind]}", e.span)
            return ir.Builtin(e.span, "int", "len", (arg,))
        self._numeric(arg, name)
        kind = "int" if name == "round" or arg.kind != "float" else "float"
        if isinstance(arg, ir.Const):
            return ir.Const(e.span, kind, apply_builtin(name, (arg.value,)))
        return ir.Builtin(e.span, kind, name, (arg,))


# ---- helpers -------------------------------------------------------------------------------

def _coerce(value, kind: str):
    if kind == "int" and isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, (int, bool)):
        return float(value)
    return value


def _select_axis(table, axis: int, index: int):
    """table[..., index, ...] along `axis` (the axes before it are indexed at run time)."""
    if index < 0:
        raise IndexError(index)
    if axis == 0:
        return table[index]
    return tuple(_select_axis(row, axis - 1, index) for row in table)


def _table_leaf_kind(table, depth: int) -> str | None:
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
    kinds = {_kind_of_value(v) for v in _flatten(table, len(full))}
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


def _inputs_read(e: ir.Expr) -> set[str]:
    return {node.which for node in ir.walk(e) if isinstance(node, ir.InputRead)}


