"""A hand-written backprop, the way a student writes it from the notes (F10-F13, F16, F17).

Check it against jax.grad and central differences over many architectures, activations and losses:

    fnnjax verify --backprop examples/student_backprop.py:backprop

``fnnjax verify --backprop`` calls ``backprop(mlp, params, x, y, loss=..., l2=...)`` with a batch
``x: (N, M_0)`` and targets ``y: (N, M_L)`` (one-hot rows for softmax cross-entropy), in float64, and
expects the gradient of the risk R (F7) in params' structure: a tuple of ``fnnjax.Layer(dW, db)``.
"""

import jax
import jax.numpy as jnp

import fnnjax


def derivative(name, z, slope):
    """f'(z) of an elementwise activation, written out from F17."""
    if name == "identity":
        return jnp.ones_like(z)
    if name == "sigmoid":
        s = jax.nn.sigmoid(z)
        return s * (1 - s)
    if name == "tanh":
        t = jnp.tanh(z)
        return 1 - t * t
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))
    if name == "softplus":
        return jax.nn.sigmoid(z)
    if name == "step":
        return jnp.zeros_like(z)
    raise ValueError(f"no derivative for activation {name!r}")


def forward_pass(mlp, params, x):
    """F16 step 1: every net input z^(l) and activation a^(l), rows = samples."""
    zs, acts = [], [x]
    for layer, name in zip(params, mlp.activations):
        z = acts[-1] @ layer.W.T + layer.b[None, :]
        zs.append(z)
        acts.append(fnnjax.activate(name, z, slope=mlp.leaky_slope))
    return zs, acts


def output_delta(mlp, loss, z, a, y):
    """F10: delta^(L) = dL/da^(L) * f_L'(z^(L)), or y_hat - y for cross-entropy."""
    if loss == "cross_entropy":
        return a - y
    g = a - y if loss == "mse" else 2 * (a - y)
    if mlp.output == "softmax":
        return a * (g - jnp.sum(a * g, axis=-1, keepdims=True))
    return g * derivative(mlp.output, z, mlp.leaky_slope)


def backprop(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """dR/dW^(l) = (1/N) delta^(l)T a^(l-1) + l2 W^(l), dR/db^(l) = (1/N) sum_i delta_i^(l) (F13)."""
    zs, acts = forward_pass(mlp, params, x)
    n = x.shape[0]
    delta = output_delta(mlp, loss, zs[-1], acts[-1], y)
    grads = []
    for l in range(mlp.num_layers - 1, -1, -1):
        W = params[l].W
        grads.append(fnnjax.Layer(delta.T @ acts[l] / n + l2 * W, jnp.sum(delta, axis=0) / n))
        if l > 0:  # F11: delta^(l) = f'(z^(l)) * (W^(l+1)T delta^(l+1))
            delta = (delta @ W) * derivative(mlp.hidden[l - 1], zs[l - 1], mlp.leaky_slope)
    return tuple(reversed(grads))
