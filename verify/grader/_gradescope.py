"""Gradescope's ``results.json`` from a backprop check: one test per case, written atomically.

The format (Gradescope's autograder specification): a top-level ``score`` (here the sum of the
tests), ``execution_time`` (seconds), ``output`` (a summary the student reads), ``output_format``,
``visibility``, ``extra_data`` and ``tests``, each with ``name``, ``number``, ``score``,
``max_score``, ``status`` (``passed``/``failed``), ``output`` (what is wrong, the diagnosis),
``output_format`` and ``visibility``. The total (``--points``) is split over the cases in whole
hundredths, so the test scores add up to it exactly; a case the course never builds (``optional``)
carries no points. With per-function credit (the course functions the file defines, each checked on
its own cases) every function is a *part*, and so is the whole network: the total is split equally
over the parts, then each part's share equally over its cases (:func:`split_parts`). A submission
that cannot be checked at all (it does not import, it fits no convention) or a grader that fails
still gets a file: every case a test with score 0 and the message, never a missing file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ._backprop_report import BackpropReport, CaseResult, FunctionCaseResult, FunctionResult
from ._convention import Case, Convention

__all__ = ["VISIBILITIES", "failure_results", "gradescope_results", "split_parts", "split_points", "write_results"]

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
"""Gradescope's visibility settings (while any test is hidden the student does not see the total)."""


def split_points(total: float, n: int) -> list[float]:
    """``total`` over ``n`` tests in whole hundredths, adding up to ``total`` exactly.

    Example:
      >>> from fnnjax.verify.grader._gradescope import split_points
      >>> split_points(10, 6), sum(split_points(10, 6))
      ([1.67, 1.67, 1.67, 1.67, 1.66, 1.66], 10.0)
    """
    cents = round(total * 100)
    base, extra = divmod(cents, n)
    return [(base + (1 if k < extra else 0)) / 100 for k in range(n)]


def _case_output(result: CaseResult, conv: Convention) -> str:
    if not result.passed or result.check is None:  # a passed case always has its gradient check
        return "\n".join(line.strip() if k == 0 else line[2:] for k, line in enumerate(result.lines(conv)))
    worst = max((r.rel_err for r in result.check.leaves if r.oracle == "autodiff"), default=0.0)
    text = (
        f"{conv.describe_case(result.case)}: every gradient agrees with jax.grad and central differences "
        f"(largest relative error {worst:.1e})"
    )
    if result.loss is not None:
        text += f"; the loss {result.loss.got:.10g} agrees with the reference"
    return text


def split_parts(total: float, counts: list[int]) -> list[list[float]]:
    """``total`` split equally over the parts, then each part's share equally over its cases, in whole
    hundredths that add up to ``total`` exactly.

    Args:
      total: the points (``--points``).
      counts: the number of cases of each part (each at least 1).

    Returns:
      One list of points per part, one entry per case.

    Example:
      >>> from fnnjax.verify.grader._gradescope import split_parts
      >>> parts = split_parts(10, [2, 3, 4])
      >>> parts
      [[1.67, 1.67], [1.11, 1.11, 1.11], [0.84, 0.83, 0.83, 0.83]]
      >>> round(sum(map(sum, parts)), 2)
      10.0
    """
    return [split_points(share, n) for share, n in zip(split_points(total, len(counts)), counts)]


def _function_output(function: FunctionResult, number: int, case: FunctionCaseResult) -> str:
    text = f"{function.name}, case {number} ({case.label}): "
    if case.passed:
        return text + case.message
    if case.kind == "unfinished":
        return text + case.message
    prefix = {"raised": "your function raised "}.get(case.kind, "")
    text += prefix + case.message
    if case.printed and case.kind in ("raised", "crash", "exit"):
        tail = case.printed.strip().splitlines()[-3:]
        text += "".join(f"\nit printed: {line[:200]}" for line in tail)
    return text


def _network_tests(report: BackpropReport, prefix: str, number: str) -> list[tuple[str, str, bool, str, bool]]:
    """(name, number, passed, output, scored) of each whole-network case."""
    conv = report.conv
    return [
        (
            prefix + conv.case_name(k, r.case),
            f"{number}{k}",
            r.passed,
            _case_output(r, conv),
            not getattr(r.case, "optional", False),
        )
        for k, r in enumerate(report.cases, start=1)
    ]


def gradescope_results(
    report: BackpropReport, *, points: float | None = None, visibility: str = "visible"
) -> dict[str, Any]:
    """The results.json contents for a finished check.

    One test per case of the whole network. With per-function credit (``report.functions``: the
    course functions the file defines) there is one *part* per function plus the whole network (if
    the file has one), one test per case of each part (``affine_backward: case 2 (N=4, D=6, M=3)``),
    numbered ``part.case``; ``points`` is split equally over the parts and each part's points
    equally over its cases (:func:`split_parts`). A case the course never builds (``optional``)
    carries no points.

    Args:
      report: the :class:`BackpropReport`.
      points: the total score (default: 1 per case that carries points).
      visibility: of every test and of the summary.

    Returns:
      A JSON-able dict in Gradescope's format.
    """
    conv = report.conv
    parts: list[list[tuple[str, str, bool, str, bool]]] = []
    if report.functions:
        if report.cases:
            parts.append(_network_tests(report, "whole network: ", "1."))
        for p, f in enumerate(report.functions, start=len(parts) + 1):
            parts.append(
                [
                    (f"{f.name}: case {k} ({c.label})", f"{p}.{k}", c.passed, _function_output(f, k, c), True)
                    for k, c in enumerate(f.cases, start=1)
                ]
            )
    else:
        parts.append(_network_tests(report, "", ""))
    scored = [[t for t in part if t[4]] for part in parts]
    if points is None:
        maxima = [[1.0] * len(part) for part in scored]
    else:
        maxima = split_parts(float(points), [len(part) for part in scored if part])
        maxima_iter = iter(maxima)
        maxima = [next(maxima_iter) if part else [] for part in scored]
    tests = []
    for part, most in zip(parts, maxima):
        values = iter(most)
        for name, number, passed, output, counts in part:
            best = next(values) if counts else 0.0
            tests.append(
                {
                    "name": name,
                    "number": number,
                    "score": best if passed else 0.0,
                    "max_score": best,
                    "status": "passed" if passed else "failed",
                    "output": output,
                    "output_format": "text",
                    "visibility": visibility,
                }
            )
    lines = []
    if report.cases:
        passed = sum(r.passed for r in report.cases)
        lines.append(f"{passed} of {len(report.cases)} cases pass ({conv.name} convention: {conv.title}).")
        if report.entry is not None:
            lines.append(f"Checked {report.function}: {report.entry.why}.")
        lines.append(
            "Each case runs your code on a new network (sizes and batch in its name) in float64 and compares "
            f"every gradient with jax.grad of {conv.reference} and with central differences."
        )
        first = report.first_failure
        if first is not None:
            lines.append(
                f"First failing case: #{report.cases.index(first) + 1} (see its test below for the diagnosis)."
            )
    if report.functions:
        ok = sum(f.passed for f in report.functions)
        lines.append(
            f"{ok} of {len(report.functions)} functions you wrote pass on their own cases ({conv.name}); each is "
            "compared with the grader's own reference by the course's relative error."
        )
        lines += [line.strip() for line in report.functions_lines()[1:]]
    extra: dict[str, Any] = {"convention": conv.name, "function": report.function, "seed": report.seed}
    if report.functions:
        extra["functions"] = {f.name: f.to_dict()["status"] for f in report.functions}
    return {
        "score": round(sum(t["score"] for t in tests), 2),
        "execution_time": round(report.seconds, 2),
        "output": "\n".join(lines),
        "output_format": "text",
        "visibility": visibility,
        "extra_data": extra,
        "tests": tests,
    }


def failure_results(
    message: str,
    *,
    convention: Convention | None = None,
    cases: tuple[Case, ...] | None = None,
    points: float | None = None,
    visibility: str = "visible",
    seconds: float = 0.0,
) -> dict[str, Any]:
    """The results.json contents when nothing could be judged: every case a test with score 0.

    Args:
      message: what went wrong, in one line (shown in every test and in the summary).
      convention: the convention, when known: its cases are the tests.
      cases: the cases (default: the convention's; one test ``submission`` when it is unknown).
      points: the total score (default: 1 per case).
      visibility: of every test and of the summary.
      seconds: the time spent.

    Returns:
      A JSON-able dict in Gradescope's format, with score 0.
    """
    if cases is None and convention is not None:
        cases = convention.all_cases
    names = (
        [convention.case_name(k, c) for k, c in enumerate(cases, start=1)] if cases and convention else ["submission"]
    )
    scored = [not getattr(c, "optional", False) for c in cases] if cases and convention else [True]
    total = float(sum(scored) if points is None else points)
    shares = iter(split_points(total, sum(scored)) if any(scored) else [])
    maxima = [next(shares) if counts else 0.0 for counts in scored]  # an optional case carries no points
    tests = [
        {
            "name": name,
            "number": str(k),
            "score": 0.0,
            "max_score": most,
            "status": "failed",
            "output": message,
            "output_format": "text",
            "visibility": visibility,
        }
        for k, (name, most) in enumerate(zip(names, maxima), start=1)
    ]
    return {
        "score": 0.0,
        "execution_time": round(seconds, 2),
        "output": f"Your submission could not be checked: {message}",
        "output_format": "text",
        "visibility": visibility,
        "extra_data": {"convention": None if convention is None else convention.name},
        "tests": tests,
    }


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def write_results(path: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Write results.json atomically: a temporary file in the same folder, flushed, then renamed.

    A reader (Gradescope, or a crash in between) sees the old file or the whole new one, never half.

    Returns:
      The path written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_finite(results), f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
