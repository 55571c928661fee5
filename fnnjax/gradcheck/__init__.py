"""Check a hand-written gradient against layered oracles, leaf by leaf (F19-F21).

:func:`check_gradients` compares ``grad_f(params, *args)`` with the gradient of the scalar
``f(params, *args)`` found three independent ways, each with its own tolerance:

- ``autodiff``: ``jax.grad(f)``, exact up to rounding, judged against the rounding of the
  *computation*, not of its result: ``|G_i - A_i| <= 4 (u_A + u_G) s_i`` where ``u_A s_i`` is the
  size of the first-order rounding error of ``A_i``, measured by forward-mode differentiation of
  jax.grad's program with respect to every operation's rounding (:func:`rounding_scales`: sums of n
  terms err like ``sqrt(n - 1) u sum |terms|`` in any order, products and library functions like
  ``u |result|``). At an optimum, a trained point or a saddle the gradient is small but its terms
  are not, and neither is their rounding: a right gradient passes there, in float32 and float64.
- ``fd``: central differences with Richardson extrapolation, one coordinate at a time. The step is
  ``h_i = eps^(1/3) max(1, |theta_i|)`` (F19: it balances the O(h^2) truncation error against the
  O(u |f| / h) rounding error). The tolerance is twice the estimated error of the extrapolated
  estimate: the truncation error measured from the two steps, ``|D(h) - D(2h)| / 3``, plus the
  rounding bound ``1.5 delta / h`` with ``delta = max(8 eps |f|, 4 u sigma(f))``, plus the
  gradient's own rounding. Where that tolerance exceeds 1 % of ``|D_i|`` (at an optimum: the noise
  ``eps |f| / h`` swamps the derivative) the differences cannot *decide* the element: agreement
  there is inconclusive, not a pass.
- ``taylor``: the Taylor-remainder test along a random direction d and along -d.
  ``r(e) = |f(theta + e d) - f(theta) - e <G, d>|`` shrinks like ``e^2`` when G is the gradient
  and like ``e`` when it is not. It can fail a check, never pass one: an error in a few elements
  barely moves a random direction.

``passed`` is True only when a decisive oracle agrees with every element and no oracle disagrees
anywhere; a check where nothing disagrees but some element is decided by no oracle is
*inconclusive* (``report.verdict``). Choices that cannot decide are refused at the call:
``oracles=("taylor",)`` and ``fast=True`` without ``"autodiff"``.

Kinks (ReLU at 0, a step's jump) are recognised from the finite-difference stencil itself: when the
slope changes across the stencil by at least the disagreement, the coordinate is counted as
*skipped at a kink*, not failed; where the stencil straddles a kink, a value equal to either
one-sided derivative is accepted by the autodiff oracle too (``relu'(0)`` may be 0 or 1).

``fast=True`` is for large nets: every element is still compared with one reverse pass of
``jax.grad``, but the O(P) per-coordinate differences are replaced by a few Gaussian probes u per
leaf, ``<G, u>`` against central differences along u, with tolerances from the rounding of f along
u, never from the size of the probes.

The building blocks are public, for checkers that lay out their own oracles (``fnnjax verify
--backprop`` evaluates the oracles of each case of a course's convention next to the reference
loss written in the course's layout):

- :func:`leaf_layout` / :class:`LeafLayout` and :func:`flat_function`: params <-> one flat vector;
- :func:`fd_steps`, :func:`plan_oracles`, :func:`evaluate_oracles`: where f is evaluated, and the
  evaluation with the rounding measurement (traceable);
- :func:`analyze_full`: the verdict from evaluated oracles; :func:`central_differences`;
- :func:`rounding_scales` / :class:`RoundingScales`, :func:`gradient_tolerance`, :func:`sum_weight`:
  the rounding rule;
- :func:`diagnose_leaf`, :func:`tree_diagnosis`, :func:`fit_combination`, :func:`name_factor`,
  :func:`arrays_match`, :func:`match_rtol`, :func:`autodiff_rtol`: diagnoses and tolerances;
- the result types :class:`GradCheckReport`, :class:`LeafResult`, :class:`ProbeResult`,
  :class:`TaylorResult`, :class:`OraclePlan`, :class:`FullOracles`.

Example:
  >>> import jax.numpy as jnp
  >>> from fnnjax.gradcheck import check_gradients
  >>> f = lambda p: jnp.sum(p["w"] ** 3)
  >>> check_gradients(f, lambda p: {"w": 3 * p["w"] ** 2}, {"w": jnp.array([1.0, 2.0])}).passed
  True
  >>> check_gradients(f, lambda p: {"w": 3 * p["w"]}, {"w": jnp.array([1.0, 2.0])}).diagnosis
  "['w']: wrong values, no simple pattern"
"""

from fnnjax.gradcheck._check import FULL_FD_LIMIT, check_gradients
from fnnjax.gradcheck._diagnose import arrays_match, diagnose_leaf, fit_combination, name_factor, tree_diagnosis
from fnnjax.gradcheck._judge import ORACLES, analyze_full
from fnnjax.gradcheck._layout import LeafLayout, flat_function, leaf_layout
from fnnjax.gradcheck._oracles import FullOracles, OraclePlan, evaluate_oracles, fd_steps, plan_oracles
from fnnjax.gradcheck._report import GradCheckReport, GradientCheckError, LeafResult, ProbeResult, TaylorResult
from fnnjax.gradcheck._rounding import SAMPLES, RoundingScales, rounding_scales, sum_weight
from fnnjax.gradcheck._stencil import central_differences
from fnnjax.gradcheck._taylor import TAYLOR_START, TAYLOR_STEPS
from fnnjax.gradcheck._tolerance import RESOLUTION, SAFETY, autodiff_rtol, coarser, gradient_tolerance, match_rtol

__all__ = [
    "FULL_FD_LIMIT",
    "ORACLES",
    "RESOLUTION",
    "SAFETY",
    "SAMPLES",
    "TAYLOR_START",
    "TAYLOR_STEPS",
    "FullOracles",
    "GradCheckReport",
    "GradientCheckError",
    "LeafLayout",
    "LeafResult",
    "OraclePlan",
    "ProbeResult",
    "RoundingScales",
    "TaylorResult",
    "analyze_full",
    "arrays_match",
    "autodiff_rtol",
    "coarser",
    "central_differences",
    "check_gradients",
    "diagnose_leaf",
    "evaluate_oracles",
    "fd_steps",
    "fit_combination",
    "flat_function",
    "gradient_tolerance",
    "leaf_layout",
    "match_rtol",
    "name_factor",
    "plan_oracles",
    "rounding_scales",
    "sum_weight",
    "tree_diagnosis",
]
