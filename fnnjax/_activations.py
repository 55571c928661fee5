"""Activation functions f and their hand-written derivatives f' (F17).

Each activation is a pair of pure functions ``(f, f')`` of the net input ``z``; the derivatives
are written out by hand from the closed forms of F17, never obtained by autodiff, because the
hand-written backward pass (:mod:`fnnjax._backprop`) is built from them.

``softmax`` is the one activation that is not elementwise: its derivative is a Jacobian, so it
is allowed only on the output layer and :func:`softmax_vjp` gives the product with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "ACTIVATIONS",
    "HIDDEN_ACTIVATIONS",
    "activate",
    "activation_derivative",
    "softmax_vjp",
]

Array = jax.Array


class _Activation(NamedTuple):
    f: Callable[[Array, float], Array]
    df: Callable[[Array, float], Array]


def _identity(z, slope):
    return z


def _identity_d(z, slope):
    return jnp.ones_like(z)


def _sigmoid(z, slope):
    return jax.nn.sigmoid(z)


def _sigmoid_d(z, slope):
    s = jax.nn.sigmoid(z)
    return s * (1 - s)  # F17: sigma' = sigma (1 - sigma)


def _tanh(z, slope):
    return jnp.tanh(z)


def _tanh_d(z, slope):
    t = jnp.tanh(z)
    return 1 - t * t  # F17: tanh' = 1 - tanh^2


def _relu(z, slope):
    return jax.nn.relu(z)  # jax.nn.relu's derivative at 0 is 0, like ours


def _relu_d(z, slope):
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))  # F17: relu' = 1[z > 0]


def _leaky_relu(z, slope):
    return jnp.where(z > 0, z, slope * z)


def _leaky_relu_d(z, slope):
    return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))


def _softplus(z, slope):
    return jnp.logaddexp(z, jnp.zeros_like(z))  # log(1 + e^z), stable


def _softplus_d(z, slope):
    return jax.nn.sigmoid(z)  # F17: softplus' = sigmoid


def _step(z, slope):
    return (z > 0).astype(z.dtype)  # Heaviside: 1 for z > 0, else 0


def _step_d(z, slope):
    return jnp.zeros_like(z)  # F17: zero almost everywhere


def _softmax(z, slope):
    return jax.nn.softmax(z, axis=-1)


def _softmax_d(z, slope):
    raise ValueError(
        "softmax has no elementwise derivative (its derivative is a Jacobian); "
        "use fnnjax.softmax_vjp(a, g) for the product J^T g"
    )


ACTIVATIONS: Mapping[str, _Activation] = MappingProxyType(
    {
        "identity": _Activation(_identity, _identity_d),
        "sigmoid": _Activation(_sigmoid, _sigmoid_d),
        "tanh": _Activation(_tanh, _tanh_d),
        "relu": _Activation(_relu, _relu_d),
        "leaky_relu": _Activation(_leaky_relu, _leaky_relu_d),
        "softplus": _Activation(_softplus, _softplus_d),
        "step": _Activation(_step, _step_d),
        "softmax": _Activation(_softmax, _softmax_d),
    }
)
"""Every activation name fnnjax knows, with its ``(f, f')`` pair (a read-only mapping: the set of
activations is fixed, so that every name an :class:`~fnnjax.MLP` accepts has a hand-written
derivative)."""

HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "softmax")
"""The activations allowed on hidden layers (all but softmax)."""


def _lookup(name: str) -> _Activation:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; valid names are {', '.join(ACTIVATIONS)}") from None


def activate(name: str, z: Array, *, slope: float = 0.01) -> Array:
    """Apply the activation ``f`` named ``name`` to the net input ``z`` (F1: a = f(z)).

    Args:
      name: one of :data:`ACTIVATIONS`.
      z: net input, any shape (softmax acts on the last axis).
      slope: the negative-side slope of ``leaky_relu`` (ignored by the others).

    Returns:
      ``f(z)``, the shape and dtype of ``z``.

    Raises:
      ValueError: for an unknown name.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> fnnjax.activate("relu", jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """
    return _lookup(name).f(z, slope)


def activation_derivative(name: str, z: Array, *, slope: float = 0.01) -> Array:
    r"""The hand-written derivative $f'(z)$ of an elementwise activation (F17).

    sigmoid: $\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$; tanh: $1 - \tanh^2 z$; relu: $\mathbb{1}[z > 0]$;
    softplus: $\sigma(z)$; leaky_relu: $1$ for $z > 0$, else ``slope``; identity: $1$; step: $0$.

    Args:
      name: an elementwise activation (any of :data:`ACTIVATIONS` but softmax).
      z: net input, any shape.
      slope: the negative-side slope of ``leaky_relu``.

    Returns:
      ``f'(z)``, the shape and dtype of ``z``.

    Raises:
      ValueError: for an unknown name or for softmax (use :func:`softmax_vjp`).

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> fnnjax.activation_derivative("sigmoid", jnp.array([0.0]))
      Array([0.25], dtype=float32)
    """
    return _lookup(name).df(z, slope)


def softmax_vjp(a: Array, g: Array) -> Array:
    r"""The product $J^\top g$ of the softmax Jacobian at output $a = \mathrm{softmax}(z)$ with $g$.

    $J = \mathrm{diag}(a) - a a^\top$ is symmetric, so $J^\top g = a \odot (g - \langle a, g \rangle)$
    along the last axis.

    Args:
      a: softmax outputs, shape ``(..., C)``.
      g: the vector to multiply, same shape.

    Returns:
      ``a * (g - sum(a * g, -1, keepdims=True))``, shape ``(..., C)``.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> fnnjax.softmax_vjp(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
      Array([ 0.25, -0.25], dtype=float32)
    """
    return a * (g - jnp.sum(a * g, axis=-1, keepdims=True))
