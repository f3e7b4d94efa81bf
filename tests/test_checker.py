"""The checker (alta/checker.py): bad programs fail with a located `AltaError` that says
what is wrong, warnings are not errors, valid programs are accepted, and what it evaluates at
compile time (constants, comprehensions, helper functions, unrolled loops, let scoping) means
what Python means.

The error cases are a table: a small program, the distinctive part of its message and the
exact line and column the error points at (`helpers.Case`; most start from `helpers.BASE`,
a valid four-line program, with the bad part from line 5 on). Cases marked xfail describe
the behaviour we want where the checker currently gets it wrong (wrong wording, wrong place,
or a Python exception instead of an `AltaError`); `strict=True` makes them fail loudly once
fixed, so the mark gets removed. Compile-time evaluation is checked by running the checked
program with the interpreter on generated inputs against Python computing the same thing.
"""

from __future__ import annotations

import random

import pytest
from helpers import (BASE, Case, assert_check_command_reports,
                     assert_rejected_with_a_located_message, base, case_params, case_table,
                     check, check_error, per_position, prog, random_word_inputs, vocab_line)

from alta import ir
from alta.checker import check_source
from alta.interpreter import run


# ---- bad programs ---------------------------------------------------------------------------

CASES = [
    # ---- undefined names -----------------------------------------------------------------
    Case("undefined-variable-read", base("""
        mlp:
            x = y
        """), "undefined name 'y'", 6, 9),
    Case("undefined-variable-did-you-mean", base("""
        var count: cat 3 = 0
        mlp:
            count = coutn
        """), "undefined name 'coutn'", 7, 13, note="did you mean 'count'?"),
    Case("undefined-variable-assigned", base("""
        mlp:
            y = 1
        """), "undefined variable 'y'", 6, 5),
    Case("undefined-head-value", base("""
        head h = z at -1
        """), "undefined variable 'z'", 5, 10),
    Case("undefined-head-key", base("""
        head h = x where k == x
        """), "undefined variable 'k'", 5, 18),
    Case("undefined-head-read-did-you-mean", base("""
        head left = x at -1
        mlp:
            x = lfet
        """), "undefined name 'lfet'", 7, 9, note="did you mean 'left'?"),
    Case("undefined-function", base("""
        mlp:
            x = flip(x)
        """), "undefined function 'flip'", 6, 9),
    Case("undefined-function-did-you-mean", base("""
        def flip(a):
            return 1 - a
        mlp:
            x = flpi(x)
        """), "undefined function 'flpi'", 8, 9, note="did you mean 'flip'?"),
    Case("undefined-constant", base("""
        const A = B + 1
        """), "undefined name 'B'", 5, 11),
    Case("undefined-constant-in-type", base("""
        var y: cat SIZE = 0
        """), "undefined name 'SIZE'", 5, 12),
    Case("undefined-output-variable", prog("""
        vocab "0" "1"
        output y at last
        max_layers 1
        var x: cat 2 = token
        """), "undefined variable 'y'", 2, 8),

    # ---- duplicate names and declarations ------------------------------------------------
    Case("duplicate-variable-and-head", base("""
        head x = x at -1
        """), "duplicate name 'x': already declared on line 4", 5, 6),
    Case("duplicate-const-and-enum-member", base("""
        const RED = 1
        enum Color { RED, GREEN }
        """), "duplicate name 'RED': already declared on line 5", 6, 14),
    Case("duplicate-enum-member-and-variable", base("""
        enum Color { RED, GREEN }
        var RED: cat 2 = 0
        """), "duplicate name 'RED': already declared on line 5", 6, 5),
    Case("duplicate-variable", base("""
        var x: cat 3 = 0
        """), "duplicate name 'x': already declared on line 4", 5, 5),
    Case("duplicate-function", base("""
        def f(a):
            return a
        def f(b):
            return b
        """), "duplicate name 'f': already declared on line 5", 7, 5),
    Case("duplicate-output", base("""
        output x at first
        """), "duplicate 'output' declaration: already declared on line 2", 5, 1),
    Case("duplicate-vocab", base("""
        vocab "a" "b"
        """), "duplicate 'vocab' declaration: already declared on line 1", 5, 1),
    Case("duplicate-mlp", base("""
        mlp:
            pass
        mlp:
            pass
        """), "duplicate 'mlp' declaration: already declared on line 5", 7, 1),
    Case("duplicate-max-layers", base("""
        max_layers 2
        """), "duplicate 'max_layers' declaration", 5, 1),
    Case("duplicate-token-in-vocab", prog("""
        vocab "0" "1" "0"
        output x at last
        max_layers 1
        var x: cat 2 = token
        """), 'duplicate token "0" in vocab', 1, 15),
    Case("declare-builtin-name", base("""
        const min = 3
        """), "'min' is a built-in name", 5, 7),
    Case("declare-input-name", base("""
        var token: cat 2 = 0
        """), "'token' is a built-in name", 5, 5),

    # ---- type errors ---------------------------------------------------------------------
    Case("type-set-variable-to-categorical", base("""
        var s: set 3 = {}
        mlp:
            x = s
        """), "type error: 'x' is cat 2 but the value is a set", 7, 9),
    Case("type-set-literal-to-categorical", base("""
        mlp:
            x = {1}
        """), "type error: 'x' is cat 2 but the value is a set", 6, 9),
    Case("type-float-to-categorical", base("""
        mlp:
            x = 0.5
        """), "type error: 'x' is cat 2 but the value is a number", 6, 9),
    Case("type-numerical-variable-to-categorical", base("""
        var f: num [0, 0.5, 1] = 0
        mlp:
            x = f
        """), "type error: 'x' is cat 2 but the value is a number", 7, 9),
    Case("type-division-to-categorical", base("""
        mlp:
            x = x / 2
        """), "type error: 'x' is cat 2 but the value is a number", 6, 9),
    Case("type-compare-set-with-number", base("""
        var s: set 3 = {}
        mlp:
            if s == 1:
                x = 0
        """), "type error: cannot compare a set with an integer", 7, 8),
    Case("type-order-set", base("""
        var s: set 3 = {}
        mlp:
            if s < 1:
                x = 0
        """), "type error: '<' needs numbers, not a set", 7, 8),
    Case("type-in-number", base("""
        mlp:
            if 1 in x:
                x = 0
        """), "type error: 'in' needs a set or a collection on the right, not an integer",
         6, 13),
    Case("type-float-member-of-set", base("""
        var s: set 2 = {}
        mlp:
            if 0.5 in s:
                x = 0
        """), "only integers can be members of a set, not a number", 7, 8),
    Case("type-set-plus-number", base("""
        var s: set 3 = {}
        mlp:
            s = s + 1
        """), "type error: '+' between a set and an integer", 7, 9),
    Case("type-set-times-number", base("""
        var s: set 3 = {}
        mlp:
            x = s * 2
        """), "type error: '*' between a set and an integer", 7, 9),
    Case("type-xor-float", base("""
        mlp:
            x = x ^ 0.5
        """), "type error: '^' needs integers or booleans", 6, 9),
    Case("type-branches-differ", base("""
        var s: set 2 = {}
        mlp:
            x = s if x == 1 else 0
        """), "the two branches give a set and an integer", 7, 9),
    Case("type-set-as-condition", base("""
        var s: set 2 = {}
        mlp:
            if s:
                x = 0
        """), "an 'if' condition must be a boolean, not a set", 7, 8),
    Case("type-index-a-set", base("""
        var s: set 2 = {}
        mlp:
            x = s[0]
        """), "only tables can be indexed, not a set", 7, 9),
    Case("type-float-index", base("""
        const T = [1, 0]
        mlp:
            x = T[0.5]
        """), "an index must be an integer, not a number", 7, 11),
    Case("type-len-of-number", base("""
        mlp:
            x = len(x)
        """), "'len' needs a set or a collection, not an integer", 6, 9),
    Case("type-function-as-value", base("""
        def f(a):
            return a
        mlp:
            x = f
        """), "'f' is a function: call it", 8, 9),
    Case("type-enum-as-value", base("""
        enum Color { RED, GREEN }
        mlp:
            x = Color
        """), "'Color' is an enum type, not a value", 7, 9),
    Case("type-numerical-type-empty", base("""
        var f: num {} = 0
        """), "a numerical type needs a non-empty set of numbers", 5, 12),
    Case("type-empty-categorical", base("""
        var y: cat 0 = 0
        """), "a categorical range must be a positive integer, got 0", 5, 12),

    # ---- heads ---------------------------------------------------------------------------
    Case("head-query-key-range-mismatch-eq", base("""
        var k: cat 3 = 0
        var q: cat 4 = 0
        head h = x where k == q
        mlp:
            x = h
        """), "query/key range mismatch: query 'q' ranges over 4 values, key 'k' over 3",
         7, 23),
    Case("head-query-key-range-mismatch-in", base("""
        var k: cat 3 = 0
        var q: set 4 = {}
        head h = x where k in q
        mlp:
            x = h
        """), "query/key range mismatch: query 'q' ranges over 4 values, key 'k' over 3",
         7, 23),
    Case("head-eq-with-set-query", base("""
        var k: cat 3 = 0
        var q: set 3 = {}
        head h = x where k == q
        mlp:
            x = h
        """), "'key == query' needs a categorical query", 7, 23),
    Case("head-numerical-key", base("""
        var f: num [0, 1] = 0
        head h = x where f == x
        """), "a head's key must be categorical", 6, 18),
    Case("head-categorical-output-range", base("""
        head h: cat 3 = x at -1
        mlp:
            x = h
        """), "categorical head output range (cat 3) differs from its value's range", 5, 9),
    Case("head-numerical-without-values", base("""
        var f: num [0, 1] = token
        var k: bool = 1
        head h = f where k == k
        mlp:
            x = round(h)
        """), "numerical head 'h' averages over several positions: declare its output values",
         7, 6),
    Case("head-numerical-several-offsets", base("""
        var f: num [0, 1] = token
        head avg = f at {-1, -2}
        mlp:
            x = round(avg)
        """), "numerical head 'avg' averages over several positions", 6, 6),
    Case("head-set-value", base("""
        var s: set 2 = {}
        head h = s at -1
        """), "a head's value must be categorical or numerical; 's' is a set", 6, 10),
    Case("head-value-is-a-head", base("""
        head h = x at -1
        head g = h at -1
        """), "a head's value must be a variable, not head 'h'", 6, 10),
    Case("head-float-offset", base("""
        head h = x at 0.5
        """), "relative offsets must be an integer or a set of integers", 5, 15),

    # ---- writes --------------------------------------------------------------------------
    Case("write-out-of-range-categorical", base("""
        mlp:
            x = 2
        """), "value 2 is out of range for 'x' (cat 2)", 6, 9),
    Case("write-out-of-range-numerical", base("""
        var f: num [0, 0.5, 1] = 0
        mlp:
            f = 0.25
        """), "value 0.25 is out of range for 'f'", 7, 9),
    Case("write-out-of-range-set", base("""
        var s: set 3 of [{}, {0}] = {}
        mlp:
            s = {1}
        """), "value {1} is out of range for 's'", 7, 9),
    Case("write-set-element-outside-range", base("""
        var s: set 3 = {}
        mlp:
            s = {5}
        """), "is out of range for 's' (set 3", 7, 9),
    Case("write-to-head", base("""
        head h = x at -1
        mlp:
            h = 1
        """), "cannot write to head 'h'", 7, 5),
    Case("write-to-constant", base("""
        const A = 1
        mlp:
            A = 0
        """), "cannot assign to 'A': it is a constant or a local", 7, 5),
    Case("write-to-let-local", base("""
        mlp:
            let a = x
            a = 1
        """), "cannot assign to 'a': it is a constant or a local", 7, 5),
    Case("output-default-out-of-range", prog("""
        vocab "0" "1"
        output x at last default 5
        max_layers 1
        var x: cat 2 = token
        """), "output default 5 is not a value of 'x' (cat 2)", 2, 26),

    # ---- halting -------------------------------------------------------------------------
    Case("halt-on-unknown-variable", prog("""
        vocab "0" "1"
        output x at last
        halt when done == 1
        var x: cat 2 = token
        """), "undefined name 'done'", 3, 11),
    Case("halt-on-head", prog("""
        vocab "0" "1"
        output x at last
        halt when h == 1
        var x: cat 2 = token
        head h = x at -1
        mlp:
            x = h
        """), "cannot read head 'h'", 3, 11),
    Case("halt-on-value-outside-range", prog("""
        vocab "0" "1"
        output x at last
        halt when done == 3
        var x: cat 2 = token
        var done: bool = 0
        """), "3 is not a value of 'done' (cat 2)", 3, 19),
    Case("mlp-compare-value-outside-range", base("""
        mlp:
            if x == 5:
                x = 0
        """), "5 is not a value of 'x' (cat 2), so this comparison is decided in advance", 6, 13),
    Case("output-filter-value-outside-range", prog("""
        vocab "0" "1"
        output x where x != 2
        max_layers 1
        var x: cat 2 = token
        """), "2 is not a value of 'x' (cat 2)", 2, 21),
    Case("halt-on-a-set", prog("""
        vocab "0" "1"
        output x at last
        halt when s
        var x: cat 2 = token
        var s: set 2 = {}
        """), "the halting condition must be a boolean, not a set", 3, 11),
    Case("output-of-a-head", prog("""
        vocab "0" "1"
        output h at last
        max_layers 1
        var x: cat 2 = token
        head h = x at -1
        mlp:
            x = h
        """), "output cannot read head 'h'", 2, 8),

    # ---- missing program-level declarations ----------------------------------------------
    Case("program-without-output", prog("""
        vocab "0" "1"
        max_layers 1
        var x: cat 2 = token
        mlp:
            x = 1 - x
        """), "program has no 'output' declaration", 1, 1),
    Case("program-without-vocab", prog("""
        output x at last
        max_layers 1
        var x: cat 2 = 0
        """), "program has no 'vocab' declaration", 1, 1),
    Case("empty-program", "", "program has no 'vocab' declaration", 1, 1),
    Case("program-without-halt-or-max-layers", prog("""
        vocab "0" "1"
        output x at last
        var x: cat 2 = token
        """), "program has no 'halt when ...' and no 'max_layers N'", 1, 1),
    Case("max-layers-zero", prog("""
        vocab "0" "1"
        output x at last
        max_layers 0
        var x: cat 2 = token
        """), "max_layers must be a positive integer, got 0", 3, 12),
    Case("input-placed-twice", prog("""
        vocab "0" "1"
        input words words
        output x at last
        max_layers 1
        var x: cat 2 = token
        """), "'input' must place the input exactly once", 2, 1),

    # ---- helper functions ----------------------------------------------------------------
    Case("return-outside-function", base("""
        mlp:
            return x
        """), "'return' outside a function", 6, 5),
    Case("recursive-helper", base("""
        def f(a):
            return f(a)
        mlp:
            x = f(x)
        """), "recursive call (f -> f): helper functions are inlined and cannot be recursive", 6, 12),
    Case("mutually-recursive-helpers", base("""
        def f(a):
            return g(a)
        def g(a):
            return f(a)
        mlp:
            x = f(x)
        """), "cannot be recursive", 8, 12),
    Case("helper-assigns-variable", base("""
        def f(a):
            x = a
            return a
        mlp:
            x = f(x)
        """), "helper function 'f' cannot assign 'x': helpers are pure", 6, 5),
    Case("helper-falls-off-end", base("""
        def f(a):
            if a == 1:
                return 0
        mlp:
            x = f(x)
        """), "helper function 'f' can reach its end without 'return'", 5, 5),
    Case("helper-wrong-argument-count", base("""
        def f(a):
            return a
        mlp:
            x = f(x, x)
        """), "'f' takes 1 argument(s), got 2", 8, 9),
    Case("call-a-constant", base("""
        const A = 1
        mlp:
            x = A(1)
        """), "'A' is not a function", 7, 9),
    Case("builtin-wrong-argument-count", base("""
        mlp:
            x = abs(x, x)
        """), "'abs' takes 1 argument, got 2", 6, 9),
    Case("let-shadows-variable", base("""
        mlp:
            let x = 1
        """), "local 'x' would shadow a program name", 6, 9),

    # ---- compile-time evaluation: loops, tables, constants -------------------------------
    Case("loop-over-variable", base("""
        mlp:
            for i in x:
                pass
        """), "'for' loop runs over a constant collection", 6, 14),
    Case("comprehension-over-variable", base("""
        mlp:
            x = len([i for i in x])
        """), "comprehension runs over a constant collection", 6, 25),
    Case("for-unpack-too-many", base("""
        mlp:
            for a, b in [(1, 2, 3)]:
                pass
        """), "cannot unpack (1, 2, 3) into 2 names", 6, 17),
    Case("for-unpack-a-number", base("""
        mlp:
            for a, b in [1, 2]:
                pass
        """), "cannot unpack 1 into 2 names", 6, 17),
    Case("table-index-out-of-range", base("""
        const T = [1, 0]
        mlp:
            x = T[2]
        """), "index 2 is out of range for this table", 7, 11),
    Case("table-negative-index", base("""
        const T = [1, 0]
        mlp:
            x = T[-1]
        """), "index -1 is out of range for this table", 7, 11),
    Case("table-index-out-of-range-second-axis", base("""
        const T = [[1, 0], [0, 1]]
        mlp:
            x = T[0][2]
        """), "index 2 is out of range for this table", 7, 14),
    Case("constant-division-by-zero", base("""
        const Z = 0
        const A = 1 / Z
        """), "division by zero", 6, 11),
    Case("constant-modulo-by-zero", base("""
        const A = 5 % (1 - 1)
        """), "division by zero", 5, 11),
    Case("range-with-float", base("""
        const R = 1..2.5
        """), "a range 'a..b' needs two integers known at compile time", 5, 11),
    Case("constant-reads-variable", base("""
        const A = x + 1
        """), "this needs a value known at compile time, but 'x' is a variable", 5, 11),

    # ---- the input: token, position, initialisers ----------------------------------------
    Case("token-read-in-mlp", base("""
        mlp:
            x = token
        """), "'token' can only be read in a variable's initialiser", 6, 9),
    Case("position-read-in-halt", prog("""
        vocab "0" "1"
        output x at last
        halt when position == 1
        var x: cat 2 = token
        """), "'position' can only be read in a variable's initialiser", 3, 11),
    Case("initialiser-reads-variable", base("""
        var y: cat 2 = x
        mlp:
            x = y
        """), "an initialiser cannot read 'x'", 5, 16),
    Case("initialiser-reads-token-and-position", base("""
        var y: cat 300 = token + position
        """), "an initialiser may read 'token' or 'position', not both", 5, 18),
    Case("initialiser-out-of-range-for-a-token", base("""
        var y: cat 2 = 2 if token == "1" else 0
        mlp:
            x = y
        """), 'initialiser gives 2 for token "1", which is not a value of \'y\'', 5, 16),
    Case("initialiser-default-not-a-value", base("""
        var f: num [1, 2]
        """), "'f' has no initial value and its default 0.0 is not one of its values", 5, 1),
    Case("token-literal-not-in-vocab", base("""
        var y: bool = token == "2"
        mlp:
            x = y
        """), '"2" is not in the vocabulary', 5, 24, note="the vocab is: 0 1"),
    Case("framing-token-not-in-vocab", prog("""
        vocab "0" "1"
        input "<s>" words
        output x at last
        max_layers 1
        var x: cat 2 = token
        """), '"<s>" is not in the vocabulary', 2, 7),
]


_BY_ID = case_table(CASES)


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_program_is_rejected_with_a_located_message(case: Case):
    assert_rejected_with_a_located_message(case)


# ---- the command line -----------------------------------------------------------------------

@pytest.mark.parametrize("case", case_params(_BY_ID[i] for i in [
    "undefined-variable-did-you-mean", "type-set-variable-to-categorical",
    "head-query-key-range-mismatch-eq"]))
def test_check_command_reports_bad_program(case: Case, tmp_path):
    assert_check_command_reports(case, tmp_path)


# ---- warnings are not errors ----------------------------------------------------------------

def test_unused_variables_and_heads_are_warnings_not_errors():
    program = check_source(prog("""
        vocab "0" "1"
        output x at last
        max_layers 1
        var x: cat 2 = token
        var spare: cat 3 = 0
        head peek = x at -1
        mlp:
            x = 1 - x
        """), "ok.alta")
    found = {(w.span.line, w.message) for w in program.warnings}
    assert all(w.severity == "warning" for w in program.warnings)
    assert found == {(5, "variable 'spare' is never read"),
                     (6, "head 'peek' is never read by the MLP")}
    assert program.warnings[0].format().startswith("ok.alta:5:1: warning: ")


def test_comparison_that_never_holds_warns_in_generic_code():
    # Written as a literal it is an error (cases "mlp-compare-value-outside-range" and
    # "halt-on-value-outside-range"); from a loop variable or a helper's argument, code that is
    # generic by construction, only a warning.
    program = check_source(base("""
        def is_x(b):
            return x == b
        mlp:
            for k in 0..2:
                if x == k:
                    x = 0
            if is_x(5):
                x = 1
        """), "ok.alta")
    found = [(w.span.line, w.span.column, w.message) for w in program.warnings]
    generic = ", so this comparison is decided in advance (here, in code unrolled or inlined " \
        "at compile time)"
    assert found == [(9, 17, "2 is not a value of 'x' (cat 2)" + generic),
                     (6, 17, "5 is not a value of 'x' (cat 2)" + generic)]


# ---- valid programs the checker wrongly rejects ---------------------------------------------

@pytest.mark.parametrize("source", [
    pytest.param(base("""
        var f: num {0, 0.5, 1} = 0
        mlp:
            x = round(f)
        """), id="numerical-type-as-set-literal-with-floats"),
    pytest.param(base("""
        const T = [[1, 0], [0, 1]]
        mlp:
            x = T[x][x]
        """), id="two-dimensional-table-indexed-at-run-time"),
    pytest.param(base("""
        var f: num [0, 0.5, 1] = 0
        const T = [[1, 0], [0, 1]]
        mlp:
            x = T[0][x]
            f = 0.5
        """), id="numerical-type-as-list-and-constant-first-index"),
])
def test_valid_program_is_accepted(source: str):
    check_source(source, "ok.alta")


def test_uncalled_helper_is_a_warning():
    # Helpers are checked where they are inlined; one nobody calls is flagged, not ignored.
    program = check_source(base("""
        def f(a):
            return a + nothing
        """), "ok.alta")
    [warning] = [w for w in program.warnings if "helper" in w.message]
    assert "'f' is never called" in warning.message and warning.span.line == 5


# ---- enums may be declared after the constants that use them --------------------------------

def test_enum_declared_after_a_constant_that_uses_it():
    source = prog("""
        vocab "0" "1" "2"
        output phase
        max_layers 1
        const START = [LOW, HIGH, HIGH]      # per token
        const LAST = max(START)
        var phase: cat Level = START[0] if token == "0" else LAST
        enum Level {LOW, HIGH}
    """)
    program = check_source(source, "t.alta")
    assert program.variable("phase").type == ir.Categorical(2, ("LOW", "HIGH"))
    assert run(program, ["0 1 2 0"]).outputs == ("LOW HIGH HIGH LOW",)


def test_constant_used_before_its_declaration_says_so():
    source = BASE + prog("""
        const A = B + 1
        const B = 2
    """)
    assert check_error(source) == (5, 11, "constant 'B' is used before its declaration on "
                                          "line 6: a constant may only use constants declared "
                                          "before it")


# ---- a comparison that can never hold is an error wherever it is written --------------------

NEVER = "2 is not a value of 'x' (cat 2), so this comparison is decided in advance"


@pytest.mark.parametrize("source, line, column", [
    pytest.param(prog("""
        vocab "0" "1"
        output x where x == 2
        max_layers 1
        var x: cat 2 = token
    """), 2, 21, id="output-filter"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        halt when x != 2
        var x: cat 2 = token
    """), 3, 16, id="halting"),
    pytest.param(prog("""
        vocab "0" "1"
        output x
        max_layers 1
        var x: cat 2 = token
        mlp:
            if x == 2:
                x = 0
    """), 6, 13, id="mlp"),
    pytest.param(prog("""
        vocab "0" "1"
        output y
        max_layers 1
        var x: cat 2 = token
        var y: bool = 0
        mlp:
            y = 2 == x
    """), 7, 9, id="mlp-value-on-the-left"),
])
def test_comparison_that_never_holds_is_an_error_everywhere(source, line, column):
    assert check_error(source) == (line, column, NEVER)


# ---- tokens and enum members are not interchangeable ----------------------------------------

LABELS = prog("""
    vocab "a" "b"
    output t
    max_layers 1
    enum Color {RED, GREEN}
    enum Size {SMALL, LARGE}
    var t: vocab = token
    var c: cat Color = RED
""")


@pytest.mark.parametrize("body, line, column, message", [
    ('mlp:\n    c = "a"\n', 9, 9,
     "type error: \"a\" is a token (vocab), but 'c' holds members of enum Color"),
    ('mlp:\n    c = GREEN if t == "a" else "b"\n', 9, 32,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
    ('var d: cat Color = "b"\n', 8, 20,
     "type error: \"b\" is a token (vocab), but 'd' holds members of enum Color"),
    ("mlp:\n    t = GREEN\n", 9, 9,
     "type error: 'GREEN' is a member of enum Color, but 't' holds tokens (vocab)"),
    ("mlp:\n    c = LARGE\n", 9, 9,
     "type error: 'LARGE' is a member of enum Size, but 'c' holds members of enum Color"),
    ('mlp:\n    if c == "b":\n        t = "a"\n', 9, 13,
     "type error: \"b\" is a token (vocab), but 'c' holds members of enum Color"),
])
def test_token_where_an_enum_member_belongs_is_a_type_error(body, line, column, message):
    assert check_error(LABELS + body) == (line, column, message)


def test_tokens_and_members_where_they_belong_are_fine():
    # Only values written as labels are checked: reads are integers like any categorical
    # value, so copying one categorical variable into another is not a label error.
    program = check_source(LABELS + prog("""
        var n: cat 5 = token            # a plain categorical may hold token ids
        var d: cat Color = token
        mlp:
            c = GREEN if t == "b" else RED
            t = "a" if c == GREEN else t
            n = "b"
            d = t
    """), "t.alta")
    # parallel assignment: `c == GREEN` reads c as it was before the MLP (RED), so t stays
    assert run(program, ["a b b"]).outputs == ("a b b",)


# ---- compile-time evaluation: comprehensions, constants, helpers, unrolled loops, lets ------

def test_comprehensions_ranges_and_constant_folding():
    src = f"""
        program t
        {vocab_line(20)}
        input words
        output a
        max_layers 1
        const N = 20
        const SQUARES = [v * v for v in 0..N - 1]
        const ODD_CUBES = [v * v * v for v in 0..N - 1 if v % 2 == 1]
        const PAIRS = [(v, (v * 7 + 3) % 11) for v in 0..N - 1]
        const SWAPPED = [b * 100 + a for a, b in PAIRS if a != b]
        const EVENS = {{v for v in 0..N - 1 if v % 2 == 0}}
        const GRID = [[r * c for c in 0..4] for r in 0..3]
        const JOINED = [len(ODD_CUBES), len(EVENS), min(SQUARES), max(SWAPPED)] + [-1, -2]
        const TOTAL = len(PAIRS) * 2 - GRID[3][4] + JOINED[1]
        var x: cat N = token
        var a: cat 400 = 0
        var b: cat 8000 = 0
        var c: cat 2000 = 0
        var d: bool = false
        var e: cat 2000 = 0
        var f: cat 5 = 0
        mlp:
            a = SQUARES[x]
            b = ODD_CUBES[x // 2]
            c = SWAPPED[x % len(SWAPPED)]
            d = x in EVENS
            e = JOINED[x % 4] + TOTAL
            f = GRID[2][x % 5] % 5
        """
    n = 20
    squares = [v * v for v in range(n)]
    odd_cubes = [v ** 3 for v in range(n) if v % 2 == 1]
    pairs = [(v, (v * 7 + 3) % 11) for v in range(n)]
    swapped = [b * 100 + a for a, b in pairs if a != b]
    evens = {v for v in range(n) if v % 2 == 0}
    grid = [[r * c for c in range(5)] for r in range(4)]
    joined = [len(odd_cubes), len(evens), min(squares), max(swapped), -1, -2]
    total = len(pairs) * 2 - grid[3][4] + joined[1]
    rng = random.Random(10)
    inputs = random_word_inputs(rng, 30, n, max_len=12)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "a", b) == [squares[x] for x in xs]
        assert per_position(result, "b", b) == [odd_cubes[x // 2] for x in xs]
        assert per_position(result, "c", b) == [swapped[x % len(swapped)] for x in xs]
        assert per_position(result, "d", b) == [int(x in evens) for x in xs]
        assert per_position(result, "e", b) == [joined[x % 4] + total for x in xs]
        assert per_position(result, "f", b) == [grid[2][x % 5] % 5 for x in xs]


def test_helper_functions_with_early_returns_and_loops():
    rng = random.Random(11)
    pairs = [(a, rng.randrange(7)) for a in range(20) if rng.random() < 0.6]
    src = f"""
        program helpers
        {vocab_line(20)}
        input words
        output y
        max_layers 1
        const PAIRS = {pairs}
        var x: cat 20 = token
        var p: cat 20 = position
        var y: cat 100 = 0
        var z: cat 100 = 0
        var w: cat 100 = 0

        def first_divisor(n):
            for d in 2..9:
                if n % d == 0:
                    return d
            return 0

        def classify(n, m):
            let s = n + m
            if s > 25:
                return 1
            elif s > 12:
                return first_divisor(s) + 2
            else:
                for k, v in PAIRS:
                    if k == n:
                        return v + 20
            return 99

        def clamp(v, lo, hi):
            return max(lo, min(v, hi))

        def pick(flag, a, b):
            if flag:
                return a
            pass
            return b

        mlp:
            y = classify(x, p)
            z = clamp(x * 3 - p, 5, 40) + first_divisor(7 * 3)
            w = pick(x > p, classify(p, x), clamp(x, 0, 3))
        """
    lookup = dict(pairs)

    def first_divisor(n):
        for d in range(2, 10):
            if n % d == 0:
                return d
        return 0

    def classify(n, m):
        s = n + m
        if s > 25:
            return 1
        if s > 12:
            return first_divisor(s) + 2
        if n in lookup:
            return lookup[n] + 20
        return 99

    inputs = random_word_inputs(rng, 40, 20, max_len=20)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [classify(x, i) for i, x in enumerate(xs)]
        assert per_position(result, "z", b) == [max(5, min(x * 3 - i, 40)) + 3
                                                for i, x in enumerate(xs)]
        assert per_position(result, "w", b) == [classify(i, x) if x > i else min(x, 3)
                                                for i, x in enumerate(xs)]


def test_for_loops_over_constant_tuples_unroll():
    rng = random.Random(12)
    for _ in range(5):
        keys = rng.sample(range(30), 12)
        table = [(k, rng.randrange(50), rng.random() < 0.5) for k in keys]
        cuts = sorted(rng.sample(range(1, 30), 3))
        table_text = ", ".join(f"({k}, {v}, {'true' if f else 'false'})" for k, v, f in table)
        ranges = [(0, 0, cuts[0] - 1), (1, cuts[0], cuts[1] - 1), (2, cuts[1], cuts[2] - 1),
                  (3, cuts[2], 29)]
        src = f"""
            program loops
            {vocab_line(30)}
            input words
            output y
            max_layers 1
            const TABLE = [{table_text}]
            const RANGES = {ranges}
            var x: cat 30 = token
            var y: cat 50 = 49
            var flag: bool = false
            var band: cat 4 = 0
            var hits: cat 10 = 0
            mlp:
                for key, value, f in TABLE:
                    if x == key:
                        y = value
                        flag = f
                for k, lo, hi in RANGES:
                    if lo <= x and x <= hi:
                        band = k
                for a in 0..2:
                    for bound in [5, 10, 20]:
                        if a == 1 and x < bound:
                            hits = bound // 5
            """
        inputs = random_word_inputs(rng, 10, 30)
        result = run(check(src), inputs)
        values = {k: (v, f) for k, v, f in table}
        for b, text in enumerate(inputs):
            xs = [int(t) for t in text.split()]
            assert per_position(result, "y", b) == [values.get(x, (49, False))[0] for x in xs]
            assert per_position(result, "flag", b) == [int(values.get(x, (0, False))[1])
                                                       for x in xs]
            assert per_position(result, "band", b) == [
                next(k for k, lo, hi in ranges if lo <= x <= hi) for x in xs]
            # The last write that runs wins (bounds are tried in increasing order).
            want_hits = []
            for x in xs:
                h = 0
                for bound in [5, 10, 20]:
                    if x < bound:
                        h = bound // 5
                want_hits.append(h)
            assert per_position(result, "hits", b) == want_hits


def test_let_bindings_are_scoped_to_their_block_and_loop_iteration():
    src = f"""
        program lets
        {vocab_line(10)}
        input words
        output y
        max_layers 1
        var x: cat 10 = token
        var p: cat 16 = position
        var y: cat 100 = 0
        var z: cat 100 = 0
        mlp:
            let a = x
            let b = a + 1
            if b > 3:
                let c = b * 2
                y = c + p
            else:
                let c = 1
                y = c
            for i in 0..2:
                let t = x + i
                if t == 5:
                    z = i + 10
        """
    rng = random.Random(29)
    inputs = random_word_inputs(rng, 30, 10)
    result = run(check(src), inputs)
    for b, text in enumerate(inputs):
        xs = [int(t) for t in text.split()]
        assert per_position(result, "y", b) == [(x + 1) * 2 + i if x + 1 > 3 else 1
                                                for i, x in enumerate(xs)]
        assert per_position(result, "z", b) == [5 - x + 10 if 3 <= x <= 5 else 0 for x in xs]
