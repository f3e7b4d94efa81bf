"""Trace-dataset throughput: the local writer vs the Apache Beam pipeline on the DirectRunner.

Writes the same dataset (programs/addition.alta by default, its task's sampler, --vectors)
three ways into fresh directories: `alta.traces.write_dataset` (one process, shard after
shard), `alta.pipelines.run_trace_pipeline` on the DirectRunner in process (one worker), and
with two worker processes (multi_processing). Prints rows per second (the whole call,
Beam's start-up included; the best of --repeats runs, taken in turn) and each one's ratio
to the local writer, and checks that every run wrote the same bytes. Times on a shared
machine vary from run to run; the ratios of one run are what compare.

    python benchmarks/trace_pipeline.py [--samples 2000] [--shard-size 250] [--lengths A..B]
                                        [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from alta.checker import check_file
from alta.pipelines import beam_options, run_trace_pipeline
from alta.tasks import find_task
from alta.traces import TraceSettings, write_dataset

ROOT = Path(__file__).resolve().parent.parent


def files(directory: Path) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", default=str(ROOT / "programs" / "addition.alta"))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--lengths", default=None, metavar="A..B",
                        help="input sizes (default: the task's size)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    program = check_file(args.program)
    task = find_task(program)
    lengths = tuple(int(x) for x in args.lengths.split("..")) if args.lengths else None
    settings = TraceSettings(samples=args.samples, shard_size=args.shard_size, lengths=lengths,
                             vectors=True)
    ways = {
        "local writer": None,
        "Beam DirectRunner, 1 worker (in process)": [],
        "Beam DirectRunner, 2 worker processes": ["direct_num_workers=2",
                                                  "direct_running_mode=multi_processing"],
    }
    print(f"{program.name}: {settings.samples} inputs in {settings.shards} shards of "
          f"{settings.shard_size}, vectors, lengths {args.lengths or 'the task default'}")
    with tempfile.TemporaryDirectory() as tmp:
        # Untimed: the first write pays for imports and cold caches that later ones do not.
        write_dataset(program, task, TraceSettings(samples=2, vectors=True), Path(tmp) / "warm")
        times = {name: [] for name in ways}
        reference = None
        for repeat in range(args.repeats):
            names = list(ways)[repeat % len(ways):] + list(ways)[:repeat % len(ways)]
            for name in names:  # in turn, each way first once, against drifting load
                directory = Path(tmp) / f"{repeat}-{list(ways).index(name)}"
                start = time.perf_counter()
                if ways[name] is None:
                    manifest = write_dataset(program, task, settings, directory)
                else:
                    manifest = run_trace_pipeline(program, task, settings, directory,
                                                  beam_options(ways[name], quiet=True))
                times[name].append(time.perf_counter() - start)
                written = files(directory)
                reference = reference or written
                assert written == reference, f"{name} wrote other files"
                shutil.rmtree(directory)
    rows = sum(manifest["counts"]["rows_per_shard"].values())
    print(f"{rows:,} rows; best of {args.repeats} runs each (all the same bytes):")
    local_rate = rows / min(times["local writer"])
    for name, seconds in times.items():
        rate = rows / min(seconds)
        print(f"  {name:42s} {min(seconds):7.1f} s  {rate:>9,.0f} rows/s  "
              f"x{rate / local_rate:.2f}   (all: {', '.join(f'{t:.1f}' for t in seconds)} s)")


if __name__ == "__main__":
    main()
