"""Families of declarations (alta/families.py): `for k in ...:` around indexed `var` and `head`
lines, members `name[k]` read and written with compile-time indices.

A program written with families is the same program as its members written out by hand
(the same IR up to names and source places, the same weights, the same outputs and final
states on both back ends); programs/dyck.alta, a Dyck-K recogniser built on a family of
per-kind heads, agrees with a stack-based oracle on both back ends for several K; and the
members' names (`depth[0]`) survive everywhere names leave a program (traces, checkpoints,
`alta run --trace`, pictures). Misuses are cases of tests/data/checker_errors.toml and
syntax_errors.toml ("families of declarations")."""

from __future__ import annotations

import dataclasses
import functools
import random

import numpy as np
import pytest
from helpers import PROGRAMS

from alta import ir
from alta.checker import check_file, check_source
from alta.compiled import run_compiled
from alta.compiler import compile_program
from alta.errors import AltaError, Source, Span
from alta.interpreter import run
from alta.tasks import find_task

K = 3

# Running "seen so far": per token kind k, whether a token of kind k stands at or left of
# each position, one position per layer (as parity does); the last position's count of
# kinds seen is printed. Families of variables and heads, read and written in the MLP's
# loops, through a helper's argument, by a head's key and value, and in `halt`.
def family_source(k: int) -> str:
    total = " + ".join(f"both({i})" for i in range(k))
    return f"""program seen
param K = {k} in 1..3
vocab "a" "b" "c" "<s>"
input "<s>" words
max_length 16
output kinds at last
halt when done == 1 and seen[0] >= 0

for k in 0..K - 1:
    var seen[k]: bool = token == k                 # token ids: "a" 0, "b" 1, "c" 2
    head left[k] = seen[k] at -1
var done: bool = token == "<s>"
var kinds: cat K + 1 = 0
head done_left = done at -1
for k, weight in [(0, 1), (1, 1), (2, 2)]:
    var heavy[k]: bool = token == k and weight == 2
    head same[k]: bool = heavy[k] where heavy[k] >= heavy[k] at -1

mlp:
    if done == 0 and done_left == 1:
        for k in 0..K - 1:
            seen[k] = both(k) | (same[k] & 0 if heavy[k] == 0 else 0)
        kinds = {total}
        done = 1

def both(k):
    return seen[k] | left[k]
"""


FAMILY = family_source(K)


def by_hand(k: int) -> str:
    """FAMILY with its families written out: member `x[i]` declared as `x_i`."""
    seen = "\n".join(f"var seen_{i}: bool = token == {i}\nhead left_{i} = seen_{i} at -1"
                     for i in range(k))
    heavy = "\n".join(f"var heavy_{i}: bool = token == {i} and {w} == 2\n"
                      f"head same_{i}: bool = heavy_{i} where heavy_{i} >= heavy_{i} at -1"
                      for i, w in [(0, 1), (1, 1), (2, 2)])
    writes = "\n".join(f"        seen_{i} = seen_{i} | left_{i} | "  # (`both(i)` inlined)
                       f"(same_{i} & 0 if heavy_{i} == 0 else 0)" for i in range(k))
    total = " + ".join(f"(seen_{i} | left_{i})" for i in range(k))
    return f"""program seen
vocab "a" "b" "c" "<s>"
input "<s>" words
max_length 16
output kinds at last
halt when done == 1 and seen_0 >= 0

{seen}
var done: bool = token == "<s>"
var kinds: cat {k + 1} = 0
head done_left = done at -1
{heavy}

mlp:
    if done == 0 and done_left == 1:
{writes}
        kinds = {total}
        done = 1
"""


def hand_name(name: str) -> str:
    """A member's name as `by_hand` writes it: seen[2] -> seen_2."""
    return name.replace("[", "_").rstrip("]")


def shape(node, rename=lambda s: s):
    """An IR value with its source places dropped and its names renamed: what two
    programs that differ only in how they are written have in common."""
    if isinstance(node, (Span, Source)):
        return None
    if isinstance(node, str):
        return rename(node)
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name), rename) for f in dataclasses.fields(node)
            if f.name not in ("span", "source", "warnings", "params", "name_span"))
    if isinstance(node, (tuple, list)):
        return tuple(shape(x, rename) for x in node)
    if isinstance(node, (frozenset, set)):
        return frozenset(shape(x, rename) for x in node)
    if isinstance(node, dict):
        return {rename(k) if isinstance(k, str) else k: shape(v, rename) for k, v in node.items()}
    return node


@functools.cache
def family_program():
    return check_source(FAMILY, "seen.alta")


@functools.cache
def hand_program():
    return check_source(by_hand(K), "seen_by_hand.alta")


def inputs(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice("abc") for _ in range(rng.randint(0, 14)))
            for _ in range(count)]


def test_a_family_expands_to_its_members_written_out():
    family, hand = family_program(), hand_program()
    assert [v.name for v in family.variables] == [
        "seen[0]", "seen[1]", "seen[2]", "done", "kinds", "heavy[0]", "heavy[1]", "heavy[2]"]
    assert [h.name for h in family.heads] == [
        "left[0]", "left[1]", "left[2]", "done_left", "same[0]", "same[1]", "same[2]"]
    assert shape(family, hand_name) == shape(hand)
    # the members' source places are their own lines, `seen[k]` as written
    first = family.variables[0].span
    assert (first.line, FAMILY.splitlines()[first.line - 1].strip()) == (
        10, 'var seen[k]: bool = token == k                 # token ids: "a" 0, "b" 1, "c" 2')


@pytest.mark.parametrize("k", [1, 2])
def test_a_family_sized_by_a_parameter(k):
    family = check_source(family_source(k), "seen.alta")
    assert sum(v.name.startswith("seen[") for v in family.variables) == k
    assert shape(family, hand_name) == shape(check_source(by_hand(k), "by_hand.alta"))


def test_a_family_program_runs_as_its_written_out_twin_on_both_back_ends():
    family, hand = family_program(), hand_program()
    texts = inputs(200, seed=3)
    expected = [str(len(set(t.split()))) for t in texts]
    one, two = run(family, texts), run(hand, texts)
    assert list(one.outputs) == list(two.outputs) == expected
    for v in family.variables:
        np.testing.assert_array_equal(one.final[v.name], two.final[hand_name(v.name)])
    compiled_family, compiled_hand = compile_program(family), compile_program(hand)
    weights, by_hand_weights = compiled_family.weights, compiled_hand.weights
    assert weights.keys() == by_hand_weights.keys()
    for name in weights:  # the same numbers (the compiler may order rule units by name)
        assert weights[name].shape == by_hand_weights[name].shape
        np.testing.assert_array_equal(np.sort(weights[name], axis=None),
                                      np.sort(by_hand_weights[name], axis=None))
    assert list(run_compiled(compiled_family, texts[:80]).outputs) == expected[:80]
    assert list(run_compiled(compiled_hand, texts[:80]).outputs) == expected[:80]


# ---- Dyck-K: programs/dyck.alta against a stack ---------------------------------------------

BRACKETS = ("()", "[]", "{}", "<>")


def balanced(text: str, kinds: int) -> str:
    """The oracle: 1 iff `text` is balanced over the first `kinds` pairs of BRACKETS."""
    closing = {close: open_ for open_, close in BRACKETS[:kinds]}
    stack = []
    for c in text.replace(" ", ""):
        if c in closing.values():
            stack.append(c)
        elif c not in closing or not stack or stack.pop() != closing[c]:
            return "0"
    return "0" if stack else "1"


def bracket_inputs(kinds: int, count: int, max_length: int, seed: int) -> list[str]:
    """The task module's near misses, uniform strings over every kind (also those the
    setting lacks), and balanced strings with one bracket's kind changed."""
    rng = random.Random(seed)
    program = check_file(PROGRAMS / "dyck.alta", {"KINDS": kinds, "MAX_LENGTH": max_length})
    texts = find_task(program).inputs(count // 2, seed=seed)
    alphabet = "".join(BRACKETS[:min(kinds + 1, 4)])
    while len(texts) < count:
        n = rng.randint(0, max_length)
        texts.append("".join(rng.choice(alphabet) for _ in range(n)))
    return texts


@functools.cache
def dyck(kinds: int, max_length: int):
    program = check_file(PROGRAMS / "dyck.alta", {"KINDS": kinds, "MAX_LENGTH": max_length})
    return program, compile_program(program)


@pytest.mark.parametrize("kinds", [1, 2, 3])
def test_dyck_k_agrees_with_a_stack_on_both_back_ends(kinds):
    program, compiled = dyck(kinds, 30)
    assert sum(h.name.startswith("unmatched[") for h in program.heads) == kinds
    texts = bracket_inputs(kinds, 400, 30, seed=kinds)
    expected = [balanced(t, kinds) for t in texts]
    assert 0.25 < expected.count("1") / len(expected) < 0.75
    assert list(run(program, texts).outputs) == expected
    assert list(run_compiled(compiled, texts[:150]).outputs) == expected[:150]


def test_dyck_k_with_four_kinds():
    program, _ = dyck(4, 24)
    texts = bracket_inputs(4, 300, 24, seed=4)
    assert list(run(program, texts).outputs) == [balanced(t, 4) for t in texts]


# ---- names leave the program: traces, checkpoints, `alta run --trace`, pictures -------------

def test_members_names_survive_checkpoints_traces_and_pictures(tmp_path, capsys):
    from alta.checkpoint import load_checkpoint, save_checkpoint
    from alta.cli import main
    from alta.pictures import choose_panels, interpreter_panels
    from alta.traces import TraceSettings, column_names, read_dataset, write_dataset

    program = family_program()
    path = save_checkpoint(compile_program(program), tmp_path / "seen.safetensors")
    loaded = load_checkpoint(path)
    assert [v.name for v in loaded.program.variables] == [v.name for v in program.variables]
    assert run_compiled(loaded, ["a b", "c c a"]).outputs == ("2", "2")

    assert "attention.seen[1]" in column_names(program, False)
    assert "attention.left[2]" in column_names(program, False)
    write_dataset(program, None, TraceSettings(samples=4, seed=0, shard_size=4), tmp_path / "d")
    manifest, shards = read_dataset(tmp_path / "d")
    assert "mlp.seen[2]" in next(shards)
    assert "seen[2]" in str(manifest)

    source = tmp_path / "seen.alta"
    source.write_text(FAMILY)
    assert main(["run", str(source), "b a", "--trace"]) == 0
    trace = capsys.readouterr().out
    assert "seen[1]" in trace and "left[0]" in trace

    variables, heads, _ = choose_panels(program, "seen[0], left[1]")
    assert [v.name for v in variables] == ["seen[0]"] and [h.name for h in heads] == ["left[1]"]
    panels = interpreter_panels(program, "a b", layer=1)
    assert "seen[0]" in panels.states[0] and "left[1]" in panels.weights


def test_a_family_member_reads_like_any_other_name_in_errors():
    bad = FAMILY.replace("kinds = both(0)", "kinds = seen[1] + 3 + both(0)")
    with pytest.raises(AltaError, match=r"writes 4 to 'kinds'.*, seen\[1\] = 0, "):
        compile_program(check_source(bad, "seen.alta"))


def test_ir_names_are_plain_strings():
    program = family_program()
    reads = {n.name for s in program.mlp for n in ir.walk(s) if isinstance(n, ir.Read)}
    assert {"seen[0]", "left[2]", "same[1]"} <= reads
