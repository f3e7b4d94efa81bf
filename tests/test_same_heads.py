"""`head h: same = ...`: a categorical head that may select several positions, defined where
they all hold one value; on both back ends against Python.

Python computes, from the words alone, each head's value or "undefined" at every position;
the interpreter's heads, the compiled model's decoded heads and its own undefined marks
(compiler/faults.py: the selection head and the agreement ramps) must equal it, on inputs
up to 40 words where many positions agree and many do not. Then a program reading a `same`
head stops with the same error on exactly the same inputs on both back ends. Misuse (a
numerical value) is a case in tests/data/checker_errors.toml."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import decoded_trace, run_compiled
from alta.compiler import compile_program
from alta.errors import AltaRuntimeError
from alta.framing import encode_batch
from alta.interpreter import attend, initial_state, run

WORDS = ("a", "b", "c", "d")  # token ids 1..4; "<s>" is 0
MAX_WORDS = 40

SOURCE = f"""program agree
vocab "<s>" "a" "b" "c" "d"
input "<s>" words
max_length {MAX_WORDS + 1}
max_layers 1
output tok

var tok: vocab = token
var kind: cat 3 = token % 3
var seen: vocab = 0

head pair: same = tok where tok != "<s>" at -2..-1
head lower_kind: same = kind where tok < tok and tok != "<s>"
head every_word: same = tok where tok != "<s>"
head left: same = kind at -1

mlp:
    seen = tok
"""

# name -> (key test of (key token, query token), offsets or None, the value read at j)
HEADS = {
    "pair": (lambda j, i: j != 0, (-2, -1), lambda t: t),
    "lower_kind": (lambda j, i: j < i and j != 0, None, lambda t: t % 3),
    "every_word": (lambda j, i: j != 0, None, lambda t: t),
    "left": (lambda j, i: True, (-1,), lambda t: t % 3),
}


def oracle(words: list[str]) -> dict[str, list[int | None]]:
    """Per head, per position: the value every selected position holds (None: none is
    selected, or two differ)."""
    ids = [0] + [WORDS.index(w) + 1 for w in words]
    out = {}
    for name, (test, offsets, value) in HEADS.items():
        column = []
        for i, query in enumerate(ids):
            picked = {value(key) for j, key in enumerate(ids)
                      if test(key, query) and (offsets is None or j - i in offsets)}
            column.append(picked.pop() if len(picked) == 1 else None)
        out[name] = column
    return out


def random_inputs(seed: int, count: int) -> list[list[str]]:
    """Words over all four letters, or over one or two of them (so that many heads agree)."""
    rng = random.Random(seed)
    inputs = [["a"] * MAX_WORDS, ["b"], []]
    for _ in range(count):
        letters = rng.sample(WORDS, rng.choice([1, 2, 4]))
        inputs.append([rng.choice(letters) for _ in range(rng.randint(1, MAX_WORDS))])
    return inputs


def _assert_heads(values, undefined, inputs) -> None:
    for b, words in enumerate(inputs):
        expected = oracle(words)
        for name in HEADS:
            got = [None if undefined[name][b, i] else int(values[name][b, i])
                   for i in range(len(words) + 1)]
            assert got == expected[name], (name, words)


@pytest.fixture(scope="module")
def agree_program():
    return check_source(SOURCE, "agree.alta")


def test_interpreter_heads_agree_with_python(agree_program):
    inputs = random_inputs(1, 200)
    batch = encode_batch(agree_program, [" ".join(w) for w in inputs])
    values, undefined = attend(agree_program, initial_state(agree_program, batch), batch.valid)
    _assert_heads(values, undefined, inputs)
    agreeing = sum(v is not None for w in inputs for v in oracle(w)["every_word"])
    assert 0 < agreeing < sum(len(w) + 1 for w in inputs)


def test_compiled_heads_and_their_undefined_marks_agree_with_python(agree_program):
    """The compiled model reads its heads' outputs and, from its own selection heads and
    agreement ramps, where they are undefined (all four are read, so the fault detector
    covers each)."""
    program = check_source(SOURCE.replace("    seen = tok", "    if pair == lower_kind "
                                          "and every_word == left:\n        seen = tok"),
                           "agree.alta")
    compiled = compile_program(program)
    inputs = random_inputs(2, 120)
    record = decoded_trace(compiled, [" ".join(w) for w in inputs], max_layers=1).trace[0]
    _assert_heads(record.after_attention, record.undefined, inputs)


def test_both_back_ends_stop_on_the_same_inputs():
    program = check_source(f"""program runs
vocab "<s>" "a" "b"
input "<s>" words
max_length {MAX_WORDS + 1}
max_layers 1
output seen where is_word
var tok: vocab = token
var is_word: bool = token != "<s>"
var seen: vocab = 0
head before: same = tok where tok != "<s>" at -3..-1
mlp:
    if is_word == 1 and tok == "a":
        seen = before
""", "runs.alta")
    rng = random.Random(7)
    texts = [" ".join(rng.choice("aab") for _ in range(rng.randint(1, MAX_WORDS)))
             for _ in range(60)] + ["b a", "b b b a", "b a b a", "a"]
    expected, outputs = {}, {}
    for b, text in enumerate(texts):
        try:
            outputs[b] = run(program, [text]).outputs[0]
        except AltaRuntimeError as error:
            expected[b] = error.layer
    compiled = compile_program(program)
    result = run_compiled(compiled, texts, undefined="stop")
    assert 0 < len(expected) < len(texts)
    assert {f.sequence: f.layer for f in result.faults} == expected
    for b, output in outputs.items():
        assert result.outputs[b] == output, texts[b]
    assert np.all(result.layers[list(outputs)] == 1)
