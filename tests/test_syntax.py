"""The parser (grammar/alta.lark, alta/syntax.py): layout (indentation, comments, blank
lines, block vocab, continuations) and syntax errors, each located at its line and column.

The error cases are a table: a small program, the distinctive part of the first diagnostic's
message and the exact line and column it points at (`helpers.Case`; most start from
`helpers.BASE`, a valid four-line program, with the bad part from line 5 on). Cases marked
xfail describe the behaviour we want where the parser currently gets it wrong; `strict=True`
makes them fail loudly once fixed, so the mark gets removed.
"""

from __future__ import annotations

import random

import pytest
from helpers import (Case, assert_check_command_reports, assert_rejected_with_a_located_message,
                     base, case_params, case_table, check, prog, random_word_inputs)

from alta.interpreter import run


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

CASES = [
    # ---- syntax errors -------------------------------------------------------------------
    Case("syntax-missing-colon-after-mlp", base("""
        mlp
            x = 1 - x
        """), "unexpected end of line; expected ':'", 5, 4),
    Case("syntax-missing-colon-after-if", base("""
        mlp:
            if x == 1
                x = 0
        """), "expected ':'", 6, 14),
    Case("syntax-missing-indentation", base("""
        mlp:
        x = 1 - x
        """), "expected an indented block after the ':' on line 5", 6, 1),
    Case("syntax-unexpected-indentation", prog("""
        vocab "0" "1"
        output x at last
            max_layers 1
        var x: cat 2 = token
        """), "unexpected indentation", 3, 5),
    Case("syntax-inconsistent-dedent", base("""
        mlp:
            if x == 1:
                x = 0
              x = 1
        """), "inconsistent indentation", 8, 7),
    Case("syntax-bad-character", base("""
        var y: cat 2 = x $ 1
        """), "unexpected character '$'", 5, 18),
    Case("syntax-unexpected-end-of-file", base("mlp:"),
         "unexpected end of file; expected an indented block", 5, 5),
    Case("syntax-unclosed-bracket-at-end-of-file", base("const T = [1, 2, 3"),
         "unexpected end of file", 5, 19),
    Case("syntax-unclosed-bracket-before-next-line", base("""
        const T = [1, 2, 3
        var y: cat 2 = 0
        """), "'['", 5, 11),
    Case("syntax-unclosed-paren-in-mlp", base("""
        mlp:
            x = (x + 1
            x = 0
        """), "'('", 6, 9),
    Case("syntax-misspelled-declaration-keyword", base("""
        vra y: cat 2 = 0
        """), "unexpected 'vra'; expected a declaration", 5, 1),
    Case("syntax-misspelled-when", prog("""
        vocab "0" "1"
        output x at last
        halt whn x == 1
        var x: cat 2 = token
        """), "unexpected 'whn'; expected 'when'", 3, 6),
    Case("syntax-misspelled-last", prog("""
        vocab "0" "1"
        output x at lats
        max_layers 1
        var x: cat 2 = token
        """), "unexpected 'lats'; expected 'first', 'last'", 2, 13),
    Case("syntax-misspelled-elif", base("""
        mlp:
            if x == 1:
                x = 0
            elsif x == 0:
                x = 1
        """), "unexpected 'x'", 8, 11),
    Case("syntax-misspelled-if-first-in-block", base("""
        mlp:
            iff x == 1:
                x = 0
        """), "unexpected 'x'", 6, 9),
    Case("syntax-incomplete-expression", base("""
        mlp:
            x = x *
        """), "unexpected end of line; expected an expression", 6, 12),
    Case("syntax-incomplete-expression-in-parens", base("""
        mlp:
            x = (x + )
        """), "unexpected ')'; expected an expression", 6, 14),
    Case("syntax-assignment-in-condition", base("""
        mlp:
            if x = 1:
                x = 0
        """), "unexpected '='", 6, 10),
    Case("syntax-missing-initial-value", base("""
        var y: cat 2 =
        """), "unexpected end of line; expected an expression", 5, 15),
    Case("syntax-missing-type", base("""
        var y = 0
        """), "unexpected '='", 5, 7),
]


_BY_ID = case_table(CASES)


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_program_is_rejected_with_a_located_message(case: Case):
    assert_rejected_with_a_located_message(case)


@pytest.mark.parametrize("case", case_params(_BY_ID[i] for i in [
    "syntax-missing-colon-after-mlp", "syntax-bad-character", "syntax-inconsistent-dedent"]))
def test_check_command_reports_bad_program(case: Case, tmp_path):
    assert_check_command_reports(case, tmp_path)
