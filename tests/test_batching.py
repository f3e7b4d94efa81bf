"""Many inputs in batches: the plan (alta.batching), the batched and streamed runs of both
back ends against one unbatched run (the interpreter as the oracle), the error a run of
many inputs reports, the persistent compilation cache, and the commands that need no JAX."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROGRAMS, alta, check, run_without_importing
from program_generator import generate_faulty
from test_faults import CASES, OR_READS

from alta import batching
from alta.batching import BatchSettings, plan_batches, position_bucket, windows
from alta.cache import cache_root, kept
from alta.compiled import ModelRunner, run_compiled, run_many
from alta.compiler import compile_program
from alta.errors import AltaRuntimeError
from alta.interpreter import run
from alta.interpreter import run_many as interpret_many

SMALL = BatchSettings(tokens=64, most_rows=8, least_positions=4, window=11)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# ---- the plan ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_plan_covers_every_input_once_at_a_few_bucket_shapes(seed):
    rng = random.Random(seed)
    cap = rng.choice([None, 40, 100, 1000])
    settings = BatchSettings(tokens=rng.choice([16, 256, 4096]), most_rows=rng.choice([1, 8, 64]),
                             least_positions=rng.choice([1, 8]))
    lengths = [rng.randint(0, cap or 300) for _ in range(rng.randint(0, 600))]
    plans = plan_batches(lengths, cap, settings)
    assert sorted(i for p in plans for i in p.indices) == list(range(len(lengths)))
    for p in plans:
        longest = max(lengths[i] for i in p.indices)
        assert p.positions >= longest and p.rows >= len(p.indices)
        assert _is_power_of_two(p.rows) and p.rows <= settings.most_rows
        assert _is_power_of_two(p.positions) or p.positions == cap
        assert p.positions >= min(settings.least_positions, cap or settings.least_positions)
        assert p.rows * p.positions <= max(settings.tokens, p.positions) or p.rows == 1
        # shortest first, ties in input order: padding stays small
        assert list(p.indices) == sorted(p.indices, key=lambda i: (lengths[i], i))
    # a handful of shapes: per position bucket, full batches and powers of two below them
    buckets = {p.positions for p in plans}
    assert len({(p.rows, p.positions) for p in plans}) <= len(buckets) * (
        settings.most_rows.bit_length())
    assert len(buckets) <= (cap or 512).bit_length() + 1


def test_position_buckets_are_powers_of_two_capped_by_the_exact_length():
    assert [position_bucket(n, 58) for n in (0, 1, 8, 9, 31, 33, 58)] == [8, 8, 8, 16, 32, 58,
                                                                           58]
    assert position_bucket(3, None, BatchSettings(least_positions=1)) == 4


def test_windows_read_lazily():
    taken = []

    def numbers():
        for i in itertools.count():
            taken.append(i)
            yield i

    chunks = windows(numbers(), 5)
    assert next(chunks) == [0, 1, 2, 3, 4] and len(taken) == 5
    assert next(chunks) == [5, 6, 7, 8, 9] and len(taken) == 10
    assert list(windows([1, 2, 3], 2)) == [[1, 2], [3]] and list(windows([], 3)) == []


# ---- runs of many inputs against one batch -----------------------------------------------

def _inputs(rng: random.Random, count: int, longest: int) -> list[str]:
    return [" ".join(rng.choice("01") for _ in range(rng.randint(0, longest)))
            for _ in range(count)]


def test_batched_compiled_runs_give_the_interpreters_outcomes_in_input_order(compiled,
                                                                              program):
    rng = random.Random(0)
    texts = _inputs(rng, 150, 30)
    parity = compiled("parity")
    oracle = run(program("parity"), texts)
    got = [o for window in run_many(parity, iter(texts), settings=SMALL) for o in window]
    assert [o.index for o in got] == list(range(len(texts)))
    assert [o.text for o in got] == texts
    assert [o.output for o in got] == list(oracle.outputs)
    assert [o.layers for o in got] == oracle.layers.tolist()
    assert [o.halted for o in got] == oracle.halted.tolist()
    # and the interpreter's own batched run
    mine = [r for window in interpret_many(program("parity"), iter(texts), settings=SMALL)
            for r in window]
    assert mine == list(zip(texts, oracle.outputs, oracle.halted.tolist()))


def test_a_window_is_yielded_before_the_next_is_read(compiled):
    taken = []

    def texts():
        for i in itertools.count():
            taken.append(i)
            yield " ".join(["1 0"] * (i % 5))

    stream = run_many(compiled("parity"), texts(), settings=SMALL)
    first = next(stream)
    assert len(first) == SMALL.window and len(taken) == SMALL.window
    next(stream)
    assert len(taken) == 2 * SMALL.window


def test_stuck_inputs_are_reported_per_input(compiled, program):
    texts = ["1 0 1 1 0 1", "1", "0 0 0 0 0 0 0 0 0", ""]
    oracle = run(program("parity"), texts, max_layers=3)
    got = [o for w in run_many(compiled("parity"), texts, max_layers=3, settings=SMALL)
           for o in w]
    assert [o.stuck for o in got] == (~oracle.halted).tolist()
    assert [o.output for o in got] == list(oracle.outputs)


# ---- the error a run of many inputs reports -----------------------------------------------

def _errors(program, compiled, model, texts):
    """The error of: the interpreter on one batch, the compiled model on one batch, and
    both back ends batched and streamed."""
    out = []
    for runner in (lambda: run(program, texts),
                   lambda: run_compiled(compiled, texts, model=model),
                   lambda: [w for w in run_many(compiled, iter(texts), model=model,
                                                settings=SMALL)],
                   lambda: [w for w in interpret_many(program, iter(texts), settings=SMALL)]):
        try:
            runner()
        except AltaRuntimeError as err:
            out.append(str(err))
        else:
            out.append(None)
    return out


def test_the_error_of_many_inputs_is_the_one_batch_error():
    program = check(OR_READS)
    compiled = compile_program(program)
    model = ModelRunner(compiled, keep=False)  # each batch shape on its own path
    rng = random.Random(1)
    seen = set()
    for _ in range(12):
        pool = CASES["or_reads"][1] + _inputs(rng, 10, 6)  # with and without faults
        texts = [rng.choice(pool) for _ in range(rng.choice([1, 2, 40]))]
        errors = _errors(program, compiled, model, texts)
        assert len(set(errors)) == 1, (texts, errors)
        seen.add(errors[0] is None)
    assert seen == {True, False}  # runs with and without an error


@pytest.mark.parametrize("seed", range(0, 24, 3))
def test_random_faulty_programs_report_the_one_batch_error_however_batched(seed):
    """Faults at different layers in different windows: a later window's earlier fault must
    win, as in one batch."""
    generated, program = generate_faulty(seed)
    compiled = compile_program(program)
    model = ModelRunner(compiled, keep=False)  # each batch shape on its own path
    rng = random.Random(seed)
    inputs = list(generated.inputs)
    for _ in range(3):
        texts = [rng.choice(inputs) for _ in range(rng.randint(1, 30))]
        errors = _errors(program, compiled, model, texts)
        assert len(set(errors)) == 1, (generated.source, texts, errors)


def test_the_cli_streams_and_reports_a_later_error(tmp_path):
    """Windows already run stay printed when a later input fails (interpreter: no JAX)."""
    window = batching.DEFAULT.window
    lines = ["1 0 1"] * (4 * 4096 + 3) + ["1 2"]
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(lines) + "\n")
    done = alta("run", PROGRAMS / "parity.alta", "--inputs", path)
    assert done.returncode == 1 and "input '1 2'" in done.stderr
    printed = done.stdout.splitlines()
    assert len(printed) >= window and len(printed) % window == 0 and set(printed) == {"0"}


# ---- the persistent compilation cache ------------------------------------------------------

def test_the_cache_directory_follows_xdg_and_can_be_switched_off(tmp_path):
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "alta"
    assert cache_root({"HOME": "/h", "ALTA_COMPILATION_CACHE": "1"}) == \
        cache_root({"HOME": "/h"}) == Path("/h/.cache/alta")
    for off in ("0", "off", "OFF", "no", "false"):
        assert cache_root({"ALTA_COMPILATION_CACHE": off, "XDG_CACHE_HOME": "/x"}) is None
    assert cache_root({"ALTA_COMPILATION_CACHE": str(tmp_path / "c")}) == tmp_path / "c"


def _run_checkpoint(tmp_path, **env):
    model = tmp_path / "parity.safetensors"
    if not model.exists():
        assert alta("compile", PROGRAMS / "parity.alta", "-o", model).returncode == 0
    environ = {k: v for k, v in os.environ.items() if k != "ALTA_COMPILATION_CACHE"}
    done = subprocess.run([sys.executable, "-m", "alta.cli", "run", str(model), "1 0 1"],
                          capture_output=True, text=True, timeout=300, env={**environ, **env})
    assert done.returncode == 0 and done.stdout == "0\n", done.stderr
    return done


def test_a_second_run_reuses_the_cache_and_opting_out_writes_none(tmp_path):
    xdg = tmp_path / "xdg"
    _run_checkpoint(tmp_path, XDG_CACHE_HOME=str(xdg))
    # its own kept executable serves a checkpoint's run, not JAX's cache (see ModelRunner)
    assert not (xdg / "alta" / "jax").exists() or not any((xdg / "alta" / "jax").iterdir())
    runs = sorted((xdg / "alta" / "runs").iterdir())
    assert [p.suffix for p in runs] == [".xla-executable"], runs  # the one shape it needed
    # one CPU device per core: the one input's row padded to one row per device
    assert runs[0].name.split("-")[1].startswith(f"d{_cores_devices()}x"), runs
    stamps = [p.stat().st_mtime_ns for p in runs]
    _run_checkpoint(tmp_path, XDG_CACHE_HOME=str(xdg))
    assert [p.stat().st_mtime_ns for p in sorted((xdg / "alta" / "runs").iterdir())] == stamps
    off = tmp_path / "off"
    _run_checkpoint(tmp_path, XDG_CACHE_HOME=str(off), ALTA_COMPILATION_CACHE="0")
    assert not off.exists()


def test_a_warm_run_loads_the_executable_without_flax_or_lowering(tmp_path, monkeypatch):
    """A run whose executable is kept neither builds the model (Flax) nor lowers anything
    (lowering an exported call initialises LAPACK through SciPy), and a checkpoint's kept
    checked program spares parsing (Lark)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ALTA_COMPILATION_CACHE", str(cache))
    # the devices `alta run` makes, for the run in the process below too (which calls main)
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", str(_cores_devices()))
    _run_checkpoint(tmp_path, ALTA_COMPILATION_CACHE=str(cache))
    done = run_without_importing([["run", tmp_path / "parity.safetensors", "1 1 0 1"]],
                                 packages=("flax", "scipy", "lark"))
    assert done.stdout == "1\n"


def _cores_devices() -> int:
    """The CPU devices `alta run` makes here: one per core, at most 8."""
    return min(len(os.sched_getaffinity(0)), 8)


def _cpu_devices(setup: str, **env) -> int:
    code = f"{setup}; import jax; print(jax.device_count())"
    environ = {k: v for k, v in os.environ.items()
               if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**environ, **env})
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_command_line_runs_get_one_cpu_device_per_core_unless_the_user_chose():
    split = "from alta.devices import one_device_per_core; one_device_per_core()"
    assert _cpu_devices(split) == _cores_devices()
    assert _cpu_devices(split, JAX_NUM_CPU_DEVICES="1") == 1  # the user's choice stands
    assert _cpu_devices(split, XLA_FLAGS="--xla_force_host_platform_device_count=3") == 3
    assert _cpu_devices("import jax; " + split) == 1  # too late: JAX already started


def test_kept_results_are_built_once_and_again_when_damaged_or_off(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"value": len(calls)}

    on = {"ALTA_COMPILATION_CACHE": str(tmp_path)}
    assert kept("things", "k1", build, on) == {"value": 1}
    assert kept("things", "k1", build, on) == {"value": 1} and len(calls) == 1
    assert kept("things", "k2", build, on) == {"value": 2}  # another key: built
    (tmp_path / "things" / "k1.pickle").write_bytes(b"damaged")
    assert kept("things", "k1", build, on) == {"value": 3}  # damaged: built and kept again
    assert kept("things", "k1", build, on) == {"value": 3}
    off = {"ALTA_COMPILATION_CACHE": "0"}
    assert kept("things", "k1", build, off) == {"value": 4} and len(calls) == 4


def test_stored_runs_are_reused_and_damaged_ones_compiled_again(tmp_path):
    """Runs kept by one ModelRunner serve the next (the outputs the interpreter gives, at
    dense and structured shapes); a damaged entry is compiled again and replaced. In a fresh
    process, as a command runs: in this one JAX's persistent cache may be on (other tests),
    and an executable it serves is not stored (see ModelRunner)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from test_batching import kept_runs_scenario; kept_runs_scenario(sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent),
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def kept_runs_scenario(directory: str) -> None:
    tmp_path = Path(directory)
    parity = compile_program(check((PROGRAMS / "parity.alta").read_text()))
    rng = random.Random(5)
    texts = [" ".join(rng.choice("01") for _ in range(rng.randint(1, 30))) for _ in range(33)]
    want = run(parity.program, texts).outputs
    settings = BatchSettings(tokens=512, most_rows=16, window=64)  # rows 16, 16 and 1

    def outputs():
        runner = ModelRunner(parity, {"ALTA_COMPILATION_CACHE": str(tmp_path)})
        got = tuple(o.output for window in run_many(parity, texts, model=runner,
                                                    settings=settings) for o in window)
        assert got == want
        return sorted((tmp_path / "runs").iterdir())

    stored = outputs()
    assert {p.name.split("-")[1][0] for p in stored} == {"s", "d"}, stored  # both paths ran
    assert {p.suffix for p in stored} == {".xla-executable"}
    before = {p: p.stat().st_mtime_ns for p in stored}
    assert outputs() == stored and {p: p.stat().st_mtime_ns for p in stored} == before
    for p in stored:  # damaged: traced, compiled and kept again
        p.write_bytes(b"damaged")
    assert outputs() == stored and all(p.read_bytes() != b"damaged" for p in stored)


# ---- start-up: commands that need no JAX ----------------------------------------------------

def test_commands_without_a_model_never_import_jax(tmp_path):
    parity = PROGRAMS / "parity.alta"
    checkpoint = tmp_path / "parity.safetensors"
    inputs = tmp_path / "in.txt"
    inputs.write_text("1 0\n1 1 1\n")
    config = tmp_path / "study.toml"  # an experiment's configuration, read but not run
    config.write_text(f'program = "{parity}"\ntrain_lengths = "1..3"\ntest_lengths = [4]\n'
                      'samples = 8\ntest_samples = 2\n')
    commands = [["check", "-q", parity], ["run", parity, "1 0"],
                ["run", parity, "--inputs", inputs], ["compile", parity, "-o", checkpoint],
                ["inspect", parity], ["inspect", checkpoint],
                ["trace", parity, "--samples", "4", "--format", "jsonl", "--vectors",
                 "-o", tmp_path / "traces"],
                ["coverage", parity, "--samples", "4"], ["coverage", "--training", config]]
    run_without_importing(commands)
