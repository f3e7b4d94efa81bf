"""Source text -> AST: the Lark parser for `grammar/alta.lark` and the tree -> AST transformer.

Syntax errors become `AltaError`s that name the file, line and column, show the line with a
caret and say in words what was expected there.
"""

from __future__ import annotations

import ast as pyast
import threading
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.indenter import DedentError, Indenter

from alta import ast
from alta.cache import cache_dir
from alta.errors import AltaError, Source, Span


class _AltaIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ("LPAR", "LSQB", "LBRACE")
    CLOSE_PAREN_types = ("RPAR", "RSQB", "RBRACE")
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def process(self, stream):
        self._indented_by = None  # (" " or "\t", line) of the first indented line
        yield from super().process(stream)

    def handle_NL(self, token: Token):
        if self.paren_level == 0:
            self._check_indentation(token)
        try:
            yield from super().handle_NL(token)
        except DedentError:
            raise _BadDedent(token) from None

    def _check_indentation(self, token: Token) -> None:
        """One file indents with tabs or with spaces: mixed, a tab's width would decide
        which block a line is in, and editors disagree on it (Python refuses it too)."""
        kinds = set(token.rsplit("\n", 1)[1])
        line = token.end_line
        if len(kinds) == 2:
            raise _MixedIndentation(line, "this line indents with both tabs and spaces")
        if not kinds:
            return
        kind = kinds.pop()
        if self._indented_by is None:
            self._indented_by = (kind, line)
        elif kind != self._indented_by[0]:
            first = self._indented_by[1]
            raise _MixedIndentation(line, f"this line indents with {_WHITESPACE[kind]}, but "
                                          f"line {first} with {_WHITESPACE[self._indented_by[0]]}")


_WHITESPACE = {" ": "spaces", "\t": "tabs"}


class _BadDedent(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


class _MixedIndentation(Exception):
    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # Building the LALR tables takes most of a short run's parsing time: Lark keeps them in
    # ALTA's cache directory (it rebuilds them if the grammar or Lark's version changed).
    grammar = resources.files("alta.grammar").joinpath("alta.lark").read_text()
    tables = cache_dir("lark")
    return Lark(grammar, parser="lalr", postlex=_AltaIndenter(), propagate_positions=True,
                maybe_placeholders=True,
                cache=str(tables / "alta-grammar.lark-cache") if tables else False)


# Lark's indenter keeps the indentation stack of the text it is reading on the one parser
# object, so two threads parsing at once corrupt each other's (Beam's threaded runner does).
_PARSING = threading.Lock()


@lru_cache(maxsize=1)
def keywords() -> frozenset[str]:
    """The grammar's reserved words: its literal terminals that look like names."""
    return frozenset(t.pattern.value for t in _parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isidentifier())


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse ALTA source text into an AST `Module`."""
    source = Source(text if text.endswith("\n") else text + "\n", path)
    try:
        with _PARSING:
            tree = _parser().parse(source.text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    except _BadDedent as exc:
        line = _next_content_line(source, exc.token.line)
        column = len(source.line(line)) - len(source.line(line).lstrip()) + 1
        raise AltaError.at("inconsistent indentation: this line is not indented like the "
                           "block it ends or any enclosing block", Span(line, column, line,
                                                                         column + 1),
                           source) from None
    except _MixedIndentation as exc:
        width = len(source.line(exc.line)) - len(source.line(exc.line).lstrip())
        raise AltaError.at(f"indentation mixes tabs and spaces: {exc.why}; indent with one or "
                           "the other", Span(exc.line, 1, exc.line, width + 1), source) from None
    except LarkError as exc:  # anything else the parser reports: still located if possible
        raise AltaError.at(f"syntax error: {exc}", None, source) from None
    return _to_ast().transform(tree)


# ---- syntax errors in words ---------------------------------------------------------------

_TERMINAL_WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a quoted string",
    "_NL": "the end of the line", "_INDENT": "an indented block", "_DEDENT": "the end of the block",
    "COLON": "':'", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','",
    "ADD_OP": "'+' or '-'", "MUL_OP": "an operator", "$END": "the end of the file",
    "WORDS": "'words'", "CHARS": "'chars'", "ALLOW": "'allow'", "FIRST": "'first'",
    "LAST": "'last'",
    "TRUE": "'true'", "FALSE": "'false'",
}

_DECL_KEYWORDS = ("program", "vocab", "input", "output", "halt", "max_layers", "max_length",
                  "const", "param", "enum", "var", "head", "mlp", "def", "for")


def _describe_terminal(name: str) -> str | None:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    pattern = _parser().get_terminal(name).pattern if name in _terminal_names() else None
    if pattern is not None and pattern.type == "str":
        return f"'{pattern.value}'"
    return None


@lru_cache(maxsize=1)
def _terminal_names() -> frozenset[str]:
    return frozenset(t.name for t in _parser().terminals)


_EXPRESSION_START = {"NAME", "INT", "LPAR"}


def _expected_words(expected: set[str], in_brackets: bool = False) -> str:
    if {"VAR", "HEAD"} <= expected <= {"VAR", "HEAD", "_NL", "_DEDENT"}:
        # Inside a family block (the end of the line is only the parser merging states).
        return ("'var' or 'head': a family block ('for ... in ...:' at top level) holds "
                "only declarations of variables and heads")
    phrases = []
    if expected >= _EXPRESSION_START:
        # Every way to start an expression is possible: say so in one phrase.
        expected = expected - _EXPRESSION_START - {"FLOAT", "STRING", "LSQB", "LBRACE", "TRUE",
                                                   "FALSE", "NOT", "MINUS", "PLUS", "ADD_OP"}
        phrases.append("an expression")
    words = sorted({w for w in map(_describe_terminal, expected) if w}) + phrases
    if set(_DECL_KEYWORDS) <= {w.strip("'") for w in words}:
        # At top level every declaration keyword is possible: say so in one phrase.
        words = [w for w in words if w.strip("'") not in _DECL_KEYWORDS
                 and w != "the end of the line"] + ["a declaration"]
    # Closing brackets and separators are rarely what the user meant: drop them when
    # something more telling is on offer; the usual suspects go last.
    if in_brackets:  # newlines are ignored inside brackets
        words = [w for w in words if w != "the end of the line"]
    telling = [w for w in words if w not in ("')'", "']'", "'}'", "','", "':'")]
    if telling:
        words = telling
    words.sort(key=lambda w: (w == "an expression", w == "the end of the line"))
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_words(token: Token) -> str:
    words = {"_NL": "end of line", "_INDENT": "indentation", "_DEDENT": "end of block",
             "$END": "end of file"}
    return words.get(token.type, f"'{token.value}'")


def _syntax_error(exc: UnexpectedInput, source: Source) -> AltaError:
    line, column = max(exc.line, 1) if exc.line else 1, max(exc.column, 1) if exc.column else 1
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        message = f"unexpected character {char!r}"
        expected = _expected_words(set(exc.allowed or ()))
    elif isinstance(exc, UnexpectedEOF):
        lines = source.lines or ("",)
        line, column = len(lines), len(lines[-1]) + 1
        message = "unexpected end of file"
        expected = _expected_words(set(exc.expected))
    else:
        assert isinstance(exc, UnexpectedToken)
        token = exc.token
        if token.type in ("_NL", "_DEDENT", "$END") or token.line is None:
            # Point at the end of the previous line rather than the start of the next.
            prev = _previous_content_line(source, line)
            line, column = prev, len(source.line(prev).rstrip()) + 1
        prev = _previous_content_line(source, token.line - 1) if (token.line or 0) > 1 else 0
        if token.type == "_INDENT":
            line = _next_content_line(source, line)
            column = len(source.line(line)) - len(source.line(line).lstrip()) + 1
            message = "unexpected indentation"
            expected = _expected_words(set(exc.expected))
        elif (token.type not in ("_NL", "_DEDENT", "$END") and prev and token.line
              and token.line > prev and source.line(prev).rstrip().endswith(":")
              and token.column <= _indent(source.line(prev)) + 1):
            message = f"expected an indented block after the ':' on line {prev}"
            expected = ""
        else:
            message = f"unexpected {_token_words(token)}"
            expected = _expected_words(set(exc.expected),
                                       _unclosed_bracket(source, line, column) is not None)
    if expected:
        message += f"; expected {expected}"
    unclosed = _unclosed_bracket(source, line, column)
    if unclosed is not None and unclosed[0] < line:
        # Inside brackets newlines do not end a line, so the real mistake is usually an
        # unclosed bracket on an earlier line: point there.
        b_line, b_column, bracket = unclosed
        return AltaError.at(f"'{bracket}' is never closed", Span(b_line, b_column, b_line,
                                                                   b_column + 1), source,
                            (f"the parser gave up at line {line}, column {column}: {message}",))
    return AltaError.at(message, Span(line, column, line, column + 1), source)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _unclosed_bracket(source: Source, line: int, column: int) -> tuple[int, int, str] | None:
    """The innermost bracket opened before (line, column) and not closed by then."""
    stack: list[tuple[int, int, str]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for number, text in enumerate(source.lines[:line], 1):
        end = column - 1 if number == line else len(text)
        in_string = False
        for col, char in enumerate(text[:end], 1):
            if in_string:
                in_string = char != '"'
            elif char == '"':
                in_string = True
            elif char == "#":
                break
            elif char in "([{":
                stack.append((number, col, char))
            elif char in pairs and stack and stack[-1][2] == pairs[char]:
                stack.pop()
    return stack[-1] if stack else None


def _next_content_line(source: Source, line: int) -> int:
    line += 1
    while line < len(source.lines) and _is_blank(source.line(line)):
        line += 1
    return min(line, len(source.lines))


def _is_blank(text: str) -> bool:
    return not text.strip() or text.lstrip().startswith("#")


def _previous_content_line(source: Source, line: int) -> int:
    line = min(line, len(source.lines))
    while line > 1 and _is_blank(source.line(line)):
        line -= 1
    return max(line, 1)


# ---- parse tree -> AST ---------------------------------------------------------------------

def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


def _name(tok: Token) -> ast.Name:
    return ast.Name(_tok_span(tok), str(tok))


def _string(tok: Token) -> ast.StrLit:
    return ast.StrLit(_tok_span(tok), pyast.literal_eval(tok))


def _block(b) -> tuple:
    return b


@v_args(meta=True)
class _ToAst(Transformer):
    """Builds AST nodes bottom-up from the Lark tree; one method per grammar rule."""

    def __init__(self) -> None:
        super().__init__()
        # Each rule's method looked up once: `v_args` wraps the class's methods in
        # descriptors that build a new wrapper (functools.update_wrapper) at every lookup,
        # and Lark looks one up for every node of the tree. The instance's own attributes
        # come first, so Lark finds these.
        for name, value in vars(type(self)).items():
            if hasattr(value, "visit_wrapper"):
                setattr(self, name, getattr(self, name))

    # -- module and declarations
    def start(self, meta, decls):
        return ast.Module(_span(meta) if not meta.empty else Span(1, 1, 1, 1), tuple(decls))

    def program_decl(self, meta, c):
        return ast.ProgramDecl(_span(meta), _name(c[0]))

    def vocab_decl(self, meta, c):
        return ast.VocabDecl(_span(meta), tuple(_string(t) for t in c))

    vocab_block = vocab_decl

    def input_decl(self, meta, c):
        *items, allow = c
        return ast.InputDecl(_span(meta), tuple(items), allow or ())

    def frame_allow(self, meta, c):
        return tuple(_string(t) for t in c[1:])

    def frame_token(self, meta, c):
        return ast.FrameItem(_span(meta), "token", _string(c[0]))

    def frame_repeat(self, meta, c):
        return ast.FrameItem(_span(meta), "token", _string(c[0]), c[1])

    def frame_words(self, meta, c):
        return ast.FrameItem(_span(meta), "words")

    def frame_chars(self, meta, c):
        return ast.FrameItem(_span(meta), "chars")

    def output_decl(self, meta, c):
        var, at, where, default = c
        return ast.OutputDecl(_span(meta), var, at if at is not None else "all", where,
                              default)

    def output_at(self, meta, c):
        tok = c[0]
        if tok.type == "NAME":
            return _name(tok)
        return int(tok) if tok.type == "INT" else str(tok)

    def output_where(self, meta, c):
        return c[0]

    output_default = output_where

    def halt_decl(self, meta, c):
        return ast.HaltDecl(_span(meta), c[0])

    def max_layers_decl(self, meta, c):
        return ast.SettingDecl(_span(meta), "max_layers", c[0])

    def max_length_decl(self, meta, c):
        return ast.SettingDecl(_span(meta), "max_length", c[0])

    def const_decl(self, meta, c):
        return ast.ConstDecl(_span(meta), _name(c[0]), c[1])

    def param_decl(self, meta, c):
        return ast.ParamDecl(_span(meta), _name(c[0]), c[1], c[2])

    def enum_decl(self, meta, c):
        return ast.EnumDecl(_span(meta), _name(c[0]), tuple(_name(t) for t in c[1:]))

    def var_decl(self, meta, c):
        name, index, type_, init = c
        return ast.VarDecl(_span(meta), _name(name), type_, init, index)

    def member_index(self, meta, c):
        return c[0]

    def member_ref(self, meta, c):
        return ast.Index(_span(meta), _name(c[0]), c[1])

    def family_decl(self, meta, c):
        *targets, iterable = [x for x in c if not isinstance(x, (ast.VarDecl, ast.HeadDecl))]
        decls = tuple(x for x in c if isinstance(x, (ast.VarDecl, ast.HeadDecl)))
        return ast.FamilyDecl(_span(meta), tuple(_name(t) for t in targets), iterable, decls)

    def cat_type(self, meta, c):
        return ast.CatType(_span(meta), c[0])

    def same_kind(self, meta, c):
        return ast.SameKind(_span(meta))

    def bool_type(self, meta, c):
        return ast.BoolType(_span(meta))

    def vocab_type(self, meta, c):
        return ast.VocabType(_span(meta))

    def num_type(self, meta, c):
        return ast.NumType(_span(meta), c[0])

    def set_type(self, meta, c):
        return ast.SetType(_span(meta), c[0], c[1])

    def head_decl(self, meta, c):
        name, index, type_, value, where, offsets = c
        return ast.HeadDecl(_span(meta), _name(name), type_, value, where, offsets, index)

    def count_type(self, meta, c):
        return ast.CountType(_span(meta))

    def head_where(self, meta, c):
        return c[0]

    def head_at(self, meta, c):
        return c[0]

    def mlp_decl(self, meta, c):
        return ast.MlpDecl(_span(meta), c[0])

    def def_decl(self, meta, c):
        name, *params, body = c
        params = tuple(_name(p) for p in params if p is not None)
        return ast.FuncDecl(_span(meta), _name(name), params, body)

    # -- statements
    def block(self, meta, stmts):
        return tuple(stmts)

    def assign_stmt(self, meta, c):
        return ast.Assign(_span(meta), c[0], c[1])

    def let_stmt(self, meta, c):
        return ast.Let(_span(meta), _name(c[0]), c[1])

    def if_stmt(self, meta, c):
        cond, body, *rest = c
        branches = [(cond, body)]
        orelse: tuple = ()
        for clause in rest:
            if clause is None:
                continue
            kind, payload = clause
            if kind == "elif":
                branches.append(payload)
            else:
                orelse = payload
        return ast.If(_span(meta), tuple(branches), orelse)

    def elif_clause(self, meta, c):
        return "elif", (c[0], c[1])

    def else_clause(self, meta, c):
        return "else", c[0]

    def for_stmt(self, meta, c):
        *targets, iterable, body = c
        return ast.For(_span(meta), tuple(_name(t) for t in targets), iterable, body)

    def pass_stmt(self, meta, c):
        return ast.Pass(_span(meta))

    def return_stmt(self, meta, c):
        return ast.Return(_span(meta), c[0])

    # -- expressions
    def if_expr(self, meta, c):
        then, cond, orelse = c
        return ast.IfExpr(_span(meta), cond, then, orelse)

    def or_op(self, meta, c):
        return c[0] if len(c) == 1 else ast.BoolOp(_span(meta), "or", tuple(c))

    def and_op(self, meta, c):
        return c[0] if len(c) == 1 else ast.BoolOp(_span(meta), "and", tuple(c))

    def not_op(self, meta, c):
        return ast.Unary(_span(meta), "not", c[0])

    def compare(self, meta, c):
        left, op, right = c
        return ast.Compare(_span(meta), op, left, right)

    def comp_op(self, meta, c):
        return " ".join(str(t) for t in c)

    def _fold(self, meta, c, op):
        out = c[0]
        for item in c[1:]:
            out = ast.Binary(Span(out.span.line, out.span.column, item.span.end_line,
                                  item.span.end_column), op, out, item)
        return out

    def bitor_op(self, meta, c):
        return self._fold(meta, c, "|")

    def bitxor_op(self, meta, c):
        return self._fold(meta, c, "^")

    def bitand_op(self, meta, c):
        return self._fold(meta, c, "&")

    def arith_op(self, meta, c):
        out = c[0]
        for i in range(1, len(c), 2):
            op, item = str(c[i]), c[i + 1]
            out = ast.Binary(Span(out.span.line, out.span.column, item.span.end_line,
                                  item.span.end_column), op, out, item)
        return out

    def range_lit(self, meta, c):
        return ast.Binary(_span(meta), "..", c[0], c[1])

    def neg(self, meta, c):
        return ast.Unary(_span(meta), "-", c[0])

    def factor(self, meta, c):  # unary plus
        return c[0]

    def index(self, meta, c):
        return ast.Index(_span(meta), c[0], c[1])

    def call(self, meta, c):
        name, *args = c
        return ast.Call(_span(meta), _name(name), tuple(a for a in args if a is not None))

    def int_lit(self, meta, c):
        return ast.IntLit(_tok_span(c[0]), int(c[0]))

    def float_lit(self, meta, c):
        return ast.FloatLit(_tok_span(c[0]), float(c[0]))

    def str_lit(self, meta, c):
        return _string(c[0])

    def true_lit(self, meta, c):
        return ast.BoolLit(_tok_span(c[0]), True)

    def false_lit(self, meta, c):
        return ast.BoolLit(_tok_span(c[0]), False)

    def name(self, meta, c):
        return _name(c[0])

    def tuple_lit(self, meta, c):
        return ast.Collection(_span(meta), "tuple", tuple(x for x in c if x is not None))

    def list_lit(self, meta, c):
        return ast.Collection(_span(meta), "list", tuple(x for x in c if x is not None))

    def set_lit(self, meta, c):
        return ast.Collection(_span(meta), "set", tuple(x for x in c if x is not None))

    def comp_for(self, meta, c):
        *targets, iterable, condition = c
        return ast.CompFor(_span(meta), tuple(_name(t) for t in targets), iterable, condition)

    def _comp(self, meta, c, kind):
        element, *clauses = c
        return ast.Comprehension(_span(meta), kind, element, tuple(clauses))

    def list_comp(self, meta, c):
        return self._comp(meta, c, "list")

    def set_comp(self, meta, c):
        return self._comp(meta, c, "set")


@lru_cache(maxsize=1)
def _to_ast() -> _ToAst:
    """The one transformer (it keeps nothing between trees): making one looks up every
    rule's method."""
    return _ToAst()
