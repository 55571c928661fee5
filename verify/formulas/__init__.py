"""The formula suite: one or more checks per formula F1-F28, each against independent evidence.

Each check compares an fnnjax implementation with independent evidence (autodiff of a reference
written from ``jax.nn``, finite differences, closed forms, worked examples, an LP certificate) and
records what it measured against a stated criterion (an :class:`Outcome`). :func:`run_suite` runs
checks in float64 on the CPU; :func:`render_table`, :func:`render_markdown` and :func:`to_json`
report them; :func:`formula_page` names the documentation page that derives a formula.

A new check module is one file: ``_checks_<topic>.py`` in this folder, defining functions decorated
with :func:`check`; the suite finds it by its name (:data:`CHECK_MODULE_PREFIX`).

Example:
  >>> from fnnjax.verify.formulas import all_checks, run_suite, select_checks
  >>> run_suite(select_checks(all_checks(), "F3"), progress=False).passed
  True
"""

from ._registry import (
    CHECK_MODULE_PREFIX,
    CHECKS_PAGE,
    FORMULA_PAGES,
    Check,
    Outcome,
    all_checks,
    check,
    check_page,
    checks_in,
    formula_page,
    get_check,
    select_checks,
)
from ._report import format_value, render_list, render_markdown, render_table, to_json
from ._runner import CheckResult, SuiteResult, environment, run_check, run_suite

__all__ = [
    "CHECK_MODULE_PREFIX",
    "CHECKS_PAGE",
    "FORMULA_PAGES",
    "Check",
    "CheckResult",
    "Outcome",
    "SuiteResult",
    "all_checks",
    "check",
    "check_page",
    "checks_in",
    "environment",
    "format_value",
    "formula_page",
    "get_check",
    "render_list",
    "render_markdown",
    "render_table",
    "run_check",
    "run_suite",
    "select_checks",
    "to_json",
]
