"""Framing (alta/framing.py): input text -> framed tokens (chars, words, fixed tokens,
buffers; framing tokens reserved unless allowed) and the final state -> output text (at,
where, default, set formatting), against Python tokenising and filtering the same text; the
output rules on the compiled model too."""

from __future__ import annotations

import random

import pytest
from helpers import (
    PROGRAMS,
    alta,
    check,
    check_error,
    header,
    per_position,
    prog,
    random_word_inputs,
    vocab_line,
)

from alta.checker import check_file, check_source
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.framing import encode
from alta.interpreter import run
from alta.sampling import input_alphabet, sample_inputs

# ---- input: chars, words, fixed tokens and buffers ------------------------------------------

@pytest.mark.parametrize("framing, pieces", [
    ('input "<s>" chars "<m>" * 3', lambda text: ["<s>", *text.replace(" ", ""), "<m>", "<m>",
                                                  "<m>"]),
    ('input chars "<e>"', lambda text: [*text.replace(" ", ""), "<e>"]),
    ('input "<s>" "<s>" words "<m>" * PAD "<e>"',
     lambda text: ["<s>", "<s>", *text.split(), "<m>", "<m>", "<e>"]),
    ('input "<m>" * 0 words', lambda text: text.split()),
])
def test_framing_matches_python_tokenisation(framing, pieces):
    extra = ("<s>", "<m>", "<e>")
    vocab = [*map(str, range(10)), *extra]
    src = f"""
        program framed
        {vocab_line(10, extra)}
        {framing}
        output t
        max_layers 1
        const PAD = 2
        var t: vocab = token
        var p: cat 40 = position
        var is_buffer: bool = token == "<m>"
        var seen: cat 40 = 0
        mlp:
            seen = p * 2 + is_buffer
        """
    rng = random.Random(13)
    if "chars" in framing:  # runs of digits; spaces between them are not tokens
        inputs = [" ".join("".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 3)))
                           for _ in range(rng.randint(1, 5))) for _ in range(30)]
    else:
        inputs = random_word_inputs(rng, 30, 10, max_len=8)
    inputs = ["", *inputs]
    program = check(src)
    result = run(program, inputs)
    for b, text in enumerate(inputs):
        want = pieces(text)
        assert result.batch.lengths[b] == len(want)
        assert result.batch.tokens[b, :len(want)].tolist() == [vocab.index(w) for w in want]
        assert result.outputs[b] == " ".join(want)
        assert per_position(result, "seen", b) == [i * 2 + (w == "<m>")
                                                   for i, w in enumerate(want)]


def test_input_errors_are_alta_errors():
    src = f"""
        program t
        {vocab_line(10)}
        input "0" words
        max_length 4
        output x
        max_layers 1
        var x: cat 10 = token
        """
    program = check(src)
    # input errors name the input, the token or the length, and the program
    with pytest.raises(AltaError, match="input '1 2 x': \"x\" is not in the vocabulary of t"):
        run(program, ["1 2 x"])
    with pytest.raises(AltaError,
                       match="input '1 2 3 4' needs 5 positions, but t declares max_length 4"):
        run(program, ["1 2 3 4"])
    assert run(program, ["1 2 3"]).outputs == ("0 1 2 3",)
    assert run(program, []).outputs == ()


# ---- framing tokens are reserved unless the input declaration allows them -------------------

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


# ---- output: at, where, default, sets -------------------------------------------------------

OUTPUT_FORMS = [
    ("", None, None, None),
    ("at first", "first", None, None),
    ("at last", "last", None, None),
    ("at 2", 2, None, None),
    ("at 3 default 7", 3, None, 7),
    ("where x > 4", None, lambda x, i: x > 4, None),
    ("where x > 6 default 9", None, lambda x, i: x > 6, 9),
    ("at first where x % 2 == 1 default 0", "first", lambda x, i: x % 2 == 1, 0),
    ("at 0 where x % 2 == 1 default 0", 0, lambda x, i: x % 2 == 1, 0),
    ("at 2 where x > 3", 2, lambda x, i: x > 3, None),
    ("at last where x < 3 and y != 0", "last", lambda x, i: x < 3 and (x * i) % 7 != 0, None),
    ("default 5", None, None, 5),
]


@pytest.mark.parametrize("clause, at, where, default", OUTPUT_FORMS)
def test_output_at_where_default(clause, at, where, default):
    src = header(f"x {clause}", name="out") + prog("""
        var x: cat 10 = token
        var p: cat 20 = position
        var y: cat 7 = 0
        mlp:
            y = (x * p) % 7
        """)
    rng = random.Random(14)
    inputs = [""] + random_word_inputs(rng, 40, 10, max_len=8)
    result = run(check(src), inputs)
    for text, out in zip(inputs, result.outputs):
        xs = [int(t) for t in text.split()]
        chosen = [i for i, x in enumerate(xs) if where is None or where(x, i)]
        if at == "first":
            chosen = chosen[:1]
        elif at == "last":
            chosen = chosen[-1:]
        elif isinstance(at, int):  # the at-th of the filtered positions, like first
            chosen = chosen[at:at + 1]
        if chosen:
            want = " ".join(str(xs[i]) for i in chosen)
        else:
            want = "" if default is None else str(default)
        assert out == want, (clause, text)


def test_set_output_formatting():
    src = header("s", tokens=8) + prog("""
        var x: cat 8 = token
        var s: set 8 = {}
        mlp:
            s = {x, (x + 3) % 8, 0}
        """)
    rng = random.Random(4)
    inputs = random_word_inputs(rng, 20, 8)
    result = run(check(src), inputs)
    for text, out in zip(inputs, result.outputs):
        want = ["{" + ",".join(map(str, sorted({x, (x + 3) % 8, 0}))) + "}"
                for x in map(int, text.split())]
        assert out == " ".join(want)


# ---- `where` filters first, then `at` chooses, for every `at` -------------------------------

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


# ---- numbers print at full float32 precision --------------------------------------------------

AWKWARD = (1 / 3, 2 / 7, 7 / 24, -0.1, 1e-5, 123456.789, 1 / 60, 0.0, 1.0, -2.5e-7, 3e20, 9.75)


def test_numbers_print_as_the_shortest_text_of_their_float32_on_both_back_ends():
    """Every value of a numerical output prints as the fewest digits that read back as
    its float32 (not 6 significant digits), by the interpreter and the compiled model alike;
    the oracle finds those digits by trying 1, 2, ... with Python's struct."""
    from alta.compiled import run_compiled
    from alta.programs._common import shortest_float32

    values = ", ".join(repr(v) for v in AWKWARD)
    src = header("v", name="awkward", tokens=len(AWKWARD)) + prog(f"""
        const VALUES = [{values}]
        var v: num {{{values}}} = VALUES[token]
        mlp:
            v = v
        """)
    program = check(src)
    rng = random.Random(9)
    texts = random_word_inputs(rng, 40, len(AWKWARD), max_len=30)
    expected = [" ".join(shortest_float32(AWKWARD[int(w)]) for w in t.split()) for t in texts]
    assert list(run(program, texts).outputs) == expected
    assert list(run_compiled(compile_program(program), texts).outputs) == expected
    assert shortest_float32(1 / 3) == "0.33333334" and shortest_float32(3e20) == "3e+20"
