"""The Python API: ALTA from notebooks and scripts, in a few names.

    import alta

    parity = alta.load("programs/parity.alta")     # a path, or the source text itself
    parity.run(["1 0 1 1", "1 1"])                  # the interpreter: a Run (a table)
    model = parity.compile()                        # the Universal Transformer
    model.run(["1 0 1 1"]).outputs                  # ('1',)
    model.verify(samples=200)                       # interpreter == model at every layer
    model.save("parity.safetensors")
    alta.load("parity.safetensors").run(["1 0"])    # a checkpoint loads as a Model
    parity.test()                                   # examples and the task's oracle

Everything here is a thin layer over the stages (alta.checker, alta.interpreter,
alta.compiler, alta.compiled, alta.checkpoint, alta.verify, alta.testing); the objects keep
the stage's own result as `.ir`, `.compiled` or `.result` for whoever needs more. Results
print as tables and render as HTML tables in Jupyter.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from alta import ir

__all__ = ["Model", "Program", "Run", "load"]


def load(source: str | Path, params: Mapping[str, object] | None = None) -> Program | Model:
    """A `.alta` file or ALTA source text as a checked `Program`, or a compiled
    `.safetensors` checkpoint as a `Model`. `params` sets the program's parameters
    (`alta.load("programs/dyck.alta", params={"KINDS": 1})`, as `--set KINDS=1` does); a
    checkpoint keeps the values it was compiled with (`Program.params`). Errors are
    `alta.errors.AltaError`, located."""
    text = str(source)
    if "\n" in text or text.lstrip().startswith("program "):
        from alta.checker import check_source

        return Program(check_source(text, "<string>", params))
    if text.endswith(".safetensors"):
        from alta.checkpoint import load_checkpoint
        from alta.errors import AltaError

        if params:
            raise AltaError.at(f"{text} is compiled: its parameters are fixed (load the "
                               ".alta program with params= and compile it)")
        return Model(load_checkpoint(text))
    from alta.checker import check_file

    return Program(check_file(text, params))


def _texts(texts: str | Iterable[str]) -> tuple[str, ...]:
    return (texts,) if isinstance(texts, str) else tuple(texts)


@dataclass(frozen=True)
class Run:
    """Outputs of one batch of inputs on one back end; `result` is the back end's own
    (alta.interpreter.RunResult or alta.compiled.CompiledRun)."""

    program: ir.Program
    backend: str  # "interpreter" | "compiled"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[int, ...]
    halted: tuple[bool, ...]
    result: object

    @property
    def _backend_name(self) -> str:
        return "compiled model" if self.backend == "compiled" else self.backend

    def rows(self) -> list[tuple[str, str, str]]:
        """(input, output, layers run) per input, as text."""
        return [(text, out if ok else "(did not halt)", str(n))
                for text, out, n, ok in zip(self.inputs, self.outputs, self.layers, self.halted)]

    def trace(self) -> str:
        """Every variable at every position after every layer, for a run of one input made
        with `trace=True` (the table `alta run --trace` prints)."""
        from alta.reports import format_trace

        if getattr(self.result, "trace", None) is None or len(self.inputs) != 1:
            raise ValueError("trace() needs a run of one input on the interpreter with "
                             "trace=True")
        return f"{format_trace(self.program, self.result)} {self.outputs[0]}"

    def __repr__(self) -> str:
        rows = [("input", "output", "layers"), *self.rows()]
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        lines = [f"Run of {self.program.name} on the {self._backend_name}, "
                 f"{len(self.inputs)} input{'s' if len(self.inputs) != 1 else ''}"]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                  for r in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td><code>{html.escape(i)}</code></td><td><code>"
                        f"{html.escape(o)}</code></td><td>{n}</td></tr>"
                        for i, o, n in self.rows())
        return (f"<p>Run of <b>{html.escape(self.program.name)}</b> on the "
                f"{self._backend_name}</p>"
                f"<table><tr><th>input</th><th>output</th><th>layers</th></tr>{cells}</table>")


class Program:
    """A checked ALTA program (`ir` is its Program IR)."""

    def __init__(self, program: ir.Program) -> None:
        self.ir = program

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def params(self) -> dict[str, object]:
        """Its parameters' values (name -> value, in declaration order)."""
        return dict(self.ir.params)

    def run(self, texts: str | Iterable[str], *, max_layers: int | None = None,
            trace: bool = False) -> Run:
        """Run the symbolic interpreter on one input or several (one batch)."""
        from alta.interpreter import run

        inputs = _texts(texts)
        result = run(self.ir, inputs, max_layers, trace=trace)
        return Run(self.ir, "interpreter", inputs, result.outputs,
                   tuple(int(n) for n in result.layers), tuple(bool(h) for h in result.halted),
                   result)

    def compile(self, max_length: int | None = None) -> Model:
        """The program's Universal Transformer (exact up to `max_length` positions:
        default, the program's max_length)."""
        from alta.compiler import compile_program

        return Model(compile_program(self.ir, max_length=max_length))

    def test(self, samples: int = 200, size: int | None = None, seed: int = 0,
             compiled: bool = True):
        """Its `# example:` lines and its task module's oracle (alta.testing), on the
        interpreter and, unless `compiled` is false, on the compiled model."""
        from alta.tasks import find_task
        from alta.testing import BACKENDS, test_program

        model = self.compile().compiled if compiled else None
        return test_program(self.ir, find_task(self.ir), model, samples=samples, size=size,
                            seed=seed, backends=BACKENDS if compiled else ("interpreter",))

    def __repr__(self) -> str:
        from alta.reports import summarize

        return summarize(self.ir)


class Model:
    """A compiled program: the Universal Transformer's weights, layout and report
    (`compiled` is the compiler's CompiledProgram)."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self._model = None

    @property
    def program(self) -> Program:
        return Program(self.compiled.program)

    @property
    def name(self) -> str:
        return self.compiled.program.name

    def _network(self):
        if self._model is None:  # built once: its jitted runs are reused across calls
            from alta.compiled import ModelRunner

            self._model = ModelRunner(self.compiled)
        return self._model

    def run(self, texts: str | Iterable[str], *, max_layers: int | None = None) -> Run:
        """Run the Transformer on one input or several (one batch)."""
        from alta.compiled import run_compiled

        inputs = _texts(texts)
        result = run_compiled(self.compiled, inputs, max_layers, model=self._network())
        return Run(self.compiled.program, "compiled", inputs, result.outputs,
                   tuple(int(n) for n in result.layers), tuple(bool(h) for h in result.halted),
                   result)

    def verify(self, texts: Iterable[str] | None = None, *, samples: int = 200,
               size: int | None = None, seed: int = 0):
        """Interpreter == Transformer at every layer and position (alta.verify), on `texts`
        or on `samples` inputs drawn as `alta verify` draws them. The report's `.ok` says
        whether they agree, its `.divergence` where they first do not."""
        from alta.sampling import draw_inputs
        from alta.tasks import find_task
        from alta.verify import verify

        program = self.compiled.program
        if texts is None:
            texts = draw_inputs(program, find_task(program), samples, size, seed=seed)
        return verify(self.compiled, tuple(texts), model=self._network())

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint (one `.safetensors` file with its manifest)."""
        from alta.checkpoint import save_checkpoint

        return save_checkpoint(self.compiled, path)

    def __repr__(self) -> str:
        from alta.reports import format_report

        return f"Model of {self.name}\n{format_report(self.compiled.report)}"
