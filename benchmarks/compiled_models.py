"""Compiled models of every program in programs/: size, compile cost and CPU throughput.

For each program: compile time and peak memory (in a fresh process, so the figure is the
compiler's own), D, heads, MLP widths, rules, parameters, and compiled throughput (inputs per
second, jitted, float32) at batch 1 and batch 64, next to the figures measured for the ALTA
paper's reference release where it has the program. Medians of repeated runs. Inputs come from
the program's task module: its `benchmark` input where it has one (addition: the reference's
49-token input), else its sampler at its default size; generic inputs of `--length` tokens
for a program without a task module.

    python benchmarks/compiled_models.py [--length 50] [--repeats 5] [PROGRAM ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Measured for the reference release: (D, heads, rule units, params, build+compile s,
# fwd s per input).
REFERENCE = {
    "parity": (9, 2, 7, 457, 0.01, 0.030),
    "parity_absolute": (108, 2, 7, 53_000, 0.01, 0.0117),
    "parity_sum_mod_2": (8, 1, 200, 36_000, 0.01, 0.0003),
    "addition": (91, 6, 16_466, 3_000_000, 0.4, 0.376),
    "subleq": (402, 5, 43_127, 35_000_000, 2.0, 0.74),
    "scan": (2014, 13, 70_792, 300_000_000, 10.9, 80.0),
}

_COMPILE = """
import json, sys, time
from alta.checker import check_file
from alta.compiler import compile_program
start = time.perf_counter()
compiled = compile_program(check_file(sys.argv[1]))
seconds = time.perf_counter() - start
r = compiled.report
# VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across fork + exec.
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024,
                  "D": r.width, "heads": r.heads, "widths": r.mlp_widths, "rules": r.rules,
                  "resets": r.reset_units, "params": r.parameters}))
"""


def compile_in_fresh_process(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _COMPILE, str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def benchmark_inputs(program, count: int, length: int) -> list[str]:
    import random

    from alta.sampling import sample_inputs
    from alta.tasks import find_task

    task = find_task(program)
    if task is None:
        return sample_inputs(program, count, length, seed=0, min_length=length)
    rng = random.Random(0)
    if task.benchmark is not None:
        return [task.benchmark(rng) for _ in range(count)]
    return [task.sample(rng, task.size) for _ in range(count)]


def throughput(path: Path, batch: int, length: int, repeats: int) -> float:
    from alta.checker import check_file
    from alta.compiled import load_model, run_compiled
    from alta.compiler import compile_program

    program = check_file(path)
    compiled = compile_program(program)
    model = load_model(compiled)
    texts = benchmark_inputs(program, batch, length)
    run_compiled(compiled, texts, model=model)  # compile the jitted run first
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_compiled(compiled, texts, model=model)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", help="program names (default: all)")
    parser.add_argument("--length", type=int, default=50,
                        help="input length for programs without a task module (default 50)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    paths = [ROOT / "programs" / f"{n}.alta" for n in args.programs] or \
        sorted((ROOT / "programs").glob("*.alta"))

    header = (f"{'program':<18} {'D':>5} {'heads':>5} {'MLP widths':>18} {'rules':>7} "
              f"{'params':>10} {'compile s':>9} {'peak MB':>8} {'inputs/s b=1':>12} "
              f"{'inputs/s b=64':>13}")
    print(f"inputs: each task module's benchmark input or sampler (else {args.length} random "
          f"tokens); medians of {args.repeats} runs; CPU, float32, jitted")
    print(header)
    for path in paths:
        stats = compile_in_fresh_process(path)
        one = throughput(path, 1, args.length, args.repeats)
        many = throughput(path, 64, args.length, args.repeats)
        widths = ", ".join(str(w) for w in stats["widths"])
        print(f"{path.stem:<18} {stats['D']:>5} {stats['heads']:>5} {widths:>18} "
              f"{stats['rules'] + stats['resets']:>7} {stats['params']:>10,} "
              f"{stats['seconds']:>9.2f} {stats['peak_mb']:>8.0f} {one:>12.1f} {many:>13.1f}")
        ref = REFERENCE.get(path.stem)
        if ref:
            d, heads, rules, params, seconds, fwd = ref
            print(f"{'  reference':<18} {d:>5} {heads:>5} {'':>18} {rules:>7} {params:>10,} "
                  f"{seconds:>9.2f} {'':>8} {1 / fwd:>12.1f} {'':>13}"
                  f"   ours at b=64: {many * fwd:.1f}x the reference per input")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
