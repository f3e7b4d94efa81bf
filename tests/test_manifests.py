"""Manifests work from any directory: datasets and checkpoints find the program (and its task
module) they were made from wherever the command runs, and after their folder moves together
with the program; a command checks what it needs before its long work."""

import json
import shutil

import pytest
from helpers import PROGRAMS

from alta.checkpoint import load_checkpoint
from alta.cli import main
from alta.files import find_source
from alta.tasks import find_task


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """tmp/proj/parity.alta with its task module, and the working directory tmp."""
    folder = tmp_path / "proj"
    folder.mkdir()
    for suffix in (".alta", ".py"):
        shutil.copy(PROGRAMS / f"parity{suffix}", folder / f"parity{suffix}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_dataset_is_used_from_another_directory_and_after_moving(project, monkeypatch,
                                                                   capsys):
    assert main(["trace", "proj/parity.alta", "--samples", "30", "--lengths", "1..5",
                 "--vectors", "-o", "proj/data"]) == 0
    manifest = json.loads((project / "proj/data/manifest.json").read_text())
    assert manifest["source_path"] == "proj/parity.alta"
    assert manifest["source_path_relative"] == "../parity.alta"
    assert manifest["source"] == (PROGRAMS / "parity.alta").read_text()
    (project / "elsewhere").mkdir()
    monkeypatch.chdir(project / "elsewhere")
    assert main(["train", "../proj/data", "-o", "mlp.safetensors", "--steps", "20"]) == 0
    # The dataset moves with its program: the relative path still finds the file (and the
    # task module beside it); the recorded and absolute ones no longer do.
    shutil.move(project / "proj", project / "moved")
    moved = json.loads((project / "moved/data/manifest.json").read_text())
    assert find_source(moved, project / "moved/data") == project / "moved/data/../parity.alta"
    capsys.readouterr()
    assert main(["coverage", "../moved/parity.alta", "--dataset", "../moved/data"]) == 0
    assert "rules" in capsys.readouterr().out


def test_resuming_a_dataset_does_not_depend_on_the_working_directory(project, monkeypatch):
    args = ["--samples", "20", "--lengths", "1..4", "--shard-size", "10"]
    assert main(["trace", "proj/parity.alta", *args, "-o", "proj/data"]) == 0
    (project / "proj/data/data" / sorted(p.name for p in
                                         (project / "proj/data/data").iterdir())[0]).unlink()
    monkeypatch.chdir(project / "proj")
    assert main(["trace", "parity.alta", *args, "-o", "data"]) == 0  # resumed, not refused
    assert len(list((project / "proj/data/data").iterdir())) == 2


def test_training_checks_the_program_and_the_output_before_training(project, monkeypatch,
                                                                    capsys):
    import alta.training

    assert main(["trace", "proj/parity.alta", "--samples", "10", "--lengths", "1..3",
                 "--vectors", "-o", "data"]) == 0
    monkeypatch.setattr(alta.training, "train_mlp", lambda *a, **k: pytest.fail("trained"))
    assert main(["train", "data", "-o", "nowhere/mlp.safetensors"]) == 1
    assert "no such directory nowhere" in capsys.readouterr().err
    manifest_file = project / "data/manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["source"]  # as a huge program's: recorded by path and hash only
    manifest_file.write_text(json.dumps(manifest))
    shutil.move(project / "proj", project / "gone")
    assert main(["train", "data", "-o", "mlp.safetensors"]) == 1
    assert "cannot find the program data was traced from" in capsys.readouterr().err


def test_a_checkpoint_finds_its_task_module_from_another_directory(project, monkeypatch,
                                                                   capsys):
    assert main(["compile", "proj/parity.alta", "-o", "proj/parity.safetensors"]) == 0
    (project / "other").mkdir()
    monkeypatch.chdir(project / "other")
    compiled = load_checkpoint("../proj/parity.safetensors")
    assert find_task(compiled.program) is not None
    shutil.move(project / "proj", project / "moved")
    compiled = load_checkpoint("../moved/parity.safetensors")
    task = find_task(compiled.program)
    assert task is not None and task.path.resolve() == (project / "moved/parity.py").resolve()
    capsys.readouterr()
    assert main(["verify", "../moved/parity.safetensors", "--samples", "3",
                 "--max-length", "4"]) == 0
    err = capsys.readouterr().err
    assert "sampling with parity.py" in err and "verifying [" in err and "] 3/3 inputs" in err
