"""Random small, well-formed ALTA programs, for property tests of the compiler.

`generate_program(seed)` returns an ALTA source text and input strings to run it on. The
programs are built to exercise everything a compiled Transformer must reproduce exactly:

- framing: 2-5 word tokens, an optional start token, sometimes a `"<m>" * K` buffer and an
  end token after the words; `max_length` is declared (at most 24 positions);
- variables of every kind (`cat N`, `bool`, an enum, `vocab`, `num {...}`, `set N` with and
  without an `of [...]` list), initialised from `token`, from `position` or constants;
- heads of every kind: relative offsets (one offset, several offsets, offset ranges),
  `where key == query` over unique (position) keys and over repeated (token) keys,
  `where key in query` set queries, `where` combined with `at`, heads with no `where`,
  comparisons and key-only tests (`pos < q`, `pos <= 3`, `==` written as two comparisons
  joined by `and`), and numerical heads whose declared output values hold every mean that
  can occur;
- an MLP of 3-15 statements (if/elif/else, `let`, min/max/%/tables, sometimes a helper
  function), a halting counter or a fixed `max_layers`, and an `output` declaration.

Well-formedness is by construction:

- Every write stays in range: integer expressions carry an interval, float expressions the
  finite set of values they can take, set expressions the sets they can be; a value is
  written directly only when it provably fits, else it is wrapped (`% N`, min/max, a table
  of declared values, a conditional).
- Every head read is guarded by a condition that the program computes itself and that
  implies the head is defined there: `pos >= 1` for offset -1; for positive offsets, what the
  program knows of the right edge (one "kit" per program): the sequence length (mean of
  `posf` over all positions), a window mean of `posf` (`at 0..D`), an edge head (mean of a
  position parity over `{0, d}` is 0.5 exactly where i + d exists) or trailing frame tokens;
  for repeated keys, a selector-width head (`is_start where key in {query, START}`, mean
  1 / (1 + matches)) says "exactly one match"; for `where` combined with offsets, helper heads
  read the neighbours' keys. "Exactly one selected" guards use only exact edge knowledge.
  Guards are sufficient, not necessary: heads are still undefined at many positions where
  they are not read (edges, duplicate or missing keys), which is what the property test needs.
  Reads are wrapped (`h if guard else fallback`) or sit in `if guard:` blocks; long guards
  are computed once in a top-level `let`.
- Each assignment depends on a bounded set of variables and heads (the product of their
  domain sizes is at most RULE_BOUND where possible), so compiled MLPs stay small.

`generate_program` then checks the source and runs the interpreter on the inputs; if either
fails (which construction should prevent) it retries with a derived seed, up to
`MAX_ATTEMPTS` times; it also regenerates the rare candidate whose rule bound
(`assignment_read_products`) exceeds RULE_FILTER. `generate_with_stats` says how many
candidates were rejected for each reason and hands back the checked program and its traced
run.

Two checker limitations shape the output (see the notes in the report): tables of sets
cannot be indexed by `token` in an initialiser (set initialisers are chains of conditionals
on token literals instead), and halting conditions and output filters reject `x < c` when
`c` is not one of `x`'s values (output filters compare numbers with `==` only).
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction

MAX_ATTEMPTS = 50
MAX_POSITIONS = 24
# Bound on the product of the domain sizes an assignment depends on (value, conditions on its
# path, the variable's old value): keeps the rules of the compiled MLP in the thousands.
RULE_BOUND = 10_000
RULE_FILTER = 200_000  # candidates above this bound (a few percent) are regenerated


@dataclass(frozen=True)
class GeneratedProgram:
    source: str  # ALTA source text
    inputs: tuple[str, ...]  # input strings (lengths 0..max words, the program's own vocab)


def generate_program(seed: int) -> GeneratedProgram:
    """A random well-formed program and inputs; the same seed gives the same program."""
    return generate_with_stats(seed)[0]


@dataclass(frozen=True)
class GenerationStats:
    retries: int  # candidates that failed to check or raised at run time (should be 0)
    oversize: int  # candidates rejected for needing more than RULE_FILTER rules
    program: object = field(compare=False, repr=False)  # the checked ir.Program
    result: object = field(compare=False, repr=False)  # its RunResult, with trace


def generate_with_stats(seed: int) -> tuple[GeneratedProgram, GenerationStats]:
    """The first candidate (seeds derived from `seed`) that checks, runs on its inputs
    without an error and stays under RULE_FILTER; how many were rejected, and why."""
    from alta.checker import check_source
    from alta.errors import AltaError
    from alta.interpreter import run

    last_error: Exception | None = None
    retries = oversize = 0
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"alta-program-generator:{seed}:{attempt}")
        candidate = _Generator(rng, f"gen_{seed}").build()
        try:
            program = check_source(candidate.source, f"gen_{seed}.alta")
            result = run(program, candidate.inputs, trace=True)
        except AltaError as error:  # AltaRuntimeError included
            last_error = error
            retries += 1
            continue
        if max(assignment_read_products(program), default=1) > RULE_FILTER:
            oversize += 1
            continue
        return candidate, GenerationStats(retries, oversize, program, result)
    raise RuntimeError(f"seed {seed}: no well-formed program in {MAX_ATTEMPTS} attempts; "
                       f"last error: {last_error}")


def generate_faulty(seed: int, unguarded: float = 0.5):
    """A random program some of whose head reads drop their guards, so that some inputs read
    an undefined head (the run-time error the compiled model must report too): the source,
    the checked program and its inputs. Candidates that do not check, or are too large to
    compile quickly, are regenerated."""
    from alta.checker import check_source
    from alta.errors import AltaError

    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"alta-faulty-program:{seed}:{attempt}")
        generator = _Generator(rng, f"faulty_{seed}")
        generator.unguarded = unguarded
        candidate = generator.build()
        try:
            program = check_source(candidate.source, f"faulty_{seed}.alta")
        except AltaError:
            continue
        if max(assignment_read_products(program), default=1) <= RULE_FILTER:
            return candidate, program
    raise RuntimeError(f"seed {seed}: no program in {MAX_ATTEMPTS} attempts")


# ---- values and typed expressions ----------------------------------------------------------------

def _num(x: Fraction) -> str:
    """A rational constant as ALTA source: an integer, a short decimal or a quotient."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    if _dyadic(x):
        return repr(float(x))
    return f"({x.numerator} / {x.denominator})"


def _num_set(values) -> str:
    """A set literal of rational constants (no parentheses needed between commas)."""
    return "{" + ", ".join(_num(v).strip("()") for v in values) + "}"


def _statements(lines: list[str]) -> int:
    """Assignments, lets and if statements (elif/else/pass are parts of them)."""
    return sum(not line.strip().startswith(("elif ", "else:", "pass")) for line in lines)


def _dyadic(x: Fraction) -> bool:
    d = x.denominator
    return d & (d - 1) == 0 and d <= 64


def _set_text(s) -> str:
    return "{" + ", ".join(str(v) for v in sorted(s)) + "}"


def _all_subsets(n: int) -> frozenset:
    return frozenset(frozenset(c) for r in range(n + 1)
                     for c in itertools.combinations(range(n), r))


def _means(values, counts) -> list[Fraction]:
    """Every mean of a multiset of `values` whose size is one of `counts`."""
    out = set()
    for m in counts:
        for combo in itertools.combinations_with_replacement(values, m):
            out.add(sum(combo, Fraction(0)) / m)
    return sorted(out)


@dataclass(frozen=True)
class IntE:
    """An integer (or boolean) expression and an interval that holds all its values."""

    text: str
    lo: int
    hi: int


def _never_equal(a: IntE, b: IntE) -> bool:
    """One side is a constant outside the other's interval (so never equal to it)."""
    return (a.lo == a.hi and not b.lo <= a.lo <= b.hi) or (
        b.lo == b.hi and not a.lo <= b.lo <= a.hi)


@dataclass(frozen=True)
class FloatE:
    """A numerical expression and the finite set of values it can take."""

    text: str
    vals: frozenset  # of Fraction
    exact: bool  # float evaluation gives exactly the rational value (safe for == and round)


@dataclass(frozen=True)
class SetE:
    text: str
    poss: frozenset  # of frozenset: every set it can be


@dataclass
class Var:
    name: str
    kind: str  # cat | bool | enum | vocab | num | set
    size: int = 0  # categorical range, or a set's N
    values: tuple = ()  # num: declared values (Fractions)
    sets: frozenset | None = None  # set: the possible sets
    members: tuple = ()  # enum member names
    mode: str = "free"  # free | fixed | le_pos (stays <= pos) | halt | sync
    decl: str = ""

    @property
    def categorical(self) -> bool:
        return self.kind in ("cat", "bool", "enum", "vocab")


@dataclass
class HeadInfo:
    name: str
    numerical: bool
    size: int = 0  # categorical: the value's range
    vals: tuple = ()  # numerical: declared output values
    guard: str | None = None  # an always-safe condition implying the head is defined
    members: tuple = ()  # enum-valued head: member names
    primary: bool = True  # primary heads must be read by the MLP; helpers are read in guards
    decl: str = ""


@dataclass
class Local:
    name: str
    expr: object  # IntE | FloatE | SetE (with text replaced by the name)
    is_bool: bool = False
    reads: frozenset = frozenset()  # the variables and heads its value reads


@dataclass
class Ctx:
    guarded: frozenset = frozenset()  # heads known to be defined here
    locals: tuple = ()
    heads: bool = True  # may read heads (False in halting / output filters)
    path: frozenset = frozenset()  # what the enclosing conditions read

    def with_guard(self, name: str) -> Ctx:
        return Ctx(self.guarded | {name}, self.locals, self.heads, self.path)

    def with_local(self, local: Local) -> Ctx:
        return Ctx(self.guarded, self.locals + (local,), self.heads, self.path)

    def with_path(self, reads) -> Ctx:
        return Ctx(self.guarded, self.locals, self.heads, self.path | reads)

    @property
    def state(self) -> bool:
        """Output filters: the checker rejects comparisons with values a variable lacks."""
        return not self.heads


WORD_STYLES = [
    ["0", "1", "2", "3", "4"],
    ["a", "b", "c", "d", "e"],
    ["x", "y", "z", "w", "v"],
    ["lo", "hi", "up", "dn", "go"],
    ["A", "B", "C", "D", "E"],
]
NUM_SETS = [
    (0, Fraction(1, 2), 1), (-1, 0, 2), (0, 1), (0, Fraction(1, 4), Fraction(1, 2),
                                                  Fraction(3, 4), 1),
    (-2, -1, 0, 1, 2), (1, 2, 4), (Fraction(-1, 2), Fraction(1, 2)),
]
ENUMS = [("Color", ("Red", "Green", "Blue", "Gray")), ("Mode", ("Idle", "Busy", "Stuck")),
         ("Dir", ("North", "East", "South", "West"))]


# ---- the generator ------------------------------------------------------------------------------

class _Generator:
    def __init__(self, rng: random.Random, name: str) -> None:
        self.rng = rng
        self.name = name
        self.vars: list[Var] = []
        self.heads: list[HeadInfo] = []
        self.consts: list[str] = []
        self.enum_decls: list[str] = []
        self.functions: list[str] = []
        self.counter = itertools.count()
        self.use_clip = False
        self.syncs: list = []  # (kind, query, query with start, K): updated together
        self._start_key = None
        self.int_tables: list = []  # (name, cells) of constant tables, reused
        self.locals_made = 0
        self.unguarded = 0.0  # chance that a head read drops its guard (may fault at run time)

    def domain(self, name: str) -> int:
        for v in self.vars:
            if v.name == name:
                if v.kind == "num":
                    return len(v.values)
                if v.kind == "set":
                    return len(v.sets)
                return v.size
        for h in self.heads:
            if h.name == name:
                return len(h.vals) if h.numerical else h.size
        raise KeyError(name)

    def reads_of(self, text: str, ctx: Ctx) -> frozenset:
        """The variables and heads an expression's text reads (through locals too)."""
        names = {v.name for v in self.vars} | {h.name for h in self.heads}
        locals_ = {loc.name: loc.reads for loc in ctx.locals}
        out = set()
        for ident in re.findall(r"[A-Za-z_]\w*", re.sub(r'"[^"]*"', "", text)):
            if ident in locals_:
                out |= locals_[ident]
            elif ident in names:
                out.add(ident)
        return frozenset(out)

    def cost(self, names) -> int:
        product = 1
        for name in names:
            product *= self.domain(name)
        return product

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    # -- the whole program -----------------------------------------------------------------

    def build(self) -> GeneratedProgram:
        rng = self.rng
        self._framing()
        self._infrastructure()
        self._data_variables()
        self._heads()
        self._halting()
        self.use_clip = rng.random() < 0.2
        guards = [h.guard for h in self.heads]
        for _ in range(20):  # an MLP of 3-15 statements
            mlp = self._mlp()
            if 3 <= _statements(mlp) <= 15:
                break
            for h, g in zip(self.heads, guards):
                h.guard = g
        output = self._output()
        used = set(re.findall(r"[A-Za-z_]\w*", "\n".join(mlp)))
        self.heads = [h for h in self.heads if h.primary or h.name in used]  # unused helpers
        lines = [f"program {self.name}", self.vocab_line, self.input_line,
                 f"max_length {self.L}"]
        lines += self.settings + [output]
        lines += self.enum_decls + self.consts
        lines += [v.decl for v in self.vars]
        lines += [h.decl for h in self.heads]
        if self.use_clip:
            lines += ["", "def clip(value, low, high):", "    return min(max(value, low), high)"]
        lines += ["", "mlp:"] + ["    " + line for line in mlp]
        return GeneratedProgram("\n".join(lines) + "\n", self._inputs())

    # -- vocabulary and framing -----------------------------------------------------------------

    def _framing(self) -> None:
        rng = self.rng
        style = rng.choice(WORD_STYLES)
        self.words = rng.sample(style, rng.randint(2, 5))
        self.start = rng.random() < 0.6
        self.buffer = rng.randint(1, 3) if rng.random() < 0.25 else 0
        self.end = rng.random() < 0.3
        vocab = list(self.words) + ["<s>"] * self.start + ["<m>"] * (self.buffer > 0) + \
            ["<e>"] * self.end
        if rng.random() < 0.3:
            rng.shuffle(vocab)
        self.vocab = vocab
        self.V = len(vocab)
        self.P = int(self.start)  # frame positions before the words
        self.T = self.buffer + int(self.end)  # frame positions after the words
        self.W = rng.randint(2, min(10, MAX_POSITIONS - self.P - self.T))
        self.L = self.P + self.W + self.T
        self.vocab_line = "vocab " + " ".join(f'"{t}"' for t in vocab)
        parts = ['"<s>"'] * self.start + ["words"]
        if self.buffer:
            parts.append(f'"<m>" * {self.buffer}')
        if self.end:
            parts.append('"<e>"')
        self.input_line = "input " + " ".join(parts)

    def _inputs(self) -> tuple[str, ...]:
        rng = self.rng
        lengths = [0, self.W, 1] + [rng.randint(0, self.W) for _ in range(rng.randint(3, 7))]
        rng.shuffle(lengths)
        out = []
        for n in lengths:
            if rng.random() < 0.3 and n <= len(self.words):
                out.append(" ".join(rng.sample(self.words, n)))  # all distinct
            else:
                pool = rng.sample(self.words, rng.randint(1, len(self.words)))
                out.append(" ".join(rng.choice(pool) for _ in range(n)))
        return tuple(out)

    def tok(self, word: str | None = None) -> str:
        return f'"{word if word is not None else self.rng.choice(self.words)}"'

    # -- variables --------------------------------------------------------------------------------

    def add_var(self, var: Var) -> Var:
        self.vars.append(var)
        return var

    def _infrastructure(self) -> None:
        """Position index (every program) and what it can know about the right edge."""
        rng, L = self.rng, self.L
        self.pos = self.add_var(Var(self.fresh("pos"), "cat", L, mode="fixed",
                                    decl=f"var @: cat {L} = position"))
        choices = ["length"] * 2 + ["span"] * 2 + ["edge"] * 4 + ["none"] + \
            ["trail"] * 2 * (self.T > 0)
        self.kit = rng.choice(choices)
        self.posf = None
        self.far = None  # a `let` holding the last position's index (length kit)
        if self.kit in ("length", "span"):
            self.posf = self.add_var(Var(self.fresh("posf"), "num", L,
                                         values=tuple(Fraction(i) for i in range(L)),
                                         mode="fixed",
                                         decl=f"var @: num {{u for u in 0..{L - 1}}} = position"))
        halves = f"num {{u / 2 for u in 0..{2 * (L - 1)}}}"
        half_vals = tuple(Fraction(k, 2) for k in range(2 * L - 1))
        if self.kit == "length":
            self.ln = self.add_head(HeadInfo(self.fresh("ln"), True, vals=half_vals,
                                             primary=False,
                                             decl=f"head @: {halves} = {self.posf.name}"))
            self.last_expr = f"round({self.ln.name} * 2)"
            if rng.random() < 0.5:
                self.far = "far"
        elif self.kit == "span":
            self.D = rng.randint(1, 3)
            at = rng.choice([f"0..{self.D}", "{" + ", ".join(map(str, range(self.D + 1))) + "}"])
            self.sp = self.add_head(HeadInfo(self.fresh("sp"), True, vals=half_vals,
                                             primary=False,
                                             decl=f"head @: {halves} = {self.posf.name} at {at}"))
        elif self.kit == "edge":
            # e_d = mean of (position // d) % 2 over offsets {0, d}: 0.5 exactly where i + d
            # exists (the two parities differ), else the parity itself (0 or 1).
            self.D = rng.randint(1, 2)
            self.edges = {}
            for d in range(1, self.D + 1):
                par = self.add_var(Var(self.fresh("par"), "num", values=(Fraction(0),
                                                                         Fraction(1)),
                                       mode="fixed", decl=f"var @: num {{0, 1}} = "
                                                          f"(position // {d}) % 2" if d > 1
                                       else "var @: num {0, 1} = position % 2"))
                par.decl = par.decl.replace("@", par.name, 1)
                at = rng.choice([f"{{0, {d}}}", "0..1"] if d == 1 else [f"{{0, {d}}}"])
                self.edges[d] = self.add_head(HeadInfo(
                    self.fresh("e"), True, vals=(Fraction(0), Fraction(1, 2), Fraction(1)),
                    primary=False, decl=f"head @: num {{0, 0.5, 1}} = {par.name} at {at}"))
        elif self.kit == "trail":
            self.inner = self.add_var(Var(self.fresh("inner"), "bool", 2, mode="fixed",
                                          decl='var @: bool = token not in {"<m>", "<e>"}'
                                          if self.buffer and self.end else
                                          ('var @: bool = token != "<m>"' if self.buffer
                                           else 'var @: bool = token != "<e>"')))
        for v in self.vars:
            v.decl = v.decl.replace("@", v.name, 1)

    def last(self) -> str:
        """Index of the last position (length kit only)."""
        return self.far if self.far else self.last_expr

    def exists(self, d: int) -> str | None:
        """A condition implying position i + d exists, or None if the program cannot know."""
        p = self.pos.name
        if d == 0:
            return "true"
        if d < 0:
            return f"{p} >= {-d}" if -d < self.L else None
        if self.kit == "length":
            return f"{p} + {d} <= {self.last()}"
        if self.kit == "span" and d <= self.D:
            return f"round({self.sp.name} * 2) >= 2 * {p} + {d}"
        if self.kit == "trail" and d <= self.T:
            return self.inner.name
        if self.kit == "edge" and d <= self.D:
            return f"{self.edges[d].name} == 0.5"
        return None

    def exists_exact(self, d: int) -> str | None:
        """A condition that holds exactly where position i + d exists (for "exactly one
        selected" guards, which a merely sufficient condition would make unsound)."""
        if d > 0 and self.kit == "trail":
            return None
        return self.exists(d)

    def before_end(self, q: str) -> str:
        """A condition implying position `q` (an index expression) exists."""
        p = self.pos.name
        if self.kit == "length":
            return f"{q} <= {self.last()}"
        if self.kit == "span":
            return f"{q} + {p} <= round({self.sp.name} * 2)"
        if self.kit == "trail":
            return f"{q} <= {p} or ({self.inner.name} and {q} <= {p} + {self.T})"
        if self.kit == "edge":
            return f"{q} <= {p} or ({self.edges[1].name} == 0.5 and {q} == {p} + 1)"
        return f"{q} <= {p}"

    def _data_variables(self) -> None:
        rng = self.rng
        kinds = ["cat", "bool", "enum", "vocab", "num", "set"]
        chosen = [k for k in kinds if rng.random() < 0.6]
        while len(chosen) < 3:
            chosen.append(rng.choice(kinds))
        chosen += [rng.choice(kinds) for _ in range(rng.randint(0, 2))]
        self.enum = None
        if "enum" in chosen:
            self.enum = rng.choice(ENUMS)
            name, members = self.enum
            members = members[:rng.randint(2, len(members))]
            self.enum = (name, members)
            self.enum_decls.append(f"enum {name} {{{', '.join(members)}}}")
        for kind in chosen:
            self.add_var(self.make_var(kind))

    def source_of(self) -> str:
        r = self.rng.random()
        return "token" if r < 0.5 else ("position" if r < 0.75 else "constant")

    def make_var(self, kind: str, source: str | None = None) -> Var:
        rng, V = self.rng, self.V
        source = source or self.source_of()
        name = self.fresh({"cat": "c", "bool": "b", "enum": "m", "vocab": "t", "num": "n",
                           "set": "s"}[kind])
        if kind == "cat":
            n = rng.randint(2, 6)
            if source == "token":
                init = rng.choice([f"token % {n}", self.table_init([rng.randrange(n) for _ in
                                                                     range(V)]),
                                   (f"{rng.randrange(n)} if token == {self.tok()} else "
                                    f"{rng.randrange(n)}")])
            elif source == "position":
                init = rng.choice([f"min(position, {n - 1})", f"position % {n}",
                                   f"{n - 1} - min(position, {n - 1})"])
            else:
                init = str(rng.randrange(n)) if rng.random() < 0.7 else None
            return self.var_decl(Var(name, "cat", n), f"cat {n}", init)
        if kind == "bool":
            if source == "token":
                init = rng.choice([f"token == {self.tok()}", f"token != {self.tok()}",
                                   f"token in {{{self.tok()}, {self.tok()}}}"])
            elif source == "position":
                init = rng.choice(["position == 0", "position % 2 == 1",
                                   f"position >= {rng.randint(1, 3)}"])
            else:
                init = rng.choice(["true", "false", None])
            return self.var_decl(Var(name, "bool", 2), "bool", init)
        if kind == "enum":
            ename, members = self.enum
            if source == "token":
                init = rng.choice([(f"{rng.choice(members)} if token == {self.tok()} else "
                                    f"{rng.choice(members)}"),
                                   self.table_init([rng.choice(members) for _ in range(V)])])
            elif source == "position":
                init = f"{rng.choice(members)} if position % 2 == 0 else {rng.choice(members)}"
            else:
                init = rng.choice(list(members) + [None])
            return self.var_decl(Var(name, "enum", len(members), members=members),
                                 f"cat {ename}", init)
        if kind == "vocab":
            if source == "token":
                init = "token"
            elif source == "position":
                init = f"{self.tok()} if position % 2 == 0 else {self.tok()}"
            else:
                init = self.tok()
            return self.var_decl(Var(name, "vocab", V), "vocab", init)
        if kind == "num":
            values = tuple(Fraction(v) for v in rng.choice(NUM_SETS))
            var = Var(name, "num", values=values)
            decl = "num " + _num_set(values)
            if source == "token":
                init = rng.choice([self.table_init([_num(rng.choice(values)) for _ in range(V)]),
                                   (f"{_num(rng.choice(values))} if token == {self.tok()} "
                                    f"else {_num(rng.choice(values))}")])
            elif source == "position":
                init = (f"{_num(rng.choice(values))} if position % 2 == 0 else "
                        f"{_num(rng.choice(values))}")
            else:
                init = _num(rng.choice(values)) if 0 not in values or rng.random() < 0.5 \
                    else None
            return self.var_decl(var, decl, init)
        assert kind == "set"
        n = rng.randint(2, 4)
        every = _all_subsets(n)
        if rng.random() < 0.5:
            sets = frozenset(rng.sample(sorted(every, key=sorted),
                                        rng.randint(2, min(6, len(every)))))
            listed = sorted(sets, key=lambda s: (len(s), sorted(s)))
            type_text = f"set {n} of [" + ", ".join(_set_text(s) for s in listed) + "]"
        else:
            sets, listed = every, sorted(every, key=lambda s: (len(s), sorted(s)))
            type_text = f"set {n}"
        var = Var(name, "set", n, sets=sets)
        if source == "token":
            init = self.token_chain([_set_text(rng.choice(listed)) for _ in range(V)])
        elif source == "position" and sets == every:
            init = rng.choice([f"{{min(position, {n - 1})}}", f"{{position % {n}}}",
                               f"{{0, position % {n}}}"])
        else:
            pick = rng.choice(listed)
            init = _set_text(pick) if pick or rng.random() < 0.5 else None
            if init is None and frozenset() not in sets:
                init = _set_text(pick)
        return self.var_decl(var, type_text, init)

    def token_chain(self, cells: list) -> str:
        """A value per token id as a chain of conditionals on token literals (tables of sets
        cannot be indexed by `token`, see the generator's notes)."""
        default = max(cells, key=cells.count)  # first most common: no hash order
        out = default
        for token, cell in reversed(list(zip(self.vocab, cells))):
            if cell != default:
                out = f"{cell} if token == \"{token}\" else {out}"
                out = f"({out})" if self.rng.random() < 0.5 else out
        return out

    def table_init(self, cells: list) -> str:
        name = self.fresh("TAB")
        self.consts.append(f"const {name} = [{', '.join(map(str, cells))}]")
        return f"{name}[token]"

    def var_decl(self, var: Var, type_text: str, init: str | None) -> Var:
        var.decl = f"var {var.name}: {type_text}" + (f" = {init}" if init is not None else "")
        return var

    # -- heads ------------------------------------------------------------------------------------

    def add_head(self, head: HeadInfo) -> HeadInfo:
        head.decl = head.decl.replace("@", head.name, 1)
        self.heads.append(head)
        return head

    def value_var(self, numerical: bool | None = None) -> Var:
        """A variable for a head to read (categorical or numerical)."""
        pool = [v for v in self.vars if (v.categorical or v.kind == "num") and v.name not in (
            self.pos.name,) and (numerical is None or (v.kind == "num") == numerical)
            and v is not self.posf]
        if not pool:
            return self.add_var(self.make_var("num" if numerical else
                                              self.rng.choice(["cat", "enum", "vocab", "bool"])))
        return self.rng.choice(pool)

    def bits_var(self, inits: list[str]) -> Var:
        """A new `num {0, 1}` variable for a mean to read, initialised by one of `inits`."""
        bits = self.add_var(self.make_var("num"))
        bits.values = (Fraction(0), Fraction(1))
        bits.decl = f"var {bits.name}: num {{0, 1}} = {self.rng.choice(inits)}"
        return bits

    def cat_head(self, name: str, value: Var, decl: str, guard: str | None,
                 primary: bool = True) -> HeadInfo:
        return self.add_head(HeadInfo(name, False, size=value.size, guard=guard,
                                      members=value.members, primary=primary, decl=decl))

    def _heads(self) -> None:
        rng = self.rng
        makers = [self.head_relative, self.head_relative, self.head_multi_offset,
                  self.head_window, self.head_absolute, self.head_absolute,
                  self.head_where_offsets, self.head_where_offsets]
        if self.start:
            makers += [self.head_content, self.head_content, self.head_content_set,
                       self.head_content_set]
        if self.kit == "length":
            makers += [self.head_set_positions, self.head_everyone]
        if self.L <= 6:
            makers += [self.head_mean_all, self.head_compare]
        makers += [self.head_count]
        count = rng.randint(2, 4)
        made = 0
        for _ in range(40):
            if made >= count:
                break
            if rng.choice(makers)():
                made += 1

    def offsets_known(self, candidates, exact: bool = False) -> list[int]:
        test = self.exists_exact if exact else self.exists
        return [d for d in candidates if test(d) is not None]

    def head_relative(self) -> bool:
        """`v at d`: one offset, no where; undefined at the edges."""
        ds = self.offsets_known([-3, -2, -1, -1, 1, 1, 2, 3])
        d = self.rng.choice(ds)
        value = self.value_var()
        name = self.fresh("h")
        if value.kind == "num":
            typed = f": num {_num_set(value.values)}" \
                if self.rng.random() < 0.3 else ""
            self.add_head(HeadInfo(name, True, vals=value.values, guard=self.exists(d),
                                   decl=f"head @{typed} = {value.name} at {d}"))
        else:
            typed = ""
            if self.rng.random() < 0.3:
                typed = ": vocab" if value.kind == "vocab" else f": cat {value.size}"
                if value.kind == "enum":
                    typed = f": cat {self.enum[0]}"
            self.cat_head(name, value, f"head @{typed} = {value.name} at {d}", self.exists(d))
        return True

    def head_multi_offset(self) -> bool:
        """Categorical `v at {a, b}`: several selected where both exist (undefined)."""
        ds = self.offsets_known([-3, -2, -1, 1, 2, 3], exact=True)
        if len(ds) < 2:
            return False
        a, b = sorted(self.rng.sample(ds, 2))
        value = self.value_var(numerical=False)
        at = f"{a}..{b}" if b == a + 1 and self.rng.random() < 0.5 else f"{{{a}, {b}}}"
        guard = f"({self.exists(a)}) != ({self.exists(b)})"
        self.cat_head(self.fresh("h"), value, f"head @ = {value.name} at {at}", guard)
        return True

    def head_window(self) -> bool:
        """Numerical mean over a window of offsets: declared values cover every mean."""
        rng = self.rng
        ds = self.offsets_known([-2, -1, 0, 1, 2])
        size = rng.randint(2, 3)
        if len(ds) < size:
            return False
        offsets = sorted(rng.sample(ds, size))
        value = self.value_var(numerical=True)
        if len(value.values) > 3 and size == 3:
            offsets = offsets[:2]
        vals = _means(value.values, range(1, len(offsets) + 1))
        guard = None if 0 in offsets else " or ".join(f"({self.exists(d)})" for d in offsets)
        at = "{" + ", ".join(map(str, offsets)) + "}"
        if offsets == list(range(offsets[0], offsets[-1] + 1)) and rng.random() < 0.5:
            at = f"{offsets[0]}..{offsets[-1]}"
        decl = f"head @: num {_num_set(vals)} = {value.name} at {at}"
        self.add_head(HeadInfo(self.fresh("h"), True, vals=tuple(vals), guard=guard, decl=decl))
        return True

    def head_absolute(self) -> bool:
        """`v where pos == q`: unique keys; q from position or written by the MLP."""
        rng, L, p = self.rng, self.L, self.pos.name
        q = Var(self.fresh("q"), "cat", L)
        form = rng.randrange(5)
        d = rng.randint(1, 3)
        if form == 0:
            init, q.mode = f"max(position - {d}, 0)", rng.choice(["le_pos", "fixed", "free"])
        elif form == 1:
            init, q.mode = "position // 2", rng.choice(["le_pos", "fixed"])
        elif form == 2:
            init = f"min(position + {d}, {L - 1})"
        elif form == 3:
            init = f"{L - 1} - position"
        else:
            init, q.mode = None, rng.choice(["le_pos", "free"])
        self.add_var(self.var_decl(q, f"cat {L}", init))
        guard = None if q.mode in ("le_pos", "fixed") and form in (0, 1, 4) else \
            self.before_end(q.name)
        offsets = None
        if rng.random() < 0.25:
            offsets = sorted(rng.sample([-2, -1, 0, 1, 2], rng.randint(1, 3)))
            member = f"{q.name} - {p} in {{{', '.join(map(str, offsets))}}}"
            guard = member if guard is None else f"{member} and ({guard})"
        at = "" if offsets is None else " at {" + ", ".join(map(str, offsets)) + "}"
        value = self.value_var()
        name = self.fresh("h")
        where = self.equality(p, q.name)
        if value.kind == "num":
            self.add_head(HeadInfo(name, True, vals=value.values, guard=guard,
                                   decl=f"head @: num {_num_set(value.values)} = {value.name} "
                                        f"where {where}{at}"))
        else:
            self.cat_head(name, value, f"head @ = {value.name} where {where}{at}", guard)
        return True

    def equality(self, key: str, query: str) -> str:
        """`key == query`, or the same selection through comparisons (each a term of its own
        in the head's scores)."""
        return self.rng.choice([f"{key} == {query}", f"{key} == {query}",
                                f"{key} >= {query} and {key} <= {query}",
                                f"not {key} != {query}",
                                f"{key} <= {query} and not {key} < {query}"])

    def head_compare(self) -> bool:
        """A mean over unique keys selected by a comparison with the query or a constant:
        `pos <= q` and `pos <= c` always hold at position 0 (defined everywhere); `pos < q`
        holds there where q >= 1, `pos > q` and `pos >= q` select the positions after q
        (defined where the sequence reaches past q)."""
        rng, L, p = self.rng, self.L, self.pos.name
        if L < 2:
            return False
        q = Var(self.fresh("q"), "cat", L)
        self.add_var(self.var_decl(q, f"cat {L}", rng.choice(
            [f"{L - 1} - position", "position // 2", f"min(position + 1, {L - 1})"])))
        c = rng.randrange(L - 1)  # a constant test that holds for some keys, not all
        where, guard = rng.choice([
            (f"{p} <= {q.name}", None), (f"{p} < {q.name}", f"{q.name} >= 1"),
            (f"{p} <= {c}", None), (f"{p} < {c + 1}", None),
            (f"{p} >= {q.name}", self.before_end(q.name)),
            (f"{p} > {q.name} and {p} != 0", self.before_end(f"{q.name} + 1")),
            (f"{p} <= {q.name} and {p} >= 1", f"{q.name} >= 1 and ({self.before_end('1')})")])
        bits = self.bits_var([f"token == {self.tok()}", "position % 2"])
        vals = sorted({Fraction(k, m) for m in range(1, L + 1) for k in range(m + 1)})
        self.add_head(HeadInfo(self.fresh("h"), True, vals=tuple(vals), guard=guard, decl=(
            f"head @: num {_num_set(vals)} = {bits.name} where {where}")))
        return True

    def head_where_offsets(self) -> bool:
        """`v where k == q at O` (or `k in qs`): helper heads read the neighbours' keys."""
        rng = self.rng
        ds = self.offsets_known([-2, -1, 0, 1, 2], exact=True)
        offsets = sorted(rng.sample(ds, rng.randint(1, min(2, len(ds)))))
        use_set = rng.random() < 0.35
        if use_set:
            query = self.add_var(self.make_var("set"))
            key = self.add_var(self.make_var("cat"))
            key.size = query.size
            key.decl = f"var {key.name}: cat {query.size} = " + rng.choice(
                [f"token % {query.size}", f"position % {query.size}",
                 f"min(position, {query.size - 1})"])
        else:
            small = [v for v in self.vars if v.categorical and v.size <= 4
                     and v is not self.pos]
            key = rng.choice(small) if small else self.value_var(numerical=False)
            query = self.add_var(self.make_var("cat"))
            query.size, query.kind, query.members = key.size, key.kind, key.members
            type_text = {"cat": f"cat {key.size}", "bool": "bool", "vocab": "vocab",
                         "enum": f"cat {self.enum[0]}" if self.enum else ""}[key.kind]
            init = rng.choice([f"token % {key.size}", f"position % {key.size}",
                               str(rng.randrange(key.size))])
            query.decl = f"var {query.name}: {type_text} = {init}"
        op = "in" if use_set else "=="
        terms = []
        for d in offsets:
            if d == 0:
                at_d = key.name
            else:
                helper = self.cat_head(self.fresh("k"), key, f"head @ = {key.name} at {d}",
                                       self.exists(d), primary=False)
                at_d = helper.name
            cond = f"{at_d} {op} {query.name}"
            terms.append(cond if d == 0 else f"({self.exists(d)} and {cond})")
        at = " at " + (str(offsets[0]) if len(offsets) == 1 and rng.random() < 0.5
                       else "{" + ", ".join(map(str, offsets)) + "}")
        name = self.fresh("h")
        if rng.random() < 0.3:  # numerical: defined where at least one is selected
            value = self.value_var(numerical=True)
            if len(value.values) > 3:
                value = self.add_var(self.make_var("num"))
            vals = _means(value.values, range(1, len(offsets) + 1))
            self.add_head(HeadInfo(name, True, vals=tuple(vals), guard=" or ".join(
                f"({t})" for t in terms), decl=f"head @: num {_num_set(vals)}"
                f" = {value.name} where {key.name} {op} {query.name}{at}"))
        else:
            value = self.value_var(numerical=False)
            guard = terms[0] if len(terms) == 1 else \
                " + ".join(f"({t})" for t in terms) + " == 1"
            self.cat_head(name, value, f"head @ = {value.name} where {key.name} {op} "
                                       f"{query.name}{at}", guard)
        return True

    def start_key(self) -> tuple[Var, int]:
        """A key over repeated token classes 0..K-1, with the start token's own class K."""
        if self._start_key is None:
            rng = self.rng
            K = rng.randint(2, 3)
            key = Var(self.fresh("key"), "cat", K + 1, mode="fixed")
            if rng.random() < 0.5:
                init = f'{K} if token == "<s>" else token % {K}'
            else:
                init = self.table_init([K if t == "<s>" else rng.randrange(K)
                                        for t in self.vocab])
            self.add_var(self.var_decl(key, f"cat {K + 1}", init))
            is_start = Var(self.fresh("is_s"), "num", values=(Fraction(0), Fraction(1)),
                           mode="fixed")
            self.add_var(self.var_decl(is_start, "num {0, 1}", 'token == "<s>"'))
            self._start_key = (key, K, is_start)
        return self._start_key

    def selector_width(self, key: Var, query_with_start: Var, is_start: Var) -> HeadInfo:
        L = self.L
        return self.add_head(HeadInfo(
            self.fresh("w"), True, vals=tuple(Fraction(1, n) for n in range(1, L + 1)),
            primary=False, decl=f"head @: num {{1 / u for u in 1..{L}}} = {is_start.name} "
                                f"where {key.name} in {query_with_start.name}"))

    def head_content(self) -> bool:
        """`v where key == q` over repeated keys; a selector-width head counts matches."""
        rng = self.rng
        key, K, is_start = self.start_key()
        q = Var(self.fresh("q"), "cat", K + 1)
        qs = Var(self.fresh("qs"), "set", K + 1,
                 sets=frozenset(frozenset({c, K}) for c in range(K)))
        form = rng.randrange(3)
        if form == 0:
            q_init, qs_init = f"token % {K}", f"{{token % {K}, {K}}}"
        elif form == 1:
            c = rng.randrange(K)
            q_init, qs_init = str(c), f"{{{c}, {K}}}"
        else:
            q_init, qs_init = f"position % {K}", f"{{position % {K}, {K}}}"
        q.mode = qs.mode = "sync" if rng.random() < 0.5 else "fixed"
        self.add_var(self.var_decl(q, f"cat {K + 1}", q_init))
        self.add_var(self.var_decl(qs, f"set {K + 1} of [{{c, {K}}} for c in 0..{K - 1}]",
                                   qs_init))
        self.counted_head("int", key, "==", q, qs, K, is_start)
        return True

    def counted_head(self, kind: str, key: Var, op: str, query: Var, counted: Var, K: int,
                     is_start: Var) -> None:
        """`v where key OP query` over repeated keys, read only where a selector-width head
        over `counted` (the query plus the start key K) says exactly one key matches; a
        "sync" query is kept equal to `counted` (less K) by the MLP."""
        if query.mode == "sync":
            self.syncs.append((kind, query, counted, K))
        width = self.selector_width(key, counted, is_start)
        value = self.value_var(numerical=False)
        self.cat_head(self.fresh("h"), value, f"head @ = {value.name} where {key.name} {op} "
                                              f"{query.name}", f"{width.name} == 0.5")

    def head_content_set(self) -> bool:
        """`v where key in qs` over repeated keys (a set query), counted the same way."""
        rng = self.rng
        key, K, is_start = self.start_key()
        every = sorted(_all_subsets(K), key=lambda s: (len(s), sorted(s)))
        listed = sorted(rng.sample(every, rng.randint(2, len(every))),
                        key=lambda s: (len(s), sorted(s)))
        table = self.fresh("QS")
        self.consts.append(f"const {table} = [{', '.join(_set_text(s) for s in listed)}]")
        qs = Var(self.fresh("qs"), "set", K + 1, sets=frozenset(listed))
        qss = Var(self.fresh("qs"), "set", K + 1, sets=frozenset(s | {K} for s in listed))
        cells = [rng.choice(listed) for _ in range(self.V)]
        qs.mode = qss.mode = "sync" if rng.random() < 0.5 else "fixed"
        self.add_var(self.var_decl(qs, f"set {K + 1} of {table}",
                                   self.token_chain([_set_text(c) for c in cells])))
        self.add_var(self.var_decl(qss, f"set {K + 1} of [u | {{{K}}} for u in {table}]",
                                   self.token_chain([_set_text(c | {K}) for c in cells])))
        self.counted_head("set", key, "in", qs, qss, K, is_start)
        if rng.random() < 0.4 and self.L <= 6:  # a mean over the same selection plus start
            bits = self.bits_var([f"token == {self.tok()}", "position % 2", "1"])
            vals = sorted({Fraction(k, m) for m in range(1, self.L + 1) for k in range(m + 1)})
            self.add_head(HeadInfo(self.fresh("h"), True, vals=tuple(vals), decl=(
                f"head @: num {_num_set(vals)} = {bits.name} where "
                f"{key.name} in {qss.name}")))
        return True

    def head_set_positions(self) -> bool:
        """`v where km in qs`, km = min(position, M - 1): the program counts the matches."""
        qs = self.add_var(self.make_var("set"))
        M = qs.size
        km = self.add_var(Var(self.fresh("km"), "cat", M, mode="fixed"))
        km.decl = f"var {km.name}: cat {M} = min(position, {M - 1})"
        last = self.last()
        terms = [f"({v} in {qs.name} and {v} <= {last})" for v in range(M - 1)]
        terms.append(f"({M - 1} in {qs.name}) * max(0, {last} - {M - 2})")
        value = self.value_var(numerical=False)
        self.cat_head(self.fresh("h"), value,
                      f"head @ = {value.name} where {km.name} in {qs.name}",
                      "(" + " + ".join(terms) + ") == 1")
        return True

    def head_count(self) -> bool:
        """`head @: count where k == k [at -2..-1]`: how many positions hold my key (never
        undefined), counts 0..max_length, or 0..2 over the two offsets."""
        key = self.value_var(numerical=False)
        offsets = self.L >= 3 and self.rng.random() < 0.5
        most = 2 if offsets else self.L
        at = " at -2..-1" if offsets else ""
        self.add_head(HeadInfo(self.fresh("h"), False, size=most + 1, guard=None, decl=(
            f"head @: count where {key.name} == {key.name}{at}")))
        return True

    def head_everyone(self) -> bool:
        """A categorical head with no where and no offset: defined only for one position."""
        value = self.value_var(numerical=False)
        self.cat_head(self.fresh("h"), value, f"head @ = {value.name}",
                      f"{self.last()} == 0")
        return True

    def head_mean_all(self) -> bool:
        """Mean of a {0, 1} variable over every position: k / m for m <= max_length."""
        bits = [v for v in self.vars if v.kind == "num" and v.mode == "free"
                and set(v.values) == {0, 1}]
        value = self.rng.choice(bits) if bits else self.bits_var([f"token == {self.tok()}"])
        vals = sorted({Fraction(k, m) for m in range(1, self.L + 1) for k in range(m + 1)})
        self.add_head(HeadInfo(self.fresh("h"), True, vals=tuple(vals), decl=(
            f"head @: num {_num_set(vals)} = {value.name}")))
        return True

    # -- halting ----------------------------------------------------------------------------

    def _halting(self) -> None:
        rng = self.rng
        self.halt_stmts: list[str] = []
        self.settings: list[str] = []
        if rng.random() < 0.45:
            self.settings.append(f"max_layers {rng.randint(1, 4)}")
            return
        K = rng.randint(1, 4)
        form = rng.randrange(3)
        if form == 0:
            step = self.add_var(Var(self.fresh("step"), "cat", K + 1, mode="halt"))
            init = "0" if rng.random() < 0.6 else f"token % {min(K, 2)}"
            self.var_decl(step, f"cat {K + 1}", init)
            self.halt_stmts.append(rng.choice([f"{step.name} = min({step.name} + 1, {K})",
                                               (f"{step.name} = {step.name} + 1 if {step.name} "
                                                f"< {K} else {K}")]))
            self.settings.append(f"halt when {step.name} == {K}")
        elif form == 1:
            names = [f"Phase{i}" for i in range(K)] + ["Done"]
            self.enum_decls.append(f"enum Phase {{{', '.join(names)}}}")
            ph = self.add_var(Var(self.fresh("ph"), "enum", K + 1, members=tuple(names),
                                  mode="halt"))
            self.var_decl(ph, "cat Phase", names[0])
            nxt = self.fresh("NEXT")
            self.consts.append(f"const {nxt} = [{', '.join(names[1:] + ['Done'])}]")
            self.halt_stmts.append(f"{ph.name} = {nxt}[{ph.name}]")
            self.settings.append(f"halt when {ph.name} == Done")
        else:
            tick = self.add_var(Var(self.fresh("tick"), "cat", K, mode="halt"))
            self.var_decl(tick, f"cat {K}", "0")
            done = self.add_var(Var(self.fresh("done"), "bool", 2, mode="halt"))
            self.var_decl(done, "bool", "false")
            self.halt_stmts.append(f"{tick.name} = min({tick.name} + 1, {K - 1})")
            self.halt_stmts.append(f"if {tick.name} == {K - 1}:\n    {done.name} = true")
            self.settings.append(f"halt when {done.name} == 1")
        if rng.random() < 0.4:
            self.settings.append(f"max_layers {K + rng.randint(0, 3)}")

    # -- expressions -------------------------------------------------------------------------------

    def read_head(self, head: HeadInfo, ctx: Ctx, fallback):
        """A head read, wrapped in its guard unless the context already implies it."""
        if head.guard is None or head.name in ctx.guarded:
            return head.name
        if self.unguarded and self.rng.random() < self.unguarded:
            return head.name
        return f"({head.name} if ({head.guard}) else {fallback})"

    def cat_heads(self, ctx: Ctx) -> list[HeadInfo]:
        return [h for h in self.heads if not h.numerical and ctx.heads and h.primary]

    def num_heads(self, ctx: Ctx) -> list[HeadInfo]:
        return [h for h in self.heads if h.numerical and ctx.heads and h.primary]

    def int_leaf(self, ctx: Ctx) -> IntE:
        rng = self.rng
        r = rng.random()
        cats = [v for v in self.vars if v.categorical]
        locs = [loc for loc in ctx.locals if isinstance(loc.expr, IntE)]
        if r < 0.45 and cats:
            v = rng.choice(cats)
            return IntE(v.name, 0, v.size - 1)
        if r < 0.55 and locs:
            loc = rng.choice(locs)
            return IntE(loc.name, loc.expr.lo, loc.expr.hi)
        if r < 0.7 and self.cat_heads(ctx):
            return self.head_int(rng.choice(self.cat_heads(ctx)), ctx)
        if r < 0.75:
            sets = [v for v in self.vars if v.kind == "set"]
            if sets:
                v = rng.choice(sets)
                lens = [len(s) for s in v.sets]
                return IntE(f"len({v.name})", min(lens), max(lens))
        if r < 0.8:
            f = self.float_leaf(ctx)
            if f.exact and all(_dyadic(x) for x in f.vals):
                rounded = [round(x) for x in f.vals]
                return IntE(f"round({f.text})", min(rounded), max(rounded))
        if r < 0.85 and self.enum is not None:
            m = rng.randrange(len(self.enum[1]))
            return IntE(self.enum[1][m], m, m)
        c = rng.randint(-2, 6)
        return IntE(str(c), c, c)

    def head_int(self, head: HeadInfo, ctx: Ctx) -> IntE:
        fb = self.rng.randrange(head.size)
        return IntE(self.read_head(head, ctx, fb), 0, head.size - 1)

    def gen_int(self, depth: int, ctx: Ctx) -> IntE:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.3:
            return self.int_leaf(ctx)
        a = self.gen_int(depth - 1, ctx)
        choice = rng.randrange(10)
        if choice < 3:
            b = self.gen_int(depth - 1, ctx)
            op = rng.choice("+-*")
            if op == "+":
                out = IntE(f"({a.text} + {b.text})", a.lo + b.lo, a.hi + b.hi)
            elif op == "-":
                out = IntE(f"({a.text} - {b.text})", a.lo - b.hi, a.hi - b.lo)
            else:
                corners = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
                out = IntE(f"({a.text} * {b.text})", min(corners), max(corners))
        elif choice == 3:
            c = rng.randint(2, 5)
            lo, hi = (a.lo, a.hi) if a.lo >= 0 and a.hi < c else (0, c - 1)
            out = IntE(f"({a.text} % {c})", lo, hi)
        elif choice == 4:
            c = rng.randint(2, 3)
            out = IntE(f"({a.text} // {c})", a.lo // c, a.hi // c)
        elif choice == 5:
            b = self.gen_int(depth - 1, ctx)
            if rng.random() < 0.5:
                out = IntE(f"min({a.text}, {b.text})", min(a.lo, b.lo), min(a.hi, b.hi))
            else:
                out = IntE(f"max({a.text}, {b.text})", max(a.lo, b.lo), max(a.hi, b.hi))
        elif choice == 6:
            lo, hi = (a.lo, a.hi) if a.lo >= 0 else ((-a.hi, -a.lo) if a.hi <= 0
                                                     else (0, max(-a.lo, a.hi)))
            out = IntE(f"abs({a.text})", lo, hi)
        elif choice == 7:
            if not self.int_tables or rng.random() < 0.3:
                cells = [rng.randint(-1, 6) for _ in range(rng.randint(2, 5))]
                name = self.fresh("T")
                self.consts.append(f"const {name} = {cells}")
                self.int_tables.append((name, cells))
            name, cells = rng.choice(self.int_tables)
            out = IntE(f"{name}[{a.text} % {len(cells)}]", min(cells), max(cells))
        elif choice == 8:
            b = self.gen_int(depth - 1, ctx)
            c = self.gen_bool(depth - 1, ctx)
            out = IntE(f"({a.text} if {c} else {b.text})", min(a.lo, b.lo), max(a.hi, b.hi))
        else:
            out = IntE(f"({self.gen_bool(depth - 1, ctx)})", 0, 1)
        if out.hi - out.lo > 40 or abs(out.lo) > 40 or abs(out.hi) > 40:
            c = rng.randint(3, 9)
            out = IntE(f"({out.text} % {c})", 0, c - 1)
        return out

    def float_leaf(self, ctx: Ctx) -> FloatE:
        rng = self.rng
        nums = [v for v in self.vars if v.kind == "num"]
        locs = [loc for loc in ctx.locals if isinstance(loc.expr, FloatE)]
        r = rng.random()
        if r < 0.5 and nums:
            v = rng.choice(nums)
            return FloatE(v.name, frozenset(v.values), True)
        if r < 0.6 and locs:
            loc = rng.choice(locs)
            return FloatE(loc.name, loc.expr.vals, loc.expr.exact)
        if r < 0.8 and self.num_heads(ctx):
            return self.head_float(rng.choice(self.num_heads(ctx)), ctx)
        c = Fraction(rng.randint(-4, 4), rng.choice([1, 2, 4]))
        return FloatE(_num(c), frozenset({c}), True)

    def head_float(self, head: HeadInfo, ctx: Ctx) -> FloatE:
        fb = self.rng.choice(head.vals)
        return FloatE(self.read_head(head, ctx, _num(fb)), frozenset(head.vals), True)

    def gen_float(self, depth: int, ctx: Ctx) -> FloatE:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.35:
            return self.float_leaf(ctx)
        a = self.gen_float(depth - 1, ctx)
        choice = rng.randrange(5)
        dyadic = a.exact and all(_dyadic(x) for x in a.vals)
        if choice == 0 and dyadic:
            b = self.gen_float(depth - 1, ctx)
            if b.exact and all(_dyadic(x) for x in b.vals) and len(a.vals) * len(b.vals) <= 64:
                op = rng.choice("+-")
                vals = {x + y if op == "+" else x - y for x in a.vals for y in b.vals}
                if all(abs(v) <= 16 for v in vals):
                    return FloatE(f"({a.text} {op} {b.text})", frozenset(vals), True)
        if choice == 1 and dyadic:
            c = Fraction(rng.choice([-2, -1, 1, 2]), rng.choice([1, 2]))
            return FloatE(f"({a.text} * {_num(c)})", frozenset(x * c for x in a.vals), True)
        if choice == 2:
            b = self.gen_float(depth - 1, ctx)
            name = rng.choice(["min", "max"])
            pick = min if name == "min" else max
            vals = frozenset(pick(x, y) for x in a.vals for y in b.vals)
            return FloatE(f"{name}({a.text}, {b.text})", vals, a.exact and b.exact)
        if choice == 3:
            b = self.gen_float(depth - 1, ctx)
            return FloatE(f"({a.text} if {self.gen_bool(depth - 1, ctx)} else {b.text})",
                          a.vals | b.vals, a.exact and b.exact)
        i = self.gen_int(depth - 1, ctx)
        if i.hi - i.lo <= 12:
            return FloatE(f"({i.text} / 2)", frozenset(Fraction(k, 2) for k in
                                                       range(i.lo, i.hi + 1)), True)
        return a

    def set_leaf(self, ctx: Ctx, n: int) -> SetE:
        rng = self.rng
        sets = [v for v in self.vars if v.kind == "set" and all(
            max(s, default=-1) < n for s in v.sets)]
        locs = [loc for loc in ctx.locals if isinstance(loc.expr, SetE)
                and all(max(s, default=-1) < n for s in loc.expr.poss)]
        r = rng.random()
        if r < 0.45 and sets:
            v = rng.choice(sets)
            return SetE(v.name, v.sets)
        if r < 0.55 and locs:
            loc = rng.choice(locs)
            return SetE(loc.name, loc.expr.poss)
        if r < 0.8:
            i = self.fit_int(self.gen_int(1, ctx), n)
            return SetE(f"{{{i.text}}}", frozenset(frozenset({k})
                                                   for k in range(i.lo, i.hi + 1)))
        s = frozenset(rng.sample(range(n), rng.randint(0, n)))
        return SetE(_set_text(s), frozenset({s}))

    def gen_set(self, depth: int, ctx: Ctx, n: int) -> SetE:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.4:
            return self.set_leaf(ctx, n)
        a, b = self.gen_set(depth - 1, ctx, n), self.gen_set(depth - 1, ctx, n)
        if rng.random() < 0.25:
            return SetE(f"({a.text} if {self.gen_bool(depth - 1, ctx)} else {b.text})",
                        a.poss | b.poss)
        op = rng.choice(["|", "&", "-", "^"])
        fn = {"|": frozenset.__or__, "&": frozenset.__and__, "-": frozenset.__sub__,
              "^": frozenset.__xor__}[op]
        return SetE(f"({a.text} {op} {b.text})",
                    frozenset(fn(x, y) for x in a.poss for y in b.poss))

    def threshold(self, f: FloatE) -> str:
        vals = sorted(f.vals)
        if len(vals) == 1:
            return _num(vals[0] + Fraction(1, 2) * self.rng.choice([-1, 1]))
        i = self.rng.randrange(len(vals) - 1)
        return _num((vals[i] + vals[i + 1]) / 2)

    def gen_bool(self, depth: int, ctx: Ctx) -> str:
        rng = self.rng
        if depth > 0 and rng.random() < 0.35:
            r = rng.random()
            if r < 0.4:
                return f"{self.gen_bool(depth - 1, ctx)} and {self.gen_bool(depth - 1, ctx)}"
            if r < 0.8:
                return f"({self.gen_bool(depth - 1, ctx)} or {self.gen_bool(depth - 1, ctx)})"
            return f"not ({self.gen_bool(depth - 1, ctx)})"
        for _ in range(4):
            cond = self.bool_leaf(depth, ctx)
            if self.reads_of(cond, ctx):
                return cond
        # Never a constant: the checker folds it, and a head read in a dead branch is gone.
        return f"{self.pos.name} == {rng.randrange(2)}"

    def bool_leaf(self, depth: int, ctx: Ctx) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            bools = [v for v in self.vars if v.kind == "bool"] + [
                loc for loc in ctx.locals if loc.is_bool]
            if bools:
                return rng.choice(bools).name
        if r < 0.5:
            a = self.gen_int(max(depth - 1, 0), ctx)
            if rng.random() < 0.5 or ctx.state:
                c = rng.randint(a.lo, a.hi)
                return f"{a.text} {rng.choice(['==', '!=', '<', '>=', '<=', '>'])} {c}"
            b = self.gen_int(max(depth - 1, 0), ctx)
            op = rng.choice(['==', '!=', '<', '>=', '<=', '>'])
            if op in ("==", "!=") and _never_equal(a, b):
                # `x == 7` for a `cat 2` x is decided in advance: a checker error. An order
                # comparison instead (no more randomness drawn: the rest stays the same).
                op = "<" if op == "==" else ">="
            return f"{a.text} {op} {b.text}"
        if r < 0.6:
            a = self.gen_int(max(depth - 1, 0), ctx)
            members = sorted(rng.sample(range(max(a.lo, 0), max(a.hi, 0) + 2),
                                        min(2, max(a.hi, 0) - max(a.lo, 0) + 2)))
            neg = "not in" if rng.random() < 0.3 else "in"
            return f"{a.text} {neg} {{{', '.join(map(str, members))}}}"
        if r < 0.72:
            special = [v for v in self.vars if v.kind in ("enum", "vocab")]
            if special:
                v = rng.choice(special)
                lit = rng.choice(v.members) if v.kind == "enum" else self.tok(
                    rng.choice(self.vocab))
                return f"{v.name} {rng.choice(['==', '!='])} {lit}"
        if r < 0.85:
            f = self.gen_float(max(depth - 1, 0), ctx)
            if f.exact and (rng.random() < 0.3 or ctx.state):
                return f"{f.text} == {_num(rng.choice(sorted(f.vals)))}"
            return f"{f.text} {rng.choice(['<', '>'])} {self.threshold(f)}"
        sets = [v for v in self.vars if v.kind == "set"]
        if sets:
            v = rng.choice(sets)
            r = rng.random()
            if r < 0.5:
                return f"{self.gen_int(max(depth - 1, 0), ctx).text} " \
                       f"{rng.choice(['in', 'not in'])} {v.name}"
            if r < 0.75:
                return f"len({v.name}) >= {rng.randint(1, v.size)}"
            return f"{v.name} == {_set_text(rng.choice(sorted(v.sets, key=sorted)))}"
        a = self.gen_int(0, ctx)
        return f"{a.text} >= {rng.randint(a.lo, a.hi)}"

    # -- fitting values to a variable's range ----------------------------------------------

    def fit_int(self, e: IntE, n: int) -> IntE:
        """An expression with values in 0..n-1."""
        if e.lo >= 0 and e.hi <= n - 1:
            return e
        r = self.rng.random()
        if r < 0.5:
            return IntE(f"({e.text}) % {n}", 0, n - 1)
        if r < 0.7 and self.use_clip:
            return IntE(f"clip({e.text}, 0, {n - 1})", max(0, min(e.lo, n - 1)),
                        min(n - 1, max(e.hi, 0)))
        return IntE(f"min(max({e.text}, 0), {n - 1})", max(0, min(e.lo, n - 1)),
                    min(n - 1, max(e.hi, 0)))

    def num_from_int(self, e: IntE, var: Var) -> str:
        values = list(var.values)
        if self.rng.random() < 0.5:
            cells = [_num(self.rng.choice(values)) for _ in range(self.rng.randint(2, 4))]
            name = self.fresh("NT")
            self.consts.append(f"const {name} = [{', '.join(cells)}]")
            return f"{name}[{self.fit_int(e, len(cells)).text}]"
        c = self.rng.randint(e.lo, e.hi)
        return f"{_num(self.rng.choice(values))} if {e.text} == {c} else " \
               f"{_num(self.rng.choice(values))}"

    def num_from_float(self, f: FloatE, var: Var) -> str:
        if f.vals <= set(var.values) and (f.exact or self.rng.random() < 0.5):
            return f.text
        a, b = self.rng.choice(var.values), self.rng.choice(var.values)
        return f"{_num(a)} if {f.text} > {self.threshold(f)} else {_num(b)}"

    def set_from(self, e: SetE, var: Var) -> str | None:
        return e.text if e.poss <= var.sets else None

    def const_set(self, var: Var) -> str:
        return _set_text(self.rng.choice(sorted(var.sets, key=lambda s: (len(s), sorted(s)))))

    # -- writes -------------------------------------------------------------------------------

    def write_value(self, var: Var, ctx: Ctx, atom=None, alone: bool = False) -> str:
        """An expression for `var = ...` that stays in range; uses `atom` if given."""
        rng = self.rng
        depth = rng.choice([0, 0, 1, 1, 2])
        if var.kind == "num":
            if isinstance(atom, IntE):
                return self.num_from_int(atom, var)
            if isinstance(atom, FloatE):
                return self.num_from_float(atom, var)
            r = rng.random()
            if r < 0.4:
                return self.num_from_float(self.gen_float(depth, ctx), var)
            if r < 0.7:
                return self.num_from_int(self.gen_int(depth, ctx), var)
            return f"{_num(rng.choice(var.values))} if {self.gen_bool(depth, ctx)} else " \
                   f"{_num(rng.choice(var.values))}"
        if var.kind == "set":
            n = var.size
            if atom is not None:
                if isinstance(atom, FloatE):
                    cond = f"{atom.text} > {self.threshold(atom)}"
                else:
                    cond = f"{atom.text} == {rng.randint(atom.lo, atom.hi)}"
                if var.sets == _all_subsets(n) and isinstance(atom, IntE):
                    single = f"{{{self.fit_int(atom, n).text}}}"
                    if alone:
                        return single
                    other = self.set_leaf(ctx, n)
                    return rng.choice([single, f"{other.text} | {single}",
                                       f"{other.text} - {single}"])
                return f"{self.const_set(var)} if {cond} else {self.const_set(var)}"
            for _ in range(6):
                text = self.set_from(self.gen_set(depth, ctx, n), var)
                if text is not None:
                    return text
            return f"{self.const_set(var)} if {self.gen_bool(depth, ctx)} else " \
                   f"{self.const_set(var)}"
        n = var.size
        if atom is not None:
            if isinstance(atom, FloatE):
                if atom.exact and all(_dyadic(x) for x in atom.vals) and rng.random() < 0.5:
                    rounded = [round(x) for x in atom.vals]
                    atom = IntE(f"round({atom.text})", min(rounded), max(rounded))
                else:
                    atom = IntE(f"({atom.text} > {self.threshold(atom)})", 0, 1)
            if rng.random() < 0.5 and not alone:
                other = self.gen_int(depth, ctx)
                atom = IntE(f"({atom.text} + {other.text})", atom.lo + other.lo,
                            atom.hi + other.hi)
            if var.kind == "bool" and rng.random() < 0.6:
                c = rng.randint(atom.lo, atom.hi)
                return f"{atom.text} {rng.choice(['==', '!=', '>=', '<'])} {c}"
            return self.fit_int(atom, n).text
        r = rng.random()
        if var.kind == "bool" and r < 0.6:
            return self.gen_bool(depth, ctx)
        if var.kind == "enum" and r < 0.3:
            return f"{rng.choice(var.members)} if {self.gen_bool(depth, ctx)} else " \
                   f"{rng.choice(var.members)}"
        if var.kind == "vocab" and r < 0.3:
            return self.tok(rng.choice(self.vocab))
        if var.mode == "le_pos":
            p = self.pos.name
            below = self.fit_int(self.gen_int(depth, ctx), n).text
            return rng.choice([f"max({var.name} - 1, 0)", f"min({below}, {p})", p])
        return self.fit_int(self.gen_int(depth, ctx), n).text

    # -- the MLP ------------------------------------------------------------------------------

    def _mlp(self) -> list[str]:
        rng = self.rng
        pending = [h for h in self.heads if h.primary]
        halting = _statements("\n".join(self.halt_stmts).split("\n"))
        budget = max(rng.randint(3, 15) - halting, len(pending) + 1)
        ctx = Ctx()
        lines: list[str] = []
        if self.far:
            lines.append(f"let far = {self.last_expr}")
            ctx = ctx.with_local(Local("far", IntE("far", 0, self.L - 1),
                                       reads=frozenset({self.ln.name})))
            budget -= 1
        for head in self.heads:  # a long guard, computed once (guards are safe anywhere)
            if head.primary and head.guard and len(head.guard) > 24 and rng.random() < 0.6:
                name = f"ok{len(lines)}"
                lines.append(f"let {name} = {head.guard}")
                ctx = ctx.with_local(Local(name, IntE(name, 0, 1), is_bool=True,
                                           reads=self.reads_of(head.guard, ctx)))
                head.guard = name
                budget -= 1
        body = self.block(budget, ctx, set(), pending, 0)
        for stmt in self.halt_stmts:
            body.insert(rng.randint(0, len(body)), stmt.split("\n"))
        for stmt in body:
            lines.extend(stmt)
        return lines

    def block(self, budget: int, ctx: Ctx, assigned: set, pending: list, depth: int,
              top: bool = True) -> list[list[str]]:
        """Statements (each a list of lines) using about `budget` statements."""
        rng = self.rng
        out: list[list[str]] = []
        while budget > 0 or (top and pending):
            r = rng.random()
            if pending and (r < 0.45 or budget <= len(pending) or budget <= 0):
                head = pending.pop(rng.randrange(len(pending)))
                stmt, used = self.read_statement(head, ctx, assigned, depth)
            elif r < 0.6 and depth < 2 and budget >= 3:
                stmt, used = self.if_statement(budget - 1, ctx, assigned, pending, depth)
            elif r < 0.7 and self.syncs and budget >= 3:
                stmt, used = self.sync_statement(ctx, assigned)
            elif r < 0.76:
                stmt, used, ctx = self.let_statement(ctx)
            else:
                stmt, used = self.assign_statement(ctx, assigned)
            if stmt:
                out.append(stmt)
            budget -= max(used, 1)
        return out

    def writable(self, assigned: set) -> list[Var]:
        return [v for v in self.vars if v.mode in ("free", "le_pos") and v.name not in assigned]

    def bounded_write(self, var: Var, ctx: Ctx, atom=None) -> str:
        """`write_value`, retried while the rules it needs exceed RULE_BOUND."""
        for _ in range(4):
            value = self.write_value(var, ctx, atom)
            if self.cost(ctx.path | self.reads_of(value, ctx) | {var.name}) <= RULE_BOUND:
                return value
        if atom is not None:  # the head must be read: the atom alone, fitted to the variable
            return self.write_value(var, ctx, atom, alone=True)
        return self.simple_value(var)

    def simple_value(self, var: Var) -> str:
        rng = self.rng
        if var.kind == "num":
            return _num(rng.choice(var.values))
        if var.kind == "set":
            return self.const_set(var)
        if var.kind == "enum":
            return rng.choice(var.members)
        if var.mode == "le_pos":
            return self.pos.name
        return str(rng.randrange(var.size))

    def bounded_bool(self, ctx: Ctx, limit: int) -> str:
        """A condition for `if`: reads something (a constant one would be folded away with
        the head reads in its dead branch) and stays within the rule bound."""
        for _ in range(6):
            cond = self.gen_bool(self.rng.choice([0, 0, 1, 1, 2]), ctx)
            reads = self.reads_of(cond, ctx)
            if reads and self.cost(ctx.path | reads) <= limit:
                return cond
        bools = [v.name for v in self.vars if v.kind == "bool"]
        return self.rng.choice(bools) if bools else f"{self.pos.name} == 0"

    def assign_statement(self, ctx: Ctx, assigned: set):
        pool = self.writable(assigned)
        if not pool:
            return None, 1
        var = self.rng.choice(pool)
        assigned.add(var.name)
        return [f"{var.name} = {self.bounded_write(var, ctx)}"], 1

    def let_statement(self, ctx: Ctx):
        rng = self.rng
        name = f"loc{self.locals_made}"
        self.locals_made += 1
        depth = rng.choice([0, 0, 1, 1, 2])
        r = rng.random()
        if r < 0.45:
            e = self.gen_int(depth, ctx)
            local = Local(name, IntE(name, e.lo, e.hi))
        elif r < 0.65:
            e = IntE(self.gen_bool(depth, ctx), 0, 1)
            local = Local(name, IntE(name, 0, 1), is_bool=True)
        elif r < 0.85:
            e = self.gen_float(depth, ctx)
            local = Local(name, FloatE(name, e.vals, e.exact))
        else:
            e = self.gen_set(depth, ctx, rng.randint(2, 4))
            local = Local(name, SetE(name, e.poss))
        local.reads = self.reads_of(e.text, ctx)
        return [f"let {name} = {e.text}"], 1, ctx.with_local(local)

    def if_statement(self, budget: int, ctx: Ctx, assigned: set, pending: list, depth: int):
        rng = self.rng
        branches = rng.randint(1, 3)
        has_else = rng.random() < 0.5
        inner_budget = max(1, budget // (branches + has_else))
        lines: list[str] = []
        used = 1
        after = set(assigned)
        path = ctx
        for b in range(branches + has_else):
            branch_assigned = set(assigned)
            if b < branches:
                cond = self.bounded_bool(path, RULE_BOUND // 8)
                path = path.with_path(self.reads_of(cond, path))  # later branches too
                lines.append(f"{'if' if b == 0 else 'elif'} {cond}:")
            else:
                lines.append("else:")
            n = rng.randint(1, inner_budget)
            stmts = self.block(n, path, branch_assigned, pending, depth + 1, top=False)
            used += n
            for stmt in stmts or [["pass"]]:
                lines.extend("    " + line for line in stmt)
            after |= branch_assigned
        assigned |= after
        return lines, used

    def read_statement(self, head: HeadInfo, ctx: Ctx, assigned: set, depth: int):
        """A statement that reads `head` where its guard holds."""
        rng = self.rng
        pool = [v for v in self.writable(assigned) if v.mode == "free"]
        if head.guard is None or rng.random() < 0.3:
            # inline: the read carries its own guard
            atom = self.head_float(head, ctx) if head.numerical else self.head_int(head, ctx)
            if pool:
                var = rng.choice(pool)
                assigned.add(var.name)
                return [f"{var.name} = {self.bounded_write(var, ctx, atom)}"], 1
            name = f"loc{self.locals_made}"
            self.locals_made += 1
            return [f"let {name} = {atom.text}"], 1
        guarded = ctx.with_guard(head.name)
        atom = self.head_float(head, guarded) if head.numerical else self.head_int(head, guarded)
        lines = []
        if rng.random() < 0.3:
            # `if guard and <condition on the head>:`
            if head.numerical:
                cond = f"{atom.text} > {self.threshold(atom)}"
            else:
                cond = f"{atom.text} {rng.choice(['==', '!=', '>='])} {rng.randrange(head.size)}"
            cond = f"({head.guard}) and {cond}"
            inner = ctx.with_path(self.reads_of(cond, ctx))
            lines.append(f"if {cond}:")
            inner_assigned = set(assigned)
            stmts = self.block(rng.randint(1, 2), inner, inner_assigned, [], depth + 1,
                               top=False)
            used = 1 + len(stmts)
        else:
            lines.append(f"if {head.guard}:")
            inner = guarded.with_path(self.reads_of(head.guard, ctx))
            inner_assigned = set(assigned)
            if pool:
                var = rng.choice(pool)
                inner_assigned.add(var.name)
                stmts = [[f"{var.name} = {self.bounded_write(var, inner, atom)}"]]
            else:
                name = f"loc{self.locals_made}"
                self.locals_made += 1
                stmts = [[f"let {name} = {atom.text}"]]
            if rng.random() < 0.25:
                stmts += self.block(1, inner, inner_assigned, [], depth + 1, top=False)
            used = 1 + len(stmts)
        for stmt in stmts or [["pass"]]:
            lines.extend("    " + line for line in stmt)
        after = set(inner_assigned)
        if rng.random() < 0.25:
            else_assigned = set(assigned)
            stmts = self.block(1, ctx.with_path(self.reads_of(head.guard, ctx)), else_assigned,
                               [], depth + 1, top=False)
            lines.append("else:")
            for stmt in stmts or [["pass"]]:
                lines.extend("    " + line for line in stmt)
            used += len(stmts)
            after |= else_assigned
        assigned |= after
        return lines, used

    def sync_statement(self, ctx: Ctx, assigned: set):
        """Update a content head's query and its selector-width twin together."""
        rng = self.rng
        candidates = [s for s in self.syncs if s[1].name not in assigned
                      and s[2].name not in assigned]
        if not candidates:
            return None, 1
        kind, q, qs, K = rng.choice(candidates)
        name = f"loc{self.locals_made}"
        self.locals_made += 1
        if kind == "int":
            value = str(rng.randrange(K))
            for _ in range(4):
                candidate = self.fit_int(self.gen_int(rng.choice([0, 1, 2]), ctx), K).text
                if self.cost(ctx.path | self.reads_of(candidate, ctx) | {qs.name}) <= RULE_BOUND:
                    value = candidate
                    break
            lines = [f"let {name} = {value}", f"{q.name} = {name}",
                     f"{qs.name} = {{{name}, {K}}}"]
        else:
            listed = sorted(q.sets, key=lambda s: (len(s), sorted(s)))
            a, b = rng.choice(listed), rng.choice(listed)
            cond = self.bounded_bool(ctx, RULE_BOUND // len(qs.sets))
            lines = [f"let {name} = {_set_text(a)} if {cond} else {_set_text(b)}",
                     f"{q.name} = {name}", f"{qs.name} = {name} | {{{K}}}"]
        assigned |= {q.name, qs.name}
        return lines, 3

    # -- output -------------------------------------------------------------------------------

    def _output(self) -> str:
        rng = self.rng
        pool = [v for v in self.vars if v.mode in ("free", "le_pos", "halt")] or self.vars
        var = rng.choice(pool)
        text = f"output {var.name}"
        r = rng.random()
        if r < 0.4:
            text += " at last"
        elif r < 0.55:
            text += " at first"
        elif r < 0.65:
            text += f" at {rng.randrange(self.L)}"
        if rng.random() < 0.25:
            text += f" where {self.gen_bool(1, Ctx(heads=False))}"
        if rng.random() < 0.3 and var.kind != "set":
            if var.kind == "num":
                default = _num(rng.choice(var.values))
            elif var.kind == "enum":
                default = rng.choice(var.members)
            elif var.kind == "vocab":
                default = self.tok(rng.choice(self.vocab))
            else:
                default = str(rng.randrange(var.size))
            text += f" default {default}"
        return text


# ---- size of the compiled MLP --------------------------------------------------------------------

def domain_size(program, name: str) -> int:
    from alta import ir
    type_ = program.type_of(name)
    if isinstance(type_, ir.Categorical):
        return type_.size
    if isinstance(type_, ir.Numerical):
        return len(type_.values)
    return len(type_.sets)


def assignment_read_products(program) -> list[int]:
    """For every assignment, the product of the domain sizes of the variables and heads it
    depends on (its value and every condition on its path, through `let` locals): an upper
    bound on the rules lazy enumeration can make for it."""
    from alta import ir

    def reads(node, local_reads) -> set:
        found = set()
        if isinstance(node, ir.Read):
            found.add(node.name)
        elif isinstance(node, ir.Local):
            found |= local_reads.get(node.uid, set())
        elif isinstance(node, ir.LetIn):
            inner = dict(local_reads)
            inner[node.uid] = reads(node.value, local_reads)
            return reads(node.body, inner) | inner[node.uid]
        for value in vars(node).values():
            if isinstance(value, ir.Expr):
                found |= reads(value, local_reads)
            elif isinstance(value, tuple):
                for v in value:
                    if isinstance(v, ir.Expr):
                        found |= reads(v, local_reads)
        return found

    products = []

    def walk(stmts, path: set, local_reads: dict) -> None:
        local_reads = dict(local_reads)
        for s in stmts:
            if isinstance(s, ir.Assign):
                names = path | reads(s.value, local_reads) | {s.variable}
                product = 1
                for name in names:
                    product *= domain_size(program, name)
                products.append(product)
            elif isinstance(s, ir.LetStmt):
                local_reads[s.uid] = reads(s.value, local_reads)
            else:
                cond = path | reads(s.cond, local_reads)
                walk(s.then, cond, local_reads)
                walk(s.orelse, cond, local_reads)

    walk(program.mlp, set(), {})
    return products
