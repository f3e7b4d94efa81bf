"""The random program generator behind the compiler's property test (compiled == interpreted).

Every generated program must check and run on its own inputs without a run-time error
(reading an undefined head output or writing out of range would make the comparison with the
compiled model meaningless), and together the programs must cover every kind of variable and
head, heads that are undefined at some positions, halting and fixed-layer programs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import head_op
from program_generator import (
    MAX_POSITIONS,
    RULE_FILTER,
    GeneratedProgram,
    assignment_read_products,
    generate_program,
    generate_with_stats,
)

from alta import ast, ir
from alta.checker import check_source
from alta.framing import encode
from alta.interpreter import run
from alta.syntax import parse

SEEDS = range(300)
VARIABLE_KINDS = ("cat", "bool", "enum", "vocab", "num", "set", "set of")
HEAD_KINDS = ("categorical", "set query", "relative offset", "no where", "numerical")


# ---- classification ---------------------------------------------------------------------------

def variable_kinds(module: ast.Module) -> dict[str, str]:
    """Each variable's declared kind, from the syntax (bool and cat 2 differ only there)."""
    enums = {d.name.id for d in module.decls if isinstance(d, ast.EnumDecl)}
    kinds = {}
    for d in module.decls:
        if not isinstance(d, ast.VarDecl):
            continue
        t = d.type
        if isinstance(t, ast.BoolType):
            kind = "bool"
        elif isinstance(t, ast.VocabType):
            kind = "vocab"
        elif isinstance(t, ast.NumType):
            kind = "num"
        elif isinstance(t, ast.SetType):
            kind = "set of" if t.sets is not None else "set"
        else:
            kind = "enum" if isinstance(t.size, ast.Name) and t.size.id in enums else "cat"
        kinds[d.name.id] = kind
    return kinds


def variable_kinds_of(program: ir.Program, module: ast.Module | None = None) -> dict[str, str]:
    """`variable_kinds` without parsing again: the IR tells all but bool from cat 2 and
    `set N` from `set N of [...]`, which the declaration's source line tells."""
    kinds = {}
    for v in program.variables:
        line = program.source.line(v.span.line)
        t = v.type
        if isinstance(t, ir.Numerical):
            kinds[v.name] = "num"
        elif isinstance(t, ir.SetValued):
            kinds[v.name] = "set of" if " of " in line.split("=")[0] else "set"
        elif t.labels is not None:
            kinds[v.name] = "vocab" if t.labels == program.vocab else "enum"
        else:
            kinds[v.name] = "bool" if ": bool" in line else "cat"
    return kinds


def head_kinds(head: ir.Head) -> set[str]:
    kinds, op = set(), head_op(head)
    if op == "==" and not head.numerical:
        kinds.add("categorical")
    if op == "in":
        kinds.add("set query")
    if head.offsets is not None:
        kinds.add("relative offset")
        if op is not None:
            kinds.add("where and offsets")
        if op is None and len(head.offsets) == 1:
            kinds.add("one offset, no where")
        if op is None and len(head.offsets) > 1:
            kinds.add("several offsets, no where")
    if op is None:
        kinds.add("no where")
        if head.offsets is None:
            kinds.add("no where, no offset")
    if head.numerical:
        kinds.add("numerical")
    return kinds


def mlp_reads_and_writes(program: ir.Program) -> tuple[set[str], set[str]]:
    nodes = list(ir.walk(program.mlp))
    return ({n.name for n in nodes if isinstance(n, ir.Read) and not n.is_head},
            {n.variable for n in nodes if isinstance(n, ir.Assign)})


def count_statements(stmts) -> int:
    """Statements of an IR block (an elif counts as a nested if; lets of constants and
    branches decided at compile time are gone)."""
    total = 0
    for s in stmts:
        total += 1
        if isinstance(s, ir.IfStmt):
            total += count_statements(s.then) + count_statements(s.orelse)
    return total


def undefined_heads(program: ir.Program, result) -> set[str]:
    """Heads undefined at some valid position of a running sequence, at some layer."""
    valid = result.batch.valid
    out = set()
    for record in result.trace:
        live = valid & record.active[:, None]
        for name, mask in record.undefined.items():
            if (mask & live).any():
                out.add(name)
    return out


# ---- the generated programs, once per module ---------------------------------------------------

@pytest.fixture(scope="module")
def generated():
    """(seed, GeneratedProgram, stats, RunResult with trace) for every seed."""
    out = []
    for seed in SEEDS:
        program, stats = generate_with_stats(seed)
        out.append((seed, program, stats, stats.result))
    return out


# ---- (1) every program checks and runs on its inputs -------------------------------------------

def test_every_program_checks_and_runs_without_error(generated):
    retries = oversize = 0
    for _seed, program, stats, result in generated:
        assert isinstance(program, GeneratedProgram)
        assert stats.program.source.text == program.source  # checked: exactly this text
        assert result.batch.texts == program.inputs  # and run on exactly these inputs
        assert result.trace is not None and len(result.outputs) == len(program.inputs)
        retries += stats.retries
        oversize += stats.oversize
    # Well-formed by construction: the check-and-run filter never has to step in.
    assert retries == 0, f"{retries} candidates failed to check or run"
    assert oversize <= len(SEEDS) // 10, f"{oversize} candidates over {RULE_FILTER} rules"


@pytest.mark.parametrize("seed", list(SEEDS)[::25])
def test_generated_source_checks_independently(seed):
    program = generate_program(seed)
    checked = check_source(program.source, f"gen_{seed}.alta")
    run(checked, program.inputs)  # raises AltaRuntimeError on an undefined read


def test_programs_follow_the_requested_shape(generated):
    for seed, program, stats, result in generated:
        checked = stats.program
        specials = {"<s>", "<m>", "<e>"}
        words = [t for t in checked.vocab if t not in specials]
        assert 2 <= len(words) <= 5, seed
        assert checked.max_length is not None and checked.max_length <= MAX_POSITIONS, seed
        assert any(item.kind == "words" for item in checked.framing), seed
        lengths = [len(text.split()) for text in program.inputs]
        assert 0 in lengths and max(lengths) == checked.max_length - sum(
            item.count for item in checked.framing if item.kind == "token"), seed
        for text in program.inputs:
            encode(checked, text)  # in the vocabulary, within max_length
        assert 3 <= count_statements(checked.mlp) <= 30, seed
        assert checked.halt is not None or checked.max_layers <= 4, seed
        assert max(assignment_read_products(checked), default=1) <= RULE_FILTER, seed
        if checked.halt is not None:
            assert result.halted.all(), seed  # the counter always gets there


# ---- (2) coverage -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cov(generated) -> dict[str, Counter]:
    return coverage(generated)


def coverage(generated) -> dict[str, Counter]:
    """How many programs have each feature (for the assertions below and for reports)."""
    declared, read, written, inits = Counter(), Counter(), Counter(), Counter()
    heads, undefined, other = Counter(), Counter(), Counter()
    for _seed, _program, stats, result in generated:
        checked = stats.program
        kinds = variable_kinds_of(checked)
        reads, writes = mlp_reads_and_writes(checked)
        declared.update(set(kinds.values()))
        read.update({kinds[n] for n in reads})
        written.update({kinds[n] for n in writes})
        inits.update({v.init_from for v in checked.variables})
        heads.update(set().union(*(head_kinds(h) for h in checked.heads)))
        missing = undefined_heads(checked, result)
        if missing:
            undefined["some head"] += 1
            undefined.update(set().union(*(head_kinds(checked.head(h)) for h in missing)))
        other["halting" if checked.halt is not None else "fixed layers"] += 1
        other["start token"] += any(item.kind == "token" and checked.vocab[item.token] == "<s>"
                                    for item in checked.framing)
        other["buffer"] += any(item.count > 1 or checked.vocab[item.token] == "<m>"
                               for item in checked.framing if item.kind == "token")
        other["end token"] += any(item.kind == "token" and checked.vocab[item.token] == "<e>"
                                  for item in checked.framing)
        other["multi-layer run"] += bool((result.layers > 1).any())
        other["output at"] += checked.output.at != "all"
        other["output where"] += checked.output.where is not None
    return {"declared": declared, "read": read, "written": written, "inits": inits,
            "heads": heads, "undefined": undefined, "other": other}


def test_coverage_of_variable_kinds(cov):
    for kind in VARIABLE_KINDS:
        assert cov["declared"][kind] >= 30, (kind, cov["declared"])
        assert cov["read"][kind] >= 10, (kind, cov["read"])
        assert cov["written"][kind] >= 10, (kind, cov["written"])
    for source in ("token", "position", "constant"):
        assert cov["inits"][source] >= 100, cov["inits"]


def test_coverage_of_head_kinds(cov):
    for kind in HEAD_KINDS + ("where and offsets", "one offset, no where",
                              "several offsets, no where", "no where, no offset"):
        assert cov["heads"][kind] >= 20, (kind, cov["heads"])


def test_some_heads_are_undefined_on_the_inputs(cov):
    """At least 20% of programs have a head that selects zero or several positions somewhere
    (and the program, guarded, never reads it there)."""
    assert cov["undefined"]["some head"] >= 0.2 * len(SEEDS), cov["undefined"]
    assert cov["undefined"]["categorical"] >= 0.05 * len(SEEDS), cov["undefined"]
    assert cov["undefined"]["set query"] >= 10, cov["undefined"]
    assert cov["undefined"]["numerical"] >= 10, cov["undefined"]


def test_halting_and_fixed_layer_programs_and_framing(cov):
    other = cov["other"]
    for feature in ("halting", "fixed layers", "start token", "buffer", "end token",
                    "multi-layer run", "output at", "output where"):
        assert other[feature] >= 20, (feature, other)


# ---- (3) determinism ----------------------------------------------------------------------------

def test_same_seed_same_program(generated):
    for seed, program, _, _ in generated[:40]:
        assert generate_program(seed) == program
    assert generate_program(0) != generate_program(1)


def test_same_program_in_another_process():
    """No dependence on hash randomisation (string sets) or global random state."""
    seeds = list(range(0, 300, 15))
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); "
            "from program_generator import generate_program; "
            "print(' '.join(hashlib.sha256(repr(generate_program(s)).encode()).hexdigest()[:16] "
            f"for s in {seeds}))")
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", code, str(here)], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    mine = [hashlib.sha256(repr(generate_program(s)).encode()).hexdigest()[:16] for s in seeds]
    assert other == mine


def source_statements(stmts) -> int:
    """Assignments, lets and if statements of an MLP as written (an if/elif/else chain is
    one statement, plus the statements in its blocks)."""
    total = 0
    for s in stmts:
        if isinstance(s, ast.If):
            total += 1 + sum(source_statements(body) for _, body in s.branches)
            total += source_statements(s.orelse)
        elif not isinstance(s, ast.Pass):
            total += 1
    return total


def test_syntax_level_properties(generated):
    """Variable kinds as the IR-based classification says; 3-15 MLP statements."""
    for seed, program, stats, _ in generated[::10]:
        module = parse(program.source)
        assert variable_kinds_of(stats.program) == variable_kinds(module), seed
        mlp = next(d for d in module.decls if isinstance(d, ast.MlpDecl))
        assert 3 <= source_statements(mlp.body) <= 15, seed


def test_outputs_of_a_generated_program_are_stable(generated):
    """The same program and inputs give the same interpreter outputs (a smoke test that the
    generated inputs exercise the program: not every output is empty)."""
    nonempty = 0
    for seed, program, stats, result in generated[:50]:
        again = run(stats.program, program.inputs)
        assert again.outputs == result.outputs, seed
        assert np.array_equal(again.layers, result.layers), seed
        nonempty += any(out for out in result.outputs)
    assert nonempty >= 35
