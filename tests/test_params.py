"""Program parameters (`param N = 60 [in 1..200]`): constants that `check_source(params=...)`,
`alta ... --set N=100` and `alta.load(..., params=...)` override. A setting means what the
same program with that constant written in means (the interpreter against Python computing
the program for that setting, and the compiled model against the interpreter, on many
random settings); overrides are checked (unknown name, type, declared values) with located
errors; the values travel with checkpoints, datasets and task modules. The declarations'
own misuses are cases of tests/data/checker_errors.toml."""

import random

import pytest
from helpers import PROGRAMS, prog

import alta
from alta.checker import check_file, check_source
from alta.checkpoint import load_checkpoint, manifest_for, save_checkpoint
from alta.cli import main
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.files import check_provenance
from alta.interpreter import run
from alta.tasks import find_task, in_file_examples

# Every place a constant stands: a categorical range, a table, a relative offset, a
# comparison, max_length, the position initialiser, `output ... at`, a boolean and a number.
SHIFTED = prog("""
    program shifted
    vocab "a" "b" "c" "<s>"
    input "<s>" words
    param M = 5 in 2..9                 # y's values: 0..M - 1
    param K = 2                         # a multiplier
    param SHIFT = 1 in {1, 2, 3}        # how far left the head reads
    param LIMIT = 20 in 1..40           # the longest input
    param P = 0 in 0..40                # which kept position prints
    param FLIP = false
    param BIAS = 0.5
    const TABLE = [(t * K + (1 if FLIP else 0)) % M for t in 0..3]
    max_length LIMIT + 1
    max_layers 1
    output y at P where kept == 1 default 0
    var t: cat 4 = token
    var kept: bool = position >= SHIFT
    var y: cat M = 0
    head left = t at -SHIFT
    mlp:
        if kept == 1:
            y = TABLE[left] if left != 3 or BIAS > 1 else M - 1
    """)


def shifted_oracle(setting: dict, text: str) -> str:
    """What SHIFTED prints for `text` with parameters `setting`, computed in Python."""
    tokens = [3] + ["abc".index(w) for w in text.split()]
    kept = []
    for i in range(setting["SHIFT"], len(tokens)):
        left = tokens[i - setting["SHIFT"]]
        if left == 3 and setting["BIAS"] <= 1:
            kept.append(setting["M"] - 1)
        else:
            kept.append((left * setting["K"] + int(setting["FLIP"])) % setting["M"])
    return str(kept[setting["P"]]) if setting["P"] < len(kept) else "0"


def random_setting(rng: random.Random) -> dict:
    return {"M": rng.randint(2, 9), "K": rng.randint(-3, 7), "SHIFT": rng.choice([1, 2, 3]),
            "LIMIT": rng.randint(1, 40), "P": rng.randint(0, 6),
            "FLIP": rng.random() < 0.5, "BIAS": rng.choice([0.5, 3.0])}


def inputs_for(setting: dict, rng: random.Random, count: int = 30) -> list[str]:
    return [" ".join(rng.choice("abc") for _ in range(rng.randint(0, setting["LIMIT"])))
            for _ in range(count)]


def test_a_setting_means_the_program_with_those_constants_on_the_interpreter():
    rng = random.Random(4)
    defaults = check_source(SHIFTED)
    assert dict(defaults.params) == {"M": 5, "K": 2, "SHIFT": 1, "LIMIT": 20, "P": 0,
                                     "FLIP": False, "BIAS": 0.5}
    for _ in range(60):
        setting = random_setting(rng)
        # as Python values, or as text the way --set gives them
        given = setting if rng.random() < 0.5 else {
            k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in setting.items()}
        program = check_source(SHIFTED, "shifted.alta", given)
        assert dict(program.params) == setting
        assert program.max_length == setting["LIMIT"] + 1
        texts = inputs_for(setting, rng)
        assert list(run(program, texts).outputs) == [shifted_oracle(setting, t) for t in texts]


def test_a_setting_compiles_to_a_model_that_agrees_with_the_interpreter():
    rng = random.Random(5)
    for _ in range(2):
        setting = random_setting(rng)
        program = check_source(SHIFTED, "shifted.alta", setting)
        texts = inputs_for(setting, rng, 40)
        assert run_compiled(compile_program(program), texts).outputs == run(program,
                                                                            texts).outputs


def test_a_float_parameter_takes_an_integer_and_only_a_partial_setting_is_needed():
    program = check_source(SHIFTED, "shifted.alta", {"BIAS": 3, "M": "7"})
    assert dict(program.params)["BIAS"] == 3.0 and dict(program.params)["M"] == 7
    assert dict(program.params)["K"] == 2


# ---- overrides that do not fit: located at the declaration, or naming the program -----------

def place(source: str, line_start: str, text: str) -> tuple[int, int]:
    """(line, column) of `text` on the line of `source` that starts with `line_start`."""
    number, line = next((i, line) for i, line in enumerate(source.splitlines(), 1)
                        if line.startswith(line_start))
    return number, line.index(text) + 1


@pytest.mark.parametrize("setting, message, where", [
    ({"M": "many"}, "parameter 'M' is an integer (its default is 5): cannot set it to 'many'",
     ("param M", "M")),
    ({"M": 2.5}, "cannot set it to 2.5", ("param M", "M")),
    ({"M": True}, "cannot set it to true", ("param M", "M")),
    ({"FLIP": 1}, "parameter 'FLIP' is a boolean (its default is false): cannot set it to 1",
     ("param FLIP", "FLIP")),
    ({"BIAS": "nan"}, "parameter 'BIAS' is a number", ("param BIAS", "BIAS")),
    ({"BIAS": "false"}, "cannot set it to 'false'", ("param BIAS", "BIAS")),
    ({"M": 10}, "parameter 'M' is set to 10, which is not among the values 'in 2..9' allows",
     ("param M", "2..9")),
    ({"SHIFT": "4"}, "not among the values 'in {1, 2, 3}' allows", ("param SHIFT", "{1")),
    ({"LIMIT": 0}, "parameter 'LIMIT' is set to 0", ("param LIMIT", "1..40")),
])
def test_an_override_that_does_not_fit_is_a_located_error(setting, message, where):
    with pytest.raises(AltaError) as info:
        check_source(SHIFTED, "shifted.alta", setting)
    first = info.value.first
    line, column = place(SHIFTED, *where)
    assert message in first.message
    assert (first.span.line, first.span.column) == (line, column)
    assert str(info.value).startswith(f"shifted.alta:{line}:{column}: error: ")


def test_setting_a_parameter_the_program_does_not_declare_names_the_program():
    with pytest.raises(AltaError, match="shifted.alta has no parameter 'SHIFTS' to set") as info:
        check_source(SHIFTED, "shifted.alta", {"SHIFTS": 2})
    assert any("did you mean 'SHIFT'?" in n for n in info.value.first.notes)
    assert any("its parameters: M, K, SHIFT, LIMIT, P, FLIP, BIAS" in n
               for n in info.value.first.notes)
    with pytest.raises(AltaError, match="it declares no parameters"):
        check_file(PROGRAMS / "parity.alta", {"N": 3})


# ---- the library: dyck's two kinds, limits as parameters --------------------------------------

def test_dyck_with_one_kind_is_dyck1_and_its_task_module_reads_the_setting():
    one = check_file(PROGRAMS / "dyck.alta", {"KINDS": 1, "MAX_LENGTH": 12})
    two = check_file(PROGRAMS / "dyck.alta", {"MAX_LENGTH": 12})
    texts = ["([])", "()[]", "(())", "(()", "", "[", "()()()"]
    assert run(one, texts).outputs == ("0", "0", "1", "0", "1", "0", "1")
    assert run(two, texts).outputs == ("1", "1", "1", "0", "1", "0", "1")
    task_one, task_two = find_task(one), find_task(two)
    assert task_one.size == task_two.size == 12
    assert [task_one.oracle(t) for t in texts] == list(run(one, texts).outputs)
    assert [task_two.oracle(t) for t in texts] == list(run(two, texts).outputs)
    assert not any("[" in t for t in task_one.inputs(200))
    assert ("([]())", "0") in in_file_examples(one) and ("([]())", "1") in in_file_examples(two)
    assert ("([]())", "1") not in in_file_examples(one)


@pytest.mark.parametrize("name, setting, word", [("length", {"MAX_TOKENS": 7}, "a"),
                                                 ("sort_unique", {"MAX_WORDS": 5}, "1"),
                                                 ("parity_sum_mod_2", {"MAX_BITS": 9}, "1")])
def test_a_library_limit_is_a_parameter(name, setting, word):
    program = check_file(PROGRAMS / f"{name}.alta", setting)
    task = find_task(program)
    (limit,) = setting.values()
    assert task.size == limit
    texts = task.inputs(80, seed=1)
    assert list(run(program, texts).outputs) == [task.oracle(t) for t in texts]
    too_long = " ".join([word] * (limit + 1))
    with pytest.raises(AltaError, match=f"but {name} declares max_length"):
        run(program, [too_long])


# ---- the values travel: checkpoints, the API, the command line, datasets ----------------------

@pytest.fixture(scope="module")
def dyck_one(tmp_path_factory):
    """dyck.alta with one kind over 8 characters, compiled by `alta compile --set`."""
    path = tmp_path_factory.mktemp("params") / "dyck1.safetensors"
    assert main(["compile", str(PROGRAMS / "dyck.alta"), "--set", "KINDS=1", "--set",
                 "MAX_LENGTH=8", "-o", str(path)]) == 0
    return path


def test_a_checkpoint_keeps_the_values_it_was_compiled_with(dyck_one, tmp_path, compiled):
    assert "params" not in manifest_for(compiled("parity"))  # as before parameters existed
    compiled = load_checkpoint(dyck_one)
    assert dict(compiled.program.params) == {"KINDS": 1, "MAX_LENGTH": 8}
    assert compiled.program.max_length == 9  # (its layout is checked against this program)
    assert manifest_for(compiled)["params"] == {"KINDS": 1, "MAX_LENGTH": 8}
    again = save_checkpoint(compiled, tmp_path / "again.safetensors")
    assert dict(load_checkpoint(again).program.params) == {"KINDS": 1, "MAX_LENGTH": 8}
    model = alta.load(dyck_one)
    assert model.program.params == {"KINDS": 1, "MAX_LENGTH": 8}
    with pytest.raises(AltaError, match="its parameters are fixed"):
        alta.load(dyck_one, params={"KINDS": 2})


def test_the_command_line_sets_and_reports_parameters(dyck_one, capsys):
    dyck = str(PROGRAMS / "dyck.alta")
    assert main(["run", dyck, "--set", "KINDS=1", "[]", "()"]) == 0
    assert main(["run", dyck, "[]", "()"]) == 0
    assert capsys.readouterr().out.split() == ["0", "1", "1", "1"]
    # the checkpoint's own setting: one kind over 8 characters, sampled by its task module
    assert main(["verify", str(dyck_one), "--samples", "12", "--max-length", "8"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok:") and "dyck (KINDS=1 MAX_LENGTH=8)" in captured.err
    assert main(["check", dyck, "--set", "MAX_LENGTH=10"]) == 0
    assert "params     KINDS=2 MAX_LENGTH=10" in capsys.readouterr().out


DYCK = (PROGRAMS / "dyck.alta").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--set", "KINDS"], "--set expects NAME=VALUE"),
    (["--set", "=1"], "--set expects NAME=VALUE"),
    (["--set", "KINDS=1", "--set", "KINDS=2"], "--set KINDS is given twice"),
    (["--set", "COLORS=1"], "has no parameter 'COLORS' to set"),
    (["--set", "KINDS=two"], "dyck.alta:{}:{}: error: parameter 'KINDS' is an integer".format(
        *place(DYCK, "param KINDS", "KINDS"))),
    (["--set", "KINDS=5"], "dyck.alta:{}:{}: error: parameter 'KINDS' is set to 5".format(
        *place(DYCK, "param KINDS", "1..4"))),
    (["--set", "KINDS=2", "--set", "MAX_LENGTH=300"], "'in 2..(400 if KINDS == 1 else 120)'"),
])
def test_a_bad_set_option_is_a_clear_error(argv, message, capsys):
    assert main(["run", str(PROGRAMS / "dyck.alta"), "()", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_checkpoint_refuses_set(dyck_one, capsys):
    assert main(["run", str(dyck_one), "()", "--set", "KINDS=2"]) == 1
    assert "was compiled with parameters KINDS=1 MAX_LENGTH=8" in capsys.readouterr().err


def test_a_dataset_records_its_parameters_and_provenance_checks_them(tmp_path):
    from alta.traces import TraceSettings, write_dataset

    program = check_file(PROGRAMS / "dyck.alta", {"KINDS": 1, "MAX_LENGTH": 6})
    manifest = write_dataset(program, find_task(program),
                             TraceSettings(samples=6, seed=0, shard_size=6), tmp_path / "d")
    assert manifest["params"] == {"KINDS": 1, "MAX_LENGTH": 6}
    check_provenance(manifest, program, "traced")
    other = check_file(PROGRAMS / "dyck.alta", {"MAX_LENGTH": 6})
    with pytest.raises(AltaError, match="traced with parameters KINDS=1 MAX_LENGTH=6, not "
                                        "KINDS=2 MAX_LENGTH=6"):
        check_provenance(manifest, other, "traced")
