"""What a training run is given, without JAX: its settings (an experiment's configuration
holds them) and its examples (inputs framed, with the interpreter's run of them), so that
commands that only read a configuration never import JAX. The training itself is
alta/training.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta.errors import AltaError

LOSSES = ("mse", "l1", "huber")
NOISE_SCALES = ("uniform", "spacing")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainSettings:
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    loss: str = "mse"
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    # std of Gaussian noise added to each input, every step; the target moves the noisy
    # input to the clean next state, so the learned MLP also corrects small errors instead of
    # letting them add up over many layers
    input_noise: float = 0.0
    # "uniform": that std on every dimension; "spacing": scaled per block to its resolution
    # (one-hot blocks 1, a numerical one the smallest gap between its declared values), so
    # that numerical dimensions get noise they can tolerate (`input_noise_scales`)
    noise_scale: str = "uniform"
    # "cosine" decays the learning rate to zero over the steps: the last digits of precision,
    # which a long chain of layers needs, come from the small final steps
    schedule: str = "constant"
    seed: int = 0


# ---- end to end ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EndToEndSettings:
    hidden: tuple[int, ...] = (64, 64)  # the MLP's hidden widths
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


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
