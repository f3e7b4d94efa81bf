"""What the compiled fault detector costs: throughput with and without it, in one run.

The detector (compiler/faults.py) adds a selection head per head, a constant, one flag per
head read and their rule units, so that the network itself stops with the interpreter's
error where the MLP reads an undefined head. This compiles each program both ways and times
`run_compiled` on the same inputs at the same batch size, alternating the two models so that
machine noise hits both alike; medians.

    python benchmarks/fault_detector.py [--batch 64] [--repeats 7] [PROGRAM ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_models import ROOT, benchmark_inputs


def main() -> None:
    from alta.checker import check_file
    from alta.compiled import load_model, run_compiled
    from alta.compiler import compile_program

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", default=["addition", "scan"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"batch {args.batch}, medians of {args.repeats} alternating runs; CPU, float32")
    print(f"{'program':<12} {'D':>11} {'rule units':>12} {'params':>21} "
          f"{'inputs/s without':>17} {'with':>9} {'ratio':>7}")
    for name in args.programs:
        program = check_file(ROOT / "programs" / f"{name}.alta")
        texts = benchmark_inputs(program, args.batch, 50)
        models = {}
        for detector in (False, True):
            compiled = compile_program(program, fault_detector=detector)
            model = load_model(compiled)
            run_compiled(compiled, texts, model=model)  # jit first
            models[detector] = (compiled, model)
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for detector, (compiled, model) in models.items():
                start = time.perf_counter()
                run_compiled(compiled, texts, model=model)
                times[detector].append(time.perf_counter() - start)
        rate = {d: args.batch / statistics.median(t) for d, t in times.items()}
        off, on = models[False][0].report, models[True][0].report
        print(f"{name:<12} {off.width:>4} -> {on.width:<4} {off.mlp_widths[2]:>5} -> "
              f"{on.mlp_widths[2]:<5} {off.parameters:>9,} -> {on.parameters:<9,} "
              f"{rate[False]:>17.1f} {rate[True]:>9.1f} {rate[True] / rate[False]:>7.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
