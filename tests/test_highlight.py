"""Highlighting: the Pygments lexer against Lark's own lexer, and the editors' grammar."""

import json
import re

import pytest
from helpers import PROGRAMS, ROOT
from program_generator import generate_program

pygments = pytest.importorskip("pygments")
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name  # noqa: E402
from pygments.token import Error, Keyword, Name, Number, Operator, String  # noqa: E402

from alta.highlight import SCOPES, AltaLexer, keyword_groups, textmate_grammar  # noqa: E402
from alta.syntax import _parser, keywords  # noqa: E402

SOURCES = {**{p.stem: p.read_text() for p in sorted(PROGRAMS.glob("*.alta"))},
           **{f"generated-{seed}": generate_program(seed).source for seed in range(40)}}


def test_pygments_finds_the_lexer_by_name_and_file_name():
    assert isinstance(get_lexer_by_name("alta"), AltaLexer)
    assert find_lexer_class_for_filename("programs/parity.alta") is AltaLexer


def test_every_keyword_has_exactly_one_kind():
    groups = keyword_groups()
    reserved = [name for kind, names in groups.items() if kind != "builtin" for name in names]
    assert sorted(reserved) == sorted(keywords())
    assert {"program", "head", "mlp", "if", "true", "in"} <= keywords()


def _expected_kind(token) -> object | None:
    """What Lark's lexer says a token is, as a Pygments token type (None: not checked)."""
    if token.value in keywords():
        return Keyword if token.value not in ("and", "or", "not", "in") else Operator.Word
    return {"NAME": Name, "INT": Number, "FLOAT": Number, "STRING": String}.get(token.type)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_lexer_agrees_with_the_grammar(name):
    text = SOURCES[name]
    tokens = list(get_lexer_by_name("alta").get_tokens_unprocessed(text))
    assert "".join(value for _, _, value in tokens) == text
    assert not [(i, v) for i, kind, v in tokens if kind in Error], "error tokens"
    highlighted = {start: (kind, value) for start, kind, value in tokens}
    checked = 0
    for token in _parser().lex(text):  # the grammar's own lexer is the oracle
        expected = _expected_kind(token)
        if expected is None:
            continue
        kind, value = highlighted[token.start_pos]
        assert value == token.value, (token, value)
        if expected is Name and token.value in keyword_groups()["builtin"]:
            expected = Name.Builtin
        assert kind in expected, (token.line, token.column, token.value, kind)
        checked += 1
    assert checked > 10


def test_example_lines_are_marked():
    text = (PROGRAMS / "parity.alta").read_text()
    examples = [v for _, kind, v in get_lexer_by_name("alta").get_tokens_unprocessed(text)
                if kind in pygments.token.Comment.Special]
    assert examples == re.findall(r"#\s*example:.*", text) and examples


def test_the_editors_grammar_is_generated_from_the_grammar():
    path = ROOT / "editors" / "vscode" / "syntaxes" / "alta.tmLanguage.json"
    assert json.loads(path.read_text()) == textmate_grammar(), (
        "regenerate it: python -m alta.highlight > " + str(path.relative_to(ROOT)))
    patterns = [(p["name"], re.compile(p["match"])) for p in textmate_grammar()["patterns"]]
    for kind, names in keyword_groups().items():
        for name in names:  # TextMate takes the first pattern that matches
            first = next(scope for scope, pattern in patterns if pattern.match(name))
            assert first == f"{SCOPES[kind]}.alta", (name, first)
    package = json.loads((path.parent.parent / "package.json").read_text())
    assert package["contributes"]["grammars"][0]["scopeName"] == textmate_grammar()["scopeName"]
