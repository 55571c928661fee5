"""Judging a gradient against evaluated oracles, element by element, with tolerances from the dtype.

This is the host half of a check: the oracles have been evaluated (:mod:`._oracles`), and each leaf
of the gradient under test G is compared with each oracle:

- ``autodiff``: ``|G_i - A_i| <= rho (|A_i| + max_leaf |A|)`` with ``rho = eps^(3/4)``; where the
  finite-difference stencil straddles a slope jump, a value equal to either one-sided derivative is
  accepted too (``relu'(0)`` may be 0 or 1).
- ``fd``: ``|G_i - D_i|`` within twice the estimated error of the extrapolated difference D_i;
  disagreements explained by a kink are counted as *skipped*, not failed.
- ``taylor``: the rate of the Taylor remainder (:mod:`._taylor`).

When G is coarser than the oracles (a float32 gradient judged against float64 oracles), the
tolerances gain G's own rounding, ``eps_G^(3/4) (|A_i| + max_leaf |A|)``: float32 results are
judged with float32 tolerances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fnnjax.gradcheck._diagnose import diagnose_leaf, overall_diagnosis
from fnnjax.gradcheck._layout import LeafLayout
from fnnjax.gradcheck._oracles import FastOracles, FullOracles, OraclePlan
from fnnjax.gradcheck._report import GradCheckReport, LeafResult, ProbeResult
from fnnjax.gradcheck._stencil import nonsmooth, stencil_estimates
from fnnjax.gradcheck._taylor import taylor_result
from fnnjax.gradcheck._tolerance import autodiff_rtol, coarser, eps, match_rtol

__all__ = ["ORACLES", "Judging", "analyze_full", "judge_fast"]

ORACLES = ("autodiff", "fd", "taylor")
"""The oracles :func:`fnnjax.check_gradients` knows."""


class Judging(NamedTuple):
    """How a gradient is judged (everything but the numbers).

    Attributes:
      oracles: a subset of :data:`ORACLES`.
      rtol: a user's relative tolerance replacing the derived ones (None: derived from the dtype).
      atol: a user's absolute tolerance, likewise.
      factors: ``(value, words)`` pairs naming factors in diagnoses.
      suspects: ``(description, leaves)`` pairs: known wrong gradients, one array per leaf.
      gradient_dtype: the dtype of the gradient under test when it is coarser than the oracles'
        (None: the parameters' dtype).
    """

    oracles: tuple[str, ...] = ORACLES
    rtol: float | None = None
    atol: float | None = None
    factors: tuple[tuple[float, str], ...] = ()
    suspects: tuple[tuple[str, Sequence[np.ndarray]], ...] = ()
    gradient_dtype: str | None = None


class _Gradient(NamedTuple):
    """The gradient under test in theta's layout: float64, transposed leaves put back."""

    leaves: list[np.ndarray]
    transposed: list[bool]
    flat: np.ndarray


def _as_flat(got_leaves: Sequence[np.ndarray], layout: LeafLayout) -> _Gradient:
    leaves = [np.asarray(g, np.float64) for g in got_leaves]
    transposed = [g.shape != s for g, s in zip(leaves, layout.shapes)]
    flat = np.concatenate([(g.T if t else g).ravel() for g, t in zip(leaves, transposed)])
    return _Gradient(leaves, transposed, flat)


def compare_leaf(path: str, oracle: str, expected, got, tol, skip=None) -> LeafResult:
    """One leaf against one oracle: the worst element by error-to-tolerance ratio, and the errors."""
    e, g, t = (np.asarray(a, np.float64) for a in (expected, got, tol))
    skip = np.zeros(e.shape, bool) if skip is None else np.asarray(skip, bool)
    err = np.abs(g - e)
    ratio = np.where(skip, 0.0, np.where(np.isfinite(err), err / np.maximum(t, np.finfo(np.float64).tiny), np.inf))
    flat = int(np.argmax(ratio)) if ratio.size else 0
    worst = tuple(int(i) for i in np.unravel_index(flat, e.shape)) if e.size else ()
    judged = ~skip
    max_err = float(np.max(np.where(judged, err, 0.0), initial=0.0))
    if not np.all(np.isfinite(np.where(judged, err, 0.0))):
        max_err = float("inf")
    scale = float(np.max(np.abs(e), initial=0.0))
    rel = max_err / scale if scale > 0 else (0.0 if max_err == 0 else float("inf"))
    passed = bool(np.all(ratio <= 1.0))
    return LeafResult(
        path,
        oracle,
        passed,
        tuple(e.shape),
        max_err,
        rel,
        worst,
        float(e[worst]) if e.size else 0.0,
        float(g[worst]) if e.size else 0.0,
        float(t[worst]) if e.size else 0.0,
        int(np.sum(skip)),
    )


def _rounding_tolerance(A: np.ndarray, layout: LeafLayout, dtype: str) -> np.ndarray:
    """``rho (|A_i| + max_leaf |A|)``, at least ``rho eps max |A|`` (leaves that are exactly zero)."""
    rho = autodiff_rtol(dtype)
    tol = np.empty_like(A)
    for sl in layout.slices:
        tol[sl] = rho * (np.abs(A[sl]) + np.max(np.abs(A[sl]), initial=0.0))
    return np.maximum(tol, rho * eps(dtype) * np.max(np.abs(A), initial=0.0))


def _user_tol(expected, how: Judging, default):
    if how.atol is None and how.rtol is None:
        return default
    return (how.atol or 0.0) + (how.rtol or 0.0) * np.abs(expected)


def _gradient_rounding(A: np.ndarray, layout: LeafLayout, how: Judging) -> np.ndarray | None:
    """The rounding tolerance of a gradient coarser than the oracles, per element (or None)."""
    coarse = coarser(layout.dtype, how.gradient_dtype)
    if coarse == layout.dtype:
        return None
    return _rounding_tolerance(A, layout, coarse)


def _with_diagnoses(results, expected_flat, grad: _Gradient, layout: LeafLayout, how: Judging, oracle):
    """Attach :func:`diagnose_leaf` to the failing results of one oracle."""
    rtol = match_rtol(coarser(layout.dtype, how.gradient_dtype))
    out = []
    for r in results:
        if r.passed or r.oracle != oracle:
            out.append(r)
            continue
        i = layout.paths.index(r.path)
        expected = expected_flat[layout.slices[i]].reshape(layout.shapes[i])
        leaf_suspects = [(w, leaves[i]) for w, leaves in how.suspects]
        diag = diagnose_leaf(expected, grad.leaves[i], rtol=rtol, factors=how.factors, suspects=leaf_suspects)
        out.append(r._replace(diagnosis=diag))
    return out


def _leaf_results(checks, grad: _Gradient, layout: LeafLayout) -> list[LeafResult]:
    results = []
    for i, sl in enumerate(layout.slices):
        for oracle, expected, tol, skip in checks:
            r = compare_leaf(
                layout.paths[i], oracle, *(a[sl].reshape(layout.shapes[i]) for a in (expected, grad.flat, tol, skip))
            )
            results.append(
                r._replace(
                    passed=r.passed and not grad.transposed[i], shape=grad.leaves[i].shape, param_shape=layout.shapes[i]
                )
            )
    return results


def analyze_full(
    values: FullOracles,
    plan: OraclePlan,
    got_leaves: Sequence[np.ndarray],
    layout: LeafLayout,
    *,
    oracles: Sequence[str] = ORACLES,
    rtol: float | None = None,
    atol: float | None = None,
    factors: Sequence[tuple[float, str]] = (),
    suspects: Sequence[tuple[str, Sequence]] = (),
    step: float | None = None,
    gradient_dtype: str | None = None,
) -> GradCheckReport:
    """Judge a gradient against evaluated oracles, every element against every oracle (the full check).

    Args:
      values: what :func:`evaluate_oracles` returned for ``plan``.
      plan: the :class:`OraclePlan`.
      got_leaves: the gradient under test, one array per leaf in ``layout``'s order (a matrix leaf
        may have the transposed shape: it then fails with the diagnosis ``transposed``).
      layout: the params' :func:`leaf_layout` (its dtype is the oracles' dtype).
      oracles: as for :func:`fnnjax.check_gradients`.
      rtol: as for :func:`fnnjax.check_gradients`.
      atol: as for :func:`fnnjax.check_gradients`.
      factors: as for :func:`fnnjax.check_gradients`.
      suspects: ``(description, leaves)`` pairs: known wrong gradients, one array per leaf.
      step: the base finite-difference step, for the report.
      gradient_dtype: the dtype the gradient under test was computed in, when coarser than the
        oracles' (a float32 result judged against float64 oracles gets float32 tolerances).

    Returns:
      A :class:`GradCheckReport` (mode ``full``).

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from fnnjax.gradcheck import analyze_full, evaluate_oracles, fd_steps, leaf_layout, plan_oracles
      >>> params = {"w": np.array([1.0, 2.0], np.float32)}
      >>> layout = leaf_layout(params)
      >>> theta = layout.ravel(params)
      >>> plan = plan_oracles(theta, fd_steps(theta), np.ones(2, np.float32))
      >>> values = evaluate_oracles(lambda t: jnp.sum(t ** 3), plan)
      >>> analyze_full(values, plan, [np.array([3.0, 12.0])], layout).passed
      True
      >>> analyze_full(values, plan, [np.array([6.0, 24.0])], layout).diagnosis
      "['w']: off by a constant factor 2 (got = 2 x expected)"
    """
    how = Judging(tuple(oracles), rtol, atol, tuple(factors), tuple(suspects), gradient_dtype)
    dtype = layout.dtype
    machine_eps = eps(dtype)
    grad = _as_flat(got_leaves, layout)
    G = grad.flat
    f0 = float(values.f0)
    A = np.asarray(values.grad, np.float64)
    g_round = _gradient_rounding(A, layout, how)
    ad_default = _rounding_tolerance(A, layout, dtype) if g_round is None else g_round
    ad_tol = _user_tol(A, how, ad_default)
    ad_skip = np.zeros(G.shape, bool)
    checks = [("autodiff", A, ad_tol, ad_skip)] if "autodiff" in how.oracles else []
    kinks = False
    if plan.steps.shape[1] == G.shape[0]:
        st = stencil_estimates(
            f0, np.asarray(values.stencil, np.float64), np.asarray(plan.steps, np.float64), machine_eps
        )
        kinked = nonsmooth(st)
        kinks = bool(np.any(kinked))
        # autodiff: where the stencil straddles a slope jump, either one-sided derivative is right
        jump = kinked & (np.abs(st.right - st.left) > 2 * st.one_sided_tol)
        one_sided = np.minimum(np.abs(G - st.right), np.abs(G - st.left)) <= st.one_sided_tol
        ad_skip |= (np.abs(G - A) > ad_tol) & jump & one_sided
        if "fd" in how.oracles:
            own = st.tolerance if g_round is None else st.tolerance + g_round
            fd_tol = _user_tol(st.estimate, how, own)
            disagreement = np.abs(G - st.estimate)
            fd_skip = (disagreement > fd_tol) & (disagreement <= st.kink + own)  # explained by a kink
            checks.append(("fd", st.estimate, fd_tol, fd_skip))
    results = _leaf_results(checks, grad, layout)
    if checks:
        results = _with_diagnoses(results, checks[0][1], grad, layout, how, checks[0][0])
    tay = None
    if "taylor" in how.oracles:
        steps = np.asarray(plan.taylor_steps, np.float64)
        lin = steps @ np.where(np.isfinite(G), G, 0.0)
        lin_floor = None if g_round is None else np.abs(steps) @ g_round
        tay = taylor_result(
            f0, np.stack([np.asarray(values.taylor, np.float64), lin], axis=1), machine_eps, kinks, lin_floor
        )
    return _report("full", layout, how, results, (), tay, step if step is not None else machine_eps ** (1 / 3))


def judge_fast(
    values: FastOracles,
    got_leaves: Sequence[np.ndarray],
    layout: LeafLayout,
    *,
    probes: int,
    how: Judging = Judging(),
    step: float,
) -> GradCheckReport:
    """Judge a gradient in fast mode: every element against jax.grad, random probes against differences.

    Args:
      values: what :func:`fast_oracles` returned.
      got_leaves: the gradient under test, one array per leaf (a matrix leaf may be transposed).
      layout: the params' :func:`leaf_layout`.
      probes: Gaussian probes per leaf.
      how: the :class:`Judging` options.
      step: the base finite-difference step, for the report.

    Returns:
      A :class:`GradCheckReport` (mode ``fast``).
    """
    dtype = layout.dtype
    machine_eps = eps(dtype)
    grad = _as_flat(got_leaves, layout)
    f0 = float(values.f0)
    A = np.asarray(values.grad, np.float64)
    vals, lin, T = (np.asarray(a, np.float64) for a in (values.stencil, values.lin, values.scale))
    unorm, gu_abs = np.asarray(values.probe_norm, np.float64), np.asarray(values.gu_abs, np.float64)
    st = stencil_estimates(f0, vals, np.stack([T, -T, 2 * T, -2 * T]), machine_eps)
    kinked = nonsmooth(st)
    lin_ext = (4 * lin[:, 0] - lin[:, 1]) / 3
    probe_results = []
    if "fd" in how.oracles:
        for j, path in enumerate(layout.paths):
            for k in range(probes):
                n = j * probes + k
                tol = (
                    st.tolerance[n]
                    if how.atol is None and how.rtol is None
                    else (how.atol or 0.0) * unorm[n] + (how.rtol or 0.0) * gu_abs[n]
                )
                err = abs(lin_ext[n] - st.estimate[n])
                at_kink = bool(err <= st.kink[n] + st.tolerance[n])
                probe_results.append(
                    ProbeResult(
                        path,
                        k,
                        "fd",
                        float(st.estimate[n]),
                        float(lin_ext[n]),
                        float(err),
                        float(tol),
                        bool(err <= tol or at_kink),
                        at_kink and err > tol,
                    )
                )
    results = []
    if "autodiff" in how.oracles:
        tol = _user_tol(A, how, _rounding_tolerance(A, layout, dtype))
        results = _leaf_results([("autodiff", A, tol, np.zeros(A.shape, bool))], grad, layout)
        results = _with_diagnoses(results, A, grad, layout, how, "autodiff")
    tay = None
    if "taylor" in how.oracles:
        tay = taylor_result(f0, np.asarray(values.taylor, np.float64), machine_eps, bool(np.any(kinked)))
    return _report("fast", layout, how, results, probe_results, tay, step)


def _report(mode, layout: LeafLayout, how: Judging, results, probes, taylor, step) -> GradCheckReport:
    failing = [r for r in results if not r.passed]
    bad_probes = [p for p in probes if not p.passed]
    taylor_failed = taylor is not None and taylor.passed is False
    passed = not failing and not bad_probes and not taylor_failed
    checked = {r.oracle for r in results}
    diagnosis = (
        None
        if passed
        else overall_diagnosis(failing, bad_probes, taylor_failed, layout.paths, "autodiff" in checked, "fd" in checked)
    )
    return GradCheckReport(
        passed, mode, layout.dtype, layout.size, how.oracles, tuple(results), tuple(probes), taylor, diagnosis, step
    )
