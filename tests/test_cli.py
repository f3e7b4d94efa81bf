"""The `alta` command as a user runs it: output, exit status, help, no tracebacks, no JAX."""

import subprocess
import sys

import pytest

from conftest import PROGRAMS


def alta(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alta.cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_run_prints_one_line_per_input():
    done = alta("run", PROGRAMS / "parity.alta", "1 0 1 1", "1 0 1", "")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1", "0", "0"]


def test_run_reads_inputs_file_and_stdin(tmp_path):
    lines = ["1 1 0", "0", "1 1 1 1 1"]
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(lines) + "\n")
    from_file = alta("run", PROGRAMS / "parity_absolute.alta", "--inputs", path)
    from_stdin = alta("run", PROGRAMS / "parity_absolute.alta", "--inputs", "-",
                      stdin="\n".join(lines))
    assert from_file.stdout.splitlines() == ["0", "0", "1"]
    assert from_stdin.stdout == from_file.stdout


def test_run_reports_inputs_that_do_not_halt():
    done = alta("run", PROGRAMS / "parity.alta", "1 1 1 1", "1", "--max-layers", "2")
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["", "1"]
    assert "did not halt within 2 layers" in done.stderr


def test_trace_shows_every_layer():
    done = alta("run", PROGRAMS / "parity.alta", "1 0 1", "--trace")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("after attention") == 3 and out.count("after the MLP") == 3
    assert "parity_left" in out and "halted after 3 layers" in out
    assert out.splitlines()[-1] == "0"


def test_check_prints_a_summary():
    done = alta("check", PROGRAMS / "parity_sum_mod_2.alta")
    assert done.returncode == 0, done.stderr
    assert "mean of is_start where counted == always" in done.stdout
    assert "(101 values)" in done.stdout
    assert "variables  (4)" in done.stdout and "heads      (1)" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("run", "missing.alta", "1"), "no such file"),
    (("check", "missing.alta"), "no such file"),
    (("run", PROGRAMS / "parity.alta", "1 2"), '"2" is not in the vocabulary'),
    (("run", PROGRAMS / "parity.alta", "--inputs", "nowhere.txt"), "no such inputs file"),
    (("run", PROGRAMS / "parity.alta"), "no inputs"),
    (("run", PROGRAMS / "parity.alta", "1", "0", "--trace"), "--trace shows one input"),
])
def test_bad_input_is_a_message_not_a_traceback(args, message):
    done = alta(*args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_undefined_read_names_line_variable_layer_position_and_input(tmp_path):
    source = (PROGRAMS / "parity.alta").read_text().replace(
        "if done == 0 and done_left == 1:", "if done_left == 1 and done == 0:")
    path = tmp_path / "eager.alta"
    path.write_text(source)
    done = alta("run", path, "1 0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "if done_left" in text)
    assert first.startswith(f"{path}:{line}:")
    assert "done_left" in first and "layer 1" in first and "position 0" in first
    assert "'1 0'" in first


@pytest.mark.parametrize("command", [(), ("check",), ("run",)])
def test_help_is_complete(command):
    done = alta(*command, "--help")
    assert done.returncode == 0
    assert "usage: alta" in done.stdout
    if command == ("run",):
        for flag in ("--inputs", "--max-layers", "--trace"):
            assert flag in done.stdout


def test_checking_and_interpreting_never_import_jax():
    code = ("import sys; from alta.cli import main; "
            f"main(['run', r'{PROGRAMS / 'parity.alta'}', '1 0']); "
            f"main(['check', '-q', r'{PROGRAMS / 'parity.alta'}']); "
            "assert not any(m == 'jax' or m.startswith('jax.') for m in sys.modules), 'jax'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
