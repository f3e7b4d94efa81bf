"""The parser (grammar/alta.lark, alta/syntax.py): layout (indentation, comments, blank
lines, block vocab, continuations) and syntax errors, each located at its line and column.

The error cases are a table, tests/data/syntax_errors.toml: a small program, the distinctive
part of the first diagnostic's message and the exact line and column it points at (most start
from `helpers.BASE`, a valid four-line program, with the bad part from line 5 on). Cases
marked xfail describe the behaviour we want where the parser currently gets it wrong;
`strict=True` makes them fail loudly once fixed, so the mark gets removed.
"""

from __future__ import annotations

import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    Case,
    assert_rejected_with_a_located_message,
    case_params,
    check,
    load_cases,
    random_word_inputs,
)
from program_generator import generate_program

from alta.errors import AltaError
from alta.interpreter import run
from alta.syntax import parse


def test_layout_comments_blank_lines_block_vocab_and_continuations():
    src = """
        # header comment
        program layout

        vocab:
            "0" "1" "2"
            "3" "4"
        input words   # trailing comment
        output y

        max_layers 1
        const T = [
            10, 11,   # a table over several lines
            12, 13,
            14,
        ]
        var x: cat 5 = token
        var y: cat 20 = 0

        def f(a):
            # a comment inside a function

            if a > 2:
                return T[a]
            else:
                pass
            return a \\
                + 1

        mlp:
            # a comment inside the mlp
            y = f(x)

            if x == 0:
                pass
        """
    table = [10, 11, 12, 13, 14]
    rng = random.Random(32)
    inputs = random_word_inputs(rng, 20, 5)
    result = run(check(src), inputs)
    for text, out in zip(inputs, result.outputs):
        assert out == " ".join(str(table[x] if x > 2 else x + 1) for x in map(int, text.split()))


# ---- syntax errors --------------------------------------------------------------------------

CASES = load_cases("syntax")  # tests/data/syntax_errors.toml


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_program_is_rejected_with_a_located_message(case: Case):
    assert_rejected_with_a_located_message(case)


@pytest.mark.parametrize("seed", range(20))
def test_tabs_indent_like_four_spaces_but_never_beside_spaces(seed):
    """A generated program indented with tabs parses to the program indented with spaces
    (a tab is four columns); one line of it indented with spaces is a located error."""
    source = generate_program(seed).source
    tabbed = "\n".join(_with_tabs(line) for line in source.split("\n"))
    assert _without_spans(parse(tabbed)) == _without_spans(parse(source))
    indented = [i for i, line in enumerate(tabbed.split("\n")) if line.startswith("\t")]
    assert len(indented) > 2
    lines = tabbed.split("\n")
    k = random.Random(seed).choice(indented[1:])
    lines[k] = lines[k].replace("\t", "    ")
    with pytest.raises(AltaError, match="this line indents with spaces, but line") as info:
        parse("\n".join(lines))
    assert info.value.first.span.line == k + 1


def _without_spans(module) -> str:
    return re.sub(r"span=Span\([^)]*\)", "", repr(module))


def _with_tabs(line: str) -> str:
    body = line.lstrip(" ")
    width = len(line) - len(body)
    assert width % 4 == 0
    return "\t" * (width // 4) + body


def test_threads_parsing_at_once_each_get_their_own_program():
    """Beam's threaded runner parses in several threads at once: each gets the AST the same
    text gives alone, and a bad text's error stays its own."""
    sources = [generate_program(seed).source for seed in range(12)]
    alone = [parse(source) for source in sources]
    bad = sources[0] + "  x = 1\n"
    with ThreadPoolExecutor(6) as pool:
        parsed = list(pool.map(parse, sources * 8))
        errors = [pool.submit(parse, bad) for _ in range(8)]
    assert parsed == alone * 8
    for error in errors:
        with pytest.raises(AltaError):
            error.result()
