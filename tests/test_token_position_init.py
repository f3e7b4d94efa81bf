"""Initialisers that read the token and the position together (compiled as an embedding row
per (position, token) pair), on the interpreter, the Flax model and the PyTorch export,
against Python computing the same from the framed input.

Every kind of variable is initialised this way (categorical, bool, numerical, set), and a
head reads one of them one position to the left, so the values matter to the layer as well
as to the initial state. Compile-time errors at a (token, position) pair are cases of
tests/test_cli.py's COMPILE_ONLY."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.interpreter import run

WORDS = ("a", "b", "c")  # token ids 0..2; "<s>" 3, "<e>" 4
MAX_WORDS = 30

SOURCE = f"""program placed
vocab "a" "b" "c" "<s>" "<e>"
input "<s>" words "<e>"
max_length {MAX_WORDS + 2}
max_layers 1
output code where is_word

var is_word: bool = token < 3
var code: cat 100 = token * 32 + position if token < 3 else 99
var diagonal: bool = token == position % 3
var weight: num {{k / 4 for k in 0..40}} = (token + position) / 4
var near: set 3 = {{token % 3, position % 3}}
var left: cat 100 = 0

head left_code = code at -1

mlp:
    if is_word == 1:
        left = left_code
"""

NAMES = ("code", "diagonal", "weight", "near", "left")


def oracle(words: list[str]) -> dict[str, list]:
    """Per variable, per framed position: its value after the layer."""
    tokens = [3] + [WORDS.index(w) for w in words] + [4]
    code = [t * 32 + p if t < 3 else 99 for p, t in enumerate(tokens)]
    return {
        "code": code,
        "diagonal": [int(t == p % 3) for p, t in enumerate(tokens)],
        "weight": [(t + p) / 4 for p, t in enumerate(tokens)],
        "near": [sum(1 << v for v in {t % 3, p % 3}) for p, t in enumerate(tokens)],
        "left": [code[p - 1] if t < 3 else 0 for p, t in enumerate(tokens)],
    }


def random_inputs(seed: int, count: int) -> list[list[str]]:
    rng = random.Random(seed)
    lengths = [MAX_WORDS, 1, 0] + [rng.randint(0, MAX_WORDS) for _ in range(count)]
    return [[rng.choice(WORDS) for _ in range(n)] for n in lengths]


def _assert_values(values: dict[str, np.ndarray], inputs) -> None:
    for b, words in enumerate(inputs):
        expected = oracle(words)
        n = len(words) + 2
        for name in NAMES:
            got = np.asarray(values[name][b, :n], dtype=np.float64)
            assert np.allclose(got, expected[name]), (name, words)


@pytest.fixture(scope="module")
def placed_program():
    return check_source(SOURCE, "placed.alta")


@pytest.fixture(scope="module")
def placed_compiled(placed_program):
    return compile_program(placed_program)


def test_interpreter_initialises_from_token_and_position(placed_program):
    inputs = random_inputs(1, 150)
    result = run(placed_program, [" ".join(w) for w in inputs])
    _assert_values(result.final, inputs)


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_compiled_model_embeds_each_token_at_each_position(placed_compiled, structured):
    inputs = random_inputs(2 + structured, 100)
    model = load_model(placed_compiled, structured=structured)
    result = run_compiled(placed_compiled, [" ".join(w) for w in inputs], model=model)
    _assert_values(placed_compiled.layout.decode(result.residual, placed_compiled.program),
                   inputs)
    table = placed_compiled.parameters.embed.token_at_position
    assert table.shape == (MAX_WORDS + 2, 5, placed_compiled.layout.width)


def test_the_pytorch_export_embeds_them_too(placed_compiled, tmp_path):
    from alta.export import export_torch
    from alta.framing import encode_batch
    from alta.pytorch import UniversalTransformer

    directory = export_torch(placed_compiled, tmp_path / "torch")
    model = UniversalTransformer.from_file(directory / "model.safetensors")
    texts = [" ".join(w) for w in random_inputs(4, 40)]
    result = run_compiled(placed_compiled, texts)
    batch = encode_batch(placed_compiled.program, texts)
    out = model(batch.tokens, batch.lengths)
    assert np.allclose(np.asarray(out.residual), result.residual, atol=1e-5)


def test_transformer_lens_export_refuses_with_the_variable_named(placed_compiled):
    from alta.unrolled import unroll

    with pytest.raises(AltaError, match="'code' is initialised from the token and the "
                                         "position together") as info:
        unroll(placed_compiled, 1)
    assert info.value.first.span.line == 9


def test_a_count_head_keyed_on_token_and_position_counts_as_python():
    """The compiler bounds a count head from its keys' values at every placement: a key
    initialised from both the token and the position is evaluated with both."""
    program = check_source(f"""program smaller_codes
vocab "a" "b" "c" "<s>" "<e>"
input "<s>" words "<e>"
max_length {MAX_WORDS + 2}
max_layers 1
output smaller where is_word
var is_word: bool = token < 3
var code: cat 100 = token * 32 + position if token < 3 else 99
var smaller: cat {MAX_WORDS + 3} = 0
head below: count where code < code
mlp:
    if is_word == 1:
        smaller = below
""", "smaller_codes.alta")
    inputs = random_inputs(5, 60)
    texts = [" ".join(w) for w in inputs]
    expected = [[sum(c < mine for c in codes) for mine in codes[1:-1]]
                for codes in (oracle(w)["code"] for w in inputs)]
    interpreted = run(program, texts).final["smaller"]
    compiled = compile_program(program)
    decoded = compiled.layout.decode(run_compiled(compiled, texts).residual, program)["smaller"]
    for b, want in enumerate(expected):
        assert [int(v) for v in interpreted[b, 1:len(want) + 1]] == want
        assert [int(v) for v in decoded[b, 1:len(want) + 1]] == want
