"""The compiled Transformer reports the interpreter's undefined reads, from its own activations.

Where the interpreter stops with "reads head 'h', whose output is undefined here ... at layer
L, position P, input '...'", the compiled model (in memory, from a checkpoint without the
source, dense or structured) must stop with the same error; elsewhere both give the same
outputs. The oracle is always the interpreter, on hand-written cases and on random programs
whose head reads drop their guards.
"""

from __future__ import annotations

import textwrap

import pytest
from helpers import alta_main, check, compiled_outcomes, interpreted
from program_generator import generate_faulty

from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.errors import AltaRuntimeError
from alta.interpreter import run

# ---- hand-written cases ------------------------------------------------------------------------

OR_READS = """\
    program or_reads
    vocab "0" "1"
    output parity at last
    halt when done == 1
    var parity: cat 2 = token
    var done: bool = 0
    head parity_left = parity at -1
    head done_left = done at -1
    mlp:
        if done_left == 1 or parity_left == 0:
            parity = parity ^ parity_left
        done = 1
"""

SEVERAL_EQUAL = """\
    program several_equal
    vocab "a" "b" "x"
    output y
    max_layers 1
    var tok: vocab = token
    var y: vocab = token
    head same = tok where tok == tok
    mlp:
        y = same
"""

NUMERICAL_NONE = """\
    program numerical_none
    vocab "a" "b"
    output y
    max_layers 1
    var is_b: num {0, 1} = token == "b"
    var key: bool = token == "b"
    var want: bool = 1
    var y: cat 3 = 2
    head share: num {0, 0.5, 1} = is_b where key == want
    mlp:
        y = round(share * 2)
"""

UNUSED_LET = """\
    program unused_let
    vocab "0" "1"
    output y
    max_layers 1
    var x: cat 2 = token
    var y: cat 2 = 0
    head right = x at 1
    mlp:
        if x == 0:
            let unused = right
            y = 1
"""

SHORT_CIRCUIT = """\
    program short_circuit
    vocab "0" "1"
    output y
    max_layers 1
    var x: cat 2 = token
    var first: bool = 0
    var y: cat 2 = 0
    head left = x at -1
    head left_exists = x at -1
    mlp:
        if x == 1 and left == 1:
            y = 1
"""

CASES = {
    # (source, inputs): every case has inputs with and without an undefined read
    "or_reads": (OR_READS, ["1 0", "1", "0", "0 1 1", ""]),
    "several_equal": (SEVERAL_EQUAL, ["a b x", "a a", "b a b", "x", "a b b a"]),
    "numerical_none": (NUMERICAL_NONE, ["a a", "b", "a b", "b b a", "a"]),
    "unused_let": (UNUSED_LET, ["0", "1 0", "0 1 1", "1", "0 1"]),
    "short_circuit": (SHORT_CIRCUIT, ["0 1", "1 1", "0 0 1", "1", "0"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_model_reports_what_the_interpreter_reports(name):
    source, texts = CASES[name]
    program = check(source)
    compiled = compile_program(program)
    want = [interpreted(program, t) for t in texts]
    assert compiled_outcomes(compiled, texts) == want
    assert compiled_outcomes(compiled, texts, load_model(compiled, structured=False)) == want
    if name != "short_circuit":  # the case is an undefined read somewhere
        assert any(w[0] == "error" for w in want) and any(w[0] == "ok" for w in want)


def test_the_batch_reports_the_interpreters_first_error():
    program = check(OR_READS)
    compiled = compile_program(program)
    texts = ["0 1 1", "1 1 0", "1"]
    with pytest.raises(AltaRuntimeError) as interpreted_error:
        run(program, texts)
    with pytest.raises(AltaRuntimeError) as compiled_error:
        run_compiled(compiled, texts)
    assert str(compiled_error.value) == str(interpreted_error.value)
    assert "at layer 1, position 0, input '0 1 1'" in str(compiled_error.value)


def test_a_checkpoint_reports_the_error_without_its_source(tmp_path):
    path = tmp_path / "or_reads.alta"
    path.write_text(textwrap.dedent(OR_READS))
    model = tmp_path / "or_reads.safetensors"
    assert alta_main("compile", path, "-o", model).returncode == 0
    expected = alta_main("run", path, "1 0")
    path.unlink()
    done = alta_main("run", model, "1 0")
    assert done.returncode == expected.returncode == 1
    assert done.stderr == expected.stderr
    assert "or_reads.alta:10:8: error: reads head 'done_left'" in done.stderr
    assert "at layer 1, position 0, input '1 0'" in done.stderr and "Traceback" not in done.stderr


def test_allow_undefined_prints_the_raw_outputs_with_a_warning(tmp_path):
    path = tmp_path / "several_equal.alta"
    path.write_text(textwrap.dedent(SEVERAL_EQUAL))
    done = alta_main("run", path, "--backend", "compiled", "--allow-undefined", "a b x", "a a")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "a b x"  # defined everywhere: the real answer
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr.count("warning: reads head 'same'") == 1
    assert "input 'a a'" in done.stderr
    refused = alta_main("run", path, "--allow-undefined", "a a")
    assert refused.returncode == 1 and "--backend compiled" in refused.stderr


# ---- random programs whose head reads may be undefined ------------------------------------

FAULTY_PROGRAMS = 24
GROUP = 12


@pytest.mark.parametrize("first", range(0, FAULTY_PROGRAMS, GROUP))
def test_random_programs_fail_where_the_interpreter_fails(first):
    """On every input: the same error (message, layer, position, line and column) or the same
    output, layer count and halting, one batched compiled run against the interpreter per
    input."""
    errors = clean = 0
    for seed in range(first, first + GROUP):
        generated, program = generate_faulty(seed)
        compiled = compile_program(program)
        texts = list(generated.inputs)
        want = [interpreted(program, t) for t in texts]
        got = compiled_outcomes(compiled, texts)
        for text, w, g in zip(texts, want, got):
            assert g == w, f"seed {seed}, input {text!r}:\n{generated.source}"
        errors += sum(w[0] == "error" for w in want)
        clean += sum(w[0] == "ok" for w in want)
    assert errors >= GROUP and clean >= GROUP, (errors, clean)  # both kinds, many times


def test_verify_checks_the_errors_too():
    from dataclasses import replace

    import numpy as np

    from alta.verify import verify

    program = check(OR_READS)
    compiled = compile_program(program)
    texts = ["1 0", "0", "0 1 1", "1 1 1 0", ""]
    report = verify(compiled, texts)
    assert report.ok and report.comparisons > 0
    # Without its sinks the detector sees every head select several positions: a fault
    # where the interpreter has none, which verify must report.
    attention = compiled.parameters.attention
    attention = replace(attention, sink=np.full_like(attention.sink, -1e9))
    broken = replace(compiled, parameters=replace(compiled.parameters, attention=attention))
    # (The structured path: where no key is selected, the dense path's softmax over
    # scores of -1e9 still flags this batch's faults, so verify finds no divergence.)
    report = verify(broken, texts, model=load_model(broken))
    assert not report.ok and report.divergence.stage in ("fault", "halting")
