"""Log-log benchmark plots with matplotlib's object API (no pyplot state, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fnnjax.benchmarks._fit import Fit, clean_pairs

__all__ = ["MAX_COLUMNS", "new_figure", "new_panels", "loglog_panel", "save", "palette"]

MAX_COLUMNS = 2
"""Panels side by side at most. The documentation shows a plot as wide as its text column (about
900 px on a 960 px screen; wider, spread over the sidebars): two panels across keep each at 450 px
or more there, so that axis labels and legends stay legible; more panels go on more rows."""


def new_figure(rows: int, cols: int, *, width: float = 5.0, height: float = 3.8) -> tuple[Figure, np.ndarray]:
    """A figure with a ``rows x cols`` grid of axes.

    Args:
      rows: rows of panels.
      cols: panels across, at most :data:`MAX_COLUMNS`.
      width: the width of one panel in inches (110 pixels each, see :func:`save`).
      height: the height of one panel in inches.

    Returns:
      The figure and its axes, always a 2-D array (``axes[row, col]``).

    Raises:
      ValueError: for more than :data:`MAX_COLUMNS` columns.

    Example:
      >>> fig, axes = new_figure(3, 2)
      >>> axes.shape, fig.get_size_inches().round(1).tolist()
      ((3, 2), [10.0, 11.4])
    """
    if cols > MAX_COLUMNS:
        raise ValueError(f"{cols} panels across would be too small to read in the docs; use at most {MAX_COLUMNS}")
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def new_panels(count: int, *, width: float = 5.0, height: float = 3.8) -> tuple[Figure, list]:
    """A figure with ``count`` panels, :data:`MAX_COLUMNS` across, filled row by row; a grid cell
    left over (3 panels in a 2 x 2 grid) stays blank.

    Args:
      count: how many panels.
      width: the width of one panel in inches.
      height: the height of one panel in inches.

    Returns:
      The figure and its ``count`` axes, in reading order.

    Example:
      >>> fig, axes = new_panels(3)
      >>> len(axes), len(fig.axes)
      (3, 3)
    """
    cols = min(count, MAX_COLUMNS)
    fig, grid = new_figure(-(-count // cols), cols, width=width, height=height)
    cells = list(grid.flat)
    for ax in cells[count:]:
        fig.delaxes(ax)
    return fig, cells[:count]


def palette(labels: Sequence[str]) -> dict[str, str]:
    """One fixed color per label (matplotlib's cycle C0, C1, ...), the same in every panel."""
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def loglog_panel(
    ax,
    x: Sequence,
    curves: Mapping[str, Sequence],
    *,
    fits: Mapping[str, Fit | None] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    marks: Mapping[str, float] | None = None,
    colors: Mapping[str, str] | None = None,
) -> None:
    """Plot each curve on log-log axes; a fitted power law as a dashed line over its range.

    Args:
      ax: a matplotlib Axes.
      x: the sizes shared by the curves.
      curves: label -> values (None where not measured).
      fits: label -> the :class:`Fit` to draw (its slope goes into the legend), or None.
      title, xlabel, ylabel: texts.
      marks: label -> an x to mark with a vertical dotted line (e.g. a crossover n*).
      colors: label -> a matplotlib color (default: the next in the cycle).
    """
    fits = fits or {}
    for label, ys in curves.items():
        xs, vs = clean_pairs(x, ys)
        if len(xs) == 0:
            continue
        fit = fits.get(label)
        text = label if fit is None else f"{label} (slope {fit.slope:.2f})"
        (line,) = ax.plot(xs, vs, marker="o", markersize=3, linewidth=1.2, label=text, color=(colors or {}).get(label))
        if fit is not None:
            fx = np.geomspace(fit.x_min, fit.x_max, 20)
            ax.plot(fx, fit.predict(fx), linestyle="--", linewidth=2.2, alpha=0.45, color=line.get_color())
    for label, xv in (marks or {}).items():
        if xv is not None:
            ax.axvline(xv, linestyle=":", color="gray")
            ax.annotate(
                label,
                (xv, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                rotation=90,
                ha="right",
                va="bottom",
                color="dimgray",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def save(fig: Figure, path: Path | str) -> Path:
    """Write the figure as a PNG (dpi 110) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
