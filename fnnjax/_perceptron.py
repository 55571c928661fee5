"""Perceptrons (F4): the threshold unit, the perceptron learning rule, and the 2-2-1 XOR net.

A threshold unit computes ``y = step(w . x + b)`` with ``step(z) = 1`` for ``z > 0`` and ``0``
otherwise (fnnjax's ``"step"`` activation). Its derivative is zero almost everywhere (F17), so it
is not trained by backprop but by Rosenblatt's rule, applied sample by sample::

    y = step(w . x + b);   w <- w + eta (t - y) x;   b <- b + eta (t - y)

which stops changing the weights once every sample is classified correctly. For a linearly
separable truth table (AND, OR, NOT) it reaches zero errors in finitely many epochs (the perceptron
convergence theorem); for XOR, which is not linearly separable, no epoch is ever error-free. One
hidden layer of threshold units computes XOR: :func:`xor_network`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnjax._activations import activate
from fnnjax._model import MLP, Layer, Params

__all__ = ["PerceptronResult", "threshold_unit", "train_perceptron", "xor_network"]

Array = jax.Array


def threshold_unit(x: Array, w: Array, b) -> Array:
    r"""The output $\mathrm{step}(w \cdot x + b)$ of one threshold unit (a perceptron, F4).

    Args:
      x: inputs ``(N, M)`` or one input ``(M,)``.
      w: weights ``(M,)``.
      b: the bias, a scalar.

    Returns:
      ``(N,)`` (or ``()``) of 0/1 in w's dtype: 1 where $w \cdot x + b > 0$.

    Raises:
      ValueError: when x's last axis is not the length of w.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> x = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
      >>> fnnjax.threshold_unit(x, jnp.array([1., 1.]), -1.5)  # AND
      Array([0., 0., 0., 1.], dtype=float32)
    """
    w = jnp.asarray(w)
    x = jnp.asarray(x)
    if w.ndim != 1 or x.ndim not in (1, 2) or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"x has shape {x.shape} and w has shape {w.shape}; a threshold unit with M inputs takes "
            "w of shape (M,) and x of shape (N, M) or (M,)"
        )
    z = x.astype(w.dtype) @ w + jnp.asarray(b).astype(w.dtype)
    return activate("step", z)


class PerceptronResult(NamedTuple):
    """What :func:`train_perceptron` returns.

    Attributes:
      w: the final weights ``(M,)``.
      b: the final bias ``()``.
      errors: ``(epochs,)`` int32, the number of samples misclassified (hence updates made) in each
        pass over the data.

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> r = fnnjax.PerceptronResult(jnp.zeros(2), jnp.zeros(()), jnp.array([3, 1, 0, 0]))
      >>> r.converged  # some pass over the data made no error
      True
    """

    w: Array
    b: Array
    errors: Array

    @property
    def converged(self) -> bool:
        """Whether some epoch made no error (from then on the weights never change)."""
        return bool(jnp.any(self.errors == 0))

    @property
    def epochs_to_converge(self) -> int | None:
        """The number of epochs that made updates before the first error-free one (None if never)."""
        clean = np.flatnonzero(np.asarray(self.errors) == 0)
        return int(clean[0]) if clean.size else None


@functools.partial(jax.jit, static_argnames="epochs")
def _run(x: Array, t: Array, w: Array, b: Array, lr: Array, epochs: int):
    def sample(carry, xt):
        w, b = carry
        xi, ti = xt
        y = activate("step", jnp.dot(w, xi) + b)
        e = ti - y  # 0 when right, +-1 when wrong
        return (w + lr * e * xi, b + lr * e), e != 0

    def epoch(carry, _):
        carry, wrong = jax.lax.scan(sample, carry, (x, t))
        return carry, jnp.sum(wrong.astype(jnp.int32))

    (w, b), errors = jax.lax.scan(epoch, (w, b), None, length=epochs)
    return w, b, errors


def _check_table(x, t) -> tuple[Array, Array]:
    x = jnp.asarray(x)
    t = jnp.asarray(t)
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(
            f"x has shape {x.shape} and t has shape {t.shape}; the perceptron rule takes inputs (N, M) and targets (N,)"
        )
    values = np.asarray(t)
    if not np.all((values == 0) | (values == 1)):
        raise ValueError(f"targets {values.tolist()} must be 0 or 1 (the outputs of a threshold unit)")
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return x.astype(dtype), t.astype(dtype)


def train_perceptron(x, t, *, epochs: int = 100, lr: float = 1.0, w=None, b=0.0) -> PerceptronResult:
    r"""Rosenblatt's perceptron learning rule, one sample at a time, for ``epochs`` passes (F4).

    For each sample in order, with $\eta$ = ``lr``: $y = \mathrm{step}(w \cdot x + b)$,
    $w \leftarrow w + \eta\,(t - y)\,x$, $b \leftarrow b + \eta\,(t - y)$. All epochs run (one compiled
    ``lax.scan``); an epoch without errors leaves the weights unchanged, so the result equals
    stopping at the first such epoch.

    Args:
      x: inputs ``(N, M)``, e.g. a truth table from :func:`fnnjax.data.logic_gate`.
      t: targets ``(N,)`` of 0/1.
      epochs: the number of passes (a bound: XOR never converges).
      lr: the learning rate $\eta > 0$.
      w: initial weights ``(M,)`` (default zeros).
      b: initial bias (default 0).

    Returns:
      A :class:`PerceptronResult` ``(w (M,), b (), errors (epochs,))`` with ``.converged`` and
      ``.epochs_to_converge``.

    Raises:
      ValueError: for shapes that do not fit, targets other than 0/1, ``epochs`` $< 1$ or ``lr`` $\le 0$.

    Example:
      >>> import fnnjax
      >>> from fnnjax import data
      >>> r = fnnjax.train_perceptron(*data.logic_gate("and"), epochs=20)
      >>> r.converged, fnnjax.threshold_unit(data.logic_gate("and")[0], r.w, r.b).tolist()
      (True, [0.0, 0.0, 0.0, 1.0])
      >>> fnnjax.train_perceptron(*data.logic_gate("xor"), epochs=20).converged
      False
    """
    x, t = _check_table(x, t)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs = {epochs!r}; the number of passes must be a positive integer")
    if not lr > 0:
        raise ValueError(f"lr = {lr!r}; the learning rate must be > 0")
    dtype = x.dtype
    w = jnp.zeros((x.shape[1],), dtype) if w is None else jnp.asarray(w).astype(dtype)
    if w.shape != (x.shape[1],):
        raise ValueError(f"w has shape {w.shape} but x has {x.shape[1]} inputs; pass w of shape ({x.shape[1]},)")
    w, b, errors = _run(x, t, w, jnp.asarray(b).astype(dtype), jnp.asarray(lr).astype(dtype), int(epochs))
    return PerceptronResult(w, b, errors)


def xor_network(dtype=jnp.float32) -> tuple[MLP, Params]:
    r"""The 2-2-1 threshold net that computes XOR (F4), with hand-set weights.

    Hidden unit 1 is OR, $\mathrm{step}(x_1 + x_2 - 0.5)$; hidden unit 2 is AND,
    $\mathrm{step}(x_1 + x_2 - 1.5)$; the output is $\mathrm{step}(h_1 - h_2 - 0.5)$: "OR but not AND" = XOR.

    Args:
      dtype: the parameters' floating dtype.

    Returns:
      ``(mlp, params)`` with ``mlp = MLP((2, 2, 1), hidden="step", output="step")``,
      ``params[0] = Layer(W=[[1, 1], [1, 1]], b=[-0.5, -1.5])``,
      ``params[1] = Layer(W=[[1, -1]], b=[-0.5])``.

    Example:
      >>> import fnnjax
      >>> from fnnjax import data
      >>> mlp, params = fnnjax.xor_network()
      >>> fnnjax.forward(mlp, params, data.logic_gate("xor")[0])[:, 0].tolist()
      [0.0, 1.0, 1.0, 0.0]
    """
    mlp = MLP((2, 2, 1), hidden="step", output="step")
    params = (
        Layer(jnp.array([[1.0, 1.0], [1.0, 1.0]], dtype), jnp.array([-0.5, -1.5], dtype)),
        Layer(jnp.array([[1.0, -1.0]], dtype), jnp.array([-0.5], dtype)),
    )
    return mlp, params
