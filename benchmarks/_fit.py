"""Power laws in benchmark curves: log-log slopes, the size from which a slope holds, crossovers.

A cost that grows like ``t = c x^k`` is a line of slope k on log-log axes; these functions fit
that line by least squares (``log t = k log x + log c``), find from which x on a curve follows the
slope theory predicts (small sizes are dominated by fixed per-call overhead, slope ~ 0), and
where one curve crosses another (the input dimension n* at which reverse mode overtakes forward
mode, F21).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["Fit", "Crossover", "loglog_fit", "fit_from", "crossover", "clean_pairs"]


class Fit(NamedTuple):
    """A least-squares line through ``(log x, log y)``: ``y ~ exp(intercept) x^slope``.

    ``r2`` is the coefficient of determination in log space; ``x_min``/``x_max`` the range fitted.
    """

    slope: float
    intercept: float
    r2: float
    points: int
    x_min: float
    x_max: float

    def predict(self, x) -> np.ndarray:
        """The fitted power law at ``x``."""
        return np.exp(self.intercept) * np.asarray(x, dtype=float) ** self.slope


class Crossover(NamedTuple):
    """Where ``second`` becomes faster than ``first`` for good.

    ``status``: ``"crossed"`` (``x`` interpolated geometrically between the two measured sizes
    around the last sign change), ``"second_always_faster"`` (``x`` None: already at the smallest
    size), ``"never"`` (``x`` None: ``first`` is still faster, or not slower, at the largest size).
    """

    x: float | None
    status: str


def clean_pairs(x: Sequence | np.ndarray, *ys: Sequence | np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep the positions where x and every y are finite positive numbers (None = not measured)."""
    cols = [np.array([np.nan if v is None else v for v in col], dtype=float) for col in (x, *ys)]
    keep = np.ones(len(cols[0]), dtype=bool)
    for c in cols:
        if len(c) != len(cols[0]):
            raise ValueError(f"x has {len(cols[0])} points but a y has {len(c)}; they must match")
        keep &= np.isfinite(c) & (c > 0)
    return tuple(c[keep] for c in cols)


def loglog_fit(x: Sequence | np.ndarray, y: Sequence | np.ndarray) -> Fit:
    """Fit ``log y = slope log x + intercept`` by least squares.

    Args:
      x: sizes (positive; None or non-positive entries are dropped together with their y).
      y: measurements at those sizes (same rule).

    Returns:
      The :class:`Fit`.

    Raises:
      ValueError: with fewer than 2 usable points or fewer than 2 distinct sizes.

    Example:
      >>> round(loglog_fit([1, 2, 4, 8], [3, 12, 48, 192]).slope, 12)  # y = 3 x^2
      2.0
    """
    xs, ys = clean_pairs(x, y)
    if len(xs) < 2 or len(np.unique(xs)) < 2:
        raise ValueError(
            f"a log-log fit needs at least 2 distinct positive sizes, got {len(xs)} usable points; measure more sizes"
        )
    lx, ly = np.log(xs), np.log(ys)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / total if total > 0 else 1.0
    return Fit(float(slope), float(intercept), r2, len(xs), float(xs.min()), float(xs.max()))


def fit_from(x: Sequence, y: Sequence, expected: float, tol: float, *, min_points: int = 3) -> Fit | None:
    """The fit over the largest sizes ``x >= x0`` for the smallest x0 from which the slope holds.

    x0 is the smallest measured size such that the fit over ``[x0', x_max]`` is within ``tol`` of
    ``expected`` for x0 and for every larger start x0' that still leaves ``min_points`` points (so
    one lucky window does not count). The returned fit's ``x_min`` is that x0.

    Args:
      x, y: the curve (as :func:`loglog_fit`).
      expected: the slope theory predicts.
      tol: the tolerance, ``|slope - expected| <= tol``.
      min_points: the fewest points a window may have (>= 2).

    Returns:
      The :class:`Fit` over ``[x0, x_max]``, or None when no window of ``min_points`` points holds.

    Example:
      >>> x = [2 ** k for k in range(11)]  # 1 .. 1024
      >>> y = [100 + xi ** 2 for xi in x]  # overhead 100 first, then slope 2
      >>> fit_from(x, y, expected=2.0, tol=0.1).x_min
      16.0
    """
    if min_points < 2:
        raise ValueError(f"min_points must be >= 2, got {min_points}")
    xs, ys = clean_pairs(x, y)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    starts = range(len(xs) - min_points, -1, -1)  # from the shortest tail window to the longest
    best = None
    for i in starts:
        fit = loglog_fit(xs[i:], ys[i:])
        if abs(fit.slope - expected) > tol:
            break
        best = fit
    return best


def crossover(x: Sequence, first: Sequence, second: Sequence) -> Crossover:
    """The size from which ``second`` is faster (smaller) than ``first`` at every larger size.

    With ``d = log(first / second)``, that is the last point where d changes sign from <= 0 to
    > 0; x* is the zero of d interpolated linearly in ``log x`` between the two sizes around it
    (exact for two power laws). Sizes where either curve is missing are skipped.

    Args:
      x: the sizes, increasing.
      first, second: the two curves (e.g. forward- and reverse-mode times).

    Returns:
      A :class:`Crossover`.

    Raises:
      ValueError: when fewer than one size has both curves.

    Example:
      >>> round(crossover([1, 4, 16, 64], [1, 4, 16, 64], [10, 10, 10, 10]).x, 9)  # n vs 10
      10.0
    """
    xs, a, b = clean_pairs(x, first, second)
    if len(xs) == 0:
        raise ValueError("no size has both curves measured; cannot locate a crossover")
    order = np.argsort(xs)
    xs, d = xs[order], np.log(a[order]) - np.log(b[order])
    if d[-1] <= 0:
        return Crossover(None, "never")
    last_not = np.nonzero(d <= 0)[0]
    if len(last_not) == 0:
        return Crossover(None, "second_always_faster")
    i = int(last_not[-1])  # d[i] <= 0 < d[i+1]
    lx0, lx1 = math.log(xs[i]), math.log(xs[i + 1])
    t = -d[i] / (d[i + 1] - d[i])
    return Crossover(math.exp(lx0 + t * (lx1 - lx0)), "crossed")
