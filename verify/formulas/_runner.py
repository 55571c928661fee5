"""Running checks: float64 scoped to the run, errors captured as failures, timings and environment."""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import jax

from ._registry import Check, Outcome

__all__ = ["CheckResult", "SuiteResult", "environment", "run_check", "run_suite"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The record of one check run: what the JSON report holds for it."""

    id: str
    claim: str
    method: str
    measured: dict[str, Any]
    tolerance: str
    status: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the status is ``"pass"``."""
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "claim", "method", "measured", "tolerance", "status", "seconds"}``, JSON-able."""
        return {
            "id": self.id,
            "claim": self.claim,
            "method": self.method,
            "measured": {k: _jsonable(v) for k, v in self.measured.items()},
            "tolerance": self.tolerance,
            "status": self.status,
            "seconds": round(self.seconds, 3),
        }


@dataclasses.dataclass(frozen=True)
class SuiteResult:
    """Every check result of one run, with the seed, mode, environment and total time."""

    results: tuple[CheckResult, ...]
    seed: int
    quick: bool
    seconds: float
    environment: dict[str, str]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks."""
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: ``{"checks": [...], "passed", "failed", "seed", "quick", "versions",
        "device", "total_seconds"}``."""
        env = dict(self.environment)
        device = env.pop("device")
        return {
            "checks": [r.to_dict() for r in self.results],
            "passed": sum(r.passed for r in self.results),
            "failed": len(self.failures),
            "seed": self.seed,
            "quick": self.quick,
            "versions": env,
            "device": device,
            "total_seconds": round(self.seconds, 2),
        }


def _jsonable(value):
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    try:
        return _jsonable(value.item())  # numpy / jax scalars
    except (AttributeError, ValueError):
        return str(value)


def run_check(check: Check, *, seed: int = 0, quick: bool = False, **implementations) -> CheckResult:
    """Run one check in float64 (``jax.enable_x64(True)``, scoped to this call).

    An exception inside the check is a failure, recorded as ``measured = {"error": "Type: message"}``
    (set ``FNNJAX_DEBUG=1`` to let it propagate instead).

    Args:
      check: the :class:`~verify.Check`.
      seed: the base seed (the check draws its architectures and data from it).
      quick: smaller sizes and fewer seeds (for tests).
      **implementations: replacements for the implementations under test (see each check).

    Returns:
      A :class:`CheckResult`.

    Example:
      >>> from fnnjax.verify import get_check, run_check
      >>> run_check(get_check("F3-linear-collapse"), quick=True).status
      'pass'
    """
    t0 = time.perf_counter()
    try:
        with jax.enable_x64(True):
            outcome = check.fn(seed=seed, quick=quick, **implementations)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check {check.id} returned {type(outcome).__name__}, not an Outcome")
        measured, tolerance, status = outcome.measured, outcome.tolerance, "pass" if outcome.passed else "fail"
    except Exception as err:  # a crash is a failed check, reported as such
        if os.environ.get("FNNJAX_DEBUG"):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        measured, tolerance, status = {"error": f"{type(err).__name__}: {message}"}, "runs without error", "fail"
    return CheckResult(check.id, check.claim, check.method, dict(measured), tolerance, status, time.perf_counter() - t0)


def environment() -> dict[str, str]:
    """The versions (fnnjax, jax, jaxlib, numpy, scipy, python), platform and device of this run."""
    import jaxlib.version
    import numpy
    import scipy

    import fnnjax

    dev = jax.devices()[0]
    return {
        "fnnjax": fnnjax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.version.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "device": f"{dev.platform} ({getattr(dev, 'device_kind', '') or dev})",
    }


def run_suite(checks: Sequence[Check], *, seed: int = 0, quick: bool = False, progress: bool = True) -> SuiteResult:
    """Run checks in order, with a tqdm progress bar on stderr.

    Args:
      checks: e.g. :func:`~verify.all_checks` or :func:`~verify.select_checks` of it.
      seed: the base seed of every check.
      quick: smaller sizes and fewer seeds.
      progress: show the progress bar (on stderr, when it is a terminal).

    Returns:
      A :class:`SuiteResult`.
    """
    import sys

    from tqdm import tqdm

    from fnnjax.cli import show_progress

    t0 = time.perf_counter()
    results = []
    shown = progress and show_progress(sys.stderr)  # the rule of every command: only on a terminal
    bar = tqdm(checks, desc="fnnjax verify", unit="check", file=sys.stderr, disable=not shown, leave=False)
    for c in bar:
        bar.set_postfix_str(c.id)
        results.append(run_check(c, seed=seed, quick=quick))
    return SuiteResult(tuple(results), seed, quick, time.perf_counter() - t0, environment())
