"""The notes' small data sets: logic-gate truth tables (F4) and 1-D regression curves (F3, F25)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOGIC_GATES", "logic_gate", "u_shaped", "quadratic"]

_TWO_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)

LOGIC_GATES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "and": (_TWO_INPUTS, np.array([0, 0, 0, 1], dtype=np.float32)),
    "or": (_TWO_INPUTS, np.array([0, 1, 1, 1], dtype=np.float32)),
    "xor": (_TWO_INPUTS, np.array([0, 1, 1, 0], dtype=np.float32)),
    "not": (np.array([[0], [1]], dtype=np.float32), np.array([1, 0], dtype=np.float32)),
}
"""Truth tables by gate name: ``(x, y)`` with inputs in {0, 1}."""


def logic_gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a logic gate (F4): AND, OR and NOT are linearly separable, XOR is not.

    Args:
      name: ``"and"``, ``"or"``, ``"xor"`` or ``"not"`` (any case).

    Returns:
      ``(x, y)``: ``x`` float32 ``(4, 2)`` rows (0,0), (0,1), (1,0), (1,1) (``(2, 1)`` rows 0, 1 for
      NOT) and ``y`` float32 ``(4,)`` (``(2,)``) of 0/1 targets. Fresh copies.

    Raises:
      ValueError: for an unknown gate name.

    Example:
      >>> from fnnjax import data
      >>> data.logic_gate("xor")[1]
      array([0., 1., 1., 0.], dtype=float32)
    """
    gate = name.lower() if isinstance(name, str) else name
    if gate not in LOGIC_GATES:
        raise ValueError(f"unknown logic gate {name!r}; valid gates are {', '.join(LOGIC_GATES)}")
    x, y = LOGIC_GATES[gate]
    return x.copy(), y.copy()


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n = {n!r} samples; n must be a positive integer")
    return int(n)


def u_shaped(n: int = 300, *, key: jax.Array, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    r"""A noisy U-shaped 1-D regression set: $y = x^2 - 0.5 + s\,\epsilon$, $\epsilon \sim \mathcal{N}(0, 1)$,
    $s$ = ``noise``.

    ``x`` is ``n`` evenly spaced points on $[-1, 1]$ (the classic tutorial data set of the notes'
    regression article). No affine model fits it (F3): the best line is flat, with mean squared
    residual $\mathrm{Var}(x^2) \approx 0.09$, while an MLP fits it down to the noise (F25).

    Args:
      n: the number of samples (default 300).
      key: a jax.random key for the noise (keyword-only).
      noise: the noise standard deviation (default 0.05; 0 for the exact curve).

    Returns:
      ``(x, y)``, both float32 ``(n, 1)`` numpy arrays.

    Raises:
      ValueError: for a non-positive n or a negative noise.

    Example:
      >>> import jax
      >>> from fnnjax import data
      >>> x, y = data.u_shaped(5, key=jax.random.key(0), noise=0.0)
      >>> y[:, 0].tolist()
      [0.5, -0.25, -0.5, -0.25, 0.5]
    """
    n = _check_count(n)
    if not noise >= 0:
        raise ValueError(f"noise = {noise!r}; the noise standard deviation must be >= 0")
    x = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)[:, None]
    eps = jax.random.normal(key, (n, 1), jnp.float32)
    y = x * x - jnp.float32(0.5) + jnp.float32(noise) * eps
    return np.asarray(x), np.asarray(y)


def quadratic(
    n: int = 200, *, key: jax.Array, coefficient: float = 5.0, low: float = -1.0, high: float = 1.0, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Samples of $y = c\,x^2$, $c$ = ``coefficient`` (the notes' $y = 5 x^2$), at random
    $x \sim U(\text{low}, \text{high})$.

    Args:
      n: the number of samples (default 200).
      key: a jax.random key (keyword-only); split into one for x and one for the noise.
      coefficient: the factor (default 5).
      low: the smallest x (default -1).
      high: the largest x (default 1).
      noise: the standard deviation of added Gaussian noise (default 0: exact samples).

    Returns:
      ``(x, y)``, both float32 ``(n, 1)`` numpy arrays.

    Raises:
      ValueError: for a non-positive n, ``low`` $\ge$ ``high`` or a negative noise.

    Example:
      >>> import jax, numpy as np
      >>> from fnnjax import data
      >>> x, y = data.quadratic(4, key=jax.random.key(0))
      >>> bool(np.allclose(y, 5 * x**2))
      True
    """
    n = _check_count(n)
    if not low < high:
        raise ValueError(f"low = {low!r} and high = {high!r}; the x range needs low < high")
    if not noise >= 0:
        raise ValueError(f"noise = {noise!r}; the noise standard deviation must be >= 0")
    key_x, key_noise = jax.random.split(key)
    x = jax.random.uniform(key_x, (n, 1), jnp.float32, low, high)
    eps = jax.random.normal(key_noise, (n, 1), jnp.float32)
    y = jnp.float32(coefficient) * x * x + jnp.float32(noise) * eps
    return np.asarray(x), np.asarray(y)
