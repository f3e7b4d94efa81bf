"""The PyTorch export against the Flax model: CPU throughput of the same compiled weights.

For each program and batch size: inputs per second of `run_torch` (alta/pytorch.py, eager
PyTorch, sparse products where the weights are mostly zeros) and of `run_compiled` (the Flax
model, jitted, structured paths), both framing their inputs and decoding their outputs the
same way, on the same inputs (each task module's benchmark input, or its sampler); the two
are timed alternately so that machine noise hits both alike; medians of the repeats, after
one untimed run of each (JAX compiles then). The ratio is PyTorch / Flax.

    python benchmarks/export_throughput.py [--repeats 5] [--batches 1,64] [--threads N]
        [PROGRAM ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_models import ROOT, benchmark_inputs


def runners(compiled) -> dict:
    """Input strings -> CompiledRun, for each framework, each with its model built once."""
    from alta.compiled import load_model, run_compiled
    from alta.export import run_torch, torch_model

    torch_module, flax_model = torch_model(compiled), load_model(compiled)
    return {"torch": lambda texts: run_torch(compiled, texts, torch_module),
            "flax": lambda texts: run_compiled(compiled, texts, model=flax_model)}


def main() -> None:
    import torch

    from alta.checker import check_file
    from alta.compiler import compile_program

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", default=["addition", "scan"])
    parser.add_argument("--batches", default="1,64", help="batch sizes (default 1,64)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default torch's); on a shared machine 1 can be "
                             "many times faster: threads that wait on each other stall")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"CPU, float32, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"medians of {args.repeats} alternating runs; inputs/s")
    print(f"{'program':<10} {'batch':>5} {'PyTorch':>10} {'Flax':>10} {'ratio':>7} "
          f"{'max |diff|':>11}")
    for name in args.programs:
        program = check_file(ROOT / "programs" / f"{name}.alta")
        compiled = compile_program(program)
        runs = runners(compiled)
        for batch in batches:
            texts = benchmark_inputs(program, batch, 50)
            first = {key: run(texts) for key, run in runs.items()}  # JAX compiles here
            assert first["torch"].outputs == first["flax"].outputs
            diff = float(abs(first["torch"].residual - first["flax"].residual).max())
            times = {key: [] for key in runs}
            for _ in range(args.repeats):
                for key, run in runs.items():
                    start = time.perf_counter()
                    run(texts)
                    times[key].append(time.perf_counter() - start)
            rate = {key: batch / statistics.median(t) for key, t in times.items()}
            print(f"{name:<10} {batch:>5} {rate['torch']:>10.1f} {rate['flax']:>10.1f} "
                  f"{rate['torch'] / rate['flax']:>7.2f} {diff:>11.2e}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
