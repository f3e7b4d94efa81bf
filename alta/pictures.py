"""Pictures (matplotlib, written as PNG): loss and accuracy curves, and a program's run.

Each picture is drawn on its own `matplotlib.figure.Figure` (the object-oriented API: no
pyplot, no process-wide backend). `curves_figure` and `run_figure` return the Figure, so its
panels and plotted values can be checked; `plot_curves` and `plot_run` draw and write it.
"""

from __future__ import annotations

from pathlib import Path

from alta.files import write_atomically


def save_png(figure, path) -> Path:
    """Write `figure` as a PNG, whole or not at all."""
    def write(tmp: str) -> None:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")

    return write_atomically(Path(path), write)


def curves_figure(curves: dict[str, list[tuple[float, float]]], *, xlabel: str = "step",
                  ylabel: str = "loss", title: str = "", log_y: bool = True,
                  mark: tuple[str, float] | None = None):
    """One line per named curve of (x, y) points; `mark` (label, x) draws a vertical line."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6))
    ax = figure.add_subplot()
    styles = ("-", "--", ":", "-.")  # curves that coincide stay visible
    for i, (name, points) in enumerate(curves.items()):
        xs, ys = zip(*points) if points else ((), ())
        ax.plot(xs, ys, label=name, linestyle=styles[i % len(styles)],
                marker="osD^v"[i % 5] if len(points) < 20 else None, markersize=4 + 2 * (i == 0))
    if mark is not None:
        ax.axvline(mark[1], color="grey", linestyle="--", linewidth=1, label=mark[0])
    if log_y and all(y > 0 for points in curves.values() for _, y in points):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return figure


def plot_curves(curves: dict[str, list[tuple[float, float]]], path, **options) -> Path:
    """`curves_figure(curves, **options)` written to `path`."""
    return save_png(curves_figure(curves, **options), path)


def run_figure(program, text: str, *, layer: int = 1, max_layers: int | None = None):
    """One input's run: per variable, its value at every position (columns) after every
    layer (rows: 0 is the initial state), and per head, which positions each query position
    selects at `layer`. Panels: the variables, then the heads, four to a row."""
    import numpy as np
    from matplotlib.figure import Figure

    from alta import ir
    from alta.errors import AltaError
    from alta.interpreter import run, selection

    result = run(program, [text], max_layers=max_layers, trace=True)
    n = int(result.batch.lengths[0])
    tokens = [program.vocab[t] for t in result.batch.tokens[0, :n]]
    states = [result.initial] + [r.after_mlp for r in result.trace]
    if not 1 <= layer <= max(len(result.trace), 1):
        raise AltaError.at(f"--layer {layer}: the run has {len(result.trace)} layers")
    variables, heads = program.variables, program.heads
    columns = 4
    panels = len(variables) + len(heads)
    rows = -(-panels // columns)
    size = max(3.0, 0.25 * n + 1.5)
    figure = Figure(figsize=(columns * size, rows * size * 0.8))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    for ax, var in zip(axes.flat, variables):
        grid = np.array([s[var.name][0, :n] for s in states], dtype=np.float64)
        if isinstance(var.type, ir.SetValued):
            grid = np.array([[int(v).bit_count() for v in row] for row in grid])
        ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        if grid.size <= 400:  # write the values in small grids
            for (i, j), v in np.ndenumerate(grid):
                label = var.type.format(v) if isinstance(var.type, ir.Categorical) else \
                    f"{v:.3g}"
                ax.text(j, i, label, ha="center", va="center", fontsize=6, color="white")
        ax.set_title(f"{var.name} (line {var.span.line})", fontsize=9)
        ax.set_ylabel("layer")
        ax.set_xticks(range(n), tokens, fontsize=6, rotation=90)
    before = states[layer - 1]
    for ax, head in zip(axes.flat[len(variables):], heads):
        chosen = selection(head, before, result.batch.valid)[0, :n, :n]
        ax.imshow(chosen, cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(f"head {head.name}, layer {layer}", fontsize=9)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.set_xticks(range(n), tokens, fontsize=6, rotation=90)
        ax.set_yticks(range(n), tokens, fontsize=6)
    figure.suptitle(f"{program.name}: {text!r} ({len(result.trace)} layers)")
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    return figure


def plot_run(program, text: str, path, *, layer: int = 1, max_layers: int | None = None
             ) -> Path:
    """`run_figure(program, text, ...)` written to `path`."""
    return save_png(run_figure(program, text, layer=layer, max_layers=max_layers), path)
