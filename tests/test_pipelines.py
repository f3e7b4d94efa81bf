"""Trace datasets as an Apache Beam pipeline (`alta trace --runner beam`, alta/pipelines.py):
the same files as the local writer (alta/traces.py), byte for byte, on the DirectRunner in
process and with worker processes. Beam starts slowly, so the tests run few pipelines."""

import importlib
import pickle
import shutil
import sys

import pytest
from helpers import PROGRAMS, alta, run_without_importing

from alta.checker import check_file
from alta.errors import AltaError
from alta.tasks import find_task
from alta.traces import TraceSettings, shard_inputs, write_dataset


def files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def pipelines():
    pytest.importorskip("apache_beam")
    from alta import pipelines

    return pipelines


def test_worker_processes_write_the_local_writers_files(tmp_path):
    """Two worker processes (each checks the program and loads the task module again from
    the text the job carries): the same shards and manifest, and `datasets` reads them."""
    beam = pipelines()
    import datasets

    program = check_file(PROGRAMS / "addition.alta")
    task = find_task(program)
    settings = TraceSettings(samples=30, shard_size=8, lengths=(1, 4), vectors=True,
                             undefined="noise")  # noise: the generator seeded per shard
    local = write_dataset(program, task, settings, tmp_path / "local")
    options = beam.beam_options(["direct_num_workers=2", "direct_running_mode=multi_processing"])
    manifest = beam.run_trace_pipeline(program, task, settings, tmp_path / "beam", options)
    assert manifest == local
    assert files(tmp_path / "beam") == files(tmp_path / "local")
    assert len(files(tmp_path / "beam")) == settings.shards + 1 == 5
    loaded = datasets.load_dataset(str(tmp_path / "beam"), split="train")
    assert len(loaded) == sum(local["counts"]["rows_per_shard"].values()) > 0
    assert set(loaded.column_names) == set(local["columns"])


def test_jsonl_without_a_task_module_in_process(tmp_path):
    """The generic sampler (no task module beside the program) and JSONL with vectors."""
    beam = pipelines()
    source = tmp_path / "bits.alta"
    shutil.copy(PROGRAMS / "parity.alta", source)
    program = check_file(source)
    assert find_task(program) is None
    settings = TraceSettings(samples=21, shard_size=5, lengths=(0, 6), format="jsonl",
                             vectors=True)
    write_dataset(program, None, settings, tmp_path / "local")
    beam.run_trace_pipeline(program, None, settings, tmp_path / "beam")
    assert files(tmp_path / "beam") == files(tmp_path / "local")
    assert len(files(tmp_path / "beam")) == settings.shards + 1 == 6


def test_a_failed_shard_is_named_leaves_whole_shards_and_resumes(tmp_path, monkeypatch):
    beam = pipelines()
    import alta.traces as traces

    program = check_file(PROGRAMS / "parity.alta")
    task = find_task(program)
    settings = TraceSettings(samples=50, shard_size=10, lengths=(1, 12))
    write_dataset(program, task, settings, tmp_path / "whole")
    whole = files(tmp_path / "whole")
    real = traces.shard_columns

    def failing(program, inputs, first, *args):  # the in-process runner calls this module
        if first == 20:
            raise ValueError("injected failure")
        return real(program, inputs, first, *args)

    monkeypatch.setattr(traces, "shard_columns", failing)
    cut = tmp_path / "cut"
    with pytest.raises(AltaError, match=r"(?m)failed at shard 2 \(.*train-00002-of-00005\.parquet"
                                        r"\): ValueError: injected failure$") as info:
        beam.run_trace_pipeline(program, task, settings, cut)
    assert "resumes" in str(info.value)
    left = files(cut)
    assert "counts" not in (cut / "manifest.json").read_text()
    shards = {p for p in left if p.parent.name == "data"}
    assert shards and all(p.name.startswith("train-") for p in shards)  # no temporary file
    assert next(p for p in whole if p.name.startswith("train-00002")) not in shards
    assert all(left[p] == whole[p] for p in shards)  # each one whole
    kept = {p: (cut / p).stat() for p in shards}
    monkeypatch.setattr(traces, "shard_columns", real)
    beam.run_trace_pipeline(program, task, settings, cut)
    assert files(cut) == whole
    for p, stat in kept.items():  # skipped, not written again
        assert ((cut / p).stat().st_ino, (cut / p).stat().st_mtime_ns) == \
            (stat.st_ino, stat.st_mtime_ns)


def test_the_job_travels_as_text():
    """What a worker receives pickles with the standard pickler (a task module's functions
    do not: it is loaded by path, not importable by name) and gives back the same program
    and the same sampler."""
    beam = pipelines()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(find_task(check_file(PROGRAMS / "dyck.alta")))  # defines its own
    program = check_file(PROGRAMS / "addition.alta")
    task = find_task(program)
    settings = TraceSettings(samples=12, shard_size=4, lengths=(1, 9))
    job = beam.TraceJob.of(program, task, settings, "/nowhere", {})
    again, again_task = pickle.loads(pickle.dumps(job)).load()
    assert again == program
    assert all(shard_inputs(again, again_task, settings, k) ==
               shard_inputs(program, task, settings, k) for k in range(settings.shards))


def test_the_command(tmp_path):
    pipelines()
    program = check_file(PROGRAMS / "parity.alta")
    settings = TraceSettings(samples=24, shard_size=7, lengths=(1, 9), vectors=True)
    write_dataset(program, find_task(program), settings, tmp_path / "local")
    done = alta("trace", PROGRAMS / "parity.alta", "--samples", "24", "--shard-size", "7",
                "--lengths", "1..9", "--vectors", "-o", tmp_path / "beam", "--runner", "beam",
                "--beam-option", "direct_num_workers=2",
                "--beam-option", "direct_running_mode=multi_threading")
    assert done.returncode == 0, done.stderr
    assert "4 parquet shards" in done.stdout and "Beam's DirectRunner" in done.stderr
    assert files(tmp_path / "beam") == files(tmp_path / "local")
    assert "Traceback" not in done.stderr
    misspelt = alta("trace", PROGRAMS / "parity.alta", "-o", tmp_path / "x", "--runner", "beam",
                    "--beam-option", "direct_num_worker=2")
    assert misspelt.returncode == 1
    assert "no pipeline option direct_num_worker (did you mean direct_num_workers?)" in \
        misspelt.stderr
    assert not (tmp_path / "x").exists()


def test_beam_options_without_beam_and_without_the_extra(tmp_path, monkeypatch):
    """The local paths never import Apache Beam; --beam-option needs --runner beam; and
    without Beam installed, --runner beam says how to install it."""
    run_without_importing([["trace", PROGRAMS / "parity.alta", "--samples", "5", "-o",
                            tmp_path / "local"]], packages=("apache_beam",))
    done = alta("trace", PROGRAMS / "parity.alta", "-o", tmp_path / "y", "--beam-option",
                "direct_num_workers=2")
    assert done.returncode == 1 and "--beam-option applies to --runner beam" in done.stderr
    monkeypatch.delitem(sys.modules, "alta.pipelines", raising=False)
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    with pytest.raises(AltaError, match=r"pip install -e '\.\[beam\]'"):
        importlib.import_module("alta.pipelines")
