"""Head selection by comparisons, key-only tests and their combinations (alta/selection.py,
compiler/scores.py), on both back ends against Python.

One program holds a head per form; each averages `is_start` over what it selects, which
always includes the start token (key 0, the smallest), so a word reads how many words its
head selects as round(1 / share) - 1. A Python oracle counts the same from the words, and
the interpreter's final state and the compiled model's decoded residual must both equal it,
on many random inputs up to the program's full length, in one batch each. Misuses are cases
of tests/data/checker_errors.toml ("head selection")."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.compiler.faults import ONE
from alta.errors import AltaRuntimeError
from alta.framing import encode_batch
from alta.interpreter import attend, initial_state, run

WORDS = ("a", "b", "c", "d", "e", "f")  # token ids 1..6; "<s>" is 0
QUERY = (0, 3, 1, 5, 2, 6, 4)  # q of each token id: another order of the same values
MAX_WORDS = 60

# name -> (the head's `where`, the same test in Python of (key token, query token)); offsets
# are written after the test. Every test holds for the start token as the key (id 0,
# c == 0, r == -3) against any word's query.
HEADS = {
    "lt": ("tok < q", lambda j, i: j < QUERY[i]),
    "le": ("tok <= q", lambda j, i: j <= QUERY[i]),
    "gt": ('tok > q or tok == "<s>"', lambda j, i: j > QUERY[i] or j == 0),
    "ge": ("tok >= q or tok == 0", lambda j, i: j >= QUERY[i] or j == 0),
    "ne": ("tok != q", lambda j, i: j != QUERY[i]),
    "not_gt": ("not tok > q", lambda j, i: not j > QUERY[i]),
    "upto": ("tok <= 2", lambda j, i: j <= 2),
    "among": ('tok in {"<s>", "b", "d"}', lambda j, i: j in (0, 2, 4)),
    "outside": ('tok not in {"a", "c"}', lambda j, i: j not in (1, 3)),
    "two_pairs": ("tok < q and c <= d", lambda j, i: j < QUERY[i] and j % 3 <= 2 * i % 3),
    "three": ('tok != q and c <= d and tok not in {"f"}',
              lambda j, i: j != QUERY[i] and j % 3 <= 2 * i % 3 and j != 6),
    "set_and": ("tok in near and (c != d or c == 0)",
                lambda j, i: j in (i - 1, i, 0) and (j % 3 != 2 * i % 3 or j % 3 == 0)),
    "ranged": ("r < rq or r == -3", lambda j, i: j - 3 < 3 - i or j == 0),
    "earlier": ("tok > q or tok == 0 at -MAX_WORDS..-1", lambda j, i: j > QUERY[i] or j == 0),
}


def source(names=tuple(HEADS)) -> str:
    heads = "\n".join(f"head {name}_share: num SHARES = is_start where {HEADS[name][0]}"
                      for name in names)
    counts = "\n".join(f"var {name}: num COUNTS = 0" for name in names)
    writes = "\n".join(f"        {name} = round(1 / {name}_share) - 1" for name in names)
    return f"""program selection
const MAX_WORDS = {MAX_WORDS}
const SHARES = {{1 / n for n in 1..MAX_WORDS + 1}}
const COUNTS = [n for n in 0..MAX_WORDS]
const QUERY = {list(QUERY)}
vocab "<s>" {" ".join(f'"{w}"' for w in WORDS)}
input "<s>" words
max_length MAX_WORDS + 1
max_layers 1
output lt where is_word

var tok: vocab = token
var q: vocab = QUERY[token]
var c: cat 3 = token % 3
var d: cat 3 = 2 * token % 3
var r: cat -3..3 = token - 3
var rq: cat -3..3 = 3 - token
var near: set 7 of [{{t, t - 1, 0}} if t > 0 else {{0}} for t in 0..6] = \\
    {{token, token - 1, 0}} if token > 0 else {{0}}
var is_start: num {{0, 1}} = token == "<s>"
var is_word: bool = token != "<s>"
{counts}

{heads}

mlp:
    if is_word == 1:
{writes}
"""


def oracle(words: list[str]) -> dict[str, list[int]]:
    """Per head, per word: how many words it selects."""
    ids = [0] + [WORDS.index(w) + 1 for w in words]
    words_at = range(1, len(ids))
    return {name: [sum(1 for j in words_at if test(ids[j], ids[i])
                       and (name != "earlier" or j < i)) for i in words_at]
            for name, (_, test) in HEADS.items()}


@pytest.fixture(scope="module")
def selection_program():
    return check_source(source(), "selection.alta")


def random_inputs(seed: int, count: int) -> list[list[str]]:
    rng = random.Random(seed)
    lengths = [MAX_WORDS, MAX_WORDS - 1, 1] + [rng.randint(1, MAX_WORDS) for _ in range(count)]
    return [[rng.choice(WORDS) for _ in range(n)] for n in lengths]


def _counts(values: dict[str, np.ndarray], inputs) -> list[dict[str, list[int]]]:
    return [{name: [int(v) for v in values[name][b, 1:len(words) + 1]] for name in HEADS}
            for b, words in enumerate(inputs)]


def test_interpreter_selects_as_python(selection_program):
    inputs = random_inputs(1, 200)
    result = run(selection_program, [" ".join(w) for w in inputs])
    assert _counts(result.final, inputs) == [oracle(w) for w in inputs]


@pytest.fixture(scope="module")
def selection_compiled(selection_program):
    return compile_program(selection_program)


def test_compiled_model_selects_as_python(selection_compiled):
    """The dense path, the reference semantics (the structured one: the next test), on
    inputs up to the full length in one batch."""
    inputs = random_inputs(2, 120)
    model = load_model(selection_compiled, structured=False)
    result = run_compiled(selection_compiled, [" ".join(w) for w in inputs], model=model)
    assert not result.faults
    values = selection_compiled.layout.decode(result.residual, selection_compiled.program)
    assert _counts(values, inputs) == [oracle(w) for w in inputs]


def test_structured_attention_reads_term_blocks_as_the_interpreter_selects():
    """The execution plan's term blocks (triangular, key-only, several terms per head, a
    set query) give the interpreter's head outputs (jitted: one compilation, where running
    op by op compiles each of the heads' operations on its own)."""
    import jax.numpy as jnp
    from flax import nnx

    from alta.model import Attention, features_first, features_last

    program = check_source(source(("lt", "upto", "three", "set_and")), "selection.alta")
    compiled = compile_program(program)
    batch = encode_batch(program, [" ".join(w) for w in random_inputs(3, 6)])
    state = initial_state(program, batch)
    x = compiled.layout.encode({**{k: v.reshape(-1) for k, v in state.items()},
                                ONE: np.ones(batch.tokens.size)})
    p, config, plan = compiled.parameters.attention, compiled.config, compiled.execution.heads
    assert plan is not None and any(not t.diagonal for b in plan for t in b.terms)
    attention = Attention(p, config.head_offsets, config.attention_scale, plan)
    out = nnx.jit(lambda a, x, v: a.features_first(x, v)[0])(attention, features_first(
        jnp.asarray(x.reshape(*batch.tokens.shape, -1))), jnp.asarray(batch.valid))
    heads = compiled.layout.decode(np.asarray(features_last(out)), compiled.program)
    expected, undefined = attend(program, state, batch.valid)
    for head in program.heads:
        defined = ~undefined[head.name] & batch.valid
        assert np.allclose(heads[head.name][defined], expected[head.name][defined],
                           rtol=1e-4, atol=1e-6), head.name


def test_each_term_is_one_bilinear_form_and_comparisons_keep_one_term(selection_program):
    """`tok < q` is one triangle over tok's and q's one-hots; a key-only test reads the
    key's own block as its query; `and` across pairs adds a term (and subtracts the rest)."""
    from alta.compiler.scores import score_terms

    heads = selection_program.head_index
    (lt,) = score_terms(selection_program, heads["lt_share"])
    assert np.array_equal(lt.matrix, np.less.outer(np.arange(7), np.arange(7)))
    (upto,) = score_terms(selection_program, heads["upto_share"])
    assert upto.key == upto.query == "tok"
    assert np.array_equal(upto.matrix, np.repeat((np.arange(7) <= 2)[:, None], 7, axis=1))
    tok, cd = score_terms(selection_program, heads["three_share"])  # f's test joins tok's
    assert (tok.key, tok.query, cd.key, cd.query, cd.column) == ("tok", "q", "c", "d", 7)
    assert tok.matrix.min() == -1 and tok.matrix.max() == 0  # two terms: 1 subtracted


def test_both_back_ends_report_a_comparison_head_undefined_on_the_same_inputs():
    """A categorical head `where tok < q and ...` selects one position on some inputs and
    none or several on others: the compiled model's fault detector (selection heads with
    the same terms) flags exactly the inputs on which the interpreter stops."""
    program = check_source("""program below
vocab "<s>" "a" "b" "c" "d"
input "<s>" words
max_length 41
max_layers 1
output seen where is_word
var tok: vocab = token
var q: vocab = token
var is_word: bool = token != "<s>"
var seen: vocab = 0
head below = tok where tok < q and tok != "<s>"
mlp:
    if is_word == 1 and tok != "a":
        seen = below
""", "below.alta")
    rng = random.Random(5)
    texts = [" ".join(rng.choice("abcd") for _ in range(rng.randint(1, 40)))
             for _ in range(60)] + ["b a", "c a b", "d a a", "a a"]
    expected = {}
    for b, text in enumerate(texts):
        try:
            run(program, [text])
        except AltaRuntimeError as error:
            expected[b] = error.layer
    compiled = compile_program(program)
    result = run_compiled(compiled, texts, model=load_model(compiled, structured=False),
                          undefined="stop")
    assert 0 < len(expected) < len(texts)
    assert {f.sequence: f.layer for f in result.faults} == expected
