"""Task modules: the input sampler and the independent oracle that go with a program.

A program `name.alta` may have a Python module `name.py` beside it (the bundled library has
one per program) that defines

    sample(rng: random.Random, size: int) -> str   # one input of at most `size` units
    oracle(text: str) -> str                       # what `alta run` must print for it
    SIZE: int                                      # optional: the default `size`
    UNIT: str                                      # optional: what `size` counts ("digits")
    benchmark(rng: random.Random) -> str           # optional: the input benchmarks time
    size_of(text: str) -> int                      # optional: an input's size in UNIT

A program with parameters (`param N = 60`) has one task module for every setting of them:
while the module runs, its global `PARAMS` is a dict of the parameters' values (name ->
value, defaults included; empty for a program without parameters), so that it can read
them at the top (`SIZE = PARAMS["MAX_LENGTH"]`) or in its functions.

`size` is in the task's own unit (digits per operand for addition, words for SCAN), so that
`alta verify --max-length` means something natural for each task. `size_of` measures an
input in that unit (default: its number of words or characters); `alta experiment` uses it
to test on inputs of exactly a given size. Tests and `alta verify`
use the sampler in place of the generic one (uniform vocabulary tokens), which cannot produce
well-formed inputs for structured tasks. The oracle is plain Python written without the
program (Python integers for addition, a SUBLEQ interpreter, ...), so agreeing with it is
evidence, not a tautology.

A program also states a few worked examples in its own comments, one per line:

    # example: "789+456" -> 1245
    # example (KINDS=1): "([])" -> 0        (only where the parameter KINDS is 1)

which the tests run on both back ends (`in_file_examples`).
"""

from __future__ import annotations

import random
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alta import ir
from alta.errors import AltaError, read_text


@dataclass(frozen=True)
class Task:
    name: str
    path: Path
    sample: Callable[[random.Random, int], str]
    oracle: Callable[[str], str]
    size: int
    unit: str
    benchmark: Callable[[random.Random], str] | None = None
    size_of: Callable[[str], int] | None = None

    def inputs(self, count: int, size: int | None = None, seed: int = 0) -> list[str]:
        """`count` sampled inputs, deterministic for a seed."""
        rng = random.Random(seed)
        return [self.sample(rng, self.size if size is None else size) for _ in range(count)]


def task_path(program: ir.Program) -> Path:
    return Path(program.source.path).with_suffix(".py")


def find_task(program: ir.Program) -> Task | None:
    """The task module beside the program's source file, if there is one."""
    path = task_path(program)
    if not path.is_file():
        return None
    return load_task(path, dict(program.params))


def load_task(path: Path, params: dict | None = None) -> Task:
    return load_task_source(read_text(path, "task module"), path, params)


def load_task_source(text: str, path: Path, params: dict | None = None) -> Task:
    """The task module with source `text`, reported as `path` (which need not exist: a
    pipeline's remote worker loads the text its driver read), for the program's parameter
    values `params` (its global PARAMS)."""
    path = Path(path)
    module = types.ModuleType(f"alta_task_{path.stem}")
    module.__file__ = str(path)
    module.PARAMS = dict(params or {})
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)
    except Exception as error:  # a user's module: report it, whatever it raised
        raise AltaError.at(f"cannot load the task module {path}: "
                           f"{type(error).__name__}: {error}") from error
    missing = [name for name in ("sample", "oracle") if not callable(getattr(module, name, None))]
    if missing:
        raise AltaError.at(f"task module {path} does not define {' and '.join(missing)}",
                           notes=("a task module defines sample(rng, size) -> str and "
                                  "oracle(text) -> str",))
    return Task(name=path.stem, path=path, sample=module.sample, oracle=module.oracle,
                size=int(getattr(module, "SIZE", 16)), unit=str(getattr(module, "UNIT", "units")),
                benchmark=getattr(module, "benchmark", None),
                size_of=getattr(module, "size_of", None))


_EXAMPLE = re.compile(r'^\s*#\s*example\s*(?:\((?P<when>[^)]*)\))?:\s*"(?P<input>[^"]*)"\s*->'
                      r'\s*(?P<output>.*?)\s*$')


def in_file_examples(program: ir.Program) -> list[tuple[str, str]]:
    """The `# example: "INPUT" -> OUTPUT` comment lines of the program's source; a line
    `# example (P=V, Q=W): ...` only where its parameters have those values."""
    return [(text, output) for _, text, output in numbered_examples(program)]


def numbered_examples(program: ir.Program) -> list[tuple[int, str, str]]:
    """`in_file_examples`, each with its (1-based) line number first."""
    return [(number, m["input"], m["output"])
            for number, line in enumerate(program.source.text.splitlines(), 1)
            if (m := _EXAMPLE.match(line)) and _holds(m["when"], program)]


def _holds(when: str | None, program: ir.Program) -> bool:
    """Whether the parameter values `when` ("P=V, Q=W", as --set writes them) are the
    program's."""
    if when is None:
        return True
    from alta.files import show_params

    values = show_params(dict(program.params)).split()
    return all(item.replace(" ", "") in values for item in when.split(","))
