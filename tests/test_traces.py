"""Trace datasets (`alta trace`) and rule coverage (`alta coverage`)."""

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import PROGRAMS, alta_main, compiled_library

from alta.checker import check_file
from alta.compiled import load_model
from alta.compiler.layout import build_layout
from alta.coverage import coverage_of_dataset, coverage_of_run
from alta.errors import AltaError
from alta.tasks import find_task
from alta.traces import TraceSettings, read_dataset, shard_columns, shard_inputs, write_dataset


def trace(tmp_path, name, **kw):
    program = check_file(PROGRAMS / f"{name}.alta")
    settings = TraceSettings(**{"samples": 40, "shard_size": 16, **kw})
    directory = tmp_path / f"{name}-{kw.get('format', 'parquet')}"
    manifest = write_dataset(program, find_task(program), settings, directory)
    return program, directory, manifest


def files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def test_datasets_load_without_alta(tmp_path):
    import datasets
    import pandas as pd
    import pyarrow.parquet as pq

    _, directory, manifest = trace(tmp_path, "addition", lengths=(1, 6), vectors=True)
    rows = sum(manifest["counts"]["rows_per_shard"].values())
    table = pq.read_table(directory / "data")
    frame = pd.read_parquet(directory / "data")
    hf = datasets.load_dataset(str(directory), split="train")
    assert table.num_rows == len(frame) == len(hf) == rows > 0
    assert set(manifest["columns"]) == set(table.column_names) == set(hf.column_names)
    # Every input ran to halting: its rows cover layers 1..L at every position.
    for _, group in frame.groupby("example"):
        length = group["position"].max() + 1
        assert len(group) == group["layer"].max() * length
    # The last layer's output digits spell the sum.
    last = frame[frame["layer"] == frame.groupby("example")["layer"].transform("max")]
    for _, group in last.groupby("example"):
        text = group["input"].iloc[0]
        digits = group[group["mlp.shown"] == 1].sort_values("position")["mlp.digit"]
        assert "".join(map(str, digits)) == str(eval(text))
    _, jsonl, _ = trace(tmp_path, "addition", lengths=(1, 6), vectors=True, format="jsonl")
    from_json = datasets.load_dataset(str(jsonl), split="train")
    assert from_json.column_names == hf.column_names and len(from_json) == rows
    for row in (0, 5, rows - 1):
        a, b = from_json[row], hf[row]
        for key in a:
            if key.startswith("mlp_"):
                assert np.allclose(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


def test_same_seed_same_files_other_seed_other_inputs(tmp_path):
    program = check_file(PROGRAMS / "addition.alta")
    settings = TraceSettings(samples=30, shard_size=8, lengths=(1, 5))
    write_dataset(program, find_task(program), settings, tmp_path / "a")
    write_dataset(program, find_task(program), settings, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")
    task = find_task(program)
    assert shard_inputs(program, task, settings, 1) != shard_inputs(program, task, settings, 2)
    other = TraceSettings(samples=30, shard_size=8, lengths=(1, 5), seed=1)
    assert shard_inputs(program, task, settings, 0) != shard_inputs(program, task, other, 0)


@pytest.mark.parametrize("sampler", ["task", "generic"])
def test_shard_inputs_are_seeded_with_the_pair_seed_and_shard(sampler):
    """Shard k of seed s is drawn from a generator seeded with the pair (s, k) (alta/traces.py):
    the same pair gives the same inputs, and no other pair does; in particular not (s + 1,
    k - 1), which a generator seeded with s + k would make equal."""
    program = check_file(PROGRAMS / "parity.alta")
    task = find_task(program) if sampler == "task" else None  # else the generic sampler

    def inputs(seed, shard):
        settings = TraceSettings(samples=48, shard_size=8, lengths=(1, 6), seed=seed)
        return tuple(shard_inputs(program, task, settings, shard))

    pairs = [(seed, shard) for seed in range(4) for shard in range(6)]
    drawn = {pair: inputs(*pair) for pair in pairs}
    assert all(drawn[pair] == inputs(*pair) for pair in pairs[::5])
    assert len(set(drawn.values())) == len(pairs)


def test_undefined_noise_is_seeded_with_the_pair_seed_and_shard():
    """With undefined="noise" the vectors' undefined head outputs are drawn from a generator
    seeded with (seed, shard): the same pair gives the same vectors, another seed or another
    shard other noise (also (s + 1, k - 1) against (s, k)), and the noise sits only in the
    blocks of undefined heads (the zero fill of the same rows elsewhere)."""
    program = check_file(PROGRAMS / "parity.alta")
    inputs = ["1 0 1", "0", "1 1 0 1", ""]  # the start token has no left neighbour

    def vectors(seed, shard, fill="noise"):
        settings = TraceSettings(samples=4, seed=seed, vectors=True, undefined=fill)
        columns = shard_columns(program, inputs, 0, settings, shard=shard)
        return np.array(columns["mlp_input"])

    noise = {(seed, shard): vectors(seed, shard) for seed in range(3) for shard in range(3)}
    assert np.array_equal(noise[1, 1], vectors(1, 1))
    keys = list(noise)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.array_equal(noise[a], noise[b]), (a, b)
    zero = vectors(0, 0, fill="zero")
    layout = build_layout(program)
    heads = np.zeros(layout.width, bool)
    for head in program.heads:
        block = layout.block(head.name)
        heads[block.start:block.stop] = True
    for x in noise.values():
        assert np.array_equal(x[:, ~heads], zero[:, ~heads])
        assert (x[:, heads] != zero[:, heads]).any()


def test_a_failed_run_leaves_whole_shards_and_resumes(tmp_path, monkeypatch):
    import alta.traces as traces

    program = check_file(PROGRAMS / "parity.alta")
    settings = TraceSettings(samples=50, shard_size=10, lengths=(1, 12))
    write_dataset(program, find_task(program), settings, tmp_path / "whole")
    real = traces.shard_columns

    def failing(program, inputs, first, *args):
        if first == 30:
            raise KeyboardInterrupt
        return real(program, inputs, first, *args)

    monkeypatch.setattr(traces, "shard_columns", failing)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(program, find_task(program), settings, tmp_path / "cut")
    assert sorted(p.name for p in (tmp_path / "cut" / "data").iterdir()) == \
        [f"train-0000{i}-of-00005.parquet" for i in range(3)]
    monkeypatch.setattr(traces, "shard_columns", real)
    write_dataset(program, find_task(program), settings, tmp_path / "cut")
    assert files(tmp_path / "cut") == files(tmp_path / "whole")


def test_killing_the_command_leaves_only_complete_shards(tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "alta.cli", "trace", str(PROGRAMS / "parity.alta"),
               "--samples", "4000", "--shard-size", "100", "--lengths", "1..60", "-o", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "data").glob("train-*"))
                                         if (out / "data").exists() else []) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sorted((out / "data").glob("train-*"))
    assert 2 <= len(done) < 40
    import pyarrow.parquet as pq

    for path in done:  # each one whole
        assert pq.read_table(path).num_rows > 0
    resumed = alta_main("trace", PROGRAMS / "parity.alta", "--samples", "4000",
                        "--shard-size", "100", "--lengths", "1..60", "-o", out)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list((out / "data").iterdir())) == 40  # no temporary files left either
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["shards"] == 40


def test_other_settings_in_the_same_directory_are_refused(tmp_path):
    program, directory, _ = trace(tmp_path, "parity")
    with pytest.raises(AltaError, match="other settings"):
        write_dataset(program, None, TraceSettings(samples=40, shard_size=16, seed=3),
                      directory)


@pytest.mark.parametrize("name", ["addition", "parity_sum_mod_2"])
@pytest.mark.parametrize("fill", ["zero", "noise"])
def test_vectors_are_the_compiled_layout(tmp_path, name, fill):
    """mlp_input decodes back to the symbolic state, and with undefined heads at zero the
    compiled MLP maps it to mlp_output (with noise there, mlp_output is still the ideal
    target, which the compiled MLP need not reproduce)."""
    from flax import nnx

    program, directory, _ = trace(tmp_path, name, vectors=True, undefined=fill,
                                  lengths=(1, 8) if name == "addition" else None)
    compiled = compiled_library(name)
    model = load_model(compiled, structured=False)
    mlp = nnx.jit(lambda f, x: f(x))  # one compilation per shard's shape, not one per op
    heads = {h.name for h in program.heads}
    # The program's own layout: the compiled model's, less the fault detector that follows
    layout = build_layout(program)
    assert compiled.layout.blocks[:len(layout.blocks)] == layout.blocks
    for columns in read_dataset(directory)[1]:
        x = np.asarray(columns["mlp_input"], np.float32)
        y = np.asarray(columns["mlp_output"], np.float32)
        assert x.shape[1] == y.shape[1] == layout.width
        decoded = layout.decode(x, program)
        for v in program.variables:
            assert np.allclose(decoded[v.name], columns[f"attention.{v.name}"]), v.name
        for h in heads:
            known = np.array([c is not None for c in columns[f"attention.{h}"]])
            want = np.array([0 if c is None else c for c in columns[f"attention.{h}"]])
            assert np.allclose(decoded[h][known], want[known], atol=1e-6), h
        after = layout.decode(x + y, program)
        for v in program.variables:
            assert np.allclose(after[v.name], columns[f"mlp.{v.name}"]), v.name
        if fill == "zero":  # the detector's dimensions do not change the program's
            padded = np.pad(x, ((0, 0), (0, compiled.layout.width - layout.width)))
            got = np.asarray(mlp(model.mlp, padded))[:, :layout.width]
            np.testing.assert_allclose(got, y, atol=1e-4)
        for h in heads:  # undefined: zeros, or weights like an attention average's
            unknown = np.array([c is None for c in columns[f"attention.{h}"]])
            block = layout.block(h)
            part = x[unknown, block.start:block.stop]
            if fill == "zero":
                assert not part.any(), h
            elif block.kind == "categorical" and unknown.any():
                assert (part >= 0).all() and np.allclose(part.sum(axis=1), 1, atol=1e-5), h


def test_coverage_lists_rules_a_narrow_sample_misses(tmp_path):
    program = check_file(PROGRAMS / "addition.alta")
    rules = compiled_library("addition").rules.mlp
    task = find_task(program)
    narrow = coverage_of_run(program, rules, task.inputs(60, size=1))
    wide = coverage_of_run(program, rules, task.inputs(60, size=12))
    assert len(wide.uncovered) < len(narrow.uncovered)
    places = [i for i, r in enumerate(rules)
              if any(w.variable == "place" and w.new == 5 for w in r.writes)]
    assert places and set(places) <= set(narrow.uncovered) - set(wide.uncovered)
    # The same counts from a trace dataset of the same inputs as from running them.
    settings = TraceSettings(samples=60, shard_size=25, lengths=(1, 12))
    write_dataset(program, task, settings, tmp_path / "d")
    texts = [t for s in range(settings.shards) for t in shard_inputs(program, task, settings, s)]
    from_run = coverage_of_run(program, rules, texts)
    from_data = coverage_of_dataset(program, rules, read_dataset(tmp_path / "d")[1])
    assert np.array_equal(from_run.hits, from_data.hits) and from_run.positions == \
        from_data.positions


def test_coverage_and_trace_commands(tmp_path):
    done = alta_main("coverage", PROGRAMS / "addition.alta", "--samples", "30", "--lengths", "1..1")
    assert done.returncode == 0, done.stderr
    assert "rules fire on 30 sampled inputs" in done.stdout
    assert "rules that never fire:" in done.stdout and "line " in done.stdout
    out = tmp_path / "t"
    done = alta_main("trace", PROGRAMS / "parity.alta", "--samples", "20", "--lengths", "3..x",
                     "-o", out)
    assert done.returncode == 1 and "--lengths expects A..B" in done.stderr
    done = alta_main("trace", PROGRAMS / "parity.alta", "--samples", "20", "-o", out,
                     "--format", "jsonl")
    assert done.returncode == 0 and "wrote" in done.stdout and "1/1 shards" in done.stderr
    done = alta_main("coverage", PROGRAMS / "parity.alta", "--dataset", out)
    assert done.returncode == 0 and "3 of 3 rules fire" in done.stdout, done.stdout


def _row(step, b):
    """One input's row of a compiled layer, as a batch of one."""
    from dataclasses import replace

    return replace(step, after_attention=None if step.after_attention is None else
                   step.after_attention[b:b + 1], after_mlp=step.after_mlp[b:b + 1])


def test_undefined_compiled_records_the_compiled_attention(tmp_path, monkeypatch):
    """With undefined="compiled", an undefined head's block in mlp_input is what the compiled
    model's attention writes there in a run of its own, and everything else is as with
    zeros."""
    import alta.traces
    from alta.compiled import trace_compiled
    from alta.framing import encode_batch

    program = check_file(PROGRAMS / "parity.alta")
    compiled = compiled_library("parity")
    monkeypatch.setattr(alta.traces, "_compiled", lambda _: compiled)  # the session's
    inputs = ["1 0 1", "0", "1 1 0 0 1"]
    columns = {fill: shard_columns(program, inputs, 0, TraceSettings(
        samples=3, vectors=True, undefined=fill)) for fill in ("compiled", "zero")}
    x = np.asarray(columns["compiled"]["mlp_input"])
    zero = np.asarray(columns["zero"]["mlp_input"])
    layout = build_layout(program)
    rows = columns["compiled"]
    undefined_somewhere = False
    # The oracle: the compiled model's own run of the inputs in reverse order (the same
    # bucket shape, so no new executable; other rows).
    backwards = inputs[::-1]
    steps = list(trace_compiled(compiled, encode_batch(program, backwards)))
    runs = {text: [_row(step, backwards.index(text)) for step in steps] for text in inputs}
    for h in program.heads:
        block = layout.block(h.name)
        for r, value in enumerate(rows[f"attention.{h.name}"]):
            attended = runs[rows["input"][r]][rows["layer"][r]].after_attention[
                0, rows["position"][r]]
            want = attended[block.start:block.stop] if value is None else \
                zero[r, block.start:block.stop]
            np.testing.assert_allclose(x[r, block.start:block.stop], want, atol=1e-6)
            undefined_somewhere |= value is None and np.abs(want).max() > 0.1
    assert undefined_somewhere  # the compiled attention does not write zeros there
    defined = np.array([all(rows[f"attention.{h.name}"][r] is not None for h in program.heads)
                        for r in range(len(x))])
    assert np.array_equal(x[defined], zero[defined])
    assert np.array_equal(columns["compiled"]["mlp_output"] + x,
                          columns["zero"]["mlp_output"] + zero)
    # and what the compiled MLP adds to what its attention really wrote is mlp_output
    y = np.asarray(columns["compiled"]["mlp_output"])
    for r in range(len(x)):
        step = runs[rows["input"][r]][rows["layer"][r]]
        p = rows["position"][r]
        added = step.after_mlp[0, p] - step.after_attention[0, p]
        np.testing.assert_allclose(added[:layout.width], y[r], atol=1e-5)
    with pytest.raises(AltaError, match="unknown fill 'ones'"):
        write_dataset(program, None, TraceSettings(samples=1, undefined="ones"), tmp_path)


def test_minimality_of_one_digit_additions(tmp_path):
    """Trained on one-digit operands, no sum ever takes a carry from the right: the carry-in
    rules never fire, as the trace dataset of those inputs confirms; a longer input needs one
    exactly when Python's own addition carries into a place that has a digit."""
    from alta.coverage import Coverage, Exercised, exercised_by, novel_inputs

    program = check_file(PROGRAMS / "addition_sequential.alta")
    rules = compiled_library("addition_sequential").rules.mlp
    task = find_task(program)
    settings = TraceSettings(samples=30, shard_size=15, lengths=(1, 1))
    texts = [t for s in range(settings.shards) for t in shard_inputs(program, task, settings, s)]
    exercised = exercised_by(program, rules, texts)
    write_dataset(program, task, settings, tmp_path / "d")
    from_data = coverage_of_dataset(program, rules, read_dataset(tmp_path / "d")[1])
    assert exercised.coverage.uncovered == from_data.uncovered
    carry_in = [i for i, r in enumerate(rules)
                if any(a.name == "carry_right" and a.values == frozenset({1}) for a in r.atoms)]
    assert carry_in and set(carry_in) <= set(exercised.coverage.uncovered)
    # Only the carry-in rules counted as unexercised, every value as seen:
    only_carries = Exercised(
        Coverage(tuple(rules), np.array([0 if i in carry_in else 1 for i in range(len(rules))]),
                 1), {name: frozenset(range(-1000, 1000)) for name in exercised.values})
    longer = task.inputs(40, size=3)
    novelty = novel_inputs(program, only_carries, longer)

    def carries_into_a_digit(text):
        a, b = text.split("+")
        carry, places = 0, max(len(a), len(b))
        for i in range(places):
            if carry:
                return True
            total = int(a[-1 - i] if i < len(a) else 0) + int(b[-1 - i] if i < len(b) else 0)
            carry = (total + carry) >= 10
        return False

    assert novelty.rule.tolist() == [carries_into_a_digit(t) for t in longer]
    assert 0 < novelty.rule.sum() < len(longer) and not novelty.value.any()


def test_minimality_of_absolute_positions():
    """parity_absolute trained on up to 4 bits never sees its position variable past 4: the
    values listed unexercised are exactly the larger ones, and an input needs one exactly
    when it is longer than 4 bits."""
    from alta.compiler.values import reachable_values
    from alta.coverage import exercised_by, novel_inputs

    program = check_file(PROGRAMS / "parity_absolute.alta")
    rules = compiled_library("parity_absolute").rules.mlp
    rng = random.Random(0)

    def bits(n):
        return " ".join(rng.choice("01") for _ in range(n))

    exercised = exercised_by(program, rules, [bits(n) for n in [1, 2, 3, 4] * 5])
    missing = exercised.unexercised_values(program)
    assert missing["pos"] == tuple(v for v in reachable_values(program)["pos"] if v > 4)
    texts = [bits(n) for n in range(1, 9)]
    novelty = novel_inputs(program, exercised, texts)
    assert novelty.either.tolist() == [n > 4 for n in range(1, 9)]


def test_coverage_of_an_experiments_training_set(tmp_path, capsys):
    from alta.cli import main

    config = tmp_path / "c.toml"
    config.write_text(f'program = "{PROGRAMS / "parity_absolute.alta"}"\n'
                      'train_lengths = "1..4"\ntest_lengths = [3, 6]\nsamples = 30\n'
                      'test_samples = 5\n')
    assert main(["coverage", "--training", str(config)]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 rules fire on the 30 training inputs" in out
    assert "pos (line " in out and ": 5, 6, 7," in out
    assert [line.split() for line in out.splitlines()[-2:]] == [
        ["3", "0%", "0%", "0%"], ["6", "0%", "100%", "100%"]]
    assert main(["coverage", "--training", str(PROGRAMS / "parity.alta")]) == 1
    assert "'alta coverage --training' takes an experiment configuration" in \
        capsys.readouterr().err
