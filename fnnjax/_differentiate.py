"""Every way to differentiate the risk R, behind one call (F19-F21).

``gradient(..., method=...)`` returns the same pytree for each method:

- ``backprop``: the hand-written delta recursion (:func:`fnnjax.backprop`);
- ``grad``, ``vjp``, ``jacrev``: reverse mode (one backward pass for the scalar R);
- ``jacfwd``: forward mode over all P parameters at once (vmapped jvps);
- ``jvp``: one forward-mode pass per parameter, P passes in sequence (the cost F21 warns about);
- ``fd_central``, ``fd_forward``: finite differences, one or two evaluations of R per parameter
  (F19), with a per-dtype default step.
"""

from __future__ import annotations

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnnjax._backprop import backprop
from fnnjax._losses import check_l2, prepare, risk
from fnnjax._model import MLP, Params, params_dtype

__all__ = [
    "METHODS",
    "gradient",
    "default_step",
    "finite_difference_steps",
    "representable_step",
    "finite_difference_gradient",
]

Array = jax.Array

METHODS = ("backprop", "grad", "vjp", "jacrev", "jacfwd", "jvp", "fd_central", "fd_forward")
"""The names accepted by :func:`gradient`'s ``method``."""


def default_step(dtype, method: str = "fd_central") -> float:
    r"""The base finite-difference step for a dtype (F19).

    Central differences balance the $O(h^2)$ truncation against the $O(\varepsilon/h)$ rounding error at
    $h = \varepsilon^{1/3}$ (float64: 6.1e-6, float32: 4.9e-3); forward differences, $O(h)$ against
    $O(\varepsilon/h)$, at $h = \varepsilon^{1/2}$ (float64: 1.5e-8, float32: 3.5e-4). The step actually
    used for parameter $\theta_i$ is $h \max(1, |\theta_i|)$.

    Args:
      dtype: a floating dtype.
      method: ``fd_central`` or ``fd_forward``.

    Returns:
      The base step h as a Python float.

    Example:
      >>> import fnnjax
      >>> round(fnnjax.default_step("float64"), 8)
      6.06e-06
    """
    eps = float(jnp.finfo(dtype).eps)
    return eps ** (1.0 / 3.0) if method == "fd_central" else eps**0.5


def finite_difference_steps(theta, step=None, *, method: str = "fd_central"):
    r"""The finite-difference step of every coordinate (F19): $h_i = h \max(1, |\theta_i|)$ with
    $h$ = :func:`default_step` of theta's dtype, or ``step`` for every coordinate, unscaled.

    The one statement of the rule, for :func:`finite_difference_gradient` and :mod:`fnnjax.gradcheck`.
    The steps are not yet rounded: :func:`representable_step` gives the ones actually taken.

    Args:
      theta: the flat point ``(P,)``, a floating NumPy or JAX array (the result is of the same kind).
      step: None for the scaled default; a number (a traced one included) used as is.
      method: ``fd_central`` or ``fd_forward`` (which default: $\varepsilon^{1/3}$ or $\varepsilon^{1/2}$).

    Returns:
      ``(P,)`` in theta's dtype.

    Example:
      >>> import numpy as np, fnnjax
      >>> fnnjax.finite_difference_steps(np.array([0.5, -4.0]))  # float64: eps ** (1/3) = 6.1e-6
      array([6.05545445e-06, 2.42218178e-05])
    """
    xp = np if isinstance(theta, np.ndarray) and not isinstance(step, jax.core.Tracer) else jnp
    if step is not None:
        return xp.full_like(theta, step)
    return (default_step(theta.dtype, method) * xp.maximum(1, xp.abs(theta))).astype(theta.dtype)


def representable_step(theta, h):
    r"""The step actually taken from $\theta$ = ``theta`` by $h$ = ``h``: $(\theta + h) - \theta$, exact in
    the dtype (F19), so that a difference quotient divides by the true distance between its points.

    Args:
      theta: the point (a NumPy or JAX array, or a scalar).
      h: the intended step, broadcastable against ``theta`` (negative for a step down).

    Returns:
      The rounded step, of theta's shape and dtype.

    Example:
      >>> import numpy as np, fnnjax
      >>> float(fnnjax.representable_step(np.float32(1e8), np.float32(3.0)))  # float32 spacing 8 there
      0.0
    """
    return (theta + h) - theta


def finite_difference_gradient(f, theta: Array, *, central: bool = True, step=None) -> Array:
    r"""The gradient of a scalar $f: \mathbb{R}^P \to \mathbb{R}$ by finite differences, one coordinate at a time.

    $$
    \frac{f(\theta + h_i e_i) - f(\theta - h_i e_i)}{2 h_i} \quad \text{(central, } O(h^2)\text{)}
    \qquad \text{or} \qquad
    \frac{f(\theta + h_i e_i) - f(\theta)}{h_i} \quad \text{(forward, } O(h)\text{)},
    $$

    with $h_i = h \max(1, |\theta_i|)$ ($h$ = ``step``, default :func:`default_step`), never so large
    that $\theta_i + h_i$ (or $\theta_i - h_i$) overflows the dtype; $h_i$ is rounded so that
    $\theta_i + h_i$ is exact. The default step survives rounding at any finite $|\theta_i|$ below the
    dtype's largest value: it grows with $|\theta_i|$. A step given explicitly is used as is, unscaled,
    and can vanish ($\theta_i + h = \theta_i$: $h = 10^{-3}$ at $|\theta_i| = 10^8$ in float32) or
    overflow. Costs $2P$ (central) or $P + 1$ (forward) evaluations of $f$, done in sequence by
    ``lax.map``.

    Args:
      f: a scalar function of a flat vector.
      theta: the point $\theta$, a floating vector ``(P,)``.
      central: central (True) or forward (False) differences.
      step: the base step $h$; None for the dtype's default. A finite number $h > 0$ is used as is,
        unscaled (it may be traced, e.g. a sweep over steps under ``vmap``).

    Returns:
      The estimated gradient, shape ``(P,)``. Under ``jit`` or ``vmap`` (``theta`` or ``step``
      traced, so nothing can be raised), a coordinate whose step vanished, overflowed or was not
      $> 0$, or whose $\theta_i$ is not finite, is NaN, never an inf or a plausible number.

    Raises:
      ValueError: for a step that is not a finite number $> 0$, a ``theta`` that is not a floating
        vector, and (``theta`` concrete) a coordinate whose step vanishes or overflows after
        rounding, or that is not finite (naming the coordinate, its value and the step to use).

    Example:
      >>> import jax.numpy as jnp, fnnjax
      >>> g = fnnjax.finite_difference_gradient(lambda t: jnp.sum(t ** 3), jnp.array([1.0, 2.0]))
      >>> [round(v, 2) for v in g.tolist()]  # 3 t^2
      [3.0, 12.0]
      >>> fnnjax.finite_difference_gradient(jnp.sum, jnp.array([1e8]), step=1e-3)
      Traceback (most recent call last):
      ...
      ValueError: finite differences at theta[0] = 1e+08 (float32): the step 0.001 vanishes there ...
    """
    _check_step(step)
    if jnp.ndim(theta) != 1 or not jnp.issubdtype(jnp.result_type(theta), jnp.floating):
        raise ValueError(
            f"theta has shape {jnp.shape(theta)} and dtype {jnp.result_type(theta)} but finite differences "
            "take a floating vector (P,); flatten a pytree with jax.flatten_util.ravel_pytree"
        )
    dtype = theta.dtype
    biggest = float(jnp.finfo(dtype).max)
    largest = jnp.asarray(biggest, dtype)
    if step is not None and not isinstance(step, jax.core.Tracer) and float(step) > biggest:
        raise ValueError(
            f"step = {step!r} overflows {np.dtype(dtype).name} (largest {biggest:g}); pass a smaller "
            "step, or step=None (the default, kept inside the dtype's range)"
        )
    h = finite_difference_steps(jnp.asarray(theta), step, method="fd_central" if central else "fd_forward")
    if step is None:
        room = largest - (jnp.abs(theta) if central else theta)  # theta +- h stays finite (Sterbenz: exact)
        h = jnp.minimum(h, room)
    h = representable_step(theta, h)
    usable = jnp.isfinite(theta) & jnp.isfinite(h) & (h > 0)
    if central:
        usable = usable & jnp.isfinite(theta - h)
    if not isinstance(usable, jax.core.Tracer) and not bool(jnp.all(usable)):  # theta and h concrete
        _raise_unusable_step(theta, h, step, central)
    f0 = None if central else f(theta)

    def partial(i):
        e = jnp.zeros_like(theta).at[i].set(h[i])
        if central:
            return (f(theta + e) - f(theta - e)) / (2 * h[i])
        return (f(theta + e) - f0) / h[i]

    estimate = jax.lax.map(partial, jnp.arange(theta.shape[0]))
    return jnp.where(usable, estimate, jnp.asarray(jnp.nan, estimate.dtype))


def _check_step(step) -> None:
    """A concrete step must be a finite real number > 0; a traced one (a sweep over steps under
    ``vmap``) cannot be checked: a bad value gives NaN (see :func:`finite_difference_gradient`)."""
    if step is None or isinstance(step, jax.core.Tracer):
        return
    real = isinstance(step, (int, float, np.integer, np.floating)) or (
        np.ndim(step) == 0 and hasattr(step, "dtype") and jnp.issubdtype(step.dtype, jnp.floating)
    )
    if isinstance(step, (bool, np.bool_)) or not real:
        raise ValueError(f"step = {step!r} but the finite-difference step must be a number > 0 (or None)")
    if not (np.isfinite(float(step)) and float(step) > 0):
        raise ValueError(f"step = {step!r} but the finite-difference step must be a finite number > 0 (or None)")


def _raise_unusable_step(theta: Array, h: Array, step, central: bool):
    """One line for the first coordinate where finite differences cannot be taken."""
    host_theta, host_h = np.asarray(theta), np.asarray(h)
    ok = np.isfinite(host_theta) & np.isfinite(host_h) & (host_h > 0)
    if central:
        with np.errstate(over="ignore", invalid="ignore"):
            ok &= np.isfinite(host_theta - host_h)
    i = int(np.flatnonzero(~ok)[0])
    value, name = host_theta[i], np.dtype(theta.dtype).name
    where = f"finite differences at theta[{i}] = {float(value):g} ({name})"
    if not np.isfinite(value):
        raise ValueError(f"{where}: theta is not finite there; finite differences need a finite point")
    if step is None:  # only |theta| at the dtype's largest value leaves no room on both sides
        sides = "both sides" if central else "the right"
        instead = "forward differences (central=False) or " if central else ""
        raise ValueError(
            f"{where}: |theta| is the largest {name} value, so no step fits on {sides} without "
            f"overflowing; use {instead}params of a wider dtype"
        )
    if host_h[i] == 0:
        need = float(np.spacing(np.abs(value)))
        raise ValueError(
            f"{where}: the step {step:g} vanishes there (theta + h == theta in {name}); pass a step >= {need:g} "
            "there, or step=None (the default, scaled to max(1, |theta|))"
        )
    raise ValueError(
        f"{where}: the step {step:g} overflows {name} there (theta + h is inf); pass a smaller step, or "
        "step=None (the default, kept inside the dtype's range)"
    )


def _check_method(method: str, step) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown gradient method {method!r}; valid methods are {', '.join(METHODS)}")
    if step is not None:
        if not method.startswith("fd_"):
            raise ValueError(f"step applies only to fd_central and fd_forward, not to method {method!r}")
        _check_step(step)


def gradient(
    mlp: MLP,
    params: Params,
    x: Array,
    y: Array,
    loss: str = "cross_entropy",
    l2=0.0,
    method: str = "backprop",
    *,
    step: float | None = None,
) -> Params:
    r"""The gradient of the risk $R$ (F7) with respect to every parameter, by any method (F19-F21).

    Args:
      mlp: the :class:`MLP`.
      params: a tuple of L :class:`Layer` s (``W: (M_l, M_{l-1})``, ``b: (M_l,)``).
      x: inputs ``(N, M_0)`` or one sample ``(M_0,)``.
      y: targets, as for :func:`fnnjax.loss`.
      loss: ``mse``, ``squared_error`` or ``cross_entropy``.
      l2: the weight-decay coefficient $\lambda \ge 0$ (may be traced).
      method: one of :data:`METHODS` (see the module docstring).
      step: finite-difference base step (``fd_*`` only); default :func:`default_step` of the dtype.

    Returns:
      A tuple of :class:`Layer` s $(\partial R / \partial W^{(l)}, \partial R / \partial b^{(l)})$, the
      structure of params, whatever the method.

    Raises:
      ValueError/TypeError: for an unknown method, a step given to a non-fd method, or anything
        :func:`fnnjax.loss` rejects.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((3, 4, 2), hidden="tanh", output="softmax")
      >>> params = fnnjax.init_params(jax.random.key(0), mlp, "xavier")
      >>> x, y = jnp.ones((2, 3)), jnp.array([0, 1])
      >>> a = fnnjax.gradient(mlp, params, x, y, method="jacfwd")
      >>> b = fnnjax.gradient(mlp, params, x, y, method="backprop")
      >>> bool(jnp.allclose(a[1].W, b[1].W, atol=1e-6))
      True
    """
    _check_method(method, step)
    if method == "backprop":
        return backprop(mlp, params, x, y, loss=loss, l2=l2)
    params, batch = prepare(mlp, params, x, y, loss)
    l2 = check_l2(l2, params_dtype(params))

    def R(p):
        return risk(mlp, p, batch, loss, l2)

    if method == "grad":
        return jax.grad(R)(params)
    if method == "vjp":
        value, pullback = jax.vjp(R, params)
        return pullback(jnp.ones_like(value))[0]
    if method == "jacrev":
        return jax.jacrev(R)(params)
    if method == "jacfwd":
        return jax.jacfwd(R)(params)

    theta, unravel = ravel_pytree(params)

    def R_flat(t):
        return R(unravel(t))

    if method == "jvp":  # one forward-mode pass per parameter: P passes

        def directional(i):
            e = jnp.zeros_like(theta).at[i].set(1)
            return jax.jvp(R_flat, (theta,), (e,))[1]

        return unravel(jax.lax.map(directional, jnp.arange(theta.shape[0])))
    return unravel(finite_difference_gradient(R_flat, theta, central=method == "fd_central", step=step))
