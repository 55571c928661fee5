"""How each course convention calls a submission (runs next to the submission: NumPy only).

A request names the convention's *form* and carries the case's arrays (fresh copies for every
call); :func:`call` runs the submission and returns what it gave back, plus the arrays it was given
as they are afterwards (the grader compares them with its pristine copies, so a submission that
changes its inputs in place is caught), and for the class forms what the constructor built.

Forms:

- ``fnnjax``: ``fn(mlp, params, x, y, loss=..., l2=...)`` with JAX float64 arrays (imports fnnjax).
- ``cs231n-function``: ``fn(params, X, y, reg) -> (loss, grads)``.
- ``cs231n-class``: ``model = Cls(**init)`` (the constructor's own keywords only), the case's
  values written into ``model.params``, then ``model.loss(X, y) -> (loss, grads)`` (assignment 1's
  ``model.loss(X, y, reg=...)`` when the request has ``loss_reg``).
- ``deeplearning-ai``: ``AL, caches = L_model_forward(X, parameters)``, then
  ``L_model_backward(AL, Y, caches) -> grads``.
- ``nielsen``: ``net = Cls(sizes)`` (a required ``activation...`` parameter gets ``"sigmoid"``,
  ``init`` adds keywords), ``net.biases`` and ``net.weights`` set, then
  ``net.backprop(x, y) -> (nabla_b, nabla_w)`` (or ``back_propagation``... :data:`BACKPROP_METHODS`;
  ``(nabla_w, nabla_b)`` is told apart by its shapes).
- ``probe``: build the class of a request of the form ``request["form"]`` once, before the cases:
  what its constructor built (cs231n), which cost the network has (Nielsen, network2.py's
  ``self.cost``), or the one-line error of a constructor the grader cannot call.

A class's constructor is called with the keywords it takes; a required parameter the grader cannot
fill is named in one line with the signature and ``--init KEY=VALUE``, never as a ``TypeError`` from
this file.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ._function_calls import PREFIX as FUNCTION_PREFIX, call_function
from ._wire import to_numpy

__all__ = ["BACKPROP_METHODS", "FORMS", "CallError", "backprop_method", "call", "prepare"]

BACKPROP_METHODS = ("backprop", "back_prop", "backpropagation", "back_propagation")
"""The names a Nielsen network's backward pass goes by in the book (``backprop``) and in students'
ports of it; the first one the class has is called."""


def backprop_method(methods) -> str | None:
    """The first of :data:`BACKPROP_METHODS` among ``methods`` (names), or None."""
    return next((m for m in BACKPROP_METHODS if m in methods), None)


class CallError(Exception):
    """The submission does not fit its convention's calling contract (raised before or around the call)."""


_INIT_HINT = "pass other keyword values with --init KEY=VALUE (init={'KEY': VALUE} in Python)"


def _signature_text(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _unfillable(cls, given: set[str], skip: int = 0) -> list[str]:
    """The required parameters of ``cls``'s constructor that are not in ``given`` (after ``skip``
    positional ones the grader passes positionally)."""
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return []
    out = []
    for p in params[skip:]:
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        if required and p.name not in given:
            out.append(p.name)
    return out


def _accepted(cls, wanted: dict[str, Any], fills: str = "", skip: int = 0) -> dict[str, Any]:
    """The keywords of ``wanted`` that ``cls``'s constructor takes (all of them if it takes ``**kwargs``).

    Raises:
      CallError: the constructor has a required parameter that ``wanted`` does not fill (one line:
        the signature, what the grader fills, ``--init``).
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return dict(wanted)
    missing = _unfillable(cls, set(wanted), skip)
    if missing:
        name = getattr(cls, "__name__", "the class")
        raise CallError(
            f"{name}{_signature_text(cls)}: the grader cannot fill {', '.join(missing)}; it fills "
            f"{fills or ', '.join(sorted(wanted))}; {_INIT_HINT}"
        )
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted.items() if k in params}


def _here(err: BaseException) -> bool:
    """The exception was raised in this file's own frame (a call whose arguments do not bind), not
    inside the submission."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename == __file__


def _invoke(fn, what: str, *args, **kwargs):
    """``fn(*args, **kwargs)``; arguments that do not bind are the contract's failure (a CallError
    naming ``what`` and its signature), never a TypeError pointing into the grader."""
    try:
        return fn(*args, **kwargs)
    except TypeError as err:
        if not _here(err):
            raise
        hint = f"; {_INIT_HINT}" if isinstance(fn, type) else ""
        raise CallError(
            f"{what}{_signature_text(fn)} cannot be called as the convention calls it: {err}{hint}"
        ) from None


def _unfinished(model, cls_name: str) -> None:
    """Raise when the constructor left ``self.params`` missing or empty (the starter code's TODO)."""
    built = getattr(model, "params", None)
    if built is None or (isinstance(built, dict) and not built):
        how = "sets no self.params" if built is None else "leaves self.params empty"
        raise CallError(f"not implemented yet: {cls_name}.__init__ {how} (the TODO is not done)")
    if not isinstance(built, dict):
        raise CallError(
            f"{cls_name}(...).params is {type(built).__name__}, not a dict: the "
            "constructor must fill self.params = {'W1': ..., 'b1': ..., ...}"
        )


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
    returned = _invoke(entry, getattr(entry, "__name__", "the function"), params, X, y, request["reg"])
    return {"returned": returned, "given": {"params": params, "X": X, "y": y}}


def _build_cs231n(entry, request):
    init = _accepted(entry, request["init"], request.get("fills", ""))
    if init.get("dtype") == "float64":
        init["dtype"] = np.float64
    name = getattr(entry, "__name__", "the class")
    model = _invoke(entry, name, **init)
    _unfinished(model, name)
    return model, init


def _call_cs231n_class(entry, request):
    model, init = _build_cs231n(entry, request)
    name = getattr(entry, "__name__", "the class")
    built = model.params
    initial = {str(k): list(np.shape(v)) for k, v in built.items()}
    for key, value in request["params"].items():
        built[key] = value
    X, y = request["X"], request["y"]
    if "loss_reg" in request:  # assignment 1: loss(X, y=None, reg=0.0)
        if not _takes(model.loss, "reg"):
            raise CallError(
                f"{name}.loss{_signature_text(model.loss)} takes no reg; cs231n assignment 1's loss is "
                "loss(X, y=None, reg=0.0)"
            )
        returned = _invoke(model.loss, f"{name}.loss", X, y, reg=request["loss_reg"])
    else:
        returned = _invoke(model.loss, f"{name}.loss", X, y)
    return {
        "returned": returned,
        "given": {"params": dict(model.params), "X": X, "y": y},
        "initial": initial,
        "init": sorted(init),
    }


def _call_deeplearning_ai(module, request):
    parameters, X, Y = request["parameters"], request["X"], request["Y"]
    forward = _invoke(module.L_model_forward, "L_model_forward", X, parameters)
    if not (isinstance(forward, (tuple, list)) and len(forward) == 2):
        raise CallError(
            f"L_model_forward returned {type(forward).__name__}"
            f"{f' of length {len(forward)}' if isinstance(forward, (tuple, list)) else ''}; it "
            "must return (AL, caches)"
        )
    AL, caches = forward
    seen = to_numpy(AL)  # AL as L_model_forward returned it, before L_model_backward may change it
    grads = _invoke(module.L_model_backward, "L_model_backward", AL, Y, caches)
    return {
        "returned": {"AL": AL if seen is None else seen.copy(), "grads": grads},
        "given": {"parameters": parameters, "X": X, "Y": Y},
    }


def _takes(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _build_nielsen(entry, request):
    """``Network(sizes, ...)``: sizes first, a required ``activation...`` parameter ``"sigmoid"``
    (the book's), the ``init`` keywords; anything else required is a CallError."""
    extra = dict(request.get("init") or {})
    try:
        params = list(inspect.signature(entry).parameters.values())
    except (TypeError, ValueError):
        params = []
    for p in params[1:]:
        if p.default is inspect.Parameter.empty and "activation" in p.name.lower() and p.name not in extra:
            extra[p.name] = "sigmoid"
    _accepted(entry, extra, request.get("fills", ""), skip=1)
    name = getattr(entry, "__name__", "the class")
    return _invoke(entry, name, list(request["sizes"]), **extra)


def _call_nielsen(entry, request):
    net = _build_nielsen(entry, request)
    net.biases = list(request["biases"])
    net.weights = list(request["weights"])
    x, y = request["x"], request["y"]
    method = backprop_method([m for m in BACKPROP_METHODS if callable(getattr(net, m, None))])
    if method is None:
        raise CallError(f"{type(net).__name__} has no backprop(x, y) method (nor {', '.join(BACKPROP_METHODS[1:])})")
    returned = _invoke(getattr(net, method), f"{type(net).__name__}.{method}", x, y)
    return {"returned": returned, "given": {"biases": list(net.biases), "weights": list(net.weights), "x": x, "y": y}}


def _cost_kind(cost) -> dict[str, Any]:
    """Which cost network2.py's ``self.cost`` is, from what its ``fn(a, y)`` computes (its name when
    ``fn`` cannot say)."""
    name = getattr(cost, "__name__", type(cost).__name__)
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, (4, 1))
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    try:
        value = float(np.asarray(cost.fn(a, y)).reshape(()))
    except Exception:
        value = None
    quadratic = 0.5 * float(np.sum((a - y) ** 2))
    cross_entropy = float(np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a)))
    if value is not None and abs(value - quadratic) <= 1e-9 * max(1.0, quadratic):
        kind = "quadratic"
    elif value is not None and abs(value - cross_entropy) <= 1e-9 * max(1.0, cross_entropy):
        kind = "cross-entropy"
    elif "entropy" in name.lower():
        kind = "cross-entropy"
    else:
        kind = "quadratic"
    return {"cost": kind, "cost_name": name}


def _probe(entry, request):
    """Build the class once: what its constructor built (cs231n), its cost (Nielsen)."""
    form = request["form"]
    if form == "cs231n-class":
        model, init = _build_cs231n(entry, request["request"])
        return {"returned": {"params": sorted(map(str, model.params)), "init": sorted(init)}}
    if form == "nielsen":
        net = _build_nielsen(entry, request["request"])
        cost = getattr(net, "cost", None)
        return {"returned": {"cost": None, "cost_name": None} if cost is None else _cost_kind(cost)}
    return {"returned": {}}


FORMS = {
    "fnnjax": _call_fnnjax,
    "cs231n-function": _call_cs231n_function,
    "cs231n-class": _call_cs231n_class,
    "deeplearning-ai": _call_deeplearning_ai,
    "nielsen": _call_nielsen,
    "probe": _probe,
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
    if form.startswith(FUNCTION_PREFIX):  # one course function (per-function credit)
        return call_function(form, entry, request)
    return FORMS[form](entry, request)
