"""What a gradient check measured: per-leaf results, probes, the Taylor test, and the report."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["GradCheckReport", "GradientCheckError", "LeafResult", "ProbeResult", "TaylorResult"]


class LeafResult(NamedTuple):
    """One leaf of the gradient compared with one oracle, element by element.

    Attributes:
      path: the leaf's pytree path, e.g. ``[0].W``.
      oracle: ``autodiff`` or ``fd``.
      passed: no element disagrees: every checked element within its tolerance (and the leaf has
        its parameter's shape). Agreement decides only the elements counted in ``inconclusive``'s
        complement.
      shape: the shape of the leaf under test.
      max_abs_err: ``max_i |G_i - E_i|`` over the checked elements.
      rel_err: ``max_i |G_i - E_i| / max_i |E_i|`` (normwise relative error of the leaf).
      worst_index: the element with the largest error-to-tolerance ratio.
      expected: E at the worst element (from the oracle).
      got: G at the worst element.
      tolerance: the tolerance at the worst element.
      skipped: elements not judged because the stencil straddles a kink.
      diagnosis: what the error looks like (transposed, a constant factor, ...) or None.
      param_shape: the parameter's shape (differs from ``shape`` for a transposed matrix).
      inconclusive: elements within tolerance that this oracle cannot decide: its tolerance exceeds
        1 % of the element's scale (central differences where ``|df/dtheta_i|`` is below their noise,
        e.g. at an optimum), so a wrong value would pass there too.
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
    param_shape: tuple[int, ...] | None = None
    inconclusive: int = 0

    @property
    def transposed_shape(self) -> bool:
        """The leaf under test has the transposed shape of its (nonsquare) parameter."""
        return self.param_shape is not None and tuple(self.shape) != tuple(self.param_shape)


class ProbeResult(NamedTuple):
    """One random projection in fast mode: ``<G, u>`` against central differences of f along u.

    Attributes:
      path: the leaf the probe u lives on.
      probe: the probe's number on that leaf.
      oracle: ``fd`` (Richardson-extrapolated central differences along u).
      expected: the oracle's directional derivative.
      got: ``<G, u>`` (extrapolated like the differences, over the steps actually taken).
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
      passed: True when a rate is >= 1.5 (a right gradient gives 2: corroborating evidence, never
        enough to pass a check), False when the rates agree on 1 (a wrong one gives 1: the check
        fails), None when inconclusive.
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


def jsonable(v: Any) -> Any:
    """``v`` with non-finite floats as strings, tuples as lists and numpy scalars as Python numbers."""
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.floating, np.integer)):
        return jsonable(v.item())
    return v


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """Everything :func:`fnnjax.check_gradients` measured.

    Attributes:
      passed: a decisive oracle (jax.grad, or central differences where they resolve the
        derivative) agrees with every element and no oracle disagrees anywhere.
      mode: ``full`` (every element against every oracle) or ``fast`` (every element against
        jax.grad, random projections against finite differences).
      dtype: the parameters' dtype.
      num_params: P, the number of scalar parameters.
      oracles: the oracles used.
      leaves: one :class:`LeafResult` per leaf and elementwise oracle.
      probes: fast mode's :class:`ProbeResult` s.
      taylor: the :class:`TaylorResult`, or None.
      diagnosis: the verdict over the whole tree, in words, or None when it passed.
      step: the base finite-difference step h.
      inconclusive: nothing disagrees but some element is decided by no oracle (see
        :attr:`verdict`).
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
    inconclusive: bool = False

    @property
    def verdict(self) -> str:
        """``pass``, ``fail`` or ``inconclusive`` (nothing disagrees, but no oracle decides some element)."""
        return "pass" if self.passed else "inconclusive" if self.inconclusive else "fail"

    def failures(self) -> tuple[LeafResult, ...]:
        """The failing :class:`LeafResult` s, in leaf order."""
        return tuple(r for r in self.leaves if not r.passed)

    def render(self) -> str:
        """The report as a table, one line per leaf and oracle, then the verdict."""
        head = (
            f"gradient check: {self.verdict.upper()} ({self.mode} mode, {self.dtype}, "
            f"{self.num_params} parameters; oracles: {', '.join(self.oracles)})"
        )
        lines = [head]
        if self.leaves:
            width = max(len(r.path) for r in self.leaves)
            lines.append(
                f"  {'leaf':<{width}}  {'oracle':<8}  {'max abs err':>11}  {'rel err':>9}  "
                f"{'worst':<10} {'expected':>11} {'got':>11} {'tolerance':>9}  result"
            )
            for r in self.leaves:
                status = "pass" if r.passed else "FAIL"
                if r.passed and r.inconclusive:
                    status = (
                        "inconclusive" if r.inconclusive + r.skipped >= math.prod(r.shape) else "pass"
                    ) + f" ({r.inconclusive} undecided)"
                if r.skipped:
                    status += f" ({r.skipped} at kinks skipped)"
                if r.diagnosis and not r.passed:
                    status += f": {r.diagnosis}"
                lines.append(
                    f"  {r.path:<{width}}  {r.oracle:<8}  {_fmt(r.max_abs_err, '11.2e')}  "
                    f"{_fmt(r.rel_err, '9.1e')}  {str(list(r.worst_index)):<10} {_fmt(r.expected, '11.4e')} "
                    f"{_fmt(r.got, '11.4e')} {_fmt(r.tolerance, '9.1e')}  {status}"
                )
        if self.probes:
            bad = [p for p in self.probes if not p.passed]
            skipped = sum(p.skipped for p in self.probes)
            lines.append(
                f"  probes: {len(self.probes) - len(bad)} of {len(self.probes)} pass"
                + (f" ({skipped} skipped at kinks)" if skipped else "")
            )
            for p in bad[:6]:
                lines.append(
                    f"    {p.path} probe {p.probe} ({p.oracle}): <G, u> = {p.got:.6e}, oracle "
                    f"{p.expected:.6e}, |diff| {p.abs_err:.2e} > tolerance {p.tolerance:.1e}"
                )
        if self.taylor is not None:
            t = self.taylor
            rates = ", ".join("-" if r is None else f"{r:.2f}" for r in t.rates)
            verdict = {True: "pass", False: "FAIL", None: "inconclusive"}[t.passed]
            lines.append(
                f"  taylor remainder: rates {rates} along +d, -d (2 = right gradient, 1 = wrong): {verdict}; {t.note}"
            )
        if self.diagnosis:
            lines.append(f"  diagnosis: {self.diagnosis}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (non-finite floats as strings)."""
        return jsonable(
            {
                "passed": self.passed,
                "verdict": self.verdict,
                "mode": self.mode,
                "dtype": self.dtype,
                "num_params": self.num_params,
                "oracles": list(self.oracles),
                "step": self.step,
                "diagnosis": self.diagnosis,
                "leaves": [r._asdict() for r in self.leaves],
                "probes": [p._asdict() for p in self.probes],
                "taylor": None if self.taylor is None else self.taylor._asdict(),
            }
        )

    def raise_if_failed(self) -> None:
        """Raise :class:`GradientCheckError` (an AssertionError) with the rendered report on failure."""
        if not self.passed:
            raise GradientCheckError(self.render())
