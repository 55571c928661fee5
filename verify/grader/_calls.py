"""How each course convention calls a submission (runs next to the submission: NumPy only).

A request names the convention's *form* and carries the case's arrays (fresh copies for every
call); :func:`call` runs the submission and returns what it gave back, plus the arrays it was given
as they are afterwards (the grader compares them with its pristine copies, so a submission that
changes its inputs in place is caught), and for the class forms what the constructor built.

Forms:

- ``fnnjax``: ``fn(mlp, params, x, y, loss=..., l2=...)`` with JAX float64 arrays (imports fnnjax).
- ``cs231n-function``: ``fn(params, X, y, reg) -> (loss, grads)``.
- ``cs231n-class``: ``model = Cls(**init)`` (the constructor's own keywords only), the case's
  values written into ``model.params``, then ``model.loss(X, y) -> (loss, grads)``.
- ``deeplearning-ai``: ``AL, caches = L_model_forward(X, parameters)``, then
  ``L_model_backward(AL, Y, caches) -> grads``.
- ``nielsen``: ``net = Cls(sizes)``, ``net.biases`` and ``net.weights`` set, then
  ``net.backprop(x, y) -> (nabla_b, nabla_w)``.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ._wire import to_numpy

__all__ = ["FORMS", "CallError", "call", "prepare"]


class CallError(Exception):
    """The submission does not fit its convention's calling contract (raised before or around the call)."""


def _accepted(cls, wanted: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``wanted`` that ``cls``'s constructor takes (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return dict(wanted)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted.items() if k in params}


def _prepare_fnnjax():
    import importlib

    import jax

    importlib.import_module("fnnjax")  # imported before the first case's clock starts
    jax.config.update("jax_enable_x64", True)


def _call_fnnjax(entry, request):
    import jax

    import fnnjax

    _prepare_fnnjax()
    mlp = fnnjax.MLP(tuple(request["sizes"]), hidden=tuple(request["hidden"]), output=request["output"])
    params = tuple(fnnjax.Layer(jax.numpy.asarray(w), jax.numpy.asarray(b)) for w, b in request["params"])
    x, y = jax.numpy.asarray(request["x"]), jax.numpy.asarray(request["y"])
    loss, l2 = request["loss"], request["l2"]
    try:  # traced when it can be (one compile), else eagerly
        grads = jax.jit(lambda p, x, y: entry(mlp, p, x, y, loss=loss, l2=l2))(params, x, y)
    except Exception:
        grads = entry(mlp, params, x, y, loss=loss, l2=l2)
    return {"returned": jax.block_until_ready(grads)}


def _call_cs231n_function(entry, request):
    params, X, y = request["params"], request["X"], request["y"]
    returned = entry(params, X, y, request["reg"])
    return {"returned": returned, "given": {"params": params, "X": X, "y": y}}


def _call_cs231n_class(entry, request):
    init = _accepted(entry, request["init"])
    if "dtype" in init:
        init["dtype"] = np.float64
    model = entry(**init)
    built = getattr(model, "params", None)
    if not isinstance(built, dict):
        raise CallError(
            f"{type(model).__name__}(...).params is {type(built).__name__}, not a dict: the "
            "constructor must fill self.params = {'W1': ..., 'b1': ..., ...}"
        )
    initial = {str(k): list(np.shape(v)) for k, v in built.items()}
    for key, value in request["params"].items():
        built[key] = value
    X, y = request["X"], request["y"]
    returned = model.loss(X, y)
    return {
        "returned": returned,
        "given": {"params": dict(model.params), "X": X, "y": y},
        "initial": initial,
        "init": sorted(init),
    }


def _call_deeplearning_ai(module, request):
    parameters, X, Y = request["parameters"], request["X"], request["Y"]
    forward = module.L_model_forward(X, parameters)
    if not (isinstance(forward, (tuple, list)) and len(forward) == 2):
        raise CallError(
            f"L_model_forward returned {type(forward).__name__}"
            f"{f' of length {len(forward)}' if isinstance(forward, (tuple, list)) else ''}; it "
            "must return (AL, caches)"
        )
    AL, caches = forward
    seen = to_numpy(AL)  # AL as L_model_forward returned it, before L_model_backward may change it
    grads = module.L_model_backward(AL, Y, caches)
    return {
        "returned": {"AL": AL if seen is None else seen.copy(), "grads": grads},
        "given": {"parameters": parameters, "X": X, "Y": Y},
    }


def _call_nielsen(entry, request):
    net = entry(list(request["sizes"]))
    net.biases = list(request["biases"])
    net.weights = list(request["weights"])
    x, y = request["x"], request["y"]
    returned = net.backprop(x, y)
    return {"returned": returned, "given": {"biases": list(net.biases), "weights": list(net.weights), "x": x, "y": y}}


FORMS = {
    "fnnjax": _call_fnnjax,
    "cs231n-function": _call_cs231n_function,
    "cs231n-class": _call_cs231n_class,
    "deeplearning-ai": _call_deeplearning_ai,
    "nielsen": _call_nielsen,
}
"""The calling contract of each form (see the module docstring)."""


PREPARE = {"fnnjax": _prepare_fnnjax}
"""What a form needs imported before its first case (the fnnjax form imports JAX)."""


def prepare(form: str) -> None:
    """Import what a form needs, so the first case's time limit does not pay for it."""
    if form in PREPARE:
        PREPARE[form]()


def call(form: str, entry, request: dict[str, Any]) -> dict[str, Any]:
    """Run the submission once in the given form.

    Args:
      form: a key of :data:`FORMS`.
      entry: the function, class, or (``deeplearning-ai``) module.
      request: the case's arrays and settings (fresh copies: the submission may keep them).

    Returns:
      ``{"returned": ..., "given": {name: array after the call}, ...}``.

    Raises:
      CallError: the submission does not fit the form's contract.
      Exception: whatever the submission raises.
    """
    return FORMS[form](entry, request)
