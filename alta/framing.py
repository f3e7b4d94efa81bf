"""Input text -> framed token ids, and final state -> output text, as the program declares.

Both back ends share this: `encode_batch` turns strings into a padded (batch, positions)
array of token ids using the program's tokenisation (words or characters) and framing
(fixed tokens and buffers around the input); `decode_outputs` reads the declared output
variable back into text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alta import ir
from alta.errors import AltaError
from alta.evaluation import evaluate_condition
from alta.semantics import bits_to_set


@dataclass(frozen=True)
class Batch:
    """Framed, padded inputs: tokens[b, i] is valid where i < lengths[b]."""

    texts: tuple[str, ...]
    tokens: np.ndarray  # (batch, positions) int64, padding positions hold 0
    lengths: np.ndarray  # (batch,) int64

    @property
    def valid(self) -> np.ndarray:
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]


def input_mode(program: ir.Program) -> str:
    """How the input text is split: "words" or "chars"."""
    return next(item.kind for item in program.framing if item.kind != "token")


def split_input(program: ir.Program, text: str) -> list[str]:
    if input_mode(program) == "words":
        return text.split()
    return [c for c in text if not c.isspace()]


def reserved_tokens(program: ir.Program) -> frozenset[int]:
    """The token ids only the framing places: those of its fixed tokens and buffers, except
    the ones the `input` declaration allows in the input too (`allow "<s>"`)."""
    placed = {item.token for item in program.framing if item.kind == "token"}
    allowed = {t for item in program.framing if item.kind != "token" for t in item.allow}
    return frozenset(placed - allowed)


def encode(program: ir.Program, text: str) -> list[int]:
    """One input string -> the framed token ids of its positions.

    Every piece of the text must be a token of the vocabulary that the framing does not
    reserve: typing "<s>" into a program whose framing places "<s>" is an error, unless the
    program's `input` declaration allows it."""
    ids = {tok: i for i, tok in enumerate(program.vocab)}
    reserved = reserved_tokens(program)
    out: list[int] = []
    for item in program.framing:
        if item.kind == "token":
            out.extend([item.token] * item.count)
            continue
        for piece in split_input(program, text):
            if piece not in ids:
                raise AltaError.at(
                    f'input {text!r}: "{piece}" is not in the vocabulary of {program.name}',
                    notes=(f"the vocab is: {' '.join(program.vocab)}",))
            if ids[piece] in reserved:
                raise AltaError.at(
                    f'input {text!r}: "{piece}" is a framing token of {program.name} (its '
                    "'input' declaration places it), not an input word",
                    notes=(f"the input may contain: {' '.join(input_alphabet(program))}",
                           f'a program that accepts it in the input too declares '
                           f'\'allow "{piece}"\' at the end of its \'input\' line'))
            out.append(ids[piece])
    if program.max_length is not None and len(out) > program.max_length:
        raise AltaError.at(f"input {text!r} needs {len(out)} positions, but {program.name} "
                           f"declares max_length {program.max_length}")
    return out


def input_alphabet(program: ir.Program) -> list[str]:
    """The tokens an input text may contain: the vocabulary less the reserved tokens."""
    reserved = reserved_tokens(program)
    return [tok for i, tok in enumerate(program.vocab) if i not in reserved]


def encode_batch(program: ir.Program, texts) -> Batch:
    texts = tuple(texts)
    return framed_batch(texts, [encode(program, t) for t in texts])


def framed_batch(texts, encoded: list[list[int]]) -> Batch:
    """The Batch of inputs already framed (`encode`), padded to the longest."""
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    tokens = np.zeros((len(encoded), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
    for b, ids in enumerate(encoded):
        tokens[b, :len(ids)] = ids
    return Batch(tuple(texts), tokens, lengths)


def output_positions(program: ir.Program, values: dict[str, np.ndarray],
                     lengths: np.ndarray) -> np.ndarray:
    """(batch, positions) bool: where the declared output is read from a final state.

    The filter comes first, then `at` chooses among the positions it keeps (all non-padding
    positions without a `where`): `at first`, `at last`, or `at N`, the one with N positions
    before it (counting from 0), so `at 0` is `at first`."""
    out = program.output
    positions = np.arange(values[out.variable].shape[1])[None, :]
    selected = positions < lengths[:, None]
    if out.where is not None:
        selected = selected & evaluate_condition(program, out.where, values, selected)
    if out.at == "all":
        return selected
    chosen = np.zeros_like(selected)
    for b in range(len(lengths)):
        where = np.flatnonzero(selected[b])
        if out.at == "first":
            where = where[:1]
        elif out.at == "last":
            where = where[-1:]
        else:
            where = where[out.at:out.at + 1]
        chosen[b, where] = True
    return chosen


def decode_outputs(program: ir.Program, values: dict[str, np.ndarray],
                   lengths: np.ndarray) -> list[str]:
    """Read the declared output back from a final state, one string per sequence.

    Values are joined with spaces, except that a `chars` program whose values print as
    single characters joins them with nothing, as its input is typed (addition prints 1245,
    not 1 2 4 5).
    """
    out = program.output
    chars = input_mode(program) == "chars"
    type_ = program.variable(out.variable).type
    selected = output_positions(program, values, lengths)
    # A categorical value prints as its label: looked up, not formatted one by one.
    shown = ([type_.format(v) for v in type_.values]
             if isinstance(type_, ir.Categorical) else None)
    result = []
    for b in range(len(lengths)):
        where = np.flatnonzero(selected[b])
        if len(where) == 0:
            result.append("" if out.default is None else type_.format(out.default))
            continue
        row = values[out.variable][b]
        parts = ([shown[i] for i in (row[where] - type_.low).tolist()] if shown is not None
                 else [type_.format(_as_value(type_, row[i])) for i in where])
        result.append(("" if chars and all(len(p) == 1 for p in parts) else " ").join(parts))
    return result


def _as_value(type_: ir.ValueType, raw):
    return bits_to_set(raw, type_.size) if isinstance(type_, ir.SetValued) else raw
