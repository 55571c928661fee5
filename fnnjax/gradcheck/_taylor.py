"""The Taylor-remainder test: a verdict from the observed convergence rate, with no tolerance.

``r(e) = |f(theta + e d) - f(theta) - e <G, d>|`` shrinks like ``e^2`` when G is the gradient and
like ``e`` when it is not. The observed rate is the median of the last three local rates
``log2(r(e) / r(e/2))`` whose remainders lie above the rounding floor: ``8 eps |f|``, the rounding
of f from its computation (its terms cancel at an optimum) and the rounding of ``e <G, d>``
itself. A rate >= 1.5 *corroborates* the gradient (it is no proof: an error in a few elements
barely moves a random direction), three local rates within 0.3 of 1 (on both sides) fail, and
anything else (too few points above the floor, rates made erratic by kinks) is inconclusive. The
Taylor test can therefore fail a check but never pass one on its own.
"""

from __future__ import annotations

import math

import numpy as np

from fnnjax.gradcheck._report import TaylorResult
from fnnjax.gradcheck._tolerance import ROUNDING_FACTOR

__all__ = ["TAYLOR_START", "TAYLOR_STEPS", "taylor_result", "taylor_steps"]

TAYLOR_START = 0.1
"""The largest Taylor step, relative to max(1, ||theta||)."""

TAYLOR_STEPS = 24
"""How many halvings of the Taylor step are tried."""


def taylor_steps() -> np.ndarray:
    """The steps e: ``TAYLOR_START * 2^-k`` for k = 0 .. TAYLOR_STEPS - 1 (float64)."""
    return TAYLOR_START * 0.5 ** np.arange(TAYLOR_STEPS)


def _local_rates(r: np.ndarray, floor: np.ndarray) -> list[float]:
    """``log2(r(e) / r(e/2))`` for consecutive steps whose remainders both lie above the rounding floor."""
    valid = (r > floor) & np.isfinite(r)
    return [math.log2(r[k] / r[k + 1]) for k in range(len(r) - 1) if valid[k] and valid[k + 1]]


def _rate_verdict(rates: list[float]) -> tuple[float | None, bool | None]:
    """The observed rate (median of the last three local rates) and what it says.

    A right gradient gives 2, a wrong one 1. Failing needs the last three local rates to agree on
    about 1 (within 0.3): erratic rates (a kink crossed at the larger steps, too few points above
    the rounding floor) are inconclusive rather than evidence against the gradient.
    """
    if len(rates) < 3:
        return None, None
    last = rates[-3:]
    rate = float(np.median(last))
    if rate >= 1.5:
        return rate, True
    if all(abs(x - 1) <= 0.3 for x in last):
        return rate, False
    return rate, None


def taylor_result(
    f0: float,
    taylor: np.ndarray,
    machine_eps: float,
    nonsmooth: bool,
    lin_floor: np.ndarray | None = None,
    f_floor: float = 0.0,
) -> TaylorResult:
    """The verdict of the Taylor test from f and the linear term along +d then -d.

    Args:
      f0: f at the point.
      taylor: ``(2K, 2)``: ``f(theta + e d)`` and ``<G, actual step>`` for the steps e, then for -e.
      machine_eps: eps of the dtype f was evaluated in.
      nonsmooth: f showed kinks in the finite-difference stencil (a rate of 1 is then no proof).
      lin_floor: ``(2K,)``, the rounding error of the linear term and of f's slope along the steps (or None).
      f_floor: the rounding error of f from its computation, added to the floor.

    Returns:
      A :class:`TaylorResult`.
    """
    k = TAYLOR_STEPS
    steps = taylor_steps()
    fvals, lin = taylor[:, 0], taylor[:, 1]
    r = np.abs(fvals - f0 - lin)
    floor = ROUNDING_FACTOR * machine_eps * (abs(f0) + np.abs(fvals) + np.abs(lin)) + 2 * f_floor
    if lin_floor is not None:
        floor = floor + lin_floor
    verdicts = [_rate_verdict(_local_rates(r[:k], floor[:k])), _rate_verdict(_local_rates(r[k:], floor[k:]))]
    rates = (verdicts[0][0], verdicts[1][0])
    said = [v[1] for v in verdicts]
    if True in said:
        return TaylorResult(
            rates, True, tuple(steps), tuple(r[:k]), "remainder shrinks like e^2 (corroborates; decides nothing alone)"
        )
    if said == [False, False]:
        if nonsmooth:
            return TaylorResult(
                rates,
                None,
                tuple(steps),
                tuple(r[:k]),
                "f has kinks here, so a rate of 1 does not prove the gradient wrong",
            )
        return TaylorResult(
            rates, False, tuple(steps), tuple(r[:k]), "remainder shrinks only like e: the gradient is wrong along d"
        )
    return TaylorResult(
        rates,
        None,
        tuple(steps),
        tuple(r[:k]),
        "the local rates are erratic or too few remainders lie above the rounding floor",
    )
