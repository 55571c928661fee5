"""Check a backprop someone wrote by hand: ``fnnjax verify --backprop``, in fnnjax's or a course's conventions.

:func:`check_user_backprop` runs a backprop on every case of its convention (depth 1 to 4,
nonsquare and square layers, batch sizes that are no layer width, ``reg`` on and off where the
convention has it) in float64, and compares each returned gradient with ``jax.grad`` of the
convention's loss written with fnnjax and with central differences
(:func:`fnnjax.gradcheck.analyze_full`); a failing case gets a diagnosis in the course's terms.

Two ways in:

- a *submission*, named by a string ``path/to/file.py[:NAME]`` or ``module:NAME``: it runs in its
  own process (:mod:`fnnjax.verify.grader._isolation`) with a time limit per case, and whatever it does (raise,
  loop forever, exit, print megabytes, change its inputs, return the wrong structure) fails the
  case it is in, never the grader;
- a Python object (your own function, class or module, trusted): it runs in this process, so
  JAX functions are traced with ``jax.jit`` (one compile for every case); a returned value of the
  wrong structure raises :class:`fnnjax.errors.UsageError` at once.

The convention is detected from what the file defines (:mod:`fnnjax.verify.grader._detect`) unless given.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

import fnnjax
from fnnjax.errors import UsageError

from . import _programs
from ._backprop_report import BackpropReport, CaseResult, FunctionResult
from ._calls import CallError, call
from ._convention import BATCH_SIZE, Case, Convention, Entry, Mismatch, Options
from ._convention_fnnjax import FNNJAX
from ._convention_setup import SetupError, configure, local_probe, make_options, worker_probe
from ._conventions import CASES, CONVENTIONS
from ._detect import DetectError, choose_entry
from ._functions import check_functions, gradable, n_calls
from ._grading import Prepared, failed_case, judge_case, modified_inputs, prepare, references, unpack_or_fail
from ._isolation import Outcome, Worker
from ._sandbox import Sandbox
from ._submission import LoadError, describe, import_target, one_line, parse_target
from ._wire import decode, encode, too_coarse

__all__ = [
    "BATCH_SIZE",
    "CASES",
    "DEFAULT_TIMEOUT",
    "SIGNATURE",
    "BackpropReport",
    "Case",
    "CaseResult",
    "SubmissionError",
    "check_user_backprop",
    "load_user_function",
]

SIGNATURE = "(mlp, params, x, y, loss='cross_entropy', l2=0.0)"
"""How the fnnjax convention calls the user's function (the signature of fnnjax.backprop)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a submission may take on one case (its import may take max(timeout, 60))."""


class SubmissionError(UsageError):
    """The submission cannot be checked at all: it cannot be imported, or it fits no convention.

    Attributes:
      convention: the convention, when known (``--convention``), else None.
    """

    def __init__(self, message: str, convention: Convention | None = None):
        super().__init__(message)
        self.convention = convention


# ----------------------------------------------------------------------------------------------
# Loading a function into this process


def _check_signature(fn: Callable, spec: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and some C callables have no signature: let the call decide
    try:
        sig.bind("mlp", "params", "x", "y", loss="cross_entropy", l2=0.0)
    except TypeError as err:
        raise UsageError(
            f"{spec} has the signature {sig}, which cannot be called as "
            f"fn(mlp, params, x, y, loss=..., l2=...) ({err}); define it as "
            f"def {getattr(fn, '__name__', 'backprop')}{SIGNATURE}"
        ) from None


def load_user_function(spec: str) -> Callable:
    """Import the function named by ``module:function`` or ``path/to/file.py:function`` into this process.

    A file path is imported with its folder on ``sys.path`` (so it may import its neighbours); a
    module name is looked up with the current directory on ``sys.path``. For code you did not
    write, pass the spec to :func:`check_user_backprop` instead: it runs in its own process.

    Args:
      spec: ``module.name:function`` or ``path/to/file.py:function``.

    Returns:
      The function, checked to accept ``(mlp, params, x, y, loss=..., l2=...)``.

    Raises:
      UsageError: one line saying what is wrong and how to fix it: a spec without ``:``, a missing
        file, an import that fails (its own error summarised with file and line), a missing name, a
        name that is not callable, a function with the wrong signature.

    Example:
      >>> from fnnjax.verify.grader._user_backprop import load_user_function
      >>> load_user_function("fnnjax:backprop").__name__
      'backprop'
    """
    try:
        target = parse_target(spec, require_entry=True)
        module = import_target(target)
    except LoadError as err:
        raise UsageError(str(err)) from None
    name = cast(str, target.entry)  # require_entry=True: parse_target raised without one
    if not hasattr(module, name):
        defined = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isfunction(v) and v.__module__ == module.__name__ and not n.startswith("_")
        )
        listing = f"it defines {', '.join(defined[:8])}" if defined else "it defines no functions"
        raise UsageError(f"{target.source} has no function {name!r} ({listing}); pass one as {target.source}:FUNCTION")
    fn = getattr(module, name)
    if not callable(fn):
        raise UsageError(
            f"{spec} is a {type(fn).__name__}, not a function; pass a function with the signature {SIGNATURE}"
        )
    _check_signature(fn, spec)
    return fn


# ----------------------------------------------------------------------------------------------
# The fnnjax convention in this process: one traced program for every case


def _jnp_layers(params) -> tuple:
    return tuple(fnnjax.Layer(jnp.asarray(l.W), jnp.asarray(l.b)) for l in params)


def _call(fn, case: Case, params, x, y):
    return fn(case.mlp, params, x, y, loss=case.loss, l2=case.l2)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_all(fn, cases, params, xs, ys):
    """The user's gradients for every case, in one compiled program."""
    return [_call(fn, c, p, x, y) for c, p, x, y in zip(cases, params, xs, ys)]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_jit(fn, case, params, x, y):
    return _call(fn, case, params, x, y)


def _run_one(fn, prep: Prepared, jit: bool):
    """The user's gradient for one case: traced if possible, else eagerly. Returns (grads, error)."""
    args = (_jnp_layers(prep.inputs.params), jnp.asarray(prep.inputs.x), jnp.asarray(prep.inputs.y))
    if jit:
        try:
            return _call_jit(fn, prep.case, *args), None
        except Exception:  # not traceable (numpy conversion, branch on values...) or a real bug: run eagerly
            pass
    try:
        return jax.block_until_ready(_call(fn, prep.case, *args)), None
    except Exception as err:
        return None, one_line(err)


def _fnnjax_gradients(fn, prepared: list[Prepared], jit: bool) -> list[tuple[Any, str | None]]:
    """(grads or None, error or None) per case: one traced program if possible, else case by case."""
    if jit:
        try:
            grads = _call_all(
                fn,
                tuple(p.case for p in prepared),
                [_jnp_layers(p.inputs.params) for p in prepared],
                [jnp.asarray(p.inputs.x) for p in prepared],
                [jnp.asarray(p.inputs.y) for p in prepared],
            )
            return [(g, None) for g in grads]
        except Exception:  # not traceable, or raises somewhere: find out case by case
            pass
    return [_run_one(fn, p, jit) for p in prepared]


# ----------------------------------------------------------------------------------------------
# Any convention in this process


def _function_name(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    module = module.removeprefix("_fnnjax_user_")
    if inspect.ismodule(fn):
        return fn.__name__.removeprefix("_fnnjax_user_")
    return f"{module}:{getattr(fn, '__qualname__', getattr(fn, '__name__', repr(fn)))}" if module else repr(fn)


def _entry_for_object(obj, label: str, convention: str | None) -> Entry:
    try:
        return choose_entry(describe(obj), source=label, convention=convention)
    except DetectError as err:
        plain_function = callable(obj) and not inspect.isclass(obj) and not inspect.ismodule(obj)
        if convention in (None, "fnnjax") and plain_function:  # fnnjax is the default convention
            name = getattr(obj, "__name__", "fn")
            return Entry("fnnjax", "function", name, (), "the default convention")
        raise UsageError(str(err)) from None


def _fnnjax_here(fn, prepared: list[Prepared], refs: list, label: str, jit: bool) -> list[CaseResult]:
    """The fnnjax convention in this process: JAX arrays in, traced when it can be."""
    with jax.enable_x64(True):
        gradients = _fnnjax_gradients(fn, prepared, jit)
    results = []
    for k, (prep, ref, (grads, error)) in enumerate(zip(prepared, refs, gradients)):
        if error is not None:
            results.append(failed_case(prep.case, "raised", error))
            continue
        try:
            unpacked = FNNJAX.check_returned(grads, prep.case, k, prep.inputs, label)
        except Mismatch as err:
            raise UsageError(str(err)) from None
        results.append(judge_case(FNNJAX, prep, ref, unpacked))
    return results


def _course_here(conv: Convention, entry: Entry, target, prepared: list[Prepared], refs: list) -> list[CaseResult]:
    """A course convention in this process: the worker's calls, without the worker."""
    results = []
    for prep, ref in zip(prepared, refs):
        form, _, request = conv.request(prep.case, prep.inputs, entry)
        start = time.perf_counter()
        try:
            returned = call(form, target, request)
        except CallError as err:
            results.append(failed_case(prep.case, "contract", str(err)))
            continue
        except Exception as err:
            results.append(failed_case(prep.case, "raised", one_line(err)))
            continue
        seconds = time.perf_counter() - start
        result = decode(*encode(returned))  # NumPy, JAX and PyTorch arrays alike, as from the worker
        coarse = _too_coarse(result)
        if coarse is not None:
            results.append(failed_case(prep.case, "precision", coarse, seconds))
            continue
        unpacked = unpack_or_fail(conv, result, prep, entry)
        if isinstance(unpacked, str):
            raise UsageError(unpacked)
        modified = modified_inputs(conv, result.get("given"), request, entry)
        results.append(judge_case(conv, prep, ref, unpacked, modified=modified, seconds=seconds))
    return results


def _in_process(
    obj, label: str, convention: str | None, seed: int, jit: bool, options: Options = Options()
) -> tuple[Convention, Entry, list]:
    entry = _entry_for_object(obj, label, convention)
    target = getattr(obj, entry.name) if inspect.ismodule(obj) and entry.kind != "module" else obj
    try:  # the options, and what the class says about itself (its cost; a constructor it cannot call)
        conv = configure(CONVENTIONS[entry.convention], entry, options, local_probe(target), seed)
    except SetupError as err:
        raise SubmissionError(str(err), CONVENTIONS[entry.convention]) from None
    prepared = prepare(conv, conv.cases(entry), seed)
    refs = references(conv, prepared)
    if conv is FNNJAX:
        return conv, entry, _fnnjax_here(target, prepared, refs, label, jit)
    return conv, entry, _course_here(conv, entry, target, prepared, refs)


# ----------------------------------------------------------------------------------------------
# A submission in its own process


class _Run(NamedTuple):
    """What is checked: the convention, the entry, and its name in messages."""

    conv: Convention
    entry: Entry
    label: str


def _judge_outcome(run: _Run, index: int, prep: Prepared, ref, outcome: Outcome, request: dict) -> CaseResult:
    if not outcome.ok:
        message = cast(str, outcome.message)  # a failed request always says what went wrong
        return failed_case(prep.case, outcome.kind, message, outcome.seconds, outcome.output)
    result = outcome.value["result"]
    coarse = _too_coarse(result)
    if coarse is not None:
        return failed_case(prep.case, "precision", coarse, outcome.seconds, outcome.output)
    try:  # whatever the reply holds, it fails this case in one line, never the grader
        unpacked = unpack_or_fail(run.conv, result, prep, run.entry, index=index, spec=run.label)
        if isinstance(unpacked, str):
            return failed_case(prep.case, "structure", unpacked, outcome.seconds, outcome.output)
        given = result.get("given") if isinstance(result, dict) else None
        modified = modified_inputs(run.conv, given, request, run.entry)
    except Exception as err:
        message = f"the submission's reply could not be read ({type(err).__name__}: {str(err)[:200]})"
        return failed_case(prep.case, "wire", message, outcome.seconds, outcome.output)
    return judge_case(run.conv, prep, ref, unpacked, modified=modified, seconds=outcome.seconds)


def _too_coarse(result) -> str | None:
    """One line when the returned value holds a float16/bfloat16 array, else None."""
    returned = result.get("returned") if isinstance(result, dict) else result
    dtype = too_coarse(returned)
    if dtype is None:
        return None
    return (
        f"returned {dtype} arrays: the case hands out float64 arrays and a gradient in {dtype} is too "
        "coarse to judge; return float64 (the inputs' dtype), or float32 at the least"
    )


def _isolated(
    spec: str,
    convention: str | None,
    seed: int,
    timeout: float,
    load_timeout: float | None,
    options: Options = Options(),
    sandbox: Sandbox | None = None,
    notes: list[str] | None = None,
) -> tuple[Convention, Entry | None, list, str, tuple[FunctionResult, ...]]:
    try:
        target = parse_target(spec)
    except LoadError as err:
        raise UsageError(str(err)) from None
    known = CONVENTIONS[convention] if convention else None
    if target.is_path and not Path(target.source).is_file():
        raise SubmissionError(
            f"cannot load {target.source!r}: no such file (looked from {Path.cwd()}); pass "
            "path/to/file.py[:NAME] with a path relative to the current directory",
            known,
        )
    _programs.prefetch()  # the saved reference programs load while the worker starts
    with Worker(target, timeout=timeout, load_timeout=load_timeout, sandbox=sandbox) as worker:
        loaded = worker.load()
        if not loaded.ok:
            raise SubmissionError(cast(str, loaded.message), known)  # failed: it says why
        if notes is not None:  # hand-in forms: notebook statements skipped, unused missing imports
            notes += loaded.value["description"].get("notes", [])
        course, parts, owner = gradable(loaded.value["description"], convention)  # per-function credit
        if target.entry is not None and target.entry in {s.name for s in parts}:
            parts = tuple(s for s in parts if s.name == target.entry)
        try:
            entry = choose_entry(
                loaded.value["description"], source=target.source, entry=target.entry, convention=convention
            )
        except DetectError as err:
            if not parts or (target.entry is not None and target.entry != parts[0].name):
                raise SubmissionError(str(err), known) from None
            worker.total = worker.load_timeout + (n_calls(parts) + 1) * (worker.timeout + 1)
            invoke = lambda form, request: worker.call(form, None, request)  # noqa: E731 (the module is the entry)
            functions = check_functions(parts, invoke, seed, owner, dict(options.init))
            return CONVENTIONS[cast(str, course)], None, [], target.source, functions
        label = f"{target.source}:{entry.name}" if entry.kind != "module" else target.source
        try:  # the options, and what the class says about itself (its cost; a constructor it cannot call)
            conv = configure(CONVENTIONS[entry.convention], entry, options, worker_probe(worker, entry.name), seed)
        except SetupError as err:
            raise SubmissionError(str(err), CONVENTIONS[entry.convention]) from None
        prepared = prepare(conv, conv.cases(entry), seed)
        worker.total = worker.load_timeout + (len(prepared) + n_calls(parts) + 1) * (worker.timeout + 1)
        refs = references(conv, prepared)
        results = []
        form = conv.request(prepared[0].case, prepared[0].inputs, entry)[0]
        ready = worker.prepare(form)
        for k, (prep, ref) in enumerate(zip(prepared, refs)):
            form, name, request = conv.request(prep.case, prep.inputs, entry)
            outcome = worker.call(form, name, request) if ready.ok else ready
            results.append(_judge_outcome(_Run(conv, entry, label), k, prep, ref, outcome, request))
        environment = _environment_at_run_time(results)
        if environment is not None:
            raise SubmissionError(f"cannot grade {target.source}: {environment}", conv)
        invoke = lambda form, request: worker.call(form, None, request)  # noqa: E731 (the module is the entry)
        functions = check_functions(parts, invoke, seed, owner, dict(options.init))
    return conv, entry, results, label, functions


def _environment_at_run_time(results: list[CaseResult]) -> str | None:
    """What every scored case stopped at when it is the grader's environment, not the student's code:
    Python 2 names (``xrange`` in a file that imports under Python 3), or a module a notebook imports
    that is not installed, used by the graded code (``torch``); None otherwise. Such a submission cannot
    be graded here, like one that does not import."""
    scored = [r for r in results if not r.case.optional]
    messages = [r.error or "" for r in scored if not r.passed]
    if not scored or len(messages) < len(scored):
        return None
    if all("is Python 2;" in m for m in messages):
        return f"it is Python 2 code: {messages[0]}"
    if all("which is not installed where the grader runs" in m for m in messages):
        return messages[0].removeprefix("your function raised ")
    return None


def check_user_backprop(
    fn: Callable | str | Any,
    *,
    convention: str | None = None,
    seed: int = 0,
    name: str | None = None,
    jit: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    load_timeout: float | None = None,
    l2_factor: float | None = None,
    strict: bool = False,
    init: dict[str, Any] | None = None,
    sandbox: Sandbox | None = None,
    notes: list[str] | None = None,
) -> BackpropReport:
    """Run a hand-written backprop on every case of its convention against jax.grad and central differences.

    The reference of every case is the convention's loss written with fnnjax (:func:`fnnjax.loss` of
    the same network through the convention's layout), differentiated by ``jax.grad`` in float64;
    each returned gradient is judged by :func:`fnnjax.gradcheck.analyze_full` (jax.grad: tolerance
    eps^(3/4) relative, of float32 when the result is float32; central differences: their
    estimated error) plus the Taylor-remainder rate; a returned loss (cs231n) or output
    (deeplearning.ai's AL) is compared too. Every failing case gets a diagnosis in the course's
    terms.

    Conventions (``convention=``, detected when None): ``fnnjax`` calls ``fn(mlp, params, x, y,
    loss=..., l2=...)`` and expects ``tuple(fnnjax.Layer(dW, db))``; ``cs231n`` calls ``fn(params, X,
    y, reg) -> (loss, grads)`` or builds ``FullyConnectedNet``/``TwoLayerNet`` and calls
    ``model.loss(X, y)``; ``deeplearning-ai`` calls ``L_model_forward`` then ``L_model_backward``;
    ``nielsen`` builds ``Network(sizes)`` and calls ``backprop(x, y)``.

    Args:
      fn: a submission to run in its own process: ``"path/to/file.py"``, ``"path/to/file.py:NAME"``
        or ``"module:NAME"``; or a function, class or module to run in this process.
      convention: ``fnnjax``, ``cs231n``, ``deeplearning-ai`` or ``nielsen``; None detects it (a
        function that fits nothing else is checked in the fnnjax convention).
      seed: seed of the random parameters, inputs and Taylor directions.
      name: how to call the function in the report (default ``module:qualname`` or the spec).
      jit: in this process, trace an fnnjax-convention function with ``jax.jit`` (one compile for
        every case; one that cannot be traced runs eagerly anyway); False runs it eagerly, op by
        op, which is faster when many functions are checked in one process.
      timeout: seconds a submission may take on each case (its own process only).
      load_timeout: seconds its import may take (default ``max(timeout, 60)``).
      l2_factor: cs231n's L2 term is ``l2_factor·reg·Σ‖W‖²``; None: the form's own (1 for
        assignment 1's ``TwoLayerNet(input_size, hidden_size, output_size)``, 2017 on; 0.5 for
        everything else); 0.5 grades 2016's assignment 1.
      strict: judge with fnnjax's float64 tolerances; by default a course convention's gradient
        also passes by the course's own standard (cs231n's ``rel_error`` ≤ 1e-7, deeplearning.ai's
        ``gradient_check_n`` difference ≤ 2e-7, per array), which a float32 computation or a
        ``log(AL + 1e-8)`` meets and every classic mistake fails.
      init: extra constructor keywords for a class the grader cannot fill on its own
        (``--init KEY=VALUE``).
      sandbox: the sandbox a submission runs in (:class:`fnnjax.verify.grader._sandbox.Sandbox`;
        default: every layer the machine allows, with the documented limits).
      notes: a list to which loading a submission appends what it noted, one line each (a
        notebook's skipped statements; an unused import of a module that is not installed), also
        when it then fails to load; the report holds them too (``report.notes``).

    Returns:
      A :class:`BackpropReport` with ``passed``, ``render()`` and ``to_dict()``.

    Raises:
      UsageError: an unknown convention; in this process, a returned value of the wrong structure
        (both treedefs shown), shape or dtype (a submission in its own process fails the case
        instead).
      SubmissionError: the submission cannot be imported, or fits no convention (one line).

    Example:
      >>> import fnnjax
      >>> from fnnjax.verify.grader._user_backprop import check_user_backprop
      >>> check_user_backprop(fnnjax.backprop).passed
      True
    """
    if convention is not None and convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; valid names are {', '.join(CONVENTIONS)}")
    try:
        options = make_options(l2_factor, strict, init)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if isinstance(fn, str) and (Path(fn).is_dir() or fn.lower().endswith(".zip")):
        raise UsageError(
            f"{fn!r} is a {'folder' if Path(fn).is_dir() else '.zip'} of files, not one submission: grade it with "
            f"check_handin({fn!r}) (each gradable file a part), or pass one file in it as path/to/file.py[:NAME]"
        )
    start = time.perf_counter()
    noted: list[str] = []
    with jax.enable_x64(True):
        if isinstance(fn, str):
            try:
                conv, entry, results, label, functions = _isolated(
                    fn, convention, seed, timeout, load_timeout, options, sandbox, noted
                )
            finally:
                if notes is not None:
                    notes += noted
            isolated = True
        else:
            label = _function_name(fn)
            conv, entry, results = _in_process(fn, label, convention, seed, jit, options)
            isolated, functions = False, ()
    return BackpropReport(
        all(r.passed for r in results if not r.case.optional) and all(f.passed for f in functions),
        name or label,
        seed,
        tuple(results),
        time.perf_counter() - start,
        conv,
        entry,
        isolated,
        functions,
        tuple(noted),
    )
