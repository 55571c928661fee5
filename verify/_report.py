"""Reports of a suite run: a terminal table, JSON, and a markdown handout."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from typing import Any

import numpy as np

from verify._runner import SuiteResult

__all__ = ["format_measured", "format_value", "render_markdown", "render_table", "to_json"]


def format_value(value: Any) -> str:
    """A measured value for reading: whole numbers as integers, other floats to 4 significant digits
    (scientific notation outside [1e-3, 1e5)), lists in brackets, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not np.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e7:
            return str(int(value))
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.2e}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if hasattr(value, "item"):
        return format_value(value.item())
    return str(value)


def format_measured(measured: dict[str, Any]) -> str:
    """``name value; name value; ...``."""
    return "; ".join(f"{k} {format_value(v)}" for k, v in measured.items())


def _header(result: SuiteResult) -> str:
    env = result.environment
    mode = "quick" if result.quick else "full"
    return (f"fnnjax verify: {len(result.results)} checks of FORMULAS.md, seed {result.seed}, {mode} run, float64 "
            f"on {env['device']}; fnnjax {env['fnnjax']}, jax {env['jax']}")


def render_table(result: SuiteResult, width: int | None = None) -> str:
    """The terminal report: one row per check (ID, result, what was measured, the criterion), wrapped
    to the terminal width, then the failures with their claim and method, then the summary line.

    Args:
      result: a :class:`~verify.SuiteResult`.
      width: the total width (default: the terminal's, at least 100).

    Returns:
      The report as one string.
    """
    width = width or max(100, shutil.get_terminal_size((120, 24)).columns)
    id_w = max(len(r.id) for r in result.results) + 2 if result.results else 10
    res_w = 7
    rest = width - id_w - res_w - 2
    meas_w = max(30, int(rest * 0.6))
    tol_w = max(20, rest - meas_w)
    lines = [_header(result), ""]
    lines.append(f"{'ID':<{id_w}}{'result':<{res_w}}{'measured':<{meas_w}}  criterion")
    lines.append("-" * min(width, id_w + res_w + meas_w + 2 + tol_w))
    for r in result.results:
        meas = textwrap.wrap(format_measured(r.measured), meas_w) or [""]
        tol = textwrap.wrap(r.tolerance, tol_w) or [""]
        status = "PASS" if r.passed else "FAIL"
        for i in range(max(len(meas), len(tol))):
            left = f"{r.id if i == 0 else '':<{id_w}}{status if i == 0 else '':<{res_w}}"
            m = meas[i] if i < len(meas) else ""
            t = tol[i] if i < len(tol) else ""
            lines.append(f"{left}{m:<{meas_w}}  {t}".rstrip())
    failures = result.failures
    if failures:
        lines += ["", "Failed checks:"]
        for r in failures:
            lines += [f"  {r.id}: {r.claim}", f"    evidence: {r.method}",
                      f"    measured: {format_measured(r.measured)}", f"    expected: {r.tolerance}"]
    lines += ["", f"{len(result.results) - len(failures)} passed, {len(failures)} failed "
                  f"in {result.seconds:.1f} s"]
    return "\n".join(lines)


def to_json(result: SuiteResult) -> str:
    """The JSON report (see :meth:`~verify.SuiteResult.to_dict`), indented."""
    return json.dumps(result.to_dict(), indent=2) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: SuiteResult) -> str:
    """A report a teacher could hand out: what was checked, how, what was measured, and the verdict.

    Returns:
      Markdown text.
    """
    env = result.environment
    failures = result.failures
    verdict = ("every check passed" if not failures
               else f"{len(failures)} check(s) FAILED: " + ", ".join(r.id for r in failures))
    out = [
        "# fnnjax verification report",
        "",
        f"Each formula of the notes (FORMULAS.md, F1-F27) is checked against independent evidence: automatic "
        f"differentiation (jax.grad, jacfwd/jacrev, jvp/vjp), finite differences, exact closed forms, worked "
        f"examples done by hand, or a proof (an LP certificate). Every check can fail; its criterion is stated "
        f"next to what it measured. All arithmetic is float64.",
        "",
        f"**Result: {len(result.results) - len(failures)} of {len(result.results)} checks passed; {verdict}.**",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, seed {result.seed}, "
        f"{'quick' if result.quick else 'full'} run, {result.seconds:.1f} s on {env['device']} "
        f"({env['platform']}); fnnjax {env['fnnjax']}, jax {env['jax']}, jaxlib {env['jaxlib']}, "
        f"numpy {env['numpy']}, scipy {env['scipy']}, Python {env['python']}.",
        "",
        "| ID | Claim | Evidence | Measured | Criterion | Result |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.results:
        out.append(f"| {r.id} | {_md(r.claim)} | {_md(r.method)} | {_md(format_measured(r.measured))} | "
                   f"{_md(r.tolerance)} | {'pass' if r.passed else '**FAIL**'} |")
    out += ["", "Reproduce: `fnnjax verify --seed " + str(result.seed) + (" --quick" if result.quick else "")
            + "` (or `python -m verify`).", ""]
    return "\n".join(out)
