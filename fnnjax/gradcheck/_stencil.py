"""Central differences with Richardson extrapolation, their error estimates, and kink detection (F19).

For each coordinate (or probe direction) f is evaluated at ``+h, -h, +2h, -2h``. The estimate is
the extrapolated ``(4 D(h) - D(2h)) / 3``; its tolerance is twice its estimated error, the truncation
error measured from the two steps, ``|D(h) - D(2h)| / 3``, plus the rounding bound ``1.5 delta / h``
with ``delta = max(8 eps |f|, e_f)``, where ``e_f`` bounds the rounding of f from its computation
(:mod:`._rounding`): at an optimum the terms of f cancel, and f's rounding is that of its terms, not
``eps |f|``. A kink (ReLU at 0, a step's jump) is recognised from the same five
values: when the slope changes across the stencil by more than smooth truncation and rounding
explain, the coordinate is *at a kink*.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnnjax.gradcheck._tolerance import ROUNDING_FACTOR, eps

__all__ = ["Stencil", "central_differences", "nonsmooth", "stencil_estimates"]


class Stencil(NamedTuple):
    """What the five values ``f(0), f(+-h), f(+-2h)`` of each coordinate say.

    Attributes:
      estimate: the Richardson-extrapolated central difference ``(4 D(h) - D(2h)) / 3``.
      tolerance: twice its estimated error: truncation ``|D(h) - D(2h)| / 3`` + rounding ``1.5 delta / h``.
      kink: the slope change not explained by a smooth f (see :func:`stencil_estimates`).
      noise: the rounding level of ``kink``.
      right: the one-sided second-order derivative estimate to the right.
      left: the one-sided second-order derivative estimate to the left.
      one_sided_tol: the tolerance of ``right`` and ``left``.
    """

    estimate: np.ndarray
    tolerance: np.ndarray
    kink: np.ndarray
    noise: np.ndarray
    right: np.ndarray
    left: np.ndarray
    one_sided_tol: np.ndarray


def stencil_estimates(
    f0: float, values: np.ndarray, steps: np.ndarray, machine_eps: float, f_error: float = 0.0
) -> Stencil:
    """Central differences at h and 2h, Richardson extrapolation, error bounds and the kink measure.

    With ``S1 = f(h) - 2 f0 + f(-h)``, ``S2 = f(2h) - 2 f0 + f(-2h)`` and the one-sided second
    differences ``S+ = f(2h) - 2 f(h) + f0``, ``S- = f0 - 2 f(-h) + f(-2h)``, a smooth f has
    ``S2 - 4 S1 = O(h^4)`` and ``S+ - S- = O(h^3)``, while a kink of slope jump J at distance p < 2h
    makes ``max(|S2 - 4 S1|, |S+ - S-|) / h >= J / 2`` for every p, at least the error the kink
    causes in the extrapolated central difference.

    Args:
      f0: f at the point.
      values: ``f(theta + s e_i)`` for the steps ``+h, -h, +2h, -2h``, ``(n, 4)``.
      steps: the signed steps actually taken, ``(4, n)``.
      machine_eps: eps of the dtype f was evaluated in.
      f_error: a bound on the rounding error of one evaluation of f near the point (absolute);
        the rounding bound is ``delta = max(8 eps |f|, f_error)``.

    Returns:
      A :class:`Stencil` of ``(n,)`` arrays.
    """
    fp1, fm1, fp2, fm2 = values.T
    hp1, hm1, hp2, hm2 = steps[0], -steps[1], steps[2], -steps[3]  # steps are signed: +h, -h, +2h, -2h
    d1 = (fp1 - fm1) / (hp1 + hm1)
    d2 = (fp2 - fm2) / (hp2 + hm2)
    estimate = (4 * d1 - d2) / 3
    scale = np.maximum(np.abs(values).max(axis=1), abs(f0))
    delta = np.maximum(ROUNDING_FACTOR * machine_eps * scale, f_error)
    h = 0.5 * (hp1 + hm1)
    tolerance = 2 * (np.abs(d1 - d2) / 3 + 1.5 * delta / h)
    s1, s2 = fp1 - 2 * f0 + fm1, fp2 - 2 * f0 + fm2
    splus, sminus = fp2 - 2 * fp1 + f0, f0 - 2 * fm1 + fm2
    kink = np.maximum(np.abs(s2 - 4 * s1), np.abs(splus - sminus)) / h
    right = (4 * fp1 - fp2 - 3 * f0) / (2 * h)
    left = (3 * f0 - 4 * fm1 + fm2) / (2 * h)
    one_sided_tol = 2 * (4 * delta / h) + tolerance
    return Stencil(estimate, tolerance, kink, 20 * delta / h, right, left, one_sided_tol)


def nonsmooth(st: Stencil) -> np.ndarray:
    """Coordinates whose stencil shows a kink well above the smooth truncation and rounding levels."""
    return st.kink > 4 * st.tolerance + st.noise


def central_differences(values, plan, dtype) -> np.ndarray:
    """The Richardson-extrapolated central differences ``(4 D(h) - D(2h)) / 3`` of every coordinate.

    Args:
      values: the :class:`FullOracles` that :func:`evaluate_oracles` returned for ``plan``.
      plan: the :class:`OraclePlan`.
      dtype: the dtype f was evaluated in.

    Returns:
      ``(P,)`` float64, in the order of theta.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from fnnjax.gradcheck import central_differences, evaluate_oracles, plan_oracles
      >>> plan = plan_oracles(np.array([1.0, 2.0]), np.full(2, 1e-3), np.ones(2))
      >>> values = evaluate_oracles(lambda t: jnp.sum(t ** 3), plan)
      >>> np.round(central_differences(values, plan, "float32"), 2)  # 3 theta^2
      array([ 3., 12.])
    """
    return stencil_estimates(
        float(values.f0), np.asarray(values.stencil, np.float64), np.asarray(plan.steps, np.float64), eps(dtype)
    ).estimate  # the estimate does not depend on the rounding bound
