"""Syntax highlighting of `.alta` source: a Pygments lexer and a TextMate grammar.

The lexer is registered as a Pygments plugin (pyproject's `pygments.lexers` entry point), so
`pygmentize -l alta FILE`, Sphinx and other Pygments users highlight ALTA once the package
is installed. The TextMate grammar (editors/vscode/, for VS Code-family editors) is generated
by `python -m alta.highlight`. Both take their keywords from grammar/alta.lark
(`alta.syntax.keywords`), so neither can drift from the language; only the grouping of the
keywords into kinds lives here.
"""

from __future__ import annotations

import json
import sys
from typing import ClassVar

from pygments.lexer import RegexLexer, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from alta.environment import BUILTINS
from alta.syntax import keywords

_DECLARATIONS = {"program", "vocab", "input", "output", "halt", "max_layers", "max_length",
                 "const", "enum", "var", "head", "mlp", "def"}
# `vocab` is both a type and a declaration; it is shown as a declaration.
_TYPES = {"cat", "bool", "num", "set", "of", "count"}
_CONSTANTS = {"true", "false"}
_WORD_OPERATORS = {"and", "or", "not", "in"}

# Token patterns both highlighters share (Python `re` syntax, which TextMate's Oniguruma
# also reads).
EXAMPLE = r"#\s*example:.*$"  # `# example:` lines: input -> output pairs the tests run
COMMENT = r"#.*$"
STRING = r'"([^"\\\n]|\\.)*"'
FLOAT = r"[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+"
INTEGER = r"[0-9]+"
OPERATOR = r"\.\.|==|!=|<=|>=|//|[-+*/%<>=|^&]"


def keyword_groups() -> dict[str, tuple[str, ...]]:
    """The grammar's keywords by kind (every keyword in exactly one), and the built-in
    functions; each group longest name first, so that alternations match whole words."""
    reserved = keywords()
    kinds = {"declaration": _DECLARATIONS, "type": _TYPES, "constant": _CONSTANTS,
             "operator": _WORD_OPERATORS}
    groups = {kind: reserved & names for kind, names in kinds.items()}
    groups["control"] = reserved - set().union(*kinds.values())
    groups["builtin"] = set(BUILTINS)
    return {kind: tuple(sorted(names, key=lambda n: (-len(n), n)))
            for kind, names in groups.items()}


_TOKEN_TYPES = {"declaration": Keyword.Declaration, "type": Keyword.Type,
                "constant": Keyword.Constant, "operator": Operator.Word,
                "control": Keyword, "builtin": Name.Builtin}


class AltaLexer(RegexLexer):
    """ALTA: programs whose variables are a Transformer's residual stream."""

    name = "ALTA"
    aliases = ("alta",)
    filenames = ("*.alta",)
    mimetypes = ("text/x-alta",)

    tokens: ClassVar[dict] = {
        "root": [
            (r"[ \t\f]+", Whitespace),
            (r"\\?\r?\n", Whitespace),  # a newline, or a line continuation
            (EXAMPLE, Comment.Special),
            (COMMENT, Comment.Single),
            (STRING, String.Double),
            *((words(names, prefix=r"\b", suffix=r"\b"), _TOKEN_TYPES[kind])
              for kind, names in keyword_groups().items()),
            (FLOAT, Number.Float),
            (INTEGER, Number.Integer),
            (r"[A-Za-z_][A-Za-z_0-9]*", Name),
            (OPERATOR, Operator),
            (r"[()\[\]{}:,]", Punctuation),
        ],
    }


SCOPES = {"declaration": "storage.type.declaration", "type": "storage.type",
           "constant": "constant.language", "operator": "keyword.operator.word",
           "control": "keyword.control", "builtin": "support.function.builtin"}


def textmate_grammar() -> dict:
    """The TextMate grammar of editors/vscode/syntaxes/alta.tmLanguage.json."""
    def named(scope: str, pattern: str) -> dict:
        return {"name": f"{scope}.alta", "match": pattern}

    return {
        "name": "ALTA",
        "scopeName": "source.alta",
        "fileTypes": ["alta"],
        "patterns": [
            named("comment.line.example", EXAMPLE),
            named("comment.line.number-sign", COMMENT),
            named("string.quoted.double", STRING),
            *(named(SCOPES[kind], r"\b(" + "|".join(names) + r")\b")
              for kind, names in keyword_groups().items()),
            named("constant.numeric", rf"\b({FLOAT}|{INTEGER})\b"),
            named("keyword.operator", OPERATOR),
        ],
    }


if __name__ == "__main__":  # regenerate the editors' grammar: python -m alta.highlight
    json.dump(textmate_grammar(), sys.stdout, indent=2)
    sys.stdout.write("\n")
