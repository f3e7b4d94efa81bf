"""SCAN (programs/scan.alta + programs/scan.py): the oracle against the dataset, the
interpreter on the dataset and on every command of the grammar, the compiled model on
a couple of hundred, non-commands, and `alta run --inputs` line by line against the dataset."""

import importlib.util
import random
from pathlib import Path

from helpers import PROGRAMS, compiled_library, library_program

from alta import cli
from alta.compiled import run_compiled
from alta.interpreter import run

# 400 lines of the SCAN dataset (`IN: <command> OUT: <actions>`; BSD licence beside it).
DATASET = Path(__file__).parent / "data" / "scan" / "sample_400.txt"
LONGEST = "jump around left thrice and walk around right thrice"   # 9 words, 48 actions
NON_COMMANDS = ["", "jump jump", "turn", "left", "and", "jump and", "and jump",
                "jump and jump and jump", "walk left left", "jump twice twice", "jump opposite",
                "around left", "turn twice", "jump twice jump", "after walk",
                "walk around left around right", "turn left and turn", "opposite left",
                "jump left opposite left", "walk after after"]


def _task():
    spec = importlib.util.spec_from_file_location("scan_task", PROGRAMS / "scan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scan = _task()


def program():
    return library_program("scan")


def compiled():
    return compiled_library("scan")  # shared with the other tests of this process


def dataset() -> list[tuple[str, str]]:
    """(command, actions) pairs of sample_400.txt."""
    pairs = []
    for line in DATASET.read_text().splitlines():
        if line.strip():
            command, actions = line.removeprefix("IN: ").split(" OUT: ")
            pairs.append((command.strip(), actions.strip()))
    return pairs


def grammar_sample(count: int, seed: int) -> list[str]:
    commands = scan.all_commands()
    return random.Random(seed).sample(commands, count)


# ---- (a) the oracle ------------------------------------------------------------------------

def test_the_grammar_has_every_command_once():
    commands = scan.all_commands()
    assert len(commands) == len(set(commands)) == 20_910  # 102 S + 2 * 102^2 "S conj S"
    assert max(len(c.split()) for c in commands) == scan.SIZE == 9
    assert max(len(scan.oracle(c).split()) for c in commands) == 48


def test_the_oracle_agrees_with_the_dataset():
    pairs = dataset()
    assert len(pairs) == 400
    commands = set(scan.all_commands())
    assert all(command in commands for command, _ in pairs)
    wrong = [(c, a, scan.oracle(c)) for c, a in pairs if scan.oracle(c) != a]
    assert not wrong, wrong[:3]


def test_the_sampler_stays_in_the_grammar_and_within_size():
    rng = random.Random(0)
    commands = set(scan.all_commands())
    for size in (1, 2, 5, 9, 20):
        for _ in range(50):
            text = scan.sample(rng, size)
            assert text in commands and len(text.split()) <= size


def test_non_commands_have_no_actions():
    assert [scan.oracle(text) for text in NON_COMMANDS] == [""] * len(NON_COMMANDS)


# ---- (b) the interpreter -------------------------------------------------------------------

def test_the_interpreter_is_exact_on_the_dataset():
    pairs = dataset()
    result = run(program(), [c for c, _ in pairs])
    assert result.halted.all()
    wrong = [(c, a, got) for (c, a), got in zip(pairs, result.outputs) if got != a]
    assert not wrong, f"{len(wrong)} of {len(pairs)} wrong, e.g. {wrong[:3]}"


def test_the_interpreter_is_exact_on_every_grammar_command():
    commands = scan.all_commands()
    result = run(program(), commands)
    assert result.halted.all()
    wrong = [(c, got) for c, got in zip(commands, result.outputs) if got != scan.oracle(c)]
    assert not wrong, f"{len(wrong)} of {len(commands)} wrong, e.g. {wrong[:3]}"


def test_the_interpreter_prints_nothing_for_non_commands():
    result = run(program(), NON_COMMANDS)
    assert result.halted.all()
    assert list(result.outputs) == [""] * len(NON_COMMANDS)


# ---- (c) the compiled model ----------------------------------------------------------------

def test_the_compiled_model_is_exact_and_halts_in_five_layers():
    commands = grammar_sample(190, seed=4) + [LONGEST] + NON_COMMANDS[:9]
    result = run_compiled(compiled(), commands)
    assert result.halted.all()
    assert set(result.layers.tolist()) == {5}
    wrong = [(c, got) for c, got in zip(commands, result.outputs) if got != scan.oracle(c)]
    assert not wrong, f"{len(wrong)} of {len(commands)} wrong, e.g. {wrong[:3]}"


def test_the_compiled_model_is_small():
    report = compiled().report
    assert report.rules < 2_000
    assert report.width < 600
    assert report.parameters < 10_000_000
    assert report.guaranteed_length >= 1 + 9 + 48


# ---- (d) the command line ------------------------------------------------------------------

def test_alta_run_prints_one_line_per_command(tmp_path, capsys):
    pairs = dataset()
    inputs = tmp_path / "commands.txt"
    inputs.write_text("".join(f"{c}\n" for c, _ in pairs))
    assert cli.main(["run", str(PROGRAMS / "scan.alta"), "--inputs", str(inputs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [a for _, a in pairs]


def test_alta_run_jump_twice(capsys):
    assert cli.main(["run", str(PROGRAMS / "scan.alta"), "jump twice"]) == 0
    assert capsys.readouterr().out == "I_JUMP I_JUMP\n"
