"""What the grader's machine lacks, and Python 2 code: said in the course's terms, not as the student's fault.

Used while a submission is imported (:mod:`fnnjax.verify.grader._submission`, in the worker process):

- a module the submission imports that is not installed (``h5py``, ``past``, a course helper such as
  ``dnn_utils``) is the *course's environment*: :func:`missing_message` says so and how an instructor
  provides it; when the graded code never uses what that import binds (:func:`import_is_used`), the
  import is left out (:class:`AbsentFinder` stands in for the module) and only noted;
- NumPy names the courses' code used and later NumPy removed (``np.float``, ``np.reshape(a,
  newshape=...)``...) are given back in the submission's process (:func:`legacy_numpy`);
- Python 2 code (a ``print`` statement, ``except E, e``, backticks...) gets one line naming the
  construct and its line (:func:`python2_construct`).

Imports only the standard library (and NumPy inside :func:`legacy_numpy`).
"""

from __future__ import annotations

import ast
import builtins
import importlib.abc
import importlib.util
import re
import types
from pathlib import Path
from typing import Any

__all__ = [
    "AbsentFinder",
    "legacy_numpy",
    "bound_names",
    "import_is_used",
    "import_statement_at",
    "missing_message",
    "python2_construct",
    "python2_message",
]

PIP_NAMES = {
    "past": "future",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "skimage": "scikit-image",
}
"""Modules whose pip package has another name."""

PACKAGES = {
    *PIP_NAMES,
    "future",
    "h5py",
    "matplotlib",
    "scipy",
    "torch",
    "torchvision",
    "torch_geometric",
    "tensorflow",
    "pandas",
    "networkx",
    "imageio",
    "tqdm",
    "seaborn",
    "six",
    "numba",
    "IPython",
    "google",
}
"""Third-party packages the courses' files import (said as ``pip install``; anything else may be a course file)."""


def missing_message(name: str, where: str = "") -> str:
    """The one line for a module the submission imports that is not installed where the grader runs.

    Args:
      name: the module (its top-level name).
      where: ``file line N`` of the import, or "".

    Example:
      >>> from fnnjax.verify.grader._environment import missing_message
      >>> print(missing_message("h5py"))  # doctest: +NORMALIZE_WHITESPACE
      the submission imports h5py, which is not installed where the grader runs: add it to the
      autograder's setup (pip install h5py)
    """
    at = f" ({where})" if where else ""
    if name in PACKAGES:
        how = f"pip install {PIP_NAMES.get(name, name)}"
    else:
        how = f"put the course's {name}.py beside the submission, or pip install it"
    return (
        f"the submission imports {name}{at}, which is not installed where the grader runs: "
        f"add it to the autograder's setup ({how})"
    )


class _Absent:
    """A name imported from a module that is not installed: using it raises the environment message."""

    _module: str
    _name: str

    def __init__(self, module: str, name: str):
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Absent(self._module, f"{self._name}.{attr}")

    def _fail(self, *args, **kwargs):
        raise ModuleNotFoundError(
            f"{self._name} is used, but {missing_message(self._module)}", name=self._module
        ) from None

    __call__ = __getitem__ = __setitem__ = __iter__ = __len__ = __bool__ = __setattr__ = _fail

    def __mro_entries__(self, bases):  # class Net(torch.nn.Module): a plain class, so the file still loads
        return (object,)

    def __repr__(self) -> str:
        return f"<{self._name}: {self._module} is not installed>"


class _AbsentModule(types.ModuleType):
    """A module that is not installed, standing in so an unused import does not stop the submission."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Absent(self.__name__.split(".")[0], f"{self.__name__}.{attr}")


class _AbsentLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _AbsentModule(spec.name)
        module.__path__ = []  # a package: its submodules (matplotlib.pyplot) are absent too
        return module

    def exec_module(self, module) -> None:
        return None


class AbsentFinder(importlib.abc.MetaPathFinder):
    """Put first on ``sys.meta_path``: the modules named in ``names`` (and their submodules) import as stand-ins.

    Args:
      names: top-level module names (a set the caller may grow).

    Example:
      >>> import sys
      >>> from fnnjax.verify.grader._environment import AbsentFinder
      >>> finder = AbsentFinder({"no_such_package_xyz"})
      >>> sys.meta_path.insert(0, finder)
      >>> import no_such_package_xyz.sub as sub
      >>> sys.meta_path.remove(finder)
      >>> sub.anything
      <no_such_package_xyz.sub.anything: no_such_package_xyz is not installed>
    """

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.util.spec_from_loader(fullname, _AbsentLoader(), is_package=True)
        return None


def import_statement_at(tree: ast.Module, lineno: int) -> ast.Import | ast.ImportFrom | None:
    """The import statement run at module level (in an ``if``/``try`` too) that spans ``lineno``, or None."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if not (node.lineno <= lineno <= (node.end_lineno or node.lineno)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody"):
                stack += getattr(node, field, [])
            stack += [s for h in getattr(node, "handlers", []) for s in h.body]
    return None


def bound_names(node: ast.Import | ast.ImportFrom) -> set[str] | None:
    """The names an import binds (None for ``from M import *``: unknown)."""
    names = set()
    for alias in node.names:
        if alias.name == "*":
            return None
        if isinstance(node, ast.Import):
            names.add(alias.asname or alias.name.split(".")[0])
        else:
            names.add(alias.asname or alias.name)
    return names


def _scopes(body: list[ast.stmt]) -> list[ast.AST]:
    """The functions and classes defined at module level (in ``if``/``try`` too)."""
    out: list[ast.AST] = []
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody"):
                stack += getattr(node, field, [])
            stack += [s for h in getattr(node, "handlers", []) for s in h.body]
    return out


def _module_bound(body: list[ast.stmt], skip: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in body:
        if node is skip:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= bound_names(node) or set()
        else:
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def import_is_used(body: list[ast.stmt], node: ast.Import | ast.ImportFrom) -> bool:
    """Whether a function or class defined in ``body`` uses a name that the import ``node`` binds.

    For ``from M import *`` (names unknown): whether a function or class uses a name that nothing else
    in ``body`` defines and that is no builtin.

    Example:
      >>> import ast
      >>> from fnnjax.verify.grader._environment import import_is_used
      >>> tree = ast.parse("import h5py\\nimport numpy as np\\ndef f(x):\\n    return np.exp(x)\\n")
      >>> import_is_used(tree.body, tree.body[0]), import_is_used(tree.body, tree.body[1])
      (False, True)
    """
    scopes = _scopes(body)
    names = bound_names(node)
    if names is not None:
        return any(isinstance(n, ast.Name) and n.id in names for scope in scopes for n in ast.walk(scope))
    known = _module_bound(body, node) | set(dir(builtins))
    for scope in scopes:
        local = {n.id for n in ast.walk(scope) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local |= {a.arg for n in ast.walk(scope) if isinstance(n, ast.arguments) for a in _all_args(n)}
        local |= {n.name for n in ast.walk(scope) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        loaded = {n.id for n in ast.walk(scope) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if loaded - local - known:
            return True
    return False


def _all_args(args: ast.arguments) -> list[ast.arg]:
    out = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


_PY2 = (
    (re.compile(r"^\s*print(?:\s*[\"'`]|\s*>>|\s+[\w\[{(\-]|\s*$)"), "a print statement"),
    (re.compile(r"^\s*exec\s+[\"'\w]"), "an exec statement"),
    (re.compile(r"^\s*except\s*(?:\([^)]*\)|[\w.]+)\s*,\s*\w+\s*:"), "except E, e"),
    (re.compile(r"^\s*raise\s+[\w.]+\s*,"), "raise E, message"),
    (re.compile(r"`"), "backticks"),
    (re.compile(r"<>"), "the <> operator"),
    (re.compile(r"(?<![\w.])0[0-7]+(?![\w.])"), "an octal literal like 0777"),
    (re.compile(r"(?<![\w.])\d+[lL](?!\w)"), "a long literal like 10L"),
    (re.compile(r"(?<!\w)[uU][rR][\"']"), "a ur'' string"),
)


def python2_construct(err: SyntaxError) -> str | None:
    """The Python 2 construct a SyntaxError stopped at (``a print statement``), or None.

    Example:
      >>> from fnnjax.verify.grader._environment import python2_construct
      >>> try:
      ...     compile("for i in xrange(3):\\n    print 'epoch', i\\n", "network.py", "exec")
      ... except SyntaxError as err:
      ...     python2_construct(err)
      'a print statement'
    """
    text = err.text
    if not text and err.filename and err.lineno:
        try:
            lines = Path(err.filename).read_text(errors="replace").splitlines()
            text = lines[err.lineno - 1] if 0 < err.lineno <= len(lines) else ""
        except OSError:
            text = ""
    msg = err.msg or ""
    if "parentheses in call to 'print'" in msg:
        return "a print statement"
    if "parentheses in call to 'exec'" in msg:
        return "an exec statement"
    if isinstance(err, TabError):
        return "tabs and spaces mixed in the indentation"
    for pattern, what in _PY2:
        if pattern.search(text or ""):
            return what
    return None


def python2_message(construct: str, where: str) -> str:
    """The one line for Python 2 code.

    Example:
      >>> from fnnjax.verify.grader._environment import python2_message
      >>> print(python2_message("a print statement", "network.py line 12"))  # doctest: +NORMALIZE_WHITESPACE
      this is Python 2 code (a print statement, network.py line 12): the grader runs Python 3;
      port it (e.g. with 2to3) and resubmit
    """
    return (
        f"this is Python 2 code ({construct}, {where}): the grader runs Python 3; port it (e.g. with 2to3) and resubmit"
    )


_REMOVED_NUMPY = {
    "float": float,
    "int": int,
    "object": object,
    "complex": complex,
    "str": str,
    "unicode": str,
    "long": int,
}
"""NumPy's aliases of Python's types, removed in NumPy 1.24 (the courses' code of 2016–2022 uses them)."""

_RENAMED_NUMPY = {
    "product": "prod",
    "cumproduct": "cumprod",
    "sometrue": "any",
    "alltrue": "all",
    "float_": "float64",
    "round_": "round",
    "trapz": "trapezoid",
    "NaN": "nan",
    "Inf": "inf",
    "infty": "inf",
}
"""NumPy names removed in NumPy 2.0, and what they were."""


def legacy_numpy() -> list[str]:
    """Give NumPy back the names the courses' code used and later NumPy removed; the names restored.

    ``np.float``, ``np.int``, ``np.object`` (removed in 1.24), ``np.product``, ``np.asscalar``,
    ``np.float_``... (2.0) and ``np.reshape(a, newshape=...)`` (2.4) mean what they meant when the
    course ran: a student's code written for the course's NumPy is graded on its mathematics, not on
    the grader's NumPy version. Only names this NumPy lacks are set; nothing it has changes. Runs in
    the submission's process only.

    Example:
      >>> import subprocess, sys
      >>> code = ("import numpy as np; from fnnjax.verify.grader._environment import legacy_numpy; "
      ...         "legacy_numpy(); print(np.float is float, np.reshape(np.arange(4), newshape=(2, 2)).shape)")
      >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
      'True (2, 2)'
    """
    import inspect

    import numpy as np

    restored = []
    for name, value in _REMOVED_NUMPY.items():
        if name not in vars(np):
            setattr(np, name, value)
            restored.append(name)
    for name, now in _RENAMED_NUMPY.items():
        if name not in vars(np) and now in vars(np):
            setattr(np, name, vars(np)[now])
            restored.append(name)
    if "asscalar" not in vars(np):
        np.asscalar = lambda a: np.asarray(a).item()  # type: ignore[attr-defined]
        restored.append("asscalar")
    if "newshape" not in inspect.signature(np.reshape).parameters:
        reshape: Any = np.reshape  # called with whatever the submission passes

        def reshape_with_newshape(a, /, shape=None, order="C", *, newshape=None, **kwargs):
            return reshape(a, newshape if shape is None else shape, order=order, **kwargs)

        reshape_with_newshape.__doc__ = reshape.__doc__
        np.reshape = reshape_with_newshape  # type: ignore[assignment]
        restored.append("reshape(newshape=)")
    return restored
