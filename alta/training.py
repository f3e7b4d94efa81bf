"""Training: an MLP fitted to execution traces (and the Transformer run with it), and the
Universal Transformer trained end to end on input/output pairs.

`alta trace --vectors` records, at every layer and position, the MLP's input (the residual
after attention, in the compiled layout) and what the compiled MLP adds to it. Here an
ordinary MLP (Flax NNX, optax) learns that map from the vectors alone: step-by-step
supervision, as in the ALTA paper's trace experiments. The learned weights are named like the
Universal Transformer's own MLP (`mlp.0.weight`, ...), so they drop into the compiled model
in place of the compiled MLP (`alta run FILE --mlp MLP.safetensors`).

End to end (`alta experiment`'s third method): the compiled model's shape (residual width,
heads and their offset masks), randomly initialised with a ReLU MLP, trained on the program's
outputs only: cross-entropy on the output variable's block at the positions the output is
read from, run for as many layers as the program takes on each input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from alta.compiler.layout import build_layout
from alta.devices import put_batch, to_host
from alta.errors import AltaError
from alta.files import check_provenance, read_tensors, source_fields, write_tensors
from alta.model import Dense, FeedForward, activation, random_dense
from alta.parameters import DenseParameters, dense_from_flat
from alta.training_setup import (  # noqa: F401 (re-exported: the settings' home)
    LOSSES,
    NOISE_SCALES,
    SCHEDULES,
    EndToEndSettings,
    Examples,
    TrainSettings,
    examples_of,
)

FORMAT = "alta-learned-mlp"
FORMAT_VERSION = 1


def load_vectors(directory: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """The dataset's manifest and its (MLP input, MLP output) vectors."""
    from alta.traces import read_dataset

    manifest, shards = read_dataset(directory)
    if not manifest["settings"]["vectors"]:
        raise AltaError.at(f"{directory} has no vectors; trace it with 'alta trace ... "
                           f"--vectors'")
    xs, ys = [], []
    for columns in shards:
        if columns:
            xs.append(np.asarray(columns["mlp_input"], np.float32))
            ys.append(np.asarray(columns["mlp_output"], np.float32))
    return manifest, np.concatenate(xs), np.concatenate(ys)




def learning_rate(schedule: str, peak: float, steps: int):
    if schedule == "constant":
        return peak
    if schedule == "cosine":
        return optax.cosine_decay_schedule(peak, steps)
    raise AltaError.at(f"unknown learning-rate schedule {schedule!r}; expected one of "
                       f"{', '.join(SCHEDULES)}")


def _loss(name: str, pred: jax.Array, target: jax.Array) -> jax.Array:
    if name == "mse":
        return jnp.mean((pred - target) ** 2)
    if name == "l1":
        return jnp.mean(jnp.abs(pred - target))
    return jnp.mean(optax.huber_loss(pred, target, delta=0.1))


def input_noise_scales(program, layout, how: str) -> np.ndarray:
    """Per dimension of `layout`, what the input noise's std is multiplied by: 1 everywhere
    ("uniform"), or each block's value spacing ("spacing": 1 for one-hot and multi-hot
    blocks, whose values differ by whole units; for a numerical block the smallest gap
    between its declared values, as the compiled MLP's steps sit in the middle of each gap)."""
    if how not in NOISE_SCALES:
        raise AltaError.at(f"unknown noise scale {how!r}; expected one of "
                           f"{', '.join(NOISE_SCALES)}")
    scales = np.ones(layout.width, np.float32)
    if how == "spacing":
        for block in layout.blocks:
            if block.kind == "numerical":
                values = np.asarray(program.type_of(block.name).values, np.float64)
                gaps = np.diff(values)
                scales[block.start:block.stop] = gaps.min() if len(gaps) else 1.0
    return scales


def train_mlp(x: np.ndarray, y: np.ndarray, settings: TrainSettings,
              progress: Callable[[int, float], None] | None = None,
              noise_scales: np.ndarray | None = None
              ) -> tuple[FeedForward, list[tuple[int, float]]]:
    """Fit a FeedForward to y = f(x) with Adam; returns it and the loss curve
    [(step, mean loss over the last stretch of steps)]. `noise_scales` (per dimension, from
    `input_noise_scales`) multiplies the input noise; none: 1 everywhere."""
    if settings.noise_scale != "uniform" and noise_scales is None:
        raise AltaError.at(f"noise_scale {settings.noise_scale!r} needs the layout's scales")
    scale = np.ones(x.shape[1], np.float32) if noise_scales is None else \
        np.asarray(noise_scales, np.float32)
    if settings.loss not in LOSSES:
        raise AltaError.at(f"unknown loss {settings.loss!r}; expected one of {', '.join(LOSSES)}")
    activation(settings.activation)  # fail early on an unknown name
    sizes = (x.shape[1], *settings.hidden, x.shape[1])
    model = FeedForward([Dense(p) for p in random_dense(sizes, nnx.Rngs(settings.seed))],
                        settings.activation)
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate(settings.schedule,
                                                              settings.learning_rate,
                                                              settings.steps)),
                              wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb, key):
        noise = settings.input_noise * scale * jax.random.normal(key, xb.shape)

        def loss_fn(model):  # from x + noise, reach the same next state x + y
            return _loss(settings.loss, model(xb + noise), yb - noise)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    key = jax.random.key(settings.seed)
    # The model and optimizer's graph is walked once, not at every step (a third of a small
    # model's step time).
    train_step = nnx.cached_partial(step, model, optimizer)

    def run_step(batch: np.ndarray) -> float:
        nonlocal key
        key, sub = jax.random.split(key)
        return float(train_step(*put_batch(x[batch], y[batch]), sub))

    return model, training_loop(len(x), settings, run_step, progress)


def training_loop(rows: int, settings, run_step: Callable[[np.ndarray], float],
                  progress: Callable[[int, float], None] | None = None
                  ) -> list[tuple[int, float]]:
    """`settings.steps` calls of `run_step(row indices of a random batch)`, which returns the
    batch's loss; the loss curve [(step, mean loss over the last stretch of steps)].
    `settings` needs steps, batch_size and seed."""
    rng = np.random.default_rng(settings.seed)
    curve, recent = [], []
    every = max(settings.steps // 100, 1)
    for i in range(1, settings.steps + 1):
        recent.append(run_step(rng.integers(0, rows, size=min(settings.batch_size, rows))))
        if i % every == 0 or i == settings.steps:
            curve.append((i, float(np.mean(recent))))
            recent = []
            if progress:
                progress(i, curve[-1][1])
    return curve


def state_accuracy(program, layout, x: np.ndarray, predicted: np.ndarray,
                   target: np.ndarray) -> float:
    """Fraction of rows whose every variable decodes the same after the learned MLP as
    after the compiled one."""
    got = layout.decode(x + predicted, program)
    want = layout.decode(x + target, program)
    same = np.ones(len(x), bool)
    for v in program.variables:
        same &= np.isclose(got[v.name], want[v.name])
    return float(same.mean())


def save_mlp(model: FeedForward, settings: TrainSettings, dataset: dict,
             curve: list[tuple[int, float]], accuracy: float, path: Path) -> Path:
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "program": dataset["program"], "source_sha256": dataset["source_sha256"],
        **({"params": dataset["params"]} if "params" in dataset else {}),
        "width": int(model[0].weight.shape[0]),
        "hidden": list(settings.hidden), "activation": settings.activation,
        "training": asdict(settings), "dataset": dataset["settings"],
        "loss_curve": curve, "train_state_accuracy": accuracy,
    }
    return write_tensors(path, model.export_weights(), manifest)


def load_mlp(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    path = Path(path)
    manifest, weights = read_tensors(
        path, missing="MLP file", corrupt="corrupt or truncated",
        bad_manifest="corrupt or truncated",
        fail=lambda why: AltaError.at(f"{path}: not a usable learned MLP: {why}"))
    manifest = manifest or {}
    if manifest.get("format") != FORMAT:
        raise AltaError.at(f"{path}: not a learned MLP written by 'alta train'")
    try:
        dense_from_flat(weights, _sizes(manifest))
    except ValueError as exc:
        raise AltaError.at(f"{path}: its weights do not fit its manifest ({exc})") from None
    return manifest, weights


def _sizes(manifest: dict) -> tuple[int, ...]:
    return (manifest["width"], *manifest["hidden"], manifest["width"])


def _program_width(compiled) -> int:
    """The dimensions of the program's own variables and heads (trace vectors hold these;
    the compiled model's fault detector comes after them)."""
    return build_layout(compiled.program).width


def _widened(layers: tuple[DenseParameters, ...], full: int) -> tuple[DenseParameters, ...]:
    """A learned MLP over the program's dimensions, on the full residual: it reads nothing
    of the fault detector's dimensions and writes nothing there (so it never faults)."""
    extra = full - np.shape(layers[0].weight)[0]
    if not extra:
        return layers
    layers = list(layers)
    first = layers[0]
    layers[0] = DenseParameters(np.pad(first.weight, ((0, extra), (0, 0))), first.bias)
    last = layers[-1]
    layers[-1] = DenseParameters(np.pad(last.weight, ((0, 0), (0, extra))),
                                 np.pad(last.bias, (0, extra)))
    return tuple(layers)


def learned_layers(compiled, manifest: dict, weights: dict[str, np.ndarray]
                   ) -> tuple[DenseParameters, ...]:
    """A learned MLP's dense layers over the compiled model's full residual, checked to come
    from this program's traces."""
    program = compiled.program
    check_provenance(manifest, program, "the MLP was trained on traces")
    width, full = manifest["width"], compiled.config.width
    if width not in (full, _program_width(compiled)):
        raise AltaError.at(f"the MLP maps {width} dimensions; {program.name}'s "
                           f"residual has {full}")
    return _widened(dense_from_flat(weights, _sizes(manifest)), full)


def learned_config(compiled, manifest: dict):
    """The compiled model's config with a learned MLP's widths and activation."""
    return replace(compiled.config, mlp_widths=tuple(manifest["hidden"]),
                   activation=manifest["activation"])


def with_learned_mlp(compiled, manifest: dict, weights: dict[str, np.ndarray]):
    """The compiled Universal Transformer with the learned MLP in place of the compiled one
    (embeddings, attention and halting stay compiled)."""
    from alta.compiled import load_model

    model = load_model(compiled)
    layers = learned_layers(compiled, manifest, weights)
    model.mlp = FeedForward([Dense(p) for p in layers], manifest["activation"])
    model.config = learned_config(compiled, manifest)
    return model


# ---- end to end: the Universal Transformer's shape, trained on input/output pairs --------

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
            losses = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                     targets - block.low)
            return jnp.sum(losses * selected) / jnp.maximum(jnp.sum(selected), 1)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    arrays = (examples.tokens, examples.lengths, examples.depths, examples.selected,
              examples.targets)

    train_step = nnx.cached_partial(step, model, optimizer)  # the graph walked once

    def run_step(batch: np.ndarray) -> float:
        return float(train_step(*put_batch(*(a[batch] for a in arrays))))

    return model, training_loop(len(examples.texts), settings, run_step, progress)


def end_to_end_outputs(compiled, model, examples: Examples) -> list[str]:
    """The end-to-end model's printed outputs: its output block's argmax at the positions the
    program's output reads."""
    import jax.numpy as jnp

    from alta.framing import decode_outputs

    program = compiled.program
    block = compiled.layout.block(program.output.variable)
    x = _jitted_unrolled()(model, *put_batch(examples.tokens, examples.lengths, examples.depths),
                           int(examples.depths.max()))
    predicted = to_host(jnp.argmax(x[..., block.start:block.stop], axis=-1)) + block.low
    values = dict(examples.final)
    values[program.output.variable] = predicted
    return decode_outputs(program, values, examples.lengths)


def save_end_to_end(model, compiled, settings: EndToEndSettings, curve, path: Path) -> Path:
    manifest = {"format": "alta-end-to-end", "format_version": 1,
                "program": compiled.program.name,
                **source_fields(compiled.program, Path(path).parent),
                "model_config": model.config.to_json(), "training": asdict(settings),
                "loss_curve": curve}
    return write_tensors(path, model.export_weights(), manifest)
