"""A submission as a student hands it in: a folder or a ``.zip``, holding one or more files to grade.

:func:`open_handin` unpacks a ``.zip`` into a private folder (refusing absolute paths, ``..``,
links, and content over :data:`MAX_BYTES` bytes, :data:`MAX_FILES` files or :data:`MAX_DEPTH`
folders deep), ignores what is no one's work (``__MACOSX/``, ``.ipynb_checkpoints/``,
``__pycache__/``, dotfiles), and finds the course's gradable files (:func:`find_parts`):

- cs231n: ``fc_net.py`` and ``neural_net.py`` (a class ``FullyConnectedNet`` or ``TwoLayerNet``);
- deeplearning.ai: a notebook, or ``.py``, that defines ``L_model_backward`` (not the course's own
  helpers such as ``dnn_app_utils_v3.py``);
- Nielsen: a ``.py`` with a class whose method is ``backprop(self, ...)`` (``network.py``, ``network2.py``).

Each is a :class:`Part`, graded on its own (:func:`check_handin`), named by its path in the hand-in.
Only what a file defines itself is graded: what it imports from the course's helpers is the course's.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_FILES",
    "CS231N_FILES",
    "HandIn",
    "HandInError",
    "HandInReport",
    "Part",
    "check_handin",
    "find_parts",
    "is_handin",
    "open_handin",
]

MAX_BYTES = 200 * 2**20
"""The most bytes a ``.zip`` may unpack to."""
MAX_FILES = 5000
"""The most files a hand-in may hold."""
MAX_DEPTH = 20
"""The most folders deep a hand-in's files may lie."""

IGNORED = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git", ".idea", ".vscode", "build", "datasets"}
"""Folders that hold no one's work (editor and OS leftovers, caches, data)."""

HELPERS = re.compile(
    r"^(dnn_app_utils|dnn_utils|testCases|test_cases|public_tests|test_utils|lr_utils|planar_utils|mnist_loader)"
    r"\w*\.py$"
)
"""The course's own helper files handed in beside the work (they define L_model_backward too)."""

CS231N_FILES = ("fc_net.py", "neural_net.py")
"""The files of cs231n's assignments that hold the graded nets."""

_GRADABLE = (
    (re.compile(r"^\s*class\s+(FullyConnectedNet|TwoLayerNet)\b", re.MULTILINE), "cs231n"),
    (re.compile(r"^\s*def\s+L_model_backward\s*\(", re.MULTILINE), "deeplearning-ai"),
    (re.compile(r"^\s+def\s+backprop\s*\(\s*self\b", re.MULTILINE), "nielsen"),
)


class HandInError(Exception):
    """The hand-in cannot be opened (an unsafe or oversized ``.zip``) or holds nothing to grade."""


class Part(NamedTuple):
    """One gradable file of a hand-in.

    Attributes:
      name: its path inside the hand-in (``cs231n/classifiers/fc_net.py``), for the report.
      spec: what ``--backprop`` would name (its path on this machine).
      course: the course its contents look like (``cs231n``, ``deeplearning-ai``, ``nielsen``).
    """

    name: str
    spec: str
    course: str


class HandIn(NamedTuple):
    """What a hand-in holds: its :class:`Part` s, and where it was unpacked."""

    parts: list[Part]
    folder: Path
    ignored: list[str]


def is_handin(spec: str) -> bool:
    """Whether ``--backprop`` names a folder or a ``.zip`` (rather than one file or a module).

    Example:
      >>> from fnnjax.verify.grader._handin import is_handin
      >>> is_handin("examples/courses"), is_handin("examples/courses/nielsen/network.py")
      (True, False)
    """
    return spec.lower().endswith(".zip") or Path(spec).is_dir()


def _unpack(archive: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise HandInError(f"cannot open {archive.name}: not a readable .zip ({err})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise HandInError(
                f"{archive.name} holds {len(infos)} files, more than {MAX_FILES}: hand in the course files only"
            )
        total = sum(i.file_size for i in infos)
        if total > MAX_BYTES:
            raise HandInError(
                f"{archive.name} unpacks to {total / 2**20:.0f} MiB, more than {MAX_BYTES // 2**20} MiB: "
                "leave the data sets out of the hand-in"
            )
        for info in infos:
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise HandInError(
                    f"{archive.name} holds {info.filename!r}, a path outside its folder: refused "
                    "(re-zip the folder itself)"
                )
            if len(path.parts) > MAX_DEPTH:
                raise HandInError(
                    f"{archive.name} holds {info.filename!r}, {len(path.parts)} folders deep "
                    f"(at most {MAX_DEPTH}): refused"
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise HandInError(f"{archive.name} holds {info.filename!r}, a link: refused (zip the files themselves)")
        written = 0
        for info in infos:
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_BYTES:  # the sizes in the directory lied
                        raise HandInError(
                            f"{archive.name} unpacks to more than {MAX_BYTES // 2**20} MiB: leave the data sets out"
                        )
                    out.write(chunk)


def _ignored(rel: Path) -> bool:
    return any(p in IGNORED or p.startswith(".") for p in rel.parts)


def find_parts(folder: Path, *, root: Path | None = None) -> tuple[list[Part], list[str]]:
    """The gradable files in ``folder`` (see the module's docstring) and the files ignored.

    Args:
      folder: the hand-in's folder.
      root: what part names are relative to (default ``folder``).

    Returns:
      ``(parts, ignored)``: parts sorted by name; ``ignored`` the folders and files left out.

    Raises:
      HandInError: more than :data:`MAX_FILES` files, or deeper than :data:`MAX_DEPTH`.

    Example:
      >>> from pathlib import Path
      >>> from fnnjax.verify.grader._handin import find_parts
      >>> [p.name for p in find_parts(Path("examples/courses"))[0]]
      ['cs231n/fc_net.py', 'deeplearning_ai/dnn.py', 'nielsen/network.py']
    """
    root = root or folder
    parts, ignored, count = [], [], 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if _ignored(rel):
            if not _ignored(rel.parent) or rel.parent == Path("."):
                ignored.append(rel.as_posix())
            continue
        if path.is_symlink():
            ignored.append(rel.as_posix())
            continue
        if not path.is_file():
            continue
        count += 1
        if count > MAX_FILES or len(rel.parts) > MAX_DEPTH:
            raise HandInError(
                f"the hand-in holds more than {MAX_FILES} files or files over {MAX_DEPTH} folders deep: "
                "hand in the course files only"
            )
        if path.suffix not in (".py", ".ipynb") or HELPERS.match(path.name):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace") if path.stat().st_size < 20 * 2**20 else ""
        except OSError:
            continue
        if path.suffix == ".ipynb":
            text = text.replace("\\n", "\n").replace('"', "\n")  # a notebook's source lines are JSON strings
        for pattern, course in _GRADABLE:
            if course == "cs231n" and path.name not in CS231N_FILES:
                continue  # scratch scripts beside the course's files are not the assignment
            if pattern.search(text):
                parts.append(Part(path.relative_to(root).as_posix(), str(path), course))
                break
    return parts, sorted(set(ignored))


@contextlib.contextmanager
def open_handin(spec: str) -> Iterator[HandIn]:
    """Open a folder or ``.zip`` hand-in (a ``.zip`` unpacked into a private folder, removed afterwards).

    Args:
      spec: the folder or ``.zip``.

    Yields:
      A :class:`HandIn`.

    Raises:
      HandInError: no such folder or zip, an unsafe or oversized zip, or nothing gradable in it (one line).
    """
    path = Path(spec)
    if not path.exists():
        raise HandInError(f"cannot load {spec!r}: no such folder or .zip (looked from {Path.cwd()})")
    tmp = None
    try:
        if path.is_dir():
            folder = path
        else:
            tmp = Path(tempfile.mkdtemp(prefix="fnnjax-handin-"))
            folder = tmp / path.stem
            folder.mkdir()
            _unpack(path, folder)
        visible = [p for p in folder.iterdir() if not _ignored(p.relative_to(folder))]
        search = visible[0] if len(visible) == 1 and visible[0].is_dir() and tmp is not None else folder
        parts, ignored = find_parts(search)
        if not parts:
            held = sorted(p.relative_to(search).as_posix() for p in search.rglob("*") if p.is_file())
            held = [h for h in held if not _ignored(Path(h))]
            listing = ", ".join(held[:10]) + (f" and {len(held) - 10} more" if len(held) > 10 else "")
            raise HandInError(
                f"found nothing to grade in {path.name}: no cs231n fc_net.py/neural_net.py, no deeplearning.ai "
                "notebook defining L_model_backward, no Nielsen network with backprop "
                f"(it holds {listing or 'no files'})"
            )
        yield HandIn(parts, folder, ignored)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class HandInReport:
    """What grading each part of a hand-in found.

    Attributes:
      source: the folder or ``.zip``.
      parts: ``(name, report or None, error or None, notes)`` per part.
      ignored: what was left out of the hand-in (``__MACOSX``...).
      seconds: wall time.
      sandbox: the sandbox's summary (each part runs in a sandbox of its own, alike).
    """

    source: str
    parts: tuple[tuple[str, Any, str | None, tuple[str, ...]], ...]
    ignored: tuple[str, ...]
    seconds: float
    sandbox: str = "sandbox: not started yet"

    @property
    def passed(self) -> bool:
        """Every part was graded and passes."""
        return all(r is not None and r.passed for _, r, _, _ in self.parts)

    def render(self) -> str:
        """Each part's report under its name."""
        lines = [f"grading {self.source}: {len(self.parts)} part{'s' if len(self.parts) != 1 else ''}"]
        if self.ignored:
            lines.append(f"  ignored      {', '.join(self.ignored[:8])}")
        for name, report, error, notes in self.parts:
            lines.append(f"\n== part {name} ==")
            lines.append(report.render() if report is not None else f"FAIL: {error}")
            lines += [f"  note         {n}" for n in notes]
        verdict = "PASS" if self.passed else "FAIL"
        passed = sum(r is not None and r.passed for _, r, _, _ in self.parts)
        lines.append(f"\n{verdict}: {passed} of {len(self.parts)} parts pass")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: status and one entry per part (its report's ``to_dict`` or its error)."""
        return {
            "status": "pass" if self.passed else "fail",
            "source": self.source,
            "ignored": list(self.ignored),
            "seconds": round(self.seconds, 3),
            "parts": [
                {
                    "part": name,
                    "status": "pass" if report is not None and report.passed else "fail",
                    "error": error,
                    "notes": list(notes),
                    "backprop": None if report is None else report.to_dict(),
                }
                for name, report, error, notes in self.parts
            ],
        }

    def gradescope(self, *, points: float | None = None, visibility: str = "visible") -> dict[str, Any]:
        """Gradescope's results.json: each part's tests, named ``PART: case``, the total split over the parts."""
        from ._gradescope import failure_results, gradescope_results, split_points

        shares = split_points(points, len(self.parts)) if points is not None else [None] * len(self.parts)
        tests, summary, seconds = [], [], 0.0
        for p, ((name, report, error, notes), share) in enumerate(zip(self.parts, shares), start=1):
            if report is not None:
                results = gradescope_results(report, points=share, visibility=visibility)
            else:
                results = failure_results(str(error), points=share, visibility=visibility)
            seconds += results["execution_time"]
            for test in results["tests"]:
                tests.append({**test, "name": f"{name}: {test['name']}", "number": f"{p}.{test['number']}"})
            text = results["output"] + "".join(f"\n{n}" for n in notes)
            summary.append(f"== {name} ==\n{text}")
        return {
            "score": round(sum(t["score"] for t in tests), 2),
            "execution_time": round(self.seconds, 2),
            "output": "\n\n".join(summary),
            "output_format": "text",
            "visibility": visibility,
            "extra_data": {"parts": [name for name, *_ in self.parts], "ignored": list(self.ignored)},
            "tests": tests,
        }


def _relative(text: str, folder: Path, shown: str) -> str:
    return text.replace(f"{folder}/", f"{shown}/").replace(str(folder), shown)


def check_handin(spec: str, **options) -> HandInReport:
    """Grade every part of a folder or ``.zip`` hand-in, each in its own process.

    Args:
      spec: the folder or ``.zip``.
      **options: passed to :func:`fnnjax.verify.grader._user_backprop.check_user_backprop`
        (``convention``, ``seed``, ``timeout``...).

    Returns:
      A :class:`HandInReport` (a part that cannot be loaded is in it with its error).

    Raises:
      HandInError: the hand-in cannot be opened or holds nothing to grade.

    Example:
      >>> from fnnjax.verify.grader._handin import check_handin
      >>> report = check_handin("examples/courses/nielsen")  # doctest: +SKIP
      >>> [name for name, *_ in report.parts]  # doctest: +SKIP
      ['network.py']
    """
    from ._user_backprop import SubmissionError, check_user_backprop

    start = time.perf_counter()
    shown = Path(spec).stem if spec.lower().endswith(".zip") else spec.rstrip("/")
    results, summary = [], "sandbox: not started yet"
    base = options.pop("sandbox", None)
    with open_handin(spec) as handin:
        for part in handin.parts:
            notes: list[str] = []
            sandbox = copy.deepcopy(base)  # a sandbox is one submission's: each part gets its own, alike
            try:
                report = check_user_backprop(part.spec, notes=notes, sandbox=sandbox, **options)
            except SubmissionError as err:
                results.append((part.name, None, _relative(str(err), handin.folder, shown), tuple(notes)))
                continue
            finally:
                if sandbox is not None and summary.endswith("not started yet"):
                    summary = _relative(sandbox.summary(), handin.folder, shown)
            report = _strip_folder(report, handin.folder, shown)
            results.append((part.name, report, None, tuple(_relative(n, handin.folder, shown) for n in notes)))
    return HandInReport(spec, tuple(results), tuple(handin.ignored), time.perf_counter() - start, summary)


def _strip_folder(report, folder: Path, shown: str):
    """The report with the unpacked folder's path said as the hand-in's name (in its texts)."""
    if str(folder) not in json.dumps(report.to_dict()) and str(folder) not in report.function:
        return report
    cases = tuple(
        dataclasses.replace(c, error=_relative(c.error, folder, shown)) if c.error else c for c in report.cases
    )
    return dataclasses.replace(report, function=_relative(report.function, folder, shown), cases=cases)
