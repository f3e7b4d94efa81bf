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

The configuration is a TOML (or JSON) file; see `experiments/` and the README. Results go to
DIR: results.csv, accuracy.png, loss.png, the trace dataset (traces/), the learned MLP and
the end-to-end model's weights, and config.json (the settings as run).
"""

from __future__ import annotations

import csv
import functools
import json
import math
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
from alta.files import write_atomically, write_json, write_tensors
from alta.tasks import Task
from alta.training import TrainSettings, training_loop

METHODS = ("compiled", "trace", "end_to_end")
METHOD_NAMES = {"compiled": "compiled", "trace": "trace-trained MLP",
                "end_to_end": "end to end"}


@dataclass(frozen=True)
class EndToEndSettings:
    hidden: tuple[int, ...] = (64, 64)  # the MLP's hidden widths
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


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
    # ignore (zero: as the interpreter has them)
    undefined: str = "noise"
    trace: TrainSettings = field(default_factory=lambda: TrainSettings(
        hidden=(64, 64), steps=3000, input_noise=0.1))
    end_to_end: EndToEndSettings = field(default_factory=EndToEndSettings)

    def to_json(self) -> dict:
        data = asdict(self)
        data["program"] = str(self.program)
        return data


@dataclass(frozen=True)
class Score:
    method: str
    length: int
    samples: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples


@dataclass(frozen=True)
class Results:
    program: str
    unit: str  # what lengths count (the task's unit)
    scores: tuple[Score, ...]
    curves: dict[str, list]  # training loss curves by model


# ---- the configuration file --------------------------------------------------------------------

def load_config(path: Path) -> ExperimentConfig:
    """Read and check an experiment configuration (TOML, or JSON for a .json file); a
    relative `program` is relative to the configuration file."""
    path = Path(path)
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
    config = _fill(config, data, where)
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
                                                            "end_to_end")]
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
    if config.undefined not in ("zero", "noise"):
        raise AltaError.at(f"{where}: 'undefined' must be \"zero\" or \"noise\"")
    if min(config.test_lengths) < 0:
        raise AltaError.at(f"{where}: test lengths must be at least 0")
    counts = {"samples": config.samples, "test_samples": config.test_samples,
              "trace.steps": config.trace.steps, "trace.batch_size": config.trace.batch_size,
              "end_to_end.steps": config.end_to_end.steps,
              "end_to_end.batch_size": config.end_to_end.batch_size}
    for name, n in counts.items():
        if n < 1:
            raise AltaError.at(f"{where}: '{name}' must be at least 1")
    from alta.training import LOSSES, SCHEDULES

    for name, value, allowed in (("loss", config.trace.loss, LOSSES),
                                 ("schedule", config.trace.schedule, SCHEDULES),
                                 ("activation", config.trace.activation,
                                  ("relu", "gelu", "clipped_relu"))):
        if value not in allowed:
            raise AltaError.at(f"{where} [trace]: '{name}' must be one of "
                               f"{', '.join(allowed)}, got {value!r}")
    if not config.trace.hidden or not config.end_to_end.hidden or \
            min(config.trace.hidden + config.end_to_end.hidden) < 1:
        raise AltaError.at(f"{where}: hidden sizes must be positive")


# ---- inputs ---------------------------------------------------------------------------------------

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


# ---- the end-to-end model -------------------------------------------------------------------------

@dataclass(frozen=True)
class Examples:
    """Inputs framed and padded, with what the program's run says about them."""

    texts: tuple[str, ...]
    tokens: np.ndarray  # (inputs, positions)
    lengths: np.ndarray
    depths: np.ndarray  # layers the program runs on each input
    selected: np.ndarray  # (inputs, positions): where the output is read
    targets: np.ndarray  # (inputs, positions): the output variable's final value there
    final: dict[str, np.ndarray]  # the program's final state (for reading `where` outputs)
    outputs: tuple[str, ...]  # what the program prints


def examples_of(program, texts) -> Examples:
    from alta.framing import output_positions
    from alta.interpreter import run

    result = run(program, texts)
    if not result.halted.all():
        raise AltaError.at(f"input {texts[result.not_halted[0]]!r} does not halt within "
                           f"{program.max_layers} layers")
    lengths = result.batch.lengths
    selected = output_positions(program, result.final, lengths)
    return Examples(tuple(texts), result.batch.tokens, lengths, result.layers, selected,
                    result.final[program.output.variable].astype(np.int32), result.final,
                    result.outputs)


def end_to_end_model(compiled, settings: EndToEndSettings):
    """The compiled model's shape, randomly initialised: the program's residual dimensions
    and heads (not the compiled fault detector's), ReLU MLP of the given widths, no halting
    readout, attention scaled by 1/sqrt(key width)."""
    from flax import nnx

    from alta.model import UniversalTransformer

    heads = len(compiled.program.heads)
    config = replace(compiled.config, width=build_layout(compiled.program).width,
                     num_heads=heads, head_offsets=compiled.config.head_offsets[:heads],
                     mlp_widths=settings.hidden, activation="relu", halting_widths=(),
                     attention_sink=False, fault_dims=(),
                     attention_scale=1 / math.sqrt(max(compiled.config.key_width, 1)))
    return UniversalTransformer(config, rngs=nnx.Rngs(settings.seed))


def _unrolled(model, tokens, lengths, depths, steps):
    """The shared layer applied `steps` times, each sequence frozen after its own depth."""
    import jax
    import jax.numpy as jnp

    valid = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]

    def body(i, x):
        return model.step(x, valid, i < depths)[1]

    return jax.lax.fori_loop(0, steps, body, model.embed(tokens))


@functools.cache
def _jitted_unrolled():
    from flax import nnx

    return nnx.jit(_unrolled)


def train_end_to_end(compiled, examples: Examples, settings: EndToEndSettings,
                     progress: Callable[[int, float], None] | None = None):
    """Fit the end-to-end model to the output variable at the output positions: returns it
    and its loss curve [(step, mean cross-entropy over the last stretch of steps)]."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    block = compiled.layout.block(compiled.program.output.variable)
    model = end_to_end_model(compiled, settings)
    optimizer = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0),
                                                 optax.adam(settings.learning_rate)),
                              wrt=nnx.Param)
    steps = int(examples.depths.max())

    @nnx.jit
    def step(model, optimizer, tokens, lengths, depths, selected, targets):
        def loss_fn(model):
            x = _unrolled(model, tokens, lengths, depths, steps)
            logits = x[..., block.start:block.stop]
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            return jnp.sum(losses * selected) / jnp.maximum(jnp.sum(selected), 1)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    arrays = (examples.tokens, examples.lengths, examples.depths, examples.selected,
              examples.targets)

    def run_step(batch: np.ndarray) -> float:
        return float(step(model, optimizer, *(jax.device_put(a[batch]) for a in arrays)))

    return model, training_loop(len(examples.texts), settings, run_step, progress)


def end_to_end_outputs(compiled, model, examples: Examples) -> list[str]:
    """The end-to-end model's printed outputs: its output block's argmax at the positions the
    program's output reads."""
    import jax.numpy as jnp

    from alta.framing import decode_outputs

    program = compiled.program
    block = compiled.layout.block(program.output.variable)
    x = _jitted_unrolled()(model, *(jnp.asarray(a) for a in (
        examples.tokens, examples.lengths, examples.depths, int(examples.depths.max()))))
    predicted = np.asarray(jnp.argmax(x[..., block.start:block.stop], axis=-1))
    values = dict(examples.final)
    values[program.output.variable] = predicted
    return decode_outputs(program, values, examples.lengths)


def save_end_to_end(model, compiled, settings: EndToEndSettings, curve, path: Path) -> Path:
    from alta.checkpoint import source_hash

    manifest = {"format": "alta-end-to-end", "format_version": 1,
                "program": compiled.program.name,
                "source_sha256": source_hash(compiled.program.source.text),
                "model_config": model.config.to_json(), "training": asdict(settings),
                "loss_curve": curve}
    return write_tensors(path, model.export_weights(), manifest)


# ---- the study ------------------------------------------------------------------------------------

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


Say = Callable[[str], None]
Progress = Callable[[str, str], Callable[..., None]]


def run_experiment(config: ExperimentConfig, directory: Path, say: Say,
                   progress: Progress) -> Results:
    """Run the study, writing its files into `directory`."""
    from alta.checker import check_file
    from alta.compiled import run_compiled
    from alta.compiler import compile_program
    from alta.framing import split_input
    from alta.tasks import find_task

    program = check_file(config.program)
    task = find_task(program)
    if task is None:
        raise AltaError.at(f"{config.program}: an experiment needs the program's task module "
                           f"({Path(config.program).with_suffix('.py').name}: sample and "
                           f"oracle)")
    if "end_to_end" in config.methods and \
            not isinstance(program.variable(program.output.variable).type, ir.Categorical):
        raise AltaError.at(f"end_to_end training needs a categorical output variable; "
                           f"'{program.output.variable}' is not")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "config.json", config.to_json())
    say(f"compiling {program.name}")
    compiled = compile_program(program)

    rng = random.Random(f"alta-experiment/{config.seed}")
    size_of = task.size_of or (lambda text: len(split_input(program, text)))
    tests, expected = {}, {}
    for length in config.test_lengths:
        tests[length] = examples_of(program, inputs_of_size(task, size_of, length,
                                                            config.test_samples, rng))
        expected[length] = [task.oracle(t) for t in tests[length].texts]
        wrong = [t for t, got, want in zip(tests[length].texts, tests[length].outputs,
                                           expected[length]) if got != want]
        if wrong:
            raise AltaError.at(f"{program.name} disagrees with its oracle on {wrong[0]!r}")

    scores: list[Score] = []
    curves: dict[str, list] = {}

    def score(method: str, outputs_of) -> None:
        for length, examples in tests.items():
            right = sum(g == w for g, w in zip(outputs_of(examples), expected[length]))
            scores.append(Score(method, length, len(examples.texts), right))
        say(f"{METHOD_NAMES[method]}: " + ", ".join(
            f"{s.length}: {s.accuracy:.0%}" for s in scores if s.method == method))

    if "compiled" in config.methods:
        score("compiled", lambda ex: run_compiled(compiled, ex.texts).outputs)

    if "trace" in config.methods:
        model, curve = _trace_trained(program, task, compiled, config, directory, say, progress)
        curves[f"{METHOD_NAMES['trace']} ({config.trace.loss})"] = curve

        def learned(ex: Examples) -> list[str]:
            # a learned MLP may never set the halting condition: give up at twice the depth
            run = run_compiled(compiled, ex.texts, model=model,
                               max_layers=2 * int(ex.depths.max()) + 2)
            return [out if halted else "(did not halt)"
                    for out, halted in zip(run.outputs, run.halted)]

        score("trace", learned)

    if "end_to_end" in config.methods:
        texts = training_inputs(program, task, config)
        say(f"end to end: training on the outputs of {len(texts):,} inputs")
        show = progress("training end to end", "steps")
        steps = config.end_to_end.steps
        model, curve = train_end_to_end(compiled, examples_of(program, texts), config.end_to_end,
                                        lambda i, loss: show(i, steps, f"loss {loss:.3g}"))
        save_end_to_end(model, compiled, config.end_to_end, curve,
                        directory / "end_to_end.safetensors")
        curves[f"{METHOD_NAMES['end_to_end']} (cross-entropy)"] = curve
        score("end_to_end", lambda ex: end_to_end_outputs(compiled, model, ex))

    results = Results(program.name, task.unit, tuple(scores), curves)
    write_results(results, directory / "results.csv")
    write_figures(results, config, directory)
    return results


def _trace_trained(program, task, compiled, config: ExperimentConfig, directory: Path, say: Say,
                   progress: Progress):
    from alta.traces import can_resume, write_dataset
    from alta.training import (
        load_mlp,
        load_vectors,
        save_mlp,
        state_accuracy,
        train_mlp,
        with_learned_mlp,
    )

    settings = trace_settings(config)
    if not can_resume(program, task, settings, directory / "traces"):
        say("trace: the settings have changed since the last run here; tracing again")
        shutil.rmtree(directory / "traces")
    show = progress("tracing", "shards")
    write_dataset(program, task, settings, directory / "traces",
                  lambda done, total, rows: show(done, total, f"{rows:,} rows"))
    manifest, x, y = load_vectors(directory / "traces")
    say(f"trace: training an MLP on {len(x):,} vectors of {x.shape[1]} dimensions")
    show = progress("training on traces", "steps")
    steps = config.trace.steps
    mlp, curve = train_mlp(x, y, config.trace, lambda i, loss: show(i, steps, f"loss {loss:.3g}"))
    accuracy = state_accuracy(program, build_layout(program), x, np.asarray(mlp(x)), y)
    path = save_mlp(mlp, config.trace, manifest, curve, accuracy,
                    directory / "trace_mlp.safetensors")
    say(f"trace: the learned MLP gives the compiled MLP's state on {accuracy:.1%} of its "
        f"training rows")
    return with_learned_mlp(compiled, *load_mlp(path)), curve


# ---- results -------------------------------------------------------------------------------------

def write_results(results: Results, path: Path) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["method", "length", "samples", "correct", "accuracy"])
            for s in results.scores:
                out.writerow([s.method, s.length, s.samples, s.correct, f"{s.accuracy:.4f}"])

    return write_atomically(path, write)


def format_table(results: Results, config: ExperimentConfig) -> str:
    """Accuracy by length (rows) and method (columns)."""
    scores = results.scores
    methods = [m for m in config.methods if any(s.method == m for s in scores)]
    width = max(len(METHOD_NAMES[m]) for m in methods) + 2
    by = {(s.method, s.length): s for s in scores}
    top = config.train_lengths[1]
    lines = [f"{'length':>8}" + "".join(f"{METHOD_NAMES[m]:>{width}}" for m in methods)]
    for length in config.test_lengths:
        row = f"{length:>8}" + "".join(f"{by[m, length].accuracy:>{width}.1%}" for m in methods)
        if length > top:
            row += f"   {length / top:.3g}x the longest training input" if top else ""
        lines.append(row)
    lines.append(f"(accuracy on {config.test_samples} inputs per length in {results.unit}; trained "
                 f"on {config.train_lengths[0]}..{top})")
    return "\n".join(lines)


def result_figures(results: Results, config: ExperimentConfig) -> dict:
    """The study's pictures by file name: accuracy by length for each method
    (accuracy.png) and, if anything was trained, the training loss curves (loss.png)."""
    from alta.pictures import curves_figure

    by_method = {METHOD_NAMES[m]: [(s.length, s.accuracy) for s in results.scores
                                   if s.method == m] for m in config.methods}
    figures = {"accuracy.png": curves_figure(
        by_method, xlabel=f"input length ({results.unit})", ylabel="accuracy", log_y=False,
        title=f"{results.program}: accuracy by length",
        mark=("longest training input", config.train_lengths[1]))}
    if results.curves:
        figures["loss.png"] = curves_figure(results.curves, ylabel="training loss",
                                            title=f"{results.program}: training")
    return figures


def write_figures(results: Results, config: ExperimentConfig, directory: Path) -> None:
    from alta.pictures import save_png

    for name, figure in result_figures(results, config).items():
        save_png(figure, directory / name)
