"""Compiled inputs per second on 1 vs 2 devices: the batch axis sharded (alta/devices.py).

Each device count runs in a fresh process of its own (`XLA_FLAGS=
--xla_force_host_platform_device_count=N`: JAX picks its devices once per process), which
compiles the program, runs `run_many` once untimed (every padded shape compiled), then times
--repeats runs of the same inputs. The processes take turns, --rounds times, so that drifting
load hits both; prints the median inputs/s of each and their ratio. On a CPU the devices
share the cores (one device already uses several threads), so the ratio says what splitting
the batch costs or gains there; on accelerators each device is its own chip.

    python benchmarks/devices.py [--inputs 512] [--repeats 5] [--rounds 2] [PROGRAM ...]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_models import ROOT, benchmark_inputs

COUNTS = (1, 2)


def child(name: str, inputs: int, repeats: int) -> None:
    """In the process with the devices: seconds per timed run, as JSON."""
    import jax

    from alta.checker import check_file
    from alta.compiled import load_model, run_many
    from alta.compiler import compile_program

    program = check_file(ROOT / "programs" / f"{name}.alta")
    compiled = compile_program(program)
    texts = benchmark_inputs(program, inputs, 50)
    model = load_model(compiled)

    def outputs() -> list[str]:
        return [o.output for window in run_many(compiled, texts, model=model) for o in window]

    first = outputs()  # compiles every shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        assert outputs() == first
        times.append(time.perf_counter() - start)
    print(json.dumps({"devices": jax.device_count(), "times": times, "outputs": first}))


def measure(name: str, count: int, inputs: int, repeats: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={count}").strip()
    done = subprocess.run([sys.executable, __file__, "--child", name, "--inputs", str(inputs),
                           "--repeats", str(repeats)], env=env, capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["devices"] == count, result["devices"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", default=["addition", "parity"])
    parser.add_argument("--inputs", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.inputs, args.repeats)
        return
    print(f"{args.inputs} inputs per run (benchmark inputs), run_many, medians of "
          f"{args.repeats} runs x {args.rounds} rounds per device count; CPU, float32")
    print(f"{'program':<12} " + " ".join(f"{f'{n} device(s) inputs/s':>22}" for n in COUNTS)
          + f" {'ratio':>7}")
    for name in args.programs:
        times = {n: [] for n in COUNTS}
        outputs = None
        for round_ in range(args.rounds):
            order = COUNTS if round_ % 2 == 0 else COUNTS[::-1]
            for n in order:
                result = measure(name, n, args.inputs, args.repeats)
                outputs = outputs or result["outputs"]
                assert result["outputs"] == outputs, f"{n} devices printed other outputs"
                times[n] += result["times"]
        rate = {n: args.inputs / statistics.median(t) for n, t in times.items()}
        print(f"{name:<12} " + " ".join(f"{rate[n]:>22.1f}" for n in COUNTS)
              + f" {rate[COUNTS[-1]] / rate[COUNTS[0]]:>7.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
