"""Losses and the structural risk R of F7.

``mse`` is ``1/2 ||y_hat - y||^2`` per sample (F9); ``squared_error`` is ``||y_hat - y||^2`` per
sample (the notes' ``(label - y)^2`` scaling, F14); ``cross_entropy`` is ``-y^T log y_hat`` (F6)
for a softmax output or binary cross-entropy for sigmoid outputs, computed from the logits
``z^(L)`` so that it stays finite for logits of any magnitude. The risk averages the per-sample
loss over the batch and adds ``(l2 / 2) * sum_l ||W^(l)||_F^2`` (biases excluded).

Targets. Softmax cross-entropy takes integer labels ``(N,)`` or real target rows ``(N, C)`` of any
kind: one-hot, soft (label smoothing), multi-hot, all-zero, rows of any sum; the loss is
``-sum_k y_k log y_hat_k`` for every row and the hand-written gradient uses the matching output
error ``y_hat * sum_k y_k - y`` (F10), which is ``y_hat - y`` when the row sums to 1. Integer labels
are checked eagerly (an out-of-range label is an error); under ``jit``/``vmap`` they cannot be, so
an out-of-range label gives a target row of NaN: the loss and every gradient of that batch are NaN
(visible, and :func:`fnnjax.fit` stops naming the step), never a silently different value.

Dtypes. Arrays are computed in the params' dtype. An input or target is converted to it only
when nothing is lost: a float when JAX's own type promotion of the two dtypes is the params' dtype
(narrower floats; a wider float, float64 data for float32 params or float32 data for bfloat16
params, is refused with a line saying how to choose, never cast down silently); an integer when
its value is exact in the params' dtype (every integer up to 2048 in float16, 2^24 in float32;
a concrete one that is not raises, a traced one becomes NaN); booleans always. A Python list is
read as an array (its floats, weakly typed in JAX, take the params' dtype).

Empty batches. The risk is a mean over the samples, so :func:`loss`, :func:`fnnjax.backprop`
and :func:`fnnjax.gradient` refuse a batch of N = 0 (the shape is static: under ``jit`` too).

The weight-decay coefficient. ``l2`` is a real scalar (an integer or a float, not a bool) that
is finite, >= 0 and finite in the params' dtype: concrete, anything else raises; traced, it cannot
be checked, so a value that breaks the rule makes the L2 term NaN (visible), never a different
number.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from fnnjax._model import (
    MLP,
    Params,
    Trace,
    as_array,
    check_params,
    check_x,
    params_dtype,
    to_params_dtype,
    trace_batch,
)

__all__ = ["LOSSES", "loss", "per_sample_loss", "l2_penalty", "is_static_zero", "check_l2"]

Array = jax.Array

LOSSES = ("mse", "squared_error", "cross_entropy")
"""The loss names fnnjax knows."""


class Batch(NamedTuple):
    """Checked inputs: ``x: (N, M_0)``, ``target: (N, M_L)`` (one-hot or real), and whether the
    caller passed one sample."""

    x: Array
    target: Array
    single: bool


def check_loss(mlp: MLP, loss: str) -> None:
    """Check the loss name and that it fits the output activation."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid losses are {', '.join(LOSSES)}")
    if loss == "cross_entropy":
        if mlp.output not in ("softmax", "sigmoid"):
            raise ValueError(
                f"loss 'cross_entropy' needs output='softmax' (C classes) or output='sigmoid' "
                f"(binary), but the MLP has output={mlp.output!r}; build it with "
                f"fnnjax.MLP({mlp.sizes}, ..., output='softmax') (the loss is computed from the "
                "logits z^(L), so it stays stable), or use loss='mse'"
            )
        if mlp.output == "softmax" and mlp.sizes[-1] < 2:
            raise ValueError(
                "softmax cross-entropy needs at least 2 output units but sizes end in 1 (a one-unit "
                "softmax is constantly 1); use output='sigmoid' for two classes"
            )


def _is_concrete(v) -> bool:
    return not isinstance(v, jax.core.Tracer)


def _check_target(mlp: MLP, loss: str, y, n: int, single: bool, dtype) -> Array:
    """Turn y into a ``(N, M_L)`` target of the params' dtype, or raise a clear error."""
    shape = tuple(jnp.shape(y))
    ydt = jnp.result_type(y)
    m = mlp.sizes[-1]
    batch = () if single else (n,)
    what = "one sample" if single else f"a batch of N = {n}"

    def fail(expected: str):
        raise ValueError(
            f"y has shape {shape} but loss {loss!r} with output {mlp.output!r} and {what} expects {expected}"
        )

    if loss == "cross_entropy" and mlp.output == "softmax":
        if jnp.issubdtype(ydt, jnp.integer):
            if shape != batch:
                fail(f"integer labels of shape {batch} (or one-hot targets of shape {batch + (m,)})")
            labels = jnp.reshape(y, (-1,))
            target = jax.nn.one_hot(labels, m, dtype=dtype)
            if _is_concrete(y):
                host = np.asarray(y)
                bad = (host < 0) | (host >= m)
                if bad.any():
                    raise ValueError(
                        f"label {int(host[bad].flat[0])} is out of range: the MLP has {m} "
                        f"classes, so integer labels must lie in 0..{m - 1}"
                    )
                return target
            # traced: no check possible; a NaN row makes the loss and the gradient NaN alike
            inside = jnp.logical_and(labels >= 0, labels < m)
            return jnp.where(inside[:, None], target, jnp.asarray(jnp.nan, dtype))
        if not jnp.issubdtype(ydt, jnp.floating):
            raise TypeError(
                f"y has dtype {ydt}; softmax cross-entropy takes integer labels or floating one-hot targets"
            )
        if shape != batch + (m,):
            fail(f"one-hot targets of shape {batch + (m,)} (or integer labels of shape {batch})")
        return jnp.reshape(to_params_dtype("y", y, dtype), (-1, m))

    # binary cross-entropy (sigmoid outputs) and the squared errors: real targets, one per output
    allowed = {batch + (m,)} | ({batch} if m == 1 else set())
    if shape not in allowed:
        fail(" or ".join(str(s) for s in sorted(allowed, key=len, reverse=True)))
    if not (jnp.issubdtype(ydt, jnp.floating) or jnp.issubdtype(ydt, jnp.integer) or jnp.issubdtype(ydt, jnp.bool_)):
        raise TypeError(f"y has dtype {ydt}; expected a real array")
    if loss == "cross_entropy" and _is_concrete(y):
        values = np.asarray(y, dtype=np.float64)
        if ((values < 0) | (values > 1)).any():
            bad = values[(values < 0) | (values > 1)].flat[0]
            raise ValueError(f"y contains {bad:g}, but binary cross-entropy targets must lie in [0, 1] (labels 0 or 1)")
    return jnp.reshape(to_params_dtype("y", y, dtype), (-1, m))


def empty_batch_error(what: str, shape) -> ValueError:
    """The one error for a batch of no samples (``loss``, ``backprop``, ``gradient``, ``fit``)."""
    return ValueError(
        f"{what} has shape {tuple(shape)}: no samples (N = 0), but the risk is the mean of the loss "
        "over the samples; pass at least one sample"
    )


def prepare(mlp: MLP, params, x, y, loss: str, *, allow_empty: bool = False) -> tuple[Params, Batch]:
    """Check everything a loss or gradient call receives; return checked params and batch.

    A batch of N = 0 samples is refused (:func:`empty_batch_error`) unless ``allow_empty`` (per-sample
    results such as :func:`fnnjax.deltas` are empty then, which is right)."""
    check_loss(mlp, loss)
    params = check_params(mlp, params)
    dtype = params_dtype(params)
    x2d, single = check_x(mlp, x, dtype)
    n = x2d.shape[0]
    if n == 0 and not allow_empty:
        raise empty_batch_error("x", jnp.shape(x2d))
    y = as_array("y", y, dtype)
    y_shape = tuple(jnp.shape(y))
    if not single and len(y_shape) >= 1 and y_shape[0] != n:
        raise ValueError(
            f"y has {y_shape[0]} rows (shape {y_shape}) but x has {n} samples; x and y must have the same batch size N"
        )
    target = _check_target(mlp, loss, y, n, single, dtype)
    return params, Batch(x2d, target, single)


def per_sample_loss(mlp: MLP, loss: str, trace: Trace, target: Array) -> Array:
    """The loss of every sample, ``(N,)``, from a batch trace and a checked target."""
    z, a = trace.z[-1], trace.a[-1]
    if loss == "cross_entropy":
        if mlp.output == "softmax":  # F6: -y^T log softmax(z)
            return -jnp.sum(target * jax.nn.log_softmax(z, axis=-1), axis=-1)
        # binary: -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, stable for any z
        return jnp.sum(jnp.logaddexp(z, jnp.zeros_like(z)) - target * z, axis=-1)
    r = a - target
    scale = 0.5 if loss == "mse" else 1.0  # F9: mse = 1/2 ||y_hat - y||^2; squared_error = ||.||^2
    return scale * jnp.sum(r * r, axis=-1)


def is_static_zero(l2) -> bool:
    """True when ``l2`` is a concrete (not traced) real scalar equal to 0: a Python, NumPy or JAX
    number, or a 0-d array. The L2 term is then left out of the program altogether (XLA does not
    fold ``0 * W``, which would cost a pass over every weight). A traced ``l2`` is never a static
    zero: one compiled program then serves every value, 0 included.

    Example:
      >>> import numpy as np, jax.numpy as jnp
      >>> from fnnjax._losses import is_static_zero
      >>> [is_static_zero(v) for v in (0, 0.0, np.float32(0), np.float64(0), jnp.zeros(()), 1e-3)]
      [True, True, True, True, True, False]
    """
    value = _concrete_scalar(l2)
    return value is not None and value == 0


def _concrete_scalar(v) -> float | None:
    """``float(v)`` for a concrete real scalar (Python, NumPy or JAX, 0-d arrays included), else
    None (a traced value, or something that is not a real scalar)."""
    if isinstance(v, (bool, np.bool_)) or not _is_concrete(v) or np.ndim(v) != 0:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    dtype = getattr(v, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        return None
    return float(v)


def check_l2(l2, dtype=None):
    """Check the weight-decay coefficient by one rule, concrete or traced (see the module docstring).

    The rule: a real scalar (an integer or a float; not a bool, not complex) that is finite, >= 0
    and, given the params' ``dtype``, finite in it (``l2 = 1e39`` overflows float32).

    Args:
      l2: the coefficient lambda (a Python, NumPy or JAX number, or a traced scalar).
      dtype: the params' dtype, or None to skip the overflow check.

    Returns:
      ``l2`` unchanged when concrete; when traced (it cannot be checked), ``l2`` in ``dtype``
      where it keeps the rule and NaN where it does not, so a bad value shows as a NaN risk and
      gradient, never as a different number.

    Raises:
      ValueError: for a non-scalar, a bool or non-real value, and (concrete) a negative, a
        non-finite or an overflowing coefficient.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fnnjax._losses import check_l2
      >>> check_l2(1), check_l2(0.5, jnp.float32)
      (1, 0.5)
      >>> float(jax.jit(lambda v: check_l2(v, jnp.float32))(-1.0))
      nan
    """
    if np.ndim(l2) != 0:
        raise ValueError(f"l2 has shape {np.shape(l2)} but the weight-decay coefficient lambda must be a scalar")
    kind = jnp.result_type(l2) if isinstance(l2, jax.core.Tracer) or hasattr(l2, "dtype") else None
    if isinstance(l2, (bool, np.bool_)) or (
        kind is not None and not (jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.integer))
    ):
        shown = f"l2 has dtype {kind}" if kind is not None else f"l2 = {l2!r}"
        raise ValueError(
            f"{shown} but the weight-decay coefficient lambda must be a real number (an integer or a float) >= 0"
        )
    if not _is_concrete(l2):
        assert kind is not None
        if dtype is None:
            dtype = kind if jnp.issubdtype(kind, jnp.floating) else jnp.result_type(float)
        value = l2.astype(dtype)
        ok = jnp.logical_and(jnp.isfinite(value), value >= 0)
        return jnp.where(ok, value, jnp.asarray(jnp.nan, value.dtype))
    value = _concrete_scalar(l2)
    if value is None or not (np.isfinite(value) and value >= 0):
        raise ValueError(
            f"l2 = {l2} but the weight-decay coefficient lambda must be a finite number >= 0 (0: no weight decay)"
        )
    if dtype is not None and value > float(jnp.finfo(dtype).max):
        name = jnp.dtype(dtype).name
        raise ValueError(
            f"l2 = {l2:g} overflows the params' dtype {name} (largest {float(jnp.finfo(dtype).max):g}): the "
            f"L2 term would be inf; use a smaller coefficient, or params in a wider dtype"
        )
    return l2


def l2_penalty(params: Params, l2) -> Array:
    r"""$\frac{\lambda}{2} \sum_l \lVert W^{(l)} \rVert_F^2$ with $\lambda$ = ``l2``, biases excluded (F7).

    Args:
      params: a tuple of :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      l2: the coefficient $\lambda$ (a concrete 0 gives a constant 0 and no pass over the weights).

    Returns:
      The scalar penalty, in the params' dtype.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> params = (fnnjax.Layer(jnp.full((2, 3), 2.0), jnp.full((2,), 5.0)),)
      >>> float(fnnjax.l2_penalty(params, 0.5))  # 0.5 / 2 * 6 * 2^2; the biases do not count
      6.0
    """
    dtype = params_dtype(params)
    if is_static_zero(l2):
        return jnp.zeros((), dtype)
    total = sum(jnp.sum(layer.W * layer.W) for layer in params)
    return jnp.asarray(l2, dtype) / 2 * total


def trace_risk(
    mlp: MLP, loss: str, params: Params, trace: Trace, target: Array, l2, valid: Array | None = None
) -> Array:
    """R from a forward pass (F7): the batch mean of the per-sample loss plus the L2 term (the one
    place :func:`fnnjax.loss`, :func:`fnnjax.gradient` and :func:`fnnjax.fit`'s step compute it).

    ``valid`` (optional, ``(N,)`` bool): the mean is over those rows only (fit's padded last batch).
    """
    per = per_sample_loss(mlp, loss, trace, target)
    if valid is None:
        r = jnp.mean(per)
    else:
        v = valid.astype(per.dtype)
        r = jnp.sum(per * v) / jnp.sum(v)
    return r + l2_penalty(params, l2)


def risk(mlp: MLP, params: Params, batch: Batch, loss: str, l2) -> Array:
    """R on checked inputs: batch mean of the per-sample loss plus the L2 term (F7)."""
    return trace_risk(mlp, loss, params, trace_batch(mlp, params, batch.x), batch.target, l2)


def loss(mlp: MLP, params: Params, x: Array, y: Array, loss: str = "cross_entropy", l2=0.0) -> Array:
    r"""The structural risk (F7), with $\lambda$ = ``l2``:

    $$
    R(W, b) = \frac{1}{N} \sum_i \mathcal{L}(y_i, \hat y_i) + \frac{\lambda}{2} \sum_l \lVert W^{(l)} \rVert_F^2 .
    $$

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``.
      y: targets. ``cross_entropy`` + softmax: integer labels ``(N,)`` or target rows ``(N, C)``
        (one-hot, soft, multi-hot; any nonnegative weights);
        ``cross_entropy`` + sigmoid: ``(N, K)`` in [0, 1] (or ``(N,)`` when K = 1);
        ``mse`` / ``squared_error``: ``(N, M_L)`` (or ``(N,)`` when M_L = 1). One sample: drop N.
      loss: ``mse`` ($\frac12 \lVert \hat y - y \rVert^2$), ``squared_error`` ($\lVert \hat y - y \rVert^2$) or
        ``cross_entropy`` ($-\sum_k y_k \log \hat y_k$, F6, from the logits).
      l2: the weight-decay coefficient $\lambda \ge 0$ (may be a traced value; see the module
        docstring for its rule).

    Returns:
      The scalar R, in the params' dtype.

    Raises:
      ValueError/TypeError: for a wrong loss name, a loss that does not fit the output, targets of
        the wrong shape or batch size, labels out of range, an empty batch (N = 0), an l2 that is
        negative, not finite, not a real number or overflows the params' dtype, x or y that would
        lose precision in the params' dtype (a wider float, an integer the dtype cannot hold
        exactly), a list that is not an array of numbers, or params/x that do not fit the MLP.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((4, 3), output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, std=0.0)
      >>> float(fnnjax.loss(mlp, params, jnp.ones((2, 4)), jnp.array([0, 2])))  # log 3
      1.0986123...
    """
    params, batch = prepare(mlp, params, x, y, loss)
    return risk(mlp, params, batch, loss, check_l2(l2, params_dtype(params)))
