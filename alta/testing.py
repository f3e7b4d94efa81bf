"""`alta test`: a program against what its author says it computes.

Two sources of expected outputs, both written without the program's network: its
`# example: "INPUT" -> OUTPUT` comment lines, and the oracle of its task module (the
`NAME.py` beside `NAME.alta`; alta.tasks) on inputs drawn by the module's own sampler. Each
case runs on the interpreter and on the compiled Transformer; an input that raises a
run-time error or does not halt fails with that error as what it printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from alta import ir
from alta.errors import AltaError
from alta.tasks import Task, numbered_examples

BACKENDS = ("interpreter", "compiled")


@dataclass(frozen=True)
class Case:
    text: str
    expected: str
    origin: str  # "example, line N" or "oracle"
    number: int = 0  # its place among the cases: a sampler may draw one input twice


@dataclass(frozen=True)
class Outcome:
    case: Case
    backend: str
    output: str | None  # None where the run failed: `error` says why
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.output == self.case.expected


@dataclass(frozen=True)
class ProgramTest:
    program: ir.Program
    task: Task | None
    size: int | None  # the sampled inputs' size, in the task's unit
    examples: tuple[Case, ...]
    sampled: tuple[Case, ...]
    outcomes: tuple[Outcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def score(self, backend: str, cases: Sequence[Case]) -> tuple[int, int]:
        """(passed, run) for these cases on one back end."""
        ran = [o for o in self.outcomes if o.backend == backend and o.case in set(cases)]
        return sum(o.ok for o in ran), len(ran)


def example_cases(program: ir.Program) -> tuple[Case, ...]:
    """The program's `# example:` lines, with the line each is on."""
    return tuple(Case(text, expected, f"example, line {line}")
                 for line, text, expected in numbered_examples(program))


def oracle_cases(task: Task, samples: int, size: int, seed: int) -> tuple[Case, ...]:
    texts = task.inputs(samples, size, seed=seed)
    cases = []
    for text in texts:
        try:
            expected = str(task.oracle(text))
        except Exception as error:  # a user's module: report it, whatever it raised
            raise AltaError.at(f"the oracle of {task.path} failed on {text!r}: "
                               f"{type(error).__name__}: {error}") from error
        cases.append(Case(text, expected, "oracle"))
    return tuple(cases)


def test_program(program: ir.Program, task: Task | None, compiled=None, *,
                 samples: int = 200, size: int | None = None, seed: int = 0,
                 backends: Sequence[str] = BACKENDS) -> ProgramTest:
    """Run the program's examples and (with a task) `samples` oracle cases of at most
    `size` units on each of `backends`; `compiled` is needed for the compiled one."""
    examples = example_cases(program)
    size = (task.size if size is None else size) if task is not None else None
    sampled = oracle_cases(task, samples, size, seed) if task is not None else ()
    cases = tuple(replace(c, number=k) for k, c in enumerate(examples + sampled))
    examples, sampled = cases[:len(examples)], cases[len(examples):]
    outcomes = []
    for backend in backends:
        run = _interpreted if backend == "interpreter" else _compiled_runner(compiled)
        outcomes.extend(_outcomes(program, cases, backend, run))
    return ProgramTest(program, task, size, examples, sampled, tuple(outcomes))


test_program.__test__ = False  # not a pytest test, whatever its name


def _outcomes(program: ir.Program, cases: Sequence[Case], backend: str, run) -> list[Outcome]:
    """Every case's outcome; inputs run as one batch, and one at a time only where the
    batch fails (a batch reports one error, and each failing input should show its own)."""
    if not cases:
        return []
    texts = [c.text for c in cases]
    try:
        outputs, not_halted = run(program, texts)
    except AltaError:
        return [outcome for case in cases
                for outcome in _outcomes_one(program, case, backend, run)]
    stuck = set(not_halted)
    return [Outcome(case, backend, None, _not_halting(program)) if b in stuck
            else Outcome(case, backend, out) for b, (case, out) in enumerate(zip(cases, outputs))]


def _outcomes_one(program, case: Case, backend: str, run) -> list[Outcome]:
    try:
        outputs, not_halted = run(program, [case.text])
    except AltaError as error:
        return [Outcome(case, backend, None, str(error).splitlines()[0])]
    if not_halted:
        return [Outcome(case, backend, None, _not_halting(program))]
    return [Outcome(case, backend, outputs[0])]


def _not_halting(program: ir.Program) -> str:
    return f"did not halt within {program.max_layers} layers"


def _interpreted(program: ir.Program, texts: list[str]):
    from alta.interpreter import run_many

    return _collected(run_many(program, texts))


def _compiled_runner(compiled):
    if compiled is None:
        raise ValueError("the compiled back end needs the compiled program")
    from alta.compiled import ModelRunner, run_many

    model = ModelRunner(compiled, keep=False)

    def run(program: ir.Program, texts: list[str]):
        return _collected([(o.text, o.output, o.halted) for o in window]
                          for window in run_many(compiled, texts, model=model))

    return run


def _collected(windows) -> tuple[list[str], list[int]]:
    """Outputs in input order, and the inputs that did not halt, from batched windows of
    (input, output, halted)."""
    rows = [row for window in windows for row in window]
    return [output for _, output, _ in rows], [i for i, (_, _, ok) in enumerate(rows) if not ok]
