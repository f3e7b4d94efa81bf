"""Pictures (matplotlib, written as PNG): loss and accuracy curves, and a program's run.

Each picture is drawn on its own `matplotlib.figure.Figure` (the object-oriented API: no
pyplot, no process-wide backend). `curves_figure` and `run_figure` return the Figure, so its
panels and plotted values can be checked; `plot_curves` and `plot_run` draw and write it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from alta.files import write_atomically


def save_png(figure, path) -> Path:
    """Write `figure` as a PNG, whole or not at all."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    # A constrained layout already fits the figure; "tight" would draw it all twice.
    fitted = isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)

    def write(tmp: str) -> None:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches=None if fitted else "tight")

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


# ---- one input's run -------------------------------------------------------------------------

# Legibility, in inches and points: text is sized from the cells it labels, and only drawn
# where it fits; panels are laid out in as many columns as fit MAX_WIDTH.
MAX_WIDTH = 24.0  # inches (2880 pixels at the PNG's 120 dpi)
MAX_PANELS = 48  # drawn by default; more are listed in a note (choose them with --vars)
SMALLEST_FONT = 5.0  # points: smaller text is left out rather than drawn unreadable
UNDEFINED_HATCH = {1: "///", 2: "xxx"}  # selects no position / several (categorical heads)
UNDEFINED_LABEL = {1: "undefined: selects no position",
                   2: "undefined: selects several positions"}


@dataclass(frozen=True)
class RunPanels:
    """What a run picture draws, read from one back end's run of one input."""

    backend: str  # "interpreter" | "compiled"
    tokens: list[str]  # the framed input, one per position
    layers: int  # layers run
    states: list[dict[str, np.ndarray]]  # per layer (0: the initial state): variable -> (n,)
    weights: dict[str, np.ndarray]  # head -> (query, key) attention weights at the layer
    undefined: dict[str, np.ndarray]  # head -> (query,) 0 defined, 1 selects none, 2 several


def choose_panels(program, names=None, limit: int = MAX_PANELS
                  ) -> tuple[list, list, list[str]]:
    """(variables, heads, names left out): those `names` gives (a list, or "a,b,c"), in
    that order within each kind; by default every variable then every head, the first
    `limit` of them. Raises AltaError on a name the program does not declare."""
    from alta.errors import AltaError

    by_name = {v.name: v for v in program.variables} | {h.name: h for h in program.heads}
    if names is None:
        chosen, left_out = list(by_name)[:limit], list(by_name)[limit:]
    else:
        chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
        left_out = []
        unknown = [n for n in chosen if n not in by_name]
        if unknown or chosen == [""]:
            what = f"unknown {', '.join(map(repr, unknown))}" if chosen != [""] else "no names"
            raise AltaError.at(
                f"--vars: {what}; {program.name} has the variables "
                f"{' '.join(v.name for v in program.variables)} and the heads "
                f"{' '.join(h.name for h in program.heads) or '(none)'}")
        twice = sorted({n for n in chosen if chosen.count(n) > 1})
        if twice:
            raise AltaError.at(f"--vars names {', '.join(map(repr, twice))} more than once")
    heads = {h.name for h in program.heads}
    return ([by_name[n] for n in chosen if n not in heads],
            [by_name[n] for n in chosen if n in heads], left_out)


def _check_layer(layer: int, layers: int) -> None:
    from alta.errors import AltaError

    if not 1 <= layer <= max(layers, 1):
        raise AltaError.at(f"--layer {layer}: the run has {layers} layers")


def _undefined_codes(head, selected: np.ndarray, undefined: np.ndarray | None) -> np.ndarray:
    """Per query position: 0 where the head's output is defined, 1 where it selects no
    position, 2 where a categorical head selects several. `undefined` is the interpreter's
    record of the layer (None for a run of no layers: then its rule, attend_head's)."""
    count = selected.sum(axis=1)
    if undefined is None:
        undefined = np.zeros(count.shape, bool) if head.counts else \
            (count == 0) | ((count > 1) & (not head.numerical) & (not head.same))
    return np.where(undefined, np.where(count == 0, 1, 2), 0)


def interpreter_panels(program, text: str, layer: int = 1,
                       max_layers: int | None = None) -> RunPanels:
    """The interpreter's run: head weights are its selections, 1/k on each of k keys."""
    from alta.interpreter import run, selection

    result = run(program, [text], max_layers=max_layers, trace=True)
    _check_layer(layer, len(result.trace))
    n = int(result.batch.lengths[0])
    tokens = [program.vocab[t] for t in result.batch.tokens[0, :n]]
    states = [{k: v[0, :n] for k, v in s.items()}
              for s in [result.initial] + [r.after_mlp for r in result.trace]]
    before = [result.initial] + [r.after_mlp for r in result.trace]
    weights, undefined = {}, {}
    for head in program.heads:
        chosen = selection(head, before[layer - 1], result.batch.valid)[0, :n, :n]
        weights[head.name] = chosen / np.maximum(chosen.sum(axis=1, keepdims=True), 1)
        record = result.trace[layer - 1].undefined[head.name][0, :n] if result.trace else None
        undefined[head.name] = _undefined_codes(head, chosen, record)
    return RunPanels("interpreter", tokens, len(result.trace), states, weights, undefined)


def compiled_panels(compiled, text: str, layer: int = 1,
                    max_layers: int | None = None) -> RunPanels:
    """The compiled Transformer's run: variables decoded from its residual after every
    layer, and each program head's softmax weights at `layer`. Where a head is undefined
    is the program's semantics (the interpreter's selections on the same input)."""
    from alta.compiled import trace_compiled
    from alta.framing import encode_batch

    program = compiled.program
    batch = encode_batch(program, [text])
    n = int(batch.lengths[0])
    residuals = [step.after_mlp for step in trace_compiled(compiled, batch, max_layers)]
    _check_layer(layer, len(residuals) - 1)
    names = {v.name for v in program.variables}
    states = [{k: v[0, :n] for k, v in compiled.layout.decode(r, program).items() if k in names}
              for r in residuals]
    weights = attention_weights(compiled, residuals[layer - 1], batch.valid)[0]
    semantics = interpreter_panels(program, text, layer, max_layers)
    return RunPanels("compiled", semantics.tokens, len(residuals) - 1, states,
                     {h.name: weights[i, :n, :n] for i, h in enumerate(program.heads)},
                     semantics.undefined)


def attention_weights(compiled, residual: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(batch, head, query, key): the softmax weights of the compiled model's program heads
    on `residual` (batch, positions, D), from the dense attention parameters: scores
    (x Q)(x K)^T times the scale, keys outside a head's offsets or past the input masked,
    and the head's sink logit in the softmax's denominator."""
    import jax.numpy as jnp

    attention, config = compiled.parameters.attention, compiled.config
    heads = len(compiled.program.heads)  # the fault detector's selection heads come after
    n = valid.shape[1]
    relative = np.arange(n)[None, :] - np.arange(n)[:, None]
    allowed = np.stack([np.ones((n, n), bool) if o is None else np.isin(relative, o)
                        for o in config.head_offsets[:heads]])
    masks = allowed[None] & valid[:, None, None, :]
    sink = None if attention.sink is None else jnp.asarray(attention.sink[:heads])
    return np.asarray(_weights_function()(
        jnp.asarray(residual, jnp.float32), jnp.asarray(attention.query[:heads]),
        jnp.asarray(attention.key[:heads]), sink, jnp.asarray(masks),
        jnp.float32(config.attention_scale)))


@functools.cache
def _weights_function():
    """The jitted softmax of `attention_weights` (built once: jitting on import would load
    JAX for every picture)."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def weights(x, query, key, sink, masks, scale):
        q = jnp.einsum("bnd,hdk->bhnk", x, query)
        k = jnp.einsum("bnd,hdk->bhnk", x, key)
        scores = jnp.where(masks, jnp.einsum("bhik,bhjk->bhij", q, k) * scale, _MASKED)
        if sink is None:
            return jax.nn.softmax(scores, axis=-1)
        logits = jnp.concatenate([scores, jnp.broadcast_to(
            sink[None, :, None, None], scores.shape[:-1] + (1,))], axis=-1)
        return jax.nn.softmax(logits, axis=-1)[..., :-1]  # the sink's share is dropped

    return weights


_MASKED = -1e9  # as the model's finite mask: a query with no allowed key averages over all


def run_figure(program, text: str, *, layer: int = 1, max_layers: int | None = None,
               names=None, compiled=None, limit: int = MAX_PANELS):
    """One input's run: per variable, its value at every position (columns) after every
    layer (rows: 0 is the initial state), and per head, its attention weights at `layer`
    (query rows, key columns; hatched rows: where its output is undefined). `names` chooses
    the panels (`choose_panels`); with `compiled` (the program's CompiledProgram) the panels
    show the compiled Transformer's run and softmax weights instead of the interpreter's."""
    variables, heads, left_out = choose_panels(program, names, limit)
    panels = (compiled_panels(compiled, text, layer, max_layers) if compiled is not None
              else interpreter_panels(program, text, layer, max_layers))
    return draw_run(program, text, panels, variables, heads, layer, left_out)


def _clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


def _text_width(label: str, size: float) -> float:
    """A label's width in points, roughly (DejaVu Sans averages 0.6 em a character)."""
    return 0.6 * size * max(len(label), 1)


@dataclass(frozen=True)
class _Ticks:
    """Position labels along an axis of cells `cell` points wide."""

    size: float  # points
    every: int  # label every `every`-th position
    rotation: int
    depth: float  # inches the labels take away from the axis

    @classmethod
    def fit(cls, labels: list[str], cell: float) -> _Ticks:
        size = _clip(0.7 * cell, SMALLEST_FONT, 9.0)
        every = max(1, math.ceil(1.2 * size / cell))  # thinned, not shrunk, when cells are tiny
        longest = max((_text_width(t, size) for t in labels), default=0.0)
        rotation = 0 if longest <= 0.95 * cell * every else 90
        return cls(size, every, rotation, (longest if rotation else size) / 72 + 0.1)

    def apply(self, axis, labels: list[str]) -> None:
        where = range(0, len(labels), self.every)
        axis.set_ticks(list(where), [labels[i] for i in where], fontsize=self.size,
                       rotation=self.rotation)


def _legible(labels: list[str], width: float, height: float) -> float | None:
    """The font size (points) at which every label fits a cell of width x height points,
    or None where that would be below SMALLEST_FONT."""
    size = min(9.0, 0.6 * height, 0.92 * width / (0.6 * max(map(len, labels), default=1)))
    return size if size >= SMALLEST_FONT else None


def _ink(rgba) -> str:
    """Black on light colours, white on dark ones (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _variable_colours(var, grid: np.ndarray):
    """(cmap, norm, colour bar mappable, colour bar ticks and labels, cell labels) for one
    variable's grid: categorical values (and sets) get one discrete colour per value that
    occurs, labelled by name; numerical values a continuous map."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize

    from alta import ir, semantics

    if isinstance(var.type, ir.Numerical):
        low, high = float(grid.min()), float(grid.max())
        norm = Normalize(low, high if high > low else low + 1)
        cmap = colormaps["viridis"]
        return cmap, norm, ScalarMappable(norm, cmap), None, None, \
            lambda v: var.type.format(v)
    present = np.unique(grid)
    k = len(present)
    if k <= 10:
        colours = colormaps["tab10"].colors[:k]
    elif k <= 20:
        colours = colormaps["tab20"].colors[:k]
    else:
        colours = colormaps["viridis"](np.linspace(0, 1, k))
    cmap = ListedColormap(colours)
    edges = np.concatenate([[present[0] - 0.5], (present[:-1] + present[1:]) / 2,
                            [present[-1] + 0.5]])
    norm = BoundaryNorm(edges, k)
    if isinstance(var.type, ir.SetValued):
        def label(v):
            return var.type.format(semantics.bits_to_set(v))
    else:
        label = var.type.format
    bar = ScalarMappable(BoundaryNorm(np.arange(k + 1) - 0.5, k), cmap)
    # Long names (big sets) are cut on the bar, which would otherwise widen the whole column.
    names = [t if len(t) <= 14 else t[:13] + "\u2026" for t in map(label, present)]
    return cmap, norm, bar, list(range(k)), names, label


def draw_run(program, text: str, panels: RunPanels, variables, heads, layer: int,
             left_out=()):
    """The Figure of `run_figure`, from a back end's `RunPanels`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator

    from alta import ir

    n, rows = len(panels.tokens), panels.layers + 1
    # Cell sizes (inches) fall with the number of positions and layers, within bounds that
    # keep a cell visible; text is then sized from its cells.
    cell = _clip(8.0 / max(n, 1), 0.12, 0.4)
    row = _clip(5.0 / rows, 0.06, max(cell, 0.18))
    head_cell = _clip(4.5 / max(n, 1), 0.07, cell)
    x_ticks = _Ticks.fit(panels.tokens, 72 * cell)
    head_ticks = _Ticks.fit(panels.tokens, 72 * head_cell)
    head_y_ticks = replace(head_ticks, rotation=0, depth=max(
        (_text_width(t, head_ticks.size) for t in panels.tokens), default=0) / 72 + 0.1)

    # Each section's columns: as many panels (with their labels and colour bars) as fit.
    var_w, var_h = n * cell + 2.0, rows * row + x_ticks.depth + 0.7
    head_w = n * head_cell + head_y_ticks.depth + 1.0
    head_h = n * head_cell + head_ticks.depth + 0.8
    var_cols = max(1, min(len(variables), int(MAX_WIDTH // var_w)))
    head_cols = max(1, min(len(heads), int(MAX_WIDTH // head_w)))
    var_rows, head_rows = -(-len(variables) // var_cols), -(-len(heads) // head_cols)
    heights = [h for h in (var_rows * var_h, head_rows * head_h) if h]
    width = max(var_cols * var_w if variables else 0, head_cols * head_w if heads else 0)
    figure = Figure(figsize=(max(width, 4.0), sum(heights) + 0.8 + 0.4 * bool(left_out)),
                    layout="constrained")
    figure.get_layout_engine().set(w_pad=0.04, h_pad=0.04, hspace=0.02, wspace=0.02)
    sections = iter(figure.add_gridspec(len(heights), 1, height_ratios=heights)
                    if heights else ())
    title_size = 10.0

    if variables:
        grid_spec = next(sections).subgridspec(var_rows, var_cols)
        for i, var in enumerate(variables):
            ax = figure.add_subplot(grid_spec[i // var_cols, i % var_cols])
            grid = np.array([s[var.name] for s in panels.states],
                            dtype=np.float64 if isinstance(var.type, ir.Numerical) else np.int64)
            cmap, norm, bar, ticks, tick_labels, label = _variable_colours(var, grid)
            image = ax.imshow(grid, aspect="auto", cmap=cmap, norm=norm,
                              interpolation="nearest")
            labels = [[label(v) for v in line] for line in grid]
            size = _legible([t for line in labels for t in line], 72 * cell, 72 * row)
            if size is not None:
                for (i_, j), v in np.ndenumerate(grid):
                    ax.text(j, i_, labels[i_][j], ha="center", va="center", fontsize=size,
                            color=_ink(cmap(norm(v))))
            ax.set_title(f"{var.name} (line {var.span.line})", fontsize=title_size)
            ax.set_ylabel("layer", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(
                nbins=max(1, int(72 * rows * row / 10)), integer=True, min_n_ticks=1))
            ax.tick_params(axis="y", labelsize=8)
            x_ticks.apply(ax.xaxis, panels.tokens)
            colour_bar = figure.colorbar(bar, ax=ax, ticks=ticks, fraction=0.04, pad=0.01,
                                         aspect=max(5, 2 * rows * row / cell))
            if tick_labels is not None:
                # As many value names as fit the bar's height.
                fit = max(1, int(72 * rows * row / 9))
                step = -(-len(tick_labels) // fit)
                colour_bar.set_ticks(ticks[::step], labels=tick_labels[::step])
            colour_bar.ax.tick_params(labelsize=7)

    if heads:
        grid_spec = next(sections).subgridspec(head_rows, head_cols)
        head_axes, marked = [], set()
        for i, head in enumerate(heads):
            ax = figure.add_subplot(grid_spec[i // head_cols, i % head_cols])
            image = ax.imshow(panels.weights[head.name], cmap="Blues", vmin=0, vmax=1,
                              interpolation="nearest", aspect="equal")
            for q, code in enumerate(panels.undefined[head.name]):
                if code:
                    ax.add_patch(Rectangle((-0.5, q - 0.5), n, 1, fill=False, linewidth=0,
                                           hatch=UNDEFINED_HATCH[code], edgecolor="tab:red",
                                           label=UNDEFINED_LABEL[code]))
                    marked.add(int(code))
            source = "compiled" if panels.backend == "compiled" else "selects"
            ax.set_title(f"head {head.name}, layer {layer}" +
                         (" (compiled)" if source == "compiled" else ""), fontsize=title_size)
            ax.set_xlabel("key position", fontsize=8)
            ax.set_ylabel("query position", fontsize=8)
            head_ticks.apply(ax.xaxis, panels.tokens)
            head_y_ticks.apply(ax.yaxis, panels.tokens)
            ax.set_anchor("W")  # a lone square panel sits left, not centred
            head_axes.append(ax)
        figure.colorbar(image, ax=head_axes, fraction=0.02, pad=0.01, shrink=0.9,
                        label="attention weight" + (" (softmax)" if source == "compiled"
                                                    else ": 1/k on each of k selected"))
        if marked:
            figure.legend(handles=[Patch(fill=False, hatch=UNDEFINED_HATCH[c],
                                         edgecolor="tab:red", label=UNDEFINED_LABEL[c])
                                   for c in sorted(marked)],
                          loc="outside lower center", ncols=len(marked), fontsize=9)
    backend = " on the compiled Transformer" if panels.backend == "compiled" else ""
    figure.suptitle(f"{program.name}: {text!r} ({panels.layers} layers){backend}")
    if left_out:
        figure.supxlabel(f"not drawn ({len(left_out)}): {' '.join(left_out)}; choose the "
                         "panels with --vars", fontsize=9)
    return figure


def plot_run(program, text: str, path, **options) -> Path:
    """`run_figure(program, text, **options)` written to `path`."""
    return save_png(run_figure(program, text, **options), path)
