"""The front end agrees with what README documents (issue 11): conditions are evaluated even
where nothing is assigned, `alta check` reports everything `alta compile` would, framing
tokens are reserved, and the output, enum and comparison rules are the same everywhere.

Values are compared with oracles written here in plain Python; errors with their exact
message, line and column.
"""

from __future__ import annotations

import random
import subprocess
import sys
from textwrap import dedent, indent

import pytest

from alta import ir
from alta.checker import check_file, check_source
from alta.compiler import compile_program
from alta.errors import AltaError, AltaRuntimeError
from alta.framing import encode, encode_batch
from alta.interpreter import run
from alta.sampling import input_alphabet, sample_inputs
from alta.tasks import find_task
from conftest import PROGRAMS

LIBRARY = sorted(p.stem for p in PROGRAMS.glob("*.alta"))


def prog(text: str) -> str:
    return dedent(text).lstrip("\n")


def alta(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alta.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def check_error(source: str) -> tuple[int, int, str]:
    with pytest.raises(AltaError) as info:
        check_source(source, "t.alta")
    first = info.value.first
    assert first.severity == "error" and first.span is not None
    return first.span.line, first.span.column, first.message


# ---- 1. an `if` that assigns nothing still evaluates its condition ------------------------

# `far` reads x 100 positions ahead: it selects nothing on these short inputs.
SILENT = prog("""
    vocab "0" "1"
    output x
    max_layers 1
    var x: cat 2 = token
    head far = x at 100
    mlp:
    {body}
""")

UNDEFINED = ("reads head 'far', whose output is undefined here (its attention selected no "
             "position, or several for a categorical head); at layer 1, position 0, input '0 1'")


@pytest.mark.parametrize("body, line, column", [
    pytest.param("""
        if far == 0:
            pass
    """, 7, 8, id="pass"),
    pytest.param("""
        if x == 1:
            pass
        elif far == 1:
            pass
        else:
            pass
    """, 9, 10, id="elif-pass"),
    pytest.param("""
        if far == 1:
            let a = 2
            let b = a + 1
    """, 7, 8, id="constant-lets"),
    pytest.param("""
        for k in 0..1:
            if far == k:
                let a = k
    """, 8, 12, id="loop-of-lets"),
])
def test_if_that_assigns_nothing_still_reads_its_condition(body, line, column):
    source = SILENT.replace("{body}", indent(dedent(body).strip("\n"), "    "))
    program = check_source(source, "t.alta")
    assert program.mlp, "the if was dropped"
    with pytest.raises(AltaRuntimeError) as info:
        run(program, ["0 1"])
    first = info.value.first
    assert (first.span.line, first.span.column) == (line, column)
    assert first.message == UNDEFINED
    assert str(info.value).startswith(f"t.alta:{line}:{column}: error: {UNDEFINED}\n")


FLIP = prog("""
    vocab "0" "1" "<s>"
    input "<s>" words
    output x where p > 0
    max_layers 1
    max_length 20
    var x: cat 3 = token
    var p: cat 20 = position
    head left = x at -1
    mlp:
        x = 1 - x if x < 2 else 2
""")


def test_if_that_assigns_nothing_changes_no_value_and_no_rule():
    """Where its condition is defined, an if that assigns nothing is a no-op on both back
    ends: the same outputs as without it (oracle: every bit flipped) and the same rules."""
    guarded = FLIP + "    if p > 0 and left == 1:\n        pass\n    if x == 0:\n        let a = 3\n"
    unguarded = FLIP + "    if left == 1:\n        pass\n"
    inputs = ["0 1 1", "1", "", "0 0 0 1"]
    want = [" ".join(str(1 - int(b)) for b in text.split()) for text in inputs]
    plain, empty = (check_source(s, "t.alta") for s in (FLIP, guarded))
    assert list(run(plain, inputs).outputs) == list(run(empty, inputs).outputs) == want
    rules = [compile_program(p).rules for p in (plain, empty)]
    assert (rules[0].mlp, rules[0].halting) == (rules[1].mlp, rules[1].halting)
    # ... but the compiled fault detector checks the condition's read of `left`
    assert not rules[0].faults and rules[1].faults
    # without the guard, position 0 (the start token) reads `left`, which selects nothing,
    # and both back ends say so
    program = check_source(unguarded, "t.alta")
    with pytest.raises(AltaRuntimeError, match=r"reads head 'left'.* at layer 1, position 0"):
        run(program, inputs)
    from alta.compiled import run_compiled

    with pytest.raises(AltaRuntimeError, match=r"reads head 'left'.* at layer 1, position 0"):
        run_compiled(compile_program(program), inputs)


# ---- 2. `alta check` reports what `alta compile` would ------------------------------------

COMPILE_ONLY = [
    pytest.param("""
        var y: cat 3 = 0
        mlp:
            y = x + 2
    """, 7, 5, "writes 3 to 'y', which is not one of its values (cat 3), on the path where "
               "x = 1", id="write-out-of-range-on-a-path"),
    pytest.param("""
        var y: cat 3 = 0
        const T = [0, 1]
        mlp:
            y = T[x + 1]
    """, 8, 11, "index 2 out of range for a table of 2 rows on the path where x = 1",
        id="table-index-out-of-range-on-a-path"),
    pytest.param("""
        var y: cat 3 = 0
        mlp:
            y = 2 // x
    """, 7, 9, "division by zero on the path where x = 0", id="division-by-zero-on-a-path"),
    pytest.param("""
        var p: cat 10 = position
        mlp:
            x = p % 2
    """, 5, 1, "variable 'p' is initialised from 'position', so compiling needs 'max_length N' "
               "(the size of the position embedding)", id="position-without-max-length"),
    pytest.param("""
        max_length 12
        var p: cat 10 = position
        mlp:
            x = p % 2
    """, 6, 1, "initialiser gives 10 at position 10, which is not a value of 'p' (cat 10); "
               "positions go up to max_length - 1 = 11", id="position-initialiser-out-of-range"),
]

CHECK_BASE = prog("""
    vocab "0" "1"
    output x at last
    max_layers 1
    var x: cat 2 = token
""")


@pytest.mark.parametrize("body, line, column, message", COMPILE_ONLY)
def test_check_reports_what_compile_reports(tmp_path, body, line, column, message):
    path = tmp_path / "bad.alta"
    path.write_text(CHECK_BASE + prog(body))
    program = check_file(path)  # the checker alone accepts it
    with pytest.raises(AltaError):
        compile_program(program)
    for command in ("check", "compile"):
        extra = ("-o", tmp_path / "bad.safetensors") if command == "compile" else ()
        done = alta(command, path, *extra)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        errors = [text for text in done.stderr.splitlines() if ": error: " in text]
        assert errors == [f"{path}:{line}:{column}: error: {message}"], (command, done.stderr)


def test_check_of_a_good_program_says_what_it_compiles_to_without_jax():
    path = PROGRAMS / "parity_absolute.alta"  # position embedding, both halting stages
    code = ("import sys; from alta.cli import main; "
            f"status = main(['check', r'{path}']); "
            "assert status == 0, status; "
            "assert not any(m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax') "
            "for m in sys.modules), 'jax imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = compile_program(check_file(path)).report
    assert (f"  compiles   D {report.width}, {report.rules:,} rules, {report.parameters:,} "
            "parameters") in done.stdout.splitlines()


# ---- 3. framing tokens are reserved unless the input declaration allows them --------------

def test_typed_framing_token_is_an_error_naming_the_input_and_the_token():
    done = alta("run", PROGRAMS / "parity.alta", "1 <s>")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines()[0] == (
        "alta: error: input '1 <s>': \"<s>\" is a framing token of parity (its 'input' "
        "declaration places it), not an input word")
    assert "allow \"<s>\"" in done.stderr
    with pytest.raises(AltaError, match="input '0 <s> 1': \"<s>\" is a framing token"):
        encode(check_file(PROGRAMS / "parity.alta"), "0 <s> 1")


ALLOWING = prog("""
    vocab "0" "1" "|"
    input "0" chars "|" "|" {allow}
    output t
    max_layers 1
    var t: vocab = token
""")


def test_allowed_framing_tokens_may_be_typed():
    program = check_source(ALLOWING.format(allow='allow "0" "|"'), "t.alta")
    rng = random.Random(3)
    texts = ["".join(rng.choice("01|") for _ in range(rng.randint(0, 8))) for _ in range(30)]
    result = run(program, texts)
    for text, out in zip(texts, result.outputs):
        assert out == "0" + text + "||"  # chars output of single characters: joined
    # allowing one of them keeps the other reserved
    only_zero = check_source(ALLOWING.format(allow='allow "0"'), "t.alta")
    assert encode(only_zero, "10") == [0, 1, 0, 2, 2]
    with pytest.raises(AltaError, match="input '1|0': \"|\" is a framing token"):
        encode(only_zero, "1|0")
    assert input_alphabet(only_zero) == ["0", "1"]
    strict = check_source(ALLOWING.format(allow=""), "t.alta")
    assert input_alphabet(strict) == ["1"]
    for text in sample_inputs(strict, 50, 6, seed=1):
        assert set(text) <= {"1"}
        encode(strict, text)


@pytest.mark.parametrize("allow, column, message", [
    ('allow "1"', 31, '"1" is not a framing token of this input, so the input may contain it '
                      "anyway: 'allow' lists only tokens that the framing places"),
    ('allow "2"', 31, '"2" is not in the vocabulary'),
])
def test_allow_lists_only_framing_tokens(allow, column, message):
    assert check_error(ALLOWING.format(allow=allow)) == (2, column, message)


@pytest.mark.parametrize("name", LIBRARY)
def test_library_inputs_never_type_a_reserved_token(name):
    program = check_file(PROGRAMS / f"{name}.alta")
    task = find_task(program)
    batch = encode_batch(program, task.inputs(60, seed=7))  # raises on a reserved token
    placed = sum(item.count for item in program.framing if item.kind == "token")
    assert (batch.lengths >= placed).all()


# ---- 4a. enums may be declared after the constants that use them --------------------------

def test_enum_declared_after_a_constant_that_uses_it():
    source = prog("""
        vocab "0" "1" "2"
        output phase
        max_layers 1
        const START = [LOW, HIGH, HIGH]      # per token
        const LAST = max(START)
        var phase: cat Level = START[0] if token == "0" else LAST
        enum Level {LOW, HIGH}
    """)
    program = check_source(source, "t.alta")
    assert program.variable("phase").type == ir.Categorical(2, ("LOW", "HIGH"))
    assert run(program, ["0 1 2 0"]).outputs == ("LOW HIGH HIGH LOW",)


def test_constant_used_before_its_declaration_says_so():
    source = CHECK_BASE + prog("""
        const A = B + 1
        const B = 2
    """)
    assert check_error(source) == (5, 11, "constant 'B' is used before its declaration on "
                                          "line 6: a constant may only use constants declared "
                                          "before it")


# ---- 4b. `where` filters first, then `at` chooses, for every `at` -------------------------

AT_WHERE = prog("""
    vocab "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"
    output x {clause}
    max_layers 1
    var x: cat 10 = token
    head left = x at -1    # (the compiled model needs a head)
""")


def _oracle(text: str, at, where) -> str:
    kept = [int(t) for t in text.split() if where(int(t))]
    if at == "first":
        kept = kept[:1]
    elif at == "last":
        kept = kept[-1:]
    elif at is not None:
        kept = kept[at:at + 1]
    return " ".join(map(str, kept))


@pytest.mark.parametrize("clause, at, where", [
    ("at first where x > 4", "first", lambda x: x > 4),
    ("at 0 where x > 4", 0, lambda x: x > 4),
    ("at 1 where x > 4", 1, lambda x: x > 4),
    ("at 3 where x % 2 == 0", 3, lambda x: x % 2 == 0),
    ("at last where x < 5", "last", lambda x: x < 5),
    ("at 2", 2, lambda x: True),
])
def test_output_filters_then_chooses_on_both_back_ends(clause, at, where):
    from alta.compiled import run_compiled

    compiled = compile_program(check_source(AT_WHERE.format(clause=clause), "t.alta"))
    rng = random.Random(21)
    texts = [""] + [" ".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 9)))
                    for _ in range(40)]
    want = [_oracle(text, at, where) for text in texts]
    assert list(run(compiled.program, texts).outputs) == want
    assert list(run_compiled(compiled, texts).outputs) == want


def test_at_zero_is_at_first():
    texts = ["3 7 1 9", "1 2 8 5", "1 2", "8"]
    outputs = [run(check_source(AT_WHERE.format(clause=c), "t.alta"), texts).outputs
               for c in ("at first where x > 2", "at 0 where x > 2")]
    assert outputs[0] == outputs[1] == ("3", "8", "", "8")


# ---- 4c. a comparison that can never hold is an error wherever it is written --------------

NEVER = "2 is not a value of 'x' (cat 2), so this comparison is decided in advance"


@pytest.mark.parametrize("source, line, column", [
    pytest.param(prog("""
        vocab "0" "1"
        output x where x == 2
        max_layers 1
        var x: cat 2 = token
    """), 2, 21, id="output-filter"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        halt when x != 2
        var x: cat 2 = token
    """), 3, 16, id="halting"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        max_layers 1
        var x: cat 2 = token
        mlp:
            if x == 2:
                x = 0
    """), 6, 13, id="mlp"),
    pytest.param(prog("""
        vocab "0" "1"
        output y
        max_layers 1
        var x: cat 2 = token
        var y: bool = 0
        mlp:
            y = 2 == x
    """), 7, 9, id="mlp-value-on-the-left"),
])
def test_comparison_that_never_holds_is_an_error_everywhere(source, line, column):
    assert check_error(source) == (line, column, NEVER)


# ---- 4d. tokens and enum members are not interchangeable ----------------------------------

LABELS = prog("""
    vocab "a" "b"
    output t
    max_layers 1
    enum Color {RED, GREEN}
    enum Size {SMALL, LARGE}
    var t: vocab = token
    var c: cat Color = RED
""")


@pytest.mark.parametrize("body, line, column, message", [
    ('mlp:\n    c = "a"\n', 9, 9,
     "type error: \"a\" is a token (vocab), but 'c' holds members of enum Color"),
    ('mlp:\n    c = GREEN if t == "a" else "b"\n', 9, 32,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
    ('var d: cat Color = "b"\n', 8, 20,
     "type error: \"b\" is a token (vocab), but 'd' holds members of enum Color"),
    ("mlp:\n    t = GREEN\n", 9, 9,
     "type error: 'GREEN' is a member of enum Color, but 't' holds tokens (vocab)"),
    ("mlp:\n    c = LARGE\n", 9, 9,
     "type error: 'LARGE' is a member of enum Size, but 'c' holds members of enum Color"),
    ('mlp:\n    if c == "b":\n        t = "a"\n', 9, 13,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
])
def test_token_where_an_enum_member_belongs_is_a_type_error(body, line, column, message):
    assert check_error(LABELS + body) == (line, column, message)


def test_tokens_and_members_where_they_belong_are_fine():
    # Only values written as labels are checked: reads are integers like any categorical
    # value, so copying one categorical variable into another is not a label error.
    program = check_source(LABELS + prog("""
        var n: cat 5 = token            # a plain categorical may hold token ids
        var d: cat Color = token
        mlp:
            c = GREEN if t == "b" else RED
            t = "a" if c == GREEN else t
            n = "b"
            d = t
    """), "t.alta")
    # parallel assignment: `c == GREEN` reads c as it was before the MLP (RED), so t stays
    assert run(program, ["a b b"]).outputs == ("a b b",)
