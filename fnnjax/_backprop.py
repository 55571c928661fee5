"""The hand-written backward pass: the delta recursion (F10-F13, F16).

Nothing here calls jax.grad, vjp or jvp: the output error term delta^(L) comes from the closed forms
of F10, every hidden one from F11 with the derivatives of F17 written by hand, and the parameter
gradients from the outer products of F12-F13. Batched (rows are samples):

    delta^(L) = dL/dz^(L)                                  (F10; y_hat - y for CE, see below)
    delta^(l) = f_l'(z^(l)) * (delta^(l+1) W^(l+1))        (F11, the rows of W^T delta)
    dR/dW^(l) = (1/N) delta^(l)T a^(l-1) + l2 W^(l)         (F12-F13)
    dR/db^(l) = (1/N) sum_i delta_i^(l)

For softmax + cross-entropy the output error is ``y_hat * sum_k y_k - y``: the derivative of
``-sum_k y_k log softmax(z)_k`` for a target row of any sum (multi-hot, all-zero, soft), which is
the familiar ``y_hat - y`` when the row sums to 1 (one-hot labels, label smoothing).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fnnjax._activations import activation_derivative, softmax_vjp
from fnnjax._losses import check_l2, is_static_zero, prepare
from fnnjax._model import MLP, Layer, Params, Trace, params_dtype, trace_batch

__all__ = ["deltas", "backprop"]

Array = jax.Array


def output_delta(mlp: MLP, loss: str, trace: Trace, target: Array) -> Array:
    """delta^(L) = dL_i/dz_i^(L) for every sample, ``(N, M_L)`` (F10)."""
    z, a = trace.z[-1], trace.a[-1]
    if loss == "cross_entropy":
        if mlp.output == "softmax":  # d/dz of -sum_k y_k log softmax(z)_k, for rows of any sum
            return a * jnp.sum(target, axis=-1, keepdims=True) - target
        return a - target  # sigmoid + BCE: sigma' cancels, delta = y_hat - y for any y in [0, 1]
    g = a - target if loss == "mse" else 2 * (a - target)  # dL/da^(L)
    if mlp.output == "softmax":
        return softmax_vjp(a, g)  # softmax' is a Jacobian, not elementwise
    return g * activation_derivative(mlp.output, z, slope=mlp.leaky_slope)


def backward(
    mlp: MLP, params: Params, trace: Trace, delta_out: Array, hidden_scale: tuple[Array, ...] | None = None
) -> list[Array]:
    """F11 from the output down: ``[delta^(1), ..., delta^(L)]`` given delta^(L).

    ``hidden_scale`` (optional): per-sample multipliers ``s^(l)``, ``(N, M_l)`` for the hidden
    layers l = 1..L-1, when the forward pass used ``a^(l) = f_l(z^(l)) * s^(l)`` (inverted dropout,
    F26: ``s = mask / (1 - p)``); then ``da^(l)/dz^(l) = f_l'(z^(l)) * s^(l)`` and
    ``delta^(l) = f_l'(z^(l)) * s^(l) * (delta^(l+1) W^(l+1))``.
    """
    ds = [delta_out]
    for l in range(mlp.num_layers - 1, 0, -1):  # l = L-1 .. 1 (0-based index of layer l+1 is l)
        fprime = activation_derivative(mlp.hidden[l - 1], trace.z[l - 1], slope=mlp.leaky_slope)
        if hidden_scale is not None:
            fprime = fprime * hidden_scale[l - 1]
        ds.append(fprime * (ds[-1] @ params[l].W))
    return ds[::-1]


def _materialised_transpose_product(d: Array, a: Array) -> Array:
    return jax.lax.optimization_barrier(d.T) @ a


def _plain_product(d: Array, a: Array) -> Array:
    return d.T @ a


def weight_gradient(d: Array, a_prev: Array) -> Array:
    """``delta^T a^(l-1)``: the sum over the batch of the outer products ``delta_i a_i^T`` (F12),
    ``(N, M_l), (N, M_{l-1}) -> (M_l, M_{l-1})``.

    On the CPU ``delta^T`` is written out first (a copy of ``(M_l, N)``, behind an optimisation
    barrier that keeps XLA from folding it back into the product): XLA's CPU backend hands a plain
    product to its fast dot library but runs one that contracts both operands' first axis on a
    slower path, and the copy costs less than the difference. Elsewhere (GPU, TPU) the product
    takes the transposed operand as it is.
    """
    return jax.lax.platform_dependent(d, a_prev, cpu=_materialised_transpose_product, default=_plain_product)


def mean_output_delta(mlp: MLP, loss: str, trace: Trace, target: Array, valid: Array | None = None) -> Array:
    """delta^(L) of the batch mean R: :func:`output_delta` / N, ``(N, M_L)``.

    ``valid`` (optional, ``(N,)`` bool): only those rows count and N is their number (the padded
    last batch of :func:`fnnjax.fit`); the other rows get delta 0.
    """
    delta_out = output_delta(mlp, loss, trace, target)
    if valid is None:
        return delta_out / target.shape[0]
    v = valid.astype(delta_out.dtype)
    return delta_out * v[:, None] / jnp.sum(v)


def parameter_gradients(params: Params, trace: Trace, ds: list[Array], l2) -> Params:
    """F12-F13 from the error terms of the batch mean (``ds`` from :func:`backward` of
    :func:`mean_output_delta`): ``dR/dW^(l) = delta^T a^(l-1) + l2 W^(l)``, ``dR/db^(l) = sum_i delta_i``.

    ``l2``: lambda, a number or a traced scalar; a concrete 0 leaves the ``l2 * W`` pass out of the
    program (the one place both :func:`backprop` and :func:`fnnjax.fit`'s step compute it).
    """
    grads = []
    for d, a_prev, layer in zip(ds, trace.a[:-1], params):
        gw = weight_gradient(d, a_prev)  # (1/N) sum_i delta_i a_i^T (the 1/N is in delta^(L))
        if not is_static_zero(l2):  # a Python 0 leaves the weight-decay pass out of the program
            gw = gw + jnp.asarray(l2, gw.dtype) * layer.W
        grads.append(Layer(gw, jnp.sum(d, axis=0)))
    return tuple(grads)


def deltas(mlp: MLP, params: Params, x: Array, y: Array, loss: str = "cross_entropy") -> tuple[Array, ...]:
    r"""The error terms $\delta^{(l)} = \partial \mathcal{L}_i / \partial z_i^{(l)}$ of every layer, per sample
    (F10, F11).

    They are per-sample derivatives of the per-sample loss (no 1/N factor, no L2 term: the L2 term
    does not depend on z).

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``.
      y: targets, as for :func:`fnnjax.loss`.
      loss: ``mse``, ``squared_error`` or ``cross_entropy``.

    Returns:
      $(\delta^{(1)}, \dots, \delta^{(L)})$, each ``(N, M_l)`` (``(M_l,)`` for one sample); an empty batch
      (N = 0) gives empty arrays ``(0, M_l)`` (per-sample terms, no mean is taken).

    Raises:
      ValueError/TypeError: as :func:`fnnjax.loss` (except that N = 0 is allowed).

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((2, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, std=0.0)
      >>> fnnjax.deltas(mlp, params, jnp.ones(2), jnp.array(0))[0]  # y_hat - y
      Array([-0.6666666 ,  0.33333334,  0.33333334], dtype=float32)
    """
    params, batch = prepare(mlp, params, x, y, loss, allow_empty=True)
    trace = trace_batch(mlp, params, batch.x)
    ds = backward(mlp, params, trace, output_delta(mlp, loss, trace, batch.target))
    return tuple(d[0] for d in ds) if batch.single else tuple(ds)


def backprop(mlp: MLP, params: Params, x: Array, y: Array, loss: str = "cross_entropy", l2=0.0) -> Params:
    r"""The gradient of the risk $R$ (F7) by the hand-written $\delta$ recursion (F10-F13, F16).

    $$
    \frac{\partial R}{\partial W^{(l)}}
    = \frac{1}{N} \sum_i \delta_i^{(l)} \big(a_i^{(l-1)}\big)^\top + \lambda W^{(l)},
    \qquad
    \frac{\partial R}{\partial b^{(l)}} = \frac{1}{N} \sum_i \delta_i^{(l)},
    $$

    with $\lambda$ = ``l2``; no autodiff anywhere.

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``.
      y: targets, as for :func:`fnnjax.loss`.
      loss: ``mse``, ``squared_error`` or ``cross_entropy``.
      l2: the weight-decay coefficient $\lambda \ge 0$ (may be traced; a concrete 0 leaves the
        ``l2 * W`` pass out of the program; its rule: :func:`fnnjax.loss`).

    Returns:
      A tuple of :class:`Layer` s $(\partial R / \partial W^{(l)}, \partial R / \partial b^{(l)})$ of shapes
      ``(M_l, M_{l-1})`` and ``(M_l,)``, the structure of params.

    Raises:
      ValueError/TypeError: as :func:`fnnjax.loss`, an empty batch (N = 0) included.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((4, 8, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, "he")
      >>> x, y = jnp.ones((5, 4)), jnp.array([0, 1, 2, 0, 1])
      >>> g = fnnjax.backprop(mlp, params, x, y)
      >>> bool(jnp.allclose(g[0].W, jax.grad(fnnjax.loss, argnums=1)(mlp, params, x, y)[0].W, atol=1e-6))
      True
    """
    params, batch = prepare(mlp, params, x, y, loss)
    l2 = check_l2(l2, params_dtype(params))
    trace = trace_batch(mlp, params, batch.x)
    ds = backward(mlp, params, trace, mean_output_delta(mlp, loss, trace, batch.target))
    return parameter_gradients(params, trace, ds, l2)
