"""Reports of a suite run: a terminal table, JSON, and a markdown handout."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._registry import Check, check_page, formula_page
from ._runner import SuiteResult

__all__ = ["format_measured", "format_value", "render_list", "render_markdown", "render_table", "to_json"]


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


FORMULA_DIR = "docs/formulas/"
"""Where the formula pages are, repository-relative (the prefix of every :func:`~verify.formula_page`)."""


def _header(result: SuiteResult) -> str:
    env = result.environment
    mode = "quick" if result.quick else "full"
    return (
        f"fnnjax verify: {len(result.results)} checks of the formulas F1-F28, seed {result.seed}, {mode} run, "
        f"float64 on {env['device']}; fnnjax {env['fnnjax']}, jax {env['jax']}\n"
        f"Each formula is derived in {FORMULA_DIR}<page>#f<number> (the page under each ID below)."
    )


def _short_page(check_id: str) -> str:
    page = formula_page(check_id)
    return page.removeprefix(FORMULA_DIR) if page else ""


def render_list(checks: Sequence[Check]) -> str:
    """What ``fnnjax verify --list`` prints: one line per check with its ID, the formula's page, the
    check's own entry on the checks page (claim, evidence, criterion, source) and its claim.

    Example:
      >>> from fnnjax.verify import all_checks
      >>> from fnnjax.verify.formulas._report import render_list
      >>> print(render_list(all_checks()[:1]))  # doctest: +ELLIPSIS
      F1-composition  docs/formulas/forward.md#f1  docs/checks.md#f1-composition  z(l) = W(l) a(l-1) + b(l), ...
    """
    id_w = max(len(c.id) for c in checks) + 2
    page_w = max(len(c.formula_page or "") for c in checks) + 2
    docs_w = max(len(check_page(c.id)) for c in checks) + 2
    return "\n".join(
        f"{c.id:<{id_w}}{c.formula_page or '':<{page_w}}{check_page(c.id):<{docs_w}}{c.claim}" for c in checks
    )


def render_table(result: SuiteResult, width: int | None = None) -> str:
    """The terminal report: one row per check (ID, result, what was measured, the criterion), wrapped
    to the terminal width, with the check's formula page under its ID; then the failures with their
    claim, method and formula page; then the summary line.

    Args:
      result: a :class:`~verify.SuiteResult`.
      width: the total width (default: the terminal's, at least 100).

    Returns:
      The report as one string.
    """
    width = width or max(100, shutil.get_terminal_size((120, 24)).columns)
    id_w = max(max(len(r.id), len(_short_page(r.id)) + 2) for r in result.results) + 2 if result.results else 10
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
        page = _short_page(r.id)
        ids = [r.id] + ([f"  {page}"] if page else [])
        for i in range(max(len(meas), len(tol), len(ids))):
            left = f"{ids[i] if i < len(ids) else '':<{id_w}}{status if i == 0 else '':<{res_w}}"
            m = meas[i] if i < len(meas) else ""
            t = tol[i] if i < len(tol) else ""
            lines.append(f"{left}{m:<{meas_w}}  {t}".rstrip())
    failures = result.failures
    if failures:
        lines += ["", "Failed checks:"]
        for r in failures:
            lines += [
                f"  {r.id}: {r.claim}",
                f"    evidence: {r.method}",
                f"    measured: {format_measured(r.measured)}",
                f"    expected: {r.tolerance}",
            ]
            if formula_page(r.id):
                lines.append(f"    formula:  {formula_page(r.id)}")
            lines.append(f"    check:    {check_page(r.id)}")
    lines += ["", f"{len(result.results) - len(failures)} passed, {len(failures)} failed in {result.seconds:.1f} s"]
    return "\n".join(lines)


def to_json(result: SuiteResult) -> str:
    """The JSON report (see :meth:`~verify.SuiteResult.to_dict`), indented; after each check's ``"id"``
    come where its formula is derived, ``"formula_page"`` (e.g. ``"docs/formulas/backprop.md#f10"``),
    and the check's own entry, ``"check_page"`` (e.g. ``"docs/checks.md#f10-softmax-ce"``), both
    repository-relative, as ``fnnjax verify --list`` names them.

    Args:
      result: a :class:`~verify.SuiteResult`.

    Returns:
      The report as JSON text, ending with a newline.

    Example:
      >>> import json
      >>> from fnnjax.verify import get_check, run_suite, to_json
      >>> report = json.loads(to_json(run_suite([get_check("F27-weight-count")], quick=True, progress=False)))
      >>> report["checks"][0]["formula_page"], report["checks"][0]["check_page"]
      ('docs/formulas/generalisation.md#f27', 'docs/checks.md#f27-weight-count')
    """
    report = result.to_dict()
    report["checks"] = [
        {
            "id": c["id"],
            "formula_page": formula_page(c["id"]),
            "check_page": check_page(c["id"]),
            **{k: v for k, v in c.items() if k != "id"},
        }
        for c in report["checks"]
    ]
    return json.dumps(report, indent=2) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: SuiteResult) -> str:
    """A report a teacher could hand out: what was checked, how, what was measured, and the verdict.

    Returns:
      Markdown text.
    """
    env = result.environment
    failures = result.failures
    verdict = (
        "every check passed"
        if not failures
        else f"{len(failures)} check(s) FAILED: " + ", ".join(r.id for r in failures)
    )
    out = [
        "# fnnjax verification report",
        "",
        "Each formula F1-F28 is checked against independent evidence: automatic "
        "differentiation (jax.grad, jacfwd/jacrev, jvp/vjp), finite differences, exact closed forms, worked "
        "examples done by hand, or a proof (an LP certificate). Every check can fail; its criterion is stated "
        "next to what it measured. All arithmetic is float64. Each formula is stated and derived on the page "
        f"of the fnnjax documentation named in the Formula column ({FORMULA_DIR} in the repository); each check "
        "has its own entry (claim, evidence, criterion, source) on the page named in the Check entry column.",
        "",
        f"**Result: {len(result.results) - len(failures)} of {len(result.results)} checks passed; {verdict}.**",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, seed {result.seed}, "
        f"{'quick' if result.quick else 'full'} run, {result.seconds:.1f} s on {env['device']} "
        f"({env['platform']}); fnnjax {env['fnnjax']}, jax {env['jax']}, jaxlib {env['jaxlib']}, "
        f"numpy {env['numpy']}, scipy {env['scipy']}, Python {env['python']}.",
        "",
        "| ID | Formula | Check entry | Claim | Evidence | Measured | Criterion | Result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.results:
        page = formula_page(r.id)
        out.append(
            f"| {r.id} | {f'`{page}`' if page else ''} | `{check_page(r.id)}` | {_md(r.claim)} | {_md(r.method)} | "
            f"{_md(format_measured(r.measured))} | {_md(r.tolerance)} | {'pass' if r.passed else '**FAIL**'} |"
        )
    out += [
        "",
        "Reproduce: `fnnjax verify --seed "
        + str(result.seed)
        + (" --quick" if result.quick else "")
        + "` (or `python -m fnnjax.verify`).",
        "",
    ]
    return "\n".join(out)
