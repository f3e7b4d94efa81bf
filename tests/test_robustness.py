"""Mangled programs and inputs give located errors, never a Python exception."""

import random

import pytest

from alta.checker import check_source
from alta.errors import AltaError
from alta.interpreter import run
from helpers import PROGRAMS

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


@pytest.mark.parametrize("name", sorted(SOURCES) + ["features"])
def test_mangled_programs_fail_cleanly(name):
    text = FEATURES if name == "features" else SOURCES[name]
    rng = random.Random(name)
    outcomes = {"ok": 0, "error": 0}
    for mangled in mutations(text, rng, 150):
        try:
            program = check_source(mangled, "m.alta")
        except AltaError as exc:
            outcomes["error"] += 1
            span = exc.first.span
            assert span is None or 1 <= span.line <= mangled.count("\n") + 2, str(exc)
            continue
        outcomes["ok"] += 1
        try:
            run(program, ["", "a b", "1 0 1", "ab"], max_layers=20)
        except AltaError:
            pass
    assert outcomes["error"] > 0


def test_feature_program_runs():
    program = check_source(FEATURES, "features.alta")
    result = run(program, ["ab", "ba", ""])
    assert result.halted.all()
