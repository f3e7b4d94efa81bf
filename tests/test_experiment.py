"""`alta experiment`: configuration files, exact-size test inputs, the end-to-end model and
the whole study on a small parity run."""

import csv
import json
import random

import numpy as np
import pytest
from helpers import PROGRAMS, ROOT, alta_main, compiled_library

from alta.checker import check_file
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.experiment import inputs_of_size, load_config
from alta.framing import split_input
from alta.tasks import find_task
from alta.training import EndToEndSettings, end_to_end_outputs, examples_of, train_end_to_end

SHIPPED = sorted((ROOT / "experiments").rglob("*.toml"))  # fidelity/ too


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_configurations_load():
    assert {p.stem for p in SHIPPED} >= {"parity", "parity_absolute", "addition"}
    for path in SHIPPED:
        config = load_config(path)
        assert config.program.is_file(), path
        assert max(config.test_lengths) >= 4 * config.train_lengths[1], path


def test_configuration_values(tmp_path):
    path = write(tmp_path, f'''
program = "{PROGRAMS / 'parity.alta'}"
train_lengths = [2, 6]
test_lengths = [1, 12]
methods = ["compiled", "trace"]
[trace]
hidden = [16]
learning_rate = 1     # an integer where a float is expected is fine
[end_to_end]
steps = 7
''')
    config = load_config(path)
    assert config.train_lengths == (2, 6) and config.test_lengths == (1, 12)
    assert config.methods == ("compiled", "trace")
    assert config.trace.hidden == (16,) and config.trace.learning_rate == 1.0
    assert config.trace.input_noise == 0.1  # the experiment's default, not train's
    assert config.end_to_end.steps == 7 and config.end_to_end.hidden == (64, 64)
    relative = write(tmp_path, 'program = "p.alta"\ntrain_lengths = "1..3"\n'
                               'test_lengths = [3]\n', "rel.toml")
    assert load_config(relative).program == tmp_path / "p.alta"
    as_json = write(tmp_path, json.dumps({"program": "p.alta", "train_lengths": "0..2",
                                          "test_lengths": [8]}), "study.json")
    assert load_config(as_json).train_lengths == (0, 2)


def test_a_configuration_sets_the_programs_parameters(tmp_path):
    from alta.experiment import study_program

    path = write(tmp_path, f'''
program = "{PROGRAMS / 'dyck.alta'}"
train_lengths = "1..4"
test_lengths = [8]
methods = ["compiled"]
[params]
KINDS = 1
MAX_LENGTH = 16
''')
    config = load_config(path)
    assert config.params == (("KINDS", 1), ("MAX_LENGTH", 16))
    assert config.to_json()["params"] == {"KINDS": 1, "MAX_LENGTH": 16}
    program, task = study_program(config)
    assert dict(program.params) == {"KINDS": 1, "MAX_LENGTH": 16} and task.size == 16
    with pytest.raises(AltaError, match="has no parameter 'KIND' to set"):
        study_program(load_config(write(tmp_path, path.read_text().replace("KINDS", "KIND"),
                                        "typo.toml")))


@pytest.mark.parametrize("text, message", [
    ('train_lengths = "1..3"\ntest_lengths = [4]', "missing 'program'"),
    ('program = "p.alta"\ntest_lengths = [4]', "missing 'train_lengths'"),
    ('program = "p.alta"\ntrain_lengths = "3..1"\ntest_lengths = [4]', "0 <= A <= B"),
    ('program = "p.alta"\ntrain_lengths = "a..b"\ntest_lengths = [4]', "train_lengths"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = []', "non-empty list"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [-1]', "at least 0"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nsampels = 3',
     "unknown setting 'sampels'"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nsamples = "many"',
     "'samples' must be an integer"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nsamples = 0',
     "'samples' must be at least 1"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nmethods = ["magic"]',
     "unknown method 'magic'"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\n[trace]\nhidden = 5',
     r"\[trace\]: 'hidden' must be a non-empty list"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\n[end_to_end]\nlr = 1',
     r"\[end_to_end\]: unknown setting 'lr'"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\n[trace]\nschedule = "x"',
     "schedule"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nundefined = "ones"',
     "'undefined' must be one of noise, zero, compiled, got 'ones'"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\n[trace]\n'
     'noise_scale = "block"', r"'noise_scale' must be one of uniform, spacing, got 'block'"),
    ('program = "p.alta\ntrain_lengths = 1', r"not valid TOML.*line 1"),
    ('program = "p.alta"\ntrain_lengths = "1..3"\ntest_lengths = [4]\nparams = 3',
     "'params' must be a table of the program's parameters"),
])
def test_bad_configurations_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(AltaError, match=message):
        load_config(write(tmp_path, text))


def test_a_bad_configuration_is_reported_by_the_command(tmp_path):
    done = alta_main("experiment", write(tmp_path, 'program = "p.alta"'), "-o", tmp_path / "out")
    assert done.returncode == 1 and "missing 'train_lengths'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
    missing = alta_main("experiment", tmp_path / "nope.toml")
    assert missing.returncode == 1 and "no such experiment configuration" in missing.stderr


@pytest.mark.parametrize("name", ["parity", "addition"])
def test_test_inputs_have_exactly_the_size_asked_for(name):
    program = check_file(PROGRAMS / f"{name}.alta")
    task = find_task(program)
    size_of = task.size_of or (lambda text: len(split_input(program, text)))
    rng = random.Random(3)
    for size in (1, 2, 7, 13):
        texts = inputs_of_size(task, size_of, size, 30, rng)
        assert len(texts) == 30 and {size_of(t) for t in texts} == {size}
    if name == "addition":  # measured independently of size_of: the longer operand
        texts = inputs_of_size(task, size_of, 9, 50, rng)
        assert all(max(len(a) for a in t.split("+")) == 9 for t in texts)
        assert len({t for t in texts}) > 45
    with pytest.raises(AltaError, match="no input of size 500"):
        inputs_of_size(task, lambda text: 0, 500, 1, rng, tries=50)


@pytest.mark.parametrize("name, sizes", [("parity", (0, 3, 17)), ("addition", (1, 4, 12))])
def test_the_unrolled_readout_reproduces_the_compiled_model(name, sizes):
    """The end-to-end path (layers unrolled to each input's depth, output read from the
    output block's argmax) given the compiled weights prints what the oracle says: so the
    scores of a trained model measure the model, not the harness."""
    program = check_file(PROGRAMS / f"{name}.alta")
    compiled = compiled_library(name)
    task = find_task(program)
    from alta.compiled import load_model

    model = load_model(compiled, structured=False)
    rng = random.Random(5)
    size_of = task.size_of or (lambda text: len(split_input(program, text)))
    for size in sizes:
        examples = examples_of(program, inputs_of_size(task, size_of, size, 20, rng))
        got = end_to_end_outputs(compiled, model, examples)
        assert got == [task.oracle(t) for t in examples.texts]


def test_end_to_end_training_fits_short_parity():
    program = check_file(PROGRAMS / "parity.alta")
    compiled = compile_program(program)
    task = find_task(program)
    rng = random.Random(0)
    train = examples_of(program, [task.sample(rng, 4) for _ in range(300)])
    model, curve = train_end_to_end(compiled, train, EndToEndSettings(steps=400, seed=2))
    assert curve[-1][1] < curve[0][1] / 5
    test = examples_of(program, [task.sample(rng, 4) for _ in range(100)])
    got = end_to_end_outputs(compiled, model, test)
    right = np.mean([g == task.oracle(t) for g, t in zip(got, test.texts)])
    assert right >= 0.95, right


def test_experiment_command_writes_results(tmp_path):
    config = write(tmp_path, f'''
program = "{PROGRAMS / 'parity.alta'}"
train_lengths = "1..4"
test_lengths = [2, 4, 16]
samples = 200
test_samples = 20
[trace]
hidden = [32, 32]
steps = 600
[end_to_end]
hidden = [16]
steps = 50
''')
    out = tmp_path / "run"
    done = alta_main("experiment", config, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "4x the longest training input" in done.stdout
    assert "training on traces" in done.stderr and "training end to end" in done.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["length"]) for r in rows] == [
        (m, str(n)) for m in ("compiled", "trace", "end_to_end") for n in (2, 4, 16)]
    for r in rows:
        assert r["samples"] == "20"
        assert float(r["accuracy"]) == pytest.approx(int(r["correct"]) / 20)
    assert all(r["correct"] == "20" for r in rows if r["method"] == "compiled")
    for name in ("accuracy.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["train_lengths"] == [1, 4]
    manifest = json.loads((out / "traces" / "manifest.json").read_text())
    assert manifest["settings"]["samples"] == 200 and manifest["settings"]["vectors"]
    assert (out / "trace_mlp.safetensors").is_file()
    assert (out / "end_to_end.safetensors").is_file()
    # the table printed has one row per length, with the method columns
    assert all(f"{n:>8}" in done.stdout for n in (2, 4, 16))
    # minimality: relative parity's training traces exercise every rule and value, so no
    # input needs more, and the trace-trained MLP's right answers are all "on the rest"
    assert "unexercised" in done.stdout and "trace on those" in done.stdout
    with open(out / "minimality.csv") as f:
        novel = list(csv.DictReader(f))
    trace = {r["length"]: r["correct"] for r in rows if r["method"] == "trace"}
    assert [r["length"] for r in novel] == ["2", "4", "16"]
    for r in novel:
        assert r["samples"] == "20" and r["needs_either"] == "0"
        assert r["trace_correct"] == r["trace_correct_rest"] == trace[r["length"]]
        assert r["trace_correct_needing"] == "0"
