"""Which values each variable and head output can actually take: the enumeration's domains.

The rule enumeration forks a read over every value the name can hold. A declared range is
often far wider than what any input can produce (a position variable of `cat 300` in a
program of max_length 40; a divisor `token + 1` that is never 0), and forking over values
no input produces invents paths the interpreter never takes: rules nobody needs, and
compile errors (an overflow, a division by zero) for programs that run correctly.

`reachable_values` computes, per name, a set of values that contains everything the
interpreter can ever produce there (an over-approximation: sound, not exact), to a fixpoint:

- a variable starts with its initial values: its token table over the whole vocabulary,
  its position initialiser at every position below max_length, or its constant;
- every path of the MLP that writes it (enumerated over the current sets) adds its value;
- a categorical head yields a value of its value variable at one selected position; a
  numerical head over one relative offset yields one value of its value variable, snapped
  to the head's declared values; a numerical head that averages yields any of its declared
  values (the mean of a single possible value is that value); a count head, any count
  from 0 to its maximum.

Sets only grow, so a path enumerated on the way is a path of the final sets too: an error
found on one is an error the rule enumeration would report as well.

Variables that no MLP path writes keep their initial values, which the token and position
fix together: their joint values (`StaticRows`, from every token the framing can put at
every position) let a path that has read one of them fork the others only over values
that occur with it (a word never stands at position 0 behind a start token).
"""

from __future__ import annotations

import itertools

import numpy as np

from alta import ir, semantics
from alta.compiler.rules import (
    Copy,
    PathError,
    ReachableDomains,
    StaticRows,
    compared_only,
    declared_domain,
    evaluate_scalar,
    linear_copies,
    names_read_writing,
    writing_paths,
    written_variables,
)
from alta.errors import AltaError
from alta.semantics import show


def reachable_values(program: ir.Program) -> dict[str, tuple]:
    """Per variable and head output, the values it can take, in declared order."""
    values = {v.name: set(_initial_values(program, v)) for v in program.variables}
    written = written_variables(program)
    readers = _readers(program, written)
    pending = list(written)  # variables whose slice must be (re-)enumerated
    static = static_rows(program, written)
    copies = linear_copies(program)
    compared = compared_only(program, copies)
    while pending:
        name = pending.pop(0)
        domains = ReachableDomains(_domains(program, values), static, copies, compared)
        grown = set()
        for _, new, _ in writing_paths(program, name, domains):
            # A copy writes any value its source can hold.
            grown |= set(domains[new.name]) if isinstance(new, Copy) else {new}
        grown -= values[name]
        if grown:
            values[name] |= grown
            # Only the slices that read this variable (or a head over it) can change.
            pending.extend(r for r in readers[name] if r not in pending)
    return ReachableDomains(_domains(program, values), static, copies, compared)


def static_rows(program: ir.Program, written: list[str]) -> StaticRows | None:
    """The joint initial values of the token- and position-initialised variables that the
    MLP never writes, over every (token, position) the framing allows; None where there
    is nothing to gain (fewer than two such variables, or positions without a bound)."""
    static = [v for v in program.variables if v.name not in written
              and v.init_from in ("token", "position", "token and position")]
    if len(static) < 2 or (program.max_length is None
                           and any(v.init_from == "position" for v in static)):
        return None
    rows = set()
    for token, position in _placements(program):
        row = tuple(initial_value(var, token, position) for var in static)
        if None not in row:  # else no run gets past initialisation there
            rows.add(row)
    return StaticRows(tuple(v.name for v in static), frozenset(rows))


def initial_value(var: ir.Variable, token: int | None, position: int):
    """A variable's stored initial value where an input puts `token` at `position`; None
    where initialising it fails there (the compiler reports it where the placement
    occurs; `token_position_table`, `_embeddings`)."""
    if var.init_from == "token":
        return _stored(var.type, var.token_table[token])
    if var.init_from == "constant":
        return _stored(var.type, var.init.value)
    try:
        value = evaluate_scalar(var.init, {"token": token, "position": position})
    except PathError:
        return None
    value = int(value) if isinstance(value, bool) else value
    return _stored(var.type, value) if var.type.contains(value) else None


def _placements(program: ir.Program):
    """Every (token id, position) some input puts together: the framing's fixed tokens
    before the input at their positions, input tokens after them, the tokens after the
    input anywhere past it (positions below max_length; any position 0 when unbounded,
    which only token-initialised variables read)."""
    from alta.framing import input_alphabet

    index = next(i for i, item in enumerate(program.framing) if item.kind != "token")
    before = [t for item in program.framing[:index] for t in [item.token] * item.count]
    after = [t for item in program.framing[index + 1:] for t in [item.token] * item.count]
    ids = {tok: i for i, tok in enumerate(program.vocab)}
    words = [ids[tok] for tok in input_alphabet(program)]
    limit = program.max_length
    if limit is None:  # no position is read: every token that can occur, anywhere
        yield from ((t, 0) for t in set(before) | set(after) | set(words))
        return
    yield from ((t, p) for p, t in enumerate(before) if p < limit)
    start, last = len(before), limit - len(after)  # input positions start .. last - 1
    yield from ((w, p) for w in words for p in range(start, last))
    for offset, t in enumerate(after):
        yield from ((t, start + n + offset) for n in range(0, last - start + 1)
                    if start + n + offset < limit)


def token_position_table(program: ir.Program, var: ir.Variable) -> dict[tuple[int, int], object]:
    """A variable initialised from both the token and the position: its stored initial value
    at every (token id, position) some input puts together. No input reaches the other
    pairs, so they have no value (and the compiled embedding leaves them 0)."""
    if program.max_length is None:
        raise needs_max_length(program, var)
    table = {}
    for token, position in _placements(program):
        where = f'for token "{program.vocab[token]}" at position {position}'
        try:
            value = evaluate_scalar(var.init, {"token": token, "position": position})
        except PathError as err:
            raise AltaError.at(f"initialising '{var.name}' {where}: {err.message}", err.span,
                               program.source) from None
        value = int(value) if isinstance(value, bool) else value
        if not var.type.contains(value):
            raise AltaError.at(f"initialiser gives {show(value)} {where}, which is not a "
                               f"value of '{var.name}' ({var.type.describe()})", var.init.span,
                               program.source)
        table[token, position] = _stored(var.type, value)
    return table


def needs_max_length(program: ir.Program, var: ir.Variable) -> AltaError:
    return AltaError.at(f"variable '{var.name}' is initialised from 'position', so compiling "
                        "needs 'max_length N' (the size of the position embedding)", var.span,
                        program.source)


def _initial_values(program: ir.Program, var: ir.Variable) -> list:
    type_ = var.type
    if var.init_from == "token":
        return [_stored(type_, v) for v in var.token_table]
    if var.init_from == "token and position":
        return list(dict.fromkeys(token_position_table(program, var).values()))
    if var.init_from == "constant":
        return [_stored(type_, var.init.value)]
    if program.max_length is None:  # any position: nothing narrower is sound
        return list(declared_domain(program, var.name))
    values = (initial_value(var, None, p) for p in range(program.max_length))
    return [v for v in values if v is not None]  # None: the compiler reports it


def _stored(type_: ir.ValueType, value):
    if isinstance(type_, ir.Categorical):
        return int(value)
    if isinstance(type_, ir.Numerical):
        return type_.declared(value)
    return value


def _domains(program: ir.Program, values: dict[str, set]) -> dict[str, tuple]:
    domains = {}
    for var in program.variables:
        domains[var.name] = tuple(v for v in declared_domain(program, var.name)
                                  if v in values[var.name])
    for head in program.heads:
        if head.counts:  # any count up to the most positions one query can select
            most = _most_selected(program, head, values)
            domains[head.name] = tuple(v for v in declared_domain(program, head.name)
                                       if most is None or v <= most)
            continue
        source = values[head.value]
        if not head.numerical:
            options = source
        elif (head.offsets is not None and len(head.offsets) == 1) or len(source) == 1:
            options = {head.type.declared(v) for v in source}
        else:
            options = set(head.type.values)
        domains[head.name] = tuple(v for v in declared_domain(program, head.name)
                                   if v in options)
    return domains


# Past this many (placement, key value, query values) triples the bound is not worth it.
_MOST_SELECTED_WORK = 20_000_000


def _most_selected(program: ir.Program, head: ir.Head, values: dict[str, set]) -> int | None:
    """An upper bound on how many positions a count head selects for one query, sharper
    than its type's (max_length): a position counts only if some token the framing can put
    there gives keys that pass every term for the query's values. So `where key < key`
    never counts a start token whose key is above every word's, and `where tok == tok`
    counts at most the words for a word's query (the start, for the start's own). Key
    variables the MLP writes may hold any of their reachable values anywhere. None: no
    bound (no `where`, no max_length, or too much work)."""
    if not head.where or program.max_length is None:
        return None
    written = set(written_variables(program))
    keys = [program.variable(t.key) for t in head.where]
    placements = [(t, p) for t, p in _placements(program)
                  if all(initial_value(var, t, p) is not None for var in keys)]
    queries = sorted({t.query for t in head.where if t.query is not None})
    combos = sorted(_query_values(program, queries, values, written))
    keys = {t.key for t in head.where}
    width = max(1, max((len(values[k]) for k in keys if k in written), default=1))
    if len(placements) * len(combos) * width > _MOST_SELECTED_WORK:
        return None
    query_arrays = {q: np.array([c[i] for c in combos])[None, None, :]
                    for i, q in enumerate(queries)}
    rows = np.ones((len(placements), len(combos)), bool)
    for term in head.where:
        key = _key_values(program, program.variable(term.key), placements, values, written)
        holds = ir.selects(term.test, lambda name, key=key: key[:, :, None],
                           lambda name: query_arrays[name])
        rows &= np.broadcast_to(holds, key.shape + (len(combos),)).any(axis=1)
    selectable = np.zeros((program.max_length, len(combos)), bool)
    np.logical_or.at(selectable, np.array([p for _, p in placements]), rows)
    return int(selectable.sum(axis=0).max())


def _query_values(program: ir.Program, queries: list[str], values: dict[str, set],
                  written: set[str]) -> set[tuple]:
    """The values the query variables can take together at one position: those fixed by
    the token and position from the placements the framing allows, the others any
    reachable value."""
    fixed = [program.variable(q) for q in queries
             if q not in written and program.variable(q).init_from != "constant"]
    free = [q for q in queries if q not in {v.name for v in fixed}]
    rows = set()
    for token, position in _placements(program):
        row = tuple(initial_value(v, token, position) for v in fixed)
        if None not in row:
            rows.add(tuple(map(_as_bits, row)))
    out = set()
    for row in rows:
        known = dict(zip((v.name for v in fixed), row, strict=True))
        for others in itertools.product(*(sorted(_as_bits(v) for v in values[q])
                                          for q in free)):
            known.update(zip(free, others, strict=True))
            out.add(tuple(known[q] for q in queries))
    return out


def _key_values(program, var: ir.Variable, placements, values, written) -> np.ndarray:
    """(placement, candidate) key values: the one a variable fixed by its token or position
    has there, else every reachable value, everywhere."""
    if var.name in written or var.init_from == "constant":
        every = np.array(sorted(values[var.name]), dtype=np.int64)
        return np.broadcast_to(every[None, :], (len(placements), len(every)))
    return np.array([_as_bits(initial_value(var, t, p)) for t, p in placements],
                    dtype=np.int64)[:, None]


def _as_bits(value) -> int:
    return semantics.set_to_bits(value) if isinstance(value, frozenset) else int(value)


def _readers(program: ir.Program, written: list[str]) -> dict[str, list[str]]:
    """Per variable, the written variables whose slice of the MLP reads it (directly or
    through a head over it)."""
    heads_over = {}
    for head in program.heads:
        if not head.counts:  # a count reads no variable's value
            heads_over.setdefault(head.value, set()).add(head.name)
    readers = {v.name: [] for v in program.variables}
    for name in written:
        reads = names_read_writing(program, name)
        for var in program.variables:
            if var.name in reads or heads_over.get(var.name, set()) & reads:
                readers[var.name].append(name)
    return readers
