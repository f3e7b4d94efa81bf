"""`alta plot` and the curve pictures: PNG files that show what they claim.

The pictures are matplotlib Figures (`run_figure`, `curves_figure`, the experiment's
`result_figures`), checked here panel by panel against the run and the values they plot."""

import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import PROGRAMS
from helpers import alta_main, prog

from alta.checker import check_file, check_source
from alta.compiler import compile_program
from alta.coverage import Novelty
from alta.errors import AltaError
from alta.experiment import COVERED, ExperimentConfig, Results, Score, result_figures
from alta.interpreter import run, selection
from alta.pictures import choose_panels, curves_figure, plot_curves, plot_run, run_figure

# Heads that are undefined somewhere: `left` at position 0 (offset -1 selects nothing there),
# `twin` where a categorical head selects several positions, `mean` (numerical) where its
# query matches no key. The MLP reads only `left`, and only where it is defined.
UNDEFINED = prog("""
    program shifts
    vocab "a" "b"
    input words
    output seen
    max_length 8
    max_layers 2

    var x: cat 2 = token
    var first: bool = position == 0
    var seen: cat 2 = 0
    var share: num {0, 0.25, 0.5, 0.75, 1} = 0

    head left = x at -1
    head twin = x where x == x
    head mean: num {0, 0.5, 1} = share where seen == x

    mlp:
        if first == 0:
            seen = left
        share = 0.5
""")


def panels(figure) -> dict:
    """The run picture's panels by title (colour bars have none)."""
    return {ax.get_title(): ax for ax in figure.axes if ax.get_title()}


def hatched_rows(ax) -> dict[int, str]:
    """Query row -> hatch of the rectangles that mark undefined head outputs."""
    return {round(p.get_y() + 0.5): p.get_hatch() for p in ax.patches if p.get_hatch()}


def the_run(program, text):
    result = run(program, [text], trace=True)
    n = int(result.batch.lengths[0])
    tokens = [program.vocab[t] for t in result.batch.tokens[0, :n]]
    return result, n, tokens, [result.initial] + [r.after_mlp for r in result.trace]


def test_run_picture_cli_writes_the_chosen_panels(tmp_path):
    out = tmp_path / "parity.png"
    done = alta_main("plot", PROGRAMS / "parity.alta", "1 0 1 1 0", "-o", out,
                     "--vars", "done_left,parity")
    assert done.returncode == 0, done.stderr
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[1] > 500
    assert np.std(image[..., :3]) > 0.1  # not blank
    bad = alta_main("plot", PROGRAMS / "parity.alta", "1 0", "-o", tmp_path / "x.png",
                    "--vars", "parity,nope")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "unknown 'nope'; parity has the variables parity done and the heads parity_left " \
        "done_left" in bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_run_picture_plots_the_run():
    program = check_file(PROGRAMS / "parity.alta")
    text = "1 0 1 1 0"
    figure = run_figure(program, text, layer=2)
    lines = {v.name: v.span.line for v in program.variables}
    drawn = panels(figure)
    assert list(drawn) == [f"parity (line {lines['parity']})", f"done (line {lines['done']})",
                           "head parity_left, layer 2", "head done_left, layer 2"]
    assert figure.get_suptitle() == "parity: '1 0 1 1 0' (5 layers)"
    result, n, tokens, states = the_run(program, text)
    for var in program.variables:
        ax = drawn[f"{var.name} (line {lines[var.name]})"]
        # rows: the initial state, then the state after each layer; columns: positions
        want = np.array([s[var.name][0, :n] for s in states], dtype=np.float64)
        np.testing.assert_array_equal(ax.images[0].get_array(), want)
        assert ax.get_ylabel() == "layer"
        assert [t.get_text() for t in ax.get_xticklabels()] == tokens
        # Every cell's value is written, in black on light cells and white on dark ones.
        image = ax.images[0]
        for t in ax.texts:
            j, i = t.get_position()
            assert t.get_text() == str(int(want[i, j]))
            r, g, b, _ = image.cmap(image.norm(want[i, j]))
            assert t.get_color() == ("black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5
                                     else "white")
        assert len(ax.texts) == want.size
    for head in program.heads:
        ax = drawn[f"head {head.name}, layer 2"]
        chosen = selection(head, states[1], result.batch.valid)[0, :n, :n]
        np.testing.assert_array_equal(ax.images[0].get_array(),
                                      chosen / np.maximum(chosen.sum(1, keepdims=True), 1))
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key position", "query position")
    # Offset -1: every position but the first selects its left neighbour; the first
    # selects nothing, so its output is undefined: hatched, with a legend entry.
    weights = np.asarray(drawn["head parity_left, layer 2"].images[0].get_array())
    assert weights[0].sum() == 0 and all(weights[i, i - 1] == 1 for i in range(1, n))
    assert hatched_rows(drawn["head parity_left, layer 2"]) == {0: "///"}
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["undefined: selects no position"]


def test_run_picture_layer_ticks_are_whole_layers():
    program = check_source(UNDEFINED, "shifts.alta")
    figure = run_figure(program, "a b", names="x,share")
    for ax in panels(figure).values():
        ticks = ax.get_yticks()
        visible = ticks[(ticks >= 0) & (ticks <= 2)]
        assert 0 in visible and all(t == int(t) for t in visible)
        assert ax.get_ylim() == (2.5, -0.5)  # rows 0..2: the initial state and two layers


def test_run_picture_colours_values_by_name():
    program = check_file(PROGRAMS / "parity.alta")
    figure = run_figure(program, "1 0 1", names=["done"])
    (panel, bar) = figure.axes  # the panel and its colour bar
    assert [t.get_text() for t in bar.get_yticklabels()] == ["0", "1"]
    image = panel.images[0]
    colours = {tuple(image.cmap(image.norm(v))) for v in (0, 1)}
    assert len(colours) == 2  # two values, two discrete colours


def test_run_picture_vars_chooses_panels_in_order():
    program = check_file(PROGRAMS / "parity.alta")
    figure = run_figure(program, "1 0 1", names="done_left, done,parity")
    assert list(panels(figure)) == ["done (line 21)", "parity (line 20)",
                                    "head done_left, layer 1"]
    with pytest.raises(AltaError, match="unknown 'token', 'x'; parity has the variables "
                                        "parity done and the heads parity_left done_left"):
        run_figure(program, "1 0 1", names="token,parity,x")
    with pytest.raises(AltaError, match="'done' more than once"):
        choose_panels(program, "done,done")
    variables, heads, left_out = choose_panels(program, None, limit=3)
    assert [v.name for v in variables] == ["parity", "done"]
    assert [h.name for h in heads] == ["parity_left"] and left_out == ["done_left"]
    figure = run_figure(program, "1 0 1", limit=3)
    assert figure.get_supxlabel() == "not drawn (1): done_left; choose the panels with --vars"


def test_run_picture_marks_undefined_heads():
    program = check_source(UNDEFINED, "shifts.alta")
    text = "a a b"
    figure = run_figure(program, text, layer=1)
    result, n, _, states = the_run(program, text)
    undefined = result.trace[0].undefined  # the interpreter's own record
    drawn = panels(figure)
    for head in program.heads:
        ax = drawn[f"head {head.name}, layer 1"]
        count = selection(head, states[0], result.batch.valid)[0, :n, :n].sum(axis=1)
        want = {q: "///" if count[q] == 0 else "xxx"
                for q in np.flatnonzero(undefined[head.name][0, :n])}
        assert hatched_rows(ax) == want
    assert hatched_rows(drawn["head left, layer 1"]) == {0: "///"}
    assert hatched_rows(drawn["head twin, layer 1"]) == {0: "xxx", 1: "xxx"}  # the two a's
    assert hatched_rows(drawn["head mean, layer 1"]) == {2: "///"}  # no seen == 1
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "undefined: selects no position", "undefined: selects several positions"]


def test_compiled_attention_weights_are_the_interpreters_selections():
    program = check_source(UNDEFINED, "shifts.alta")
    compiled = compile_program(program)
    text = "a b a b"
    result, n, _, states = the_run(program, text)
    scale = compiled.config.attention_scale
    for layer in (1, 2):
        figure = run_figure(program, text, layer=layer, compiled=compiled)
        assert figure.get_suptitle() == "shifts: 'a b a b' (2 layers) on the compiled Transformer"
        drawn = panels(figure)
        for var in program.variables:  # decoded from the residual: the interpreter's values
            want = np.array([s[var.name][0, :n] for s in states])
            np.testing.assert_array_equal(
                drawn[f"{var.name} (line {var.span.line})"].images[0].get_array(), want)
        for h, head in enumerate(program.heads):
            ax = drawn[f"head {head.name}, layer {layer} (compiled)"]
            weights = np.asarray(ax.images[0].get_array())
            assert weights.min() >= 0 and weights.max() <= 1
            chosen = selection(head, states[layer - 1], result.batch.valid)[0, :n, :n]
            count = chosen.sum(axis=1)
            defined = count == 1 if not head.numerical else count > 0
            # Each selected key gets 1/k, up to the softmax's leakage onto the others: a
            # match outscores them by beta (the compiler's), so together they hold at most
            # n exp(-beta); heads without a key score every allowed position alike.
            beta = float(np.max(compiled.parameters.attention.query[h])) * scale
            tolerance = (n * np.exp(-beta) if head.where else 0) + 1e-6
            np.testing.assert_allclose(weights[defined], (chosen / np.maximum(
                count[:, None], 1))[defined], rtol=0, atol=tolerance)
            assert hatched_rows(ax).keys() == set(np.flatnonzero(~defined))


def test_run_picture_rejects_a_layer_the_run_does_not_have(tmp_path):
    program = check_file(PROGRAMS / "parity.alta")
    with pytest.raises(AltaError, match="the run has 3 layers"):
        plot_run(program, "1 0 1", tmp_path / "x.png", layer=9)
    assert not (tmp_path / "x.png").exists()


def test_curves(tmp_path):
    curves = {"a": [(1, 1.0), (2, 0.1)], "b": [(1, 0.5), (2, 0.2)]}
    path = plot_curves(curves, tmp_path / "c.png", title="t")
    assert mpimg.imread(path).shape[2] in (3, 4)
    figure = curves_figure(curves, title="t", ylabel="mse loss", mark=("longest", 1.5))
    (ax,) = figure.axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("t", "step", "mse loss")
    assert ax.get_yscale() == "log"
    plotted = {line.get_label(): line for line in ax.get_lines()}
    assert list(plotted) == ["a", "b", "longest"]
    for name, points in curves.items():
        np.testing.assert_array_equal(np.column_stack(plotted[name].get_data()), points)
    assert list(plotted["longest"].get_xdata()) == [1.5, 1.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "longest"]


def test_experiment_pictures_plot_its_scores(tmp_path):
    config = ExperimentConfig(program=PROGRAMS / "parity.alta", train_lengths=(1, 4),
                              test_lengths=(1, 8), methods=("compiled", "trace"))
    scores = (Score("compiled", 1, 10, 10), Score("compiled", 8, 10, 10),
              Score("trace", 1, 10, 9), Score("trace", 8, 10, 3))
    loss = [(10, 0.5), (20, 0.25)]
    figures = result_figures(Results("parity", "bits", scores, {"trace (mse)": loss}), config)
    assert list(figures) == ["accuracy.png", "loss.png"]
    (ax,) = figures["accuracy.png"].axes
    assert ax.get_title() == "parity: accuracy by length"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("input length (bits)", "accuracy")
    assert ax.get_yscale() == "linear" and ax.get_ylim() == (-0.02, 1.02)
    lines = {line.get_label(): line.get_xydata().tolist() for line in ax.get_lines()}
    assert lines == {"compiled": [[1, 1.0], [8, 1.0]], "trace-trained MLP": [[1, 0.9], [8, 0.3]],
                     "longest training input": [[4, 0], [4, 1]]}
    (ax,) = figures["loss.png"].axes
    assert ax.get_ylabel() == "training loss" and ax.get_title() == "parity: training"
    (line,) = ax.get_lines()
    assert line.get_label() == "trace (mse)" and line.get_xydata().tolist() == [
        list(p) for p in loss]
    no_training = result_figures(Results("parity", "bits", scores[:2], {}), config)
    assert list(no_training) == ["accuracy.png"]
    # With the minimality columns: the share of inputs needing nothing new, per length.
    novelty = {1: Novelty(np.array([False, False, False, False]), np.zeros(4, bool)),
               8: Novelty(np.array([True, False, False, False]), np.array([True, True, False,
                                                                            False]))}
    (ax,) = result_figures(Results("parity", "bits", scores, {}, novelty),
                           config)["accuracy.png"].axes
    lines = {line.get_label(): line.get_xydata().tolist() for line in ax.get_lines()}
    assert lines[COVERED] == [[1, 1.0], [8, 0.5]]
