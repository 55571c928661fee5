"""Judging a gradient against evaluated oracles, element by element, with tolerances from the rounding.

This is the host half of a check: the oracles have been evaluated (:mod:`._oracles`), and each leaf
of the gradient under test G is compared with each oracle:

- ``autodiff``: ``|G_i - A_i| <= SAFETY (u_A + u_G) s_i`` where ``u_A s_i`` is the measured size of
  the rounding error of the computation of A_i (:mod:`._rounding`: set by the magnitudes of the
  terms summed into it, not by its result), so a right gradient passes where its terms cancel (at
  an optimum, at a trained point, at a saddle). Where the finite-difference stencil straddles a
  slope jump, a value equal to either one-sided derivative is accepted too (``relu'(0)`` may be 0
  or 1).
- ``fd``: ``|G_i - D_i|`` within twice the estimated error of the extrapolated difference D_i (its
  rounding from f's computation, not from ``|f|`` alone) plus G's rounding; disagreements explained
  by a kink are counted as *skipped*, not failed.
- ``taylor``: the rate of the Taylor remainder (:mod:`._taylor`).

Every element gets a verdict from every elementwise oracle: it *disagrees* (beyond the tolerance),
it *agrees decisively* (jax.grad, exact up to the rounding measured; central differences where
their tolerance is at most 1 % of ``|D_i|``), or it agrees but the oracle cannot decide it
(central differences below their noise, e.g. at an optimum; a user's tolerance above 1 % of
``|A_i|`` and above the derived one). The check *passes* only when every element is decided by
some oracle and no oracle disagrees anywhere; it *fails* when one disagrees; otherwise it is
*inconclusive*. The Taylor test and fast mode's probes never decide an element: they can only
disagree.

When G is coarser than the oracles (a float32 gradient judged against float64 oracles), ``u_G`` is
G's unit roundoff: float32 results are judged with float32 tolerances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from fnnjax._differentiate import default_step
from fnnjax.gradcheck._diagnose import diagnose_leaf, overall_diagnosis
from fnnjax.gradcheck._layout import LeafLayout
from fnnjax.gradcheck._oracles import FastOracles, FullOracles, OraclePlan
from fnnjax.gradcheck._report import GradCheckReport, LeafResult, ProbeResult
from fnnjax.gradcheck._stencil import nonsmooth, stencil_estimates
from fnnjax.gradcheck._taylor import taylor_result, taylor_steps
from fnnjax.gradcheck._tolerance import (
    RESOLUTION,
    SAFETY,
    autodiff_rtol,
    coarser,
    eps,
    gradient_tolerance,
    match_rtol,
    unit_roundoff,
)

__all__ = ["DECISIVE", "ORACLES", "Judging", "analyze_full", "check_oracles", "judge_fast"]

ORACLES = ("autodiff", "fd", "taylor")
"""The oracles :func:`fnnjax.check_gradients` knows."""

DECISIVE = ("autodiff", "fd")
"""The oracles that can decide an element (the Taylor test and fast mode's probes can only disagree)."""


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


def check_oracles(oracles, fast: bool = False) -> tuple[str, ...]:
    """The oracles as a tuple, refused when they cannot decide anything.

    Raises:
      ValueError: an unknown or empty choice; ``("taylor",)`` alone (it can show a gradient wrong,
        never right); ``fast=True`` without ``autodiff`` (random probes cannot confirm every element).
    """
    if isinstance(oracles, str):
        oracles = (oracles,)
    oracles = tuple(oracles)
    unknown = [o for o in oracles if o not in ORACLES]
    if unknown or not oracles:
        raise ValueError(f"oracles must be a non-empty subset of {ORACLES}, got {oracles!r}")
    if not any(o in DECISIVE for o in oracles):
        raise ValueError(
            f"oracles={oracles!r} cannot pass a gradient: the Taylor test only shows a gradient wrong, "
            "never right; add 'autodiff' (or 'fd')"
        )
    if fast and "autodiff" not in oracles:
        raise ValueError(
            f"fast=True with oracles={oracles!r} cannot pass a gradient: its random probes never decide "
            "an element; add 'autodiff' to oracles (or use fast=False)"
        )
    return oracles


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


class _Check(NamedTuple):
    """One elementwise oracle, flat over theta."""

    oracle: str
    expected: np.ndarray
    tol: np.ndarray
    skip: np.ndarray  # not judged (a kink explains the disagreement)
    decides: np.ndarray  # agreement here is decisive


def compare_leaf(path: str, oracle: str, expected, got, tol, skip=None, decides=None) -> LeafResult:
    """One leaf against one oracle: the worst element by error-to-tolerance ratio, and the errors."""
    e, g, t = (np.asarray(a, np.float64) for a in (expected, got, tol))
    skip = np.zeros(e.shape, bool) if skip is None else np.asarray(skip, bool)
    decides = np.ones(e.shape, bool) if decides is None else np.asarray(decides, bool)
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
    undecided = int(np.sum(judged & (ratio <= 1.0) & ~decides))
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
        inconclusive=undecided,
    )


def _floor(A: np.ndarray, dtype: str) -> float:
    """The least tolerance: ``eps^(7/4) max |A|`` (what no rounding bound reaches below)."""
    return autodiff_rtol(dtype) * eps(dtype) * float(np.max(np.abs(A), initial=0.0))


def _legacy_tolerance(A: np.ndarray, layout: LeafLayout, dtype: str) -> np.ndarray:
    """``rho (|A_i| + max_leaf |A|)``: the tolerance when the oracles carry no rounding bounds."""
    rho = autodiff_rtol(dtype)
    tol = np.empty_like(A)
    for sl in layout.slices:
        tol[sl] = rho * (np.abs(A[sl]) + np.max(np.abs(A[sl]), initial=0.0))
    return np.maximum(tol, rho * eps(dtype) * np.max(np.abs(A), initial=0.0))


class _Rounding(NamedTuple):
    """The rounding allowances of one check, flat over theta."""

    autodiff: np.ndarray  # the tolerance of G against jax.grad: G's and A's rounding (A's is also
    # how far f's rounding can change along theta_i, which the differences see)
    f_error: float  # SAFETY u_A sigma(f): the rounding of one evaluation of f (its terms, not |f|)


def _rounding(scales, A: np.ndarray, layout: LeafLayout, how: Judging) -> _Rounding:
    dtype = layout.dtype
    coarse = coarser(dtype, how.gradient_dtype)
    if scales is None:
        return _Rounding(_legacy_tolerance(A, layout, coarse), 0.0)
    tol = gradient_tolerance(np.asarray(scales.grad_error, np.float64), dtype, how.gradient_dtype, _floor(A, coarse))
    return _Rounding(tol, SAFETY * unit_roundoff(dtype) * float(scales.f_error))


def _user_tol(expected, how: Judging, default):
    if how.atol is None and how.rtol is None:
        return default
    return (how.atol or 0.0) + (how.rtol or 0.0) * np.abs(expected)


def _autodiff_decides(tol, A, derived, how: Judging) -> np.ndarray:
    """jax.grad decides every element with the derived tolerance (it is exact up to rounding); with
    the user's, where they are at most 1 % of |A_i| or no looser than the derived one."""
    if how.atol is None and how.rtol is None:
        return np.ones(np.shape(A), bool)
    return (tol <= RESOLUTION * np.abs(A)) | (tol <= derived)


def _with_diagnoses(results, expected_flat, grad: _Gradient, layout: LeafLayout, how: Judging, oracle, tol):
    """Attach :func:`diagnose_leaf` to the failing results of one oracle (``tol``: its tolerances)."""
    rtol = match_rtol(coarser(layout.dtype, how.gradient_dtype))
    out = []
    for r in results:
        if r.passed or r.oracle != oracle:
            out.append(r)
            continue
        i = layout.paths.index(r.path)
        expected = expected_flat[layout.slices[i]].reshape(layout.shapes[i])
        leaf_suspects = [(w, leaves[i]) for w, leaves in how.suspects]
        leaf_tol = tol[layout.slices[i]].reshape(layout.shapes[i])
        diag = diagnose_leaf(
            expected, grad.leaves[i], rtol=rtol, factors=how.factors, suspects=leaf_suspects, tol=leaf_tol
        )
        out.append(r._replace(diagnosis=diag))
    return out


def _leaf_results(checks: Sequence[_Check], grad: _Gradient, layout: LeafLayout) -> list[LeafResult]:
    results = []
    for i, sl in enumerate(layout.slices):
        for c in checks:
            r = compare_leaf(
                layout.paths[i],
                c.oracle,
                *(a[sl].reshape(layout.shapes[i]) for a in (c.expected, grad.flat, c.tol, c.skip, c.decides)),
            )
            results.append(
                r._replace(
                    passed=r.passed and not grad.transposed[i], shape=grad.leaves[i].shape, param_shape=layout.shapes[i]
                )
            )
    return results


def _agreeing(c: _Check, G: np.ndarray) -> np.ndarray:
    """Elements this oracle decides in G's favour (within tolerance, decisive, or accepted at a kink)."""
    within = np.abs(G - c.expected) <= c.tol
    return (within & c.decides & ~c.skip) | (c.skip & c.decides)


class _Undecided(NamedTuple):
    """Where no oracle decided, for the verdict's words."""

    undecided: int
    first: str | None  # ``path[index]`` of the first one
    fd_only: bool  # only central differences judged them


def _undecided(checks: Sequence[_Check], G: np.ndarray, layout: LeafLayout) -> _Undecided:
    if not checks:
        return _Undecided(G.size, layout.paths[0] if layout.paths else None, False)
    decided = np.zeros(G.shape, bool)
    for c in checks:
        decided |= _agreeing(c, G)
    missing = np.flatnonzero(~decided)
    if missing.size == 0:
        return _Undecided(0, None, False)
    k = int(missing[0])
    i = next(j for j, sl in enumerate(layout.slices) if sl.start <= k < sl.stop)
    index = [int(v) for v in np.unravel_index(k - layout.slices[i].start, layout.shapes[i])]
    return _Undecided(int(missing.size), f"{layout.paths[i]}{index}", all(c.oracle == "fd" for c in checks))


def _fd_confirms(checks: Sequence[_Check], G: np.ndarray) -> np.ndarray | None:
    """Where central differences decide in G's favour (None when they were not judged)."""
    fd = next((c for c in checks if c.oracle == "fd"), None)
    return None if fd is None else _agreeing(fd, G)


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

    Raises:
      ValueError: oracles that cannot decide (``("taylor",)`` alone).

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
    how = Judging(check_oracles(oracles), rtol, atol, tuple(factors), tuple(suspects), gradient_dtype)
    dtype = layout.dtype
    machine_eps = eps(dtype)
    grad = _as_flat(got_leaves, layout)
    G = grad.flat
    f0 = float(values.f0)
    A = np.asarray(values.grad, np.float64)
    rnd = _rounding(getattr(values, "scales", None), A, layout, how)
    ad_tol = _user_tol(A, how, rnd.autodiff)
    ad_decides = _autodiff_decides(ad_tol, A, rnd.autodiff, how)
    ad_skip = np.zeros(G.shape, bool)
    checks: list[_Check] = []
    kinks = False
    if plan.steps.shape[1] == G.shape[0]:
        stencil = np.asarray(values.stencil, np.float64)
        st = stencil_estimates(f0, stencil, np.asarray(plan.steps, np.float64), machine_eps, rnd.f_error)
        kinked = nonsmooth(st)
        kinks = bool(np.any(kinked))
        # autodiff: where the stencil straddles a slope jump, either one-sided derivative is right
        jump = kinked & (np.abs(st.right - st.left) > 2 * st.one_sided_tol)
        one_sided = np.minimum(np.abs(G - st.right), np.abs(G - st.left)) <= st.one_sided_tol
        ad_skip |= (np.abs(G - A) > ad_tol) & jump & one_sided
        if "fd" in how.oracles:
            own = st.tolerance + rnd.autodiff  # the differences' error, and G's and f's slope rounding
            fd_tol = _user_tol(st.estimate, how, own)
            disagreement = np.abs(G - st.estimate)
            fd_skip = (disagreement > fd_tol) & (disagreement <= st.kink + own)  # explained by a kink
            # decisive where the tolerance resolves the derivative to 1 %; a flat stencil decides
            # nothing (f may move by less than its rounding along theta_i)
            fd_decides = 1.5 * fd_tol <= RESOLUTION * np.abs(st.estimate)
            checks.append(_Check("fd", st.estimate, fd_tol, fd_skip, fd_decides & ~fd_skip))
    if "autodiff" in how.oracles:
        checks.insert(0, _Check("autodiff", A, ad_tol, ad_skip, ad_decides))
    results = _leaf_results(checks, grad, layout)
    if checks:
        results = _with_diagnoses(results, checks[0].expected, grad, layout, how, checks[0].oracle, checks[0].tol)
    tay = None
    if "taylor" in how.oracles:
        steps = np.asarray(plan.taylor_steps, np.float64)
        lin = steps @ np.where(np.isfinite(G), G, 0.0)
        tay = taylor_result(
            f0,
            np.stack([np.asarray(values.taylor, np.float64), lin], axis=1),
            machine_eps,
            kinks,
            np.abs(steps) @ rnd.autodiff,
            rnd.f_error,
        )
    return _report(
        "full",
        layout,
        how,
        results,
        (),
        tay,
        step if step is not None else default_step(layout.dtype),
        _undecided(checks, G, layout),
        _fd_confirms(checks, G),
    )


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
    rnd = _rounding(values.scales, A, layout, how)
    u = unit_roundoff(dtype) + unit_roundoff(coarser(dtype, how.gradient_dtype))
    # G's and f's rounding along each probe and along d: sum_i |v_i| SAFETY (u_A + u_G) m_i
    along = (
        np.zeros(len(values.scale) + 1) if values.along is None else SAFETY * u * np.asarray(values.along, np.float64)
    )
    vals, lin, T = (np.asarray(a, np.float64) for a in (values.stencil, values.lin, values.scale))
    unorm, gu_abs = np.asarray(values.probe_norm, np.float64), np.asarray(values.gu_abs, np.float64)
    st = stencil_estimates(f0, vals, np.stack([T, -T, 2 * T, -2 * T]), machine_eps, rnd.f_error)
    kinked = nonsmooth(st)
    lin_ext = (4 * lin[:, 0] - lin[:, 1]) / 3
    probe_results = []
    if "fd" in how.oracles:
        for j, path in enumerate(layout.paths):
            for k in range(probes):
                n = j * probes + k
                own = st.tolerance[n] + along[n]
                tol = (
                    own
                    if how.atol is None and how.rtol is None
                    else (how.atol or 0.0) * unorm[n] + (how.rtol or 0.0) * gu_abs[n]
                )
                err = abs(lin_ext[n] - st.estimate[n])
                at_kink = bool(err <= st.kink[n] + own)
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
    checks: list[_Check] = []
    results = []
    if "autodiff" in how.oracles:
        tol = _user_tol(A, how, rnd.autodiff)
        checks = [_Check("autodiff", A, tol, np.zeros(A.shape, bool), _autodiff_decides(tol, A, rnd.autodiff, how))]
        results = _leaf_results(checks, grad, layout)
        results = _with_diagnoses(results, A, grad, layout, how, "autodiff", tol)
    tay = None
    if "taylor" in how.oracles:
        e = np.concatenate([taylor_steps(), taylor_steps()])
        tay = taylor_result(
            f0, np.asarray(values.taylor, np.float64), machine_eps, bool(np.any(kinked)), e * along[-1], rnd.f_error
        )
    return _report("fast", layout, how, results, probe_results, tay, step, _undecided(checks, grad.flat, layout), None)


def _report(
    mode,
    layout: LeafLayout,
    how: Judging,
    results,
    probes,
    taylor,
    step,
    undecided: _Undecided,
    fd_confirms: np.ndarray | None,
) -> GradCheckReport:
    failing = [r for r in results if not r.passed]
    bad_probes = [p for p in probes if not p.passed]
    taylor_failed = taylor is not None and taylor.passed is False
    disagrees = bool(failing or bad_probes or taylor_failed)
    passed = not disagrees and undecided.undecided == 0
    checked = {r.oracle for r in results}
    confirmed = set()  # the leaves central differences decided in G's favour, every element
    if fd_confirms is not None:
        confirmed = {layout.paths[i] for i, sl in enumerate(layout.slices) if bool(np.all(fd_confirms[sl]))}
    if passed:
        diagnosis = None
    elif disagrees:
        diagnosis = overall_diagnosis(
            failing,
            bad_probes,
            taylor_failed,
            layout.paths,
            "autodiff" in checked,
            "fd" in checked,
            fd_confirmed=frozenset(confirmed),
        )
    else:
        diagnosis = _inconclusive_words(undecided, layout, how)
    return GradCheckReport(
        passed,
        mode,
        layout.dtype,
        layout.size,
        how.oracles,
        tuple(results),
        tuple(probes),
        taylor,
        diagnosis,
        step,
        inconclusive=not passed and not disagrees,
    )


def _inconclusive_words(undecided: _Undecided, layout: LeafLayout, how: Judging) -> str:
    where = f"{undecided.undecided} of {layout.size} elements (the first at {undecided.first})"
    if undecided.fd_only:
        return (
            f"inconclusive: no oracle disagrees, but central differences cannot decide {where}: their "
            "noise exceeds 1 % of the derivative there (an optimum, a tiny gradient, a kink); add "
            "'autodiff' to oracles"
        )
    if how.atol is not None or how.rtol is not None:
        return (
            f"inconclusive: no oracle disagrees, but the tolerances given (rtol, atol) exceed 1 % of the "
            f"scale of {where}; give smaller ones or leave them out"
        )
    return f"inconclusive: no oracle decides {where}"
