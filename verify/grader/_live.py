"""Check a backprop from the notebook it is written in: :func:`check_backprop` on the live function.

``check_backprop(L_model_backward)``, ``check_backprop(FullyConnectedNet)``,
``check_backprop(affine_backward)``, ``check_backprop(net.backprop)``: one call checks what a student
has just written, in the course's conventions, in the student's own process (their kernel; a
self-check needs no sandbox). What it is given decides what is checked:

- a whole network: deeplearning.ai's ``L_model_backward`` (with the ``L_model_forward`` defined
  where it was defined, in its ``__globals__``), a cs231n class (``FullyConnectedNet``,
  ``TwoLayerNet``) or loss function ``fn(params, X, y, reg)``, Nielsen's ``Network`` class or a
  bound method of one (``net.backprop``: its class, built fresh), a function in fnnjax's convention
  ``fn(mlp, params, x, y, loss=..., l2=...)``; these run every case of
  :func:`fnnjax.verify.grader.check_user_backprop`, and the course functions defined next to them
  get per-function credit, as the command does;
- one course function (``affine_backward``, ``linear_backward``, ``net.feedforward`` ...): its own
  cases (:mod:`fnnjax.verify.grader._functions`), called directly here and judged as the grader
  judges a submission's.

It changes nothing of the student's: NumPy's global random state and :mod:`random`'s are restored
afterwards (the course notebooks compare printed values with an "expected output" drawn from them),
the student's network object is never touched (its class is built fresh), every input is a fresh
copy; and JAX's own work runs on the CPU, away from an accelerator the notebook may be using.

The result, a :class:`BackpropCheck`, prints as the command's report and shows in Jupyter as a
table (``_repr_html_``): per case and per parameter, pass or fail, the worst element with its
expected and returned values, the diagnosis in the course's terms and the Taylor-test rate.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import html
import inspect
import math
import random
import time
import types
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from fnnjax.errors import UsageError

from ._backprop_report import BackpropReport, CaseResult, FunctionResult
from ._calls import BACKPROP_METHODS, CallError, call
from ._convention import Convention
from ._conventions import CONVENTIONS
from ._detect import DetectError, choose_entry
from ._functions import COURSE_FUNCTIONS, FunctionSpec, check_functions, gradable
from ._isolation import Outcome
from ._submission import describe, one_line
from ._user_backprop import check_user_backprop
from ._wire import decode, encode

__all__ = ["BackpropCheck", "check_backprop"]

_ACCEPTED = (
    "a whole network (L_model_backward, FullyConnectedNet, TwoLayerNet, Network, net.backprop, a cs231n "
    "loss(params, X, y, reg), an fnnjax backprop(mlp, params, x, y, loss=..., l2=...)) or one course "
    "function (affine_backward, linear_backward, net.feedforward, ...)"
)


@dataclasses.dataclass(frozen=True)
class BackpropCheck(BackpropReport):
    """What :func:`check_backprop` found: a :class:`BackpropReport` that shows itself.

    It prints (``str``, ``repr``) as the command's plain-text report and displays in Jupyter as an
    HTML table (:meth:`_repr_html_`). It is truthy exactly when the check passed, so ``assert
    check_backprop(fn)`` stops a notebook at a wrong function; ``passed``, ``cases``, ``functions``
    and ``to_dict()`` hold the details.
    """

    def __bool__(self) -> bool:
        return self.passed

    def header(self) -> str:
        """What was checked, against what, in which convention."""
        if self.cases or not self.functions:
            return super().header()
        names = ", ".join(f.name for f in self.functions)
        return (
            f"checking {names} on {'its' if len(self.functions) == 1 else 'their'} own cases in the "
            f"{self.conv.name} convention against the grader's own reference (float64, seed {self.seed})"
        )

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        return render_html(self)


# ----------------------------------------------------------------------------------------------
# What was given


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What to check: ``network`` (``target`` through check_user_backprop, convention ``convention``),
    plus the course functions ``parts`` called on ``namespace`` (``owner``: Nielsen's class)."""

    label: str
    network: Any = None
    convention: str | None = None
    parts: tuple[FunctionSpec, ...] = ()
    namespace: Any = None
    owner: str = ""


def _what(obj) -> str:
    """``obj`` in a message: ``function relu``, ``class Foo``, ``int 3``."""
    if inspect.ismethod(obj):
        return f"method {type(obj.__self__).__name__}.{obj.__name__}"
    if inspect.isclass(obj):
        return f"class {obj.__qualname__}"
    if inspect.isfunction(obj):
        return f"function {obj.__qualname__}"
    if inspect.ismodule(obj):
        return f"module {obj.__name__}"
    text = repr(obj)
    return f"{type(obj).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _refuse(obj, why: str, fix: str) -> UsageError:
    return UsageError(f"check_backprop was given {_what(obj)}: {why}; it takes {_ACCEPTED}; {fix}")


def _defined_beside(fn) -> types.ModuleType:
    """The callables of ``fn``'s globals as a module named as ``fn``'s (a notebook's ``__main__``), so
    that what was defined there, not imported, is told apart as the command tells it."""
    module = types.ModuleType(getattr(fn, "__module__", None) or "__main__")
    for name, value in getattr(fn, "__globals__", {}).items():
        if not name.startswith("_") and callable(value) and not inspect.ismodule(value):
            setattr(module, name, value)
    setattr(module, fn.__name__, fn)
    return module


def _course_function(name: str, convention: str | None) -> FunctionSpec | None:
    for course, specs in COURSE_FUNCTIONS.items():
        if course == "nielsen" or (convention is not None and course != convention):
            continue  # Nielsen's functions are methods of his Network
        for spec in specs:
            if spec.name == name:
                return spec
    return None


def _network_class(cls, obj, label: str, convention: str | None, only: str | None = None) -> _Plan:
    course, parts, owner = gradable(describe(cls), convention)
    if only is not None:
        parts = tuple(s for s in parts if s.name == only)
        return _Plan(label, parts=parts, namespace=types.SimpleNamespace(**{cls.__name__: cls}), owner=owner)
    try:
        choose_entry(describe(cls), source=label, convention=convention)
    except DetectError:
        why = f"{cls.__name__} has no loss(X, y) (cs231n) or backprop(x, y) (Nielsen) method" + (
            f" that fits the {convention} convention" if convention else ""
        )
        raise _refuse(obj, why, "pass the class that defines loss(X, y) or backprop(x, y)") from None
    namespace = types.SimpleNamespace(**{cls.__name__: cls})
    return _Plan(
        label, network=cls, convention=convention, parts=parts if course else (), namespace=namespace, owner=owner
    )


def _plan(obj, convention: str | None) -> _Plan:
    """What ``obj`` is, and how it is checked (see the module docstring)."""
    if isinstance(obj, str):
        raise _refuse(
            obj,
            "a file or module name runs in a process of its own",
            f"pass the function itself (check_backprop(L_model_backward)), or check the file with "
            f"check_user_backprop({obj!r}) or fnnjax verify --backprop {obj}",
        )
    if inspect.ismethod(obj):
        owner = obj.__self__
        cls = owner if inspect.isclass(owner) else type(owner)
        label = f"{cls.__name__}.{obj.__name__}"
        nielsen = {s.name for s in COURSE_FUNCTIONS["nielsen"]}
        if obj.__name__ in nielsen:
            plan = _network_class(cls, obj, label, convention, only=obj.__name__)
            if plan.parts:
                return plan
        if obj.__name__ in (*BACKPROP_METHODS, "loss"):
            return dataclasses.replace(_network_class(cls, obj, label, convention), label=cls.__name__)
        raise _refuse(
            obj,
            f"{label} is neither a network's backward pass nor a course function",
            f"pass {type(owner).__name__ if not inspect.isclass(owner) else 'the object'}'s backprop or loss method, "
            f"or its class {cls.__name__}",
        )
    if inspect.isclass(obj):
        return _network_class(obj, obj, obj.__qualname__, convention)
    if inspect.ismodule(obj):
        course, parts, owner = gradable(describe(obj), convention)
        try:
            choose_entry(describe(obj), source=obj.__name__, convention=convention)
        except DetectError:
            if not parts:
                raise _refuse(obj, "it defines nothing to check", "pass one of its functions or classes") from None
            return _Plan(obj.__name__, parts=parts, namespace=obj, owner=owner)
        return _Plan(obj.__name__, network=obj, convention=convention, parts=parts, namespace=obj, owner=owner)
    if not inspect.isfunction(obj):
        kind = type(obj)
        fix = (
            f"pass its class ({kind.__name__}) or a method (e.g. net.backprop)"
            if callable(getattr(obj, "backprop", None)) or callable(getattr(obj, "loss", None))
            else "pass the function or class you wrote"
        )
        raise _refuse(obj, "that is no function, class or method", fix)
    name = obj.__name__
    if name == "L_model_backward" and convention in (None, "deeplearning-ai"):
        module = _defined_beside(obj)
        if not callable(getattr(module, "L_model_forward", None)):
            raise UsageError(
                f"check_backprop(L_model_backward) runs the network with L_model_forward, which is not defined "
                f"where L_model_backward was defined (module {module.__name__}); run the cell that defines "
                "L_model_forward first, or check one function with check_backprop(linear_backward)"
            )
        course, parts, owner = gradable(describe(module), "deeplearning-ai")
        return _Plan(name, network=module, convention="deeplearning-ai", parts=parts, namespace=module)
    spec = _course_function(name, convention)
    if spec is not None:
        return _Plan(name, parts=(spec,), namespace=_defined_beside(obj))
    try:
        entry = choose_entry(describe(obj), source=name, convention=convention)
    except DetectError:
        known = [s.name for specs in COURSE_FUNCTIONS.values() for s in specs if s.course != "nielsen"]
        fits = f"is no {convention} function" if convention else "fits no convention and is no course function"
        why = f"{name}{_signature(obj)} {fits}"
        raise _refuse(
            obj,
            why,
            f"give it the course's name ({', '.join(known[:4])}, ...) or the convention's signature",
        ) from None
    return _Plan(name, network=obj, convention=entry.convention)


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


# ----------------------------------------------------------------------------------------------
# Running it here


def _invoke_here(namespace):
    """``invoke(form, request) -> Outcome`` for :func:`check_functions`: the call the worker makes,
    made in this process, its reply read as the worker's is (NumPy, JAX and PyTorch arrays alike)."""

    def invoke(form: str, request: dict) -> Outcome:
        start = time.perf_counter()
        try:
            result = call(form, namespace, request)
        except CallError as err:
            return Outcome("contract", None, str(err), time.perf_counter() - start, "")
        except Exception as err:  # the student's own error fails the case, in one line
            return Outcome("raised", None, one_line(err), time.perf_counter() - start, "")
        seconds = time.perf_counter() - start
        try:
            return Outcome("ok", {"result": decode(*encode(result))}, None, seconds, "")
        except Exception as err:
            return Outcome("wire", None, f"the returned value could not be read ({one_line(err)})", seconds, "")

    return invoke


@contextlib.contextmanager
def _untouched() -> Iterator[None]:
    """NumPy's and :mod:`random`'s global random states as they were, whatever runs inside; JAX's
    computations on the CPU."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with jax.default_device(jax.devices("cpu")[0]):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def check_backprop(
    obj: Any,
    *,
    seed: int = 0,
    convention: str | None = None,
    strict: bool = False,
    l2_factor: float | None = None,
    init: dict[str, Any] | None = None,
) -> BackpropCheck:
    """Check a backprop you are writing, where you write it: in the notebook, in the course's conventions.

    Give it what you wrote (the object, not its name). A whole network runs every case of
    :func:`fnnjax.verify.grader.check_user_backprop` (depths 1 to 4 in the course's layout, against
    ``jax.grad`` and central differences of the course's loss, float64), and the course functions
    defined next to it are checked one by one too; one course function runs its own small cases.
    The convention is detected as ``fnnjax verify --backprop`` detects it.

    What is accepted:

    - ``L_model_backward`` (deeplearning.ai): run with the ``L_model_forward`` defined where it was
      (same notebook or module); caches and ``grads`` (``dW1``, ``db1``, ...) in the course's shapes
      (``W1``: ``(n1, n0)``, ``b1``: ``(n1, 1)``, ``X``: ``(n0, m)``);
    - ``FullyConnectedNet``, ``TwoLayerNet`` or ``fn(params, X, y, reg)`` (cs231n; ``X``: ``(N, D)``,
      ``W1``: ``(D, H)``, ``b1``: ``(H,)``);
    - ``Network`` or ``net.backprop`` (Nielsen; a fresh ``Network(sizes)`` is built, ``net`` is left
      alone; ``x``: ``(n0, 1)``);
    - one course function: ``affine_forward``, ``affine_backward``, ``relu_forward``,
      ``relu_backward``, ``affine_relu_forward``, ``affine_relu_backward``, ``svm_loss``,
      ``softmax_loss`` (cs231n); ``linear_forward``, ``linear_activation_forward``,
      ``L_model_forward``, ``compute_cost``, ``linear_backward``, ``linear_activation_backward``,
      ``update_parameters`` (deeplearning.ai); ``net.feedforward``, ``net.cost_derivative`` (Nielsen);
    - ``fn(mlp, params, x, y, loss=..., l2=...)`` returning ``tuple(fnnjax.Layer(dW, db))`` (fnnjax).

    Nothing of yours changes: NumPy's and :mod:`random`'s global random states are restored, your
    network object is not touched, every input is a fresh copy. JAX runs on the CPU.

    Args:
      obj: the function, class or bound method to check.
      seed: seed of the random parameters, inputs and Taylor directions.
      convention: ``cs231n``, ``deeplearning-ai``, ``nielsen`` or ``fnnjax``; None detects it.
      strict: judge with fnnjax's float64 tolerances instead of the course's standard.
      l2_factor: cs231n's L2 term is ``l2_factor·reg·Σ‖W‖²`` (None: the form's own).
      init: extra constructor keywords for a class the grader cannot fill on its own.

    Returns:
      A :class:`BackpropCheck`: ``passed`` (also its truth value), the cases and functions, the
      report as text (``print``) and as a table in Jupyter.

    Raises:
      UsageError: one line naming what was given, what is accepted and the fix (a string, an
        object that is no function, class or method, a function that fits no convention and is no
        course function, ``L_model_backward`` without ``L_model_forward`` beside it, an unknown
        convention); a returned value of the wrong structure (fnnjax's convention).

    Example:
      >>> import numpy as np
      >>> from fnnjax import check_backprop
      >>> def relu_forward(x):
      ...     return np.maximum(0, x), x
      >>> result = check_backprop(relu_forward)
      >>> result.passed, bool(result), [f.name for f in result.functions]
      (True, True, ['relu_forward'])
    """
    if convention is not None and convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; valid names are {', '.join(CONVENTIONS)}")
    plan = _plan(obj, convention)
    start = time.perf_counter()
    with _untouched():
        init_copy = copy.deepcopy(init) if init is not None else None
        if plan.network is not None:
            report = check_user_backprop(
                plan.network,
                convention=plan.convention,
                seed=seed,
                name=plan.label,
                strict=strict,
                l2_factor=l2_factor,
                init=init_copy,
            )
        else:
            report = BackpropReport(True, plan.label, seed, (), 0.0, CONVENTIONS[plan.parts[0].course])
        functions: tuple[FunctionResult, ...] = ()
        if plan.parts:
            functions = check_functions(plan.parts, _invoke_here(plan.namespace), seed, plan.owner, init_copy)
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(BackpropReport)}
    fields.update(
        passed=report.passed and all(f.passed for f in functions),
        functions=functions,
        seconds=time.perf_counter() - start,
    )
    return BackpropCheck(**fields)


# ----------------------------------------------------------------------------------------------
# The table


_STYLE = (
    ".fnnjax-check{font-family:sans-serif;font-size:13px}"
    ".fnnjax-check table{border-collapse:collapse;margin:4px 0}"
    ".fnnjax-check th,.fnnjax-check td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    ".fnnjax-check th{background:#f3f3f3}"
    ".fnnjax-check .pass{color:#17672a;font-weight:bold}"
    ".fnnjax-check .fail{color:#b00020;font-weight:bold}"
    ".fnnjax-check .num{font-family:monospace;text-align:right}"
    ".fnnjax-check .note{color:#555}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(v: float | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.6g}"


def _status(passed: bool, text: str | None = None) -> str:
    word = text or ("pass" if passed else "FAIL")
    return f'<span class="{"pass" if passed else "fail"}">{_e(word)}</span>'


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def _td(content: str, cls: str = "", rows: int = 1) -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' rowspan="{rows}"' if rows > 1 else "")
    return f"<td{attrs}>{content}</td>"


def _taylor(case: CaseResult) -> str:
    t = case.check.taylor if case.check is not None else None
    rates = [r for r in t.rates if r is not None] if t is not None else []
    return f"{max(rates):.2f}" if rates else ""


def _parameter_rows(case: CaseResult, conv: Convention) -> list[list[str]]:
    """One row per parameter: name, pass/fail, worst element, expected, returned."""
    check = case.check
    if check is None:
        return []
    rows: list[list[str]] = []
    by_path: dict[str, list] = {}
    for leaf in check.leaves:
        by_path.setdefault(leaf.path, []).append(leaf)
    for path, leaves in by_path.items():
        name = conv.leaf_name(path)
        # the verdict is the case's (the course's standard by default: a leaf outside fnnjax's float64
        # tolerance may pass it); the element shown is the text report's: a transposed leaf, else
        # the largest error against jax.grad
        failed = not case.passed and name in case.failing
        judged = [r for r in leaves if not r.passed] or leaves
        judged = [r for r in judged if r.oracle == "autodiff"] or judged
        shown = next((r for r in judged if r.transposed_shape), max(judged, key=lambda r: r.rel_err))
        if shown.transposed_shape and shown.param_shape is not None:
            where = f"shape {tuple(shown.shape)}, expected {tuple(shown.param_shape)}"
            rows.append([_e(name), _status(not failed), _e(where), "", ""])
            continue
        rows.append(
            [
                _e(name),
                _status(not failed),
                _e(list(shown.worst_index)),
                _td_num(shown.expected),
                _td_num(shown.got),
            ]
        )
    for value in (case.loss, case.output):
        if value is not None:
            rows.append([_e(value.name), _status(value.passed), "", _td_num(value.expected), _td_num(value.got)])
    return rows


def _td_num(v: float | None) -> str:
    return _e(_number(v))


def _network_table(report: BackpropReport) -> str:
    conv = report.conv
    head = ["#", "case", "parameter", "result", "worst element", "expected", "returned", "diagnosis", "Taylor rate"]
    out = ["<table><thead>", _row([f"<th>{_e(h)}</th>" for h in head]), "</thead><tbody>"]
    for k, case in enumerate(report.cases, start=1):
        rows = _parameter_rows(case, conv) if case.error is None else []
        notes = list(case.diagnosis) + list(case.notes)
        if case.error is not None:
            prefix = "your function raised " if case.kind == "raised" else ""
            notes = [prefix + case.error, *notes]
        diagnosis = "<br>".join(_e(n) for n in notes)
        if case.case.optional:
            diagnosis = (diagnosis + "<br>" if diagnosis else "") + '<span class="note">optional: no points</span>'
        if not rows:
            rows = [["", _status(case.passed, case.summary(conv)), "", "", ""]]
        n = len(rows)
        for i, cells in enumerate(rows):
            line = (
                [f"<td{_rowspan(n)}>{k}</td>", f"<td{_rowspan(n)}>{_e(conv.case_words(case.case))}</td>"]
                if i == 0
                else []
            )
            line += [_td(cells[0]), _td(cells[1]), _td(cells[2], "num"), _td(cells[3], "num"), _td(cells[4], "num")]
            if i == 0:
                line += [_td(diagnosis, rows=n), _td(_e(_taylor(case)), "num", rows=n)]
            out.append(_row(line))
    out.append("</tbody></table>")
    return "".join(out)


def _rowspan(n: int) -> str:
    return f' rowspan="{n}"' if n > 1 else ""


def _functions_table(functions: tuple[FunctionResult, ...]) -> str:
    head = ["function", "case", "result", "worst output", "error", "what was found"]
    out = ["<table><thead>", _row([f"<th>{_e(h)}</th>" for h in head]), "</thead><tbody>"]
    for f in functions:
        for i, c in enumerate(f.cases):
            result = "not implemented yet" if c.kind == "unfinished" else None
            line = [f"<td{_rowspan(len(f.cases))}>{_e(f.name)}</td>"] if i == 0 else []
            line += [
                _td(_e(c.label)),
                _td(_status(c.passed, result)),
                _td(_e(c.worst or "")),
                _td(_e(_number(c.rel_error)), "num"),
                _td(_e(c.message)),
            ]
            out.append(_row(line))
    out.append("</tbody></table>")
    return "".join(out)


def render_html(report: BackpropReport) -> str:
    """The report as one HTML fragment (inline style, no external resource; every string escaped).

    Args:
      report: a :class:`BackpropReport` (or :class:`BackpropCheck`).

    Returns:
      ``<div class="fnnjax-check">...</div>`` on one line: a verdict line, what was checked, a
      table of the whole network's cases (a row per parameter) and a table of the course functions.
    """
    conv = report.conv
    parts = [f'<div class="fnnjax-check"><style>{_STYLE}</style>']
    verdict = _status(report.passed, "PASS" if report.passed else "FAIL")
    parts.append(f"<p>{verdict} <b>{_e(report.function)}</b> in the {_e(conv.name)} convention (seed {report.seed})")
    if report.cases:
        scored = [c for c in report.cases if not c.case.optional]
        n_fail = sum(not c.passed for c in scored)
        parts.append(
            _e(f": {len(scored) - n_fail} of {len(scored)} scored cases agree with jax.grad and central differences")
        )
    if report.functions:
        n_ok = sum(f.passed for f in report.functions)
        parts.append(_e(f"; {n_ok} of {len(report.functions)} functions agree with the reference"))
    parts.append("</p>")
    if report.cases:
        if report.entry is not None and report.entry.why:
            parts.append(f'<p class="note">{_e(report.entry.why)}</p>')
        parts.append(f'<p class="note">standard: {_e(conv.standard())}</p>')
        parts.append(_network_table(report))
    if report.functions:
        parts.append(_functions_table(report.functions))
        wrong = report.first_wrong_function
        if wrong is not None:
            parts.append(f"<p>the first wrong function is <b>{_e(wrong.name)}</b></p>")
    parts.append("</div>")
    return "".join(parts)
