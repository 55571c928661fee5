"""``check_gradients``: bind the arguments, call the gradient under test, evaluate and judge the oracles."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnnjax._differentiate import default_step
from fnnjax.gradcheck._args import StaticArgs, merge_args, split_args
from fnnjax.gradcheck._judge import ORACLES, Judging, analyze_full, check_oracles, judge_fast
from fnnjax.gradcheck._layout import LeafLayout, leaf_layout
from fnnjax.gradcheck._oracles import FastPlan, FastPoint, fast_oracles, fd_steps, full_oracles, plan_oracles
from fnnjax.gradcheck._report import GradCheckReport

__all__ = ["FULL_FD_LIMIT", "check_gradients"]

FULL_FD_LIMIT = 50_000
"""The most parameters a full (per-coordinate) finite-difference check accepts; use fast=True beyond."""


class _Problem(NamedTuple):
    """f at one point: the function, its bound arguments, the params and their flat layout."""

    f: Callable[..., Any]
    static: StaticArgs
    dynamic: tuple
    params: Any
    layout: LeafLayout
    theta: np.ndarray  # (P,), the parameters' dtype
    d: np.ndarray  # the Taylor direction, scaled to max(1, ||theta||)


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
    r"""Check a hand-written gradient against jax.grad, finite differences and the Taylor test.

    ``grad_f(params, *args)`` must return the gradient of the scalar ``f(params, *args)`` with
    respect to ``params`` (any pytree of floating arrays of one dtype), in params' structure. Each
    element is judged by each oracle (see :mod:`fnnjax.gradcheck` for the tolerances: F19's error
    bounds, jax.grad's from the rounding of its own computation, so right gradients pass at optima
    and trained points); failing leaves get a diagnosis (transposed, a constant factor such as 2 or
    N, sign flipped, zero, or one of ``suspects``) and the tree a verdict (e.g. wrong only in
    ``[1]``). ``passed`` is True only when a decisive oracle (jax.grad; central differences where
    they resolve the derivative to 1 %) agrees with every element and none disagrees; when nothing
    disagrees but some element is decided by no oracle, ``report.verdict`` is ``inconclusive``.
    Float32 matrix products run at full float32 precision during the check (TF32 or bfloat16
    passes, a GPU's or TPU's default, would add noise that is no mistake).

    Args:
      f: the scalar function, traceable by JAX (jit/grad/vmap); array arguments in ``args`` are
        traced, other arguments (names, MLP descriptions, numbers) are treated as static.
      grad_f: the gradient under test, called once with the same arguments (under ``jax.jit`` when
        it can be traced, else eagerly).
      params: the point, a pytree of floating arrays of one dtype.
      *args: further arguments of f and grad_f.
      fast: for large nets: every element is still compared with one reverse pass of ``jax.grad``
        (about the cost of two evaluations of f), but finite differences are taken only along
        ``probes`` Gaussian probes $u$ per leaf ($\langle G, u \rangle$ against central differences along $u$)
        instead of along every coordinate.
      key: PRNG key for the probes and the Taylor direction (default ``jax.random.key(0)``).
      rtol: with ``atol``, replaces the derived tolerances: $|G - E| \le a + r\,|E|$ per element, with
        $a$ = ``atol`` and $r$ = ``rtol`` (for a probe $u$: $a \lVert u \rVert + r \sum_i |G_i u_i|$).
      atol: see ``rtol``.
      oracles: a subset of ``("autodiff", "fd", "taylor")`` with ``autodiff`` or ``fd`` in it (the
        Taylor test can only show a gradient wrong); with ``fast=True``, ``autodiff`` must be in it.
      step: the finite-difference base step, used as is (default $\varepsilon^{1/3} \max(1, |\theta_i|)$).
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
        options, oracles that cannot decide (``("taylor",)``, or ``fast=True`` without
        ``autodiff``), or more than 50,000 parameters for the full finite-difference check.

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
    oracles = _check_options(oracles, rtol, atol, probes, step, fast)
    with jax.default_matmul_precision("float32"):  # no TF32/bfloat16 passes: their noise is no mistake
        return _check(f, grad_f, params, args, fast, key, rtol, atol, oracles, step, probes, factors, suspects)


def _check(f, grad_f, params, args, fast, key, rtol, atol, oracles, step, probes, factors, suspects):
    layout = leaf_layout(params)
    static, dynamic = split_args(args)
    out = jax.eval_shape(lambda p: f(p, *args), params)
    if getattr(out, "shape", None) != ():
        raise TypeError(f"f must return a scalar, but f(params, *args) has shape {getattr(out, 'shape', out)}")
    got_leaves = _check_structure(_call_gradient(grad_f, params, args, static, dynamic), layout)
    how = Judging(oracles, rtol, atol, tuple(factors), _suspect_leaves(suspects, layout))
    key = jax.random.key(0) if key is None else key
    problem = _problem(f, static, dynamic, params, layout, key)
    base_h = float(step) if step is not None else default_step(layout.dtype)
    if fast:
        return _fast_check(problem, got_leaves, key, base_h, probes, how)
    if "fd" in oracles and layout.size > FULL_FD_LIMIT:
        raise ValueError(
            f"params have {layout.size} scalars: a full finite-difference check costs 4P + 1 = "
            f"{4 * layout.size + 1} evaluations of f; use fast=True (random probes) or leave 'fd' out "
            "of oracles"
        )
    plan = plan_oracles(problem.theta, fd_steps(problem.theta, step), problem.d, stencil="fd" in oracles)
    values = full_oracles(f, static, params, dynamic, plan)
    return analyze_full(
        values,
        plan,
        got_leaves,
        layout,
        oracles=oracles,
        rtol=rtol,
        atol=atol,
        factors=how.factors,
        suspects=how.suspects,
        step=base_h,
    )


def _problem(f, static, dynamic, params, layout: LeafLayout, key) -> _Problem:
    theta = layout.ravel(params)
    z = _numpy_rng(key).standard_normal(theta.shape[0])
    d = (z / np.linalg.norm(z) * max(1.0, float(np.linalg.norm(theta.astype(np.float64))))).astype(layout.dtype)
    return _Problem(f, static, dynamic, params, layout, theta, d)


def _fast_check(problem: _Problem, got_leaves, key, base_h: float, probes: int, how: Judging) -> GradCheckReport:
    layout = problem.layout
    flat = np.concatenate([(g.T if g.shape != s else g).ravel() for g, s in zip(got_leaves, layout.shapes)])
    flat = np.where(np.isfinite(flat), flat, 0.0).astype(layout.dtype)  # the linear terms <G, step>
    plan = FastPlan(probes, tuple((sl.start, sl.stop) for sl in layout.slices), "autodiff" in how.oracles)
    point = FastPoint(problem.theta, key, base_h, problem.d, flat)
    values = fast_oracles(problem.f, problem.static, plan, problem.params, problem.dynamic, point)
    return judge_fast(values, got_leaves, layout, probes=probes, how=how, step=base_h)


def _numpy_rng(key) -> np.random.Generator:
    """A numpy generator seeded by a JAX key (new-style or raw uint32): host-side draws, no compile."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data).astype(np.uint32).ravel().tolist())


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_traced(grad_f, static, params, dynamic):
    return grad_f(params, *merge_args(static, dynamic))


def _call_gradient(grad_f, params, args, static, dynamic):
    """``grad_f(params, *args)``, traced by jit when it can be (one compile), else run eagerly."""
    try:
        return _call_traced(grad_f, static, params, dynamic)
    except Exception:  # not traceable (numpy conversions, Python branches on values) or a real error
        return grad_f(params, *args)


def _suspect_leaves(suspects, layout: LeafLayout) -> tuple[tuple[str, list[np.ndarray]], ...]:
    items = []
    for words, tree in (suspects or {}).items():
        if jax.tree_util.tree_structure(tree) != layout.treedef:
            raise TypeError(
                f"suspect {words!r} has treedef {jax.tree_util.tree_structure(tree)} but params have {layout.treedef}"
            )
        items.append((words, [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]))
    return tuple(items)


def _check_structure(grads, layout: LeafLayout) -> list[np.ndarray]:
    got_def = jax.tree_util.tree_structure(grads)
    if got_def != layout.treedef:
        raise TypeError(
            "grad_f returned a pytree whose structure differs from params; return one gradient "
            f"leaf per parameter, in params' structure (expected treedef: {layout.treedef}; "
            f"got treedef: {got_def})"
        )
    out = []
    for path, shape, leaf in zip(layout.paths, layout.shapes, jax.tree_util.tree_leaves(grads)):
        gshape = tuple(jnp.shape(leaf))
        gdt = jnp.result_type(leaf)
        if gshape != shape and not (len(shape) == 2 and gshape == shape[::-1]):
            raise ValueError(
                f"grad_f's leaf {path} has shape {gshape} but params leaf {path} "
                f"has shape {shape}; a gradient has the shape of its parameter"
            )
        if gdt != jnp.dtype(layout.dtype):
            raise TypeError(
                f"grad_f's leaf {path} has dtype {gdt} but the parameters are {layout.dtype}; "
                f"compute the gradient in the parameters' dtype"
            )
        out.append(np.asarray(leaf, np.float64))
    return out


def _check_options(oracles, rtol, atol, probes, step, fast) -> tuple[str, ...]:
    oracles = check_oracles(oracles, fast)
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None (derived from the dtype), got {v!r}")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be a positive integer (Gaussian probes per leaf), got {probes!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0):
        raise ValueError(f"step must be a positive number or None (eps^(1/3) of the dtype), got {step!r}")
    return oracles
