"""The shared checker core of every convention: the reference, the judging, the diagnosis of a case.

For each case of a convention (:mod:`fnnjax.verify.grader._convention`): the parameters are drawn in float64
and laid out as one vector; the finite-difference stencil and the Taylor points are planned on the
host (:func:`fnnjax.gradcheck.plan_oracles`); and one compiled program per case (kept for every
submission checked in the process) evaluates ``jax.grad`` and every difference of the reference loss
(:func:`fnnjax.loss` of the same network, through the convention's layout), the network output and
the loss without its L2 term. What the submission returned is then judged by
:func:`fnnjax.gradcheck.analyze_full` (float32 results with float32 tolerances), its loss and
output compared with the reference, its inputs with the pristine copies, and a failing case
diagnosed in the course's terms (:mod:`fnnjax.verify.grader._diagnosis`; the gradients of the classic wrong
recursions it compares with are compiled per case, only when a case fails).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math
import threading
from typing import Any, NamedTuple

import jax
import numpy as np

import fnnjax
from fnnjax import gradcheck as gc

from . import _programs
from ._backprop_report import CaseResult, ValueCheck
from ._convention import COURSE_VALUE_RTOL, Case, Convention, Entry, Inputs, Mismatch, Unpacked, make_inputs
from ._diagnosis import Code, Evidence, LossTerms, diagnose, kind_code, loss_code, loss_diagnosis, variant_gradients

__all__ = [
    "COURSE_ARRAY_BOUND",
    "Prepared",
    "Reference",
    "failed_case",
    "judge_case",
    "modified_inputs",
    "prepare",
    "references",
    "unpack_or_fail",
    "variants",
]


class Prepared(NamedTuple):
    """One case, drawn and planned on the host.

    Attributes:
      case: the :class:`Case`.
      inputs: its :class:`Inputs` (float64; the pristine copies).
      layout: the layout of the convention's params container.
      plan: the finite-difference and Taylor points.
    """

    case: Case
    inputs: Inputs
    layout: gc.LeafLayout
    plan: gc.OraclePlan


class Reference(NamedTuple):
    """What the reference program computed for one case.

    Attributes:
      values: jax.grad, the stencil and the Taylor values of the reference loss.
      output: the network output in fnnjax's layout, ``(N, M_L)``.
      data_loss: the reference loss without its L2 term.
    """

    values: gc.FullOracles
    output: Any
    data_loss: Any


def prepare(conv: Convention, cases: tuple[Case, ...], seed: int) -> list[Prepared]:
    """Draw and plan every case (a case's draws depend on its index among the convention's cases)."""
    out = []
    for case in cases:
        inputs = make_inputs(conv, case, seed, conv.all_cases.index(case))
        layout = gc.leaf_layout(inputs.params)
        theta = layout.ravel(inputs.params)
        d = inputs.d / np.linalg.norm(inputs.d) * max(1.0, float(np.linalg.norm(theta)))
        out.append(Prepared(case, inputs, layout, gc.plan_oracles(theta, gc.fd_steps(theta), d)))
    return out


def _reference(conv: Convention, case: Case, params, x, y, plan) -> Reference:
    mlp = case.mlp

    def risk(p):
        return fnnjax.loss(mlp, conv.params_to_layers(p), x, y, loss=case.loss, l2=conv.l2_coefficient(case))

    values = gc.evaluate_oracles(gc.flat_function(risk, params), plan)
    layers = conv.params_to_layers(params)
    return Reference(values, fnnjax.forward(mlp, layers, x), fnnjax.loss(mlp, layers, x, y, loss=case.loss))


_reference_jit = jax.jit(_reference, static_argnums=(0, 1))

REFERENCE_CACHE_SIZE = 256
"""How many cases' references a process keeps (a class of submissions shares them)."""

_cache: collections.OrderedDict[tuple, Reference] = collections.OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}
cache_stats = {"hits": 0, "misses": 0}
"""How often :func:`references` found a case's reference already computed (``hits``) or computed it."""


def _reference_key(conv: Convention, p: Prepared) -> tuple:
    """What a case's reference depends on: the compiled program's key (the convention's trace key and
    the case) and every input array, by content (the parameters, the batch, the planned points)."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves((p.inputs.params, p.inputs.x, p.inputs.y, p.plan)):
        a = np.ascontiguousarray(leaf)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        digest.update(a.tobytes())
    return (conv._trace_key(), p.case, digest.hexdigest())


def _compute(conv: Convention, p: Prepared) -> Reference:
    # NumPy arrays as they are: the program converts them (jnp.asarray here would compile a program per array)
    dynamic = (jax.tree_util.tree_map(np.asarray, p.inputs.params), np.asarray(p.inputs.x), np.asarray(p.inputs.y))
    return _programs.run(_reference_jit, (conv, p.case), (*dynamic, p.plan), "reference")


def references(conv: Convention, prepared: list[Prepared]) -> list[Reference]:
    """The reference of every case: one compiled program per case, shared by every submission (and
    every form: cs231n's TwoLayerNet runs on the depth-2 cases of FullyConnectedNet).

    The values are kept too (the last :data:`REFERENCE_CACHE_SIZE` cases, by everything they depend
    on: the convention's compiled program, the case and its input arrays), so that a class of
    submissions graded in one process with the same seed computes each reference once; threads
    asking for the same case wait for the first to compute it."""
    out = []
    with jax.enable_x64(True):
        for p in prepared:
            key = _reference_key(conv, p)
            with _cache_lock:
                lock = _key_locks.setdefault(key, threading.Lock())
            with lock:
                with _cache_lock:
                    found = _cache.get(key)
                    if found is not None:
                        _cache.move_to_end(key)
                        cache_stats["hits"] += 1
                if found is None:
                    found = _compute(conv, p)
                    with _cache_lock:
                        cache_stats["misses"] += 1
                        _cache[key] = found
                        while len(_cache) > REFERENCE_CACHE_SIZE:
                            old, _ = _cache.popitem(last=False)
                            _key_locks.pop(old, None)
            out.append(found)
    return out


@functools.partial(jax.jit, static_argnums=(0, 1))
def _variants(conv: Convention, case: Case, params, x, y) -> dict[str, Any]:
    layers = conv.params_to_layers(params)
    return {k: conv.layers_to_params(v) for k, v in variant_gradients(case, layers, x, y).items()}


def variants(conv: Convention, prep: Prepared) -> dict[str, list[np.ndarray]]:
    """The classic wrong gradients of a case, one float64 array per leaf each (compiled per case; saved
    with the references, :mod:`fnnjax.verify.grader._programs`)."""
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(np.asarray, prep.inputs.params)
        dynamic = (params, np.asarray(prep.inputs.x), np.asarray(prep.inputs.y))
        out = _programs.run(_variants, (conv, prep.case), dynamic, "variants")
    return {k: prep.layout.split(prep.layout.ravel(v, np.float64)) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Judging one case

COURSE_ARRAY_BOUND = 1e-3
"""In the course standard, the largest error any one returned array may have (in the course's
measure), whatever the whole gradient's: float32 rounding in a tiny ``db`` stays below it, every
classic mistake (an error of order 1 in the array it touches) is far above it."""


def failed_case(case: Case, kind: str, message: str, seconds: float = 0.0, printed: str = "") -> CaseResult:
    """A case that produced no gradient to judge: it raised, timed out, crashed, or returned the wrong structure."""
    unfinished = kind == "raised" and message.startswith("NotImplementedError")  # the starter code's raise
    codes = (Code("unfinished" if unfinished else kind_code(kind)),)
    return CaseResult(case, False, None, message, (), kind=kind, seconds=seconds, printed=printed, codes=codes)


def _flatten(tree, name: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten(v, f"{name}[{k!r}]", out)
    elif isinstance(tree, (list, tuple)) and not hasattr(type(tree), "_fields"):
        for i, v in enumerate(tree):
            _flatten(v, f"{name}[{i}]", out)
    else:
        out[name] = tree
    return out


def modified_inputs(conv: Convention, given: dict | None, pristine: dict[str, Any], entry: Entry) -> str | None:
    """What the submission changed in the arrays it was given (None: nothing), in one line.

    Args:
      conv: the convention (its names for the inputs).
      given: the arrays after the call, by request key (as the worker sent them back).
      pristine: the request as sent (the grader's copies).
      entry: the entry (a class form's parameters live in ``model.params``).
    """
    if given is None:
        return None
    changed = []
    for key, value in pristine.items():
        if key not in given or not isinstance(value, (dict, list, np.ndarray)):
            continue
        label = conv.given_names.get(key, key)
        if entry.kind == "class" and key == "params":
            label = "model.params"
        before, after = _flatten(value, label, {}), _flatten(given[key], label, {})
        for name, a in before.items():
            b = after.get(name)
            if not isinstance(a, np.ndarray):
                continue
            if not isinstance(b, np.ndarray) or b.shape != a.shape:
                changed.append(f"{name} (replaced by {type(b).__name__})")
            elif not np.array_equal(a, b.astype(a.dtype, copy=False), equal_nan=True):
                diff = np.abs(b.astype(np.float64) - a.astype(np.float64))
                changed.append(
                    f"{name} ({int(np.sum(diff != 0))} of {a.size} elements, by up to {float(np.nanmax(diff)):.2e})"
                )
    if not changed:
        return None
    return (
        f"modified its inputs in place: {', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''}; work "
        "on copies (x.copy()): a numerical-gradient helper that perturbs an array must restore it"
    )


def _loss_check(
    conv: Convention, case: Case, prep: Prepared, ref: Reference, got: float, loss_dtype: str | None
) -> ValueCheck:
    expected = float(ref.values.f0)
    rtol = 8 * gc.autodiff_rtol(loss_dtype or "float64")
    if conv.course_mode:
        rtol = max(rtol, COURSE_VALUE_RTOL)
    tol = rtol * max(1.0, abs(expected))
    passed = bool(np.isfinite(got) and abs(got - expected) <= tol)
    diag = None
    if not passed:
        layers = conv.params_to_layers(prep.inputs.params)
        lam = conv.l2_coefficient(case)
        bias = 0.5 * lam * sum(float(np.sum(layer.b**2)) for layer in layers)
        per_layer = [0.5 * lam * float(np.sum(layer.W**2)) for layer in layers]
        diag = loss_diagnosis(conv, case, got, LossTerms(expected, float(ref.data_loss), bias, per_layer))
    return ValueCheck("loss", expected, got, passed, tol, diag)


def _loss_code(conv: Convention, case: Case, prep: Prepared, ref: Reference, got: float) -> Code:
    layers = conv.params_to_layers(prep.inputs.params)
    lam = conv.l2_coefficient(case)
    bias = 0.5 * lam * sum(float(np.sum(layer.b**2)) for layer in layers)
    per_layer = [0.5 * lam * float(np.sum(layer.W**2)) for layer in layers]
    return loss_code(case, got, LossTerms(float(ref.values.f0), float(ref.data_loss), bias, per_layer))


def _output_check(conv: Convention, prep: Prepared, ref: Reference, output: np.ndarray) -> ValueCheck:
    expected = np.asarray(ref.output, np.float64).T  # deeplearning.ai's AL: (1, m)
    got = np.asarray(output, np.float64)
    rtol = 8 * gc.autodiff_rtol(str(output.dtype))
    if conv.course_mode:
        rtol = max(rtol, COURSE_VALUE_RTOL)
    tol = rtol * np.maximum(1.0, np.abs(expected))
    err = np.where(np.isfinite(got), np.abs(got - expected), np.inf)
    worst = np.unravel_index(int(np.argmax(err / tol)), err.shape)
    passed = bool(np.all(err <= tol))
    diag = (
        None
        if passed
        else (
            "L_model_forward's AL differs from sigmoid(W_L A_(L-1) + b_L) with ReLU hidden "
            f"layers (worst at {list(map(int, worst))}): the forward pass is wrong, so the "
            "caches L_model_backward works from are too"
        )
    )
    return ValueCheck("AL", float(expected[worst]), float(got[worst]), passed, float(tol[worst]), diag)


def judge_case(
    conv: Convention,
    prep: Prepared,
    ref: Reference,
    unpacked: Unpacked,
    *,
    modified: str | None = None,
    seconds: float = 0.0,
) -> CaseResult:
    """Judge one case's returned gradient (and loss, output) against its reference.

    Args:
      conv: the convention.
      prep: the prepared case.
      ref: its reference.
      unpacked: what the submission returned (see :meth:`Convention.unpack`).
      modified: what the submission changed in its inputs (see :func:`modified_inputs`), or None.
      seconds: the submission's time on this case.

    Returns:
      The :class:`CaseResult`, with a diagnosis when it fails.
    """
    case, layout = prep.case, prep.layout
    coarse = gc.coarser(str(layout.dtype), str(unpacked.dtype))
    gdtype = None if coarse == str(layout.dtype) else coarse
    labels = [(case.batch, f"{conv.batch}, the batch size")] if conv.batch and case.batch > 1 else []
    report = gc.analyze_full(ref.values, prep.plan, unpacked.grads, layout, factors=labels, gradient_dtype=gdtype)
    loss = _loss_check(conv, case, prep, ref, unpacked.loss, unpacked.loss_dtype) if unpacked.loss is not None else None
    output = _output_check(conv, prep, ref, unpacked.output) if unpacked.output is not None else None
    standard = None
    if not report.passed and conv.course_mode:
        report, standard = _course_standard(conv, report, ref, unpacked, layout)
    passed = report.passed and (loss is None or loss.passed) and (output is None or output.passed) and not modified
    failing = tuple(dict.fromkeys(conv.leaf_name(r.path) for r in report.failures()))
    diagnosis: tuple[str, ...] = ()
    codes: tuple[Code, ...] = ()
    fd = None
    if not report.passed:
        expected = np.asarray(ref.values.grad, np.float64)
        params = layout.split(layout.ravel(prep.inputs.params, np.float64))
        evidence = Evidence(
            layout, params, unpacked.grads, expected, variants(conv, prep), gc.match_rtol(gdtype or layout.dtype)
        )
        diagnosis, codes = diagnose(conv, case, report, evidence)
        fd = _central_difference_at_worst(report, ref, prep)
    if loss is not None and not loss.passed:
        words = loss.diagnosis
        if report.passed:
            words = f"the gradient is right but the loss value is not: {words}"
        diagnosis += (f"loss: {words}",)
        codes += (_loss_code(conv, case, prep, ref, loss.got),)
    if output is not None and not output.passed and output.diagnosis is not None:  # always one when failed
        diagnosis = (output.diagnosis,) + diagnosis
        codes = (Code("wrong-forward"),) + codes
    if modified:
        codes += (Code("modified-inputs"),)
    notes = (modified,) if modified else ()
    if standard is not None and passed:  # (notes on a failing case are read as further failures)
        notes += (standard,)
    return CaseResult(
        case,
        passed,
        report,
        None,
        failing,
        diagnosis,
        fd,
        "ok",
        loss,
        output,
        notes,
        seconds,
        codes=codes if not passed else (),
    )


def _course_standard(
    conv: Convention, report: gc.GradCheckReport, ref: Reference, unpacked: Unpacked, layout: gc.LeafLayout
) -> tuple[gc.GradCheckReport, str | None]:
    """A gradient that fails fnnjax's float64 bound, judged by the course's own standard.

    The returned gradient's error against jax.grad, measured as the course measures it
    (:meth:`Convention.course_error`: cs231n per array, deeplearning.ai over every parameter at
    once, as ``gradient_check_n``), must be within the course's threshold, and no single array may
    be off by more than :data:`COURSE_ARRAY_BOUND` (a small array cannot hide in the whole). The
    classic mistakes (a missing σ′ or ReLU mask, a transposed dW, a missing 1/m, a flipped sign, a
    missing or doubled reg·W) are errors of order 1, far above both bounds, so they still fail.

    Returns:
      ``(report, note)``: the report marked passed with a note saying by which standard, or the
      report unchanged and None.
    """
    expected = layout.split(np.asarray(ref.values.grad, np.float64))
    errors = [conv.course_error(e, g) for e, g in zip(expected, unpacked.grads)]
    if conv.course_metric == "norm" and all(math.isfinite(e) for e in errors):  # one vector, as gradient_check_n
        flat = [np.asarray(g, np.float64).ravel() for g in unpacked.grads]
        worst = conv.course_error(np.concatenate([e.ravel() for e in expected]), np.concatenate(flat))
    else:
        worst = max(errors, default=0.0)
    if not (worst <= conv.course_threshold and max(errors, default=0.0) <= COURSE_ARRAY_BOUND):
        return report, None
    leaves = tuple(r._replace(passed=True) for r in report.leaves)
    taylor = report.taylor
    if taylor is not None and taylor.passed is False:
        taylor = taylor._replace(passed=None, note=f"not judged: the course's standard decides ({taylor.note})")
    marked = dataclasses.replace(report, passed=True, leaves=leaves, taylor=taylor, diagnosis=None)
    note = (
        f"passes by the course's standard: relative error {worst:.1e} ≤ {conv.course_threshold:g} "
        f"({conv.course_source}); fnnjax's float64 bound (--strict) is not met"
    )
    return marked, note


def _central_difference_at_worst(report: gc.GradCheckReport, ref: Reference, prep: Prepared) -> float | None:
    failing = [r for r in report.failures() if r.oracle == "autodiff"] or list(report.failures())
    if not failing:
        return None
    worst = next((r for r in failing if r.transposed_shape), None) or max(failing, key=lambda r: r.rel_err)
    i = prep.layout.paths.index(worst.path)
    estimates = gc.central_differences(ref.values, prep.plan, prep.layout.dtype)
    leaf = prep.layout.split(estimates)[i]
    index = tuple(worst.worst_index)
    if len(index) != leaf.ndim or any(k >= n for k, n in zip(index, leaf.shape)):
        return None
    return float(leaf[index])


def unpack_or_fail(conv: Convention, result: dict, prep: Prepared, entry: Entry, **kwargs) -> Unpacked | str:
    """:meth:`Convention.unpack`, or the :class:`Mismatch` message."""
    try:
        return conv.unpack(result, prep.case, prep.inputs, entry, **kwargs)
    except Mismatch as err:
        return str(err)
