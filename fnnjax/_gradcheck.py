"""Check a hand-written gradient against layered oracles, leaf by leaf (F19-F21).

:func:`check_gradients` compares ``grad_f(params, *args)`` with the gradient of the scalar
``f(params, *args)`` found three independent ways, each with its own tolerance:

- ``autodiff``: ``jax.grad(f)``, exact up to rounding, so the tolerance is tight:
  ``|G_i - A_i| <= rho (|A_i| + max_leaf |A|)`` with ``rho = eps^(3/4)`` of the dtype
  (float64: 1.8e-12, float32: 6.4e-6).
- ``fd``: central differences with Richardson extrapolation, one coordinate at a time. The step is
  ``h_i = eps^(1/3) max(1, |theta_i|)`` (F19: it balances the O(h^2) truncation error against the
  O(u |f| / h) rounding error). The tolerance is not a constant: for each coordinate it is twice
  the estimated error of the extrapolated estimate, the truncation error measured from the two
  steps, ``|D(h) - D(2h)| / 3``, plus the rounding bound ``1.5 delta / h`` with
  ``delta = 8 eps |f|``, so correct float32 gradients pass and a step that is too large shows as
  a large tolerance instead of a false failure.
- ``taylor``: the Taylor-remainder test along a random direction d and along -d.
  ``r(e) = |f(theta + e d) - f(theta) - e <G, d>|`` shrinks like ``e^2`` when G is the gradient
  and like ``e`` when it is not. The observed rate is the median of the last three local rates
  ``log2(r(e) / r(e/2))`` whose remainders lie above the rounding floor ``8 eps |f|``; it needs
  no tolerance: a rate >= 1.5 passes, three local rates within 0.3 of 1 (on both sides) fail, and
  anything else (too few points above the floor, rates made erratic by kinks) is inconclusive.

Kinks (ReLU at 0, a step's jump) are recognised from the finite-difference stencil itself: when the
slope changes across the stencil by at least the disagreement, the coordinate is counted as
*skipped at a kink*, not failed; where the stencil straddles a kink, a value equal to either
one-sided derivative is accepted by the autodiff oracle too (``relu'(0)`` may be 0 or 1).

``fast=True`` replaces the O(P) per-coordinate differences by random projections, leaf by leaf:
for Gaussian probes u on one leaf, the adjoint identity ``<J^T 1, u> = <1, J u>`` compares the user's
gradient (a vjp) with a jvp, and central differences along u check it again; the tolerances scale
with ``sum_i |G_i u_i|`` (the condition of the dot product) and the rounding of f, never with the
size of the probes. When a probe fails, one reverse pass of ``jax.grad`` locates the element.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ORACLES",
    "FullOracles",
    "GradCheckReport",
    "GradientCheckError",
    "LeafResult",
    "OraclePlan",
    "ProbeResult",
    "TaylorResult",
    "analyze_full",
    "arrays_match",
    "autodiff_rtol",
    "central_differences",
    "check_gradients",
    "diagnose_leaf",
    "evaluate_oracles",
    "fit_combination",
    "leaf_layout",
    "leaf_slices",
    "match_rtol",
    "name_factor",
    "plan_oracles",
    "unflatten_params",
]

ORACLES = ("autodiff", "fd", "taylor")
"""The oracles :func:`check_gradients` knows."""

ROUNDING_FACTOR = 8.0
"""delta = ROUNDING_FACTOR * eps * |f|: the bound used for the rounding error of one evaluation of f."""

TAYLOR_START = 0.1
"""The largest Taylor step, relative to max(1, ||theta||)."""

TAYLOR_STEPS = 24
"""How many halvings of the Taylor step are tried."""

FULL_FD_LIMIT = 50_000
"""The most parameters a full (per-coordinate) finite-difference check accepts; use fast=True beyond."""


# ----------------------------------------------------------------------------------------------
# Tolerances derived from the dtype


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


def autodiff_rtol(dtype) -> float:
    """``eps^(3/4)``: the relative tolerance between two roundings of one exact gradient.

    Example:
      >>> from fnnjax._gradcheck import autodiff_rtol
      >>> f"{autodiff_rtol('float32'):.1e}", f"{autodiff_rtol('float64'):.1e}"
      ('6.4e-06', '1.8e-12')
    """
    return _eps(dtype) ** 0.75


def match_rtol(dtype) -> float:
    """How close two arrays must be for a diagnosis to say one *is* the other (``eps^(3/8)``)."""
    return max(_eps(dtype) ** 0.375, 1e-6)


# ----------------------------------------------------------------------------------------------
# Results


class LeafResult(NamedTuple):
    """One leaf of the gradient compared with one oracle.

    Attributes:
      path: the leaf's pytree path, e.g. ``[0].W``.
      oracle: ``autodiff`` or ``fd``.
      passed: every checked element within its tolerance.
      shape: the leaf's shape.
      max_abs_err: ``max_i |G_i - E_i|`` over the checked elements.
      rel_err: ``max_i |G_i - E_i| / max_i |E_i|`` (normwise relative error of the leaf).
      worst_index: the element with the largest error-to-tolerance ratio.
      expected: E at the worst element (from the oracle).
      got: G at the worst element.
      tolerance: the tolerance at the worst element.
      skipped: elements not judged because the stencil straddles a kink.
      diagnosis: what the error looks like (transposed, a constant factor, ...) or None.
    """

    path: str
    oracle: str
    passed: bool
    shape: tuple[int, ...]
    max_abs_err: float
    rel_err: float
    worst_index: tuple[int, ...]
    expected: float
    got: float
    tolerance: float
    skipped: int = 0
    diagnosis: str | None = None


class ProbeResult(NamedTuple):
    """One random projection in fast mode: ``<G, u>`` against the oracle's value of ``<grad f, u>``.

    Attributes:
      path: the leaf the probe u lives on.
      probe: the probe's number on that leaf.
      oracle: ``jvp`` (forward mode) or ``fd`` (central differences along u).
      expected: the oracle's directional derivative.
      got: ``<G, u>``.
      abs_err: ``|got - expected|``.
      tolerance: the tolerance for this probe.
      passed: within tolerance (or skipped at a kink).
      skipped: the difference stencil along u straddles a kink.
    """

    path: str
    probe: int
    oracle: str
    expected: float
    got: float
    abs_err: float
    tolerance: float
    passed: bool
    skipped: bool = False


class TaylorResult(NamedTuple):
    """The Taylor-remainder test along a random direction d and along -d.

    Attributes:
      rates: observed convergence rates along +d and -d (None where too few points lie above the
        rounding floor).
      passed: True when a rate is >= 1.5 (a right gradient gives 2), False when every measured
        rate is below 1.5 (a wrong one gives 1), None when inconclusive.
      steps: the steps e tried.
      remainders: ``r(e)`` along +d.
      note: why the verdict is what it is, in words.
    """

    rates: tuple[float | None, float | None]
    passed: bool | None
    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    note: str


class GradientCheckError(AssertionError):
    """Raised by :meth:`GradCheckReport.raise_if_failed`; its message is the rendered report."""


def _fmt(v, spec=".3e") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec)


def _jsonable(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.floating, np.integer)):
        return _jsonable(v.item())
    return v


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """Everything :func:`check_gradients` measured.

    Attributes:
      passed: every leaf, probe and the Taylor test agree with the gradient.
      mode: ``full`` (every element) or ``fast`` (random projections).
      dtype: the parameters' dtype.
      num_params: P, the number of scalar parameters.
      oracles: the oracles used.
      leaves: one :class:`LeafResult` per leaf and elementwise oracle (in fast mode, only for leaves
        whose probes failed: the element located by ``jax.grad``).
      probes: fast mode's :class:`ProbeResult` s.
      taylor: the :class:`TaylorResult`, or None.
      diagnosis: the verdict over the whole tree, in words, or None when it passed.
      step: the base finite-difference step h.
    """

    passed: bool
    mode: str
    dtype: str
    num_params: int
    oracles: tuple[str, ...]
    leaves: tuple[LeafResult, ...]
    probes: tuple[ProbeResult, ...]
    taylor: TaylorResult | None
    diagnosis: str | None
    step: float

    def failures(self) -> tuple[LeafResult, ...]:
        """The failing :class:`LeafResult` s, in leaf order."""
        return tuple(r for r in self.leaves if not r.passed)

    def render(self) -> str:
        """The report as a table, one line per leaf and oracle, then the verdict."""
        head = (f"gradient check: {'PASS' if self.passed else 'FAIL'} ({self.mode} mode, {self.dtype}, "
                f"{self.num_params} parameters; oracles: {', '.join(self.oracles)})")
        lines = [head]
        if self.leaves:
            width = max(len(r.path) for r in self.leaves)
            lines.append(f"  {'leaf':<{width}}  {'oracle':<8}  {'max abs err':>11}  {'rel err':>9}  "
                         f"{'worst':<10} {'expected':>11} {'got':>11} {'tolerance':>9}  result")
            for r in self.leaves:
                status = "pass" if r.passed else "FAIL"
                if r.skipped:
                    status += f" ({r.skipped} at kinks skipped)"
                if r.diagnosis and not r.passed:
                    status += f": {r.diagnosis}"
                lines.append(
                    f"  {r.path:<{width}}  {r.oracle:<8}  {_fmt(r.max_abs_err, '11.2e')}  "
                    f"{_fmt(r.rel_err, '9.1e')}  {str(list(r.worst_index)):<10} {_fmt(r.expected, '11.4e')} "
                    f"{_fmt(r.got, '11.4e')} {_fmt(r.tolerance, '9.1e')}  {status}")
        if self.probes:
            bad = [p for p in self.probes if not p.passed]
            skipped = sum(p.skipped for p in self.probes)
            lines.append(f"  probes: {len(self.probes) - len(bad)} of {len(self.probes)} pass"
                         + (f" ({skipped} skipped at kinks)" if skipped else ""))
            for p in bad[:6]:
                lines.append(f"    {p.path} probe {p.probe} ({p.oracle}): <G, u> = {p.got:.6e}, oracle "
                             f"{p.expected:.6e}, |diff| {p.abs_err:.2e} > tolerance {p.tolerance:.1e}")
        if self.taylor is not None:
            t = self.taylor
            rates = ", ".join("-" if r is None else f"{r:.2f}" for r in t.rates)
            verdict = {True: "pass", False: "FAIL", None: "inconclusive"}[t.passed]
            lines.append(f"  taylor remainder: rates {rates} along +d, -d (2 = right gradient, "
                         f"1 = wrong): {verdict}; {t.note}")
        if self.diagnosis:
            lines.append(f"  diagnosis: {self.diagnosis}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (non-finite floats as strings)."""
        return _jsonable({
            "passed": self.passed, "mode": self.mode, "dtype": self.dtype,
            "num_params": self.num_params, "oracles": list(self.oracles), "step": self.step,
            "diagnosis": self.diagnosis,
            "leaves": [r._asdict() for r in self.leaves],
            "probes": [p._asdict() for p in self.probes],
            "taylor": None if self.taylor is None else self.taylor._asdict(),
        })

    def raise_if_failed(self) -> None:
        """Raise :class:`GradientCheckError` (an AssertionError) with the rendered report on failure."""
        if not self.passed:
            raise GradientCheckError(self.render())


# ----------------------------------------------------------------------------------------------
# Flattening params to one vector with a static (hashable) layout


class LeafLayout(NamedTuple):
    """Where each leaf of a params pytree lives in the flat vector theta (static and hashable).

    Attributes:
      treedef: the params' tree structure.
      paths: each leaf's path, e.g. ``[0].W``.
      shapes: each leaf's shape.
      offsets: where each leaf starts in theta.
      size: P, the length of theta.
    """

    treedef: Any
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    size: int


def leaf_layout(params) -> tuple[LeafLayout, str]:
    """The :class:`LeafLayout` of a params pytree and its one floating dtype.

    Raises:
      ValueError: params has no leaves.
      TypeError: a leaf is not floating, or the leaves have different dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from fnnjax._gradcheck import leaf_layout
      >>> layout, dtype = leaf_layout({"b": jnp.zeros(2), "w": jnp.zeros((2, 3))})
      >>> layout.paths, layout.offsets, layout.size, dtype
      (("['b']", "['w']"), (0, 2), 8, 'float32')
    """
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not leaves_with_path:
        raise ValueError("params has no array leaves; pass the pytree of parameters f differentiates")
    paths, shapes, offsets, dtype, first = [], [], [], None, None
    offset = 0
    for path, leaf in leaves_with_path:
        name = jax.tree_util.keystr(path) or "params"
        dt = jnp.result_type(leaf)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"params leaf {name} has dtype {dt}; check_gradients needs floating parameters")
        if dtype is None:
            dtype, first = dt, name
        elif dt != dtype:
            raise TypeError(f"params leaf {name} has dtype {dt} but {first} has {dtype}; give every "
                            f"parameter one dtype (jax.tree.map(lambda p: p.astype('{dtype}'), params))")
        shape = tuple(jnp.shape(leaf))
        paths.append(name)
        shapes.append(shape)
        offsets.append(offset)
        offset += math.prod(shape)
    return LeafLayout(treedef, tuple(paths), tuple(shapes), tuple(offsets), offset), str(dtype)


def unflatten_params(theta, layout: LeafLayout):
    """A flat ``(P,)`` vector (leaves raveled in tree order) back to the params pytree (traceable)."""
    leaves = [jnp.reshape(theta[o:o + math.prod(s)], s) for o, s in zip(layout.offsets, layout.shapes)]
    return jax.tree_util.tree_unflatten(layout.treedef, leaves)


def leaf_slices(layout: LeafLayout) -> list[slice]:
    """Each leaf's slice of the flat vector theta."""
    return [slice(o, o + math.prod(s)) for o, s in zip(layout.offsets, layout.shapes)]


# ----------------------------------------------------------------------------------------------
# Binding *args: arrays are traced, everything else is static (hashable) under jit


class _Static(NamedTuple):
    treedef: Any
    values: tuple  # (index, value) for the static leaves


def _split_args(args: tuple) -> tuple[_Static, tuple]:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    static, dynamic = [], []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, (jax.Array, np.ndarray)):
            dynamic.append(leaf)
        else:
            try:
                hash(leaf)
            except TypeError:
                raise TypeError(f"argument leaf {leaf!r} of type {type(leaf).__name__} is neither an array "
                                "nor hashable; pass arrays, numbers, strings or hashable objects") from None
            static.append((i, leaf))
    return _Static(treedef, tuple(static)), tuple(dynamic)


def _merge_args(static: _Static, dynamic: tuple) -> tuple:
    n = static.treedef.num_leaves
    fixed = dict(static.values)
    it = iter(dynamic)
    leaves = [fixed[i] if i in fixed else next(it) for i in range(n)]
    return jax.tree_util.tree_unflatten(static.treedef, leaves)


def _flat_fn(f, layout: LeafLayout, static: _Static, dynamic: tuple) -> Callable[[jax.Array], jax.Array]:
    args = _merge_args(static, dynamic)
    return lambda theta: f(unflatten_params(theta, layout), *args)


# ----------------------------------------------------------------------------------------------
# The oracles, compiled once per (f, layout, static arguments)


VMAP_LIMIT = 512
"""Up to this many parameters every evaluation point is built on the host and goes through one
vmapped value-and-grad (one small program to compile); beyond, the stencil is evaluated inside the
program in chunks of 64 coordinates."""


_VMAP_ELEMENTS = 2 ** 22
"""Fast mode vmaps over all its evaluation points while points x P stays below this (memory)."""


class OraclePlan(NamedTuple):
    """Where the full check evaluates f, built on the host (:func:`plan_oracles`).

    Attributes:
      theta: the point, ``(P,)``, in the parameters' dtype.
      steps: the signed steps actually taken (after rounding) ``+h, -h, +2h, -2h``, ``(4, P)``.
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
    """

    f0: Any
    grad: Any
    stencil: Any
    taylor: Any


def plan_oracles(theta, h, d, *, stencil: bool = True) -> OraclePlan:
    """The stencil and Taylor points for ``theta`` with base steps ``h`` and Taylor direction ``d``.

    The steps are rounded so that they are the ones actually taken: ``(theta + h) - theta`` is exact.

    Args:
      theta: the flat point, ``(P,)`` (numpy or jax array of the parameters' dtype).
      h: the step per coordinate, ``(P,)``.
      d: the Taylor direction, ``(P,)``.
      stencil: False leaves the finite-difference stencil out (``steps`` has no columns).

    Returns:
      An :class:`OraclePlan`.

    Example:
      >>> import numpy as np
      >>> from fnnjax._gradcheck import plan_oracles
      >>> plan = plan_oracles(np.zeros(3), np.full(3, 1e-3), np.ones(3))
      >>> plan.steps.shape, plan.points.shape  # 1 + 4P + 2K points
      ((4, 3), (61, 3))
    """
    theta = np.asarray(theta)
    dtype = theta.dtype
    h, d = np.asarray(h, dtype), np.asarray(d, dtype)
    if not stencil:
        h = h[:0]
    steps = np.stack([(theta[: h.size] + h) - theta[: h.size], (theta[: h.size] - h) - theta[: h.size],
                      (theta[: h.size] + 2 * h) - theta[: h.size], (theta[: h.size] - 2 * h) - theta[: h.size]])
    signed = np.concatenate([TAYLOR_START * 0.5 ** np.arange(TAYLOR_STEPS),
                             -TAYLOR_START * 0.5 ** np.arange(TAYLOR_STEPS)]).astype(dtype)
    moved = theta[None, :] + signed[:, None] * d[None, :]
    n, m = theta.shape[0], steps.shape[1]
    points = None
    if n <= VMAP_LIMIT:
        shifted = np.repeat(theta[None, None, :], 4, axis=0).repeat(m, axis=1)  # (4, m, P)
        idx = np.arange(m)
        shifted[:, idx, idx] = theta[None, :m] + steps
        points = np.concatenate([theta[None, :], shifted.reshape(4 * m, n), moved])
    return OraclePlan(theta, steps, moved - theta[None, :], points)


def evaluate_oracles(F: Callable[[jax.Array], jax.Array], plan: OraclePlan) -> FullOracles:
    """Evaluate f and jax.grad f where :func:`plan_oracles` says (traceable: call it under jit).

    Costs ``4P + 2K + 1`` evaluations of F, vmapped: through one ``vmap(value_and_grad(F))`` when
    the plan has its points, else one value-and-grad and the stencil in chunks of 64 coordinates.
    """
    m = plan.steps.shape[1]
    k = plan.taylor_steps.shape[0]
    if plan.points is not None:
        values, grads = jax.vmap(jax.value_and_grad(F))(jnp.asarray(plan.points))
        return FullOracles(values[0], grads[0], values[1:1 + 4 * m].reshape(4, m).T, values[1 + 4 * m:1 + 4 * m + k])
    theta = jnp.asarray(plan.theta)
    f0, autodiff = jax.value_and_grad(F)(theta)
    steps = jnp.asarray(plan.steps)

    def column(i):
        return jax.vmap(lambda s: F(theta.at[i].add(s)))(steps[:, i])

    stencil = (jax.lax.map(column, jnp.arange(m), batch_size=64) if m
               else jnp.zeros((0, 4), theta.dtype))
    taylor = jax.vmap(F)(theta[None, :] + jnp.asarray(plan.taylor_steps))
    return FullOracles(f0, autodiff, stencil, taylor)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _full_oracles(f, layout, static, dynamic, plan) -> FullOracles:
    return evaluate_oracles(_flat_fn(f, layout, static, dynamic), plan)


def _taylor_steps(dtype) -> jax.Array:
    return TAYLOR_START * 0.5 ** jnp.arange(TAYLOR_STEPS, dtype=dtype)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _fast_oracles(f, layout, static, probes, theta, dynamic, key, base_h, d, grad):
    """Per-leaf Gaussian probes u: jvp, <G, u>, sum |G u|, |u|, and f along u and d.

    Every evaluation of f is ``f(theta + c v)`` for a coefficient c and a direction v (a probe or
    the Taylor direction d), done by one ``lax.map`` over (c, v) together with ``<G, actual step>``.
    """
    F = _flat_fn(f, layout, static, dynamic)
    slices = leaf_slices(layout)
    us, ts = [], []
    for k, sl in zip(jax.random.split(key, len(slices)), slices):
        u = jax.random.normal(k, (probes, sl.stop - sl.start), theta.dtype)
        us.append(jnp.zeros((probes, theta.shape[0]), theta.dtype).at[:, sl].set(u))
        rms = jnp.sqrt(jnp.mean(theta[sl] * theta[sl]))
        ts.append(jnp.full((probes,), base_h, theta.dtype) * jnp.maximum(1, rms))
    U, T = jnp.concatenate(us), jnp.concatenate(ts)
    n = U.shape[0]
    dirs = jnp.concatenate([U, d[None, :]])
    taylor = _taylor_steps(theta.dtype)
    coef = jnp.concatenate([jnp.zeros((1,), theta.dtype), T, -T, 2 * T, -2 * T, taylor, -taylor])
    which = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.tile(jnp.arange(n), 4),
                             jnp.full((2 * TAYLOR_STEPS,), n, jnp.int32)])

    def point(c_i):
        c, i = c_i
        moved = theta + c * dirs[i]
        return F(moved), jnp.dot(grad, moved - theta)

    small = coef.shape[0] * theta.shape[0] <= _VMAP_ELEMENTS  # one vmap; else chunks of 16 points
    values, lin = jax.vmap(point)((coef, which)) if small else jax.lax.map(point, (coef, which), batch_size=16)

    def jvp_along(u):
        return jax.jvp(F, (theta,), (u,))[1]

    jvp = jax.vmap(jvp_along)(U) if small else jax.lax.map(jvp_along, U, batch_size=16)
    gu, gu_abs, unorm = U @ grad, jnp.abs(U) @ jnp.abs(grad), jnp.sqrt(jnp.sum(U * U, axis=1))
    stencil = values[1:1 + 4 * n].reshape(4, n).T
    steps_lin = lin[1:1 + 4 * n].reshape(4, n)
    lin_probe = jnp.stack([(steps_lin[0] - steps_lin[1]) / (2 * T), (steps_lin[2] - steps_lin[3]) / (4 * T)], axis=1)
    taylor_values = jnp.stack([values[1 + 4 * n:], lin[1 + 4 * n:]], axis=1)
    return values[0], jvp, gu, gu_abs, stencil, lin_probe, T, unorm, taylor_values


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _autodiff(f, layout, static, theta, dynamic):
    return jax.grad(_flat_fn(f, layout, static, dynamic))(theta)


# ----------------------------------------------------------------------------------------------
# Diagnosis


def fit_combination(got, basis: Sequence) -> tuple[np.ndarray, float]:
    """Least-squares coefficients c with ``got ~ sum_k c_k basis_k``, and the relative residual.

    Args:
      got: an array.
      basis: arrays of got's shape.

    Returns:
      ``(c, ||got - sum c_k basis_k|| / ||got||)`` (the residual is 0 for a zero ``got``).

    Example:
      >>> import numpy as np
      >>> from fnnjax._gradcheck import fit_combination
      >>> e = np.array([1.0, 2.0, 3.0])
      >>> c, res = fit_combination(2 * e, [e]); round(float(c[0]), 6), res < 1e-12
      (2.0, True)
    """
    g = np.asarray(got, np.float64).ravel()
    B = np.stack([np.asarray(b, np.float64).ravel() for b in basis], axis=1)
    coeffs = np.linalg.lstsq(B, g, rcond=None)[0]
    norm = np.linalg.norm(g)
    residual = float(np.linalg.norm(g - B @ coeffs) / norm) if norm > 0 else 0.0
    return coeffs, residual


def name_factor(c: float, labels: Sequence[tuple[float, str]] = (), rtol: float = 1e-3) -> str:
    """Name a constant factor: ``-1`` (sign flipped), ``2``, ``1/2``, ``7 = N, the batch size``.

    Args:
      c: the factor.
      labels: ``(value, words)`` pairs naming special values, e.g. ``(7, "N, the batch size")``;
        ``1/value`` is recognised too.
      rtol: how close c must be to a named value.

    Returns:
      A short phrase.

    Example:
      >>> from fnnjax._gradcheck import name_factor
      >>> name_factor(0.2, [(5, "N, the batch size")])
      '1/5 = 1/N, the batch size'
    """
    for value, words in labels:
        if abs(c - value) <= rtol * abs(value):
            return f"{value:g} = {words}"
        if value and abs(c - 1 / value) <= rtol / abs(value):
            return f"1/{value:g} = 1/{words}"
    for k in range(2, 11):
        if abs(c - k) <= rtol * k:
            return f"{k}"
        if abs(c - 1 / k) <= rtol / k:
            return f"1/{k}"
        if abs(c + k) <= rtol * k:
            return f"-{k}"
        if abs(c + 1 / k) <= rtol / k:
            return f"-1/{k}"
    return f"{c:.6g}"


def arrays_match(a, b, rtol: float) -> bool:
    """``max |a - b| <= rtol max(max |a|, max |b|)`` and a finite: a diagnosis may call a "b"."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale


def diagnose_leaf(expected, got, *, rtol: float = 1e-6, factors: Sequence[tuple[float, str]] = (),
                  suspects: Sequence[tuple[str, Any]] = ()) -> str | None:
    """What a wrong gradient leaf looks like next to the right one, in words (None if no pattern).

    Tried in order: NaN/inf; transposed (``got.T == expected``, for any shape); named suspects
    (``got == suspect``); zero; a constant factor ``got = c * expected`` (``c = -1``: sign flipped;
    c named with ``factors``); transposed up to a factor.

    Args:
      expected: the right gradient of the leaf.
      got: the gradient under test (the same shape, or the transposed one).
      rtol: how close (relative to the larger of the two) arrays must be to count as equal.
      factors: ``(value, words)`` pairs for :func:`name_factor`.
      suspects: ``(description, array)`` pairs: known wrong gradients to recognise.

    Returns:
      A phrase such as ``"off by a constant factor 2 (got = 2 x expected)"``, or None.

    Example:
      >>> import numpy as np
      >>> from fnnjax._gradcheck import diagnose_leaf
      >>> e = np.arange(6.0).reshape(2, 3) + 1
      >>> diagnose_leaf(e, e.T)
      'transposed: got has shape (3, 2) and equals expected.T (shape (2, 3) expected)'
      >>> diagnose_leaf(e, -e)
      'sign flipped (got = -expected)'
    """
    e = np.asarray(expected, np.float64)
    g = np.asarray(got, np.float64)
    if not np.all(np.isfinite(g)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0])
        return f"contains non-finite values (first at {list(bad)}: {g[bad]})"
    if g.shape != e.shape:
        if g.ndim == 2 and g.shape == e.shape[::-1]:
            if arrays_match(g.T, e, rtol):
                return f"transposed: got has shape {g.shape} and equals expected.T (shape {e.shape} expected)"
            c, res = fit_combination(g.T, [e])
            if res <= rtol:
                return (f"transposed (got has shape {g.shape}, expected {e.shape}) and off by a factor "
                        f"{name_factor(float(c[0]), factors)}")
            return f"has shape {g.shape}, the transpose of the expected {e.shape}, and different values"
        return f"has shape {g.shape} but the expected gradient has shape {e.shape}"
    for words, s in suspects:
        s = np.asarray(s, np.float64)
        if s.shape == e.shape and not arrays_match(s, e, rtol) and arrays_match(g, s, rtol):
            return words
    if not np.any(e):
        return "nonzero where the expected gradient is exactly zero"
    if float(np.max(np.abs(g), initial=0.0)) <= rtol * float(np.max(np.abs(e))):
        return "zero where the expected gradient is not (nothing computed for this parameter?)"
    c, res = fit_combination(g, [e])
    if res <= rtol:
        c = float(c[0])
        if abs(c + 1) <= 1e-3:
            return "sign flipped (got = -expected)"
        return f"off by a constant factor {name_factor(c, factors)} (got = {c:.6g} x expected)"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and arrays_match(g.T, e, rtol):
        return "transposed: got equals expected.T"
    return None


def _group(path: str) -> str:
    """The first key of a leaf path: ``[1]`` for ``[1].W``."""
    if path.startswith("[") and "]" in path:
        return path[: path.index("]") + 1]
    return path


def _tree_diagnosis(failing: Sequence[LeafResult], paths: Sequence[str]) -> str | None:
    """A statement over the whole tree, when it adds to the leaves' own diagnoses.

    ``every leaf is wrong the same way: ...`` or ``wrong only in [1] ([1].W); every other leaf is
    right``; otherwise the list of failing leaves when there are several, else None.
    """
    if not failing:
        return None
    names = sorted({r.path for r in failing}, key=paths.index)
    diags = [r.diagnosis for r in failing]
    if len(paths) > 1 and len(names) == len(paths) and diags[0] and len(set(diags)) == 1:
        return f"every leaf is wrong the same way: {diags[0]}"
    groups = {_group(p) for p in names}
    if len(groups) == 1 and len({_group(p) for p in paths}) > 1:
        return f"wrong only in {groups.pop()} ({', '.join(names)}); every other leaf is right"
    if len(names) > 1:
        return f"wrong in {', '.join(names)}"
    return None


# ----------------------------------------------------------------------------------------------
# Comparing one leaf


def _compare(path, oracle, expected, got, tol, skip=None, shape=None) -> LeafResult:
    e, g, t = (np.asarray(a, np.float64) for a in (expected, got, tol))
    shape = tuple(shape if shape is not None else e.shape)
    skip = np.zeros(e.shape, bool) if skip is None else np.asarray(skip, bool)
    err = np.abs(g - e)
    ratio = np.where(skip, 0.0, np.where(np.isfinite(err), err / np.maximum(t, np.finfo(np.float64).tiny),
                                         np.inf))
    flat = int(np.argmax(ratio)) if ratio.size else 0
    worst = tuple(int(i) for i in np.unravel_index(flat, e.shape)) if e.size else ()
    judged = ~skip
    max_err = float(np.max(np.where(judged, err, 0.0), initial=0.0))
    if not np.all(np.isfinite(np.where(judged, err, 0.0))):
        max_err = float("inf")
    scale = float(np.max(np.abs(e), initial=0.0))
    rel = max_err / scale if scale > 0 else (0.0 if max_err == 0 else float("inf"))
    passed = bool(np.all(ratio <= 1.0))
    return LeafResult(path, oracle, passed, shape, max_err, rel, worst,
                      float(e[worst]) if e.size else 0.0, float(g[worst]) if e.size else 0.0,
                      float(t[worst]) if e.size else 0.0, int(np.sum(skip)))


def _autodiff_tolerance(A, slices, rho, eps) -> np.ndarray:
    """``rho (|A_i| + max_leaf |A|)``, at least ``rho eps max |A|`` (leaves that are exactly zero)."""
    tol = np.empty_like(A)
    for sl in slices:
        tol[sl] = rho * (np.abs(A[sl]) + np.max(np.abs(A[sl]), initial=0.0))
    return np.maximum(tol, rho * eps * np.max(np.abs(A), initial=0.0))


class _Stencil(NamedTuple):
    estimate: np.ndarray  # Richardson-extrapolated central difference (4 D(h) - D(2h)) / 3
    tolerance: np.ndarray  # twice its estimated error: truncation |D(h) - D(2h)| / 3 + rounding 1.5 delta / h
    kink: np.ndarray  # slope change not explained by a smooth f (see _stencil_estimates)
    noise: np.ndarray  # the rounding level of ``kink``
    right: np.ndarray  # one-sided second-order derivative estimates
    left: np.ndarray
    one_sided_tol: np.ndarray


def _stencil_estimates(f0: float, values: np.ndarray, steps: np.ndarray, eps: float) -> _Stencil:
    """Central differences at h and 2h, Richardson extrapolation, error bounds and the kink measure.

    With ``S1 = f(h) - 2 f0 + f(-h)``, ``S2 = f(2h) - 2 f0 + f(-2h)`` and the one-sided second
    differences ``S+ = f(2h) - 2 f(h) + f0``, ``S- = f0 - 2 f(-h) + f(-2h)``, a smooth f has
    ``S2 - 4 S1 = O(h^4)`` and ``S+ - S- = O(h^3)``, while a kink of slope jump J at distance p < 2h
    makes ``max(|S2 - 4 S1|, |S+ - S-|) / h >= J / 2`` for every p, at least the error the kink
    causes in the extrapolated central difference.
    """
    fp1, fm1, fp2, fm2 = values.T
    hp1, hm1, hp2, hm2 = steps[0], -steps[1], steps[2], -steps[3]  # steps are signed: +h, -h, +2h, -2h
    d1 = (fp1 - fm1) / (hp1 + hm1)
    d2 = (fp2 - fm2) / (hp2 + hm2)
    estimate = (4 * d1 - d2) / 3
    scale = np.maximum(np.abs(values).max(axis=1), abs(f0))
    delta = ROUNDING_FACTOR * eps * scale
    h = 0.5 * (hp1 + hm1)
    tolerance = 2 * (np.abs(d1 - d2) / 3 + 1.5 * delta / h)
    s1, s2 = fp1 - 2 * f0 + fm1, fp2 - 2 * f0 + fm2
    splus, sminus = fp2 - 2 * fp1 + f0, f0 - 2 * fm1 + fm2
    kink = np.maximum(np.abs(s2 - 4 * s1), np.abs(splus - sminus)) / h
    right = (4 * fp1 - fp2 - 3 * f0) / (2 * h)
    left = (3 * f0 - 4 * fm1 + fm2) / (2 * h)
    one_sided_tol = 2 * (4 * delta / h) + tolerance
    return _Stencil(estimate, tolerance, kink, 20 * delta / h, right, left, one_sided_tol)


def central_differences(values: FullOracles, plan: OraclePlan, dtype) -> np.ndarray:
    """The Richardson-extrapolated central differences ``(4 D(h) - D(2h)) / 3`` of every coordinate."""
    return _stencil_estimates(float(values.f0), np.asarray(values.stencil, np.float64),
                              np.asarray(plan.steps, np.float64), _eps(dtype)).estimate


def _nonsmooth(st: _Stencil) -> np.ndarray:
    """Coordinates whose stencil shows a kink well above the smooth truncation and rounding levels."""
    return st.kink > 4 * st.tolerance + st.noise


# ----------------------------------------------------------------------------------------------
# The Taylor-remainder test


def _local_rates(r: np.ndarray, floor: np.ndarray) -> list[float]:
    """``log2(r(e) / r(e/2))`` for consecutive steps whose remainders both lie above the rounding floor."""
    valid = (r > floor) & np.isfinite(r)
    return [math.log2(r[k] / r[k + 1]) for k in range(len(r) - 1) if valid[k] and valid[k + 1]]


def _rate_verdict(rates: list[float]) -> tuple[float | None, bool | None]:
    """The observed rate (median of the last three local rates) and what it says.

    A right gradient gives 2, a wrong one 1. Failing needs the last three local rates to agree on
    about 1 (within 0.3): erratic rates (a kink crossed at the larger steps, too few points above
    the rounding floor) are inconclusive rather than evidence against the gradient.
    """
    if len(rates) < 3:
        return None, None
    last = rates[-3:]
    rate = float(np.median(last))
    if rate >= 1.5:
        return rate, True
    if all(abs(x - 1) <= 0.3 for x in last):
        return rate, False
    return rate, None


def _taylor_result(f0: float, taylor: np.ndarray, eps: float, nonsmooth: bool) -> TaylorResult:
    k = TAYLOR_STEPS
    steps = TAYLOR_START * 0.5 ** np.arange(k)
    fvals, lin = taylor[:, 0], taylor[:, 1]
    r = np.abs(fvals - f0 - lin)
    floor = ROUNDING_FACTOR * eps * (abs(f0) + np.abs(fvals) + np.abs(lin))
    verdicts = [_rate_verdict(_local_rates(r[:k], floor[:k])), _rate_verdict(_local_rates(r[k:], floor[k:]))]
    rates = tuple(v[0] for v in verdicts)
    said = [v[1] for v in verdicts]
    if True in said:
        return TaylorResult(rates, True, tuple(steps), tuple(r[:k]), "remainder shrinks like e^2")
    if said == [False, False]:
        if nonsmooth:
            return TaylorResult(rates, None, tuple(steps), tuple(r[:k]),
                                "f has kinks here, so a rate of 1 does not prove the gradient wrong")
        return TaylorResult(rates, False, tuple(steps), tuple(r[:k]),
                            "remainder shrinks only like e: the gradient is wrong along d")
    return TaylorResult(rates, None, tuple(steps), tuple(r[:k]),
                        "the local rates are erratic or too few remainders lie above the rounding floor")


# ----------------------------------------------------------------------------------------------
# The public call


def _check_structure(params, grads, layout: LeafLayout, dtype: str) -> list[np.ndarray]:
    got_def = jax.tree_util.tree_structure(grads)
    if got_def != layout.treedef:
        raise TypeError(
            "grad_f returned a pytree whose structure differs from params; return one gradient "
            f"leaf per parameter, in params' structure (expected treedef: {layout.treedef}; "
            f"got treedef: {got_def})")
    out = []
    for path, shape, leaf in zip(layout.paths, layout.shapes, jax.tree_util.tree_leaves(grads)):
        gshape = tuple(jnp.shape(leaf))
        gdt = jnp.result_type(leaf)
        if gshape != shape and not (len(shape) == 2 and gshape == shape[::-1]):
            raise ValueError(f"grad_f's leaf {path} has shape {gshape} but params{path[0:0]} leaf {path} "
                             f"has shape {shape}; a gradient has the shape of its parameter")
        if gdt != jnp.dtype(dtype):
            raise TypeError(f"grad_f's leaf {path} has dtype {gdt} but the parameters are {dtype}; "
                            f"compute the gradient in the parameters' dtype")
        out.append(np.asarray(leaf, np.float64))
    return out


def _check_options(oracles, rtol, atol, probes, step) -> tuple[str, ...]:
    if isinstance(oracles, str):
        oracles = (oracles,)
    oracles = tuple(oracles)
    unknown = [o for o in oracles if o not in ORACLES]
    if unknown or not oracles:
        raise ValueError(f"oracles must be a non-empty subset of {ORACLES}, got {oracles!r}")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None (derived from the dtype), got {v!r}")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be a positive integer (Gaussian probes per leaf), got {probes!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0):
        raise ValueError(f"step must be a positive number or None (eps^(1/3) of the dtype), got {step!r}")
    return oracles


def _user_tol(expected, atol, rtol, default):
    if atol is None and rtol is None:
        return default
    return (atol or 0.0) + (rtol or 0.0) * np.abs(expected)


def check_gradients(
    f: Callable[..., Any],
    grad_f: Callable[..., Any],
    params: Any,
    *args: Any,
    fast: bool = False,
    key: jax.Array | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    oracles: Sequence[str] = ORACLES,
    step: float | None = None,
    probes: int = 4,
    factors: Sequence[tuple[float, str]] = (),
    suspects: Mapping[str, Any] | None = None,
) -> GradCheckReport:
    """Check a hand-written gradient against jax.grad, finite differences and the Taylor test.

    ``grad_f(params, *args)`` must return the gradient of the scalar ``f(params, *args)`` with
    respect to ``params`` (any pytree of floating arrays of one dtype), in params' structure. Each
    leaf is judged on its own by each oracle (see the module docstring for the tolerances: F19's
    error bounds with the dtype's eps); failing leaves get a diagnosis (transposed, a constant
    factor such as 2 or N, sign flipped, zero, or one of ``suspects``) and the tree a verdict
    (e.g. wrong only in ``[1]``).

    Args:
      f: the scalar function, traceable by JAX (jit/grad/vmap); array arguments in ``args`` are
        traced, other arguments (names, MLP descriptions, numbers) are treated as static.
      grad_f: the gradient under test, called once with the same arguments (under ``jax.jit`` when
        it can be traced, else eagerly).
      params: the point, a pytree of floating arrays of one dtype.
      *args: further arguments of f and grad_f.
      fast: compare random projections (``probes`` Gaussian probes per leaf: a jvp and central
        differences along u against ``<G, u>``) instead of every element; for large nets.
      key: PRNG key for the probes and the Taylor direction (default ``jax.random.key(0)``).
      rtol: with ``atol``, replaces the derived tolerances: ``|G - E| <= atol + rtol |E|`` per element
        (in fast mode ``atol ||u|| + rtol sum |G_i u_i|`` per probe).
      atol: see ``rtol``.
      oracles: a subset of ``("autodiff", "fd", "taylor")``.
      step: the finite-difference base step, used as is (default ``eps^(1/3) max(1, |theta_i|)``).
      probes: Gaussian probes per leaf in fast mode.
      factors: ``(value, words)`` pairs naming factors in diagnoses, e.g. ``[(N, "N, the batch size")]``.
      suspects: ``{description: wrong_gradient_pytree}``: known mistakes to recognise by name.

    Returns:
      A :class:`GradCheckReport` with ``passed``, per-leaf results, ``render()``, ``to_dict()`` and
      ``raise_if_failed()``.

    Raises:
      TypeError: grad_f's pytree structure differs from params' (both treedefs shown), a leaf's
        dtype differs, or f does not return a scalar.
      ValueError: a leaf's shape is neither the parameter's nor (for matrices) its transpose, bad
        options, or more than 50,000 parameters for the full finite-difference check.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> def f(p, x):
      ...     return jnp.sum(jnp.tanh(x @ p["w"]) ** 2)
      >>> def grad_f(p, x):  # by hand: d/dw sum tanh(xw)^2 = x^T (2 tanh (1 - tanh^2))
      ...     t = jnp.tanh(x @ p["w"])
      ...     return {"w": x.T @ (2 * t * (1 - t * t))}
      >>> x = jax.random.normal(jax.random.key(1), (5, 3))
      >>> report = fnnjax.check_gradients(f, grad_f, {"w": jnp.ones((3, 2))}, x)
      >>> report.passed
      True
      >>> fnnjax.check_gradients(f, lambda p, x: {"w": 2 * grad_f(p, x)["w"]}, {"w": jnp.ones((3, 2))},
      ...                        x).diagnosis
      "['w']: off by a constant factor 2 (got = 2 x expected)"
    """
    oracles = _check_options(oracles, rtol, atol, probes, step)
    layout, dtype = leaf_layout(params)
    eps = _eps(dtype)
    static, dynamic = _split_args(args)
    out = jax.eval_shape(lambda p: f(p, *args), params)
    if getattr(out, "shape", None) != ():
        raise TypeError(f"f must return a scalar, but f(params, *args) has shape {getattr(out, 'shape', out)}")
    got_leaves = _check_structure(params, _call_gradient(grad_f, params, args, static, dynamic), layout, dtype)
    transposed = [g.shape != s for g, s in zip(got_leaves, layout.shapes)]
    got_flat = np.concatenate([(g.T if t else g).ravel() for g, t in zip(got_leaves, transposed)])
    theta = np.concatenate([np.asarray(leaf).astype(dtype).ravel() for leaf in jax.tree_util.tree_leaves(params)])
    key = jax.random.key(0) if key is None else key
    z = _numpy_rng(key).standard_normal(theta.shape[0])
    d = (z / np.linalg.norm(z) * max(1.0, float(np.linalg.norm(theta.astype(np.float64))))).astype(dtype)
    grad_dev = np.where(np.isfinite(got_flat), got_flat, 0.0).astype(dtype)
    base_h = float(step) if step is not None else eps ** (1 / 3)
    factors = tuple(factors)
    suspect_items = _suspect_leaves(suspects, layout, dtype)
    if fast:
        return _fast_check(f, layout, static, dynamic, theta, got_flat, got_leaves, transposed, grad_dev,
                           key, base_h, d, oracles, probes, dtype, rtol, atol, factors, suspect_items)
    if "fd" in oracles and layout.size > FULL_FD_LIMIT:
        raise ValueError(
            f"params have {layout.size} scalars: a full finite-difference check costs 4P + 1 = "
            f"{4 * layout.size + 1} evaluations of f; use fast=True (random probes) or leave 'fd' out "
            "of oracles")
    return _full_check(f, layout, static, dynamic, theta, got_leaves, step, base_h, d, oracles, dtype, rtol, atol,
                       factors, suspect_items)


def _numpy_rng(key) -> np.random.Generator:
    """A numpy generator seeded by a JAX key (new-style or raw uint32): host-side draws, no compile."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data).astype(np.uint32).ravel().tolist())


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_traced(grad_f, static, params, dynamic):
    return grad_f(params, *_merge_args(static, dynamic))


def _call_gradient(grad_f, params, args, static, dynamic):
    """``grad_f(params, *args)``, traced by jit when it can be (one compile), else run eagerly."""
    try:
        return _call_traced(grad_f, static, params, dynamic)
    except Exception:  # not traceable (numpy conversions, Python branches on values) or a real error
        return grad_f(params, *args)


def _suspect_leaves(suspects, layout, dtype) -> list[tuple[str, list[np.ndarray]]]:
    items = []
    for words, tree in (suspects or {}).items():
        if jax.tree_util.tree_structure(tree) != layout.treedef:
            raise TypeError(f"suspect {words!r} has treedef {jax.tree_util.tree_structure(tree)} but "
                            f"params have {layout.treedef}")
        items.append((words, [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]))
    return items


def _leaf_diagnoses(results, expected_flat, got_leaves, layout, dtype, factors, suspects, oracle):
    """Attach :func:`diagnose_leaf` to the failing results of one oracle."""
    rtol = match_rtol(dtype)
    slices = leaf_slices(layout)
    out = []
    for r in results:
        if r.passed or r.oracle != oracle:
            out.append(r)
            continue
        i = layout.paths.index(r.path)
        expected = expected_flat[slices[i]].reshape(layout.shapes[i])
        leaf_suspects = [(w, leaves[i]) for w, leaves in suspects]
        diag = diagnose_leaf(expected, got_leaves[i], rtol=rtol, factors=factors, suspects=leaf_suspects)
        out.append(r._replace(diagnosis=diag))
    return out


def _full_check(f, layout, static, dynamic, theta, got_leaves, step, base_h, d, oracles, dtype, rtol, atol,
                factors, suspects) -> GradCheckReport:
    theta = np.asarray(theta)
    h = base_h * np.maximum(1, np.abs(theta)) if step is None else np.full_like(theta, base_h)
    plan = plan_oracles(theta, h, np.asarray(d), stencil="fd" in oracles)
    values = _full_oracles(f, layout, static, dynamic, plan)
    return analyze_full(values, plan, got_leaves, layout, dtype, oracles=oracles, rtol=rtol, atol=atol,
                        factors=factors, suspects=suspects, step=base_h)


def analyze_full(values: FullOracles, plan: OraclePlan, got_leaves: Sequence[np.ndarray], layout: LeafLayout,
                 dtype: str, *, oracles: Sequence[str] = ORACLES, rtol=None, atol=None, factors=(),
                 suspects=(), step: float | None = None) -> GradCheckReport:
    """Judge a gradient against evaluated oracles (the host half of the full check).

    Args:
      values: what :func:`evaluate_oracles` returned for ``plan``.
      plan: the :class:`OraclePlan`.
      got_leaves: the gradient under test, one float64 array per leaf (a matrix leaf may have the
        transposed shape: it then fails with the diagnosis ``transposed``).
      layout: the params' :func:`leaf_layout`.
      dtype: the params' dtype (sets the tolerances).
      oracles, rtol, atol, factors, suspects: as for :func:`check_gradients`.
      step: the base finite-difference step, for the report.

    Returns:
      A :class:`GradCheckReport`.
    """
    eps = _eps(dtype)
    oracles = tuple(oracles)
    transposed = [g.shape != s for g, s in zip(got_leaves, layout.shapes)]
    G = np.concatenate([(g.T if t else g).ravel() for g, t in zip(got_leaves, transposed)])
    f0 = float(values.f0)
    A = np.asarray(values.grad, np.float64)
    slices = leaf_slices(layout)
    ad_tol = _user_tol(A, atol, rtol, _autodiff_tolerance(A, slices, autodiff_rtol(dtype), eps))
    ad_skip = np.zeros(G.shape, bool)
    checks = [("autodiff", A, ad_tol, ad_skip)] if "autodiff" in oracles else []
    nonsmooth = False
    st = None
    if plan.steps.shape[1] == G.shape[0]:
        st = _stencil_estimates(f0, np.asarray(values.stencil, np.float64), np.asarray(plan.steps, np.float64), eps)
        kinked = _nonsmooth(st)
        nonsmooth = bool(np.any(kinked))
        # autodiff: where the stencil straddles a slope jump, either one-sided derivative is right
        jump = kinked & (np.abs(st.right - st.left) > 2 * st.one_sided_tol)
        one_sided = np.minimum(np.abs(G - st.right), np.abs(G - st.left)) <= st.one_sided_tol
        ad_skip |= (np.abs(G - A) > ad_tol) & jump & one_sided
        if "fd" in oracles:
            fd_tol = _user_tol(st.estimate, atol, rtol, st.tolerance)
            disagreement = np.abs(G - st.estimate)
            fd_skip = (disagreement > fd_tol) & (disagreement <= st.kink + st.tolerance)  # explained by a kink
            checks.append(("fd", st.estimate, fd_tol, fd_skip))
    results = []
    for i, sl in enumerate(slices):
        for oracle, expected, tol, skip in checks:
            r = _compare(layout.paths[i], oracle, *(a[sl].reshape(layout.shapes[i]) for a in (expected, G, tol, skip)))
            results.append(r._replace(passed=r.passed and not transposed[i], shape=got_leaves[i].shape))
    if checks:
        primary, reference = checks[0][0], checks[0][1]
        results = _leaf_diagnoses(results, reference, got_leaves, layout, dtype, factors, suspects, primary)
    tay = None
    if "taylor" in oracles:
        lin = np.asarray(plan.taylor_steps, np.float64) @ np.where(np.isfinite(G), G, 0.0)
        taylor = np.stack([np.asarray(values.taylor, np.float64), lin], axis=1)
        tay = _taylor_result(f0, taylor, eps, nonsmooth)
    return _report("full", dtype, layout, oracles, results, (), tay, step if step is not None else eps ** (1 / 3))


def _report(mode, dtype, layout, oracles, results, probes, taylor, step) -> GradCheckReport:
    failing = [r for r in results if not r.passed]
    bad_probes = [p for p in probes if not p.passed]
    taylor_failed = taylor is not None and taylor.passed is False
    passed = not failing and not bad_probes and not taylor_failed
    checked = {r.oracle for r in results}
    diagnosis = None if passed else _overall_diagnosis(failing, bad_probes, taylor_failed, layout,
                                                       "autodiff" in checked, "fd" in checked)
    return GradCheckReport(passed, mode, dtype, layout.size, oracles, tuple(results), tuple(probes), taylor,
                           diagnosis, step)


def _overall_diagnosis(failing, bad_probes, taylor_failed, layout, ad_checked: bool, fd_checked: bool) -> str:
    ad = [r for r in failing if r.oracle == "autodiff"]
    fd = [r for r in failing if r.oracle == "fd"]
    order = layout.paths.index
    if ad and fd_checked and not fd:
        return (f"your gradient agrees with central differences but not with jax.grad(f) in "
                f"{', '.join(sorted({r.path for r in ad}, key=order))}: f's autodiff disagrees with f's own "
                "values there (a wrong custom_jvp/custom_vjp, a stop_gradient, a non-differentiable operation?)")
    primary = ad or (fd if not ad_checked else [])
    if primary:
        first = primary[0]
        tree = _tree_diagnosis(primary, layout.paths)
        if tree and tree.startswith("every leaf"):
            return tree
        head = f"{first.path}: {first.diagnosis or 'wrong values, no simple pattern'}"
        return f"{head}; {tree}" if tree else head
    if fd:
        return (f"your gradient agrees with jax.grad(f) but not with central differences in "
                f"{', '.join(sorted({r.path for r in fd}, key=order))}: f's autodiff disagrees with f's own "
                "values there (a wrong custom_jvp/custom_vjp, a stop_gradient, a non-differentiable operation?) "
                "or f is noisy; the fd tolerance shown is the estimated error of the differences")
    if bad_probes:
        return (f"probes fail on {', '.join(sorted({p.path for p in bad_probes}, key=order))} but jax.grad "
                "agrees elementwise: f's forward-mode or finite-difference derivatives disagree with its "
                "reverse mode")
    if taylor_failed:
        return "the Taylor remainder shrinks only like e: the gradient is wrong along a random direction"
    return "failed"


def _fast_check(f, layout, static, dynamic, theta, got_flat, got_leaves, transposed, grad_dev, key,
                base_h, d, oracles, probes, dtype, rtol, atol, factors, suspects) -> GradCheckReport:
    eps = _eps(dtype)
    rho = autodiff_rtol(dtype)
    f0, jvp, gu, gu_abs, vals, lin, T, unorm, taylor = (
        np.asarray(a, np.float64) if i else float(a)
        for i, a in enumerate(_fast_oracles(f, layout, static, probes, theta, dynamic, key, base_h, d,
                                            grad_dev)))
    st = _stencil_estimates(f0, vals, np.stack([T, -T, 2 * T, -2 * T]), eps)
    lin_ext = (4 * lin[:, 0] - lin[:, 1]) / 3
    results_p = []
    nonsmooth = False
    for j, path in enumerate(layout.paths):
        for k in range(probes):
            n = j * probes + k
            if "autodiff" in oracles:
                tol = (rho * (gu_abs[n] + abs(jvp[n])) if atol is None and rtol is None
                       else (atol or 0.0) * unorm[n] + (rtol or 0.0) * gu_abs[n])
                err = abs(gu[n] - jvp[n])
                results_p.append(ProbeResult(path, k, "jvp", float(jvp[n]), float(gu[n]), float(err),
                                             float(tol), bool(err <= tol)))
            if "fd" in oracles:
                tol = (st.tolerance[n] if atol is None and rtol is None
                       else (atol or 0.0) * unorm[n] + (rtol or 0.0) * gu_abs[n])
                err = abs(lin_ext[n] - st.estimate[n])
                kinked = bool(err <= st.kink[n] + st.tolerance[n])
                nonsmooth |= bool(_nonsmooth(st)[n])
                results_p.append(ProbeResult(path, k, "fd", float(st.estimate[n]), float(lin_ext[n]),
                                             float(err), float(tol), bool(err <= tol or kinked),
                                             kinked and err > tol))
    failing_paths = [p for p in layout.paths if any(r.path == p and not r.passed for r in results_p)]
    failing_paths += [p for t, p in zip(transposed, layout.paths) if t and p not in failing_paths]
    results = []
    if failing_paths:  # locate the element with one reverse pass
        A = np.asarray(_autodiff(f, layout, static, theta, dynamic), np.float64)
        slices = leaf_slices(layout)
        tol = _user_tol(A, atol, rtol, _autodiff_tolerance(A, slices, rho, eps))
        for i, path in enumerate(layout.paths):
            if path not in failing_paths:
                continue
            sl, shape = slices[i], layout.shapes[i]
            r = _compare(path, "autodiff", A[sl].reshape(shape), got_flat[sl].reshape(shape),
                         tol[sl].reshape(shape))
            results.append(r._replace(passed=r.passed and not transposed[i], shape=got_leaves[i].shape))
        results = _leaf_diagnoses(results, A, got_leaves, layout, dtype, factors, suspects, "autodiff")
    tay = _taylor_result(f0, taylor, eps, nonsmooth) if "taylor" in oracles else None
    return _report("fast", dtype, layout, oracles, results, results_p, tay, base_h)
