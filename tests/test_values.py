"""compiler/values.py: the compiler enumerates only the values some input can produce
(defect 6). Programs that only fail on impossible paths compile, and agree with the
interpreter; the values the interpreter produces on the library's sampled inputs are inside
the computed sets, and the static variables' joint values inside the computed rows."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import check, library_program, prog, program_head

from alta import ir, semantics
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.compiler.values import reachable_values
from alta.interpreter import run
from alta.tasks import find_task
from alta.verify import verify

NEVER_ZERO = program_head("1 2 3", "y", name="never_zero") + prog("""
    var d: cat 4 = token + 1
    var y: cat 7 = 0
    head left = d at -1
    mlp:
        y = 6 // d
    """)


PAST_MAX_LENGTH = """
    program past_max_length
    vocab "x"
    max_length 8
    max_layers 1
    output y
    var p: cat 10 = position
    var y: cat 10 = 0
    head left = p at -1
    mlp:
        y = p + 2
    """


BOUNDED_COUNTER = program_head("a b", "y", "max_layers 6", name="bounded_counter") + prog("""
    var c: cat 10 = token
    var y: cat 5 = 0
    head left = c at -1
    mlp:
        if c < 3:
            c = c + 1
        y = [4, 3, 2, 1][c]
    """)


@pytest.mark.parametrize("source, inputs", [
    (NEVER_ZERO, ["1 2 3", "3 3", "2"]),
    (PAST_MAX_LENGTH, ["x", "x x x", "x x x x x x x x"]),
    (BOUNDED_COUNTER, ["a", "a b", "b a b b"]),
], ids=["division-by-a-variable-never-zero", "overflow-past-max-length", "bounded-counter"])
def test_programs_that_fail_only_on_impossible_paths_compile_and_agree(source, inputs):
    program = check(source)
    compiled = compile_program(program)
    rng = random.Random(6)
    vocab = program.vocab
    longest = program.max_length or 12
    inputs = inputs + [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, longest)))
                       for _ in range(60)]
    assert run(program, inputs).outputs == run_compiled(compiled, inputs).outputs
    assert verify(compiled, inputs).ok


WORD_AT_ZERO = """
    program word_at_zero
    vocab "<s>" "a" "b"
    input "<s>" words
    max_length 12
    max_layers 1
    output y
    var tok: vocab = token
    var pos: cat 12 = position
    var y: cat 12 = 0
    head left = tok at -1
    mlp:
        if tok != "<s>":
            y = pos - 1
    """


def test_an_overflow_only_a_word_at_position_0_would_cause_is_no_error():
    """Position 0 always holds the start token, so `pos - 1` never goes below 0 for a word:
    the token and position variables are enumerated together, as inputs can place them."""
    program = check(WORD_AT_ZERO)
    compiled = compile_program(program)
    rng = random.Random(7)
    inputs = [" ".join(rng.choice("ab") for _ in range(rng.randint(0, 11))) for _ in range(80)]
    assert run(program, inputs).outputs == run_compiled(compiled, inputs).outputs
    assert verify(compiled, inputs).ok
    static = reachable_values(program).static
    assert set(static.names) == {"tok", "pos"}
    tok = static.names.index("tok")
    assert {row[1 - tok] for row in static.rows if row[tok] != 0} == set(range(1, 12))
    assert {row[1 - tok] for row in static.rows if row[tok] == 0} == {0}


@pytest.mark.parametrize("name", ["addition", "scan", "subleq", "parity_absolute"])
def test_static_variables_take_only_the_combinations_the_analysis_allows(name):
    """Soundness of the joint values on real runs: at every valid position, the variables no
    MLP path writes hold one of the analysis's rows."""
    program = library_program(name)
    static = reachable_values(program).static
    if static is None:
        pytest.skip(f"{name} has fewer than two static variables")
    result = run(program, find_task(program).inputs(60, seed=4))
    valid = result.batch.valid
    seen = set(zip(*(result.final[n][valid].tolist() for n in static.names)))
    rows = {tuple(semantics.set_to_bits(v) if isinstance(v, frozenset) else v for v in row)
            for row in static.rows}
    assert seen and seen <= rows, sorted(seen - rows)[:5]


def test_reachable_values_of_the_examples():
    values = reachable_values(check(NEVER_ZERO))
    assert values["d"] == (1, 2, 3) and values["y"] == (0, 2, 3, 6)
    assert reachable_values(check(PAST_MAX_LENGTH))["p"] == tuple(range(8))
    assert reachable_values(check(BOUNDED_COUNTER))["c"] == (0, 1, 2, 3)


@pytest.mark.parametrize("name", ["addition", "scan", "subleq", "dyck", "sort_frequency"])
def test_the_interpreter_stays_inside_the_reachable_values(name):
    """Soundness on real runs: every value a variable holds after every layer, and every
    defined head output, is one the analysis allows."""
    program = library_program(name)
    allowed = reachable_values(program)
    result = run(program, find_task(program).inputs(60, seed=3), trace=True)
    valid = result.batch.valid
    states = [(result.initial, {})] + [(r.after_attention, r.undefined) for r in result.trace] \
        + [(r.after_mlp, {}) for r in result.trace]
    for values, undefined in states:
        for name_, array in values.items():
            type_ = program.type_of(name_)
            where = valid & ~undefined.get(name_, np.zeros_like(valid))
            seen = np.unique(array[where])
            if isinstance(type_, ir.SetValued):
                ok = {semantics.set_to_bits(s) for s in allowed[name_]}
                assert set(seen.tolist()) <= ok, name_
            elif isinstance(type_, ir.Numerical):
                assert set(semantics.snap(seen, type_.values).tolist()) <= set(allowed[name_]), \
                    name_
            else:
                assert set(seen.tolist()) <= set(allowed[name_]), name_
