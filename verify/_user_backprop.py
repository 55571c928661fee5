"""Check a user's own backprop: ``fnnjax verify --backprop module:function``.

:func:`load_user_function` imports ``module:function`` or ``path/to/file.py:function`` and checks
that the function can be called as ``fn(mlp, params, x, y, loss=..., l2=...)`` (the signature of
:func:`fnnjax.backprop`). :func:`check_user_backprop` runs it on :data:`CASES` (depth 1 to 4,
nonsquare and square layers, every hidden activation, every output/loss pairing, l2 on and off) in
float64, at random parameters with nonzero biases and a batch of N = 7 random inputs, and compares
each returned gradient with ``jax.grad`` of :func:`fnnjax.loss` and with central differences
(:func:`fnnjax._gradcheck.analyze_full`). A failing parameter gets a diagnosis: transposed, off by a
constant factor (2, N, sign), missing f'(z), missing or extra L2 term, bias decayed, wrong only in
one layer.

The oracles of every case are one ``jax.jit`` program (compiled once per process, whatever the
user's function), built from points laid out on the host by :func:`fnnjax._gradcheck.plan_oracles`;
the user's function on every case is a second program, or runs eagerly when it cannot be traced
(numpy conversions, Python branches on values).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax import _gradcheck as gc
from fnnjax._activations import softmax_vjp
from fnnjax._backprop import backward, output_delta
from fnnjax._model import trace_batch
from fnnjax.errors import UsageError

__all__ = [
    "BATCH_SIZE",
    "CASES",
    "SIGNATURE",
    "BackpropReport",
    "Case",
    "CaseResult",
    "check_user_backprop",
    "load_user_function",
]

SIGNATURE = "(mlp, params, x, y, loss='cross_entropy', l2=0.0)"
"""How :func:`check_user_backprop` calls the user's function (the signature of fnnjax.backprop)."""

BATCH_SIZE = 7
"""N, the batch size of every case: > 1 and no layer width, so a sum where a mean belongs shows as 7."""


class Case(NamedTuple):
    """One network the user's backprop is run on.

    Attributes:
      sizes: ``(M_0, ..., M_L)``.
      hidden: one activation per hidden layer.
      output: the output activation.
      loss: the loss name.
      l2: the weight-decay coefficient.
    """

    sizes: tuple[int, ...]
    hidden: tuple[str, ...]
    output: str
    loss: str
    l2: float

    @property
    def mlp(self) -> fnnjax.MLP:
        """The :class:`fnnjax.MLP` of this case."""
        return fnnjax.MLP(self.sizes, hidden=self.hidden, output=self.output)

    @property
    def architecture(self) -> str:
        """``4-6-3``."""
        return "-".join(str(m) for m in self.sizes)

    @property
    def activations(self) -> str:
        """``relu, softmax`` (hidden layers first)."""
        return ", ".join((*self.hidden, self.output))


CASES = (
    Case((4, 6, 3), ("relu",), "softmax", "cross_entropy", 0.1),
    Case((4, 3), (), "softmax", "cross_entropy", 0.0),
    Case((3, 5, 4, 2), ("tanh", "sigmoid"), "sigmoid", "cross_entropy", 0.0),
    Case((5, 4, 6, 3, 2), ("leaky_relu", "softplus", "identity"), "identity", "mse", 0.1),
    Case((3, 6, 4, 3), ("step", "relu"), "tanh", "mse", 0.05),
    Case((2, 5, 5, 1), ("sigmoid", "tanh"), "sigmoid", "squared_error", 0.1),
)
"""The cases, in order: depth 1-4; every hidden activation (step has f' = 0, so its layer's gradient is
exactly zero); softmax and sigmoid cross-entropy, identity/tanh/sigmoid with mse and squared_error;
l2 on and off; nonsquare layers (a transposed dW has the wrong shape) and a square one."""


# ----------------------------------------------------------------------------------------------
# Loading the user's function


def _one_line(err: BaseException, files: tuple[str, ...] = ()) -> str:
    """``SyntaxError: invalid syntax (file.py line 3)``: an exception in one line, with its location."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} ({err.filename} line {err.lineno})"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    where = ""
    frames = traceback.extract_tb(err.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename and (not files or f.filename in files)]
    if user or frames:
        frame = (user or frames)[-1]
        where = f" ({frame.filename} line {frame.lineno})"
    return f"{type(err).__name__}: {text}{where}" if text else f"{type(err).__name__}{where}"


def _import_file(target: str):
    path = Path(target)
    if not path.is_file():
        raise UsageError(f"cannot load {target!r}: no such file (looked from {Path.cwd()}); pass "
                         "path/to/file.py:FUNCTION with a path relative to the current directory")
    if path.suffix != ".py":
        raise UsageError(f"cannot load {target!r}: not a .py file; pass path/to/file.py:FUNCTION or "
                         "module.name:FUNCTION")
    name = "_fnnjax_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # the user's file ran and failed: say what and where
        sys.modules.pop(name, None)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise UsageError(f"importing {target} failed: {_one_line(err, (str(path.resolve()), str(path)))}; "
                         "fix the file and rerun") from None
    finally:
        sys.path.remove(folder)
    return module


def _import_module(target: str):
    if not all(part.isidentifier() for part in target.split(".")):
        raise UsageError(f"{target!r} is neither a module name (like mypackage.grads) nor a .py file path; "
                         "pass module.name:FUNCTION or path/to/file.py:FUNCTION")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name and (target == err.name or target.startswith(err.name + ".")):
            raise UsageError(f"cannot import module {target!r}: no module named {err.name!r} on the Python "
                             "path (the current directory included); run from the folder that holds it "
                             f"or pass a file path, e.g. path/to/{target.split('.')[-1]}.py:FUNCTION") from None
        raise UsageError(f"importing module {target!r} failed: {_one_line(err)}; install or fix the "
                         "missing import and rerun") from None
    except BaseException as err:
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise UsageError(f"importing module {target!r} failed: {_one_line(err)}; fix it and rerun") from None
    finally:
        if added:
            sys.path.remove(cwd)


def _defined_functions(module) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if inspect.isfunction(v) and v.__module__ == module.__name__ and not n.startswith("_"))


def _check_signature(fn: Callable, spec: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and some C callables have no signature: let the call decide
    try:
        sig.bind("mlp", "params", "x", "y", loss="cross_entropy", l2=0.0)
    except TypeError as err:
        raise UsageError(f"{spec} has the signature {sig}, which cannot be called as "
                         f"fn(mlp, params, x, y, loss=..., l2=...) ({err}); define it as "
                         f"def {getattr(fn, '__name__', 'backprop')}{SIGNATURE}") from None


def load_user_function(spec: str) -> Callable:
    """Import the function named by ``module:function`` or ``path/to/file.py:function``.

    A file path is imported with its folder on ``sys.path`` (so it may import its neighbours); a
    module name is looked up with the current directory on ``sys.path``.

    Args:
      spec: ``module.name:function`` or ``path/to/file.py:function``.

    Returns:
      The function, checked to accept ``(mlp, params, x, y, loss=..., l2=...)``.

    Raises:
      UsageError: one line saying what is wrong and how to fix it: a spec without ``:``, a missing
        file, an import that fails (its own error summarised with file and line), a missing name, a
        name that is not callable, a function with the wrong signature.

    Example:
      >>> from verify._user_backprop import load_user_function
      >>> load_user_function("fnnjax:backprop").__name__
      'backprop'
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise UsageError(f"--backprop expects MODULE:FUNCTION or path/to/file.py:FUNCTION, got {spec!r}; "
                         "e.g. examples/student_backprop.py:backprop")
    target, _, name = spec.rpartition(":")
    if not target or not name.isidentifier():
        raise UsageError(f"--backprop {spec!r}: {name!r} is not a function name; pass MODULE:FUNCTION or "
                         "path/to/file.py:FUNCTION, e.g. examples/student_backprop.py:backprop")
    is_path = target.endswith(".py") or "/" in target or os.sep in target
    module = _import_file(target) if is_path else _import_module(target)
    if not hasattr(module, name):
        defined = _defined_functions(module)
        listing = f"it defines {', '.join(defined[:8])}" if defined else "it defines no functions"
        raise UsageError(f"{target} has no function {name!r} ({listing}); pass one as {target}:FUNCTION")
    fn = getattr(module, name)
    if not callable(fn):
        raise UsageError(f"{spec} is a {type(fn).__name__}, not a function; pass a function with the "
                         f"signature {SIGNATURE}")
    _check_signature(fn, spec)
    return fn


# ----------------------------------------------------------------------------------------------
# The cases' data


class _Inputs(NamedTuple):
    params: tuple
    x: jax.Array
    y: jax.Array
    d: jax.Array  # the Taylor-test direction, (P,)


def _case_inputs(case: Case, seed: int, index: int) -> _Inputs:
    """Random float64 params (biases nonzero), inputs, targets and a Taylor direction for one case."""
    rng = np.random.default_rng([seed, index])
    params = tuple(
        fnnjax.Layer(jnp.asarray(rng.normal(0.0, 1.5 / math.sqrt(n), (m, n))),
                     jnp.asarray(rng.normal(0.0, 0.5, (m,))))
        for n, m in zip(case.sizes[:-1], case.sizes[1:]))
    n, m = BATCH_SIZE, case.sizes[-1]
    x = rng.normal(0.0, 1.0, (n, case.sizes[0]))
    if case.loss == "cross_entropy" and case.output == "softmax":
        y = np.eye(m)[rng.integers(0, m, n)]
    elif case.loss == "cross_entropy":
        y = rng.integers(0, 2, (n, m)).astype(np.float64)
    elif case.output == "sigmoid":
        y = rng.uniform(0.05, 0.95, (n, m))
    elif case.output == "tanh":
        y = rng.uniform(-0.9, 0.9, (n, m))
    else:
        y = rng.normal(0.0, 1.0, (n, m))
    d = rng.normal(0.0, 1.0, case.mlp.num_params)
    return _Inputs(params, jnp.asarray(x), jnp.asarray(y), jnp.asarray(d))


def _risk(case: Case, layout, x, y):
    mlp = case.mlp
    return lambda theta: fnnjax.loss(mlp, gc.unflatten_params(theta, layout), x, y, loss=case.loss, l2=case.l2)


def _plan(case: Case, inputs: _Inputs) -> gc.OraclePlan:
    """The finite-difference stencil (step eps^(1/3) max(1, |theta_i|)) and Taylor points of a case."""
    layout, dtype = gc.leaf_layout(inputs.params)
    theta = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(inputs.params)])
    h = float(np.finfo(theta.dtype).eps) ** (1 / 3) * np.maximum(1, np.abs(theta))
    d = np.asarray(inputs.d)
    d = d / np.linalg.norm(d) * max(1.0, float(np.linalg.norm(theta)))
    return gc.plan_oracles(theta, h, d)


def _oracles(case: Case, inputs: _Inputs, plan: gc.OraclePlan) -> gc.FullOracles:
    layout, _ = gc.leaf_layout(inputs.params)
    return gc.evaluate_oracles(_risk(case, layout, inputs.x, inputs.y), plan)


def _call(fn, case: Case, inputs: _Inputs):
    return fn(case.mlp, inputs.params, inputs.x, inputs.y, loss=case.loss, l2=case.l2)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_all(fn, cases, inputs):
    """The user's gradients for every case, in one compiled program."""
    return [_call(fn, c, i) for c, i in zip(cases, inputs)]


@functools.partial(jax.jit, static_argnums=(0,))
def _evaluate_oracles(cases, inputs, plans):
    """jax.grad and every finite-difference and Taylor evaluation of every case, in one program."""
    return [_oracles(c, i, p) for c, i, p in zip(cases, inputs, plans)]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_jit(fn, case, inputs):
    return _call(fn, case, inputs)


def _run_user(fn, case: Case, inputs: _Inputs, jit: bool):
    """The user's gradient for one case: traced if possible, else eagerly. Returns (grads, error)."""
    if jit:
        try:
            return _call_jit(fn, case, inputs), None
        except Exception:  # not traceable (numpy conversion, branch on values...) or a real bug: run eagerly
            pass
    try:
        return jax.block_until_ready(_call(fn, case, inputs)), None
    except Exception as err:
        return None, _one_line(err)


# ----------------------------------------------------------------------------------------------
# Structure checks: wrong structure, shape or dtype is a usage error (one line, exit status 2)


def _param_name(path: str) -> str:
    """``[1].W`` -> ``W^(2)``."""
    m = re.fullmatch(r"\[(\d+)\]\.(W|b)", path)
    return f"{m.group(2)}^({int(m.group(1)) + 1})" if m else path


def _describe_tree(tree) -> str:
    if isinstance(tree, (tuple, list)):
        kinds = sorted({type(t).__name__ for t in tree})
        plural = "" if len(tree) == 1 else "s"
        return f"a {type(tree).__name__} of {len(tree)} {'/'.join(k + plural for k in kinds) or 'items'}"
    return f"a {type(tree).__name__}"


def _check_returned(grads, case: Case, index: int, inputs: _Inputs, spec: str) -> list[np.ndarray]:
    """The returned gradient's leaves as float64 arrays, or a UsageError naming what is wrong."""
    layout, dtype = gc.leaf_layout(inputs.params)
    where = f"case {index + 1} ({case.architecture}, {case.activations}, {case.loss}, l2 = {case.l2:g})"
    got = jax.tree_util.tree_structure(grads)
    if got != layout.treedef:
        raise UsageError(
            f"{spec} returned {_describe_tree(grads)} in {where}, but the gradient must have params' "
            f"structure, a tuple of {len(case.sizes) - 1} fnnjax.Layer(W, b): return "
            f"tuple(fnnjax.Layer(dW, db) for each layer) (expected treedef {layout.treedef}; "
            f"got treedef {got})")
    out = []
    for path, shape, leaf in zip(layout.paths, layout.shapes, jax.tree_util.tree_leaves(grads)):
        gshape = tuple(jnp.shape(leaf))
        name = _param_name(path)
        if gshape != shape and not (len(shape) == 2 and gshape == shape[::-1]):
            raise UsageError(f"{spec} returned shape {gshape} for d{name} in {where}, but {name} has "
                             f"shape {shape}; a gradient has the shape of its parameter")
        gdt = jnp.result_type(leaf)
        if gdt != jnp.dtype(dtype):
            raise UsageError(f"{spec} returned {gdt} for d{name} in {where}, but the params are {dtype}; "
                             "compute in the params' dtype (e.g. jnp.zeros(shape, params[0].W.dtype))")
        out.append(np.asarray(leaf, np.float64))
    return out


# ----------------------------------------------------------------------------------------------
# Diagnosis with the MLP in hand


def _variant_data_gradients(case: Case, inputs: _Inputs) -> dict[str, tuple]:
    """Data-term gradients (l2 = 0) of classic wrong recursions, built from the core's pieces."""
    mlp, n = case.mlp, BATCH_SIZE
    params, x, y = inputs.params, inputs.x, inputs.y
    trace = trace_batch(mlp, params, x)
    right = output_delta(mlp, case.loss, trace, y)

    def grads(delta_out, derivs_mlp=mlp):
        ds = backward(derivs_mlp, params, trace, delta_out / n)
        return tuple(fnnjax.Layer(d.T @ a, jnp.sum(d, axis=0)) for d, a in zip(ds, trace.a[:-1]))

    out = {}
    if mlp.num_layers > 1:
        identity_hidden = fnnjax.MLP(mlp.sizes, hidden="identity", output=mlp.output)
        out["missing f'(z^(l)) in the hidden error terms (F11: delta^(l) = f'(z^(l)) * "
            "(W^(l+1)T delta^(l+1)))"] = grads(right, identity_hidden)
    a, z = trace.a[-1], trace.z[-1]
    if case.loss != "cross_entropy" and mlp.output != "identity":
        g = a - y if case.loss == "mse" else 2 * (a - y)
        out["missing the output derivative f_L'(z^(L)) in delta^(L) (F10: delta^(L) = dL/da^(L) * "
            "f_L'(z^(L)))"] = grads(g)
    if case.loss == "cross_entropy":
        extra = (softmax_vjp(a, a - y) if mlp.output == "softmax"
                 else (a - y) * fnnjax.activation_derivative(mlp.output, z))
        out["an extra f_L'(z^(L)) in delta^(L): with cross-entropy it cancels and delta^(L) = y_hat - y "
            "(F10)"] = grads(extra)
    return out


_variants_jit = jax.jit(_variant_data_gradients, static_argnums=(0,))


def _near(c: float, v: float) -> bool:
    return abs(c - v) <= 1e-3 * max(1.0, abs(v))


def _factor_phrase(alpha: float, what: str) -> str:
    n = BATCH_SIZE
    if _near(alpha, -1):
        return f"sign flipped ({what} = -expected: y - a where a - y belongs?)"
    if _near(alpha, n):
        return (f"a sum over the batch where the mean belongs ({what} is N = {n} times too big; F13 "
                "averages with 1/N)")
    if _near(alpha, 1 / n):
        return f"divided by N twice ({what} is 1/N = 1/{n} of the right one)"
    if _near(alpha, 2):
        return f"off by a constant factor 2 ({what} is doubled: 2 (a - y) for mse = 1/2 ||a - y||^2?)"
    if _near(alpha, 0.5):
        return (f"off by a constant factor 1/2 ({what} is halved: a - y for squared_error = ||a - y||^2, "
                "whose derivative is 2 (a - y)?)")
    return f"off by a constant factor {gc.name_factor(alpha, [(n, 'N, the batch size')])} ({what})"


def _l2_phrase(beta: float, is_weight: bool, layer: int) -> str | None:
    if not is_weight:
        if _near(beta, 1):
            return (f"bias decayed: db^({layer}) includes l2 b^({layer}), but the L2 term excludes biases "
                    "(F7, F13: dR/db = (1/N) sum_i delta_i)")
        if not _near(beta, 0):
            return f"db^({layer}) includes {beta:.4g} l2 b^({layer}), but biases are not regularised (F7)"
        return None
    if _near(beta, 1):
        return None
    if _near(beta, 0):
        return f"missing the L2 term l2 W^({layer}) (F13: dR/dW^(l) = (1/N) sum_i delta_i a_i^T + l2 W^(l))"
    if _near(beta, 2):
        return (f"extra L2 term: 2 l2 W^({layer}) where l2 W^({layer}) belongs (the gradient of "
                "(l2/2) ||W||^2 is l2 W)")
    if _near(beta, 1 / BATCH_SIZE):
        return f"the L2 term is divided by N (l2 W^({layer}) / {BATCH_SIZE}); the penalty is not averaged"
    if _near(beta, -1):
        return f"the L2 term has the wrong sign (-l2 W^({layer}))"
    return f"the L2 term is {beta:.4g} l2 W^({layer}) instead of l2 W^({layer})"


def _explain_leaf(expected, got, data, reg, is_weight: bool, layer: int, variants, rtol: float) -> str | None:
    """Why ``got`` differs from ``expected = data + reg``: a decomposition, a variant, or the generic tests."""
    if got.shape != expected.shape or not np.all(np.isfinite(got)) or not np.any(got):
        return gc.diagnose_leaf(expected, got, rtol=rtol)  # transposed, non-finite or zero
    has_data, has_reg = bool(np.any(data)), bool(np.any(reg))
    what = "the data term" if has_reg else "the gradient"
    if has_data or has_reg:
        coeffs, residual = gc.fit_combination(got, [b for b, keep in ((data, has_data), (reg, has_reg)) if keep])
        if residual <= rtol:
            alpha = float(coeffs[0]) if has_data else 1.0
            beta = float(coeffs[-1]) if has_reg else (1.0 if is_weight else 0.0)
            if has_data and has_reg and is_weight and _near(alpha, beta) and not _near(alpha, 1):
                return _factor_phrase(alpha, "the gradient")
            parts = [] if _near(alpha, 1) else [_factor_phrase(alpha, what)]
            l2_part = _l2_phrase(beta, is_weight, layer) if has_reg else None
            if l2_part:
                parts.append(l2_part)
            if parts:
                return "; and ".join(parts)
    for words, variant in variants:
        expected_l2 = reg if is_weight else 0.0
        if gc.arrays_match(got, variant + expected_l2, rtol) and not gc.arrays_match(variant, data, rtol):
            return words
    return gc.diagnose_leaf(expected, got, rtol=rtol)


def _diagnose_case(case: Case, inputs: _Inputs, report: gc.GradCheckReport, got_leaves,
                   expected_flat: np.ndarray) -> tuple[str, ...]:
    """Diagnosis lines for a failing case: per group of parameters, then the tree-level statement."""
    layout, dtype = gc.leaf_layout(inputs.params)
    failing = [r for r in report.failures() if r.oracle == "autodiff"] or list(report.failures())
    if not failing:
        return (report.diagnosis or "failed",)
    variants = {w: [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(v)]
                for w, v in _variants_jit(case, inputs).items()}
    rtol = gc.match_rtol(dtype)
    params = [np.asarray(p, np.float64) for p in jax.tree_util.tree_leaves(inputs.params)]
    by_diag: dict[str, list[str]] = {}
    for r in failing:
        i = layout.paths.index(r.path)
        expected = expected_flat[gc.leaf_slices(layout)[i]].reshape(layout.shapes[i])
        is_weight = r.path.endswith(".W")
        reg = case.l2 * params[i]
        data = expected - reg if is_weight else expected
        leaf_variants = [(w, v[i]) for w, v in variants.items()]
        layer = i // 2 + 1
        diag = _explain_leaf(expected, got_leaves[i], data, reg, is_weight, layer, leaf_variants, rtol)
        by_diag.setdefault(diag or "wrong values, no simple pattern found", []).append(_param_name(r.path))
    lines = [f"{', '.join(names)}: {diag}" for diag, names in by_diag.items()]
    layers = sorted({int(re.search(r"\((\d+)\)", n).group(1)) for names in by_diag.values() for n in names})
    if len(layers) == 1 and case.mlp.num_layers > 1:
        lines.append(f"wrong only in layer {layers[0]}: every other layer is right")
    return tuple(lines)


# ----------------------------------------------------------------------------------------------
# Reports


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """One case of :func:`check_user_backprop`.

    Attributes:
      case: the :class:`Case`.
      passed: every parameter agrees with jax.grad and central differences.
      check: the :class:`fnnjax.GradCheckReport` (None when the function raised).
      error: the exception the function raised, in one line, or None.
      failing: the failing parameters, e.g. ``("W^(1)", "b^(1)")``.
      diagnosis: diagnosis lines (only for the first failing case), else ().
      central_difference: the central-difference estimate at the worst element of the worst failing
        parameter (only for the first failing case), else None.
    """

    case: Case
    passed: bool
    check: gc.GradCheckReport | None
    error: str | None
    failing: tuple[str, ...]
    diagnosis: tuple[str, ...] = ()
    central_difference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the case, status, failing parameters, diagnosis and the gradient check."""
        return {"architecture": self.case.architecture, "activations": list((*self.case.hidden, self.case.output)),
                "loss": self.case.loss, "l2": self.case.l2, "batch_size": BATCH_SIZE,
                "status": "pass" if self.passed else "fail", "error": self.error,
                "failing": list(self.failing), "diagnosis": list(self.diagnosis),
                "check": None if self.check is None else self.check.to_dict()}


@dataclasses.dataclass(frozen=True)
class BackpropReport:
    """What :func:`check_user_backprop` found.

    Attributes:
      passed: every case passes.
      function: the checked function's name.
      seed: the seed of the random parameters and inputs.
      cases: one :class:`CaseResult` per case of :data:`CASES`.
      seconds: wall time of the check.
    """

    passed: bool
    function: str
    seed: int
    cases: tuple[CaseResult, ...]
    seconds: float

    @property
    def first_failure(self) -> CaseResult | None:
        """The first failing :class:`CaseResult`, or None."""
        return next((c for c in self.cases if not c.passed), None)

    def render(self) -> str:
        """A table of the cases, then the first failing case in detail with its diagnosis."""
        width = max(len(c.case.activations) for c in self.cases)
        lines = [f"checking {self.function} against jax.grad and central differences "
                 f"(float64, N = {BATCH_SIZE} samples, seed {self.seed})",
                 f"  {'#':>2}  {'architecture':<13} {'activations':<{width}}  {'loss':<14} {'l2':<5} result"]
        for k, c in enumerate(self.cases, start=1):
            status = "pass" if c.passed else ("ERROR" if c.error else "FAIL  " + " ".join(c.failing))
            lines.append(f"  {k:>2}  {c.case.architecture:<13} {c.case.activations:<{width}}  {c.case.loss:<14} "
                         f"{c.case.l2:<5g} {status}")
        first = self.first_failure
        if first is None:
            lines.append(f"PASS: all {len(self.cases)} cases agree with jax.grad and central differences "
                         f"({self.seconds:.1f} s)")
            return "\n".join(lines)
        n_fail = sum(not c.passed for c in self.cases)
        k = self.cases.index(first) + 1
        lines.append(f"FAIL: {n_fail} of {len(self.cases)} cases fail. First failing case: #{k}")
        c = first.case
        lines.append(f"  case         {c.architecture} (N = {BATCH_SIZE}), activations {c.activations}, "
                     f"loss {c.loss}, l2 = {c.l2:g}")
        if first.error:
            lines.append(f"  error        your function raised {first.error}")
            return "\n".join(lines)
        lines.extend(_worst_lines(first))
        for i, line in enumerate(first.diagnosis):
            lines.append(f"  {'diagnosis' if i == 0 else '':<12} {line}")
        t = first.check.taylor if first.check else None
        reshaped = any(tuple(r.shape) != s for r, s in zip(
            (r for r in first.check.leaves if r.oracle == "autodiff"), _shapes(c)))
        if t is not None and any(r is not None for r in t.rates) and not reshaped:
            best = max(r for r in t.rates if r is not None)
            lines.append(f"  taylor test  remainder rate {best:.2f} (2 for a right gradient, 1 for a wrong one)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: status, function, seed, seconds, every case, and the first failure's index."""
        first = self.first_failure
        return {"status": "pass" if self.passed else "fail", "function": self.function, "seed": self.seed,
                "seconds": round(self.seconds, 3), "batch_size": BATCH_SIZE,
                "first_failure": None if first is None else self.cases.index(first) + 1,
                "cases": [c.to_dict() for c in self.cases]}


def _worst_failure(check: gc.GradCheckReport, case: Case) -> gc.LeafResult:
    """The failing parameter to show: a reshaped (transposed) one, else the largest relative error."""
    failing = [r for r in check.failures() if r.oracle == "autodiff"] or list(check.failures())
    shapes = dict(zip(_paths(case), _shapes(case)))
    for r in failing:
        if tuple(r.shape) != shapes[r.path]:
            return r
    return max(failing, key=lambda r: (r.rel_err, -failing.index(r)))


def _worst_lines(result: CaseResult) -> list[str]:
    """The worst failing parameter: its element, expected (jax.grad and fd) vs got, errors."""
    worst = _worst_failure(result.check, result.case)
    name = _param_name(worst.path)
    expected_shape = dict(zip(_paths(result.case), _shapes(result.case)))[worst.path]
    if tuple(worst.shape) != expected_shape:  # a transposed matrix: its values may be right, its layout is not
        return [f"  parameter    {name} (layer {_layer(worst.path)}): your gradient has shape "
                f"{tuple(worst.shape)}, but {name} has shape {expected_shape}"]
    fd = result.central_difference
    lines = [f"  parameter    {name} (layer {_layer(worst.path)}, shape {worst.shape}), worst element "
             f"{list(worst.worst_index)}"]
    lines.append(f"  expected     {worst.expected: .10e}  (jax.grad" +
                 (f"; central differences give {fd: .6e})" if fd is not None else ")"))
    lines.append(f"  got          {worst.got: .10e}")
    rel = abs(worst.got - worst.expected) / abs(worst.expected) if worst.expected else float("inf")
    lines.append(f"  error        abs {abs(worst.got - worst.expected):.3e}, rel {rel:.3e} "
                 f"(tolerance {worst.tolerance:.1e})")
    return lines


def _central_difference_at_worst(report, case, values, plan, layout, dtype) -> float:
    worst = _worst_failure(report, case)
    i = layout.paths.index(worst.path)
    estimates = gc.central_differences(values, plan, dtype)[gc.leaf_slices(layout)[i]]
    return float(estimates.reshape(layout.shapes[i])[tuple(worst.worst_index)])  # index in params' layout


def _layer(path: str) -> int:
    """``[1].W`` -> 2."""
    return int(path[1:path.index("]")]) + 1


def _paths(case: Case) -> list[str]:
    return [f"[{l}].{n}" for l in range(len(case.sizes) - 1) for n in ("W", "b")]


def _shapes(case: Case) -> list[tuple[int, ...]]:
    return [s for m, n in zip(case.sizes[1:], case.sizes[:-1]) for s in ((m, n), (m,))]


# ----------------------------------------------------------------------------------------------
# The check


def _function_name(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    module = module.removeprefix("_fnnjax_user_")
    return f"{module}:{getattr(fn, '__qualname__', getattr(fn, '__name__', repr(fn)))}" if module else repr(fn)


def _evaluate(fn, inputs, jit: bool):
    """(grads or None, error or None) per case: one traced program if possible, else case by case."""
    if jit:
        try:
            return [(g, None) for g in _call_all(fn, CASES, inputs)]
        except Exception:  # not traceable, or raises somewhere: find out case by case
            pass
    return [_run_user(fn, c, i, jit) for c, i in zip(CASES, inputs)]


def check_user_backprop(fn: Callable, *, seed: int = 0, name: str | None = None, jit: bool = True) -> BackpropReport:
    """Run a user's backprop on every case of :data:`CASES` against jax.grad and central differences.

    The function is called as ``fn(mlp, params, x, y, loss=case.loss, l2=case.l2)`` with float64
    params (biases nonzero), ``x: (N, M_0)`` and targets ``y: (N, M_L)`` (one-hot rows for softmax
    cross-entropy), N = 7, and must return the gradient of the risk R (F7) as a tuple of
    ``fnnjax.Layer(dW, db)``. Each case is judged by :func:`fnnjax.check_gradients`' oracles (jax.grad
    of :func:`fnnjax.loss`: tolerance eps^(3/4) relative; central differences: the estimated error)
    plus the Taylor-remainder rate; the first failing case gets a diagnosis.

    Args:
      fn: the user's function (e.g. from :func:`load_user_function`).
      seed: seed of the random parameters, inputs and Taylor directions.
      name: how to call the function in the report (default ``module:qualname``).
      jit: trace the function with ``jax.jit`` (one compile for every case; a function that cannot
        be traced is then run eagerly anyway); False runs it eagerly, op by op, which is faster when
        many functions are checked in one process (the compiled operations are shared).

    Returns:
      A :class:`BackpropReport` with ``passed``, ``render()`` and ``to_dict()``.

    Raises:
      UsageError: the function returned the wrong structure (both treedefs shown), shape or dtype.

    Example:
      >>> import fnnjax
      >>> from verify._user_backprop import check_user_backprop
      >>> check_user_backprop(fnnjax.backprop).passed
      True
    """
    start = time.perf_counter()
    label = name or _function_name(fn)
    with jax.enable_x64(True):
        inputs = tuple(_case_inputs(c, seed, k) for k, c in enumerate(CASES))
        plans = tuple(_plan(c, i) for c, i in zip(CASES, inputs))
        oracles_all = _evaluate_oracles(CASES, inputs, plans)  # compiled once per process, whatever fn is
        evaluated = _evaluate(fn, inputs, jit)
        results = []
        for k, (case, inp, (grads, error), oracles, plan) in enumerate(
                zip(CASES, inputs, evaluated, oracles_all, plans)):
            if error is not None:
                results.append(CaseResult(case, False, None, error, ()))
                continue
            got = _check_returned(grads, case, k, inp, label)
            layout, dtype = gc.leaf_layout(inp.params)
            report = gc.analyze_full(oracles, plan, got, layout, dtype)
            failing = tuple(dict.fromkeys(_param_name(r.path) for r in report.failures()))
            diagnosis, fd = (), None
            if not report.passed and all(r.passed for r in results):
                diagnosis = _diagnose_case(case, inp, report, got, np.asarray(oracles.grad, np.float64))
                fd = _central_difference_at_worst(report, case, oracles, plan, layout, dtype)
            results.append(CaseResult(case, report.passed, report, None, failing, diagnosis, fd))
    return BackpropReport(all(r.passed for r in results), label, seed, tuple(results),
                          time.perf_counter() - start)
