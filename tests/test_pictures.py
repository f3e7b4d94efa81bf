"""`alta plot` and the curve pictures: PNG files that show what they claim.

The pictures are matplotlib Figures (`run_figure`, `curves_figure`, the experiment's
`result_figures`), checked here panel by panel against the run and the values they plot."""

import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import PROGRAMS
from test_cli import alta

from alta.checker import check_file
from alta.errors import AltaError
from alta.experiment import ExperimentConfig, Results, Score, result_figures
from alta.interpreter import run, selection
from alta.pictures import curves_figure, plot_curves, plot_run, run_figure


def test_run_picture_has_a_panel_per_variable_and_head(tmp_path):
    out = tmp_path / "parity.png"
    done = alta("plot", PROGRAMS / "parity.alta", "1 0 1 1 0", "-o", out)
    assert done.returncode == 0, done.stderr
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[1] > 800
    # Four panels side by side (2 variables, 2 heads): the picture is wide, not tall.
    assert image.shape[1] > 2 * image.shape[0]
    assert np.std(image[..., :3]) > 0.1  # not blank


def test_run_picture_plots_the_run():
    program = check_file(PROGRAMS / "parity.alta")
    text = "1 0 1 1 0"
    figure = run_figure(program, text, layer=2)
    axes = figure.axes
    assert len(axes) == 4  # parity, done; parity_left, done_left: one row of four
    titles = [ax.get_title() for ax in axes]
    lines = {v.name: v.span.line for v in program.variables}
    assert titles == [f"parity (line {lines['parity']})", f"done (line {lines['done']})",
                      "head parity_left, layer 2", "head done_left, layer 2"]
    assert figure.get_suptitle() == "parity: '1 0 1 1 0' (5 layers)"
    result = run(program, [text], trace=True)
    n = int(result.batch.lengths[0])
    tokens = [program.vocab[t] for t in result.batch.tokens[0, :n]]
    states = [result.initial] + [r.after_mlp for r in result.trace]
    for ax, var in zip(axes, program.variables):
        # rows: the initial state, then the state after each layer; columns: positions
        want = np.array([s[var.name][0, :n] for s in states], dtype=np.float64)
        np.testing.assert_array_equal(ax.images[0].get_array(), want)
        assert ax.get_ylabel() == "layer"
        assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    for ax, head in zip(axes[2:], program.heads):
        want = selection(head, states[1], result.batch.valid)[0, :n, :n]
        np.testing.assert_array_equal(ax.images[0].get_array(), want)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key position", "query position")
    # Offset -1: every position but the first selects its left neighbour.
    chosen = np.asarray(axes[2].images[0].get_array())
    assert chosen[0].sum() == 0 and all(chosen[i, i - 1] == 1 for i in range(1, n))


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
    assert ax.get_yscale() == "linear"
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
