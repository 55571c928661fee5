"""Tolerances derived from a dtype's machine epsilon (F19: error bounds of rounding and differences).

Every tolerance of the checker is a power of ``eps``, the distance from 1 to the next float of the
dtype: an exact gradient rounded twice agrees to about ``eps^(3/4)`` relative (:func:`autodiff_rtol`);
a diagnosis calls one array another when they agree to ``eps^(3/8)`` (:func:`match_rtol`).
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["ROUNDING_FACTOR", "autodiff_rtol", "eps", "match_rtol"]

ROUNDING_FACTOR = 8.0
"""delta = ROUNDING_FACTOR * eps * |f|: the bound used for the rounding error of one evaluation of f."""


def eps(dtype) -> float:
    """The machine epsilon of a floating dtype (``float64``: 2.2e-16, ``float32``: 1.2e-7)."""
    return float(jnp.finfo(dtype).eps)


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
    """The dtype with the larger epsilon of ``a`` and ``b`` (``a`` when ``b`` is None)."""
    if b is None:
        return a
    return b if eps(b) > eps(a) else a
