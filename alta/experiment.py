"""The trace-supervision study as one command: `alta experiment CONFIG [-o DIR]`.

For one program and its task module (sampler and oracle), three Transformers of the same
shape are scored on inputs of each test length, against the oracle:

  compiled    the compiled Universal Transformer: exact by construction, the control;
  trace       the same model with its MLP replaced by one trained on execution traces of
              the training inputs (MLP input -> MLP output vectors at every layer and
              position: step-by-step supervision), halting read by the compiled readout;
  end_to_end  the same Universal Transformer shape (D, heads and their offset masks, position
              embedding if the program has one), randomly initialised with a ReLU MLP, and
              trained on the same training inputs' outputs only: cross-entropy on the output
              variable's block of the residual at the positions the output is read from.

Pairs alone do not say how many layers to run or, for an output with a `where` filter, which
positions are printed; the end-to-end model is given both from the program's run (as many
layers as the program takes on each input), which is generous to it. Training inputs are
sampled with sizes in `train_lengths` (in the task's unit); the inputs of test length L are
the sampler's inputs whose size is exactly L.

Minimality (alta/coverage.py): the rules the training traces fire and the values their states
take; per test length, which inputs need a rule or a value they never exercise, and how the
trace-trained MLP fares on those and on the rest (the prediction: those fail).

The configuration is a TOML (or JSON) file; see `experiments/` and the README. Results go to
DIR: results.csv, minimality.csv, accuracy.png, loss.png, the trace dataset (traces/), the
learned MLP and the end-to-end model's weights, and config.json (the settings as run).

`run_experiment` runs the study as stages (program, directory, test sets, then per method:
train what it needs, score); the trainers themselves are in `alta.training`, the table it
prints in `alta.reports`.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from alta import ir
from alta.compiler.layout import build_layout
from alta.errors import AltaError, read_text
from alta.files import write_atomically, write_json
from alta.tasks import Task
from alta.training_setup import EndToEndSettings, Examples, TrainSettings, examples_of

METHODS = ("compiled", "trace", "end_to_end")
METHOD_NAMES = {"compiled": "compiled", "trace": "trace-trained MLP",
                "end_to_end": "end to end"}


@dataclass(frozen=True)
class ExperimentConfig:
    program: Path
    train_lengths: tuple[int, int]  # training inputs: size drawn from A..B, then sampled
    test_lengths: tuple[int, ...]  # exact sizes tested
    samples: int = 1000  # training inputs (the same ones for both trained methods)
    test_samples: int = 100  # inputs per test length
    seed: int = 0
    methods: tuple[str, ...] = METHODS
    # undefined head outputs in the trace vectors: noise, because in the Transformer a head
    # that selects no position outputs an average of everything, which the learned MLP must
    # ignore (zero: as the interpreter has them; compiled: what the compiled attention outputs)
    undefined: str = "noise"
    trace: TrainSettings = field(default_factory=lambda: TrainSettings(
        hidden=(64, 64), steps=3000, input_noise=0.1))
    end_to_end: EndToEndSettings = field(default_factory=EndToEndSettings)
    params: tuple[tuple[str, object], ...] = ()  # the program's parameters ([params] table)

    def to_json(self) -> dict:
        data = asdict(self)
        data["program"] = str(self.program)
        data["params"] = dict(self.params)
        return data


@dataclass(frozen=True)
class Score:
    method: str
    length: int
    samples: int
    correct: int
    right: tuple[bool, ...] = field(default=(), compare=False, repr=False)  # per input

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples


@dataclass(frozen=True)
class Results:
    program: str
    unit: str  # what lengths count (the task's unit)
    scores: tuple[Score, ...]
    curves: dict[str, list]  # training loss curves by model
    novelty: dict = field(default_factory=dict)  # test length -> coverage.Novelty
    unexercised_rules: int = 0  # rules the training traces never fire


# ---- the configuration file ----------------------------------------------------------------------

def load_config(path: Path, command: str = "alta experiment") -> ExperimentConfig:
    """Read and check an experiment configuration (TOML, or JSON for a .json file); a
    relative `program` is relative to the configuration file. `command` is what errors say
    takes it."""
    path = Path(path)
    given = {".alta": "an ALTA program", ".safetensors": "a compiled checkpoint"}
    if path.suffix in given:
        raise AltaError.at(f"{path} is {given[path.suffix]}; '{command}' takes an "
                           "experiment configuration (.toml, or .json), such as "
                           "experiments/parity.toml")
    text = read_text(path, "experiment configuration")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise AltaError.at(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                           f"{exc}") from None
    where = str(path)
    if not isinstance(data, dict):
        raise AltaError.at(f"{where}: expected a table of settings")
    data = dict(data)
    for name in ("program", "train_lengths", "test_lengths"):
        if name not in data:
            raise AltaError.at(f"{where}: missing '{name}'")
    config = ExperimentConfig(
        program=path.parent / _typed(data.pop("program"), str, where, "program"),
        train_lengths=_length_range(data.pop("train_lengths"), where),
        test_lengths=_typed(data.pop("test_lengths"), tuple, where, "test_lengths", int))
    trace = data.pop("trace", {})
    end_to_end = data.pop("end_to_end", {})
    params = data.pop("params", {})
    if not isinstance(params, dict):
        raise AltaError.at(f"{where}: 'params' must be a table of the program's parameters")
    config = replace(_fill(config, data, where), params=tuple(params.items()))
    config = replace(config, trace=_fill(config.trace, trace, f"{where} [trace]"),
                     end_to_end=_fill(config.end_to_end, end_to_end, f"{where} [end_to_end]"))
    _check(config, where)
    return config


def _fill(base, data, where: str):
    """`base` with the settings of a table, each checked against the type of its default."""
    if not isinstance(data, dict):
        raise AltaError.at(f"{where}: expected a table of settings")
    known = [f.name for f in fields(base) if f.name not in ("program", "train_lengths",
                                                            "test_lengths", "trace",
                                                            "end_to_end", "params")]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise AltaError.at(f"{where}: unknown setting '{unknown[0]}'",
                           notes=(f"expected one of: {', '.join(known)}",))
    values = {}
    for name, value in data.items():
        example = getattr(base, name)
        values[name] = _typed(value, type(example), where, name,
                              type(example[0]) if isinstance(example, tuple) else None)
    return replace(base, **values)


def _typed(value, kind, where: str, name: str, element=None):
    """`value` as `kind` (a list becomes a tuple of `element`), or a clear error."""
    if kind is tuple:
        if not isinstance(value, list) or not value:
            raise AltaError.at(f"{where}: '{name}' must be a non-empty list")
        return tuple(_typed(v, element, where, name) for v in value)
    ok = (isinstance(value, kind) and not isinstance(value, bool)) or \
        (kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise AltaError.at(f"{where}: '{name}' must be {_kinds[kind]}, got {value!r}")
    return kind(value)


_kinds = {int: "an integer", float: "a number", str: "a string"}


def _length_range(value, where: str) -> tuple[int, int]:
    """"A..B" or [A, B]."""
    low = high = None
    if isinstance(value, str):
        a, sep, b = value.partition("..")
        if sep and a.strip().isdigit() and b.strip().isdigit():
            low, high = int(a), int(b)
    elif isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        low, high = value
    if low is None or not 0 <= low <= high:
        raise AltaError.at(f"{where}: 'train_lengths' must be \"A..B\" or [A, B] with "
                           f"0 <= A <= B, got {value!r}")
    return low, high


def _check(config: ExperimentConfig, where: str) -> None:
    bad = [m for m in config.methods if m not in METHODS]
    if bad:
        raise AltaError.at(f"{where}: unknown method '{bad[0]}'",
                           notes=(f"methods are {', '.join(METHODS)}",))
    from alta.traces import UNDEFINED_FILLS

    if config.undefined not in UNDEFINED_FILLS:
        raise AltaError.at(f"{where}: 'undefined' must be one of "
                           f"{', '.join(UNDEFINED_FILLS)}, got {config.undefined!r}")
    if min(config.test_lengths) < 0:
        raise AltaError.at(f"{where}: test lengths must be at least 0")
    counts = {"samples": config.samples, "test_samples": config.test_samples,
              "trace.steps": config.trace.steps, "trace.batch_size": config.trace.batch_size,
              "end_to_end.steps": config.end_to_end.steps,
              "end_to_end.batch_size": config.end_to_end.batch_size}
    for name, n in counts.items():
        if n < 1:
            raise AltaError.at(f"{where}: '{name}' must be at least 1")
    from alta.training_setup import LOSSES, NOISE_SCALES, SCHEDULES

    for name, value, allowed in (("loss", config.trace.loss, LOSSES),
                                 ("noise_scale", config.trace.noise_scale, NOISE_SCALES),
                                 ("schedule", config.trace.schedule, SCHEDULES),
                                 ("activation", config.trace.activation,
                                  ("relu", "gelu", "clipped_relu"))):
        if value not in allowed:
            raise AltaError.at(f"{where} [trace]: '{name}' must be one of "
                               f"{', '.join(allowed)}, got {value!r}")
    if not config.trace.hidden or not config.end_to_end.hidden or \
            min(config.trace.hidden + config.end_to_end.hidden) < 1:
        raise AltaError.at(f"{where}: hidden sizes must be positive")


# ---- inputs --------------------------------------------------------------------------------------

SIZE_NOTE = ("define size_of(text) in the task module if its inputs are not counted in words "
             "or characters")


def inputs_of_size(task: Task, size_of: Callable[[str], int], size: int, count: int,
                   rng: random.Random, tries: int = 10_000) -> list[str]:
    """`count` of the sampler's inputs whose size is exactly `size` (rejection sampling: the
    task's own distribution, conditioned on the size)."""
    out = []
    for _ in range(count):
        for _ in range(tries):
            text = task.sample(rng, size)
            if size_of(text) == size:
                out.append(text)
                break
        else:
            raise AltaError.at(f"the sampler of {task.name} gave no input of size {size} "
                               f"{task.unit} in {tries:,} tries",
                               notes=(SIZE_NOTE,))
    return out


# ---- the study -----------------------------------------------------------------------------------

Say = Callable[[str], None]
Progress = Callable[[str, str], Callable[..., None]]
OutputsOf = Callable[[Examples], list[str]]  # a trained model's printed outputs


@dataclass(frozen=True)
class Study:
    """What the stages of a run share."""

    config: ExperimentConfig
    program: ir.Program
    task: Task
    compiled: object  # the CompiledProgram
    directory: Path
    say: Say
    progress: Progress


def run_experiment(config: ExperimentConfig, directory: Path, say: Say,
                   progress: Progress) -> Results:
    """Run the study, writing its files into `directory`."""
    from alta.compiler import compile_program

    program, task = study_program(config)
    directory = start_directory(config, directory)
    say(f"compiling {program.name}")
    study = Study(config, program, task, compile_program(program), directory, say, progress)
    tests = test_sets(config, program, task)
    exercised, novelty = minimality(config, program, task, study.compiled.rules.mlp,
                                    {n: ex.texts for n, (ex, _) in tests.items()})
    rules = exercised.coverage.rules
    say(f"minimality: the training traces fire {len(rules) - len(exercised.coverage.uncovered)}"
        f" of {len(rules)} rules; inputs needing an unexercised rule or value: "
        + ", ".join(f"{n}: {v.either.mean():.0%}" for n, v in novelty.items()))
    scores, curves = [], {}
    for method in (m for m in METHODS if m in config.methods):
        outputs_of, method_curves = METHOD_STAGES[method](study)
        curves.update(method_curves)
        scores += score(method, tests, outputs_of, say)
    results = Results(program.name, task.unit, tuple(scores), curves, novelty,
                      len(exercised.coverage.uncovered))
    write_results(results, directory / "results.csv")
    write_minimality(results, directory / "minimality.csv")
    write_figures(results, config, directory)
    return results


def study_program(config: ExperimentConfig) -> tuple[ir.Program, Task]:
    """The checked program and its task module, which an experiment needs (and end_to_end, a
    categorical output variable)."""
    from alta.checker import check_file
    from alta.tasks import find_task

    program = check_file(config.program, dict(config.params))
    task = find_task(program)
    if task is None:
        raise AltaError.at(f"{config.program}: an experiment needs the program's task module "
                           f"({Path(config.program).with_suffix('.py').name}: sample and "
                           f"oracle)")
    if "end_to_end" in config.methods and \
            not isinstance(program.variable(program.output.variable).type, ir.Categorical):
        raise AltaError.at(f"end_to_end training needs a categorical output variable; "
                           f"'{program.output.variable}' is not")
    return program, task


def start_directory(config: ExperimentConfig, directory: Path) -> Path:
    """The results directory, made if need be, with the settings as run (config.json)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", config.to_json())
    return directory


def test_sets(config: ExperimentConfig, program: ir.Program, task: Task
              ) -> dict[int, tuple[Examples, list[str]]]:
    """Per test length, inputs of exactly that size with the oracle's outputs for them, which
    the program must print too."""
    from alta.framing import split_input

    rng = random.Random(f"alta-experiment/{config.seed}")
    size_of = task.size_of or (lambda text: len(split_input(program, text)))
    tests = {}
    for length in config.test_lengths:
        examples = examples_of(program, inputs_of_size(task, size_of, length,
                                                       config.test_samples, rng))
        expected = [task.oracle(t) for t in examples.texts]
        wrong = [t for t, got, want in zip(examples.texts, examples.outputs, expected)
                 if got != want]
        if wrong:
            raise AltaError.at(f"{program.name} disagrees with its oracle on {wrong[0]!r}")
        tests[length] = examples, expected
    return tests


def score(method: str, tests: dict[int, tuple[Examples, list[str]]], outputs_of: OutputsOf,
          say: Say) -> list[Score]:
    """A method's score at each test length (and a line saying them)."""
    scores = []
    for length, (examples, expected) in tests.items():
        right = tuple(g == w for g, w in zip(outputs_of(examples), expected))
        scores.append(Score(method, length, len(right), sum(right), right))
    say(f"{METHOD_NAMES[method]}: " + ", ".join(f"{s.length}: {s.accuracy:.0%}" for s in scores))
    return scores


def minimality(config: ExperimentConfig, program: ir.Program, task: Task, rules,
               tests: dict[int, tuple[str, ...]]):
    """What the training inputs' traces exercise (`coverage.Exercised`), and per test length
    which of its inputs need more (`coverage.Novelty`)."""
    from alta.coverage import exercised_by, novel_inputs

    exercised = exercised_by(program, rules, training_inputs(program, task, config))
    return exercised, {n: novel_inputs(program, exercised, list(texts))
                       for n, texts in tests.items()}


def training_inputs(program, task: Task, config: ExperimentConfig) -> list[str]:
    """The training inputs: exactly those the trace dataset holds (same settings, shards)."""
    from alta.traces import shard_inputs

    settings = trace_settings(config)
    return [text for k in range(settings.shards)
            for text in shard_inputs(program, task, settings, k)]


def trace_settings(config: ExperimentConfig):
    from alta.traces import TraceSettings

    return TraceSettings(samples=config.samples, seed=config.seed, lengths=config.train_lengths,
                         vectors=True, undefined=config.undefined)


def loss_bar(study: Study, label: str, steps: int) -> Callable[[int, float], None]:
    """A training progress bar: `show(step, loss)`."""
    show = study.progress(label, "steps")
    return lambda i, loss: show(i, steps, f"loss {loss:.3g}")


# ---- the methods: each trains what it needs and gives its outputs and loss curves ----------------

def compiled_method(study: Study) -> tuple[OutputsOf, dict[str, list]]:
    from alta.compiled import ModelRunner, run_many

    model = ModelRunner(study.compiled, keep=False)
    return lambda ex: [o.output for window in run_many(study.compiled, ex.texts, model=model)
                       for o in window], {}


def trace_method(study: Study) -> tuple[OutputsOf, dict[str, list]]:
    from alta.compiled import run_many
    from alta.training import load_mlp, with_learned_mlp

    path, curve = train_on_traces(study, trace_dataset(study))
    model = with_learned_mlp(study.compiled, *load_mlp(path))

    def learned(ex: Examples) -> list[str]:
        # a learned MLP may never set the halting condition: give up at twice the depth
        windows = run_many(study.compiled, ex.texts, model=model,
                           max_layers=2 * int(ex.depths.max()) + 2)
        return [o.output if o.halted else "(did not halt)" for window in windows
                for o in window]

    return learned, {f"{METHOD_NAMES['trace']} ({study.config.trace.loss})": curve}


def trace_dataset(study: Study) -> Path:
    """The training inputs' traces with vectors in DIR/traces (resumed if the settings are
    those of the last run there, else traced again)."""
    from alta.traces import can_resume, write_dataset

    settings, directory = trace_settings(study.config), study.directory / "traces"
    if not can_resume(study.program, study.task, settings, directory):
        study.say("trace: the settings have changed since the last run here; tracing again")
        shutil.rmtree(directory)
    show = study.progress("tracing", "shards")
    write_dataset(study.program, study.task, settings, directory,
                  lambda done, total, rows: show(done, total, f"{rows:,} rows"))
    return directory


def train_on_traces(study: Study, dataset: Path) -> tuple[Path, list]:
    """Fit an MLP to the dataset's vectors and save it: DIR/trace_mlp.safetensors and the
    loss curve."""
    from alta.training import (
        input_noise_scales,
        load_vectors,
        save_mlp,
        state_accuracy,
        train_mlp,
    )

    program, settings = study.program, study.config.trace
    layout = build_layout(program)
    manifest, x, y = load_vectors(dataset)
    study.say(f"trace: training an MLP on {len(x):,} vectors of {x.shape[1]} dimensions")
    mlp, curve = train_mlp(x, y, settings, loss_bar(study, "training on traces", settings.steps),
                           input_noise_scales(program, layout, settings.noise_scale))
    accuracy = state_accuracy(program, layout, x, np.asarray(mlp(x)), y)
    path = save_mlp(mlp, settings, manifest, curve, accuracy,
                    study.directory / "trace_mlp.safetensors")
    study.say(f"trace: the learned MLP gives the compiled MLP's state on {accuracy:.1%} of its "
              f"training rows")
    return path, curve


def end_to_end_method(study: Study) -> tuple[OutputsOf, dict[str, list]]:
    from alta.training import end_to_end_outputs, save_end_to_end, train_end_to_end

    compiled, settings = study.compiled, study.config.end_to_end
    texts = training_inputs(study.program, study.task, study.config)
    study.say(f"end to end: training on the outputs of {len(texts):,} inputs")
    model, curve = train_end_to_end(compiled, examples_of(study.program, texts), settings,
                                    loss_bar(study, "training end to end", settings.steps))
    save_end_to_end(model, compiled, settings, curve, study.directory / "end_to_end.safetensors")
    return (lambda ex: end_to_end_outputs(compiled, model, ex),
            {f"{METHOD_NAMES['end_to_end']} (cross-entropy)": curve})


METHOD_STAGES = {"compiled": compiled_method, "trace": trace_method,
                 "end_to_end": end_to_end_method}


# ---- results -------------------------------------------------------------------------------------

def write_results(results: Results, path: Path) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["method", "length", "samples", "correct", "accuracy"])
            for s in results.scores:
                out.writerow([s.method, s.length, s.samples, s.correct, f"{s.accuracy:.4f}"])

    return write_atomically(path, write)


MINIMALITY_COLUMNS = ("length", "samples", "needs_unexercised_rule", "needs_unexercised_value",
                      "needs_either", "trace_correct", "trace_correct_needing",
                      "trace_correct_rest")


def minimality_rows(results: Results) -> list[tuple]:
    """Per test length, MINIMALITY_COLUMNS: how many inputs need an unexercised rule, value,
    either, and the trace-trained MLP's right answers overall, on those, and on the rest
    (None without a trace method)."""
    trace = {s.length: np.asarray(s.right, bool) for s in results.scores if s.method == "trace"}
    rows = []
    for length, novelty in results.novelty.items():
        needing = novelty.either
        right = trace.get(length)
        rows.append((length, len(needing), int(novelty.rule.sum()), int(novelty.value.sum()),
                     int(needing.sum()),
                     *((None,) * 3 if right is None else
                       (int(right.sum()), int(right[needing].sum()),
                        int(right[~needing].sum())))))
    return rows


def write_minimality(results: Results, path: Path) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(MINIMALITY_COLUMNS)
            out.writerows(["" if v is None else v for v in row]
                          for row in minimality_rows(results))

    return write_atomically(path, write)


COVERED = "inputs the training traces cover (minimality)"


def result_figures(results: Results, config: ExperimentConfig) -> dict:
    """The study's pictures by file name: accuracy by length for each method, with the
    minimality prediction (the share of test inputs that need no rule or value the training
    traces lack) beside them (accuracy.png), and, if anything was trained, the training
    loss curves (loss.png)."""
    from alta.pictures import curves_figure

    by_method = {METHOD_NAMES[m]: [(s.length, s.accuracy) for s in results.scores
                                   if s.method == m] for m in config.methods}
    if results.novelty:
        by_method[COVERED] = [(length, 1 - float(np.mean(n.either)))
                              for length, n in results.novelty.items()]
    figures = {"accuracy.png": curves_figure(
        by_method, xlabel=f"input length ({results.unit})", ylabel="accuracy", log_y=False,
        title=f"{results.program}: accuracy by length",
        mark=("longest training input", config.train_lengths[1]))}
    (ax,) = figures["accuracy.png"].axes
    ax.set_ylim(-0.02, 1.02)  # the whole scale: chance (0.5 for parity) reads as such
    ax.legend()  # placed again for the new limits, where it hides the fewest points
    if results.curves:
        figures["loss.png"] = curves_figure(results.curves, ylabel="training loss",
                                            title=f"{results.program}: training")
    return figures


def write_figures(results: Results, config: ExperimentConfig, directory: Path) -> None:
    from alta.pictures import save_png

    for name, figure in result_figures(results, config).items():
        save_png(figure, directory / name)
