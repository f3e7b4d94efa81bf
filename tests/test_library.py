"""Every program in programs/: its in-file examples on both back ends, inputs that fill its
declared max_length on both back ends and against its task's oracle, the oracle on sampled
inputs with the interpreter, and interpreter == compiled at every layer and position on a
smaller sample (what `alta verify` checks, on more inputs, in the benchmarks' runs)."""

import random

import numpy as np
import pytest
from helpers import LIBRARY, library_program

from alta.compiled import run_compiled
from alta.framing import encode, encode_batch, split_input
from alta.interpreter import run
from alta.sampling import longest_input
from alta.tasks import find_task, in_file_examples
from alta.verify import verify

# Inputs per program: interpreted against the oracle, compiled against the interpreter.
INTERPRETED, COMPILED = 300, 40


def task(name):
    found = find_task(library_program(name))
    assert found is not None, f"the task module of {name} (sampler and oracle) is missing"
    return found


@pytest.mark.parametrize("name", LIBRARY)
def test_program_explains_itself(name):
    program = library_program(name)
    header = program.source.text.split("program ")[0]
    assert len([line for line in header.splitlines() if line.startswith("#")]) >= 3, \
        "a header comment explaining the algorithm"
    assert len(in_file_examples(program)) >= 3


def inputs_of_max_length(name: str, count: int = 2, tries: int = 3000) -> list[str]:
    """Up to `count` inputs from the task's sampler that fill the declared max_length exactly
    (framing included): drawn at the task's own size and, where the size counts input pieces
    (no size_of), at the most pieces that fit."""
    program, sampler = library_program(name), task(name)
    if program.max_length is None:
        return []
    fixed = sum(item.count for item in program.framing if item.kind == "token")
    sizes = (sampler.size,) if sampler.size_of else (sampler.size, longest_input(program))
    rng, found = random.Random(7), []
    for size in sizes:
        for _ in range(tries):
            text = sampler.sample(rng, size)
            if len(split_input(program, text)) + fixed == program.max_length and \
                    text not in found:
                found.append(text)
                if len(found) == count:
                    return found
    return found


@pytest.mark.parametrize("name", LIBRARY)
def test_in_file_examples_and_inputs_of_max_length_on_both_back_ends(name, compiled):
    """The examples against the oracle and both back ends; inputs that fill max_length
    exactly against the oracle, the interpreter against it, and the compiled model against
    the interpreter (outputs, layer counts, halting). One compiled batch holds both."""
    model = compiled(name)
    examples = in_file_examples(model.program)
    inputs = [text for text, _ in examples]
    expected = [output for _, output in examples]
    assert [task(name).oracle(text) for text in inputs] == expected, "examples vs the oracle"
    assert list(run(model.program, inputs).outputs) == expected
    longest = inputs_of_max_length(name)
    result = run_compiled(model, inputs + longest)
    assert list(result.outputs[:len(inputs)]) == expected
    if model.program.max_length is None:  # parity: no declared length
        return
    assert longest, "the sampler gives no input of max_length"
    assert {len(encode(model.program, text)) for text in longest} == {model.program.max_length}
    want = run(model.program, longest)
    assert list(want.outputs) == [task(name).oracle(text) for text in longest]
    assert result.outputs[len(inputs):] == want.outputs
    assert np.array_equal(result.layers[len(inputs):], want.layers)
    assert result.halted[len(inputs):].all() and want.halted.all()


@pytest.mark.parametrize("name", LIBRARY)
def test_interpreter_matches_the_oracle(name):
    t = task(name)
    inputs = t.inputs(INTERPRETED, seed=1)
    result = run(library_program(name), inputs)
    assert result.halted.all(), [inputs[b] for b in result.not_halted][:3]
    wrong = [(text, got, t.oracle(text)) for text, got in zip(inputs, result.outputs)
             if got != t.oracle(text)]
    assert not wrong, f"{len(wrong)} of {len(inputs)} wrong, e.g. {wrong[:3]}"


@pytest.mark.parametrize("name", LIBRARY)
def test_compiled_model_matches_the_interpreter_at_every_layer(name, compiled):
    report = verify(compiled(name), task(name).inputs(COMPILED, seed=2))
    assert report.ok, report.divergence
    assert report.comparisons > 0


def test_addition_is_exact_on_40_digit_operands_compiled(compiled):
    """The issue's bar: 40-digit numbers, compiled; carry chains across every place too."""
    import random

    rng = random.Random(40)
    pairs = [(rng.randrange(10**39, 10**40), rng.randrange(10**39, 10**40)) for _ in range(30)]
    pairs += [(10**40 - 1, 10**40 - 1), (10**40 - 1, 1), (1, 10**40 - 1), (5 * 10**39, 5 * 10**39)]
    texts = [f"{a}+{b}" for a, b in pairs]
    result = run_compiled(compiled("addition"), texts)
    assert list(result.outputs) == [str(a + b) for a, b in pairs]
    assert result.halted.all() and set(result.layers.tolist()) == {6}


@pytest.mark.parametrize("name", LIBRARY)
def test_library_inputs_never_type_a_reserved_token(name):
    program = library_program(name)
    task = find_task(program)
    batch = encode_batch(program, task.inputs(60, seed=7))  # raises on a reserved token
    placed = sum(item.count for item in program.framing if item.kind == "token")
    assert (batch.lengths >= placed).all()
