"""MLP body -> sparse rules, by lazy symbolic enumeration, then minimisation.

The MLP body is executed over *partial* assignments: a variable (or head output) gets a
value only when the body reads it, on the path where it is read; reading an unassigned one
forks the execution over its domain: the values it can actually take (alta.compiler.values),
so paths no input reaches give neither rules nor errors. Each finished path is a
conjunction of the atoms it read and the writes it made.

The compiled MLP adds new - old to the residual, so a write must also remove the old value.
Either each writing path forks over the old value (one rule per old value; a path that
changes nothing gives none), or the write is *guarded*: each path becomes a rule that adds
its new value, and the region where the variable is written (the writing paths' conditions,
merged into a few boxes such as `phase == 3 and part == A`) gets one *clear* unit per box
and old value, which removes the old one. Each variable gets whichever form has fewer rules:
for addition's digit sums, 2 boxes x 19 clear units replace a nineteenfold fork.

Minimisation then merges rules with the same effect whose atoms agree everywhere but on one
variable, taking the union of that variable's values (an atom is "x in {values}", which one
unit reads exactly on a one-hot block), and drops an atom whose values cover its whole domain.
Rules from different paths are disjoint, and merging keeps them so.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from alta import ir, semantics
from alta.errors import AltaError, Span
from alta.semantics import apply_binary, apply_builtin, apply_compare, show

Domains = Mapping[str, tuple]  # per variable and head output, the values enumerated


@dataclass(frozen=True)
class StaticRows:
    """The values that variables no MLP path writes can take *together*: each is fixed by
    the token and position it was initialised from, so only some combinations occur (no
    word stands at a framing token's position). A fork over one of them takes only the
    values that agree with those already read on the path."""

    names: tuple[str, ...]
    rows: frozenset[tuple]

    def options(self, name: str, assignment: dict, values: tuple) -> tuple:
        i = self.names.index(name)
        fixed = [(j, assignment[n]) for j, n in enumerate(self.names) if n in assignment]
        possible = {row[i] for row in self.rows if all(row[j] == v for j, v in fixed)}
        return tuple(v for v in values if v in possible)


class ReachableDomains(dict):
    """Domains (name -> values) with the joint values of the static variables, and the
    names the MLP copies linearly (`linear_copies`), which are never forked over."""

    def __init__(self, values: Mapping[str, tuple], static: StaticRows | None,
                 copies: Copies | None = None,
                 compared: Mapping[str, tuple] | None = None) -> None:
        super().__init__(values)
        self.static = static
        self.copies = copies or Copies(frozenset(), frozenset())
        self.compared = compared or {}
        # Per name read only in comparisons with constants: its values in classes that no
        # comparison tells apart, each under its first value (the one a fork takes).
        # (Not the static variables': their forks take the values the others allow.)
        self.classes = {name: value_classes(values[name], tests)
                        for name, tests in self.compared.items() if name in values
                        and (static is None or name not in static.names)}

    def extended(self, more: Mapping[str, tuple]) -> ReachableDomains:
        return ReachableDomains({**self, **more}, self.static, self.copies, self.compared)


def value_classes(values: tuple, tests: tuple) -> dict[object, frozenset]:
    """`values` grouped by what each comparison `(op, constant, constant_on_the_left)`
    says of them: {first value of a class: the class}."""
    classes: dict[tuple, list] = {}
    for v in values:
        signature = tuple(apply_compare(op, c, v) if left else apply_compare(op, v, c)
                          for op, c, left in tests)
        classes.setdefault(signature, []).append(v)
    return {members[0]: frozenset(members) for members in classes.values()}


def compared_only(program: ir.Program, copies: Copies) -> dict[str, tuple]:
    """The numerical names that the MLP and halting condition read only in comparisons
    with constants (and in linear copies, which read nothing), with those comparisons: a
    path then depends on such a name only through the class of its value, so forking over
    one value per class is exact (and a mean over 60 positions forks 2 ways at `> 0.5`,
    not 1,103)."""
    code = (program.mlp, program.halt) if program.halt is not None else program.mlp
    reads, known, tests = Counter(), Counter(), {}
    for node in ir.walk(code):
        if isinstance(node, ir.Read):
            reads[node.name] += 1
        elif isinstance(node, ir.Assign) and isinstance(node.value, ir.Read) \
                and node.value.name in copies.sources:
            known[node.value.name] += 1
        elif isinstance(node, ir.Compare):
            for read, other, left in ((node.left, node.right, False),
                                      (node.right, node.left, True)):
                if isinstance(read, ir.Read) and isinstance(other, ir.Const) \
                        and isinstance(program.type_of(read.name), ir.Numerical):
                    known[read.name] += 1
                    tests.setdefault(read.name, set()).add((node.op, other.value, left))
                    break
    # A variable the MLP writes otherwise than by linear copies must be read exactly: its
    # old value is removed value by value.
    written = set(written_variables(program)) - copies.targets
    return {name: tuple(sorted(found, key=repr)) for name, found in tests.items()
            if reads[name] == known[name] and name not in written}


@dataclass(frozen=True)
class Copy:
    """A written value that is whatever the numerical head or variable `name` holds: the
    compiled MLP carries it through linearly (compiler/weights.py), one unit for every
    value instead of a bucket and a rule per value."""

    name: str


@dataclass(frozen=True)
class Copies:
    """`sources`: the numerical heads and variables whose copies (an assignment of the whole
    value, `frac = share`) compile linearly, each into a variable that holds at least its
    values (other reads of them fork as any read does); `targets`: the variables written
    such copies, whose old value is then removed linearly too (a `Copy` of itself)
    wherever the writing path has not read it."""

    sources: frozenset[str]
    targets: frozenset[str]


def linear_copies(program: ir.Program) -> Copies:
    """Which copies compile linearly. Linear copying keeps the number itself, where the
    interpreter's reads snap it to a declared value, so it is sound only where snapping
    cannot change it: the source holds declared values (a variable), or a head whose
    declared values include every mean it can take (alta.means.every_mean: a head whose
    values ALTA derived, or declared in full); and each target's values include the
    source's and lie no closer together, so the target snaps the source's number, with the
    error the head's scale allows (compiler/buckets.py), back to the same value."""
    from alta.means import every_mean

    code = (program.mlp, program.halt) if program.halt is not None else program.mlp
    copies: dict[str, set[str]] = {}
    for node in ir.walk(code):
        if isinstance(node, ir.Assign) and isinstance(node.value, ir.Read):
            copies.setdefault(node.value.name, set()).add(node.variable)
    sources = set()
    for name, targets in copies.items():
        type_ = program.type_of(name)
        if not isinstance(type_, ir.Numerical) or len(type_.values) < 2:
            continue
        if name in program.head_index:
            head = program.head(name)
            source = program.type_of(head.value).values
            count = len(head.offsets) if head.offsets is not None else program.max_length
            if head.counts or head.same or count is None:
                continue
            means = every_mean(source, count)
            if means is None or not all(type_.contains(m) for m in means):
                continue
        gap = _smallest_gap(type_.values)
        if all(isinstance(program.type_of(t), ir.Numerical)
               and all(program.type_of(t).contains(v) for v in type_.values)
               and _smallest_gap(program.type_of(t).values) >= gap for t in targets):
            sources.add(name)
    return Copies(frozenset(sources),
                  frozenset(t for name in sources for t in copies[name]))


def _smallest_gap(values: tuple[float, ...]) -> float:
    return min((b - a for a, b in itertools.pairwise(values)), default=float("inf"))


def _fork_values(domains: Domains, name: str, assignment: dict) -> tuple:
    if isinstance(domains, ReachableDomains) and domains.static is not None \
            and name in domains.static.names:
        return domains.static.options(name, assignment, domains[name])
    if isinstance(domains, ReachableDomains) and name in domains.classes:
        return tuple(domains.classes[name])  # one value per class
    return domains[name]


def atom_values(domains: Domains, name: str, value) -> frozenset:
    """What a path that read `value` of `name` knows: the value, or its whole class."""
    if isinstance(domains, ReachableDomains) and name in domains.classes \
            and value in domains.classes[name]:
        return domains.classes[name][value]
    return frozenset({value})


@dataclass(frozen=True)
class Atom:
    """`name` (a variable or head) has one of `values`."""

    name: str
    values: frozenset


@dataclass(frozen=True)
class Write:
    """Adds `new` to the variable's dimensions and removes `old`; either may be None (a
    guarded write's rule only adds, its clear units only remove)."""

    variable: str
    old: object
    new: object

    def describe(self, program: ir.Program) -> str:
        type_ = program.type_of(self.variable)

        def shown(value) -> str:
            return value.name if isinstance(value, Copy) else type_.format(value)

        if self.old is None:
            return f"{self.variable} := {shown(self.new)}"
        if self.new is None:
            return f"{self.variable}: clear {shown(self.old)}"
        return f"{self.variable}: {shown(self.old)} -> {shown(self.new)}"


@dataclass(frozen=True)
class Rule:
    atoms: tuple[Atom, ...]  # sorted by name
    writes: tuple[Write, ...]  # sorted by variable; empty for a condition's rules
    lines: tuple[int, ...]  # source lines of the writes (or the condition)

    def describe(self, program: ir.Program) -> str:
        def value(name, v):
            return program.type_of(name).format(v)

        conds = " and ".join(
            f"{a.name} == {value(a.name, next(iter(a.values)))}" if len(a.values) == 1 else
            f"{a.name} in {{{', '.join(value(a.name, v) for v in sorted(a.values, key=_key))}}}"
            for a in self.atoms) or "always"
        effects = ", ".join(w.describe(program) for w in self.writes)
        return f"if {conds}: {effects}" if effects else f"when {conds}"


def declared_domain(program: ir.Program, name: str) -> tuple:
    """Every value of a variable's or head output's declared type (the enumeration uses the
    values it can actually take instead: alta.compiler.values)."""
    type_ = program.type_of(name)
    if isinstance(type_, ir.Categorical):
        return tuple(type_.values)
    if isinstance(type_, ir.Numerical):
        return type_.values
    return type_.sets


def _key(v):
    return (len(v), sorted(v)) if isinstance(v, frozenset) else v


# ---- scalar execution over a partial assignment ------------------------------------------

class _Fork(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class PathError(Exception):
    """A run-time error (division by zero, a table index, a bad write) on a path."""

    def __init__(self, span: Span, message: str) -> None:
        self.span, self.message = span, message


@dataclass(frozen=True)
class _Deferred:
    """A local not evaluated yet. Locals are evaluated when first used, so a binding that
    decides nothing reads nothing and forks nothing (it cannot change what a path writes;
    the interpreter evaluates it eagerly, which only adds errors, never other values)."""

    expr: ir.Expr


class _Path:
    """Executes IR on scalars; reading an unassigned variable raises _Fork."""

    def __init__(self, assignment: dict, inputs: dict | None = None,
                 program: ir.Program | None = None, copies: frozenset[str] = frozenset()
                 ) -> None:
        self.program = program
        self.copies = copies  # names whose copies are written as `Copy`, never read
        self.assignment = assignment
        self.inputs = inputs or {}
        self.locals: dict[int, object] = {}
        self.writes: dict[str, object] = {}
        self.lines: dict[str, int] = {}

    def eval(self, e: ir.Expr):
        match e:
            case ir.Read():
                if e.name not in self.assignment:
                    raise _Fork(e.name)
                return self.assignment[e.name]
            case ir.Const():
                return e.value
            case ir.Local():
                value = self.locals[e.uid]
                if isinstance(value, _Deferred):
                    value = self.locals[e.uid] = self.eval(value.expr)
                return value
            case ir.InputRead():
                return self.inputs[e.which]
            case ir.Unary():
                x = self.eval(e.operand)
                return -x if e.op == "-" else not x
            case ir.Binary():
                return self._binary(e)
            case ir.Compare():
                return apply_compare(e.op, self.eval(e.left), self.eval(e.right))
            case ir.Member():
                return (int(self.eval(e.element)) in self.eval(e.container)) != e.negated
            case ir.Logical():
                left = bool(self.eval(e.left))
                if left == (e.op == "or"):
                    return left
                return bool(self.eval(e.right))
            case ir.Cond():
                return self.eval(e.then) if self.eval(e.cond) else self.eval(e.orelse)
            case ir.Builtin():
                return self._builtin(e)
            case ir.Lookup():
                return self._lookup(e)
            case ir.LetIn():
                self.locals[e.uid] = _Deferred(e.value)
                return self.eval(e.body)
        raise AssertionError(e)

    def _binary(self, e: ir.Binary):
        a, b = self.eval(e.left), self.eval(e.right)
        if e.kind == "bool":
            a, b = bool(a), bool(b)
        elif e.kind == "int":
            a, b = int(a), int(b)
        try:
            return apply_binary(e.op, a, b)
        except ZeroDivisionError:
            raise PathError(e.span, semantics.DIVISION_BY_ZERO) from None

    def _builtin(self, e: ir.Builtin):
        args = [self.eval(a) for a in e.args]
        if e.name == "len":
            return len(args[0])
        if e.name == "singleton":
            if not semantics.element_fits(int(args[0])):
                raise PathError(e.span, semantics.SET_ELEMENT_ERROR)
            return frozenset({int(args[0])})
        return apply_builtin(e.name, tuple(args))

    def _lookup(self, e: ir.Lookup):
        table = e.table
        for index in e.indices:
            i = int(self.eval(index))
            if not semantics.index_fits(i, len(table)):
                raise PathError(index.span, semantics.index_error(len(table), i))
            table = table[i]
        return table

    def run(self, stmts) -> None:
        for s in stmts:
            if isinstance(s, ir.Assign) and isinstance(s.value, ir.Read) \
                    and s.value.name in self.copies:  # its values fit (linear_copies)
                self.writes[s.variable] = Copy(s.value.name)
                self.lines[s.variable] = s.span.line
            elif isinstance(s, ir.Assign):
                value = self.eval(s.value)
                type_ = self.program.type_of(s.variable)
                if not type_.contains(int(value) if isinstance(value, bool) else value):
                    # Every write is checked, like the interpreter does, even one that a
                    # later write on the same path replaces.
                    raise PathError(s.span, f"writes {_show_value(type_, value)} to "
                                             f"'{s.variable}', which is not one of its values "
                                             f"({type_.describe()}),")
                self.writes[s.variable] = _coerce(type_, value)
                self.lines[s.variable] = s.span.line
            elif isinstance(s, ir.LetStmt):
                self.locals[s.uid] = _Deferred(s.value)
            else:
                self.run(s.then if self.eval(s.cond) else s.orelse)


def evaluate_scalar(expr: ir.Expr, inputs: dict | None = None):
    """One expression on scalars, e.g. an initialiser with `position` bound."""
    return _Path({}, inputs).eval(expr)


def _explore(program: ir.Program, execute, domains: Domains):
    """Every path of `execute(path)`, as (assignment, path) once it finishes; a read forks
    over the values `domains` gives the name."""
    pending: list[dict] = [{}]
    copies = domains.copies.sources if isinstance(domains, ReachableDomains) else frozenset()
    while pending:
        assignment = pending.pop()
        path = _Path(assignment, program=program, copies=copies)
        try:
            execute(path)
        except _Fork as fork:
            for value in reversed(_fork_values(domains, fork.name, assignment)):
                pending.append({**assignment, fork.name: value})
            continue
        except PathError as err:
            raise _located(program, err.span, f"{err.message} on the path where "
                                              f"{_describe(program, assignment)}") from None
        yield assignment, path


def _describe(program: ir.Program, assignment: dict) -> str:
    if not assignment:
        return "nothing has been read"
    return ", ".join(f"{k} = {program.type_of(k).format(v)}" for k, v in assignment.items())


def _located(program: ir.Program, span: Span, message: str) -> AltaError:
    return AltaError.at(message, span, program.source)


def _coerce(type_: ir.ValueType, value):
    """What a checked write stores (the interpreter stores the same)."""
    if isinstance(type_, ir.Categorical):
        return int(value)
    if isinstance(type_, ir.Numerical):
        return type_.declared(value)
    return value


def written_variables(program: ir.Program) -> list[str]:
    """The variables the MLP body can write, in the order they are first written."""
    return _written(program.mlp)


def writing_paths(program: ir.Program, name: str, domains: Domains) -> list[tuple]:
    """Every path of the MLP that writes `name`, as (assignment read, value written, line),
    enumerated on the variable's slice of the body: the statements that can write it (other
    assignments and ifs that cannot write it are left out; reads see pre-MLP values, so
    nothing else can change what it gets). A path that writes a value outside the
    variable's range, divides by zero or indexes outside a table is a located error."""
    body = _slice(program.mlp, name)
    return [(assignment, path.writes[name], path.lines[name])
            for assignment, path in _explore(program, lambda p: p.run(body), domains)
            if name in path.writes]


def mlp_rules(program: ir.Program, domains: Domains) -> list[Rule]:
    """The unminimised rules of the MLP body, variable by variable.

    Each written variable is enumerated on its own slice of the body (`writing_paths`), so
    independent statements add up instead of multiplying, and each rule writes one
    variable: at a position, at most one rule per variable (and one clear unit) fires."""
    rules = []
    targets = domains.copies.targets if isinstance(domains, ReachableDomains) else frozenset()
    for name in written_variables(program):
        writing = writing_paths(program, name, domains)
        if name in targets:  # the old value goes linearly too: one rule per path
            rules.extend(r for a, new, line in writing
                         for r in _rules_for_write(domains, a, name, new, line, True))
            continue
        forked = sum(len(_rules_for_write(domains, a, name, new, line))
                     for a, new, line in writing)
        region = _region(program, [a for a, _, _ in writing], domains)
        guarded = len(writing) + sum(len(cube.get(name, domains[name])) for cube in region)
        if writing and guarded < forked:
            rules.extend(_guarded_rules(name, writing, region, domains))
        else:
            rules.extend(r for a, new, line in writing
                         for r in _rules_for_write(domains, a, name, new, line))
    return rules


def _region(program: ir.Program, writing: list[dict], domains: Domains) -> list[dict]:
    """Disjoint boxes (per name, a set of values) whose union is exactly where some path
    writes: the writing paths' own conditions, merged. No other path enters them, since
    paths are disjoint, and every atom of a box is read on the paths it came from."""
    marked = [Rule(_atoms(a, domains), (), ()) for a in writing]
    return [{atom.name: atom.values for atom in rule.atoms}
            for rule in minimise(program, marked, domains)]


def _guarded_rules(name: str, writing, region: list[dict], domains: Domains) -> list[Rule]:
    """Rules that add each path's new value, and per box of the region and old value a unit
    that removes the old value."""
    rules = [Rule(_atoms(assignment, domains), (Write(name, None, new),), (line,))
             for assignment, new, line in writing]
    lines = tuple(sorted({line for _, _, line in writing}))
    for box in region:
        for old in box.get(name, domains[name]):
            atoms = {**box, name: frozenset({old})}
            rules.append(Rule(tuple(Atom(n, atoms[n]) for n in sorted(atoms)),
                              (Write(name, old, None),), lines))
    return rules


def _atoms(assignment: dict, domains: Domains) -> tuple[Atom, ...]:
    return tuple(Atom(k, atom_values(domains, k, v)) for k, v in sorted(assignment.items()))


def _written(stmts) -> list[str]:
    names: list[str] = []
    for s in stmts:
        if isinstance(s, ir.Assign):
            names.append(s.variable)
        elif isinstance(s, ir.IfStmt):
            names.extend(_written(s.then) + _written(s.orelse))
    return list(dict.fromkeys(names))


def names_read_writing(program: ir.Program, name: str) -> set[str]:
    """The variables and heads that the statements which can write `name` read."""
    return {n.name for n in ir.walk(_slice(program.mlp, name)) if isinstance(n, ir.Read)}


def _slice(stmts, name: str) -> tuple:
    """The statements that can write `name` (lets are kept: they are evaluated lazily)."""
    out = []
    for s in stmts:
        if isinstance(s, ir.Assign):
            if s.variable == name:
                out.append(s)
        elif isinstance(s, ir.LetStmt):
            out.append(s)
        elif name in _written((s,)):
            out.append(replace(s, then=_slice(s.then, name), orelse=_slice(s.orelse, name)))
    return tuple(out)


def _show_value(type_, value) -> str:
    return show(value) if not isinstance(type_, ir.Categorical) else str(value)


def _rules_for_write(domains: Domains, assignment: dict, name: str, new,
                     line: int, linear: bool = False) -> list[Rule]:
    """A path's write as rules: one if the path read the old value, else one per old value
    (the MLP adds new - old), or one that removes it linearly (`linear`: a `Copy` of the
    variable itself, read on no atom). A write that changes nothing needs no rule; old and
    new are both declared values (writes are stored as `_coerce` makes them) or copies, so
    equality is exact."""
    classes = domains.classes if isinstance(domains, ReachableDomains) else {}
    if linear and (name not in assignment or name in classes):  # (a class: not one value)
        return [Rule(_atoms(assignment, domains), (Write(name, Copy(name), new),), (line,))] \
            if new != Copy(name) else []
    olds = [assignment[name]] if name in assignment else domains[name]
    return [Rule(_atoms({**assignment, name: old}, domains), (Write(name, old, new),), (line,))
            for old in olds if old != new]


def condition_rules(program: ir.Program, expr: ir.Expr, domains: Domains) -> list[Rule]:
    """Rules covering exactly the assignments where a state-level condition holds."""
    rules = []
    holds = {}

    def execute(path):
        holds[id(path)] = bool(path.eval(expr))

    for assignment, path in _explore(program, execute, domains):
        if holds.pop(id(path)):
            rules.append(Rule(_atoms(assignment, domains), (), (expr.span.line,)))
    return rules


def guarded_region(program: ir.Program, guards, definitions: dict[int, ir.Expr],
                   domains: Domains) -> list[dict]:
    """The partial assignments on which every (condition, truth) of `guards` holds, the
    conditions evaluated in order (a later one only where the earlier ones hold, as the
    interpreter does). `definitions` gives each local's expression, evaluated when used."""
    reached = {}

    def execute(path):
        path.locals = {uid: _Deferred(e) for uid, e in definitions.items()}
        reached[id(path)] = all(bool(path.eval(cond)) == truth for cond, truth in guards)

    return [assignment for assignment, path in _explore(program, execute, domains)
            if reached.pop(id(path))]


# ---- minimisation --------------------------------------------------------------------------

def minimise(program: ir.Program, rules: list[Rule], domains: Domains) -> list[Rule]:
    """Merge rules with equal effects that differ in one atom; drop atoms that cover their
    whole domain (every value the name can take). Repeats until nothing merges."""
    static = domains.static if isinstance(domains, ReachableDomains) else None
    by_effect: dict[tuple, list[dict]] = {}
    lines: dict[tuple, set] = {}
    for rule in rules:
        cube = _without_implied({a.name: a.values for a in rule.atoms}, static)
        by_effect.setdefault(rule.writes, []).append(cube)
        lines.setdefault(rule.writes, set()).update(rule.lines)
    full = {}
    out = []
    for writes, cubes in by_effect.items():
        names = sorted({n for c in cubes for n in c})
        for name in names:
            full.setdefault(name, frozenset(domains[name]))
        changed = True
        while changed:
            changed = False
            for name in names:
                merged = _merge_along(cubes, name, full[name])
                if len(merged) < len(cubes):
                    cubes, changed = merged, True
        for cube in cubes:
            cube = _without_implied(cube, static)
            atoms = tuple(Atom(n, v) for n, v in sorted(cube.items()))
            out.append(Rule(atoms, writes, tuple(sorted(lines[writes]))))
    return sorted(out, key=lambda r: (r.lines, [(a.name, sorted(a.values, key=_key))
                                                for a in r.atoms]))


def _without_implied(cube: dict, static: StaticRows | None) -> dict:
    """The cube less the atoms on static variables that its other static atoms imply (x ==
    5 implies z == 2 where z = token % 3 and x = token): the same reachable states."""
    if static is None:
        return cube
    cube = dict(cube)
    for name in sorted(n for n in cube if n in static.names):
        others = [(static.names.index(m), v) for m, v in cube.items()
                  if m in static.names and m != name]
        i = static.names.index(name)
        if all(row[i] in cube[name] for row in static.rows
               if all(row[j] in v for j, v in others)):
            del cube[name]
    return cube


def _merge_along(cubes: list[dict], name: str, full: frozenset) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for cube in cubes:
        rest = tuple(sorted((k, tuple(sorted(v, key=_key))) for k, v in cube.items() if k != name))
        groups.setdefault(rest, []).append(cube)
    merged = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        values = frozenset().union(*(c.get(name, full) for c in group))
        base = {k: v for k, v in group[0].items() if k != name}
        if values != full:
            base[name] = values
        merged.append(base)
    return merged


@dataclass(frozen=True)
class RuleSet:
    """The compiled MLP and halting condition as rules, with counts for reports."""

    mlp: tuple[Rule, ...]
    halting: tuple[Rule, ...]
    unminimised: int
    faults: tuple[Rule, ...] = ()  # the fault detector's units (compiler.faults)

    @property
    def all_rules(self) -> tuple[Rule, ...]:
        return self.mlp + self.halting + self.faults

    @property
    def atoms_per_rule(self) -> float:
        return sum(len(r.atoms) for r in self.mlp) / max(len(self.mlp), 1)


def compile_rules(program: ir.Program, domains: Domains | None = None) -> RuleSet:
    """The MLP and halting condition as minimised rules, enumerated over `domains` (by
    default the values each name can actually take: alta.compiler.values)."""
    if domains is None:
        # Imported here: the value analysis runs this module's path enumeration.
        from alta.compiler.values import reachable_values

        domains = reachable_values(program)
    raw = mlp_rules(program, domains)
    halting = minimise(program, condition_rules(program, program.halt, domains), domains) \
        if program.halt is not None else []
    return RuleSet(tuple(minimise(program, raw, domains)), tuple(halting), len(raw))
