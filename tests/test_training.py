"""`alta train` and `alta run --mlp`: an MLP learned from traces, run in the Transformer."""

import random
import re
from itertools import pairwise

import numpy as np
import pytest
from helpers import PROGRAMS, alta_main

from alta.checker import check_file, check_source
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.errors import AltaError
from alta.interpreter import run
from alta.tasks import find_task
from alta.training import (
    TrainSettings,
    load_mlp,
    train_mlp,
    with_learned_mlp,
)


def test_loss_falls_and_the_learned_mlp_generalises_in_length(parity_mlp):
    program, _, path, curve = parity_mlp
    assert curve[-1][1] < curve[0][1] / 50
    compiled = compile_program(program)
    model = with_learned_mlp(compiled, *load_mlp(path))
    rng = random.Random(7)
    texts = [" ".join(rng.choice("01") for _ in range(rng.randint(20, 40))) for _ in range(50)]
    result = run_compiled(compiled, texts, model=model)
    oracle = find_task(program).oracle
    right = sum(got == oracle(t) for got, t in zip(result.outputs, texts))
    assert right == len(texts), f"{right}/{len(texts)} right at 20-40 bits, trained on <= 8"


def test_a_learned_mlp_is_traced_and_verified_layer_by_layer(parity_mlp, capsys):
    from alta.cli import main

    program, _, path, _ = parity_mlp
    assert main(["run", str(PROGRAMS / "parity.alta"), "--mlp", str(path), "1 0 1 1",
                 "--trace"]) == 0
    out = capsys.readouterr().out
    interpreted = run(program, ["1 0 1 1"], trace=True)
    from alta.reports import format_trace

    # The learned MLP reaches the compiled states on these short inputs: the same table.
    assert format_trace(program, interpreted) in out and out.rstrip().endswith("1")
    assert main(["verify", str(PROGRAMS / "parity.alta"), "--mlp", str(path), "--samples",
                 "20", "--max-length", "8"]) == 0
    assert capsys.readouterr().out.startswith("ok: interpreter and compiled model agree")


def test_the_mlp_file_is_checked(parity_mlp, tmp_path):
    program, _, path, _ = parity_mlp
    manifest, weights = load_mlp(path)
    assert manifest["hidden"] == [64, 64] and manifest["program"] == "parity"
    assert weights["mlp.0.weight"].shape == (manifest["width"], 64)
    other = compile_program(check_file(PROGRAMS / "parity_absolute.alta"))
    with pytest.raises(AltaError, match="the MLP was trained on traces from another program, "
                                        "'parity', not 'parity_absolute'"):
        with_learned_mlp(other, manifest, weights)
    edited = check_source(program.source.text + "\n# edited\n", "parity.alta")
    with pytest.raises(AltaError, match="trained on traces from another version of parity"):
        with_learned_mlp(compile_program(edited), manifest, weights)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(AltaError, match=re.escape(f"{broken}: not a usable learned MLP: "
                                                  "corrupt or truncated")):
        load_mlp(broken)
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(AltaError, match=re.escape(f"no such MLP file: {missing}")):
        load_mlp(missing)


def test_train_and_run_commands(parity_mlp, tmp_path):
    program, directory, path, _ = parity_mlp
    out, png = tmp_path / "m.safetensors", tmp_path / "loss.png"
    done = alta_main("train", directory, "-o", out, "--steps", "300", "--hidden", "16",
                     "--plot", png)
    assert done.returncode == 0, done.stderr
    assert "final loss" in done.stdout and "300/300 steps" in done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest, _ = load_mlp(out)  # what `alta train` wrote, with the settings it was given
    assert manifest["hidden"] == [16] and manifest["training"]["steps"] == 300
    # `alta run --mlp` with the fixture's MLP (exact up to 40 bits, see above): the oracle's
    # outputs and exit status 0
    texts = ["1 0 1 1", "1", "0 1 1 0 1 0 1 1 1", "0"]
    run = alta_main("run", PROGRAMS / "parity.alta", "--mlp", path, *texts)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [find_task(program).oracle(t) for t in texts]
    bad = alta_main("run", PROGRAMS / "parity.alta", "--mlp", out, "--backend", "interpreter", "1")
    assert bad.returncode == 1 and "compiled backend only" in bad.stderr
    plain = alta_main("trace", PROGRAMS / "parity.alta", "--samples", "5", "-o", tmp_path / "nv")
    assert plain.returncode == 0
    no_vectors = alta_main("train", tmp_path / "nv", "-o", tmp_path / "x.safetensors")
    assert no_vectors.returncode == 1 and "--vectors" in no_vectors.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_training_is_deterministic_for_a_seed_and_depends_on_it():
    rng = np.random.default_rng(0)
    x = rng.random((64, 6), dtype=np.float32)
    y = np.tanh(x @ rng.random((6, 6), dtype=np.float32))
    settings = TrainSettings(hidden=(8,), steps=50, seed=3)
    a, curve_a = train_mlp(x, y, settings)
    b, curve_b = train_mlp(x, y, settings)
    assert curve_a == curve_b
    assert all(np.array_equal(a.export_weights()[k], b.export_weights()[k])
               for k in a.export_weights())
    c, curve_c = train_mlp(x, y, TrainSettings(hidden=(8,), steps=50, seed=4))
    assert curve_c != curve_a  # another seed: another initialisation and another run
    assert not any(np.array_equal(a.export_weights()[k], c.export_weights()[k])
                   for k in a.export_weights())


def test_noise_scaled_to_each_blocks_spacing():
    """noise_scale "spacing": one-hot dimensions keep the std, a numerical dimension gets it
    times the smallest gap between its declared values (training with scales: below)."""
    from alta.compiler.layout import build_layout
    from alta.training import input_noise_scales

    program = check_file(PROGRAMS / "addition.alta")
    layout = build_layout(program)
    scales = input_noise_scales(program, layout, "spacing")
    numerical = [b for b in layout.blocks if b.kind == "numerical"]
    assert numerical and any(b.kind != "numerical" for b in layout.blocks)
    for block in layout.blocks:
        part = scales[block.start:block.stop]
        if block.kind == "numerical":
            values = sorted(program.type_of(block.name).values)
            assert part[0] == pytest.approx(min(b - a for a, b in pairwise(values)))
        else:
            assert (part == 1).all(), block.name
    assert min(scales[b.start] for b in numerical) < 0.1  # 1 / (place + 2) and the like
    assert (input_noise_scales(program, layout, "uniform") == 1).all()
    with pytest.raises(AltaError, match="unknown noise scale 'wide'"):
        input_noise_scales(program, layout, "wide")
    with pytest.raises(AltaError, match="needs the layout's scales"):
        train_mlp(np.zeros((4, 2)), np.zeros((4, 2)), TrainSettings(noise_scale="spacing"))
