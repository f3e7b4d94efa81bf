"""Compiled checkpoints: round trips in a fresh process, and clear failures on bad files."""

import json

import numpy as np
import pytest
from helpers import PROGRAMS, alta, alta_main

from alta.checker import check_file
from alta.checkpoint import load_checkpoint, save_checkpoint
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.interpreter import run
from alta.sampling import sample_inputs


def line_of(text: str) -> int:
    """The line of programs/parity.alta that contains `text` (1-based)."""
    lines = (PROGRAMS / "parity.alta").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


@pytest.fixture(scope="module")
def parity_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "parity.safetensors"
    done = alta_main("compile", PROGRAMS / "parity.alta", "-o", path)
    assert done.returncode == 0, done.stderr
    assert "residual width D   13 (program 8 + fault detector 5)" in done.stdout
    assert "parameters" in done.stdout
    return path


def test_round_trip_in_a_fresh_process_without_the_source(parity_model, tmp_path):
    program = check_file(PROGRAMS / "parity.alta")
    texts = sample_inputs(program, 40, 60, seed=3)
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(texts) + "\n")
    moved = tmp_path / "elsewhere.safetensors"
    moved.write_bytes(parity_model.read_bytes())
    done = alta("run", moved, "--inputs", inputs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == list(run(program, texts).outputs)


def test_loaded_checkpoint_equals_the_compiled_program(parity_model):
    fresh = compile_program(check_file(PROGRAMS / "parity.alta"))
    loaded = load_checkpoint(parity_model)
    assert loaded.layout == fresh.layout and loaded.config == fresh.config
    assert loaded.report == fresh.report
    assert set(loaded.weights) == set(fresh.weights)
    for name, value in fresh.weights.items():
        assert np.array_equal(loaded.weights[name], value), name


def test_manifest_describes_the_model(parity_model):
    from safetensors import safe_open

    with safe_open(str(parity_model), framework="numpy") as f:
        manifest = json.loads(f.metadata()["alta"])
    assert manifest["program"] == "parity" and manifest["vocab"] == ["0", "1", "<s>"]
    assert manifest["format_version"] == 2 and len(manifest["source_sha256"]) == 64
    # the program's blocks, then the fault detector's: the constant, one flag per head read
    # (at its source line), one selection head per head
    assert [b["name"] for b in manifest["layout"]] == [
        "parity", "done", "parity_left", "done_left", "one.", "fault.0", "fault.1",
        "parity_left.selected", "done_left.selected"]
    lines = manifest["source"].splitlines()
    for site in manifest["faults"]:
        line, column, _, end = site["span"]
        assert lines[line - 1][column - 1:end - 1] == site["head"]
    assert [s["head"] for s in manifest["faults"]] == ["done_left", "parity_left"]
    assert manifest["halting"] == "halt when done == 1"
    assert manifest["config"]["width"] == 13 and manifest["report"]["rules"] == 3
    assert manifest["report"]["program_width"] == 8


def _expect_failure(path, message):
    with pytest.raises(AltaError, match=message) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"alta: error: {path}: not a usable ALTA checkpoint: ")
    done = alta_main("run", path, "1 0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert message.split("(")[0].strip() in done.stderr or message in done.stderr


def test_truncated_file(parity_model, tmp_path):
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(parity_model.read_bytes()[:-50])
    _expect_failure(bad, "corrupt or truncated")


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00\x01 not a checkpoint at all" * 10)
    _expect_failure(bad, "corrupt or truncated")


def test_foreign_safetensors_without_manifest(tmp_path):
    from safetensors.numpy import save_file

    bad = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(bad))
    _expect_failure(bad, "no ALTA manifest")


@pytest.mark.parametrize("manifest", ["[1, 2]", "\"text\"", "{not json"])
def test_manifest_that_is_not_a_json_object(parity_model, tmp_path, manifest):
    from safetensors.numpy import save_file

    bad = tmp_path / "manifest.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(bad), metadata={"alta": manifest})
    _expect_failure(bad, "its manifest is not a JSON object")


def test_a_saved_checkpoint_gets_the_usual_file_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = save_checkpoint(compile_program(check_file(PROGRAMS / "parity.alta")),
                               tmp_path / "model.safetensors")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def _rewrite(source, target, change_manifest=None, change_tensors=None):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(source), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    manifest = json.loads(metadata["alta"])
    if change_manifest:
        change_manifest(manifest)
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(target), metadata={"alta": json.dumps(manifest)})


def test_mismatched_tensor_shape(parity_model, tmp_path):
    bad = tmp_path / "shape.safetensors"
    _rewrite(parity_model, bad,
             change_tensors=lambda t: t.update({"mlp.0.weight": np.zeros((8, 5), np.float32)}))
    _expect_failure(bad, "tensor mlp.0.weight has shape")


def test_missing_tensor(parity_model, tmp_path):
    bad = tmp_path / "missing.safetensors"
    _rewrite(parity_model, bad, change_tensors=lambda t: t.pop("halting.2.bias"))
    _expect_failure(bad, "do not match its config")


def test_edited_source_fails_its_hash(parity_model, tmp_path):
    bad = tmp_path / "edited.safetensors"
    _rewrite(parity_model, bad,
             change_manifest=lambda m: m.update(source=m["source"].replace("at -1", "at -2")))
    _expect_failure(bad, "does not match its hash")


def test_newer_format_version(parity_model, tmp_path):
    bad = tmp_path / "future.safetensors"
    _rewrite(parity_model, bad, change_manifest=lambda m: m.update(format_version=99))
    _expect_failure(bad, "format version 99")


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    import safetensors.numpy

    compiled = compile_program(check_file(PROGRAMS / "parity.alta"))

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(compiled, tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_verify_passes_on_the_real_model_and_inspect_lists_rules(parity_model):
    done = alta_main("verify", parity_model, "--samples", "60", "--max-length", "40")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: interpreter and compiled model agree on 60 inputs")
    shown = alta_main("inspect", parity_model)
    assert shown.returncode == 0, shown.stderr
    write = line_of("parity = parity ^ parity_left")
    assert "MLP rules (3;" in shown.stdout and f"line {write} " in shown.stdout
    assert "parity_left      categorical head" in shown.stdout


def test_verify_reports_the_first_divergence_of_a_tampered_model(parity_model, tmp_path):
    # Rule 0 (parity 0 -> 1 when the left parity is 1) now writes nothing to parity.
    def break_rule(tensors):
        w = tensors["mlp.3.weight"].copy()
        w[0, 0:2] = 0.0
        tensors["mlp.3.weight"] = w

    bad = tmp_path / "tampered.safetensors"
    _rewrite(parity_model, bad, change_tensors=break_rule)
    done = alta_main("verify", bad, "--samples", "50", "--max-length", "12")
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert "interpreter and compiled model disagree" in first and "'parity'" in first
    declared = line_of("var parity")
    assert "(after the MLP)" in first and f":{declared}:" in first
