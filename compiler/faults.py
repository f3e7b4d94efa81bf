"""Program IR -> the network's own fault detector: where the MLP reads a head, and when that
read is undefined.

The interpreter stops with a located error where the MLP reads a head whose attention
selected no position (or, for a categorical head, several). The compiled Transformer must
stop with the same error, computed from its own activations, so that it holds for a
checkpoint loaded without the source. This stage plans three kinds of extra state:

- `one`: a constant 1 at every position (the value the selection heads average);
- per head h, a *selection head* `h.selected`: the same query and key as h, plus an
  attention sink whose logit equals a match's score. With k selected positions the sink keeps
  1 / (k + 1) of the attention, so the head outputs k / (k + 1) (leakage aside): 0 for none,
  1/2 for one, at least 2/3 for several. The MLP buckets it like a numerical head;
- per `same` head h (several positions may be selected if they hold one value), an
  *agreement* reading `h.agrees` of h's own output block, computed in the MLP's expansion
  (compiler/weights.py): 1 where one component of the averaged one-hot is within 1/(4N) of
  1 (the selected values agree), 0 where every component is at most 1 - 1/N (they differ);
  its selection head says only none or some;
- per read site (each `Read` of a head in the MLP body, in evaluation order), a flag
  `fault.N` that the MLP sets to 1 where the site is reached and its head is undefined.

A site's rules are the paths (partial assignments, by the compiler's lazy enumeration) on
which the conditions guarding the site (enclosing ifs, the left side of `and`/`or`, the
condition of `a if c else b`) hold, plus "the head is undefined", plus "every head those
conditions read is defined". That last atom makes each flag exact: where a guard reads an
undefined head (whose block then holds an average, not a one-hot), that guard's own site
fires instead and this flag stays exactly 0. A flag is thus 1 exactly where the interpreter's
evaluation reaches the site with the head undefined, and the run reports the same error as
the interpreter: the first layer with a fault, then the first site in evaluation order, then
the first input and position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from fractions import Fraction

from alta import ir
from alta.errors import Span

ONE = "one."  # names with a dot cannot clash with a program's identifiers
SELECTED = ".selected"
AGREES = ".agrees"
FAULT = "fault."

# What a selection head outputs (k / (k + 1)), as the values it is bucketed into.
CATEGORICAL_SELECTION = (0.0, 0.5, 2.0 / 3.0)  # none, one, several
NUMERICAL_SELECTION = (0.0, 0.5)  # none, some
DEFINED = frozenset({0.5})  # exactly one selected (a numerical or `same` head: some)
AGREEMENT = (0.0, 1.0)  # what `h.agrees` reads: the selected values differ, or agree


@dataclass(frozen=True)
class FaultSite:
    """One read of a head in the MLP body; its flag is the variable `name`."""

    name: str
    head: str
    span: Span

    def to_json(self) -> dict:
        s = self.span
        return {"name": self.name, "head": self.head,
                "span": [s.line, s.column, s.end_line, s.end_column]}

    @classmethod
    def from_json(cls, data: dict) -> FaultSite:
        return cls(data["name"], data["head"], Span(*data["span"]))


@dataclass(frozen=True)
class Guarded:
    """A site and the conditions (expression, required truth) under which it is evaluated."""

    read: ir.Read
    guards: tuple[tuple[ir.Expr, bool], ...]


@dataclass(frozen=True)
class FaultPlan:
    """The program with its synthetic state added, and the sites in evaluation order."""

    program: ir.Program  # the original program plus `one`, the flags and selection heads
    sites: tuple[FaultSite, ...]
    guarded: tuple[Guarded, ...]
    selection: dict  # selection head name -> the head it counts for

    @property
    def synthetic(self) -> tuple[str, ...]:
        """Names of the added variables and heads, in layout order."""
        return (ONE,) + tuple(s.name for s in self.sites) + tuple(self.selection)


def selection_name(head: str) -> str:
    return head + SELECTED


def agreement_name(head: str) -> str:
    return head + AGREES


def defined_atoms(head: ir.Head) -> dict[str, frozenset]:
    """The atoms that hold exactly where the head's output is defined."""
    atoms = {selection_name(head.name): DEFINED}
    if head.same:
        atoms[agreement_name(head.name)] = frozenset({1.0})
    return atoms


def undefined_atoms(head: ir.Head) -> list[dict[str, frozenset]]:
    """Disjoint sets of atoms, one of which holds exactly where the head is undefined."""
    none = {selection_name(head.name): frozenset({0.0})}
    if head.numerical:
        return [none]
    if head.same:
        return [none, {selection_name(head.name): DEFINED,
                       agreement_name(head.name): frozenset({0.0})}]
    return [{selection_name(head.name): frozenset({0.0, 2.0 / 3.0})}]  # none, or several


def selection_buckets(values: tuple[float, ...]):
    """How the MLP reads a selection head: ramps in the middle half of each gap (none 0,
    one 1/2, several 2/3 and above), as for a variable: the attention keeps the share within
    1/16 of k / (k + 1), well inside them."""
    from alta.compiler.buckets import Buckets, steps_between

    exact = [Fraction(v) for v in values]
    return Buckets(values, steps_between(values, itertools.pairwise(exact)))


def averaged(head: ir.Head) -> str:
    """The variable a head's attention averages: its value, or for a count head the
    constant `one` (with the sink, k selected positions then give k / (k + M))."""
    return ONE if head.counts else head.value


def plan_faults(program: ir.Program, detector: bool = True) -> FaultPlan:
    """The fault detector's state (none without `detector`), and `one` wherever a selection
    head or a count head averages it. Count heads are never undefined: no sites, no
    selection heads."""
    counted = [h for h in program.heads if not h.counts]
    guarded = tuple(_reads(program.mlp, ())) if detector else ()
    guarded = tuple(g for g in guarded if not program.head(g.read.name).counts)
    sites = tuple(FaultSite(f"{FAULT}{i}", g.read.name, g.read.span)
                  for i, g in enumerate(guarded))
    if not (counted and detector) and len(counted) == len(program.heads):
        return FaultPlan(program, (), (), {})
    span = Span(1, 1, 1, 1)
    one = ir.Variable(ONE, ir.Numerical((0.0, 1.0)), "constant",
                      ir.Const(span, "float", 1.0), None, span)
    flags = tuple(ir.Variable(s.name, ir.Numerical((0.0, 1.0)), "constant",
                              ir.Const(s.span, "float", 0.0), None, s.span) for s in sites)
    selection, heads = {}, []
    for head in counted if detector else ():
        values = NUMERICAL_SELECTION if head.numerical or head.same else CATEGORICAL_SELECTION
        name = selection_name(head.name)
        heads.append(replace(head, name=name, type=ir.Numerical(values), value=ONE,
                             same=False))
        selection[name] = head.name
    augmented = replace(program, variables=program.variables + (one,) + flags,
                        heads=program.heads + tuple(heads))
    return FaultPlan(augmented, sites, guarded, selection)


def _reads(node, guards):
    """Every head read in evaluation order (the interpreter's), with its guards."""
    if isinstance(node, tuple):
        for item in node:
            yield from _reads(item, guards)
    elif isinstance(node, ir.Read):
        if node.is_head:
            yield Guarded(node, guards)
    elif isinstance(node, ir.Logical):
        yield from _reads(node.left, guards)
        yield from _reads(node.right, guards + ((node.left, node.op == "and"),))
    elif isinstance(node, (ir.Cond, ir.IfStmt)):
        yield from _reads(node.cond, guards)
        yield from _reads(node.then, guards + ((node.cond, True),))
        yield from _reads(node.orelse, guards + ((node.cond, False),))
    elif isinstance(node, ir.Lookup):
        yield from _reads(node.indices, guards)
    elif isinstance(node, (ir.Expr, ir.Stmt)) and not isinstance(node, ir.Const):
        for value in vars(node).values():  # dataclass fields: operands in evaluation order
            if isinstance(value, (ir.Expr, ir.Stmt, tuple)):
                yield from _reads(value, guards)

def local_definitions(stmts) -> dict[int, ir.Expr]:
    """Every local's defining expression, by uid (uids are unique in a program)."""
    out = {}
    for node in ir.walk(stmts):
        if isinstance(node, (ir.LetStmt, ir.LetIn)):
            out[node.uid] = node.value
    return out


def fault_rules(plan: FaultPlan, domains: dict) -> list:
    """Per site: where it is reached with every guard's head defined and its own head
    undefined, set its flag (minimised like the MLP's rules). `domains`: the values each of
    the program's names can take (compiler.values.reachable_values)."""
    from alta.compiler.rules import Atom, Rule, Write, atom_values, guarded_region, minimise

    program = plan.program
    selection = {name: program.type_of(name).values for name in plan.selection}
    selection |= {agreement_name(h.name): AGREEMENT for h in program.heads if h.same}
    domains = domains.extended(selection)
    definitions = local_definitions(program.mlp)
    rules = []
    for site, guarded in zip(plan.sites, plan.guarded):
        for assignment in guarded_region(program, guarded.guards, definitions, domains):
            heads = {n for n in assignment  # count heads are always defined
                     if n in program.head_index and not program.head(n).counts}
            if site.head in heads:  # an earlier read of the same head reports it
                continue
            atoms = {n: atom_values(domains, n, v) for n, v in assignment.items()}
            for name in heads:
                atoms.update(defined_atoms(program.head(name)))
            for undefined in undefined_atoms(program.head(site.head)):
                case = atoms | undefined
                rules.append(Rule(tuple(Atom(n, case[n]) for n in sorted(case)),
                                  (Write(site.name, 0.0, 1.0),), (site.span.line,)))
    return minimise(program, rules, domains)
