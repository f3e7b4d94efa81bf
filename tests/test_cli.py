"""The `alta` command as a user runs it: output, exit status, help, no tracebacks, no JAX."""


import pytest
from helpers import (
    BASE,
    PROGRAMS,
    alta,
    alta_main,
    assert_check_command_reports,
    case_params,
    load_cases,
    prog,
    run_without_importing,
)

from alta.checker import check_file
from alta.compiler import compile_program
from alta.errors import AltaError


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
    done = alta_main("run", PROGRAMS / "parity.alta", "1 1 1 1", "1", "--max-layers", "2")
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["", "1"]
    assert "did not halt within 2 layers" in done.stderr


def test_trace_shows_every_layer():
    done = alta_main("run", PROGRAMS / "parity.alta", "1 0 1", "--trace")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("after attention") == 3 and out.count("after the MLP") == 3
    assert "parity_left" in out and "halted after 3 layers" in out
    assert out.splitlines()[-1] == "0"


def test_check_prints_a_summary():
    done = alta_main("check", PROGRAMS / "parity_sum_mod_2.alta")
    assert done.returncode == 0, done.stderr
    assert "mean of is_start where counted == 1" in done.stdout
    assert "(101 values)" in done.stdout
    assert "variables  (3)" in done.stdout and "heads      (1)" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("run", "missing.alta", "1"), "no such file"),
    (("check", "missing.alta"), "no such file"),
    (("run", PROGRAMS / "parity.alta", "1 2"), '"2" is not in the vocabulary'),
    (("run", PROGRAMS / "parity.alta", "--inputs", "nowhere.txt"), "no such inputs file"),
    (("run", PROGRAMS / "parity.alta"), "no inputs"),
    (("run", PROGRAMS / "parity.alta", "1", "0", "--trace"), "--trace shows one input"),
])
def test_bad_input_is_a_message_not_a_traceback(args, message):
    done = alta_main(*args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("command", [
    ("check",), ("trace", "-o", "out"), ("coverage", "--samples", "3"), ("experiment",)])
def test_a_file_of_the_wrong_kind_is_named_as_such(command, tmp_path, capsys):
    from alta.cli import main

    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\x80\x00binary" * 8)
    program = tmp_path / "model.alta"
    program.write_bytes(b"\x80\x00binary" * 8)
    name, *rest = command
    expected = ("is a compiled checkpoint" if name != "experiment" else
                "is a compiled checkpoint; 'alta experiment' takes an experiment configuration")
    assert main([name, str(checkpoint), *rest]) == 1
    assert expected in capsys.readouterr().err
    assert main([name, str(program), *rest]) == 1
    err = capsys.readouterr().err
    assert ("is an ALTA program; 'alta experiment'" in err if name == "experiment" else
            f"cannot read file {program}: it is not UTF-8 text (byte 0x80 at offset 0)" in err)


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
    done = alta_main(*command, "--help")
    assert done.returncode == 0
    assert "usage: alta" in done.stdout
    if command == ("run",):
        for flag in ("--inputs", "--max-layers", "--trace"):
            assert flag in done.stdout


# ---- bad programs: the parser's and the checker's errors, located -------------------------

@pytest.mark.parametrize("case", case_params(
    case for kind in ("syntax", "checker") for case in load_cases(kind) if case.cli))
def test_check_command_reports_bad_program(case, tmp_path):
    assert_check_command_reports(case, tmp_path)


# ---- `alta check` reports what `alta compile` would -----------------------------------------

COMPILE_ONLY = [
    pytest.param("""
        var y: cat 3 = 0
        mlp:
            y = x + 2
    """, 7, 5, "writes 3 to 'y', which is not one of its values (cat 3), on the path where "
               "x = 1", id="write-out-of-range-on-a-path"),
    pytest.param("""
        var y: cat 3 = 0
        const T = [0, 1]
        mlp:
            y = T[x + 1]
    """, 8, 11, "index 2 out of range for a table of 2 rows on the path where x = 1",
        id="table-index-out-of-range-on-a-path"),
    pytest.param("""
        var y: cat 3 = 0
        mlp:
            y = 2 // x
    """, 7, 9, "division by zero on the path where x = 0", id="division-by-zero-on-a-path"),
    pytest.param("""
        var p: cat 10 = position
        mlp:
            x = p % 2
    """, 5, 1, "variable 'p' is initialised from 'position', so compiling needs 'max_length N' "
               "(the size of the position embedding)", id="position-without-max-length"),
    pytest.param("""
        max_length 12
        var p: cat 10 = position
        mlp:
            x = p % 2
    """, 6, 1, "initialiser gives 10 at position 10, which is not a value of 'p' (cat 10); "
               "positions go up to max_length - 1 = 11", id="position-initialiser-out-of-range"),
    pytest.param("""
        max_length 4
        var y: cat 4 = token + position
        mlp:
            x = y % 2
    """, 6, 16, "initialiser gives 4 for token \"1\" at position 3, which is not a value of "
                "'y' (cat 4)", id="token-and-position-initialiser-out-of-range"),
    pytest.param("""
        max_length 4
        var y: cat 4 = 3 // (position - token)
        mlp:
            x = y % 2
    """, 6, 16, "initialising 'y' for token \"0\" at position 0: division by zero",
        id="token-and-position-initialiser-divides-by-zero"),
]


@pytest.mark.parametrize("body, line, column, message", COMPILE_ONLY)
def test_check_reports_what_compile_reports(tmp_path, body, line, column, message):
    path = tmp_path / "bad.alta"
    path.write_text(BASE + prog(body))
    program = check_file(path)  # the checker alone accepts it
    with pytest.raises(AltaError) as info:
        compile_program(program)
    first = info.value.first
    assert (first.message, first.span.line, first.span.column) == (message, line, column)
    for command in ("check", "compile"):
        extra = ("-o", tmp_path / "bad.safetensors") if command == "compile" else ()
        done = alta_main(command, path, *extra)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        errors = [text for text in done.stderr.splitlines() if ": error: " in text]
        assert errors == [f"{path}:{line}:{column}: error: {message}"], (command, done.stderr)


def test_check_of_a_good_program_says_what_it_compiles_to_without_jax():
    path = PROGRAMS / "parity_absolute.alta"  # position embedding, both halting stages
    done = run_without_importing([["check", path]])
    report = compile_program(check_file(path)).report
    assert (f"  compiles   D {report.width}, {report.rules:,} rules, {report.parameters:,} "
            "parameters") in done.stdout.splitlines()
