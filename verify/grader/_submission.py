"""Loading a submission and saying what it defines: ``file.py[:NAME]`` or ``module.name:NAME``.

Used in the worker process that runs the submission (:mod:`fnnjax.verify.grader._worker`), and in the grader's
own process by :func:`fnnjax.verify.grader._user_backprop.load_user_function`. Errors are :class:`LoadError` s
whose message is one line saying what is wrong and where (an exception in the submission's import
is summarised with its file and line). Imports only the standard library.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
import sysconfig
import traceback
import types
from pathlib import Path
from typing import Any, NamedTuple

from ._course_helpers import is_course_helper, stand_in
from ._environment import (
    AbsentFinder,
    import_is_used,
    import_statement_at,
    missing_message,
    python2_construct,
    python2_message,
)
from ._notebook import NotebookError, filter_cells, is_exported_notebook, is_script_statement

__all__ = [
    "printable",
    "LoadError",
    "Target",
    "describe",
    "import_target",
    "load_notes",
    "location",
    "one_line",
    "parse_target",
    "submission_root",
]


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
    is_path = target.endswith((".py", ".ipynb")) or "/" in target or os.sep in target
    if not colon:
        dotted = "." in target and all(part.isidentifier() for part in target.split("."))
        if dotted and not require_entry and not target.endswith((".py", ".ipynb")):
            return Target(spec, target, None, False)  # module.name: what to check is detected
        if require_entry or not target.endswith((".py", ".ipynb")):
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


_GRADER = str(Path(__file__).resolve().parent)
_LIBRARIES = tuple(
    {str(Path(p).resolve()) for p in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("purelib")) if p}
)
_NOTES: dict[str, list[str]] = {}
_PY2_NAMES = {"xrange", "raw_input", "unicode", "basestring", "long", "unichr", "execfile", "cPickle", "reduce"}


def _shown(filename: str) -> str | None:
    """How a traceback's file is named in a message: None for the grader's own files and importlib's;
    a library's file by its path inside the library (``numpy/linalg/_linalg.py``)."""
    if filename.startswith("<frozen") or "importlib" in filename:
        return None
    try:
        resolved = str(Path(filename).resolve())
    except (OSError, ValueError):
        return filename
    if resolved == _GRADER or resolved.startswith(_GRADER + os.sep):
        return None
    for marker in ("site-packages", "dist-packages"):
        if f"{os.sep}{marker}{os.sep}" in resolved:
            return resolved.split(f"{os.sep}{marker}{os.sep}", 1)[1]
    for library in _LIBRARIES:
        if resolved.startswith(library + os.sep):
            return resolved[len(library) + 1 :]
    return filename


def _user_frame(filename: str, files: tuple[str, ...]) -> bool:
    return filename in files or any(filename.startswith(f"{f} code cell ") for f in files)


def location(err: BaseException, files: tuple[str, ...] = ()) -> str:
    """``file.py line 3``: where an exception was raised, in the last frame of one of ``files`` (the
    submission) if any, else in the last frame that is not the grader's own ("" without one)."""
    if isinstance(err, SyntaxError):
        return f"{err.filename} line {err.lineno}"
    frames = [f for f in traceback.extract_tb(err.__traceback__) if _shown(f.filename) is not None]
    user = [f for f in frames if files and _user_frame(f.filename, files)]
    if not (user or frames):
        return ""
    frame = (user or frames)[-1]
    return f"{_shown(frame.filename)} line {frame.lineno}"


def printable(text: str) -> str:
    r"""``text`` with control and format characters (terminal escapes, BEL, line separators) shown as
    ``?``: a submission's message cannot drive the grader's terminal or split a report's line.

    Example:
      >>> from fnnjax.verify.grader._submission import printable
      >>> printable("bad\x1b[31m red\x07")
      'bad?[31m red?'
    """
    return "".join(ch if ch.isprintable() or ch == " " else "?" for ch in text)


def one_line(err: BaseException, files: tuple[str, ...] = ()) -> str:
    """``SyntaxError: invalid syntax (file.py line 3)``: an exception in one line, with its location.

    Python 2 names (``xrange``) and Python 2 syntax are said to be Python 2.

    Example:
      >>> from fnnjax.verify.grader._submission import one_line
      >>> one_line(ZeroDivisionError("division by zero"))
      'ZeroDivisionError: division by zero'
    """
    if isinstance(err, SyntaxError):
        construct = python2_construct(err)
        if construct is not None:
            return python2_message(construct, location(err))
        return f"SyntaxError: {err.msg} ({location(err)})"
    text = printable(str(err).strip().splitlines()[0]) if str(err).strip() else ""
    if isinstance(err, ImportError) and err.path:  # "cannot import name 'x' from 'numpy' (/.../site-packages/...)"
        text = text.replace(err.path, _shown(err.path) or Path(err.path).name)
    if isinstance(err, NameError) and getattr(err, "name", None) in _PY2_NAMES:
        text += f" ({err.name} is Python 2; the grader runs Python 3: port the code, e.g. with 2to3)"
    where = location(err, files)
    where = f" ({where})" if where else ""
    return f"{type(err).__name__}: {text}{where}" if text else f"{type(err).__name__}{where}"


def load_notes(module) -> list[str]:
    """What loading ``module`` noted: notebook statements skipped, unused imports of missing modules left out."""
    return list(_NOTES.get(getattr(module, "__name__", ""), []))


def _package(path: Path) -> tuple[Path, str] | None:
    """``(root, dotted name)`` for a file inside a course package (``cs231n/classifiers/fc_net.py``), else None.

    The package reaches up while the folders hold ``__init__.py``, and as far as the file's own imports
    say: ``from ..layers import *`` (two levels), ``from cs231n.layers import *`` (the folder ``cs231n``
    above it), so a package handed in without its ``__init__.py`` files imports too.
    """
    path = path.resolve()
    parents = path.parents
    depth = 0
    while depth < len(parents) - 1 and (parents[depth] / "__init__.py").is_file():
        depth += 1
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError, OSError):
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and node.level:
            depth = max(depth, node.level)
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module.split(".")[0]]
        for name in names:
            for k in range(1, min(6, len(parents) - 1)):
                if parents[k - 1].name == name:
                    depth = max(depth, k)
                    break
    depth = min(depth, len(parents) - 1)
    folders = [parents[k].name for k in range(depth)][::-1]
    if not depth or not all(p.isidentifier() for p in (*folders, path.stem)):
        return None
    return parents[depth], ".".join((*folders, path.stem))


def submission_root(path: str | os.PathLike) -> Path:
    """The folder a submission file needs beside it: its course package's root, else its own folder.

    ``cs231n/classifiers/fc_net.py`` (``from cs231n.layers import *`` or ``from ..layers import *``)
    needs the folder that holds ``cs231n/``; anything else needs its own folder (its helpers,
    ``dnn_utils.py`` beside a notebook). Copy this folder, and the file at the same place inside it.

    Example:
      >>> from fnnjax.verify.grader._submission import submission_root
      >>> submission_root("examples/courses/nielsen/network.py").name
      'nielsen'
    """
    path = Path(path)
    package = _package(path) if path.suffix == ".py" else None
    return package[0] if package is not None else path.resolve().parent


def _forget(top: str, root: Path) -> None:
    """Drop an earlier submission's package of the same name from ``sys.modules`` (the grader's own process)."""
    if top in sys.stdlib_module_names or top in ("fnnjax", "numpy", "jax", "jaxlib", "scipy"):
        return
    stale = []
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        module = sys.modules[name]
        try:  # (a namespace package's path is computed from its parent's: all before any is dropped)
            where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
        except Exception:
            where = None
        if where is None or not str(Path(where).resolve()).startswith(str(root) + os.sep):
            stale.append(name)
    for name in stale:
        del sys.modules[name]


def _importer(err: ModuleNotFoundError, bodies: dict[str, list]) -> tuple[str, list | None, Any, str]:
    """Where the failed import is (``file line N``), the module body it is in, the import statement, the file."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if _shown(f.filename) is not None]
    if not frames:
        return "", None, None, ""
    frame = frames[-1]
    where = f"{_shown(frame.filename)} line {frame.lineno}"
    if frame.filename in bodies:
        body = bodies[frame.filename]
    else:
        try:
            body = ast.parse(Path(frame.filename).read_text(encoding="utf-8", errors="replace")).body
        except (SyntaxError, ValueError, OSError):
            return where, None, None, frame.filename
    node = import_statement_at(ast.Module(body=list(body), type_ignores=[]), frame.lineno or 0)
    return where, body, node, frame.filename


def _missing(
    err: ModuleNotFoundError,
    what: str,
    own: str | None,
    bodies: dict[str, list],
    graded: tuple[str, ...],
    lenient: bool = False,
) -> tuple[str, str, bool]:
    """``(module, where, used)`` for a missing module that may stand in as absent; LoadError when it may not.

    Imported by the graded file: used by a function or class it defines is fatal. Imported by a
    notebook (``lenient``: its cells define experiments beside the graded functions) or by another file
    (a course helper, a sibling module such as ``fast_layers.py``): it stands in as absent, and only a
    call into it fails (with the same message).
    """
    top = (err.name or "").split(".")[0]
    where, body, node, filename = _importer(err, bodies)
    if not top:
        raise LoadError(f"importing {what} failed: {one_line(err)}; fix the file and rerun") from None
    if own is not None and top == own:
        missing = (err.name or top).replace(".", "/")
        raise LoadError(
            f"cannot grade {what}: it imports {err.name}{f' ({where})' if where else ''}, but the hand-in has no "
            f"{missing}.py: hand in the whole {own} folder, or put the course's file there in the autograder's setup"
        ) from None
    if graded and filename and not _user_frame(filename, graded) and not filename.startswith("<"):
        return top, where, False
    if body is None or node is None:
        raise LoadError(f"cannot grade {what}: {missing_message(top, where)}") from None
    used = import_is_used(body, node)
    if used and not lenient:
        raise LoadError(f"cannot grade {what}: {missing_message(top, where)}") from None
    return top, where, used


def _check_graded_imports(path: Path, what: str, absent: set[str]) -> None:
    """LoadError when the graded file's own code uses a module that stood in as absent (imported first elsewhere)."""
    try:
        body = ast.parse(path.read_text(encoding="utf-8", errors="replace")).body
    except (SyntaxError, ValueError, OSError):
        return
    for node in body:
        if isinstance(node, ast.Import):
            tops = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            tops = {node.module.split(".")[0]}
        else:
            continue
        for top in sorted(tops & absent):
            if import_is_used(body, node):
                raise LoadError(f"cannot grade {what}: {missing_message(top, f'{path} line {node.lineno}')}")


def _run_with_absent(
    run,
    what: str,
    own: str | None,
    bodies: dict[str, list],
    notes: list[str],
    graded: tuple[str, ...] = (),
    graded_file: Path | None = None,
    lenient: bool = False,
):
    """``run()`` again, each time a module it imports is missing but unused, with that module standing in,
    and each time it imports a course helper the hand-in lacks, with the helper's stand-in
    (:mod:`fnnjax.verify.grader._course_helpers`)."""
    absent: set[str] = set()
    helpers: set[str] = set()
    finder = AbsentFinder(absent)
    sys.meta_path.insert(0, finder)
    try:
        while True:
            try:
                result = run()
                if graded_file is not None and absent:
                    _check_graded_imports(graded_file, what, absent)
                return result
            except ModuleNotFoundError as err:
                helper = (err.name or "").split(".")[0]
                if is_course_helper(helper) and helper not in helpers:
                    helpers.add(helper)
                    sys.modules[helper] = stand_in(helper)
                    notes.append(
                        f"the submission imports {helper}, which the hand-in does not include: the course's "
                        "sigmoid, relu, sigmoid_backward and relu_backward were supplied in its place"
                    )
                    continue
                top, where, used = _missing(err, what, own, bodies, graded, lenient)
                if top in absent or len(absent) > 20:
                    raise LoadError(f"cannot grade {what}: {missing_message(top, where)}") from None
                absent.add(top)
                notes.append(
                    f"the submission imports {top} ({where}), which is not installed where the grader runs; "
                    + (
                        "the notebook's code that uses it fails if the grading calls it"
                        if used
                        else "the graded code does not use it, so it was left out"
                    )
                )
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.split(".")[0] in absent | helpers]:
            del sys.modules[name]  # the names bound keep their stand-ins; nothing else sees them


def _failed(target: str, err: BaseException, files: tuple[str, ...], base: str = "") -> LoadError:
    if isinstance(err, SyntaxError) and python2_construct(err) is not None:
        return LoadError(f"importing {target} failed: {one_line(err, files)}")
    where = getattr(err, "path", None) or ""
    if type(err) is ImportError and err.name and base and where and not where.startswith(base + os.sep):
        return LoadError(  # a name missing from an installed module: the course's version, not the student
            f"cannot grade {target}: {one_line(err, files)}: the {err.name} installed where the grader runs is not "
            f"the version the submission was written for; add the course's own {err.name} to the autograder's setup"
        )
    return LoadError(f"importing {target} failed: {one_line(err, files)}; fix the file and rerun")


def _exec_file(path: Path, name: str, target: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # never for a .py file; said in one line all the same
        raise LoadError(
            f"cannot load {target!r}: Python finds no way to import it as a module; pass "
            "path/to/file.py:FUNCTION or module.name:FUNCTION"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _exec_notebook(path: Path, name: str, target: str, notes: list[str], failed: str = "") -> types.ModuleType:
    """The notebook's (or its export's) definitions as module ``name``, statement by statement; also a
    script whose top-level code ``failed`` (one line: what it raised) after its definitions."""
    try:
        found = filter_cells(path)
    except NotebookError as err:
        raise LoadError(f"cannot grade {target}: {err}") from None
    except (OSError, UnicodeError) as err:
        raise LoadError(f"cannot read {target}: {type(err).__name__}: {err}") from None
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    if failed:  # the script's `import network` of its own file would run the script again
        own = [(label, node) for label, node in found.kept if _imports_module(node, path.stem)]
        found.skipped.extend(f"line {node.lineno}: imports the file itself ({path.stem})" for _, node in own)
        found.kept[:] = [pair for pair in found.kept if pair not in own]
    bodies = {label: found.body for label, _ in found.kept}
    files = (str(path), str(path.resolve()))
    for label, node in found.kept:
        code = compile(ast.Module(body=[node], type_ignores=[]), label, "exec", dont_inherit=True)

        def run(code=code):
            exec(code, module.__dict__)

        try:
            _run_with_absent(run, target, None, bodies, notes, (*files, *bodies), lenient=True)
        except LoadError:
            sys.modules.pop(name, None)
            raise
        except BaseException as err:
            sys.modules.pop(name, None)
            if isinstance(err, KeyboardInterrupt):
                raise
            raise LoadError(
                f"running the definitions of {target} failed: {one_line(err, files)}; fix the notebook and rerun"
            ) from None
    if failed:
        notes.insert(
            0,
            f"the file runs a script at import that failed ({failed}); its {len(found.kept)} imports, definitions "
            f"and literal settings were kept and {len(found.skipped)} statements of the script skipped",
        )
    elif found.skipped:
        kind = "notebook" if path.suffix == ".ipynb" else "exported notebook"
        notes.insert(
            0,
            f"from the {kind}, {len(found.kept)} imports, definitions and literal settings were kept and "
            f"{len(found.skipped)} statements skipped (experiments, test calls, data loading, IPython lines)",
        )
    notes += [f"skipped {line}" for line in found.skipped]
    return module


def _imports_module(node: ast.stmt, name: str) -> bool:
    """Whether ``node`` is ``import name`` or ``from name import ...`` (absolute)."""
    if isinstance(node, ast.Import):
        return any(alias.name == name for alias in node.names)
    return isinstance(node, ast.ImportFrom) and not node.level and node.module == name


def _failed_in_script(err: BaseException, path: Path, source: str) -> bool:
    """Whether a plain file's import failed in its top-level script (a call, a loop: ``training_data =
    mnist_loader.load_data_wrapper()`` without the data), not in an import, a definition or a ``raise``
    of its own, in a file that defines something to grade."""
    if isinstance(err, (SyntaxError, LoadError)):
        return False
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if f.name == "<module>" and f.filename in (str(path), str(path.resolve()))
    ]
    if not frames or not frames[-1].lineno:
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    line = frames[-1].lineno
    node = next((n for n in tree.body if n.lineno <= line <= (n.end_lineno or n.lineno)), None)
    deliberate = isinstance(node, (ast.Raise, ast.Assert))  # the file's own stop: its error, said as such
    defines = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)
    return node is not None and defines and not deliberate and is_script_statement(node)


def _import_file(target: str):
    path = Path(target)
    if not path.is_file():
        raise LoadError(
            f"cannot load {target!r}: no such file (looked from {Path.cwd()}); pass "
            "path/to/file.py:FUNCTION with a path relative to the current directory"
        )
    if path.suffix not in (".py", ".ipynb"):
        raise LoadError(
            f"cannot load {target!r}: not a .py file or a notebook; pass path/to/file.py[:NAME], "
            "path/to/notebook.ipynb[:NAME], a folder, a .zip, or module.name:NAME"
        )
    name = "_fnnjax_user_" + re.sub(r"\W", "_", path.stem)
    notes: list[str] = []
    try:
        source = path.read_text(encoding="utf-8", errors="replace") if path.suffix == ".py" else ""
    except OSError as err:
        raise LoadError(f"cannot read {target}: {type(err).__name__}: {err}") from None
    package = _package(path) if path.suffix == ".py" else None
    folder = str(path.resolve().parent)
    added = [str(package[0])] if package else []
    added.append(folder)
    for entry in reversed(added):
        sys.path.insert(0, entry)
    files = (str(path.resolve()), str(path))
    before = set(sys.modules)
    try:
        if path.suffix == ".ipynb" or is_exported_notebook(source):
            module = _exec_notebook(path, name, target, notes)
        elif package is not None:
            root, dotted = package
            top = dotted.split(".")[0]
            _forget(top, root)
            module = _run_with_absent(
                lambda: importlib.import_module(dotted), target, top, {}, notes, files, path.resolve()
            )
        else:
            try:
                module = _run_with_absent(lambda: _exec_file(path, name, target), target, None, {}, notes, files, path)
            except Exception as err:
                if not _failed_in_script(err, path, source):
                    raise
                del notes[:]  # what the failed run noted, the filtered run notes again
                module = _exec_notebook(path, name, target, notes, failed=one_line(err, files))
    except LoadError:
        raise
    except BaseException as err:  # the user's file ran and failed: say what and where
        if isinstance(err, KeyboardInterrupt):
            raise
        raise _failed(target, err, files, str(package[0]) if package else folder) from None
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)
        if package is None:  # its helpers (dnn_utils.py) stay its own: another submission imports its own
            for other in set(sys.modules) - before - {name}:
                where = getattr(sys.modules[other], "__file__", None) or ""
                if where.startswith(folder + os.sep):
                    del sys.modules[other]
    base = str(package[0]) if package else folder  # notes name files inside the submission
    _NOTES[module.__name__] = [note.replace(base + os.sep, "") for note in notes]
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
    notes: list[str] = []
    try:
        if importlib.util.find_spec(target.split(".")[0]) is None:
            raise LoadError(
                f"cannot import module {target!r}: no module named {target.split('.')[0]!r} on the Python "
                "path (the current directory included); run from the folder that holds it "
                f"or pass a file path, e.g. path/to/{target.split('.')[-1]}.py:FUNCTION"
            )
        module = _run_with_absent(
            lambda: importlib.import_module(target), f"module {target!r}", target.split(".")[0], {}, notes
        )
    except LoadError:
        raise
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        raise LoadError(f"importing module {target!r} failed: {one_line(err)}; fix it and rerun") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    _NOTES[module.__name__] = notes
    return module


def import_target(target: Target):
    """Import the file, notebook or module a :class:`Target` names.

    A ``.py`` file inside a course package (``cs231n/classifiers/fc_net.py``, whose imports are
    ``from cs231n.layers import *`` or ``from ..layers import *``) is imported the way the course's
    notebook imports it: the folder above the package on ``sys.path``, the file by its dotted name.
    Any other file is imported with its folder on ``sys.path``. A notebook (``.ipynb``, or the
    ``.py`` nbconvert exports) contributes its imports and definitions only
    (:mod:`fnnjax.verify.grader._notebook`). A module the submission imports that is not installed
    stands in as absent when the graded code does not use it (noted: :func:`load_notes`).

    Returns:
      The module.

    Raises:
      LoadError: no such file or module, not a .py file or notebook, its import raised (summarised
        in one line with the file and line; ``sys.exit`` at import time included), a module it
        uses is not installed (said as the course's environment), or it is Python 2 code.

    Example:
      >>> from fnnjax.verify.grader._submission import import_target, parse_target
      >>> sorted(describe(import_target(parse_target("examples/courses/nielsen/network.py")))["classes"])
      ['Network']
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
    members = {n: v for n, v in inspect.getmembers(cls) if callable(v) and not n.startswith("_")}
    return {
        "init": _signature(cls),
        "methods": sorted(members),
        "signatures": {n: _signature(v) for n, v in sorted(members.items())},
    }


def describe(obj, *, keep: str | None = None) -> dict[str, Any]:
    """What a module, function or class offers, for the grader to pick a convention (JSON-able).

    Args:
      obj: the imported submission (a module, function or class).
      keep: a name asked for explicitly (``module:NAME``): described even when the module imports
        it rather than defines it (``fnnjax:backprop``).

    Returns:
      ``{"functions": {name: signature}, "classes": {name: {"init": signature, "methods": [...],
      "signatures": {method: signature}}},
      "defined": [names]}``: for a module, only what it defines itself (what it imports from NumPy
      or the course's helpers is not the submission's), plus ``"notes"`` (:func:`load_notes`); a
      signature is a list of ``[name, kind, has_default]`` (None when the callable has none).

    Example:
      >>> from fnnjax.verify.grader._submission import describe
      >>> [p[0] for p in describe(lambda params, X, y, reg: None)["functions"]["<lambda>"]]
      ['params', 'X', 'y', 'reg']
    """
    functions, classes, defined = {}, {}, []
    if inspect.ismodule(obj):
        for name, value in vars(obj).items():
            imported = getattr(value, "__module__", None) != obj.__name__
            if name != keep and (name.startswith("_") or imported):
                continue  # imported (numpy, the course's helpers): not the submission's to grade
            if inspect.isclass(value):
                classes[name] = _describe_class(value)
            elif callable(value) and not inspect.ismodule(value):
                functions[name] = _signature(value)
            else:
                continue
            defined.append(name)
        return {"functions": functions, "classes": classes, "defined": sorted(defined), "notes": load_notes(obj)}
    elif inspect.isclass(obj):
        classes[obj.__name__] = _describe_class(obj)
        defined.append(obj.__name__)
    elif callable(obj):
        name = getattr(obj, "__name__", type(obj).__name__)
        functions[name] = _signature(obj)
        defined.append(name)
    return {"functions": functions, "classes": classes, "defined": sorted(defined)}
