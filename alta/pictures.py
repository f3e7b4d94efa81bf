"""Pictures (matplotlib, written as PNG): loss and accuracy curves, and a program's run."""

from __future__ import annotations

from pathlib import Path

from alta.files import write_atomically


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path) -> Path:
    def write(tmp: str) -> None:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")

    try:
        return write_atomically(Path(path), write)
    finally:
        _pyplot().close(figure)


def plot_curves(curves: dict[str, list[tuple[float, float]]], path, *, xlabel: str = "step",
                ylabel: str = "loss", title: str = "", log_y: bool = True) -> Path:
    """One line per named curve of (x, y) points."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 3.6))
    for name, points in curves.items():
        xs, ys = zip(*points) if points else ((), ())
        ax.plot(xs, ys, label=name, marker="o" if len(points) < 20 else None)
    if log_y and all(y > 0 for points in curves.values() for _, y in points):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(figure, path)
