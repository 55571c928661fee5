"""``fnnjax.verify``: the formula suite and the course grader, two subpackages under one name.

The formulas are stated and derived in the documentation's formula pages (``docs/formulas/``, one
heading per formula, e.g. ``docs/formulas/backprop.md#f10``: see :func:`formula_page`).

Each check compares an fnnjax implementation with independent evidence (autodiff of a reference
written from ``jax.nn``, finite differences, closed forms, worked examples, an LP certificate) and
records what it measured against a stated criterion. Run it with ``fnnjax verify`` (or
``python -m fnnjax.verify``), or from Python:

    >>> from fnnjax import verify
    >>> result = verify.run_suite(verify.select_checks(verify.all_checks(), "F3"), progress=False)
    >>> result.passed
    True

Every check takes the implementation under test as a keyword argument (fnnjax's by default), so a
deliberately wrong implementation can be shown to fail::

    >>> wrong = lambda mlp, params, x: fnnjax.forward(mlp, params, x) + 1  # doctest: +SKIP
    >>> verify.run_check(verify.get_check("F3-linear-collapse"), forward=wrong).status  # doctest: +SKIP
    'fail'

Check a hand-written backprop (yours, or a course submission in the cs231n, deeplearning.ai or
Nielsen conventions, run in its own process) with :func:`check_user_backprop`; write Gradescope's
results.json with :func:`gradescope_results` and :func:`write_results`.

The two products live in two subpackages, and this package re-exports the public names of both:
:mod:`fnnjax.verify.formulas` (the checks of F1-F28, their runner and reports) and
:mod:`fnnjax.verify.grader` (a submission's backprop, run in its own process and judged in its
course's terms). In a checkout the folder is ``verify/`` at the repository's top level.
"""

from .formulas import (
    CHECK_MODULE_PREFIX,
    FORMULA_PAGES,
    Check,
    CheckResult,
    Outcome,
    SuiteResult,
    all_checks,
    check,
    checks_in,
    environment,
    formula_page,
    get_check,
    render_markdown,
    render_table,
    run_check,
    run_suite,
    select_checks,
    to_json,
)
from .grader import (
    BackpropReport,
    CaseResult,
    SubmissionError,
    check_user_backprop,
    failure_results,
    gradescope_results,
    load_user_function,
    write_results,
)

__all__ = [
    "BackpropReport",
    "CaseResult",
    "SubmissionError",
    "CHECK_MODULE_PREFIX",
    "FORMULA_PAGES",
    "Check",
    "CheckResult",
    "Outcome",
    "SuiteResult",
    "all_checks",
    "check",
    "check_user_backprop",
    "checks_in",
    "environment",
    "failure_results",
    "formula_page",
    "get_check",
    "gradescope_results",
    "load_user_function",
    "render_markdown",
    "render_table",
    "run_check",
    "run_suite",
    "select_checks",
    "to_json",
    "write_results",
]
