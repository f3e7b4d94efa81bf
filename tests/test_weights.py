"""compiler/weights.py: the compiled network's pieces, re-implemented in plain numpy, against
the interpreter (driven directly on hand-built states; helpers.py builds them):

1. the dense 4-layer MLP computes the rules on residual vectors (with noisy head blocks),
   and resets head blocks to zero; the halting readout computes the halting condition;
2. the attention weights select what the interpreter's attention selects, up to the
   guaranteed length;
3. the embeddings give the initial state, and the whole numpy network (embedding, then
   attention + MLP + halting readout per layer) runs like the interpreter.

The JAX model that runs these weights is tested in test_model.py and test_compiled.py.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import (
    ALL,
    Assignments,
    compiled_program,
    enumerate_assignments,
    interpreter_mlp,
    load,
    random_assignments,
    values_of,
)

from alta import ir
from alta.checker import check_source
from alta.compiled import attention_heads
from alta.compiler import compile_program
from alta.compiler.faults import ONE, selection_name
from alta.evaluation import evaluate_condition
from alta.interpreter import attend, selection
from alta.semantics import set_to_bits, snap

# ---- 1. the dense MLP computes the rules ----------------------------------------------------

def residual_vectors(program, layout, a: Assignments, rng, noise: float) -> np.ndarray:
    """(batch, D) float32 residuals: exact one-hots / multi-hots / numbers for variables,
    noisy one-hots for categorical heads (on: 1 - U(0, noise), off: U(0, noise))."""
    x = np.zeros((a.size, layout.width), np.float32)
    for block in layout.blocks:
        if block.name not in a.raw:  # the fault detector's own state: every head defined
            x[:, block.start] = _detector_value(block.name)
            continue
        raw = a.raw[block.name]
        sl = slice(block.start, block.stop)
        if block.kind == "numerical":
            x[:, block.start] = raw
        elif block.kind == "set":
            x[:, sl] = (raw[:, None] >> np.arange(block.size)) & 1
        else:
            onehot = np.eye(block.size, dtype=np.float32)[raw]
            if block.is_head and noise:
                jitter = rng.uniform(0, noise, size=onehot.shape).astype(np.float32)
                onehot = np.where(onehot == 1, 1 - jitter, jitter)
            x[:, sl] = onehot
    return x


def _detector_value(name: str) -> float:
    """What the compiled attention gives the fault detector where every head selects exactly
    one position: the constant 1, selection shares of 1/2, no fault flag set."""
    from alta.compiler.faults import FAULT, ONE, SELECTED

    if name == ONE:
        return 1.0
    if name.endswith(SELECTED):
        return 0.5
    assert name.startswith(FAULT), name
    return 0.0


def numpy_mlp(weights, x: np.ndarray, prefix: str = "mlp", layers: int = 4) -> np.ndarray:
    h = x
    for i in range(layers):
        h = h @ weights[f"{prefix}.{i}.weight"] + weights[f"{prefix}.{i}.bias"]
        if i < 3:
            h = np.clip(h, 0.0, 1.0)
    return h


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("noise", [1e-3, 0.2])
def test_dense_mlp_computes_the_rules(name, noise):
    program = load(name)
    compiled = compiled_program(name)
    layout, weights = compiled.layout, compiled.weights
    rng = np.random.default_rng(1)
    # A numerical head is read exactly within its tolerance of every value it can take.
    caps = {s.name: 0.9 * s.tolerance for s in compiled.report.head_scales}
    full = enumerate_assignments(program, rng, 0.2, caps)
    a = random_assignments(program, max(full.size, 500), rng, 0.2, caps)
    for n in full.names:  # every combination of what the MLP reads, the rest random
        a.index[n] = np.resize(full.index[n], a.size)
        a.raw[n] = np.resize(full.raw[n], a.size)
    x = residual_vectors(program, layout, a, rng, noise)
    post = x + numpy_mlp(weights, x)
    want = interpreter_mlp(program, a)
    got = layout.decode(post, program)
    for var in program.variables:
        block = layout.block(var.name)
        w, g = want[var.name][:, 0], got[var.name]
        if block.kind == "numerical":
            declared = np.asarray(var.type.values)
            assert np.array_equal(snap(w, declared), g), var.name
            scale = max(1.0, float(np.abs(declared).max()))
            assert np.abs(post[:, block.start] - w).max() <= 1e-5 * scale, var.name
        else:
            assert np.array_equal(w, g), (var.name, np.flatnonzero(w != g)[:5])
            # exact one-hots / multi-hots: the rules write exactly +1 / -1
            values = post[:, block.start:block.stop]
            assert np.all((values == 0) | (values == 1)), var.name
    for site in compiled.faults:  # every head read is defined: no fault flag is set
        assert np.all(post[:, layout.block(site.name).start] == 0), site
    for head in program.heads:  # undefined again after the MLP: the reset units
        block = layout.block(head.name)
        values = post[:, block.start:block.stop]
        if head.numerical:
            source = program.variable(head.value).type.values
            assert np.abs(values).max() <= 1e-6 * max(1.0, max(map(abs, source))), head.name
        else:
            assert np.all(values == 0), head.name
    if program.halt is not None:
        holds = numpy_mlp(weights, post, "halting", 3).sum(axis=-1) > 0.5
        oracle = evaluate_condition(program, program.halt, want, np.ones((a.size, 1), bool))
        assert np.array_equal(holds, oracle[:, 0])


def test_noisy_head_blocks_outside_the_tolerance_are_really_noisy():
    """Sanity of the test above: with noise 0.2 the head blocks are far from one-hot."""
    program = load("cat_heads")
    compiled = compiled_program("cat_heads")
    rng = np.random.default_rng(2)
    a = random_assignments(program, 200, rng)
    x = residual_vectors(program, compiled.layout, a, rng, 0.2)
    block = compiled.layout.block("left")
    assert np.abs(x[:, block.start:block.stop] - np.eye(block.size)[a.raw["left"]]).max() > 0.15


# ---- 2. attention ---------------------------------------------------------------------------

MASKED = -1e9


def numpy_attention(compiled, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The attention output added to the residual, as alta/model.py computes it (float32)."""
    w = compiled.weights
    if not compiled.program.heads:
        return np.zeros_like(x)
    q = np.einsum("bnd,hdk->bhnk", x, w["attention.query"])
    k = np.einsum("bnd,hdk->bhnk", x, w["attention.key"])
    v = np.einsum("bnd,hdv->bhnv", x, w["attention.value"])
    scores = np.einsum("bhik,bhjk->bhij", q, k)
    n = x.shape[1]
    relative = np.arange(n)[None, :] - np.arange(n)[:, None]
    allowed = np.stack([np.ones((n, n), bool) if h.offsets is None else
                        np.isin(relative, h.offsets) for h in attention_heads(compiled)])
    mask = valid[:, None, None, :] & allowed[None]
    scores = np.where(mask, scores, np.float32(MASKED)).astype(np.float32)
    if "attention.sink" in w:  # one more logit per head, whose value is zero
        sink = np.broadcast_to(w["attention.sink"][None, :, None, None], scores.shape[:-1] + (1,))
        scores = np.concatenate([scores, sink], axis=-1)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p = (p / p.sum(axis=-1, keepdims=True))[..., :n]
    heads = np.einsum("bhij,bhjv->bhiv", p, v)
    return np.einsum("bhiv,hvd->bid", heads, w["attention.output"]).astype(np.float32)


def random_states(program: ir.Program, batch: int, n: int, rng: random.Random):
    """Random variable values (batch, n) and lengths; half the rows use position-like values
    (so that equality heads often select exactly one position)."""
    lengths = np.array([n] + [rng.randint(1, n) for _ in range(batch - 1)], dtype=np.int64)
    values = {}
    for var in program.variables:
        dom = values_of(var.type)
        rows = []
        for b in range(batch):
            if b % 2 and isinstance(var.type, ir.Categorical):
                shift = rng.randrange(len(dom))
                rows.append([(i + shift) % len(dom) for i in range(n)])
            else:
                rows.append([rng.randrange(len(dom)) for _ in range(n)])
        idx = np.array(rows, dtype=np.int64)
        if isinstance(var.type, ir.Numerical):
            values[var.name] = np.asarray(dom, dtype=np.float64)[idx]
        elif isinstance(var.type, ir.SetValued):
            values[var.name] = np.array([set_to_bits(s) for s in dom], dtype=np.int64)[idx]
        else:
            values[var.name] = idx
    valid = np.arange(n)[None, :] < lengths[:, None]
    return values, valid


def state_residual(program, layout, values, shape) -> np.ndarray:
    x = np.zeros(shape + (layout.width,), np.float32)
    if any(b.name == ONE for b in layout.blocks):  # the fault detector's constant
        x[..., layout.block(ONE).start] = 1.0
    for var in program.variables:
        block = layout.block(var.name)
        raw = values[var.name]
        if block.kind == "numerical":
            x[..., block.start] = raw
        elif block.kind == "set":
            x[..., block.start:block.stop] = (raw[..., None] >> np.arange(block.size)) & 1
        else:
            x[..., block.start:block.stop] = np.eye(block.size, dtype=np.float32)[raw]
    return x


def attention_lengths(name: str) -> list[int]:
    compiled = compiled_program(name)
    # up to the declared max_length (what the guarantee is for), else a long-ish input
    top = min(compiled.program.max_length or compiled.report.guaranteed_length, 300)
    return sorted({1, 2, 5, min(17, top), top})


@pytest.mark.parametrize("name", [n for n in ALL if load(n).heads])
def test_attention_selects_what_the_interpreter_selects(name):
    program = load(name)
    compiled = compiled_program(name)
    layout = compiled.layout
    scales = {s.name: s for s in compiled.report.head_scales}
    rng = random.Random(3)
    checked = {h.name: 0 for h in program.heads}
    for n in attention_lengths(name):
        batch = 6 if n <= 64 else 3
        values, valid = random_states(program, batch, n, rng)
        if name == "parity_sum_mod_2":  # the start token, then bits: vary the share of 1s
            for b in range(batch):
                values["counted"][b] = np.array([1] + [rng.random() < b / (batch - 1)
                                                       for _ in range(n - 1)])
                values["is_start"][b] = np.array([1.0] + [0.0] * (n - 1))
        x = state_residual(program, layout, values, valid.shape)
        out = numpy_attention(compiled, x, valid)
        head_dims = np.zeros(layout.width, bool)
        for head in attention_heads(compiled):
            head_dims[layout.block(head.name).start:layout.block(head.name).stop] = True
        assert np.all(out[..., ~head_dims] == 0)  # attention writes only the head blocks
        want, undefined = attend(program, values, valid)
        for head in program.heads:
            # its selection head: k / (k + 1) for k selected positions, within 1/16 (the
            # construction keeps the non-matching positions under 1/16 of the sink)
            count = selection(head, values, valid).sum(axis=2)
            share = out[..., layout.block(selection_name(head.name)).start]
            err = np.abs(share - count / (count + 1))[valid]
            assert err.max(initial=0) <= 1 / 16, (head.name, n, err.max())
            block = layout.block(head.name)
            got = out[..., block.start:block.stop]
            defined = valid & ~undefined[head.name]
            tolerance = scales[head.name].tolerance
            if head.numerical:
                err = np.abs(got[..., 0] - want[head.name])[defined]
                assert err.max(initial=0) <= tolerance, (head.name, n, err.max())
            else:
                onehot = np.eye(block.size)[np.where(defined, want[head.name], 0)]
                assert np.array_equal(got.argmax(-1)[defined], want[head.name][defined])
                err = np.abs(got - onehot).max(-1)[defined]
                assert err.max(initial=0) <= tolerance, (head.name, n, err.max())
            checked[head.name] += int(defined.sum())
    assert all(checked.values()), checked  # every head was defined somewhere


def test_guaranteed_lengths_of_the_bundled_programs_cover_their_max_length():
    for name in ("parity_absolute", "parity_sum_mod_2"):
        report = compiled_program(name).report
        assert report.guaranteed_length >= load(name).max_length, name
        assert not report.warnings, name
    assert compiled_program("parity").report.guaranteed_length >= 100_000


MAX_LENGTH_40 = """\
program t
vocab "0" "1"
input words
output y
max_length 40
max_layers 1
var x: cat 2 = token
var y: cat 2 = 0
head right = x at 1
mlp:
    y = x
"""


@pytest.mark.parametrize("name", ["MAX_LENGTH_40", "cat_heads", "sets", "numbers", "guards",
                                  "irregular"])
def test_guaranteed_length_reaches_the_declared_max_length(name):
    program = check_source(MAX_LENGTH_40, "t.alta") if name == "MAX_LENGTH_40" else load(name)
    report = compile_program(program).report
    assert report.guaranteed_length >= program.max_length
    assert not report.warnings


# ---- 3. the numpy network, whole runs -------------------------------------------------------

def embed(compiled, tokens: np.ndarray) -> np.ndarray:
    w = compiled.weights
    x = w["embed.token"][tokens]
    if "embed.position" in w:
        x = x + w["embed.position"][None, :tokens.shape[1]]
    return x.astype(np.float32)


def numpy_halted(compiled, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if "halting.0.weight" not in compiled.weights:
        return np.zeros(len(x), bool)
    holds = numpy_mlp(compiled.weights, x, "halting", 3).sum(axis=-1) > 0.5
    return np.all(holds | ~valid, axis=1)


def numpy_run(compiled, tokens, valid):
    """The compiled Universal Transformer in numpy (alta/model.py's __call__, unjitted)."""
    x = embed(compiled, tokens)
    running = ~numpy_halted(compiled, x, valid)
    layers = np.zeros(len(x), np.int64)
    for _ in range(compiled.program.max_layers):
        if not running.any():
            break
        attended = x + numpy_attention(compiled, x, valid)
        new = attended + numpy_mlp(compiled.weights, attended)
        x = np.where((running[:, None] & valid)[..., None], new, x)
        layers += running
        running &= ~numpy_halted(compiled, x, valid)
    return x, layers, ~running


@pytest.mark.parametrize("name", ALL)
def test_embeddings_give_the_initial_state(name):
    from alta.framing import encode_batch
    from alta.interpreter import initial_state
    from alta.sampling import input_alphabet, longest_input, sample_inputs

    program = load(name)
    compiled = compiled_program(name)
    texts = sample_inputs(program, 30, 12, seed=4) + [""]
    if program.max_length:  # the longest input the program accepts
        texts.append(" ".join([input_alphabet(program)[-1]] * longest_input(program)))
    batch = encode_batch(program, texts)
    want = initial_state(program, batch)
    x = embed(compiled, batch.tokens)
    got = compiled.layout.decode(x, program)
    for var in program.variables:
        block = compiled.layout.block(var.name)
        assert np.array_equal(got[var.name][batch.valid], want[var.name][batch.valid]), var.name
        if block.kind == "numerical":
            assert np.allclose(x[..., block.start][batch.valid], want[var.name][batch.valid])
    for head in program.heads:  # head outputs start empty
        block = compiled.layout.block(head.name)
        assert np.all(x[..., block.start:block.stop] == 0)


# "numbers" is left out: means such as 1/3 fall between its declared values {k / 10}, where
# the compiled bucketing is not exact (its declared values do not cover the possible means).
WHOLE_RUNS = [n for n in ALL if n != "numbers"]


@pytest.mark.parametrize("name", WHOLE_RUNS)
def test_numpy_network_runs_like_the_interpreter(name):
    """Embedding, then attention + MLP + halting readout, layer after layer, in numpy."""
    from alta.errors import AltaRuntimeError
    from alta.framing import encode_batch
    from alta.interpreter import run
    from alta.sampling import sample_inputs

    program = load(name)
    compiled = compiled_program(name)
    texts = []
    for text in sample_inputs(program, 60, 8, seed=5) + sample_inputs(program, 60, 3, seed=6):
        try:
            run(program, [text])
        except AltaRuntimeError:  # reads an undefined head: nothing to agree on
            continue
        texts.append(text)
    assert len(texts) >= 10, len(texts)
    expected = run(program, texts)
    batch = encode_batch(program, texts)
    x, layers, halted = numpy_run(compiled, batch.tokens, batch.valid)
    got = compiled.layout.decode(x, program)
    for var in program.variables:
        assert np.array_equal(got[var.name][batch.valid], expected.final[var.name][batch.valid])
    assert np.array_equal(layers, expected.layers)
    if program.halt is not None:
        assert np.array_equal(halted, expected.halted)
