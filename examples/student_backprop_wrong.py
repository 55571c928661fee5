"""Classic backprop mistakes, one function each, for ``fnnjax verify --backprop`` to catch.

    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop              # forgets f'(z)
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_transposed   # a^T delta for delta^T a
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_factor_two   # 2 (a - y) for mse
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_sum          # sum, not mean
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_sign         # y - a for a - y
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_no_l2        # forgets l2 W
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_bias_decay   # l2 b in db
    fnnjax verify --backprop examples/student_backprop_wrong.py:backprop_first_layer  # layer 1 summed

Each is the correct recursion of ``student_backprop.py`` with one line changed (see ``_backprop``).
"""

import jax
import jax.numpy as jnp

import fnnjax


def _derivative(name, z, slope):
    if name == "identity":
        return jnp.ones_like(z)
    if name == "sigmoid":
        s = jax.nn.sigmoid(z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - jnp.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, slope))
    if name == "softplus":
        return jax.nn.sigmoid(z)
    return jnp.zeros_like(z)  # step


def _backprop(mlp, params, x, y, loss, l2, mistake):
    zs, acts = [], [x]
    for layer, name in zip(params, mlp.activations):
        zs.append(acts[-1] @ layer.W.T + layer.b[None, :])
        acts.append(fnnjax.activate(name, zs[-1], slope=mlp.leaky_slope))
    n = x.shape[0]
    a, z = acts[-1], zs[-1]
    residual = y - a if mistake == "sign" else a - y
    if loss == "cross_entropy":
        delta = residual
    else:
        g = residual if loss == "mse" and mistake != "factor_two" else 2 * residual
        if mlp.output == "softmax":
            delta = a * (g - jnp.sum(a * g, axis=-1, keepdims=True))
        else:
            delta = g * _derivative(mlp.output, z, mlp.leaky_slope)
    grads = []
    for l in range(mlp.num_layers - 1, -1, -1):
        W, b = params[l]
        dW = acts[l].T @ delta if mistake == "transposed" else delta.T @ acts[l]
        if not (mistake == "sum" or (mistake == "first_layer" and l == 0)):
            dW = dW / n
        db = jnp.sum(delta, axis=0) if mistake == "sum" else jnp.sum(delta, axis=0) / n
        if mistake != "no_l2":
            dW = dW + l2 * (W.T if mistake == "transposed" else W)
        if mistake == "bias_decay":
            db = db + l2 * b
        grads.append(fnnjax.Layer(dW, db))
        if l > 0:
            back = delta @ W
            fprime = _derivative(mlp.hidden[l - 1], zs[l - 1], mlp.leaky_slope)
            delta = back if mistake == "missing_fprime" else back * fprime
    return tuple(reversed(grads))


def backprop(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: delta^(l) = W^(l+1)T delta^(l+1), forgetting the factor f'(z^(l)) of F11."""
    return _backprop(mlp, params, x, y, loss, l2, "missing_fprime")


def backprop_transposed(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: dW^(l) = a^(l-1)T delta^(l), the transpose of F12's delta^(l) a^(l-1)T."""
    return _backprop(mlp, params, x, y, loss, l2, "transposed")


def backprop_factor_two(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: dL/da = 2 (a - y) for mse, whose 1/2 ||a - y||^2 gives (a - y) (F9)."""
    return _backprop(mlp, params, x, y, loss, l2, "factor_two")


def backprop_sum(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: sums the per-sample gradients where F13 averages them (no 1/N)."""
    return _backprop(mlp, params, x, y, loss, l2, "sum")


def backprop_sign(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: y - a where a - y belongs in delta^(L) (F10)."""
    return _backprop(mlp, params, x, y, loss, l2, "sign")


def backprop_no_l2(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: forgets the weight-decay term l2 W^(l) of F13."""
    return _backprop(mlp, params, x, y, loss, l2, "no_l2")


def backprop_bias_decay(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: adds l2 b^(l) to db, but the L2 term of F7 excludes biases."""
    return _backprop(mlp, params, x, y, loss, l2, "bias_decay")


def backprop_first_layer(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    """Mistake: the first layer's dW is summed over the batch (no 1/N) while the others are averaged."""
    return _backprop(mlp, params, x, y, loss, l2, "first_layer")
