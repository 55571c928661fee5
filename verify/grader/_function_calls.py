"""Calling one course function of a submission with its own case (runs next to the submission: NumPy only).

Per-function credit (:mod:`fnnjax.verify.grader._functions`) checks the functions a student writes
one by one, as the course notebooks do: ``affine_backward``, ``linear_backward``,
``Network.feedforward``... The grader sends the form ``function:NAME`` with the submission's module
as the entry and a request:

- ``args``: the positional arguments (fresh copies: the function may keep or change them);
- ``cache`` (optional): the backward function's cache comes from the student's own forward
  function, as in cs231n's notebooks (``_, cache = affine_forward(x, w, b)``): ``{"forward": NAME,
  "args": [...], "at": position in args, "documented": the course's documented cache}``; when the
  forward raises, returns no ``(out, cache)`` pair or a cache of None, the documented cache is used;
- ``network`` (optional): a method of a class (Nielsen's ``Network``): ``{"class": NAME, "sizes":
  [...], "weights": [...], "biases": [...], "init": {...}}``: the network is built as the
  whole-network form builds it (``Network(sizes)``, a required ``activation...`` argument given
  ``"sigmoid"``, the ``init`` keywords), its weights and biases set, then ``net.NAME(*args)`` is
  called;
- ``keep`` (optional): the positions of a returned tuple to send back (``[0]`` drops the cache);
- ``count`` (optional): a position of the returned tuple whose ``len()`` is sent back
  (``L_model_forward``'s list of caches).

An unfinished function is not an error: :func:`call_function` reports it as ``unfinished`` when it
returns None (or None where an output belongs), when its body is only ``pass``, a docstring,
``...`` or ``raise NotImplementedError``, or when it raises and its source still holds the starter
code's placeholder ``a, b = None``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

__all__ = ["PREFIX", "call_function", "unfinished_reason"]

PREFIX = "function:"
"""Forms that name one course function: ``function:affine_backward``."""


def _parsed(fn) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _is_placeholder(stmt: ast.stmt) -> bool:
    """``pass``, a docstring or ``...``, ``raise NotImplementedError``."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def unfinished_reason(fn, *, raised: bool = False) -> str | None:
    """Why ``fn``'s source looks unfinished (the starter code left as it was), or None.

    Args:
      fn: the student's function or method.
      raised: the call raised (then the placeholder ``a, b = None`` counts too: it always raises).

    Returns:
      ``has only pass, a docstring or raise NotImplementedError in its body``, ``still holds the
      starter code's placeholder Z, linear_cache = None``, or None.

    Example:
      >>> def relu_backward(dout, cache):
      ...     pass
      >>> unfinished_reason(relu_backward)
      'has only pass, a docstring or raise NotImplementedError in its body'
    """
    node = _parsed(getattr(fn, "__func__", fn))
    if node is None:
        return None
    if all(_is_placeholder(stmt) for stmt in node.body):
        return "has only pass, a docstring or raise NotImplementedError in its body"
    if not raised:
        return None
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Assign)
            and isinstance(sub.value, ast.Constant)
            and sub.value.value is None
            and any(isinstance(t, (ast.Tuple, ast.List)) for t in sub.targets)
        ):
            return f"still holds the starter code's placeholder {ast.unparse(sub)}"
    return None


def _cache(module, request: dict) -> tuple[Any, str]:
    """The backward function's cache: from the student's forward function, else the documented one."""
    spec = request["cache"]
    documented = spec["documented"]
    forward = getattr(module, spec["forward"], None)
    if forward is None or not callable(forward):
        return documented, f"{spec['forward']} is not defined next to it: the course's documented cache was used"
    try:
        returned = forward(*spec["args"])
    except Exception as err:
        return documented, (
            f"your {spec['forward']} raised {type(err).__name__}: the course's documented cache was used"
        )
    if not (isinstance(returned, (tuple, list)) and len(returned) == 2) or returned[1] is None:
        return documented, (
            f"your {spec['forward']} returned no (out, cache) pair with a cache: the course's documented cache was used"
        )
    return returned[1], f"the cache came from your {spec['forward']}"


def _target(module, name: str, request: dict):
    network = request.get("network")
    if network is None:
        return getattr(module, name)
    cls = getattr(module, network["class"])
    from ._calls import _build_nielsen  # the whole-network form's constructor call (imported late: no cycle)

    net = _build_nielsen(cls, {"sizes": list(network["sizes"]), "init": network.get("init") or {}})
    net.weights = list(network["weights"])
    net.biases = list(network["biases"])
    return getattr(net, name)


def call_function(form: str, module, request: dict[str, Any]) -> dict[str, Any]:
    """Call one course function of the submission with one case.

    Args:
      form: ``function:NAME``.
      module: the submission's module.
      request: see the module docstring.

    Returns:
      ``{"returned": the kept outputs, "unfinished": reason or None, "cache": how the cache was
      made or None, "count": len of the counted output or None}``.

    Raises:
      Exception: whatever the student's function raises (unless it is unfinished).
    """
    name = form[len(PREFIX) :]
    fn = _target(module, name, request)
    args = list(request.get("args", []))
    cache_note = None
    if request.get("cache") is not None:
        cache, cache_note = _cache(module, request)
        args.insert(request["cache"]["at"], cache)
    try:
        returned = fn(*args)
    except Exception:
        reason = unfinished_reason(fn, raised=True)
        if reason is None:
            raise
        return {"returned": None, "unfinished": reason, "cache": cache_note, "count": None}
    count = None
    if request.get("count") is not None and isinstance(returned, (tuple, list)) and len(returned) > request["count"]:
        try:
            count = len(returned[request["count"]])
        except TypeError:
            count = None
    keep = request.get("keep")
    if keep is not None and isinstance(returned, (tuple, list)) and len(returned) > max(keep):
        returned = tuple(returned[k] for k in keep)
    reason = None
    if returned is None:
        reason = unfinished_reason(fn) or "returns None, as the starter code does"
    elif isinstance(returned, (tuple, list)) and any(v is None for v in returned):
        reason = unfinished_reason(fn) or "returns None where a result belongs, as the starter code does"
    return {"returned": returned, "unfinished": reason, "cache": cache_note, "count": count}
