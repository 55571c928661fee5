"""Tolerances from the rounding of the computation and the dtype's epsilon (F19).

A gradient element is judged against the rounding of the computation that produced it
(:func:`gradient_tolerance`): ``tol_i = SAFETY (u_A + u_G) s_i`` where ``u_A s_i`` is the measured
size of the first-order rounding error of jax.grad's program (:mod:`fnnjax.gradcheck._rounding`,
``u = eps / 2`` the unit roundoff), ``u_A`` the unit roundoff of the oracle and ``u_G`` that of the
gradient under test. Central differences *decide* an element only when their tolerance is at most
``RESOLUTION`` of the derivative (:data:`RESOLUTION`). Values (a loss, a network output) are still
compared with ``eps^(3/4)`` relative (:func:`autodiff_rtol`); a diagnosis calls one array another
when they agree to ``eps^(3/8)`` (:func:`match_rtol`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = [
    "coarser",
    "RESOLUTION",
    "ROUNDING_FACTOR",
    "SAFETY",
    "autodiff_rtol",
    "eps",
    "gradient_tolerance",
    "match_rtol",
    "unit_roundoff",
]

ROUNDING_FACTOR = 8.0
"""delta = ROUNDING_FACTOR * eps * |f|: the least bound used for the rounding error of one evaluation of f."""

SAFETY = 4.0
"""Standard deviations of the measured rounding error allowed, for jax.grad's result and for the
gradient under test each (another program summing the same terms in another order)."""

RESOLUTION = 0.01
"""Central differences decide an element when their tolerance is at most 1 % of the derivative
``|D_i|`` (tolerances given by the user, when at most 1 % of ``|A_i|`` or the derived one): a wrong
value would pass elsewhere. An element no oracle decides leaves the check *inconclusive*."""


def eps(dtype) -> float:
    """The machine epsilon of a floating dtype (``float64``: 2.2e-16, ``float32``: 1.2e-7)."""
    return float(jnp.finfo(dtype).eps)


def unit_roundoff(dtype) -> float:
    """``u = eps / 2``, the largest relative error of one rounding to nearest (float32: 6.0e-8)."""
    return eps(dtype) / 2


def gradient_tolerance(error_scale, dtype, gradient_dtype=None, floor: float = 0.0) -> np.ndarray:
    r"""The tolerance of each gradient element from the rounding of its computation.

    $$
    \mathrm{tol}_i = \mathrm{SAFETY}\,(u_A + u_G)\, s_i + \mathrm{floor}:
    $$

    the rounding error of jax.grad's $A_i$ has the measured standard deviation $u_A s_i$
    (:func:`rounding_scales`: the terms summed into $A_i$, not its size, set it), and a right gradient
    $G$ computed by another program from the same terms (in another order, grouped otherwise) errs
    like $u_G s_i$. ``SAFETY`` = 4 standard deviations of each, with the measured $s_i$ rarely below a
    third of the true one.

    Args:
      error_scale: $s_i$ (:attr:`RoundingScales.grad_error`), in units of $u$ of ``dtype``.
      dtype: the dtype the oracle computed in.
      gradient_dtype: the dtype of the gradient under test when coarser (None: ``dtype``).
      floor: an absolute floor added to every tolerance.

    Returns:
      ``tol``, float64, of the scale's shape.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import gradient_tolerance
      >>> [f"{t:.1e}" for t in gradient_tolerance(np.array([50.0, 0.0]), "float32")]  # 4 * 2u * 50
      ['2.4e-05', '0.0e+00']
    """
    u = unit_roundoff(dtype) + unit_roundoff(gradient_dtype or dtype)
    return SAFETY * u * np.asarray(error_scale, np.float64) + floor


def autodiff_rtol(dtype) -> float:
    """``eps^(3/4)``: the relative tolerance between two roundings of one exact gradient.

    Args:
      dtype: a floating dtype (or its name).

    Returns:
      ``eps^(3/4)`` of the dtype.

    Raises:
      ValueError: dtype is not a floating dtype.

    Example:
      >>> from fnnjax.gradcheck import autodiff_rtol
      >>> f"{autodiff_rtol('float32'):.1e}", f"{autodiff_rtol('float64'):.1e}"
      ('6.4e-06', '1.8e-12')
    """
    return eps(dtype) ** 0.75


def match_rtol(dtype) -> float:
    """How close two arrays must be for a diagnosis to say one *is* the other (``eps^(3/8)``, >= 1e-6).

    Args:
      dtype: a floating dtype (or its name).

    Returns:
      ``max(eps^(3/8), 1e-6)``.

    Raises:
      ValueError: dtype is not a floating dtype.

    Example:
      >>> from fnnjax.gradcheck import match_rtol
      >>> f"{match_rtol('float32'):.1e}", f"{match_rtol('float64'):.1e}"
      ('2.5e-03', '1.3e-06')
    """
    return max(eps(dtype) ** 0.375, 1e-6)


def coarser(a: str, b: str | None) -> str:
    """The dtype with the larger epsilon of ``a`` and ``b`` (``a`` when ``b`` is None): the one whose
    rounding sets the tolerance when a gradient in ``b`` is judged against oracles in ``a``.

    Args:
      a: a floating dtype name.
      b: another, or None.

    Returns:
      ``a`` or ``b``, by name.

    Example:
      >>> from fnnjax.gradcheck import coarser
      >>> coarser("float64", "float32"), coarser("float32", None)
      ('float32', 'float32')
    """
    if b is None:
        return a
    return b if eps(b) > eps(a) else a
