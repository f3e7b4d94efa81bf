"""`alta run MODEL --inputs FILE` as a user runs it: whole processes, wall clock, peak memory.

    python benchmarks/whole_process.py [--repeats 3] [--no-scan-all] [--devices 1 2]

Compiles programs/addition.alta and programs/scan.alta into checkpoints in a temporary
directory and times, each the median of --repeats processes:

- 2,000 additions of two 24-digit numbers (per input, and against the reference release's
  0.376 s per 49-token input, as measured for it), with a warm cache;
- one input on each checkpoint, cold (an empty cache directory: compiles everything) and
  warm (a second run: ALTA's caches hold the parser tables, the exported run and its
  executable);
- the whole SCAN dataset (20,910 commands), once, with its peak memory, and 1,000 commands
  for comparison: streaming keeps the peak at a batch's, whatever the number of inputs;
- the many-input runs on each CPU device count of --devices (JAX_NUM_CPU_DEVICES: the rows
  of each batch split over them, alta/devices.py); single inputs run as `alta` chooses
  (one device per core).

Every output is checked against Python arithmetic or programs/scan.py's oracle. The caches
live in the temporary directory (ALTA_COMPILATION_CACHE), never the user's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
REFERENCE_ADDITION = 0.376  # s per input, a 49-token input (REFERENCE.md)
TARGETS = {"warm": 1.5, "cold": 4.0}


def _scan_task():
    sys.path.insert(0, str(PROGRAMS))
    import scan

    return scan


def timed(argv: list[str], cache: Path, devices: int | None = None
          ) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one `alta` process, on `devices` CPU
    devices (JAX_NUM_CPU_DEVICES; None: what `alta` chooses, one per core)."""
    env = {**os.environ, "ALTA_COMPILATION_CACHE": str(cache)}
    env.pop("JAX_NUM_CPU_DEVICES", None)
    if devices is not None:
        env["JAX_NUM_CPU_DEVICES"] = str(devices)
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "alta.cli", *argv], stdout=out,
                                 stderr=subprocess.PIPE, text=True, env=env)
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"alta {' '.join(argv)} failed:\n{stderr}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read()


def median_of(repeats: int, run) -> tuple[float, float, str]:
    results = [run() for _ in range(repeats)]
    return (statistics.median(r[0] for r in results), max(r[1] for r in results),
            results[-1][2])


def check_lines(got: str, want: list[str], what: str) -> None:
    lines = got.splitlines()
    bad = [i for i, (g, w) in enumerate(zip(lines, want)) if g != w]
    if len(lines) != len(want) or bad:
        raise SystemExit(f"{what}: wrong output (line {bad[:1] or len(lines)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scan-all", action="store_true",
                        help="skip the whole SCAN dataset (about a minute)")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2],
                        help="time the many-input runs on each of these CPU device counts")
    args = parser.parse_args()
    scan = _scan_task()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="alta-bench-") as tmp:
        tmp = Path(tmp)
        warm = tmp / "cache"
        models = {}
        for name in ("addition", "scan"):
            models[name] = tmp / f"{name}.safetensors"
            timed(["compile", str(PROGRAMS / f"{name}.alta"), "-o", str(models[name])], warm)
        pairs = [(rng.randrange(10**23, 10**24), rng.randrange(10**23, 10**24))
                 for _ in range(2000)]
        additions = tmp / "additions.txt"
        additions.write_text("".join(f"{a}+{b}\n" for a, b in pairs))
        sums = [str(a + b) for a, b in pairs]
        single = {"addition": ("789+456", "1245"),
                  "scan": ("jump twice after walk", scan.oracle("jump twice after walk"))}

        print("one input, whole process (median of", args.repeats, "runs)")
        for name, (text, want) in single.items():
            timed(["run", str(models[name]), text], warm)  # fills the warm cache
            for state in ("cold", "warm"):
                fresh = iter(tmp / f"cold-{name}-{i}" for i in range(args.repeats))

                def run(state=state, fresh=fresh, name=name, text=text):
                    return timed(["run", str(models[name]), text],
                                 next(fresh) if state == "cold" else warm)

                wall, rss, out = median_of(args.repeats, run)
                check_lines(out, [want], f"{name} {text!r}")
                print(f"  {name:9} {state}: {wall:5.2f} s (target {TARGETS[state]} s: "
                      f"{wall / TARGETS[state]:.2f}x of it), peak {rss:,.0f} MB")

        commands = scan.all_commands()
        sizes = [1000] if args.no_scan_all else [1000, len(commands)]
        for devices in args.devices:
            on = f"{devices} CPU device{'s' if devices > 1 else ''}"
            timed(["run", str(models["addition"]), "--inputs", str(additions)], warm, devices)
            wall, rss, out = median_of(args.repeats, lambda devices=devices: timed(
                ["run", str(models["addition"]), "--inputs", str(additions)], warm, devices))
            check_lines(out, sums, "2,000 additions")
            per = wall / len(pairs)
            print(f"2,000 additions of 24-digit numbers, warm, {on}: {wall:.1f} s, "
                  f"{per * 1e3:.2f} ms per input; the reference's {REFERENCE_ADDITION} s per "
                  f"input is {REFERENCE_ADDITION / per:.0f}x that; peak {rss:,.0f} MB")
            for i, count in enumerate(sizes):
                path = tmp / f"scan-{count}.txt"
                path.write_text("".join(c + "\n" for c in commands[:count]))
                if i == 0:  # fills the warm cache with the batch shapes SCAN's lengths need
                    timed(["run", str(models["scan"]), "--inputs", str(path)], warm, devices)
                wall, rss, out = timed(["run", str(models["scan"]), "--inputs", str(path)],
                                       warm, devices)
                check_lines(out, [scan.oracle(c) for c in commands[:count]], f"SCAN {count}")
                print(f"SCAN, {count:,} commands, warm, {on}: {wall:.1f} s "
                      f"({wall / count * 1e3:.2f} ms per input), peak {rss:,.0f} MB")

if __name__ == "__main__":
    main()
