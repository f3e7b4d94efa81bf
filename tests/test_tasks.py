"""Task modules (sampler + oracle beside a program) and in-file examples."""

import random
import textwrap

import pytest
from helpers import PROGRAMS, alta_main

from alta.checker import check_file, check_source
from alta.errors import AltaError
from alta.tasks import find_task, in_file_examples, load_task


def test_in_file_examples_are_read_from_comments():
    program = check_source(textwrap.dedent('''
        # Some program.
        # example: "1 0 1" -> 0
        #example:"" -> 1 2 3
        # not an example: "x" -> y
        program p
        vocab "0" "1"
        max_layers 1
        output x
        var x: cat 2 = token
        mlp:
            x = x
        '''))
    assert in_file_examples(program) == [("1 0 1", "0"), ("", "1 2 3")]


def test_find_task_is_the_module_beside_the_source():
    task = find_task(check_file(PROGRAMS / "addition.alta"))
    assert task is not None and task.unit == "digits per operand" and task.size == 40
    assert task.inputs(20, seed=3) == task.inputs(20, seed=3) != task.inputs(20, seed=4)
    rng = random.Random(0)
    for _ in range(200):  # operands of 1..size digits, no leading zeros
        a, b = task.sample(rng, 5).split("+")
        for n in (a, b):
            assert 1 <= len(n) <= 5 and (n == "0" or not n.startswith("0"))
    assert find_task(check_source('program p\nvocab "a"\nmax_layers 1\noutput x\nvar x: cat 2 = 0\n'
                                  'mlp:\n    x = 0\n')) is None


@pytest.mark.parametrize("text, message", [
    ("def sample(rng, size):\n    return ''\n", "does not define oracle"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("def sample(:\n", "SyntaxError"),
])
def test_broken_task_modules_are_reported(tmp_path, text, message):
    path = tmp_path / "task.py"
    path.write_text(text)
    with pytest.raises(AltaError, match=message) as info:
        load_task(path)
    assert str(path) in str(info.value)  # the message names the module


def test_verify_samples_with_the_task_module():
    done = alta_main("verify", PROGRAMS / "addition.alta", "--samples", "12", "--max-length", "6")
    assert done.returncode == 0, done.stderr
    assert "sampling with addition.py: up to 6 digits per operand" in done.stderr
    assert done.stdout.startswith("ok: interpreter and compiled model agree on 12 inputs")


def test_chars_output_joins_single_characters():
    done = alta_main("run", PROGRAMS / "addition.alta", "789+456", "99999+1")
    assert done.stdout.splitlines() == ["1245", "100000"]
