"""Loading a submission and saying what it defines: ``file.py[:NAME]`` or ``module.name:NAME``.

Used in the worker process that runs the submission (:mod:`fnnjax.verify.grader._worker`), and in the grader's
own process by :func:`fnnjax.verify.grader._user_backprop.load_user_function`. Errors are :class:`LoadError` s
whose message is one line saying what is wrong and where (an exception in the submission's import
is summarised with its file and line). Imports only the standard library.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["LoadError", "Target", "describe", "import_target", "location", "one_line", "parse_target"]


class LoadError(Exception):
    """The submission cannot be loaded: no such file or module, its import fails, no such name."""


class Target(NamedTuple):
    """What ``--backprop`` names.

    Attributes:
      spec: the text given, e.g. ``fc_net.py:FullyConnectedNet``.
      source: the file path or module name.
      entry: the name after ``:`` (None: find it from what the file defines).
      is_path: ``source`` is a file path (else a module name).
    """

    spec: str
    source: str
    entry: str | None
    is_path: bool


def parse_target(spec: str, *, require_entry: bool = False) -> Target:
    """Split ``file.py[:NAME]`` or ``module.name:NAME``.

    Args:
      spec: the text given to ``--backprop``.
      require_entry: a ``:NAME`` must be given (a module name always needs one).

    Returns:
      A :class:`Target`.

    Raises:
      LoadError: neither form, or ``NAME`` is not an identifier.

    Example:
      >>> from fnnjax.verify.grader._submission import parse_target
      >>> parse_target("hw/fc_net.py:FullyConnectedNet")
      Target(spec='hw/fc_net.py:FullyConnectedNet', source='hw/fc_net.py', entry='FullyConnectedNet', is_path=True)
      >>> parse_target("network.py").entry is None
      True
    """
    if not isinstance(spec, str) or not spec:
        raise LoadError(f"--backprop expects path/to/file.py[:NAME] or MODULE:NAME, got {spec!r}")
    target, colon, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    is_path = target.endswith(".py") or "/" in target or os.sep in target
    if not colon:
        if require_entry or not target.endswith(".py"):
            raise LoadError(
                f"--backprop expects MODULE:FUNCTION or path/to/file.py:FUNCTION, got {spec!r}; "
                "e.g. examples/student_backprop.py:backprop"
            )
        return Target(spec, target, None, True)
    if not target or not name.isidentifier():
        raise LoadError(
            f"--backprop {spec!r}: {name!r} is not a function name; pass MODULE:FUNCTION or "
            "path/to/file.py:FUNCTION, e.g. examples/student_backprop.py:backprop"
        )
    return Target(spec, target, name, is_path)


def location(err: BaseException, files: tuple[str, ...] = ()) -> str:
    """``file.py line 3``: where an exception was raised, in the last frame of one of ``files`` (the
    submission) if any, else in the last frame ("" without a traceback)."""
    if isinstance(err, SyntaxError):
        return f"{err.filename} line {err.lineno}"
    frames = traceback.extract_tb(err.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename and (not files or f.filename in files)]
    if not (user or frames):
        return ""
    frame = (user or frames)[-1]
    return f"{frame.filename} line {frame.lineno}"


def one_line(err: BaseException, files: tuple[str, ...] = ()) -> str:
    """``SyntaxError: invalid syntax (file.py line 3)``: an exception in one line, with its location.

    Example:
      >>> from fnnjax.verify.grader._submission import one_line
      >>> one_line(ZeroDivisionError("division by zero"))
      'ZeroDivisionError: division by zero'
    """
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} ({location(err)})"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    where = location(err, files)
    where = f" ({where})" if where else ""
    return f"{type(err).__name__}: {text}{where}" if text else f"{type(err).__name__}{where}"


def _import_file(target: str):
    path = Path(target)
    if not path.is_file():
        raise LoadError(
            f"cannot load {target!r}: no such file (looked from {Path.cwd()}); pass "
            "path/to/file.py:FUNCTION with a path relative to the current directory"
        )
    if path.suffix != ".py":
        raise LoadError(
            f"cannot load {target!r}: not a .py file; pass path/to/file.py:FUNCTION or module.name:FUNCTION"
        )
    name = "_fnnjax_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # never for a .py file; said in one line all the same
        raise LoadError(
            f"cannot load {target!r}: Python finds no way to import it as a module; pass "
            "path/to/file.py:FUNCTION or module.name:FUNCTION"
        )
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # the user's file ran and failed: say what and where
        sys.modules.pop(name, None)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise LoadError(
            f"importing {target} failed: {one_line(err, (str(path.resolve()), str(path)))}; fix the file and rerun"
        ) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(target: str):
    if not all(part.isidentifier() for part in target.split(".")):
        raise LoadError(
            f"{target!r} is neither a module name (like mypackage.grads) nor a .py file path; "
            "pass module.name:FUNCTION or path/to/file.py:FUNCTION"
        )
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name and (target == err.name or target.startswith(err.name + ".")):
            raise LoadError(
                f"cannot import module {target!r}: no module named {err.name!r} on the Python "
                "path (the current directory included); run from the folder that holds it "
                f"or pass a file path, e.g. path/to/{target.split('.')[-1]}.py:FUNCTION"
            ) from None
        raise LoadError(
            f"importing module {target!r} failed: {one_line(err)}; install or fix the missing import and rerun"
        ) from None
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        raise LoadError(f"importing module {target!r} failed: {one_line(err)}; fix it and rerun") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def import_target(target: Target):
    """Import the file or module a :class:`Target` names (a file with its folder on ``sys.path``).

    Returns:
      The module.

    Raises:
      LoadError: no such file or module, not a .py file, or its import raised (summarised in one
        line with the file and line; ``sys.exit`` at import time included).
    """
    return _import_file(target.source) if target.is_path else _import_module(target.source)


def _signature(obj) -> list[list[Any]] | None:
    """``[[name, kind, has_default], ...]`` of a callable's parameters, or None when it has none."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, p.default is not inspect.Parameter.empty] for p in sig.parameters.values()]


def _describe_class(cls) -> dict[str, Any]:
    methods = sorted(n for n, v in inspect.getmembers(cls) if callable(v) and not n.startswith("_"))
    return {"init": _signature(cls), "methods": methods}


def describe(obj) -> dict[str, Any]:
    """What a module, function or class offers, for the grader to pick a convention (JSON-able).

    Returns:
      ``{"functions": {name: signature}, "classes": {name: {"init": signature, "methods": [...]}},
      "defined": [names defined in the module itself]}``; a signature is a list of
      ``[name, kind, has_default]`` (None when the callable has none).

    Example:
      >>> from fnnjax.verify.grader._submission import describe
      >>> [p[0] for p in describe(lambda params, X, y, reg: None)["functions"]["<lambda>"]]
      ['params', 'X', 'y', 'reg']
    """
    functions, classes, defined = {}, {}, []
    if inspect.ismodule(obj):
        for name, value in vars(obj).items():
            if name.startswith("_"):
                continue
            if inspect.isclass(value):
                classes[name] = _describe_class(value)
            elif callable(value) and not inspect.ismodule(value):
                functions[name] = _signature(value)
            else:
                continue
            if getattr(value, "__module__", None) == obj.__name__:
                defined.append(name)
    elif inspect.isclass(obj):
        classes[obj.__name__] = _describe_class(obj)
        defined.append(obj.__name__)
    elif callable(obj):
        name = getattr(obj, "__name__", type(obj).__name__)
        functions[name] = _signature(obj)
        defined.append(name)
    return {"functions": functions, "classes": classes, "defined": sorted(defined)}
