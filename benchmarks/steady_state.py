"""Steady-state speed of compiled models against this machine's float32 matrix-multiply peak.

For each program, batch size and CPU device count: inputs per second through `run_compiled`
as `alta run` calls it (a `ModelRunner`: the batch padded to its bucket shape, on the path
that suits that shape; median of `--repeats` runs, after a warm-up run that compiles), and
through the runner alone ("model only"), the multiply-adds executed
per input (counted from the execution plan and the shapes that run: `UniversalTransformer.
multiply_adds`, per layer times the layers the batch's loop runs, plus the halting check of
the initial state), the FLOP/s that makes (2 per multiply-add) as a fraction of the peak
(a jitted 2048 x 2048 `jnp.dot`, median, measured before and after, the best of the
processes), and, on one device, where the time of one layer goes: attention, MLP, halting
check and the whole masked step, each jitted on its own on the batch's final state, the
while loop's own share (one loop iteration minus step and check), and what `run_compiled`
spends outside the model (framing, decoding). Each device count runs in its own process
(JAX_NUM_CPU_DEVICES: a batch's rows split over them, as `alta run` does with one device
per core), one after the other. The machine is shared: compare ratios measured in one run.

    python benchmarks/steady_state.py [--repeats 5] [--batches 1 64 256] [--devices 1 2]
                                      [PROGRAM ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compiled_models import benchmark_inputs  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    return interleaved({"fn": fn}, repeats)["fn"]


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, timed in rounds (one call of each per round), so
    that a busy spell of the shared machine weighs on all of them alike."""
    import jax

    for fn in fns.values():
        jax.block_until_ready(fn())  # compiles
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in times.items()}


def matmul_peak(repeats: int, size: int = 2048) -> float:
    """FLOP/s of a jitted float32 (size x size) @ (size x size), median of `repeats`."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    return 2 * size ** 3 / median_seconds(lambda: dot(a, a), repeats)


def measure(name: str, batch: int, repeats: int) -> dict:
    """One program at one batch size, run as `alta run` runs it: a `ModelRunner` (the path
    that suits the batch's padded bucket shape, the weights as arguments)."""
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from alta.checker import check_file
    from alta.compiled import ModelRunner, _padded, bucket_shape, run_compiled, structured_for
    from alta.compiler import compile_program
    from alta.devices import put_batch
    from alta.framing import encode_batch

    program = check_file(ROOT / "programs" / f"{name}.alta")
    compiled = compile_program(program)
    runner = ModelRunner(compiled, keep=False)
    texts = benchmark_inputs(program, batch, 50)
    encoded = encode_batch(program, texts)
    shape = bucket_shape(compiled, encoded)
    model = runner.model(structured_for(shape))
    tokens, lengths = put_batch(*_padded(encoded, *shape))
    valid = jnp.arange(shape[1])[None, :] < lengths[:, None]
    limit = program.max_layers

    final, layers, _ = runner(tokens, lengths, limit, True)
    iterations = int(np.asarray(layers).max())
    counts = model.multiply_adds(shape[1])
    per_layer = sum(counts.values())
    executed = iterations * per_layer + counts["halting"]

    # The pieces of one layer, each jitted alone, on the state as the loop carries it
    # (features-first chunks of sequences on the structured path), chunk by chunk.
    state = model._state(final)
    valid = model._chunks(valid, shape[1])
    active = model._chunks(jnp.ones(shape[0], bool), shape[1])

    def by_chunks(fn):
        def pieces(m, s, v):
            sparse = m._sparse_weights()  # as a run gathers them: once, outside the loops
            return m._by_chunks(lambda *a: fn(m, sparse, *a), s, v, active)
        return nnx.jit(pieces)

    pieces = {
        "attention": by_chunks(lambda m, w, s, v, a: m._layer(s, v, w)[0] - s),
        "mlp": by_chunks(lambda m, w, s, v, a: m._layer(s, v, w)[1]),  # attention, then MLP
        "halting": by_chunks(lambda m, w, s, v, a: m._stops(s, v, True)),
        "step": by_chunks(lambda m, w, s, v, a: m._step(s, v, a, w)[1]),
    }
    calls = {"whole": lambda: run_compiled(compiled, texts, model=runner).layers,
             "model": lambda: runner(tokens, lengths, limit, True)}
    calls.update({key: lambda f=f: f(model, state, valid) for key, f in pieces.items()})
    seconds = interleaved(calls, repeats)
    whole, in_model = seconds.pop("whole"), seconds.pop("model")
    seconds["mlp"] = max(seconds["mlp"] - seconds["attention"], 0.0)  # it ran both
    iteration = in_model / max(iterations, 1)
    seconds["loop"] = iteration - seconds["step"] - seconds["halting"]
    return {"program": name, "batch": batch, "rows": shape[0], "positions": shape[1],
            "structured": structured_for(shape),
            "iterations": iterations, "inputs_per_s": batch / whole,
            "model_inputs_per_s": batch / in_model, "macs_per_input": executed,
            "macs": counts, "iteration_ms": iteration * 1e3,
            "piece_ms": {k: v * 1e3 for k, v in seconds.items()},
            "outside_ms": (whole - in_model) * 1e3}


def measured(programs: list[str], batches: list[int], repeats: int) -> dict:
    """This process's figures: the peak before and after, and a row per program and batch."""
    import jax

    os.environ.setdefault("ALTA_COMPILATION_CACHE", "0")  # leave the user's cache alone
    peaks = [matmul_peak(repeats)]
    rows = [measure(name, batch, repeats) for name in programs for batch in batches]
    peaks.append(matmul_peak(repeats))
    for row in rows:
        row["devices"] = jax.device_count()
    return {"peaks": peaks, "rows": rows}


def on_devices(devices: int, args) -> dict:
    """`measured` in a child process with `devices` CPU devices."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices)}
    argv = [sys.executable, __file__, *args.programs, "--batches", *map(str, args.batches),
            "--repeats", str(args.repeats), "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the run on {devices} devices failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", default=["addition", "scan"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2],
                        help="CPU device counts, each run in its own process")
    parser.add_argument("--json", action="store_true",
                        help="measure in this process only and print the figures as JSON")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measured(args.programs, args.batches, args.repeats)))
        return

    results = [on_devices(devices, args) for devices in args.devices]
    peaks = [r["peaks"] for r in results]
    peak = max(statistics.median(p) for p in peaks)
    rows = [row for r in results for row in r["rows"]]
    print("float32 matmul peak (jitted 2048^2 jnp.dot, median, before/after, per process): "
          + ", ".join(f"{a / 1e9:.1f} / {b / 1e9:.1f}" for a, b in peaks)
          + f" GFLOP/s; the best, {peak / 1e9:.1f}, is the peak")
    print(f"medians of {args.repeats} runs; CPU, float32; padded to the bucket shape "
          "(rows x N) and on the path `alta run` takes for it\n")
    print(f"{'program':<10} {'batch':>5} {'devices':>7} {'rows':>5} {'N':>4} {'path':>10} "
          f"{'layers':>6} {'inputs/s':>9} {'model only':>10} {'MMAC/input':>10} "
          f"{'GFLOP/s':>8} {'of peak':>7}")
    for r in rows:
        flops = 2 * r["macs_per_input"] * r["inputs_per_s"]
        path = "structured" if r["structured"] else "dense"
        print(f"{r['program']:<10} {r['batch']:>5} {r['devices']:>7} {r['rows']:>5} "
              f"{r['positions']:>4} {path:>10} "
              f"{r['iterations']:>6} {r['inputs_per_s']:>9.1f} {r['model_inputs_per_s']:>10.1f} "
              f"{r['macs_per_input'] / 1e6:>10.2f} {flops / 1e9:>8.2f} {flops / peak:>7.1%}")
    print("\nper layer and sequence, multiply-adds: attention / MLP / halting; one loop "
          "iteration in ms: attention, MLP, halting, step (attention + MLP + masking), "
          "while-loop rest; outside the model per run (the pieces on one device)")
    for r in rows:
        if r["devices"] != 1:
            continue
        m, t = r["macs"], r["piece_ms"]
        print(f"{r['program']:<10} {r['batch']:>5}  MAC {m['attention']:>9,} / "
              f"{m['mlp']:>10,} / {m['halting']:>6,}   iteration {r['iteration_ms']:7.2f} "
              f"= attention {t['attention']:6.2f} + MLP {t['mlp']:6.2f} (step "
              f"{t['step']:6.2f}) + halting {t['halting']:5.2f} + loop {t['loop']:6.2f}"
              f";  outside {r['outside_ms']:6.1f}")


if __name__ == "__main__":
    main()
