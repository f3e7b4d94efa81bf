"""`alta plot` and the curve pictures: PNG files that show what they claim."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from alta.checker import check_file
from alta.errors import AltaError
from alta.pictures import plot_curves, plot_run
from conftest import PROGRAMS
from test_cli import alta


def test_run_picture_has_a_panel_per_variable_and_head(tmp_path):
    out = tmp_path / "parity.png"
    done = alta("plot", PROGRAMS / "parity.alta", "1 0 1 1 0", "-o", out)
    assert done.returncode == 0, done.stderr
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[1] > 800
    # Four panels side by side (2 variables, 2 heads): the picture is wide, not tall.
    assert image.shape[1] > 2 * image.shape[0]
    assert np.std(image[..., :3]) > 0.1  # not blank


def test_run_picture_rejects_a_layer_the_run_does_not_have(tmp_path):
    program = check_file(PROGRAMS / "parity.alta")
    with pytest.raises(AltaError, match="the run has 3 layers"):
        plot_run(program, "1 0 1", tmp_path / "x.png", layer=9)
    assert not (tmp_path / "x.png").exists()


def test_curves(tmp_path):
    path = plot_curves({"a": [(1, 1.0), (2, 0.1)], "b": [(1, 0.5), (2, 0.2)]},
                       tmp_path / "c.png", title="t")
    assert mpimg.imread(path).shape[2] in (3, 4)
