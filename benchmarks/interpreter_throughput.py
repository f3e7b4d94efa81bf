"""Interpreter throughput: one batch of many inputs vs one input at a time.

Runs programs/parity.alta on 10,000 random bit strings of length 64 as one batch, and the
same inputs one call per input (a sample of them, timed per input, since the loop is what is
slow), and prints inputs per second for both and their ratio. Medians of repeated runs.

    python benchmarks/interpreter_throughput.py [--inputs 10000] [--length 64] [--loop-sample 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from alta.checker import check_file
from alta.interpreter import run

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", default=str(ROOT / "programs" / "parity.alta"))
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--loop-sample", type=int, default=300,
                        help="how many of the inputs the one-at-a-time loop times")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    program = check_file(args.program)
    rng = random.Random(0)
    texts = [" ".join(rng.choice("01") for _ in range(args.length)) for _ in range(args.inputs)]
    expected = [str(t.split().count("1") % 2) for t in texts]

    batch_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = run(program, texts)
        batch_times.append(time.perf_counter() - start)
        assert list(result.outputs) == expected, "batched interpreter disagrees with Python"
    batch_rate = args.inputs / statistics.median(batch_times)

    sample = texts[:args.loop_sample]
    loop_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for text, want in zip(sample, expected):
            assert run(program, [text]).outputs == (want,)
        loop_times.append(time.perf_counter() - start)
    loop_rate = len(sample) / statistics.median(loop_times)

    print(f"program: {program.name}, {args.inputs} inputs of {args.length} bits "
          f"({args.length + 1} positions, {args.length} layers each)")
    print(f"batched (one call, {args.inputs} inputs): {statistics.median(batch_times):8.3f} s "
          f"median of {args.repeats} -> {batch_rate:10.1f} inputs/s")
    print(f"one input at a time ({len(sample)} of them): "
          f"{statistics.median(loop_times) / len(sample) * 1e3:8.3f} ms per input "
          f"-> {loop_rate:10.1f} inputs/s")
    print(f"speed-up per input: {batch_rate / loop_rate:.1f}x")


if __name__ == "__main__":
    main()
