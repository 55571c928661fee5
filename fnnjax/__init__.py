"""fnnjax: the mathematics of fully connected feedforward networks, checkable and fast, in JAX.

Parameters are a tuple of :class:`Layer` (``W: (M_l, M_{l-1})``, ``b: (M_l,)``); an :class:`MLP`
is a static, hashable description; every function is pure and ``jax.jit``-compatible.
"""

from fnnjax._activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, activate, activation_derivative, softmax_vjp
from fnnjax._backprop import backprop, deltas
from fnnjax._differentiate import METHODS, default_step, finite_difference_gradient, gradient
from fnnjax._losses import LOSSES, l2_penalty, loss
from fnnjax._model import MLP, SCHEMES, Layer, Params, Trace, forward, forward_trace, init_params

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "METHODS",
    "MLP",
    "SCHEMES",
    "Layer",
    "Params",
    "Trace",
    "activate",
    "activation_derivative",
    "backprop",
    "default_step",
    "deltas",
    "finite_difference_gradient",
    "forward",
    "forward_trace",
    "gradient",
    "init_params",
    "l2_penalty",
    "loss",
    "softmax_vjp",
]
