"""A compiled program unrolled for N layers into standard Transformer blocks (numpy only).

The Universal Transformer (alta/model.py) applies one shared layer with per-head relative
offset masks, attention sinks, a 4-layer clipped-ReLU MLP and a per-sequence halting check.
`unroll` rewrites N applications of it as a stack of ordinary blocks, each bidirectional
attention (per-head sink logit allowed, as TransformerLens's `use_attention_sinks`) plus a
one-hidden-layer ReLU MLP, with no layer norm: the weights of a standard
`HookedTransformer` (alta/lens.py loads them into TransformerLens). docs/export.md explains
the construction; in short, per ALTA layer (B = 4 blocks for a compiled MLP):

- block 0: the program's heads (relative offsets as Q.K over one-hot positions up to n_ctx,
  padding as a PAD token whose keys score -M); MLP layer 1 into scratch S1;
- block 1: MLP layer 2 into scratch S2, clearing S1;
- block 2: the halting readout over S2 (the compiled halting readout shares the MLP's
  expansion) into NH ("this position does not hold") and FI ("a fault flag is set here");
- block 3: an aggregating head writes STOP (exactly 0 while the sequence runs, >= 1 once it
  halted or faulted); MLP layers 3 and 4 gated by -G * STOP (rule units off once stopped;
  head resets stay on), clearing S2, NH, FI and STOP.

Clipped ReLU is relu(z) - relu(z - 1) (one unit where z cannot exceed 1). `evaluate` runs
the blocks in numpy, the reference for tests without torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from alta.errors import AltaError
from alta.parameters import DenseParameters

MASK = 1.0e4  # a score that puts exp() at exactly 0 in float32 (padding, disallowed offsets)
NO_SINK = -1.0e9  # a sink logit that takes no attention (as compiler.weights.MASKED_LOGIT)
SHARP = 128.0  # score gaps in the aggregating head: exp(-128) is 0 in float32
GATE = 2.0 ** 20  # how far a stopped sequence's gated units are pushed below 0
DEFAULT_CONTEXT = 64  # positions, for programs without max_length


@dataclass(frozen=True, eq=False)
class AttentionWeights:
    W_Q: np.ndarray  # (heads, d_model, d_head)
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray  # (heads, d_head, d_model)
    b_Q: np.ndarray  # (heads, d_head)
    b_K: np.ndarray
    b_V: np.ndarray
    b_O: np.ndarray  # (d_model,)
    sinks: np.ndarray  # (heads,) one more logit per head, value zero


@dataclass(frozen=True, eq=False)
class MLPWeights:
    W_in: np.ndarray  # (d_model, d_mlp)
    b_in: np.ndarray
    W_out: np.ndarray  # (d_mlp, d_model)
    b_out: np.ndarray


@dataclass(frozen=True, eq=False)
class Block:
    attn: AttentionWeights
    mlp: MLPWeights


@dataclass(frozen=True, eq=False)
class Unrolled:
    """The standard-block model: parameters named as TransformerLens's state_dict."""

    W_E: np.ndarray  # (vocab + 1, d_model): the program's tokens, then PAD
    W_pos: np.ndarray  # (n_ctx, d_model)
    W_U: np.ndarray  # (d_model, output block size): reads the output variable's block
    blocks: tuple[Block, ...]
    labels: tuple[str, ...]  # one per residual dimension
    layers: int  # ALTA layers unrolled
    blocks_per_layer: int
    n_ctx: int  # the longest framed input the model is exact for
    pad_token: int
    program_width: int  # residual dims 0..program_width-1 are the compiled layout's
    stop_dim: int  # STOP: 0 while a sequence runs (read in the last block of each layer)

    @property
    def d_model(self) -> int:
        return self.W_E.shape[1]

    def state_dict(self) -> dict[str, np.ndarray]:
        """TransformerLens's parameter names (HookedTransformer.state_dict, less buffers)."""
        out = {"embed.W_E": self.W_E, "pos_embed.W_pos": self.W_pos,
               "unembed.W_U": self.W_U, "unembed.b_U": np.zeros(self.W_U.shape[1], np.float32)}
        for i, block in enumerate(self.blocks):
            for part in ("attn", "mlp"):
                weights = getattr(block, part)
                for name, value in vars(weights).items():
                    out[f"blocks.{i}.{part}.{name}"] = value
        return out


@dataclass(frozen=True)
class _Dims:
    """Where the export's own state lives in the residual stream."""

    pad: int
    positions: int | None  # first of n_ctx one-hot position dims; None: no head has offsets
    regions: tuple[tuple[int, int], ...]  # scratch regions (start, size), by chain stage
    nh: int
    fi: int
    stop: int
    width: int


class _Units:
    """The hidden units of one block's MLP, collected as dense column groups."""

    def __init__(self, d_model: int) -> None:
        self.d_model = d_model
        self.w_in, self.b_in, self.w_out = [], [], []

    def add(self, w_in: np.ndarray, b_in: np.ndarray, w_out: np.ndarray) -> None:
        """w_in (d_model, n), b_in (n,), w_out (n, d_model)."""
        self.w_in.append(w_in)
        self.b_in.append(b_in)
        self.w_out.append(w_out)

    def clear(self, dims, signed: bool = False) -> None:
        """Units that subtract the values held in `dims` (>= 0 unless `signed`)."""
        dims = np.asarray(list(dims), np.int64)
        for sign in (1.0, -1.0) if signed else (1.0,):
            w_in = np.zeros((self.d_model, len(dims)))
            w_in[dims, np.arange(len(dims))] = sign
            w_out = np.zeros((len(dims), self.d_model))
            w_out[np.arange(len(dims)), dims] = -sign
            self.add(w_in, np.zeros(len(dims)), w_out)

    @property
    def size(self) -> int:
        return sum(b.shape[0] for b in self.b_in)

    def weights(self, d_mlp: int) -> MLPWeights:
        W_in = np.zeros((self.d_model, d_mlp))
        b_in = np.zeros(d_mlp)
        W_out = np.zeros((d_mlp, self.d_model))
        start = 0
        for w_in, b, w_out in zip(self.w_in, self.b_in, self.w_out):
            n = len(b)
            W_in[:, start:start + n], b_in[start:start + n] = w_in, b
            W_out[start:start + n] = w_out
            start += n
        return MLPWeights(*(np.asarray(a, np.float32) for a in (W_in, b_in, W_out,
                                                                np.zeros(self.d_model))))


def _labels(compiled, dims: _Dims, chains: dict[str, tuple[int, ...]], n_ctx: int
            ) -> tuple[str, ...]:
    layout = compiled.layout
    labels = []
    for d in range(layout.width):
        name, meaning, line = layout.describe(d)
        head = next(b for b in layout.blocks if b.start <= d < b.stop).is_head
        labels.append(f"{'head ' if head else ''}{name} = {meaning} (line {line})")
    labels.append("export: padding position")
    if dims.positions is not None:
        labels.extend(f"export: position = {p}" for p in range(n_ctx))
    for (what, stages), (_start, size) in zip(_region_names(chains), dims.regions):
        labels.extend(f"scratch: {what} layer {stages}, unit {u}" for u in range(size))
    labels += ["halting: this position does not hold the halting condition",
               "halting: a fault flag (undefined head read) is set at this position",
               "halting: STOP, 0 while the sequence runs (halted or faulted: >= 1)"]
    return tuple(labels)


def _region_names(chains: dict[str, tuple[int, ...]]):
    for name, sizes in chains.items():
        for i in range(len(sizes)):
            yield name, i + 1


def unroll(compiled, layers: int, mlp: tuple[tuple[DenseParameters, ...], str] | None = None,
           max_length: int | None = None) -> Unrolled:
    """The standard-block model of `layers` ALTA layers of a compiled program.

    `mlp` replaces the compiled MLP with learned dense layers over the full residual
    (alta.training.learned_layers) and their activation ("relu" only: TransformerLens has one
    activation per model and the compiled parts need ReLU). `max_length`: the longest framed
    input to support (default: the program's max_length, else DEFAULT_CONTEXT), within the
    compiled model's guaranteed length."""
    if layers < 1:
        raise AltaError.at(f"unroll needs at least 1 layer, got {layers}")
    p, program, config = compiled.parameters, compiled.program, compiled.config
    if p.embed.token_at_position is not None:
        joint = next(v.name for v in program.variables if v.init_from == "token and position")
        raise AltaError.at(f"'{joint}' is initialised from the token and the position together "
                           "(an embedding row per pair), and TransformerLens embeds a token's "
                           "row plus a position's: export it to PyTorch instead",
                           program.variable(joint).span, program.source)
    D = compiled.layout.width
    n_ctx = _context(compiled, max_length)
    if mlp is None:
        main_layers, activation = tuple(p.mlp), config.activation
    else:
        main_layers, activation = tuple(mlp[0]), mlp[1]
        if activation != "relu":
            raise AltaError.at(f"a learned MLP with activation {activation!r} cannot be exported "
                               "to TransformerLens: its model has one activation, and the "
                               "compiled parts (halting, clipped ReLU) need 'relu'")
        if np.shape(main_layers[0].weight)[0] != D or np.shape(main_layers[-1].weight)[1] != D:
            raise AltaError.at(f"the learned MLP must map the full residual ({D} dimensions)")
    if activation not in ("clipped_relu", "relu"):
        raise AltaError.at(f"activation {activation!r} has no exact ReLU form")
    hidden = len(main_layers) - 1
    halting = tuple(p.halting)
    shared = mlp is None and _halting_shares_expansion(compiled)
    B = max(4, hidden + 1, len(halting) + 1)
    main_blocks = tuple(range(hidden - 1)) + (B - 1,)
    chains = {"MLP": tuple(np.shape(layer.weight)[1] for layer in main_layers[:-1][:-1])}
    if halting and not shared:
        chains["halting readout"] = tuple(np.shape(layer.weight)[1] for layer in halting[:-1])

    # -- the residual stream: the compiled layout, then the export's own dimensions ----------
    offsets = [o for o in config.head_offsets if o is not None]
    cursor = D + 1
    positions = None
    if offsets:
        positions, cursor = cursor, cursor + n_ctx
    regions = []
    for sizes in chains.values():
        for size in sizes:
            regions.append((cursor, size))
            cursor += size
    dims = _Dims(D, positions, tuple(regions), cursor, cursor + 1, cursor + 2, cursor + 3)
    width = dims.width
    main_regions = regions[:len(chains["MLP"])]
    halt_regions = regions[len(chains["MLP"]):]

    def embed() -> tuple[np.ndarray, np.ndarray]:
        W_E = np.zeros((len(program.vocab) + 1, width))
        W_E[:-1, :D] = p.embed.token
        W_E[-1, dims.pad] = 1.0
        W_pos = np.zeros((n_ctx, width))
        if p.embed.position is not None:
            W_pos[:, :D] = p.embed.position[:n_ctx]
        if positions is not None:
            W_pos[np.arange(n_ctx), positions + np.arange(n_ctx)] = 1.0
        return W_E, W_pos

    heads = max(config.num_heads, 1)
    key_width = np.shape(p.attention.query)[2]
    d_head = max(1 + key_width + (n_ctx if offsets else 0), np.shape(p.attention.value)[2], 1)

    def empty_attention() -> dict:
        return {"W_Q": np.zeros((heads, width, d_head)), "W_K": np.zeros((heads, width, d_head)),
                "W_V": np.zeros((heads, width, d_head)), "W_O": np.zeros((heads, d_head, width)),
                "b_Q": np.zeros((heads, d_head)), "b_K": np.zeros((heads, d_head)),
                "b_V": np.zeros((heads, d_head)), "b_O": np.zeros(width),
                "sinks": np.full(heads, NO_SINK)}

    program_attention = _program_attention(compiled, empty_attention(), dims, n_ctx)
    aggregator = _aggregator(empty_attention(), dims, bool(halting))

    # -- the MLP blocks of one ALTA layer -----------------------------------------------------
    bounds = _input_bounds(compiled)
    units = [_Units(width) for _ in range(B)]
    gate = {dims.stop: -GATE, dims.pad: -GATE}
    head_dims = np.array([d for b in compiled.layout.blocks if b.is_head
                          for d in range(b.start, b.stop)], np.int64)
    inputs = np.arange(D)
    for i, layer in enumerate(main_layers[:-1]):
        block = main_blocks[i]
        last = i == hidden - 1
        if last:
            following = main_layers[-1]
            # Head resets write only head dimensions: they stay on for stopped sequences,
            # whose attention still wrote the heads this layer.
            resets = np.all(following.weight[:, np.setdiff1d(np.arange(D), head_dims)] == 0,
                            axis=1) if mlp is None else np.zeros(np.shape(following.weight)[0],
                                                                 bool)
            _stage(units[block], layer, inputs, bounds, activation,
                   out=("linear", following.weight, np.arange(D)), gate=gate, ungated=resets)
            _bias_unit(units[block], following.bias, np.arange(D), gate)
        else:
            out_start, out_size = main_regions[i]
            _stage(units[block], layer, inputs, bounds, activation,
                   out=("copy", np.arange(out_start, out_start + out_size)))
            bounds = (np.zeros(out_size), np.ones(out_size) if activation == "clipped_relu"
                      else np.full(out_size, np.inf))
        if i > 0:  # the region this stage read is free once it is read
            start, size = main_regions[i - 1]
            units[block].clear(range(start, start + size))
        inputs = np.arange(*_span(main_regions[i])) if not last else None

    halting_block = max(len(halting) - 1, 0)
    if halting:
        if shared:
            h_inputs = np.arange(*_span(main_regions[1]))
            h_bounds = (np.zeros(len(h_inputs)), np.ones(len(h_inputs)))
            _hold_units(units[halting_block], halting[-1], h_inputs, h_bounds, dims)
        else:
            h_inputs, h_bounds = np.arange(D), _input_bounds(compiled)
            # It runs after attention: reading no head dimension, it reads the state the
            # layer started from (whose heads the compiled MLP left at 0).
            first = halting[0]
            halting = (DenseParameters(np.where(np.isin(np.arange(D), head_dims)[:, None], 0.0,
                                                first.weight), first.bias), *halting[1:])
            for j, layer in enumerate(halting[:-1]):
                start, size = halt_regions[j]
                _stage(units[j], layer, h_inputs, h_bounds, "clipped_relu",
                       out=("copy", np.arange(start, start + size)))
                if j > 0:
                    units[j].clear(range(*_span(halt_regions[j - 1])))
                h_inputs, h_bounds = np.arange(start, start + size), (np.zeros(size),
                                                                     np.ones(size))
            _hold_units(units[halting_block], halting[-1], h_inputs, h_bounds, dims)
            units[halting_block].clear(range(*_span(halt_regions[-1])))
    _not_holding_and_faults(units[halting_block], dims, config.fault_dims, bool(halting))
    last_block = units[B - 1]
    last_block.clear([dims.nh], signed=True)
    last_block.clear([dims.fi, dims.stop])
    d_mlp = max(u.size for u in units)

    attention_of = {0: program_attention, B - 1: aggregator}
    active = tuple(Block(_attention_weights(attention_of.get(b, empty_attention())),
                         units[b].weights(d_mlp)) for b in range(B))
    idle = tuple(Block(_attention_weights(empty_attention()), _Units(width).weights(d_mlp))
                 for _ in range(B))
    # Past max_layers the Universal Transformer has stopped every sequence: identity blocks.
    blocks = tuple(itertools.chain.from_iterable(
        active if layer < program.max_layers else idle for layer in range(layers)))
    W_E, W_pos = embed()
    out_block = compiled.layout.block(program.output.variable)
    W_U = np.zeros((width, out_block.size))
    W_U[np.arange(out_block.start, out_block.stop), np.arange(out_block.size)] = 1.0
    labels = _labels(compiled, dims, chains, n_ctx)
    assert len(labels) == width
    f32 = np.float32
    return Unrolled(W_E.astype(f32), W_pos.astype(f32), W_U.astype(f32), blocks, labels,
                    layers, B, n_ctx, len(program.vocab), D, dims.stop)


def _span(region: tuple[int, int]) -> tuple[int, int]:
    return region[0], region[0] + region[1]


def _context(compiled, max_length: int | None) -> int:
    program = compiled.program
    guaranteed = compiled.report.guaranteed_length
    n = max_length or program.max_length or min(DEFAULT_CONTEXT, guaranteed)
    if n > guaranteed:
        raise AltaError.at(f"the compiled model of {program.name} is exact only up to "
                           f"{guaranteed} positions; cannot export for {n}")
    if program.max_length is not None and n > program.max_length:
        raise AltaError.at(f"{program.name} declares max_length {program.max_length}; "
                           f"cannot export for {n} positions")
    return n


def _halting_shares_expansion(compiled) -> bool:
    """Whether the halting readout's first two layers are the MLP's and its rule layer reads
    no unit that depends on a head dimension (so it can read the MLP's S2 scratch, which is
    computed after attention)."""
    p = compiled.parameters
    if len(p.halting) != 3 or len(p.mlp) != 4:
        return False
    for h, m in zip(p.halting[:2], p.mlp[:2]):
        if not (np.array_equal(h.weight, m.weight) and np.array_equal(h.bias, m.bias)):
            return False
    head_dims = [d for b in compiled.layout.blocks if b.is_head for d in range(b.start, b.stop)]
    first = np.any(p.mlp[0].weight[head_dims] != 0, axis=0)
    second = np.any(p.mlp[1].weight[first] != 0, axis=0)
    return not np.any(p.halting[2].weight[second] != 0)


def _input_bounds(compiled) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of each program dimension: one-hot and multi-hot dims in [0, 1]; numerical
    dims unbounded (their units keep both ReLUs)."""
    D = compiled.layout.width
    lo, hi = np.zeros(D), np.ones(D)
    for b in compiled.layout.blocks:
        if b.kind == "numerical":
            lo[b.start:b.stop], hi[b.start:b.stop] = -np.inf, np.inf
    return lo, hi


def _stage(units: _Units, layer: DenseParameters, inputs: np.ndarray, bounds, activation: str,
           out, gate: dict | None = None, ungated: np.ndarray | None = None) -> None:
    """One dense layer and its activation as ReLU units reading residual `inputs`.

    `out` is ("copy", dims): unit k's activation is written to dims[k] (a scratch region);
    or ("linear", W, dims): the activations go through the next linear layer W into dims.
    Clipped ReLU is relu(z) - relu(z - 1), one unit where z cannot exceed 1. `gate` adds
    weights from residual dims to every unit not marked `ungated`."""
    W = np.asarray(layer.weight, np.float64)
    b = np.asarray(layer.bias, np.float64)
    n = W.shape[1]
    lo, hi = bounds
    with np.errstate(invalid="ignore"):  # 0 * inf: a zero weight reads nothing
        top = b + np.nansum(np.maximum(W * lo[:, None], W * hi[:, None]), axis=0)
    pieces = [(np.ones(n, bool), 0.0, 1.0)]
    if activation == "clipped_relu":
        pieces.append((top > 1.0, -1.0, -1.0))  # the upper ReLU, where z can pass 1
    if out[0] == "copy":
        target = np.zeros((n, units.d_model))
        target[np.arange(n), out[1]] = 1.0
    else:
        target = np.zeros((n, units.d_model))
        target[:, out[2]] = out[1]
    for where, shift, sign in pieces:
        cols = np.flatnonzero(where & (top > 0))  # a unit that is never positive is 0
        w_in = np.zeros((units.d_model, len(cols)))
        w_in[inputs] = W[:, cols]
        if gate:
            gated = np.ones(len(cols), bool) if ungated is None else ~ungated[cols]
            for dim, weight in gate.items():
                w_in[dim, gated] = weight
        units.add(w_in, b[cols] + shift, sign * target[cols])


def _bias_unit(units: _Units, bias: np.ndarray, dims: np.ndarray, gate: dict) -> None:
    """The last layer's bias, as a unit that is 1 while the sequence runs (0 once stopped)."""
    if not np.any(bias):
        return
    w_in = np.zeros((units.d_model, 1))
    for dim, weight in gate.items():
        w_in[dim, 0] = weight
    w_out = np.zeros((1, units.d_model))
    w_out[0, dims] = bias
    units.add(w_in, np.ones(1), w_out)


def _hold_units(units: _Units, layer: DenseParameters, inputs, bounds, dims: _Dims) -> None:
    """NH -= sum of the halting readout's clipped rule units (off at padding)."""
    minus_one = np.full((np.shape(layer.weight)[1], 1), -1.0)
    _stage(units, layer, inputs, bounds, "clipped_relu",
           out=("linear", minus_one, np.array([dims.nh])), gate={dims.pad: -GATE})


def _not_holding_and_faults(units: _Units, dims: _Dims, fault_dims, has_halting: bool) -> None:
    """NH += 1 at every non-padding position (without a halting condition nothing holds);
    FI = clip(sum of the fault flags)."""
    w_in = np.zeros((units.d_model, 1))
    w_in[dims.pad, 0] = -1.0
    w_out = np.zeros((1, units.d_model))
    w_out[0, dims.nh] = 1.0
    units.add(w_in, np.ones(1), w_out)
    if fault_dims:
        w_in = np.zeros((units.d_model, 2))
        w_in[list(fault_dims)] = 1.0
        w_out = np.zeros((2, units.d_model))
        w_out[0, dims.fi], w_out[1, dims.fi] = 1.0, -1.0
        units.add(w_in, np.array([0.0, -1.0]), w_out)


def _program_attention(compiled, a: dict, dims: _Dims, n_ctx: int) -> dict:
    """The program's heads (and the fault detector's): component 0 of each head's query is a
    constant 1 that meets -MASK on padding keys; then the compiled Q.K; then, for a head
    with offsets, query position i one-hot against -MASK at every key j with j - i not an
    offset."""
    att, config = compiled.parameters.attention, compiled.config
    D = compiled.layout.width
    H, _, key_width = np.shape(att.query)
    value_width = np.shape(att.value)[2]
    positions = np.arange(n_ctx)
    for h in range(H):
        a["b_Q"][h, 0] = 1.0
        a["W_K"][h, dims.pad, 0] = -MASK
        a["W_Q"][h, :D, 1:1 + key_width] = att.query[h] * config.attention_scale
        a["W_K"][h, :D, 1:1 + key_width] = att.key[h]
        offsets = config.head_offsets[h] if config.head_offsets else None
        if offsets is not None:
            first = 1 + key_width
            a["W_Q"][h, dims.positions + positions, first + positions] = 1.0
            allowed = np.isin(positions[None, :] - positions[:, None], offsets)  # [i, j]
            a["W_K"][h, dims.positions:dims.positions + n_ctx, first:first + n_ctx] = \
                np.where(allowed, 0.0, -MASK).T
        a["W_V"][h, :D, :value_width] = att.value[h]
        a["W_O"][h, :value_width, :D] = att.output[h]
        if att.sink is not None:
            a["sinks"][h] = att.sink[h]
            if offsets is not None and att.sink[h] <= NO_SINK:
                # Where no offset is in range the compiled scores are all -1e9 and tie with
                # this sink (each position and the sink get 1 / (N + 1)); here they are
                # -MASK + the Q.K score, so the sink goes to -MASK, the same tie for a head
                # whose Q.K is 0. Wherever some key is allowed it takes exp(-MASK) = 0.
                a["sinks"][h] = -MASK
    return a


def _aggregator(a: dict, dims: _Dims, has_halting: bool) -> dict:
    """Head 0 writes STOP: exactly 0 if some position does not hold and none is faulted, else
    at least 1. Scores: 2 SHARP where a position does not hold, 4 SHARP where it is faulted,
    -MASK on padding; value 1 - NH + FI. While the sequence runs, the top-scoring positions
    are non-holding ones (value 0) and every other weight underflows to exactly 0. An empty
    sequence (padding only) has halted if the program has a halting condition (it holds at
    every position), and runs if not: padding's value is 1, or 0."""
    a["b_Q"][0, 0] = 1.0
    a["W_K"][0, dims.nh, 0] = 2 * SHARP
    a["W_K"][0, dims.fi, 0] = 4 * SHARP
    a["W_K"][0, dims.pad, 0] = -MASK
    a["b_V"][0, 0] = 1.0
    a["W_V"][0, dims.nh, 0] = -1.0
    a["W_V"][0, dims.fi, 0] = 1.0
    if not has_halting:
        a["W_V"][0, dims.pad, 0] = -1.0
    a["W_O"][0, 0, dims.stop] = 1.0
    return a


def _attention_weights(a: dict) -> AttentionWeights:
    return AttentionWeights(**{k: np.asarray(v, np.float32) for k, v in a.items()})


# ---- framing and a numpy reference evaluator ---------------------------------------------

def frame(compiled, texts, n_ctx: int) -> tuple[np.ndarray, np.ndarray]:
    """Input strings -> (tokens (batch, positions) padded with the PAD token, lengths), framed
    as the program declares (alta.framing). Raises AltaError for an input longer than n_ctx."""
    from alta.framing import encode_batch

    batch = encode_batch(compiled.program, texts)
    longest = int(batch.lengths.max(initial=0))
    if longest > n_ctx:
        b = int(np.argmax(batch.lengths))
        raise AltaError.at(f"input {batch.texts[b]!r} needs {longest} positions, but the "
                           f"exported model of {compiled.program.name} is exact only up to "
                           f"{n_ctx} (export again with a larger max_length)")
    pad = len(compiled.program.vocab)
    tokens = np.where(batch.valid, batch.tokens, pad)
    return tokens, batch.lengths


def evaluate(model: Unrolled, tokens: np.ndarray
             ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The residual stream (batch, positions, d_model) as a standard Transformer computes
    it, in float32: before block 0, and after each block's attention and after its MLP."""
    if tokens.shape[1] > model.n_ctx:
        raise AltaError.at(f"{tokens.shape[1]} positions; the model holds {model.n_ctx}")
    x = model.W_E[tokens] + model.W_pos[None, :tokens.shape[1]]
    initial, mids, posts = x, [], []
    for block in model.blocks:
        a = block.attn
        q = np.einsum("bnd,hde->bhne", x, a.W_Q) + a.b_Q[None, :, None]
        k = np.einsum("bnd,hde->bhne", x, a.W_K) + a.b_K[None, :, None]
        v = np.einsum("bnd,hde->bhne", x, a.W_V) + a.b_V[None, :, None]
        scores = np.einsum("bhie,bhje->bhij", q, k)
        sink = np.broadcast_to(a.sinks[None, :, None, None], scores.shape[:3] + (1,))
        top = np.maximum(scores.max(axis=-1, keepdims=True), sink)
        e = np.exp(scores - top)
        weights = e / (e.sum(axis=-1, keepdims=True) + np.exp(sink - top))
        z = np.einsum("bhij,bhje->bhie", weights, v)
        x = x + np.einsum("bhie,hed->bid", z, a.W_O) + a.b_O
        mids.append(x)
        m = block.mlp
        x = x + np.maximum(x @ m.W_in + m.b_in, 0.0) @ m.W_out + m.b_out
        posts.append(x)
    return initial, mids, posts


# ---- reading the residual stream back into the program's variables ------------------------

@dataclass(frozen=True)
class LayerValues:
    layer: int  # 1-based ALTA layer
    active: np.ndarray  # (batch,) sequences this layer ran on (not yet halted or faulted)
    after_attention: dict[str, np.ndarray]  # variables and head outputs, (batch, positions)
    after_mlp: dict[str, np.ndarray]


@dataclass(frozen=True)
class UnrolledTrace:
    initial: dict[str, np.ndarray]
    layers: tuple[LayerValues, ...]
    lengths: np.ndarray
    outputs: tuple[str, ...]  # read from the state after the last layer

    @property
    def final(self) -> dict[str, np.ndarray]:
        return self.layers[-1].after_mlp if self.layers else self.initial


def decode_states(compiled, initial: np.ndarray, mids, posts, lengths: np.ndarray,
                  layers: int) -> UnrolledTrace:
    """Per ALTA layer, the variables and heads of the residual stream (via the one codec,
    `ResidualLayout.decode`): after attention is block 0's resid_mid, after the MLP the
    last block's resid_post; a layer ran on a sequence where its STOP (the last residual
    dimension, written by the last block's attention) is 0."""
    from alta.framing import decode_outputs

    program, layout = compiled.program, compiled.layout
    if not layers or len(posts) % layers:
        raise AltaError.at(f"{len(posts)} blocks do not make {layers} ALTA layers")
    B = len(posts) // layers
    records = []
    for layer in range(1, layers + 1):
        last = layer * B - 1
        stop = np.asarray(mids[last])[:, 0, -1]
        active = (stop < 0.5) & (layer <= program.max_layers)
        records.append(LayerValues(layer, active,
                                   layout.decode(np.asarray(mids[last - B + 1]), program),
                                   layout.decode(np.asarray(posts[last]), program)))
    start = layout.decode(np.asarray(initial), program)
    final = records[-1].after_mlp
    outputs = tuple(decode_outputs(program, final, np.asarray(lengths)))
    return UnrolledTrace(start, tuple(records), np.asarray(lengths), outputs)
