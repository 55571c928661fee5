"""Which convention a submission is written in, and what to call, from what it defines.

The rules, applied to the module's public functions and classes (or to the one object given):

- ``deeplearning-ai``: it defines both ``L_model_forward`` and ``L_model_backward``;
- ``nielsen``: a class with a ``backprop`` method (network.py's ``Network``; ``back_propagation`` and
  the other names of :data:`~fnnjax.verify.grader._calls.BACKPROP_METHODS` too);
- ``cs231n``: a class with a ``loss`` method (``FullyConnectedNet``, ``TwoLayerNet``; assignment 1's
  ``TwoLayerNet(input_size, hidden_size, output_size)`` with ``loss(X, y, reg)`` is told apart by
  its constructor), or a function
  that takes four positional arguments, one of them named ``reg`` (``fn(params, X, y, reg)``);
- ``fnnjax``: a function that can be called as ``fn(mlp, params, x, y, loss=..., l2=...)``.

A name after ``:`` (``fc_net.py:TwoLayerNet``) picks among them, ``--convention`` restricts them;
when several remain, cs231n's ``FullyConnectedNet`` is preferred to its ``TwoLayerNet``, anything
else is ambiguous and the error lists the candidates.
"""

from __future__ import annotations

import inspect
from typing import Any

from ._calls import backprop_method
from ._conventions import CONVENTIONS, Entry
from ._submission import LoadError

__all__ = ["DetectError", "choose_entry", "format_signature"]

_PREFERRED = ("FullyConnectedNet", "TwoLayerNet")


class DetectError(LoadError):
    """No convention fits what the submission defines, or more than one does."""


def _signature(spec: list | None) -> inspect.Signature | None:
    if spec is None:
        return None
    params = [
        inspect.Parameter(name, getattr(inspect.Parameter, kind), default=0 if has_default else inspect.Parameter.empty)
        for name, kind, has_default in spec
    ]
    try:
        return inspect.Signature(params)
    except (TypeError, ValueError):
        return None


def _binds(spec: list | None, *args, **kwargs) -> bool:
    sig = _signature(spec)
    if sig is None:
        return False
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def format_signature(spec: list | None) -> str:
    """``(mlp, params, x, loss=...)`` from a described signature (``(...)`` when unknown)."""
    if spec is None:
        return "(...)"
    parts = []
    for name, kind, has_default in spec:
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        parts.append(f"{prefix}{name}{'=...' if has_default else ''}")
    return f"({', '.join(parts)})"


def _fits(kind: str, name: str, info: Any, functions: dict) -> list[Entry]:
    """Every convention one function or class fits."""
    out = []
    if kind == "class":
        init = tuple(p[0] for p in info.get("init") or [])
        method = backprop_method(info["methods"])
        if method is not None:
            out.append(Entry("nielsen", "class", name, init, f"it defines class {name} with {method}(x, y)"))
        if "loss" in info["methods"] and any(p in init for p in ("input_size", "hidden_size", "output_size")):
            why = (
                f"it defines class {name}({', '.join(init)}) with loss(X, y, reg): cs231n assignment 1's neural_net.py"
            )
            out.append(Entry("cs231n", "class", name, init, why))
        elif "loss" in info["methods"]:
            out.append(Entry("cs231n", "class", name, init, f"it defines class {name} with loss(X, y)"))
        return out
    if name in ("L_model_forward", "L_model_backward") and {"L_model_forward", "L_model_backward"} <= set(functions):
        out.append(
            Entry(
                "deeplearning-ai", "module", "L_model_backward", (), "it defines L_model_forward and L_model_backward"
            )
        )
    if _binds(info, "mlp", "params", "x", "y", loss="cross_entropy", l2=0.0):
        out.append(Entry("fnnjax", "function", name, (), f"{name} takes (mlp, params, x, y, loss=..., l2=...)"))
    elif _binds(info, "params", "X", "y", "reg") and any(p[0] == "reg" for p in info):
        out.append(Entry("cs231n", "function", name, (), f"it defines {name}{format_signature(info)}"))
    return out


def _contracts() -> str:
    return "; ".join(f"{c.name}: {c.contract}" for c in CONVENTIONS.values())


def choose_entry(description: dict, *, source: str, entry: str | None = None, convention: str | None = None) -> Entry:
    """The :class:`Entry` to check.

    Args:
      description: what :func:`fnnjax.verify.grader._submission.describe` says the submission defines.
      source: the submission, for messages (``fc_net.py``).
      entry: the name given after ``:``, or None.
      convention: the name given with ``--convention``, or None (detect it).

    Returns:
      The :class:`Entry`; its ``why`` says how it was chosen.

    Raises:
      DetectError: one line: the name is missing, it fits no convention (or not the one asked
        for), or several entries fit and none is preferred.

    Example:
      >>> from fnnjax.verify.grader._detect import choose_entry
      >>> d = {"functions": {"sigmoid": [["z", "POSITIONAL_OR_KEYWORD", False]]},
      ...      "classes": {"Network": {"init": [["sizes", "POSITIONAL_OR_KEYWORD", False]],
      ...                              "methods": ["SGD", "backprop", "feedforward"]}}}
      >>> choose_entry(d, source="network.py").convention
      'nielsen'
    """
    functions, classes = description.get("functions", {}), description.get("classes", {})
    if entry is not None and entry not in functions and entry not in classes:
        defined = sorted(set(functions) | set(classes))
        listing = f"it defines {', '.join(defined[:8])}" if defined else "it defines no functions or classes"
        raise DetectError(f"{source} has no function {entry!r} ({listing}); pass one as {source}:NAME")
    found: list[Entry] = []
    for kind, table in (("class", classes), ("function", functions)):
        for name, info in table.items():
            if entry is not None and name != entry:
                continue
            found += [e for e in _fits(kind, name, info, functions) if e not in found]
    if convention is not None:
        found = [e for e in found if e.convention == convention]
    if not found:
        raise DetectError(_nothing_fits(functions, classes, source, entry, convention))
    if len(found) > 1:
        preferred = [e for name in _PREFERRED for e in found if e.name == name and e.convention == "cs231n"]
        if preferred and all(e.convention == "cs231n" and e.kind == "class" for e in found):
            found = preferred[:1]
        else:
            listing = ", ".join(f"{e.name} ({e.convention})" for e in found)
            raise DetectError(
                f"{source} defines several things to check: {listing}; name one as {source}:NAME"
                + ("" if convention else " and/or pass --convention NAME")
            )
    chosen = found[0]
    how = "named on the command line" if entry else "detected"
    return chosen._replace(why=f"{chosen.why} ({how}{', --convention ' + convention if convention else ''})")


def _nothing_fits(functions: dict, classes: dict, source: str, entry: str | None, convention: str | None) -> str:
    contract = CONVENTIONS[convention].contract if convention else _contracts()
    if entry is not None:
        if entry in classes:
            what = f"class {entry} (methods: {', '.join(classes[entry]['methods']) or 'none'})"
        else:
            what = f"{entry}{format_signature(functions[entry])}"
        if convention:
            return f"{source}:{entry} is {what}, which does not fit --convention {convention}: {contract}"
        return f"{source}:{entry} is {what}, which fits no convention; expected one of: {contract}"
    defined = sorted(set(functions) | set(classes))
    listing = ", ".join(defined[:10]) or "nothing public"
    if convention:
        return f"nothing in {source} fits --convention {convention} (it defines {listing}); expected {contract}"
    return f"nothing in {source} fits a convention (it defines {listing}); expected one of: {contract}"
