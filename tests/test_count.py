"""Count heads (`head n: count where TESTS at OFFSETS`): the number of positions a head
selects, on both back ends against a Python oracle that counts directly.

One program holds a count head per form (no `where`, equality, comparisons, key-only tests,
`and`/`or`/`not`, a set-valued query, relative offsets) and copies each count into a
variable at every position, the start token's included (a count head needs no start token:
the compiled head's attention sink stands in for it). The interpreter's final state and the
compiled model's decoded residual (dense and structured paths) must equal the oracle's
counts on many random inputs up to the program's full length, in one batch each. Misuses
are cases of tests/data/checker_errors.toml ("count heads")."""

from __future__ import annotations

import random

import numpy as np
import pytest

from alta.checker import check_source
from alta.compiled import load_model, run_compiled
from alta.compiler import compile_program
from alta.compiler.buckets import count_buckets
from alta.errors import AltaError
from alta.interpreter import run

WORDS = ("a", "b", "c", "d", "e", "f")  # token ids 1..6; "<s>" is 0
QUERY = (0, 3, 1, 5, 2, 6, 4)  # q of each token id: another order of the same values
MAX_WORDS = 40
ANY = None  # no offsets

# name -> (`where ... at ...` of the head, the test in Python of (key id, query id), the
# offsets j - i it may select, ANY for all)
HEADS = {
    "every": ("", lambda j, i: True, ANY),
    "same": ("where tok == tok", lambda j, i: j == i, ANY),
    "lt": ("where tok < q", lambda j, i: j < QUERY[i], ANY),
    "not_gt": ("where not tok > q", lambda j, i: not j > QUERY[i], ANY),
    "upto": ("where tok <= 2", lambda j, i: j <= 2, ANY),
    "among": ('where tok in {"<s>", "b", "d"}', lambda j, i: j in (0, 2, 4), ANY),
    "either": ('where tok == q or tok == "<s>"', lambda j, i: j == QUERY[i] or j == 0, ANY),
    "two": ('where tok != q and c <= d and tok not in {"f"}',
            lambda j, i: j != QUERY[i] and j % 3 <= 2 * i % 3 and j != 6, ANY),
    "nearby": ("where tok in near", lambda j, i: j in (i - 1, i, 0), ANY),
    "earlier": ("where tok == tok at -MAX_WORDS..-1", lambda j, i: j == i,
                range(-MAX_WORDS, 0)),
    "later_bigger": ("where tok > q at 1..MAX_WORDS", lambda j, i: j > QUERY[i],
                     range(1, MAX_WORDS + 1)),
    "window": ("at -3..3", lambda j, i: True, range(-3, 4)),
    "pair": ('where tok != "a" at {-2, 2}', lambda j, i: j != 1, (-2, 2)),
}


def source(names=tuple(HEADS), max_words: int = MAX_WORDS) -> str:
    heads = "\n".join(f"head {name}: count {HEADS[name][0]}" for name in names)
    counts = "\n".join(f"var {name}_n: cat MAX_WORDS + 2 = 0" for name in names)
    writes = "\n".join(f"    {name}_n = {name}" for name in names)
    return f"""program counting
const MAX_WORDS = {max_words}
const QUERY = {list(QUERY)}
vocab "<s>" {" ".join(f'"{w}"' for w in WORDS)}
input "<s>" words
max_length MAX_WORDS + 1
max_layers 1
output {names[0]}_n where is_word

var tok: vocab = token
var q: vocab = QUERY[token]
var c: cat 3 = token % 3
var d: cat 3 = 2 * token % 3
var near: set 7 of [{{t, t - 1, 0}} if t > 0 else {{0}} for t in 0..6] = \\
    {{token, token - 1, 0}} if token > 0 else {{0}}
var is_word: bool = token != "<s>"
{counts}

{heads}

mlp:
{writes}
"""


def oracle(words: list[str], names=tuple(HEADS)) -> dict[str, list[int]]:
    """Per head, per position (the start token's included): how many positions it selects."""
    ids = [0] + [WORDS.index(w) + 1 for w in words]
    positions = range(len(ids))
    out = {}
    for name in names:
        _, test, offsets = HEADS[name]
        out[name] = [sum(1 for j in positions if test(ids[j], ids[i])
                         and (offsets is ANY or j - i in offsets)) for i in positions]
    return out


def random_inputs(seed: int, count: int, max_words: int = MAX_WORDS) -> list[list[str]]:
    rng = random.Random(seed)
    lengths = [max_words, max_words - 1, 0, 1] + [rng.randint(0, max_words)
                                                   for _ in range(count)]
    # Some inputs of one word repeated: the largest counts of the equality heads.
    return [[rng.choice(WORDS) for _ in range(n)] if k % 5 else [rng.choice(WORDS)] * n
            for k, n in enumerate(lengths)]


def _counts(values: dict[str, np.ndarray], inputs, names=tuple(HEADS)):
    return [{name: [int(v) for v in values[f"{name}_n"][b, :len(words) + 1]] for name in names}
            for b, words in enumerate(inputs)]


@pytest.fixture(scope="module")
def counting_program():
    return check_source(source(), "counting.alta")


@pytest.fixture(scope="module")
def counting_compiled(counting_program):
    return compile_program(counting_program)


def test_count_heads_are_integers_up_to_what_one_position_can_select(counting_program):
    """The MLP reads a count 0..maximum: max_length without offsets, else the offsets
    that fit in max_length."""
    sizes = {h.name: h.type.size for h in counting_program.heads}
    assert sizes["every"] == sizes["lt"] == MAX_WORDS + 2  # counts 0..max_length
    assert sizes["earlier"] == sizes["later_bigger"] == MAX_WORDS + 1
    assert sizes["window"] == 8 and sizes["pair"] == 3
    assert all(h.counts and h.value is None for h in counting_program.heads)


def test_interpreter_counts_as_python(counting_program):
    inputs = random_inputs(1, 200)
    result = run(counting_program, [" ".join(w) for w in inputs])
    assert _counts(result.final, inputs) == [oracle(w) for w in inputs]


@pytest.mark.parametrize("structured", [False, True], ids=["dense", "structured"])
def test_compiled_model_counts_as_python(counting_compiled, structured):
    """The dense path (the reference semantics) and the structured one, on inputs up to the
    full length in one batch."""
    compiled = counting_compiled
    assert compiled.report.guaranteed_length == MAX_WORDS + 1 and not compiled.report.warnings
    assert not compiled.faults  # count heads are never undefined: nothing to detect
    inputs = random_inputs(2, 100)
    result = run_compiled(compiled, [" ".join(w) for w in inputs],
                          model=load_model(compiled, structured=structured))
    assert not result.faults
    values = compiled.layout.decode(result.residual, compiled.program)
    assert _counts(values, inputs) == [oracle(w) for w in inputs]


def test_a_count_of_zero_is_a_value_not_an_undefined_read():
    """A program without a start token, whose count heads select nothing at some positions,
    runs on both back ends (a categorical head there would be an error)."""
    program = check_source("""program zeros
vocab "a" "b"
input words
max_length 30
max_layers 1
output before_n
var tok: vocab = token
var before_n: cat 30 = 0
head before: count where tok == "b" at -29..-1
mlp:
    before_n = before
""", "zeros.alta")
    rng = random.Random(4)
    texts = ["a", "b", "a b b a"] + [" ".join(rng.choice("ab") for _ in range(rng.randint(1, 30)))
                                     for _ in range(40)]
    expected = [[sum(1 for j in range(i) if t.split()[j] == "b") for i in range(len(t.split()))]
                for t in texts]
    result = run(program, texts)
    assert [list(result.final["before_n"][b, :len(e)]) for b, e in enumerate(expected)] == expected
    compiled = compile_program(program)
    got = run_compiled(compiled, texts)
    values = compiled.layout.decode(got.residual, compiled.program)
    assert [list(values["before_n"][b, :len(e)]) for b, e in enumerate(expected)] == expected


def test_a_count_too_large_for_the_variable_it_is_written_to_is_a_compile_error():
    """The count's maximum is exact, so an off-by-one is caught at compile time, located."""
    program = check_source("""program small
vocab "a" "b"
input words
max_length 8
max_layers 1
output n
var n: cat 8 = 0
head seen: count
mlp:
    n = seen
""", "small.alta")
    with pytest.raises(AltaError) as info:
        compile_program(program)
    assert info.value.first.span.line == 10
    assert "seen = 8" in str(info.value)


def test_the_guaranteed_length_of_a_count_follows_float32():
    """The sink weighs as M matches (M the maximum count), so the shares k / (k + M) are
    spaced at least 1 / (4 M) apart, and the compiler's float32 bound for means
    (compiler/buckets.py) guarantees every count over all positions up to 730 of them; a
    program declaring more gets a warning."""
    assert count_buckets(121, 121).positions == 121
    assert count_buckets(700, 700).positions == 700
    assert count_buckets(800, 800).positions == 730
    assert count_buckets(8, 100_000).positions == 100_000  # offsets bound the count
    program = check_source("""program long
vocab "a" "b"
input words
max_length 800
max_layers 1
output n
var n: bool = 0
head seen: count
mlp:
    n = 1
""", "long.alta")  # (the head is not read: its scale and bound are figured all the same)
    report = compile_program(program).report
    assert report.guaranteed_length == 730
    assert any("exact only up to 730 positions" in w for w in report.warnings)


LONG = 200


def test_counts_are_exact_on_long_inputs():
    """Up to LONG words after a start token: every count of a head over all positions, of
    one over the same token and of a comparison, on both back ends (the dense path)."""
    names = ("every", "same", "lt")
    program = check_source(source(names, max_words=LONG), "counting.alta")
    compiled = compile_program(program)
    assert compiled.report.guaranteed_length == LONG + 1
    inputs = random_inputs(6, 8, max_words=LONG)
    texts = [" ".join(w) for w in inputs]
    expected = [oracle(w, names) for w in inputs]
    assert _counts(run(program, texts).final, inputs, names) == expected
    result = run_compiled(compiled, texts, model=load_model(compiled, structured=False))
    values = compiled.layout.decode(result.residual, compiled.program)
    assert _counts(values, inputs, names) == expected


def test_the_compiler_bounds_a_count_by_what_the_framing_lets_one_query_select():
    """`where key < key` never counts the start token (its key is above every word's), and
    `where tok == tok` counts the start only for the start itself: both reach at most the
    words, max_length - 1, so writing them to a `cat max_length` variable compiles."""
    from alta.compiler.values import reachable_values

    program = check_source("""program bounded
vocab "a" "b" "c" "<s>"
input "<s>" words
max_length 10
max_layers 1
output smaller
var key: vocab = token
var smaller: cat 10 = 0
var copies: cat 10 = 0
var any_before: cat 11 = 0
head below: count where key < key
head same: count where key == key
head before: count where key != "c" at -10..-1
mlp:
    smaller = below
    copies = same
    any_before = before
""", "bounded.alta")
    domains = reachable_values(program)
    assert program.head("below").type.size == 11  # the type: counts 0..max_length
    assert max(domains["below"]) == max(domains["same"]) == 9
    assert max(domains["before"]) == 9  # offsets: at most 9 positions to the left
    compile_program(program)


def test_a_count_read_only_against_zero_costs_two_buckets():
    """Counts no rule tells apart share one bucket: `n == 0` needs one step, not M."""
    def first_layer(condition: str) -> int:
        program = check_source(f"""program zero
vocab "a" "b"
input words
max_length 40
max_layers 1
output seen
var tok: vocab = token
var seen: cat 41 = 0
head n: count where tok == "b" at -39..-1
mlp:
    {condition}
""", "zero.alta")
        return compile_program(program).report.mlp_widths[0]

    # `seen = n` tells all 40 counts (0..39) apart: 39 steps, against `n == 0`'s one.
    assert first_layer("seen = n") - first_layer("seen = 1 if n == 0 else 0") == 38
