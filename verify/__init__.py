"""fnnjax's verification suite: one or more checks per formula F1-F28.

The formulas are stated and derived in the documentation's formula pages (``docs/formulas/``, one
heading per formula, e.g. ``docs/formulas/backprop.md#f10``: see :func:`formula_page`).

Each check compares an fnnjax implementation with independent evidence (autodiff of a reference
written from ``jax.nn``, finite differences, closed forms, worked examples, an LP certificate) and
records what it measured against a stated criterion. Run it with ``fnnjax verify`` (or
``python -m verify``), or from Python:

    >>> import verify
    >>> result = verify.run_suite(verify.select_checks(verify.all_checks(), "F3"), progress=False)
    >>> result.passed
    True

Every check takes the implementation under test as a keyword argument (fnnjax's by default), so a
deliberately wrong implementation can be shown to fail::

    >>> wrong = lambda mlp, params, x: fnnjax.forward(mlp, params, x) + 1  # doctest: +SKIP
    >>> verify.run_check(verify.get_check("F3-linear-collapse"), forward=wrong).status  # doctest: +SKIP
    'fail'

A new check module is one file: ``verify/_checks_<topic>.py`` defining functions decorated with
:func:`check` (see :mod:`verify._registry`); the suite finds it by its name.
"""

from verify._registry import (CHECK_MODULE_PREFIX, FORMULA_PAGES, Check, Outcome, all_checks, check, checks_in,
                              formula_page, get_check, select_checks)
from verify._report import render_markdown, render_table, to_json
from verify._runner import CheckResult, SuiteResult, environment, run_check, run_suite

__all__ = [
    "CHECK_MODULE_PREFIX",
    "FORMULA_PAGES",
    "Check",
    "CheckResult",
    "Outcome",
    "SuiteResult",
    "all_checks",
    "check",
    "checks_in",
    "environment",
    "formula_page",
    "get_check",
    "render_markdown",
    "render_table",
    "run_check",
    "run_suite",
    "select_checks",
    "to_json",
]
