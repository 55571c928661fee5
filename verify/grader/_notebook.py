"""A Jupyter notebook (``.ipynb``), or the ``.py`` nbconvert exports from one, as a module of its definitions.

A notebook runs experiments between its definitions: it loads data sets, trains for thousands of
iterations, calls the course's tests, and uses IPython syntax (``%matplotlib inline``, ``!pip``,
``%run``, ``%cd``, Colab's ``drive.mount``). Only what defines the graded code is kept, statement by
statement (not cell by cell):

- kept: ``import``/``from ... import``, ``def``, ``class``, and assignments of a literal to a name
  (``layers_dims = [12288, 20, 7, 5, 1]``, used as a default argument), in notebook order (the last
  definition of a name wins);
- dropped: everything else (calls, loops, data loading, assignments from calls, ``if __name__``),
  IPython lines (``%...``, ``!...``, ``x = !...``, nbconvert's ``get_ipython()...``), and cells that
  start with a ``%%`` cell magic; each is listed in :attr:`Filtered.skipped` for the report.

A cell that does not parse after that is split at its unindented lines and what parses is kept; a
definition that still does not parse is reported (Python 2 in one line). Imports only the standard library.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Filtered", "NotebookError", "cells", "filter_cells", "is_exported_notebook", "is_script_statement"]

_MAGIC = re.compile(r"^\s*(?:[%!]|[\w.,\s\[\]]+=\s*[%!]|get_ipython\(\)|[\w.]+\?{1,2}\s*$)")
_EXPORT_CELL = re.compile(r"^# In\[[\d ]*\]:\s*$", re.MULTILINE)


class NotebookError(Exception):
    """The notebook cannot be read (not JSON, no cells) or a definition in it does not parse."""


class Filtered(NamedTuple):
    """A notebook's kept statements and what was skipped.

    Attributes:
      kept: ``(label, statement)`` pairs in notebook order; ``label`` names the cell in messages
        (``dnn.ipynb code cell 4``, or the exported file's own name, its lines being the file's).
      skipped: one line per dropped statement (``code cell 4 line 1: parameters = initialize_...``).
    """

    kept: list[tuple[str, ast.stmt]]
    skipped: list[str]

    @property
    def body(self) -> list[ast.stmt]:
        """The kept statements alone (what the graded code is)."""
        return [node for _, node in self.kept]


def is_exported_notebook(source: str) -> bool:
    """Whether a ``.py`` file is nbconvert's export of a notebook (``get_ipython()`` calls, ``# In[ ]:`` marks).

    Example:
      >>> from fnnjax.verify.grader._notebook import is_exported_notebook
      >>> is_exported_notebook("# coding: utf-8\\n# In[1]:\\nget_ipython().run_line_magic('matplotlib', 'inline')\\n")
      True
      >>> is_exported_notebook("import numpy as np\\n")
      False
    """
    return bool(_EXPORT_CELL.search(source)) or bool(re.search(r"^\s*get_ipython\(\)", source, re.MULTILINE))


def cells(path: Path) -> list[tuple[str, int, str]]:
    """The code cells of a notebook or of its nbconvert export: ``(label, first line - 1, source)``.

    Raises:
      NotebookError: an ``.ipynb`` that is not a notebook's JSON.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".ipynb":
        starts = [m.end() for m in _EXPORT_CELL.finditer(text)] or [0]
        bounds = [0, *starts, len(text)] if starts[0] else [0, len(text)]
        out = []
        for a, b in zip(bounds, bounds[1:]):
            out.append((str(path), text.count("\n", 0, a), text[a:b]))
        return out
    try:
        data = json.loads(text)
        raw = data["cells"] if isinstance(data, dict) and "cells" in data else data["worksheets"][0]["cells"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise NotebookError(f"{path.name} is not a Jupyter notebook (no cells in its JSON)") from None
    out, n = [], 0
    for cell in raw:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        n += 1
        source = cell.get("source", cell.get("input", ""))
        source = "".join(source) if isinstance(source, list) else str(source)
        out.append((f"{path} code cell {n}", 0, source))
    return out


def _short(label: str) -> str:
    """``code cell 4`` from ``path/dnn.ipynb code cell 4``; the file name from an exported file's path."""
    return label[label.index(" code cell ") + 1 :] if " code cell " in label else Path(label).name


def _first(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 60 else line[:57] + "..."


def _strip(label: str, offset: int, source: str, skipped: list[str]) -> str:
    """The source with IPython lines made ``pass``; a ``%%`` cell magic empties the cell."""
    lines = source.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("%%"):
        skipped.append(f"{_short(label)} line {offset + 1}: {_first(first)} (a cell magic: the cell is not Python)")
        return ""
    out = []
    for k, line in enumerate(lines, start=offset + 1):
        if _MAGIC.match(line) and not line.lstrip().startswith("#"):
            skipped.append(f"{_short(label)} line {k}: {_first(line)}")
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out)


def _chunks(source: str) -> list[tuple[int, str]]:
    """The source split before each unindented line (a decorator stays with its ``def``)."""
    lines = source.splitlines()
    starts = []
    for k, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#") and not line.startswith((")", "]", "}")):
            previous = next((p for p in reversed(lines[:k]) if p.strip()), "")
            if not previous.startswith("@") and not previous.rstrip().endswith(("\\", ",", "(", "[", "{")):
                starts.append(k)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, len(lines)]
    return [(a, "\n".join(lines[a:b])) for a, b in zip(bounds, bounds[1:]) if "\n".join(lines[a:b]).strip()]


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _kept(node: ast.stmt) -> bool | None:
    """True: keep; False: skip and say so; None: drop silently (``pass``, a bare string)."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        return None
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        return _literal(node.value)
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return _literal(node.value)
    return False


def is_script_statement(node: ast.stmt) -> bool:
    """Whether a top-level statement is an experiment the filter skips (a call, a loop, an assignment
    from a call), rather than an import, a definition or a literal setting.

    Example:
      >>> import ast
      >>> from fnnjax.verify.grader._notebook import is_script_statement
      >>> [is_script_statement(n) for n in ast.parse("import numpy\\nsizes = [2, 3]\\nnet.SGD(data)").body]
      [False, False, True]
    """
    return _kept(node) is False


def _parse(label: str, offset: int, source: str, skipped: list[str]) -> list[ast.stmt]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is not None:
        ast.increment_lineno(tree, offset)
        return tree.body
    body: list[ast.stmt] = []
    for start, chunk in _chunks(source):
        try:
            part = ast.parse(chunk)
        except SyntaxError as err:
            line = offset + start + (err.lineno or 1)
            head = chunk.lstrip()
            if head.startswith(("def ", "class ", "@", "async def ")):
                from ._environment import python2_construct, python2_message

                where = f"{_short(label)} line {line}" if " code cell " in label else f"{Path(label).name} line {line}"
                construct = python2_construct(err)
                if construct is not None:
                    raise NotebookError(python2_message(construct, where)) from None
                raise NotebookError(f"a definition does not parse: SyntaxError: {err.msg} ({where})") from None
            skipped.append(f"{_short(label)} line {offset + start + 1}: {_first(chunk)} (does not parse)")
            continue
        ast.increment_lineno(part, offset + start)
        body += part.body
    return body


def filter_cells(path: Path) -> Filtered:
    """The statements of a notebook (or its nbconvert export) that define its code, and what was skipped.

    Args:
      path: the ``.ipynb`` or exported ``.py``.

    Returns:
      A :class:`Filtered`.

    Raises:
      NotebookError: not a notebook, or a definition that does not parse (one line).

    Example:
      >>> import json, tempfile
      >>> from pathlib import Path
      >>> from fnnjax.verify.grader._notebook import filter_cells
      >>> cell = {"cell_type": "code", "source": ["%matplotlib inline\\n", "import numpy as np\\n",
      ...         "sizes = [2, 3]\\n", "def relu(z):\\n", "    return np.maximum(z, 0)\\n", "relu(np.ones(3))\\n"]}
      >>> path = Path(tempfile.mkdtemp()) / "nb.ipynb"
      >>> _ = path.write_text(json.dumps({"cells": [cell]}))
      >>> found = filter_cells(path)
      >>> [type(node).__name__ for node in found.body]
      ['Import', 'Assign', 'FunctionDef']
      >>> found.skipped
      ['code cell 1 line 1: %matplotlib inline', 'code cell 1 line 6: relu(np.ones(3))']
    """
    kept: list[tuple[str, ast.stmt]] = []
    skipped: list[str] = []
    for label, offset, source in cells(path):
        here: list[str] = []
        stripped = _strip(label, offset, source, here)
        for node in _parse(label, offset, stripped, here):
            keep = _kept(node)
            if keep:
                kept.append((label, node))
            elif keep is False:
                text = ast.get_source_segment(stripped, _shifted(node, offset)) or type(node).__name__
                here.append(f"{_short(label)} line {node.lineno}: {_first(text)}")
        skipped += sorted(here, key=lambda line: int(re.search(r" line (\d+)", line).group(1)))  # type: ignore[union-attr]
    return Filtered(kept, skipped)


def _shifted(node: ast.stmt, offset: int) -> ast.stmt:
    """A copy of ``node``'s position, ``offset`` lines up (to find its text in the cell's source)."""
    copy = ast.Pass()
    copy.lineno, copy.col_offset = node.lineno - offset, node.col_offset
    copy.end_lineno = (node.end_lineno or node.lineno) - offset
    copy.end_col_offset = node.end_col_offset
    return copy
