"""`alta test`: a program's examples and its task module's oracle, on both back ends.

The oracle of these tests is the task modules' own (programs/NAME.py): a deliberately wrong
example or oracle must be reported on exactly the inputs where it is wrong, and a right one
never."""

import random
import re
import textwrap

import pytest
from helpers import LIBRARY, PROGRAMS

from alta.checker import check_file, check_source
from alta.cli import main
from alta.tasks import find_task, load_task
from alta.testing import example_cases, test_program


@pytest.mark.parametrize("name", LIBRARY)
def test_every_library_program_passes_on_the_interpreter(name, program):
    prog = program(name)
    task = find_task(prog)
    result = test_program(prog, task, samples=30, size=min(task.size, 12),
                          backends=("interpreter",))
    assert result.ok, [o for o in result.outcomes if not o.ok][:3]
    assert len(result.examples) >= 2 and len(result.sampled) == 30
    assert result.score("interpreter", result.sampled) == (30, 30)


def test_example_cases_carry_their_lines():
    prog = check_file(PROGRAMS / "addition.alta")
    lines = prog.source.text.splitlines()
    for case in example_cases(prog):
        line = int(case.origin.rsplit(" ", 1)[1])
        assert f'"{case.text}"' in lines[line - 1] and case.expected in lines[line - 1]


@pytest.fixture()
def wrong_parity(tmp_path):
    """parity.alta with its second example made wrong, and a task module beside it whose
    oracle is wrong on inputs of exactly three bits."""
    source = (PROGRAMS / "parity.alta").read_text()
    wrong = source.replace('# example: "1 0 1" -> 0', '# example: "1 0 1" -> 1')
    assert wrong != source
    (tmp_path / "parity.alta").write_text(wrong)
    (tmp_path / "parity.py").write_text(textwrap.dedent("""\
        SIZE = 6
        UNIT = "bits"

        def sample(rng, size):
            return " ".join(rng.choice("01") for _ in range(rng.randint(0, size)))

        def oracle(text):
            bits = text.split()
            return "wrong" if len(bits) == 3 else str(sum(map(int, bits)) % 2)
        """))
    return tmp_path / "parity.alta"


def test_wrong_examples_and_oracles_fail_exactly_where_they_are_wrong(wrong_parity):
    from alta.compiler import compile_program

    prog = check_file(wrong_parity)
    task = load_task(wrong_parity.with_suffix(".py"))
    result = test_program(prog, task, compile_program(prog), samples=60, seed=4)
    expected_failures = {c.number for c in result.sampled if len(c.text.split()) == 3}
    expected_failures |= {c.number for c in result.examples if c.text == "1 0 1"}
    assert 0 < len(expected_failures) < 30
    for backend in ("interpreter", "compiled"):
        failed = {o.case.number for o in result.outcomes if o.backend == backend and not o.ok}
        assert failed == expected_failures, backend
    assert not result.ok


def test_errors_and_non_halting_inputs_fail_with_their_reason():
    # x reads the head `left`, undefined at the first position: a located run-time error;
    # inputs starting with "b" never halt.
    prog = check_source(textwrap.dedent("""\
        program t
        vocab "a" "b"
        input chars
        max_layers 3
        var x: cat 2 = 0
        var t: vocab = token
        head left: cat 2 = x at -1
        halt when t == "a"
        output x at last
        mlp:
            if t == "b":
                x = left
        # example: "a" -> 0
        """), "t.alta")
    rng = random.Random(0)
    texts = ["a"] + ["".join(rng.choice("ab") for _ in range(rng.randint(1, 4)))
                     for _ in range(30)]
    from alta.testing import Case, _interpreted, _outcomes

    cases = [Case(t, "0", "oracle", k) for k, t in enumerate(texts)]
    reasons = set()
    for outcome in _outcomes(prog, cases, "interpreter", _interpreted):
        text = outcome.case.text
        if text.startswith("b"):  # reads `left` at position 0 in layer 1
            assert re.match(r"t.alta:\d+:\d+: error: .*undefined", outcome.error), outcome
        elif "b" in text:
            assert outcome.error == "did not halt within 3 layers", outcome
        else:
            assert outcome.ok, outcome
        reasons.add(outcome.error.split(":")[0] if outcome.error else "ok")
    assert reasons == {"t.alta", "did not halt within 3 layers", "ok"}


def test_the_command_exits_by_the_result_and_finds_a_task_beside_the_program(
        wrong_parity, capsys):
    assert main(["test", str(wrong_parity), "--samples", "20", "--backend", "interpreter"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "example, line" in out and "expected     1" in out
    assert "from parity.py (up to 6 bits)" in out
    assert main(["test", str(PROGRAMS / "parity.alta"), "--samples", "20",
                 "--max-length", "8"]) == 0
    out = capsys.readouterr().out
    assert "interpreter  examples 4/4   oracle 20/20" in out
    assert "compiled     examples 4/4   oracle 20/20" in out and out.rstrip().endswith("ok")
    assert main(["test", str(PROGRAMS / "parity.alta"), "--samples", "-1"]) == 1
    assert "--samples must be non-negative" in capsys.readouterr().err
