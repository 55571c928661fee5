"""What a wrong gradient looks like, in words: per leaf, over the tree, and for the whole check.

:func:`diagnose_leaf` compares one leaf with the right one (transposed, a constant factor such as
2, 1/2, -1 or N, zero, non-finite, a named suspect); :func:`tree_diagnosis` says what the failing
leaves have in common (every leaf wrong the same way, wrong only in one group); and
:func:`overall_diagnosis` turns a check's failures into the one-line verdict of the report.
:func:`fit_combination` and :func:`name_factor` are the building blocks of finer diagnoses (e.g.
``got = alpha * data term + beta * L2 term``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fnnjax.gradcheck._report import LeafResult, ProbeResult

__all__ = ["arrays_match", "diagnose_leaf", "fit_combination", "name_factor", "overall_diagnosis", "tree_diagnosis"]


def fit_combination(got, basis: Sequence) -> tuple[np.ndarray, float]:
    """Least-squares coefficients c with ``got ~ sum_k c_k basis_k``, and the relative residual.

    Args:
      got: an array.
      basis: arrays of got's shape.

    Returns:
      ``(c, ||got - sum c_k basis_k|| / ||got||)`` (the residual is 0 for a zero ``got``).

    Raises:
      ValueError: an array of ``basis`` has another number of elements than ``got``.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import fit_combination
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
      >>> from fnnjax.gradcheck import name_factor
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
    """``max |a - b| <= rtol max(max |a|, max |b|)`` and a finite: a diagnosis may call a "b".

    Args:
      a: an array.
      b: an array of a's shape.
      rtol: the relative tolerance (see :func:`match_rtol`).

    Returns:
      Whether they match.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import arrays_match
      >>> arrays_match(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), 1e-6)
      True
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale


def diagnose_leaf(
    expected,
    got,
    *,
    rtol: float = 1e-6,
    factors: Sequence[tuple[float, str]] = (),
    suspects: Sequence[tuple[str, Any]] = (),
    tol=None,
) -> str | None:
    """What a wrong gradient leaf looks like next to the right one, in words (None if no pattern).

    Tried in order: NaN/inf; transposed (``got.T == expected``, for any shape); named suspects
    (``got == suspect``); zero; wrong in only a few elements (at most a tenth, or one of three or
    more); a constant factor
    ``got = c * expected`` (``c = -1``: sign flipped; c named with ``factors``); transposed up to
    a factor.

    Args:
      expected: the right gradient of the leaf.
      got: the gradient under test (the same shape, or the transposed one).
      rtol: how close (relative to the larger of the two) arrays must be to count as equal.
      factors: ``(value, words)`` pairs for :func:`name_factor`.
      suspects: ``(description, array)`` pairs: known wrong gradients to recognise.
      tol: the tolerance of each element (expected's shape), when a check judged them: an element
        is then wrong where ``|got - expected| > tol`` (at an optimum every element is small next
        to its rounding, and ``rtol max |expected|`` would call them all wrong).

    Returns:
      A phrase such as ``"off by a constant factor 2 (got = 2 x expected)"``, or None.

    Example:
      >>> import numpy as np
      >>> from fnnjax.gradcheck import diagnose_leaf
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
                return (
                    f"transposed (got has shape {g.shape}, expected {e.shape}) and off by a factor "
                    f"{name_factor(float(c[0]), factors)}"
                )
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
    limit = rtol * float(np.max(np.abs(e))) if tol is None else np.asarray(tol, np.float64)
    wrong = np.abs(g - e) > limit
    if 0 < np.sum(wrong) <= max(wrong.size // 10, 1 if wrong.size >= 3 else 0):
        first = [int(i) for i in np.argwhere(wrong)[0]]
        return (
            f"wrong in {int(np.sum(wrong))} of {wrong.size} elements (the first at {first}); "
            "every other element is right"
        )
    c, res = fit_combination(g, [e])
    if res <= rtol:
        c = float(c[0])
        if abs(c + 1) <= 1e-3:
            return "sign flipped (got = -expected)"
        if abs(c - 1) <= 1e-3:
            rel = float(np.max(np.abs(g - e)) / np.max(np.abs(e)))
            return (
                f"close to the expected values but not within tolerance (relative error {rel:.1e}): "
                "rounding far above the dtype's, or computed from slightly different inputs?"
            )
        return f"off by a constant factor {name_factor(c, factors)} (got = {c:.6g} x expected)"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and arrays_match(g.T, e, rtol):
        return "transposed: got equals expected.T"
    return None


def _group(path: str) -> str:
    """The first key of a leaf path: ``[1]`` for ``[1].W``."""
    if path.startswith("[") and "]" in path:
        return path[: path.index("]") + 1]
    return path


def tree_diagnosis(failing: Sequence[LeafResult], paths: Sequence[str]) -> str | None:
    """A statement over the whole tree, when it adds to the leaves' own diagnoses.

    Args:
      failing: the failing :class:`LeafResult` s of one oracle.
      paths: every leaf's path, in tree order.

    Returns:
      ``every leaf is wrong the same way: ...`` or ``wrong only in [1] ([1].W); every other leaf is
      right``; otherwise the list of failing leaves when there are several, else None.

    Example:
      >>> from fnnjax.gradcheck import LeafResult, tree_diagnosis
      >>> bad = LeafResult("[1].b", "autodiff", False, (3,), 1.0, 1.0, (0,), 1.0, 2.0, 1e-12)
      >>> tree_diagnosis([bad], ["[0].W", "[0].b", "[1].W", "[1].b"])
      'wrong only in [1] ([1].b); every other leaf is right'
    """
    if not failing:
        return None
    names = sorted({r.path for r in failing}, key=list(paths).index)
    diags = [r.diagnosis for r in failing]
    if len(paths) > 1 and len(names) == len(paths) and diags[0] and len(set(diags)) == 1:
        return f"every leaf is wrong the same way: {diags[0]}"
    groups = {_group(p) for p in names}
    if len(groups) == 1 and len({_group(p) for p in paths}) > 1:
        return f"wrong only in {groups.pop()} ({', '.join(names)}); every other leaf is right"
    if len(names) > 1:
        return f"wrong in {', '.join(names)}"
    return None


def overall_diagnosis(
    failing: Sequence[LeafResult],
    bad_probes: Sequence[ProbeResult],
    taylor_failed: bool,
    paths: Sequence[str],
    ad_checked: bool,
    fd_checked: bool,
    fd_confirmed: frozenset[str] | None = None,
) -> str:
    """The verdict of a failed check in one line: which oracle disagrees where, and why.

    Only evidence that was computed is named. f itself is blamed (its autodiff disagrees with its
    own values) only when the gradient agrees with one oracle *decisively* and the other disagrees:
    central differences must have decided every element of a leaf where jax.grad disagrees (at an
    optimum they decide nothing), and jax.grad must have been computed for the reverse claim.
    Otherwise the first failing leaf's diagnosis and the :func:`tree_diagnosis` are given.

    Args:
      failing: the failing :class:`LeafResult` s.
      bad_probes: the failing :class:`ProbeResult` s (fast mode).
      taylor_failed: the Taylor test failed.
      paths: every leaf's path, in tree order.
      ad_checked: every element was compared with jax.grad.
      fd_checked: every element was compared with central differences (the full check).
      fd_confirmed: the leaves whose every element central differences decided in the gradient's
        favour (None: as in older versions, every leaf where they did not fail).

    Returns:
      One line.
    """
    ad = [r for r in failing if r.oracle == "autodiff"]
    fd = [r for r in failing if r.oracle == "fd"]
    order = list(paths).index
    ad_paths = {r.path for r in ad}
    confirmed = ad_paths - {r.path for r in fd} if fd_confirmed is None else set(fd_confirmed)
    transposed = any(r.transposed_shape for r in failing)
    if ad and fd_checked and not fd and ad_paths <= confirmed and not transposed:
        return (
            f"your gradient agrees with central differences but not with jax.grad(f) in "
            f"{', '.join(sorted(ad_paths, key=order))}: f's autodiff disagrees with f's own "
            "values there (a wrong custom_jvp/custom_vjp, a stop_gradient, a non-differentiable operation?)"
        )
    if fd and ad_checked and not ad:
        where = sorted({r.path for r in fd} | {p.path for p in bad_probes}, key=order)
        return (
            f"your gradient agrees with jax.grad(f) but not with central differences in "
            f"{', '.join(where)}: f's autodiff disagrees with f's own values there (a wrong "
            "custom_jvp/custom_vjp, a stop_gradient, a non-differentiable operation?) or f is noisy; "
            "the fd tolerance shown is the estimated error of the differences"
        )
    primary = ad or fd
    if primary:
        first = primary[0]
        tree = tree_diagnosis(primary, paths)
        if tree and tree.startswith("every leaf"):
            return tree
        head = f"{first.path}: {first.diagnosis or 'wrong values, no simple pattern'}"
        return f"{head}; {tree}" if tree else head
    if bad_probes:
        where = sorted({p.path for p in bad_probes}, key=order)
        agrees = "your gradient agrees with jax.grad(f) but not" if ad_checked else "your gradient disagrees"
        return (
            f"{agrees} with central differences along random probes in {', '.join(where)}: f's "
            "autodiff disagrees with f's own values there (a wrong custom_jvp/custom_vjp, a "
            "stop_gradient, a non-differentiable operation?) or f is noisy; the fd tolerance shown is "
            "the estimated error of the differences"
        )
    if taylor_failed:
        fd_all = fd_checked and fd_confirmed is not None and set(paths) <= set(fd_confirmed)
        decided = "jax.grad(f)" if ad_checked else "central differences" if fd_all else None
        if decided:
            return (
                f"your gradient agrees with {decided} element by element, but the Taylor remainder "
                "shrinks only like e along a random direction: f's values disagree with that gradient "
                "(a wrong custom_jvp/custom_vjp, a stop_gradient?) or f is not smooth there"
            )
        return "the Taylor remainder shrinks only like e: the gradient is wrong along a random direction"
    return "failed"
