"""Mangled programs and inputs give located errors, never a Python exception."""

import random
from collections import Counter

import pytest
from helpers import PROGRAMS

from alta.checker import check_source
from alta.errors import AltaError, AltaRuntimeError
from alta.interpreter import run
from alta.sampling import sample_inputs
from alta.tasks import in_file_examples

SOURCES = {p.stem: p.read_text() for p in sorted(PROGRAMS.glob("*.alta"))}

FEATURES = '''
program features
const T = [(0, 1), (1, 0)]
const SQUARES = [n * n for n in 0..3]
enum Colour {RED, GREEN, BLUE}
vocab "a" "b" "<s>"
input "<s>" "<s>" * 2 chars
output colour where c > 0 default RED
halt when done == 1
var c: cat 3 = 0 if token == "<s>" else token + 1
var colour: cat Colour = RED
var done: bool = 0
var s: set 3 of [{}, {0}, {0, 1}] = {}
var x: num {0, 0.5, 1} = 0.5
head left = c at -1
head any_c: num {0, 0.5, 1} = x where c in s
def pick(a, b):
    for i, j in T:
        if a == i:
            return j + b
    return b
mlp:
    let k = pick(c % 2, 1)
    if done == 0:
        colour = min(k, 2)
        done = 1
    elif c in {1, 2} and left == 0:
        s = {0} if SQUARES[c] > 0 else {}
'''


def mutations(text: str, rng: random.Random, count: int):
    pieces = ["(", ")", ":", "=", "==", "if", "else", "\n", "    ", "{", "}", "[", "]", ",",
              "head", "var", "1", "-1", '"a"', "x", "..", "in", "not", "@", "\t", "#", "mlp:"]
    for _ in range(count):
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            op = rng.randrange(3)
            if op == 0:
                del chars[i:i + rng.randint(1, 6)]
            elif op == 1:
                chars.insert(i, rng.choice(pieces))
            else:
                j = rng.randrange(len(chars))
                chars[i], chars[j] = chars[j], chars[i]
        yield "".join(chars)


def assert_located_in(error: AltaError, text: str, file: str = "m.alta") -> None:
    """The error points at a line and column inside TEXT, named at the head of its message."""
    span = error.first.span
    assert span is not None, str(error)
    assert 1 <= span.line <= text.count("\n") + 2 and span.column >= 1, str(error)
    assert str(error).startswith(f"{file}:{span.line}:{span.column}: error: "), str(error)


@pytest.mark.parametrize("name", sorted(SOURCES) + ["features"])
def test_mangled_programs_fail_cleanly(name):
    """Every mangled program checks or fails with an AltaError located inside it; every one
    that checks runs on inputs drawn from its own alphabet to the end or to a located
    run-time error, and on foreign inputs and the original's examples to the end, to a
    located run-time error or to an error naming the input (any other exception fails the
    test); some of them run to the end."""
    text = FEATURES if name == "features" else SOURCES[name]
    # the unmangled program's own examples: inputs it was written for
    examples = ["ab", "ba"] if name == "features" else \
        [t for t, _ in in_file_examples(check_source(text, f"{name}.alta"))][:2]
    rng = random.Random(name)
    outcomes = Counter()
    for mangled in mutations(text, rng, 150):
        try:
            program = check_source(mangled, "m.alta")
        except AltaError as exc:
            outcomes["error"] += 1
            assert_located_in(exc, mangled)
            continue
        outcomes["ok"] += 1
        try:
            run(program, sample_inputs(program, 3, 6, seed=1), max_layers=20)
            outcomes["ran"] += 1
        except AltaRuntimeError as exc:
            outcomes["run-time error"] += 1
            assert_located_in(exc, mangled)
        for texts in (["", "a b", "1 0 1", "ab"], examples):  # foreign inputs, the task's
            try:
                run(program, texts, max_layers=20)
                outcomes["ran"] += 1
            except AltaRuntimeError as exc:
                assert_located_in(exc, mangled)
            except AltaError as exc:
                assert str(exc).startswith("alta: error: input '"), str(exc)
    assert outcomes["error"] > 0 and outcomes["ok"] > 0, outcomes
    assert outcomes["ran"] > 0, outcomes  # some really run: not all stop at an input error


def features_oracle(text: str) -> str:
    """FEATURES by hand: its one layer gives each character the colour min(pick(c % 2, 1), 2),
    with c = 1 for "a" and 2 for "b": pick(1, 1) = 0 + 1 (GREEN), pick(0, 1) = 1 + 1 (BLUE);
    the framing's start tokens (c = 0) are filtered out, and an empty output is RED."""
    return " ".join({"a": "GREEN", "b": "BLUE"}[ch] for ch in text) or "RED"


def test_feature_program_runs():
    program = check_source(FEATURES, "features.alta")
    rng = random.Random(4)
    texts = ["ab", "ba", ""] + ["".join(rng.choice("ab") for _ in range(rng.randint(0, 9)))
                                for _ in range(40)]
    result = run(program, texts)
    assert result.halted.all()
    assert list(result.outputs) == [features_oracle(t) for t in texts]
    assert result.layers.tolist() == [1] * len(texts)  # done = 1 after the first layer
