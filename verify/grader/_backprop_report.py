"""What checking a backprop found: one :class:`CaseResult` per case, the :class:`BackpropReport`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, cast

from fnnjax import gradcheck as gc

from ._convention import Case, Convention, Entry
from ._diagnosis import Code, kind_code

__all__ = ["BackpropReport", "CaseResult", "FunctionCaseResult", "FunctionResult", "ValueCheck"]


class ValueCheck(NamedTuple):
    """A returned value (the loss, the network output) against the reference.

    Attributes:
      name: what it is, in the course's words (``the loss``).
      expected: the reference value (the worst element for an array).
      got: the returned value there.
      passed: within tolerance.
      tolerance: the tolerance.
      diagnosis: what the difference looks like, or None.
    """

    name: str
    expected: float
    got: float
    passed: bool
    tolerance: float
    diagnosis: str | None = None


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """One case of a backprop check.

    Attributes:
      case: the :class:`Case`.
      passed: every parameter agrees with jax.grad and central differences (and the returned loss
        or output with the reference, and the inputs were left alone).
      check: the :class:`fnnjax.GradCheckReport` (None when no gradient came back).
      error: what went wrong when no gradient could be judged (the exception, the timeout, the
        structure that does not fit), in one line, or None.
      failing: the failing parameters, in the course's names (``grads['W1']``, ``W^(1)``).
      diagnosis: diagnosis lines for a wrong gradient or loss.
      central_difference: the central-difference estimate at the worst element of the worst failing
        parameter, or None.
      kind: ``ok`` (judged), or the kind of failure: ``raised``, ``exit``, ``contract``, ``timeout``,
        ``crash``, ``output``, ``wire``, ``structure``, ``modified``, ``load``.
      loss: the returned loss against the reference (conventions that return one), or None.
      output: the returned network output against the reference (deeplearning.ai's AL), or None.
      notes: further failures found (inputs modified in place).
      seconds: the submission's time on this case.
      printed: the end of what the submission printed, when the case failed.
      codes: the stable :class:`~fnnjax.verify.grader._diagnosis.Code` of each mistake found (with its
        layer where one applies): ``missing-l2``, ``sign-flip``, ``timeout``... (empty when it passes).
    """

    case: Case
    passed: bool
    check: gc.GradCheckReport | None
    error: str | None
    failing: tuple[str, ...]
    diagnosis: tuple[str, ...] = ()
    central_difference: float | None = None
    kind: str = "ok"
    loss: ValueCheck | None = None
    output: ValueCheck | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    printed: str = ""
    codes: tuple[Code, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the case, status, failing parameters, diagnosis (and its stable codes) and the gradient check."""
        return _jsonable(
            {
                "architecture": self.case.architecture,
                "activations": list((*self.case.hidden, self.case.output)),
                "loss": self.case.loss,
                "l2": self.case.l2,
                "batch_size": self.case.batch,
                "optional": self.case.optional,
                "status": "pass" if self.passed else "fail",
                "kind": self.kind,
                "error": self.error,
                "failing": list(self.failing),
                "diagnosis": list(self.diagnosis),
                "codes": [c._asdict() for c in self.codes],
                "notes": list(self.notes),
                "loss_value": None if self.loss is None else self.loss._asdict(),
                "output_value": None if self.output is None else self.output._asdict(),
                "seconds": round(self.seconds, 4),
                "check": None if self.check is None else self.check.to_dict(),
            }
        )

    def lines(self, conv: Convention) -> list[str]:
        """The case in detail: what failed, where, expected against got, the diagnosis."""
        c = self.case
        lines = [f"  case         {conv.describe_case(c)}"]
        if self.error:
            prefix = "your function raised " if self.kind == "raised" else ""
            lines.append(f"  error        {prefix}{self.error}")
            if self.printed and self.kind in ("raised", "crash", "exit"):
                tail = self.printed.strip().splitlines()[-3:]
                lines += [f"  it printed   {line[:200]}" for line in tail]
            return lines
        if self.check is not None and not self.check.passed:
            lines += _worst_lines(self, conv)
        for check in (self.loss, self.output):
            if check is not None and not check.passed:
                lines.append(
                    f"  {check.name:<12} expected {check.expected:.10g}, got {check.got:.10g} "
                    f"(tolerance {check.tolerance:.1e})"
                )
        for i, line in enumerate(self.diagnosis):
            lines.append(f"  {'diagnosis' if i == 0 else '':<12} {line}")
        for note in self.notes:
            lines.append(f"  {'also':<12} {note}")
        t = self.check.taylor if self.check and not self.check.passed else None
        reshaped = self.check is not None and any(r.transposed_shape for r in self.check.leaves)
        if t is not None and any(r is not None for r in t.rates) and not reshaped:
            best = max(r for r in t.rates if r is not None)
            lines.append(f"  taylor test  remainder rate {best:.2f} (2 for a right gradient, 1 for a wrong one)")
        return lines

    def summary(self, conv: Convention) -> str:
        """One line: ``pass``, ``FAIL grads['W1'] grads['b1']``, ``ERROR`` ..."""
        if self.passed:
            return "pass"
        if self.error:
            return {
                "timeout": "TIMEOUT",
                "crash": "CRASH",
                "output": "TOO MUCH OUTPUT",
                "structure": "WRONG STRUCTURE",
            }.get(self.kind, "ERROR")
        parts = list(self.failing)
        if self.loss is not None and not self.loss.passed:
            parts.append("loss")
        if self.output is not None and not self.output.passed:
            parts.append("AL")
        if self.notes:
            parts.append("inputs modified")
        return "FAIL  " + " ".join(parts)


class FunctionCaseResult(NamedTuple):
    """One case of one course function (per-function credit).

    Attributes:
      label: the case in the course's words (``N=3, D=4, M=5``).
      passed: every output agrees with the reference within the course's threshold.
      kind: ``ok`` (judged), ``unfinished`` (not implemented yet), or the kind of failure:
        ``raised``, ``exit``, ``contract``, ``timeout``, ``crash``, ``output``, ``wire``,
        ``structure``, ``load``.
      message: what was found, in one line (what is wrong, expected against got; or the largest
        relative error of a passing case).
      rel_error: the largest course-style relative error of the outputs (None when nothing was judged).
      worst: the output with the largest error (``dw``), or None.
      seconds: the function's time on this case.
      printed: the end of what the submission printed, when the case failed.
    """

    label: str
    passed: bool
    kind: str
    message: str
    rel_error: float | None = None
    worst: str | None = None
    seconds: float = 0.0
    printed: str = ""

    @property
    def code(self) -> str | None:
        """The stable code of its failure (``unfinished``, ``raised``, ``wrong-values``...), or None when it passes."""
        if self.passed:
            return None
        return kind_code(self.kind)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the case, status, kind, stable code, message and relative error."""
        return _jsonable(
            {
                "case": self.label,
                "status": "pass" if self.passed else "fail",
                "kind": self.kind,
                "code": self.code,
                "message": self.message,
                "rel_error": self.rel_error,
                "worst": self.worst,
                "seconds": round(self.seconds, 4),
            }
        )


@dataclasses.dataclass(frozen=True)
class FunctionResult:
    """One course function checked on its own cases (a *part* of the grade).

    Attributes:
      name: the function's name in the course (``affine_backward``, ``Network.feedforward``).
      course: the convention's name (``cs231n``).
      cases: one :class:`FunctionCaseResult` per case.
    """

    name: str
    course: str
    cases: tuple[FunctionCaseResult, ...]

    @property
    def passed(self) -> bool:
        """Every case passes."""
        return all(c.passed for c in self.cases)

    @property
    def unfinished(self) -> bool:
        """The function is not implemented yet (the starter code left as it was)."""
        return any(c.kind == "unfinished" for c in self.cases)

    @property
    def first_failure(self) -> FunctionCaseResult | None:
        """The first failing case, or None."""
        return next((c for c in self.cases if not c.passed), None)

    @property
    def codes(self) -> tuple[str, ...]:
        """The stable codes of its failing cases, in order, without repeats (empty when it passes)."""
        return tuple(dict.fromkeys(c.code for c in self.cases if c.code is not None))

    def summary(self) -> str:
        """One line: ``pass (2 cases)``, ``NOT IMPLEMENTED YET``, ``FAIL case 1: dw ...``."""
        first = self.first_failure
        if first is None:
            return f"pass ({len(self.cases)} case{'s' if len(self.cases) != 1 else ''})"
        n_pass = sum(c.passed for c in self.cases)
        if first.kind == "unfinished":
            k = self.cases.index(first) + 1
            return "NOT IMPLEMENTED YET" + (f" (case {k}; {n_pass} of {len(self.cases)} cases pass)" if n_pass else "")
        n_fail = sum(not c.passed for c in self.cases)
        return f"FAIL {n_fail} of {len(self.cases)} cases (case {self.cases.index(first) + 1}: {first.message})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the function, its status and its cases."""
        status = "pass" if self.passed else "not implemented yet" if self.unfinished else "fail"
        return {
            "function": self.name,
            "status": status,
            "codes": list(self.codes),
            "cases": [c.to_dict() for c in self.cases],
        }


def _jsonable(v: Any) -> Any:
    """``v`` with non-finite floats as strings (JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _worst_failure(check: gc.GradCheckReport) -> gc.LeafResult:
    """The failing parameter to show: a reshaped (transposed) one, else the largest relative error."""
    failing = [r for r in check.failures() if r.oracle == "autodiff"] or list(check.failures())
    for r in failing:
        if r.transposed_shape:
            return r
    return max(failing, key=lambda r: (r.rel_err, -failing.index(r)))


def _worst_lines(result: CaseResult, conv: Convention) -> list[str]:
    """The worst failing parameter: its element, expected (jax.grad and fd) vs got, errors."""
    check = result.check
    if check is None or not check.failures():
        return []
    worst = _worst_failure(check)
    name = conv.leaf_name(worst.path)
    layer, _ = conv.leaf_info(worst.path)
    # a transposed matrix: its values may be right, its layout is not
    if worst.transposed_shape and worst.param_shape is not None:
        return [
            f"  parameter    {name} (layer {layer}): your gradient has shape {tuple(worst.shape)}, but "
            f"its parameter has shape {tuple(worst.param_shape)}"
        ]
    fd = result.central_difference
    lines = [
        f"  parameter    {name} (layer {layer}, shape {tuple(worst.shape)}), worst element {list(worst.worst_index)}"
    ]
    lines.append(
        f"  expected     {worst.expected: .10e}  (jax.grad"
        + (f"; central differences give {fd: .6e})" if fd is not None else ")")
    )
    lines.append(f"  got          {worst.got: .10e}")
    rel = abs(worst.got - worst.expected) / abs(worst.expected) if worst.expected else float("inf")
    lines.append(
        f"  error        abs {abs(worst.got - worst.expected):.3e}, rel {rel:.3e} (tolerance {worst.tolerance:.1e})"
    )
    return lines


@dataclasses.dataclass(frozen=True)
class BackpropReport:
    """What checking a backprop found.

    Attributes:
      passed: every case passes.
      function: the checked function's (or class's, file's) name.
      seed: the seed of the random parameters and inputs.
      cases: one :class:`CaseResult` per case.
      seconds: wall time of the check.
      convention: the :class:`Convention` used.
      entry: what was checked and why (the detection), or None.
      isolated: the submission ran in its own process.
      functions: per-function credit: the course functions the file defines, each checked on its
        own cases (empty when it defines none); ``cases`` is then empty when the file has no
        whole network to check.
      notes: what loading the submission noted, one line each (a notebook's or a script's skipped
        statements, an unused import of a module that is not installed, a course helper supplied).
    """

    passed: bool
    function: str
    seed: int
    cases: tuple[CaseResult, ...]
    seconds: float
    convention: Convention | None = None
    entry: Entry | None = None
    isolated: bool = False
    functions: tuple[FunctionResult, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def first_wrong_function(self) -> FunctionResult | None:
        """The first function, in the course's order, that fails a case (unfinished included), or None."""
        return next((f for f in self.functions if not f.passed), None)

    def functions_lines(self) -> list[str]:
        """Per-function credit: one line per function, then the first wrong one (empty without functions)."""
        if not self.functions:
            return []
        width = max(len(f.name) for f in self.functions)
        lines = [f"per-function credit ({self.conv.name}: each function you wrote, checked on its own cases)"]
        for k, f in enumerate(self.functions, start=1):
            lines.append(f"  {k:>2}  {f.name:<{width}}  {f.summary()}")
        wrong = self.first_wrong_function
        if wrong is not None:
            first = cast(FunctionCaseResult, wrong.first_failure)
            number = wrong.cases.index(first) + 1
            what = "not implemented yet" if first.kind == "unfinished" else f"case {number}: {first.message}"
            if self.cases and not all(c.passed for c in self.cases):
                lines.append(f"the whole network fails; the first wrong function is {wrong.name} ({what})")
            else:
                lines.append(f"the first wrong function is {wrong.name} ({what})")
        elif self.cases and not all(c.passed for c in self.cases):
            lines.append(
                "every function checked on its own passes: the mistake is in how the network puts them together"
            )
        return lines

    @property
    def first_failure(self) -> CaseResult | None:
        """The first failing scored :class:`CaseResult` (optional cases carry no points), or None."""
        return next((c for c in self.cases if not c.passed and not c.case.optional), None)

    @property
    def optional_failures(self) -> tuple[CaseResult, ...]:
        """The optional cases (depths the course never builds) that fail: reported, never scored."""
        return tuple(c for c in self.cases if not c.passed and c.case.optional)

    @property
    def conv(self) -> Convention:
        """The convention (fnnjax's when none was recorded)."""
        if self.convention is not None:
            return self.convention
        from ._convention_fnnjax import FNNJAX

        return FNNJAX

    def header(self) -> str:
        """What was checked, against what, in which convention."""
        conv = self.conv
        if not self.cases:
            return (
                f"checking the {conv.name} functions {self.function} defines, one by one, against the grader's "
                f"own reference (float64, seed {self.seed})"
            )
        if conv.name == "fnnjax":
            batch = {c.case.batch for c in self.cases}
            n = batch.pop() if len(batch) == 1 else "varies"
            head = (
                f"checking {self.function} against jax.grad and central differences "
                f"(float64, N = {n} samples, seed {self.seed})"
            )
        else:
            head = (
                f"checking {self.function} in the {conv.name} convention against jax.grad and central "
                f"differences of {conv.reference} (float64, seed {self.seed})"
            )
        if self.entry is not None and self.entry.why:
            head += f"\n  convention   {conv.name}: {self.entry.why}"
        if conv.name != "fnnjax":
            head += f"\n  standard     {conv.standard()}"
        return head

    def render(self) -> str:
        """A table of the cases, then the first failing case in detail with its diagnosis."""
        conv = self.conv
        lines = [self.header()]
        if not self.cases:
            lines += self.functions_lines()
            n_fail = sum(not f.passed for f in self.functions)
            lines.append(
                f"PASS: all {len(self.functions)} functions agree with the reference ({self.seconds:.1f} s)"
                if n_fail == 0
                else f"FAIL: {n_fail} of {len(self.functions)} functions fail"
            )
            return "\n".join(lines)
        if conv.name == "fnnjax":
            width = max(len(c.case.activations) for c in self.cases)
            lines.append(f"  {'#':>2}  {'architecture':<13} {'activations':<{width}}  {'loss':<14} {'l2':<5} result")
            for k, c in enumerate(self.cases, start=1):
                lines.append(
                    f"  {k:>2}  {c.case.architecture:<13} {c.case.activations:<{width}}  "
                    f"{c.case.loss:<14} {c.case.l2:<5g} {c.summary(conv)}"
                )
        else:
            width = max(len(conv.describe_case(c.case)) for c in self.cases)
            lines.append(f"  {'#':>2}  {'case':<{width}}  result")
            for k, c in enumerate(self.cases, start=1):
                lines.append(f"  {k:>2}  {conv.describe_case(c.case):<{width}}  {c.summary(conv)}")
        first = self.first_failure
        scored = [c for c in self.cases if not c.case.optional]
        optional = self.optional_failures
        if optional:
            numbers = ", ".join(f"#{self.cases.index(c) + 1}" for c in optional)
            lines.append(f"optional cases {numbers} fail (depths the course never builds: no points, no verdict)")
        cases = "cases" if len(scored) == len(self.cases) else "scored cases"
        if first is None:
            passed = f"{len(scored)} scored cases" if optional else f"{len(self.cases)} cases"
            lines.append(f"PASS: all {passed} agree with jax.grad and central differences ({self.seconds:.1f} s)")
            lines += self.functions_lines()
            return "\n".join(lines)
        n_fail = sum(not c.passed for c in scored)
        k = self.cases.index(first) + 1
        lines.append(f"FAIL: {n_fail} of {len(scored)} {cases} fail. First failing case: #{k}")
        lines += first.lines(conv)
        lines += self.functions_lines()
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: status, function, convention, seed, seconds, every case, the first failure's index, the notes."""
        first = self.first_failure
        batch = {c.case.batch for c in self.cases}
        return {
            "status": "pass" if self.passed else "fail",
            "function": self.function,
            "convention": self.conv.name,
            "entry": None if self.entry is None else self.entry._asdict(),
            "isolated": self.isolated,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "batch_size": batch.pop() if len(batch) == 1 else None,
            "first_failure": None if first is None else self.cases.index(first) + 1,
            "cases": [c.to_dict() for c in self.cases],
            **({"functions": [f.to_dict() for f in self.functions]} if self.functions else {}),
            "notes": list(self.notes),
        }
