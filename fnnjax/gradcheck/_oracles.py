"""Where and how f is evaluated: the plan of points (host) and the compiled oracle programs.

The full check evaluates f at ``1 + 4P + 2K`` points (theta, the four-point stencil of every
coordinate, the Taylor points along +d and -d) and takes one reverse pass of ``jax.grad``, carrying
the rounding bounds of f and of every gradient element beside it (:func:`rounding_scales`):
:func:`plan_oracles` lays the points out on the host (with the steps actually taken after
rounding) and :func:`evaluate_oracles` evaluates them in one traced computation. Fast mode
(:func:`fast_oracles`) takes the reverse pass too, but evaluates the stencil only along a few
random probe directions per leaf.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnjax._differentiate import finite_difference_steps, representable_step
from fnnjax.gradcheck._args import StaticArgs, merge_args
from fnnjax.gradcheck._layout import flat_function
from fnnjax.gradcheck._rounding import RoundingScales, rounding_scales
from fnnjax.gradcheck._taylor import TAYLOR_START, TAYLOR_STEPS

__all__ = [
    "VMAP_LIMIT",
    "FastOracles",
    "FastPlan",
    "FastPoint",
    "FullOracles",
    "OraclePlan",
    "evaluate_oracles",
    "fast_oracles",
    "fd_steps",
    "full_oracles",
    "plan_oracles",
]

VMAP_LIMIT = 512
"""Up to this many parameters every evaluation point is built on the host and goes through one
vmapped value-and-grad (one small program to compile); beyond, the stencil is evaluated inside the
program in chunks of 64 coordinates."""

_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
"""How the oracle programs are compiled: they run once, and with the rounding measurement beside
jax.grad they are several times the size of f's program, so XLA's backend optimisations and the CPU
fusion emitters are left out (compiling then takes a sixth of the time). A jaxlib that does not know
an option compiles them with its defaults."""


def _jit(fn, static_argnums):
    """``jax.jit`` with :data:`_COMPILE`, falling back to the defaults where an option is unknown."""
    fast = jax.jit(fn, static_argnums=static_argnums, compiler_options=_COMPILE)
    plain = jax.jit(fn, static_argnums=static_argnums)
    state = {"options": True}

    @functools.wraps(fn)
    def call(*args):
        if state["options"]:
            try:
                return fast(*args)
            except Exception as err:  # jaxlib raises its own error types for an unknown option
                if "compile option" not in str(err):
                    raise
                state["options"] = False
        return plain(*args)

    return call


_VMAP_ELEMENTS = 2**22
"""Fast mode vmaps over all its evaluation points while points x P stays below this (memory)."""


class OraclePlan(NamedTuple):
    """Where the full check evaluates f, built on the host (:func:`plan_oracles`).

    Attributes:
      theta: the point, ``(P,)``, in the parameters' dtype.
      steps: the signed steps actually taken (after rounding) ``+h, -h, +2h, -2h``, ``(4, P)``
        (no columns when the stencil is left out).
      taylor_steps: the Taylor perturbations actually taken, ``e d`` then ``-e d``, ``(2K, P)``.
      points: every evaluation point ``[theta; stencil; Taylor]``, ``(1 + 4P + 2K, P)``, or None
        beyond :data:`VMAP_LIMIT` parameters.
    """

    theta: np.ndarray
    steps: np.ndarray
    taylor_steps: np.ndarray
    points: np.ndarray | None


class FullOracles(NamedTuple):
    """What the full check measured (:func:`evaluate_oracles`).

    Attributes:
      f0: f(theta).
      grad: jax.grad f at theta, ``(P,)``.
      stencil: ``f(theta + s e_i)`` for the four steps s of coordinate i, ``(P, 4)``.
      taylor: ``f(theta + e d)`` for the Taylor steps e, then for -e, ``(2K,)``.
      scales: the measured :class:`RoundingScales` of f and of ``grad`` (None, for oracles built
        by hand: the tolerances fall back to ``eps^(3/4) (|A_i| + max_leaf |A|)``).
    """

    f0: Any
    grad: Any
    stencil: Any
    taylor: Any
    scales: RoundingScales | None = None


def fd_steps(theta, step: float | None = None) -> np.ndarray:
    """The finite-difference base step of every coordinate: ``eps^(1/3) max(1, |theta_i|)`` (F19).

    The step balances the O(h^2) truncation error of a central difference against its O(eps |f| / h)
    rounding error.

    Args:
      theta: the flat point, ``(P,)``, in the parameters' dtype.
      step: a fixed step to use for every coordinate instead.

    Returns:
      ``(P,)`` in theta's dtype.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import fd_steps
      >>> fd_steps(np.array([0.5, -4.0]))  # float64: eps^(1/3) = 6.1e-6
      array([6.05545445e-06, 2.42218178e-05])
    """
    return np.asarray(finite_difference_steps(np.asarray(theta), step))


def plan_oracles(theta, h, d, *, stencil: bool = True) -> OraclePlan:
    """The stencil and Taylor points for ``theta`` with base steps ``h`` and Taylor direction ``d``.

    The steps are rounded so that they are the ones actually taken: ``(theta + h) - theta`` is exact.

    Args:
      theta: the flat point, ``(P,)`` (numpy or jax array of the parameters' dtype).
      h: the step per coordinate, ``(P,)`` (see :func:`fd_steps`).
      d: the Taylor direction, ``(P,)``.
      stencil: False leaves the finite-difference stencil out (``steps`` has no columns).

    Returns:
      An :class:`OraclePlan`.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import plan_oracles
      >>> plan = plan_oracles(np.zeros(3), np.full(3, 1e-3), np.ones(3))
      >>> plan.steps.shape, plan.points.shape  # 1 + 4P + 2K points
      ((4, 3), (61, 3))
    """
    theta = np.asarray(theta)
    dtype = theta.dtype
    h, d = np.asarray(h, dtype), np.asarray(d, dtype)
    if not stencil:
        h = h[:0]
    m = h.size
    steps = np.stack(
        [
            representable_step(theta[:m], h),
            representable_step(theta[:m], -h),
            representable_step(theta[:m], 2 * h),
            representable_step(theta[:m], -2 * h),
        ]
    )
    signed = np.concatenate(
        [TAYLOR_START * 0.5 ** np.arange(TAYLOR_STEPS), -TAYLOR_START * 0.5 ** np.arange(TAYLOR_STEPS)]
    ).astype(dtype)
    moved = theta[None, :] + signed[:, None] * d[None, :]
    n = theta.shape[0]
    points = None
    if n <= VMAP_LIMIT:
        shifted = np.repeat(theta[None, None, :], 4, axis=0).repeat(m, axis=1)  # (4, m, P)
        idx = np.arange(m)
        shifted[:, idx, idx] = theta[None, :m] + steps
        points = np.concatenate([theta[None, :], shifted.reshape(4 * m, n), moved])
    return OraclePlan(theta, steps, moved - theta[None, :], points)


def evaluate_oracles(F: Callable[[jax.Array], jax.Array], plan: OraclePlan) -> FullOracles:
    """Evaluate f and jax.grad f where :func:`plan_oracles` says (traceable: call it under jit;
    called outside a trace, it compiles itself).

    Costs ``4P + 2K + 1`` evaluations of F, vmapped (in one ``vmap(F)`` when the plan has its
    points, else the stencil in chunks of 64 coordinates), and one reverse pass of jax.grad with the
    measurement of its rounding (:func:`rounding_scales`, about 16 gradients' worth of vectorised
    tangent work).

    Args:
      F: the scalar function of the flat vector theta (see :func:`flat_function`).
      plan: the :class:`OraclePlan`.

    Returns:
      The :class:`FullOracles`.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from fnnjax.gradcheck import evaluate_oracles, plan_oracles
      >>> plan = plan_oracles(np.array([1.0, 2.0]), np.full(2, 1e-3), np.ones(2))
      >>> values = evaluate_oracles(lambda t: jnp.sum(t ** 3), plan)
      >>> float(values.f0), values.grad.tolist(), values.stencil.shape, values.taylor.shape
      (9.0, [3.0, 12.0], (2, 4), (48,))
    """
    return jax.jit(lambda plan: _evaluate(F, plan))(plan)  # compiled when called outside a trace


def _evaluate(F: Callable[[jax.Array], jax.Array], plan: OraclePlan) -> FullOracles:
    m = plan.steps.shape[1]
    k = plan.taylor_steps.shape[0]
    theta = jnp.asarray(plan.theta)
    _, autodiff, scales = rounding_scales(F, theta)
    if plan.points is not None:
        values = jax.vmap(F)(jnp.asarray(plan.points))
        return FullOracles(
            values[0], autodiff, values[1 : 1 + 4 * m].reshape(4, m).T, values[1 + 4 * m : 1 + 4 * m + k], scales
        )
    f0 = F(theta)
    steps = jnp.asarray(plan.steps)

    def column(i):
        return jax.vmap(lambda s: F(theta.at[i].add(s)))(steps[:, i])

    stencil = jax.lax.map(column, jnp.arange(m), batch_size=64) if m else jnp.zeros((0, 4), theta.dtype)
    taylor = jax.vmap(F)(theta[None, :] + jnp.asarray(plan.taylor_steps))
    return FullOracles(f0, autodiff, stencil, taylor, scales)


def _bound(f, static: StaticArgs, params, dynamic) -> Callable[[jax.Array], jax.Array]:
    """f with its arguments bound, as a function of theta (inside the trace)."""
    args = merge_args(static, dynamic)
    return flat_function(lambda p: f(p, *args), params)


def _full_oracles(f, static: StaticArgs, params, dynamic: tuple, plan: OraclePlan) -> FullOracles:
    return evaluate_oracles(_bound(f, static, params, dynamic), plan)


full_oracles = _jit(_full_oracles, (0, 1))
"""``full_oracles(f, static, params, dynamic, plan)``: :func:`evaluate_oracles` of ``f(params, *args)``
as one compiled program (keyed on f, the static arguments and the shapes of params, the array
arguments and the plan)."""


class FastOracles(NamedTuple):
    """What fast mode measured (:func:`fast_oracles`).

    Attributes:
      f0: f(theta).
      grad: jax.grad f at theta, ``(P,)`` (zeros when autodiff is not among the oracles).
      stencil: f along each probe u: ``f(theta + s T u)`` for s = +1, -1, +2, -2, ``(n, 4)``.
      lin: ``<G, actual step> / step`` at T and 2T, ``(n, 2)``: the gradient under test along u,
        over the same rounded steps.
      scale: T, the probe step of each probe, ``(n,)``.
      probe_norm: ``||u||``, ``(n,)``.
      gu_abs: ``sum_i |G_i u_i|``, the condition of ``<G, u>``, ``(n,)``.
      taylor: ``(2K, 2)``: f along +-e d and ``<G, actual step>``.
      scales: the :class:`RoundingScales` of f and jax.grad f at theta.
      along: ``sum_i |v_i| m_i`` for each probe v = u, then for d, ``(n + 1,)``: the rounding bound
        of the gradient along the directions.
    """

    f0: Any
    grad: Any
    stencil: Any
    lin: Any
    scale: Any
    probe_norm: Any
    gu_abs: Any
    taylor: Any
    scales: Any = None
    along: Any = None


class FastPlan(NamedTuple):
    """How fast mode probes (static, hashable: part of the compiled program's key).

    Attributes:
      probes: Gaussian probes per leaf.
      slices: each leaf's ``(start, stop)`` in theta.
      with_grad: autodiff is among the oracles (the reverse pass is taken regardless: its rounding
        bounds set the tolerances of the differences).
    """

    probes: int
    slices: tuple[tuple[int, int], ...]
    with_grad: bool


class FastPoint(NamedTuple):
    """Where fast mode looks (traced arrays).

    Attributes:
      theta: the flat point, ``(P,)``.
      key: the PRNG key of the probes.
      base_h: the base finite-difference step.
      d: the Taylor direction, ``(P,)``.
      grad: the gradient under test, flat, ``(P,)`` (non-finite entries zeroed).
    """

    theta: Any
    key: Any
    base_h: Any
    d: Any
    grad: Any


def _fast_oracles(f, static: StaticArgs, plan: FastPlan, params, dynamic: tuple, point: FastPoint) -> FastOracles:
    """One reverse pass of jax.grad (with its rounding bounds), then f along per-leaf Gaussian probes
    u and the Taylor direction d.

    Every evaluation of f is ``f(theta + c v)`` for a coefficient c and a direction v (a probe or
    d), done by one vmap (or ``lax.map`` in chunks of 16 points for large P) over (c, v), together
    with ``<G, actual step>`` for the gradient G under test.
    """
    probes, slices, with_grad = plan
    theta, key, base_h, d, grad = point
    F = _bound(f, static, params, dynamic)
    f0, autodiff, scales = rounding_scales(F, theta)
    if not with_grad:
        autodiff = jnp.zeros_like(theta)
    us, ts = [], []
    for k, (start, stop) in zip(jax.random.split(key, len(slices)), slices):
        u = jax.random.normal(k, (probes, stop - start), theta.dtype)
        us.append(jnp.zeros((probes, theta.shape[0]), theta.dtype).at[:, start:stop].set(u))
        rms = jnp.sqrt(jnp.mean(theta[start:stop] * theta[start:stop]))
        ts.append(jnp.full((probes,), base_h, theta.dtype) * jnp.maximum(1, rms))
    U, T = jnp.concatenate(us), jnp.concatenate(ts)
    n = U.shape[0]
    dirs = jnp.concatenate([U, d[None, :]])
    taylor = TAYLOR_START * 0.5 ** jnp.arange(TAYLOR_STEPS, dtype=theta.dtype)
    coef = jnp.concatenate([T, -T, 2 * T, -2 * T, taylor, -taylor])
    which = jnp.concatenate([jnp.tile(jnp.arange(n, dtype=jnp.int32), 4), jnp.full((2 * TAYLOR_STEPS,), n, jnp.int32)])

    def evaluate(c_i):
        c, i = c_i
        moved = theta + c * dirs[i]
        return F(moved), jnp.dot(grad, moved - theta)

    small = coef.shape[0] * theta.shape[0] <= _VMAP_ELEMENTS  # one vmap; else chunks of 16 points
    values, lin = jax.vmap(evaluate)((coef, which)) if small else jax.lax.map(evaluate, (coef, which), batch_size=16)
    stencil = values[: 4 * n].reshape(4, n).T
    steps_lin = lin[: 4 * n].reshape(4, n)
    lin_probe = jnp.stack([(steps_lin[0] - steps_lin[1]) / (2 * T), (steps_lin[2] - steps_lin[3]) / (4 * T)], axis=1)
    taylor_values = jnp.stack([values[4 * n :], lin[4 * n :]], axis=1)
    along = jnp.abs(dirs) @ scales.grad_error.astype(theta.dtype)
    return FastOracles(
        f0,
        autodiff,
        stencil,
        lin_probe,
        T,
        jnp.sqrt(jnp.sum(U * U, axis=1)),
        jnp.abs(U) @ jnp.abs(grad),
        taylor_values,
        scales,
        along,
    )


fast_oracles = _jit(_fast_oracles, (0, 1, 2))
"""``fast_oracles(f, static, plan, params, dynamic, point)``: :func:`_fast_oracles` as one compiled program."""
