"""What the test modules share (no test lives here).

- paths and the library: ROOT, PROGRAMS, LIBRARY, `library_program` and `compiled_library`
  (checked once per process, compiled once per run: `once_per_run`; conftest.py's session
  fixtures hand them out);
- the `alta` command as a user runs it, in a fresh process (`alta`) or in this one
  (`alta_main`);
- program text: `prog`, `check`, `vocab_line`, `random_word_inputs`, `per_position`, and the
  bad-program cases of test_syntax.py and test_checker.py (`Case`, `BASE`, `base`);
- one input's outcome on each back end (`interpreted`, `compiled_outcomes`);
- the compiler's oracles (test_rules.py, test_weights.py, test_compiled.py): the inline
  programs, the names an MLP touches and their domains, full assignments of them, and the
  interpreter's MLP applied to an assignment.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import io
import itertools
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from alta import ir
from alta.checker import check_file, check_source
from alta.compiler import compile_program
from alta.compiler.values import reachable_values
from alta.errors import AltaError, AltaRuntimeError
from alta.interpreter import apply_mlp, run
from alta.semantics import set_to_bits

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
# Settings of library programs with parameters that the library's tests run besides the
# defaults: each is the library entry "NAME@P=V,Q=W" (programs/NAME.alta, --set P=V --set Q=W).
VARIANTS = {"dyck": ("KINDS=1,MAX_LENGTH=100",)}
LIBRARY = sorted([p.stem for p in PROGRAMS.glob("*.alta")] +
                 [f"{name}@{setting}" for name, settings in VARIANTS.items()
                  for setting in settings])


def library_entry(name: str) -> tuple[Path, dict[str, str]]:
    """A library entry's program file and the parameter values it sets."""
    stem, _, setting = name.partition("@")
    params = dict(item.split("=") for item in setting.split(",")) if setting else {}
    return PROGRAMS / f"{stem}.alta", params


@functools.cache
def library_program(name: str) -> ir.Program:
    """A library entry (programs/NAME.alta, or NAME@P=V,...: with parameters set), checked
    once per process."""
    return check_file(*library_entry(name))


@functools.cache
def compiled_library(name: str):
    """programs/NAME.alta compiled once per test run (`once_per_run`, under a key of its
    source and parameters)."""
    path, params = library_entry(name)
    key = hashlib.blake2b(repr((path.read_text(), sorted(params.items()))).encode(),
                          digest_size=16).hexdigest()
    return once_per_run(f"compiled-{path.stem}-{key}",
                        lambda _: compile_program(library_program(name)))


def once_per_run(name: str, build):
    """`build(directory)`, in the first process (xdist worker) of the test run that asks for
    `name`: its result is left pickled, and whatever it writes into `directory` kept, in the
    run's cache directory (conftest.py); the others wait for it there and load it. Without
    that directory (helpers imported outside pytest), built in each process, into a
    temporary directory."""
    root = os.environ.get("ALTA_COMPILATION_CACHE")
    if not root:
        return build(Path(tempfile.mkdtemp(prefix=f"alta-{name}-")))
    shared = Path(root) / "once-per-run"
    directory, stored, partial = (shared / f"{name}{end}" for end in ("", ".pickle", ".partial"))
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        shutil.rmtree(directory, ignore_errors=True)  # what a failed build left
        directory.mkdir()
        result = build(directory)
        partial.write_bytes(pickle.dumps(result))
        partial.replace(stored)
        return result


def alta(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`alta ARGS` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "alta.cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=300)


def alta_main(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`alta ARGS` through its entry point in this process (`alta.cli.main`, argparse's
    exits included): the exit status and output `alta` gives, without a fresh process's
    start-up, for tests of what a command says rather than of the process (`alta` above).

    JAX starts first, as it has in a worker that ran a model, so a command leaves the
    worker's device count alone (`alta.devices.one_device_per_core`): whichever test runs
    first, every test of a worker runs on its one CPU device."""
    import jax  # noqa: F401

    from alta.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            _stdin(io.StringIO(stdin or "")):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _stdin(stream):
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


MODEL_PACKAGES = ("jax", "jaxlib", "flax", "optax")


def run_without_importing(commands, packages=MODEL_PACKAGES) -> subprocess.CompletedProcess:
    """`alta` commands (argv lists) run in one fresh process, each exiting 0, none of them
    importing any module of `packages`; the finished process (its stdout holds their
    output)."""
    code = ("import sys; from alta.cli import main\n"
            f"for argv in {[[str(a) for a in c] for c in commands]!r}:\n"
            "    assert main(argv) == 0, argv\n"
            f"    loaded = [m for m in sys.modules if m.split('.')[0] in {tuple(packages)!r}]\n"
            "    assert not loaded, (argv, loaded[:3])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done


# ---- program text ---------------------------------------------------------------------------

def prog(text: str) -> str:
    """A program: the dedented text (write it starting on the line after the quotes)."""
    return textwrap.dedent(text).lstrip("\n")


def check(source: str, name: str = "t.alta") -> ir.Program:
    """The checked program of a (dedented) source text."""
    return check_source(prog(source), name)


def vocab_line(n: int, extra: tuple[str, ...] = ()) -> str:
    """`vocab "0" "1" ... "n-1"` plus extra tokens: token id == the digit's value."""
    return "vocab " + " ".join(f'"{t}"' for t in [*map(str, range(n)), *extra])


def header(output: str, stop: str = "max_layers 1", *, name: str = "t", tokens: int = 10,
           extra: tuple[str, ...] = (), framing: str = "input words") -> str:
    """The first five lines of a test program over the digit tokens "0".."TOKENS-1" (and
    `extra`): `program NAME`, the vocab, the input framing, `output OUTPUT` and STOP
    (`max_layers N` or `halt when ...`). The rest follows from line 6: `header(...) +
    prog(...)`."""
    return "\n".join([f"program {name}", vocab_line(tokens, extra), framing, f"output {output}",
                      stop]) + "\n"


def program_head(vocab: str, output: str, stop: str = "max_layers 1", *, name: str = "t") -> str:
    """The first four lines of a small program over a few tokens (VOCAB: space-separated):
    `program NAME`, the vocab, STOP (`max_layers N` or `halt when ...`) and `output OUTPUT`.
    The rest follows from line 5: `program_head(...) + prog(...)`."""
    tokens = " ".join(f'"{t}"' for t in vocab.split())
    return f"program {name}\nvocab {tokens}\n{stop}\noutput {output}\n"


def random_word_inputs(rng: random.Random, count: int, n_tokens: int, min_len: int = 1,
                       max_len: int = 10) -> list[str]:
    return [" ".join(str(rng.randrange(n_tokens)) for _ in range(rng.randint(min_len, max_len)))
            for _ in range(count)]


def per_position(result, name: str, b: int) -> list:
    """The values of variable `name` at the valid positions of sequence `b`."""
    return result.final[name][b, :int(result.batch.lengths[b])].tolist()


def check_error(source: str) -> tuple[int, int, str]:
    with pytest.raises(AltaError) as info:
        check_source(source, "t.alta")
    first = info.value.first
    assert first.severity == "error" and first.span is not None
    return first.span.line, first.span.column, first.message


def assert_located(error: AltaError, source: str, line_text: str, at: str | None = None,
                   message: str = "", file: str = "t.alta") -> None:
    """The error's first diagnostic says MESSAGE (a substring) and points at AT (default:
    LINE_TEXT) on the first line of the (dedented) source that contains LINE_TEXT: line and
    column in its span and at the head of the formatted error."""
    lines = prog(source).splitlines()
    line = next(i for i, text in enumerate(lines, 1) if line_text in text)
    start = lines[line - 1].index(line_text)
    column = lines[line - 1].index(at or line_text, start) + 1
    first = error.first
    assert message in first.message, first.message
    assert first.span is not None and (first.span.line, first.span.column) == (line, column), \
        str(error)
    assert str(error).startswith(f"{file}:{line}:{column}: error: "), str(error)


# ---- bad programs (test_syntax.py, test_checker.py) -----------------------------------------

BASE = textwrap.dedent("""\
    vocab "0" "1"
    output x at last
    max_layers 1
    var x: cat 2 = token
""")


def base(text: str) -> str:
    """BASE (lines 1-4) followed by `text` from line 5."""
    return BASE + prog(text)


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    message: str  # a distinctive substring of the first diagnostic's message
    line: int
    column: int
    note: str | None = None  # a substring of one of its notes
    xfail: str | None = None  # why the checker currently gets this wrong
    cli: bool = False  # `alta check` must report it too


def load_cases(kind: str) -> list[Case]:
    """The bad-program cases of tests/data/KIND_errors.toml (the file says what each field
    means); a case's program is BASE followed by `after_base`, or its whole `source`. Ids must
    be unique and sources distinct."""
    with open(ROOT / "tests" / "data" / f"{kind}_errors.toml", "rb") as f:
        table = tomllib.load(f)["case"]
    cases = [Case(c["id"], BASE + c["after_base"] if "after_base" in c else c["source"],
                  c["message"], *c["at"], note=c.get("note"), xfail=c.get("xfail"),
                  cli=c.get("cli", False)) for c in table]
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"
    assert len({c.source for c in cases}) == len(cases), "case sources must be distinct"
    return cases


def case_params(cases) -> list:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)]
                         if c.xfail else []) for c in cases]


def assert_rejected_with_a_located_message(case: Case) -> None:
    with pytest.raises(AltaError) as info:
        check_source(case.source, "bad.alta")
    first = info.value.first
    assert first.severity == "error"
    assert case.message in first.message
    assert first.span is not None, "the error has no location"
    assert (first.span.line, first.span.column) == (case.line, case.column)
    if case.note is not None:
        assert any(case.note in n for n in first.notes), first.notes
    # the formatted error names the file and place and shows a caret
    text = str(info.value)
    assert text.startswith(f"bad.alta:{case.line}:{case.column}: error: ")


def assert_check_command_reports(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "bad.alta"
    path.write_text(case.source)
    done = alta_main("check", path)
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == 1, output
    assert done.stderr.startswith(f"{path}:{case.line}:{case.column}: error:"), done.stderr
    assert case.message in done.stderr
    assert re.search(r"^ +\^+$", done.stderr, re.MULTILINE), "no caret line"


# ---- one input on each back end -------------------------------------------------------------

def interpreted(program, text: str):
    """("error", message, span) or ("ok", output, layers, halted): one input on its own."""
    try:
        result = run(program, [text])
    except AltaRuntimeError as err:
        return ("error", err.first.message, err.first.span)
    return ("ok", result.outputs[0], int(result.layers[0]), bool(result.halted[0]))


def compiled_outcomes(compiled, texts, model=None):
    """The same, per input, from one batched compiled run that stops faulted sequences."""
    from alta.compiled import fault_error, run_compiled

    result = run_compiled(compiled, texts, model=model, undefined="stop")
    faults = {f.sequence: f for f in result.faults}
    out = []
    for b in range(len(texts)):
        if b in faults:
            err = fault_error(compiled, result.batch, faults[b]).first
            out.append(("error", err.message, err.span))
        else:
            out.append(("ok", result.outputs[b], int(result.layers[b]), bool(result.halted[b])))
    return out


# ---- the compiler tests' programs -----------------------------------------------------------

# The compiler tests' own programs, tests/data/compiler/NAME.alta (each says what it
# exercises); ALL adds three of the library's.
INLINE = ("branches", "cat_heads", "sets", "numbers", "helpers", "guards", "loops", "irregular",
          "chain_same", "chain_some", "regions")

BUNDLED = ["parity", "parity_absolute", "parity_sum_mod_2"]
ALL = list(INLINE) + BUNDLED

_CHECKED: dict[str, ir.Program] = {}
_COMPILED: dict = {}


def load(name: str) -> ir.Program:
    if name not in _CHECKED:
        if name in INLINE:
            text = (ROOT / "tests" / "data" / "compiler" / f"{name}.alta").read_text()
            _CHECKED[name] = check_source(text, f"{name}.alta")
        else:
            _CHECKED[name] = check_file(PROGRAMS / f"{name}.alta")
    return _CHECKED[name]


def compiled_program(name: str):
    if name not in _COMPILED:
        _COMPILED[name] = compile_program(load(name))
    return _COMPILED[name]


NEAR_TIE = """
    program near_tie
    vocab "0" "1" "2"
    max_length 40
    max_layers 1
    output y at last
    var n: num {0, 1} = token == "1"
    var k: cat 2 = token == "2"
    var y: cat 13 = 0
    head m: num {0, 1 / 4, 1 / 3, 1 / 2, 1} = n where k == k
    mlp:
        y = round(m * 12)
    """


# ---- an independent view of the program: what the MLP touches, and the domains --------------

def mlp_names(program: ir.Program) -> list[str]:
    """Variables and heads the MLP body reads or writes, in declaration order."""
    nodes = list(ir.walk(program.mlp))
    reads = {n.name for n in nodes if isinstance(n, ir.Read)}
    writes = {n.variable for n in nodes if isinstance(n, ir.Assign)}
    order = [v.name for v in program.variables] + [h.name for h in program.heads]
    return [n for n in order if n in reads | writes]


def values_of(type_: ir.ValueType) -> list:
    if isinstance(type_, ir.Categorical):
        return list(range(type_.size))
    if isinstance(type_, ir.Numerical):
        return list(type_.values)
    return list(type_.sets)


def is_head(program: ir.Program, name: str) -> bool:
    return name in program.head_index


def local_gap(values, k: int) -> tuple[float, float]:
    """Distance to the previous and next declared value (inf at the ends)."""
    left = values[k] - values[k - 1] if k > 0 else np.inf
    right = values[k + 1] - values[k] if k + 1 < len(values) else np.inf
    return left, right


class Assignments:
    """A batch of full assignments: per name, the index into its domain, and the raw value
    the state holds (numerical heads jittered inside their bucket, by at most `caps[name]`
    where given)."""

    def __init__(self, program: ir.Program, names: list[str], index: dict[str, np.ndarray],
                 rng: np.random.Generator, jitter: float, caps: dict | None = None) -> None:
        self.program, self.names, self.index = program, names, index
        self.size = len(next(iter(index.values()))) if index else 1
        self.raw: dict[str, np.ndarray] = {}
        for name in names:
            type_ = program.type_of(name)
            dom = values_of(type_)
            idx = index[name]
            if isinstance(type_, ir.Numerical):
                vals = np.asarray(dom, dtype=np.float64)[idx]
                if is_head(program, name) and jitter and len(dom) > 1:
                    # move each value up to `jitter` of the gap towards a neighbour
                    gaps = np.array([local_gap(dom, k) for k in range(len(dom))])[idx]
                    gaps = np.where(np.isfinite(gaps), gaps, 0.0)  # at the ends: inwards
                    if caps and name in caps:
                        gaps = np.minimum(gaps, caps[name] / jitter)
                    u = rng.uniform(-jitter, jitter, size=len(idx))
                    vals = vals + u * np.where(u < 0, gaps[:, 0], gaps[:, 1])
                self.raw[name] = vals
            elif isinstance(type_, ir.SetValued):
                self.raw[name] = np.array([set_to_bits(dom[i]) for i in idx], dtype=np.int64)
            else:
                self.raw[name] = np.asarray(idx, dtype=np.int64)

    def value(self, name: str, b: int):
        return values_of(self.program.type_of(name))[self.index[name][b]]


def possible(program: ir.Program, name: str) -> np.ndarray:
    """Indices (into the declared values) of the values `name` can take: the compiled MLP
    is built for these only (alta.compiler.values; tests/test_values.py checks on runs
    that the interpreter never leaves them)."""
    reachable = set(reachable_values(program)[name])
    return np.array([k for k, v in enumerate(values_of(program.type_of(name)))
                     if v in reachable], dtype=np.int64)


def enumerate_assignments(program: ir.Program, rng, jitter: float = 0.0,
                          caps: dict | None = None) -> Assignments:
    """Every combination of possible values of what the MLP reads or writes (the full cross
    product: the oracle does not share the compiler's lazy enumeration)."""
    names = mlp_names(program)
    choices = [possible(program, n) for n in names]
    grid = np.array(list(itertools.product(*choices)), dtype=np.int64)
    grid = grid.reshape(len(grid), len(names))
    grid = grid[_occurs(program, names, grid)]
    return Assignments(program, names, {n: grid[:, k] for k, n in enumerate(names)}, rng,
                       jitter, caps)


def _occurs(program: ir.Program, names: list[str], grid: np.ndarray) -> np.ndarray:
    """Which rows some input can produce: the variables no MLP path writes take only the
    combinations their token and position give them together (the compiled MLP is built
    for those; test_values.py checks on runs that the interpreter never leaves them)."""
    static = reachable_values(program).static
    keep = np.ones(len(grid), bool)
    if static is None:
        return keep
    shared = [n for n in static.names if n in names]
    values = {n: values_of(program.type_of(n)) for n in shared}
    allowed = {tuple(row[static.names.index(n)] for n in shared) for row in static.rows}
    for r, row in enumerate(grid):
        key = tuple(values[n][row[names.index(n)]] for n in shared)
        keep[r] = key in allowed
    return keep


def random_assignments(program: ir.Program, count: int, rng, jitter: float = 0.0,
                       caps: dict | None = None) -> Assignments:
    names = [v.name for v in program.variables] + [h.name for h in program.heads]
    index = {n: rng.choice(possible(program, n), size=count) for n in names}
    return Assignments(program, names, index, rng, jitter, caps)


def interpreter_state(program: ir.Program, a: Assignments) -> dict[str, np.ndarray]:
    """(batch, 1) arrays for every variable and head; names not assigned hold a default."""
    state = {}
    for var in program.variables:
        if var.name in a.raw:
            state[var.name] = a.raw[var.name][:, None].copy()
        else:
            first = values_of(var.type)[0]
            if isinstance(var.type, ir.Numerical):
                state[var.name] = np.full((a.size, 1), float(first))
            elif isinstance(var.type, ir.SetValued):
                state[var.name] = np.full((a.size, 1), set_to_bits(first), dtype=np.int64)
            else:
                state[var.name] = np.zeros((a.size, 1), dtype=np.int64)
    for head in program.heads:
        if head.name in a.raw:
            state[head.name] = a.raw[head.name][:, None].copy()
        else:
            dtype = np.float64 if head.numerical else np.int64
            state[head.name] = np.full((a.size, 1), values_of(head.type)[0], dtype=dtype)
    return state


def interpreter_mlp(program: ir.Program, a: Assignments) -> dict[str, np.ndarray]:
    state = interpreter_state(program, a)
    undefined = {h.name: np.zeros((a.size, 1), bool) for h in program.heads}
    return apply_mlp(program, state, undefined, np.ones((a.size, 1), bool))


def head_op(head) -> str | None:
    """How a head's (first) test meets its query: "==", "in", "<", ...; None without one."""
    from alta import ir

    return next(ir.key_tests(head.where[0].test)).op if head.where else None
