"""A whole class at once: ``fnnjax verify --class SUBMISSIONS --report OUT``.

:func:`discover` finds one submission per student in a folder: each immediate entry (a folder, a
``.zip``, an ``.ipynb`` or a ``.py``) is one student's; a flat folder exported from a
learning-management system, with files named per student, is grouped by student
(:func:`lms_name`: Canvas ``smith_john_12345_67890_fc_net.py`` and ``smith_john_LATE_12345_67890_...``,
Moodle ``John Smith_12345_assignsubmission_file_fc_net.py``, Blackboard
``HW2_jsmith_attempt_2024-03-01-10-00-00_fc_net.py``, the latest attempt).

:func:`grade_class` grades each submission exactly as ``fnnjax verify --backprop SUBMISSION
--gradescope results.json`` would with the same seed and options (the same calls, so the same
score), each in a sandbox of its own, several at a time (threads, each driving its submission's
sandboxed worker process, sharing one process's compiled reference programs and their values:
:func:`fnnjax.verify.grader._grading.references`). A submission that crashes, hangs or attacks
the grader fails in its own row. A manifest in the report folder keys each submission by its
files' hashes, the options, the seed and fnnjax's version: a rerun skips the unchanged ones
(``force=True`` regrades). The outputs (grades.csv, report.md, report.html, mistakes.png) are
written by :mod:`fnnjax.verify.grader._class_report`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._handin import IGNORED

__all__ = [
    "MANIFEST",
    "ClassError",
    "ClassResult",
    "Graded",
    "Student",
    "discover",
    "grade_class",
    "grade_one",
    "lms_name",
]

MANIFEST = ".fnnjax-class.json"
"""The file in the report folder that records what was graded, and with what (for reruns)."""

FORMS = (
    "each entry of the folder is one student's: a folder, a .zip, an .ipynb or a .py; or a flat "
    "export of Canvas (lastname_firstname_12345_67890_file.py), Moodle "
    "(Full Name_12345_assignsubmission_file_file.py) or Blackboard "
    "(Assignment_username_attempt_2024-01-31-12-00-00_file.py)"
)
"""The forms a class folder may take, in words (for the error that finds none)."""


class ClassError(Exception):
    """The class folder cannot be graded (missing, empty, holds no submission): one line."""


@dataclasses.dataclass(frozen=True)
class Student:
    """One student's submission.

    Attributes:
      name: the student, as the folder names them (``alice``, ``smith_john``, ``John Smith``).
      kind: ``folder``, ``zip``, ``notebook``, ``file`` (a ``.py``) or ``export`` (files of a
        learning-management system's flat export, grouped).
      paths: the files or folder handed in.
      names: for an ``export``, each file's own name (the system's prefix removed).
    """

    name: str
    kind: str
    paths: tuple[Path, ...]
    names: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------------
# Finding the students

_CANVAS = re.compile(r"^(?P<student>[^\W_][\w-]*?)(?:_LATE)?_(?P<id>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
_MOODLE = re.compile(r"^(?P<student>.+?)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_?(?P<file>.*)$")
_BLACKBOARD = re.compile(
    r"^(?P<assignment>.*)_(?P<student>[^_]+)_attempt_(?P<date>\d{4}(?:-\d{2}){5})(?:_(?P<file>.+)|\.\w+)?$"
)


def lms_name(filename: str) -> tuple[str, str, str] | None:
    """``(student, file, attempt)`` of a file named by a learning-management system's export, or None.

    Canvas adds ``-1``, ``-2`` to a resubmitted file's name; it is removed.

    Example:
      >>> from fnnjax.verify.grader._class import lms_name
      >>> lms_name("smith_john_LATE_12345_67890_fc_net-1.py")
      ('smith_john', 'fc_net.py', '')
      >>> lms_name("John Smith_881_assignsubmission_file_network.py")
      ('John Smith', 'network.py', '')
      >>> lms_name("HW 2_jsmith_attempt_2024-03-01-10-00-00_dnn.ipynb")
      ('jsmith', 'dnn.ipynb', '2024-03-01-10-00-00')
      >>> lms_name("fc_net.py") is None
      True
    """
    m = _MOODLE.match(filename)
    if m:
        return m["student"], m["file"], ""
    m = _BLACKBOARD.match(filename)
    if m:
        return m["student"], m["file"] or "", m["date"]
    m = _CANVAS.match(filename)
    if m:
        file = re.sub(r"-\d+(\.\w+)$", r"\1", m["file"])
        return m["student"], file, ""
    return None


def _folder_name(name: str) -> str:
    """A student's folder as Moodle and Blackboard name it, said as the student."""
    m = re.match(r"^(?P<student>.+?)_\d+_assignsubmission_(?:file|onlinetext)_?$", name)
    return m["student"] if m else name


def discover(folder: str | os.PathLike, *, exclude: Path | None = None) -> tuple[list[Student], list[str]]:
    """The students' submissions in a class folder, sorted by name, and the entries left out.

    Args:
      folder: the class folder.
      exclude: a path inside it that is not a submission (the report folder).

    Returns:
      ``(students, ignored)``.

    Raises:
      ClassError: no such folder, or no submission in it (the message names the forms accepted).
    """
    root = Path(folder)
    if not root.exists():
        raise ClassError(f"--class {folder}: no such folder (looked from {Path.cwd()})")
    if not root.is_dir():
        raise ClassError(f"--class {folder} is a file; give the folder that holds one submission per student")
    students: dict[str, Student] = {}
    groups: dict[str, list[tuple[str, Path, str]]] = {}
    ignored: list[str] = []
    for path in sorted(root.iterdir()):
        name = path.name
        if name.startswith(".") or name in IGNORED or (exclude is not None and _same(path, exclude)):
            continue
        if path.is_symlink():
            ignored.append(name)
            continue
        lms = lms_name(name) if path.is_file() else None
        if lms is not None:
            student, file, attempt = lms
            groups.setdefault(student, []).append((file, path, attempt))
            continue
        if path.is_dir():
            students[_folder_name(name)] = Student(_folder_name(name), "folder", (path,))
        elif path.suffix.lower() == ".zip":
            students[path.stem] = Student(path.stem, "zip", (path,))
        elif path.suffix == ".ipynb":
            students[path.stem] = Student(path.stem, "notebook", (path,))
        elif path.suffix == ".py":
            students[path.stem] = Student(path.stem, "file", (path,))
        else:
            ignored.append(name)
    for student, files in groups.items():
        latest = max(a for _, _, a in files)  # Blackboard: the latest attempt ("" elsewhere)
        files = [(f, p) for f, p, a in files if a == latest and f]
        gradable = [(f, p) for f, p in files if Path(f).suffix.lower() in (".py", ".ipynb", ".zip")]
        if not gradable:
            ignored += [p.name for _, p in files]
            continue
        name = student if student not in students else f"{student} (export)"
        students[name] = Student(name, "export", tuple(p for _, p in gradable), tuple(f for f, _ in gradable))
    if not students:
        held = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        listing = ", ".join(held[:6]) + (f" and {len(held) - 6} more" if len(held) > 6 else "")
        raise ClassError(f"found no submission in {folder} ({listing or 'it is empty'}): {FORMS}")
    return sorted(students.values(), key=lambda s: s.name.lower()), ignored


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def fingerprint(student: Student) -> str:
    """A hash of every file the student handed in (paths relative to the submission, and contents)."""
    digest = hashlib.sha256()
    for path, shown in _files(student):
        digest.update(f"{shown}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _files(student: Student) -> Iterator[tuple[Path, str]]:
    if student.kind == "folder":
        base = student.paths[0]
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.is_symlink():
                yield p, p.relative_to(base).as_posix()
        return
    names = student.names or tuple(p.name for p in student.paths)
    yield from zip(student.paths, names)


@contextlib.contextmanager
def _materialised(student: Student) -> Iterator[str]:
    """What ``--backprop`` is given for this student: the folder, zip or file itself; an export's files
    copied into a folder of the student's own under their own names."""
    if student.kind != "export":
        yield str(student.paths[0])
        return
    tmp = Path(tempfile.mkdtemp(prefix="fnnjax-class-"))
    try:
        folder = tmp / re.sub(r"[^\w.-]+", "_", student.name)
        folder.mkdir()
        for path, name in zip(student.paths, student.names):
            shutil.copyfile(path, folder / Path(name).name)
        if len(student.paths) == 1:  # one file: graded as that file (a .zip as that zip)
            yield str(folder / Path(student.names[0]).name)
        else:
            yield str(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Grading one submission


@dataclasses.dataclass
class Graded:
    """What grading one submission found, JSON-able (kept in the manifest for reruns).

    Attributes:
      student: the student's name.
      source: the submission, relative to the class folder.
      key: the hash of its files, the options, the seed and fnnjax's version.
      score: the total (Gradescope's ``score`` of the single grading).
      max_score: the most it could get.
      parts: one dict per part: ``part``, ``score``, ``max_score``, ``status``, ``codes`` (each
        ``[code, layer, where]``), ``diagnosis`` (one line), ``example`` (the diagnosis lines).
      seconds: the time grading took.
      error: what stopped grading, or None.
    """

    student: str
    source: str
    key: str
    score: float
    max_score: float
    parts: list[dict[str, Any]]
    seconds: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Every part passes."""
        return bool(self.parts) and all(p["status"] == "pass" for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return dataclasses.asdict(self)


def _case_codes(report, where: str = "") -> tuple[list[list[Any]], str, list[str]]:
    """``(codes, diagnosis, lines)`` of a :class:`BackpropReport`: the stable codes of every failing
    scored case and function (each ``[code, layer, where]``), the first failure in one line, and its
    diagnosis lines."""
    codes: dict[tuple, None] = {}
    first_line, lines = "", []
    for r in report.cases:
        if r.passed or r.case.optional:
            continue
        for c in r.codes:
            codes[(c.code, c.layer, where)] = None
        if not first_line:
            lines = list(r.diagnosis) or [r.error or ""]
            first_line = lines[0] if lines else ""
    for f in report.functions:
        if f.passed:
            continue
        name = f"{where}{f.name}" if not where else f"{where} {f.name}"
        for code in f.codes:
            codes[(code, None, name)] = None
        if not first_line:
            first = f.first_failure
            first_line = f"{f.name}: {first.message}" if first is not None else f.name
            lines = [first_line]
    return [list(k) for k in codes], first_line, lines


def _submission_code(message: str) -> str:
    lowered = message.lower()
    if "not implemented" in lowered or "unfinished" in lowered or "notimplementederror" in lowered:
        return "unfinished"
    return "not-gradable"


def _part_status(score: float, most: float, codes: list[list[Any]], passed: bool) -> str:
    if passed:
        return "pass"
    kinds = {c[0] for c in codes}
    for kind in ("timeout", "crash", "exit", "not-gradable", "grader-error"):
        if kind in kinds:
            return "error" if kind in ("not-gradable", "grader-error") else kind
    if kinds == {"unfinished"}:
        return "unfinished"
    return "fail"


def grade_one(
    spec: str,
    options: dict[str, Any],
    *,
    points: float | None = None,
    visibility: str = "visible",
    shown: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """Grade one submission as ``fnnjax verify --backprop SPEC --gradescope`` does.

    Args:
      spec: the folder, ``.zip``, notebook or file.
      options: :func:`~fnnjax.verify.grader._user_backprop.check_user_backprop`'s keywords
        (``convention``, ``seed``, ``timeout``, ``sandbox``, ``l2_factor``, ``strict``, ``init``).
      points: the total (``--points``).
      visibility: Gradescope's visibility of the tests.
      shown: the submission's name in the parts (default: ``spec``'s file name).

    Returns:
      ``(results, parts, error)``: Gradescope's results.json contents (the same as the single
      grading's), one dict per part (see :class:`Graded`), what stopped grading or None.
    """
    from ._gradescope import failure_results, gradescope_results
    from ._handin import HandInError, check_handin, is_handin
    from ._user_backprop import BackpropReport, SubmissionError, check_user_backprop

    start = time.perf_counter()
    shown = shown or Path(spec).name
    sandbox = options.get("sandbox")  # the caller's copy: one sandbox per submission
    try:
        if is_handin(spec):
            report = check_handin(spec, **options)
        else:
            report = check_user_backprop(spec, notes=[], **options)
    except (SubmissionError, HandInError) as err:
        convention = getattr(err, "convention", None)
        results = failure_results(
            str(err), convention=convention, points=points, visibility=visibility, seconds=time.perf_counter() - start
        )
        return results, [_failed_part(shown, str(err), 0.0, _max(results))], str(err)
    except Exception as err:  # the grader itself failed on this submission: its row says so
        message = f"the grader failed ({type(err).__name__}: {err})"
        traceback.print_exc()
        results = failure_results(message, points=points, visibility=visibility)
        return results, [_failed_part(shown, message, 0.0, _max(results), code="grader-error")], message
    if isinstance(report, BackpropReport):
        results = gradescope_results(report, points=points, visibility=visibility)
        results.setdefault("extra_data", {})["sandbox"] = sandbox.summary() if sandbox is not None else ""
        return results, [_judged_part(shown, report, results["score"], _max(results))], None
    results = report.gradescope(points=points, visibility=visibility)
    results.setdefault("extra_data", {})["sandbox"] = report.sandbox
    return results, _handin_parts(report, results), None


def _failed_part(name: str, message: str, score: float, most: float, code: str | None = None) -> dict[str, Any]:
    """The row of a part that could not be graded (it does not load, fits nothing, is unfinished)."""
    code = code or _submission_code(message)
    status = "unfinished" if code == "unfinished" else "error"
    return {
        "part": name,
        "score": score,
        "max_score": most,
        "status": status,
        "codes": [[code, None, ""]],
        "diagnosis": message,
        "example": [message],
    }


def _judged_part(name: str, report, score: float, most: float) -> dict[str, Any]:
    """The row of a part whose cases ran: its score, status, codes and first diagnosis."""
    codes, first, lines = _case_codes(report)
    status = _part_status(score, most, codes, report.passed)
    return {
        "part": name,
        "score": score,
        "max_score": most,
        "status": status,
        "codes": codes,
        "diagnosis": first,
        "example": lines,
    }


def _handin_parts(report, results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per part of a folder or ``.zip``, scored from its tests in ``results``."""
    parts = []
    for name, sub, error, _notes in report.parts:
        tests = [t for t in results["tests"] if t["name"].startswith(f"{name}: ")]
        score = round(sum(t["score"] for t in tests), 2)
        most = round(sum(t["max_score"] for t in tests), 2)
        if sub is None:
            parts.append(_failed_part(name, str(error), score, most))
        else:
            parts.append(_judged_part(name, sub, score, most))
    return parts


def _max(results: dict[str, Any]) -> float:
    return round(sum(t["max_score"] for t in results["tests"]), 2)


# ----------------------------------------------------------------------------------------------
# The class


@dataclasses.dataclass
class ClassResult:
    """What grading a class found.

    Attributes:
      folder: the class folder.
      graded: one :class:`Graded` per submission, sorted by student.
      ignored: entries of the folder that are no submission.
      skipped: how many submissions were unchanged since the last run (their grades reused).
      seconds: wall time.
      options: the options every submission was graded with (seed included), in words.
      sandbox: the sandbox's summary (of the first submission graded in this run).
    """

    folder: str
    graded: list[Graded]
    ignored: list[str]
    skipped: int
    seconds: float
    options: dict[str, Any]
    sandbox: str = ""

    @property
    def passed(self) -> bool:
        """Every submission passes."""
        return all(g.passed for g in self.graded)


def _key(student: Student, settings: dict[str, Any]) -> str:
    import fnnjax

    blob = json.dumps(
        {"files": fingerprint(student), "options": settings, "fnnjax": fnnjax.__version__, "kind": student.kind},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data.get("submissions", {}) if isinstance(data, dict) else {}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def compilation_cache(folder: Path | None) -> Iterator[None]:
    """JAX's persistent compilation cache in ``folder`` for the duration of the block (none: as it was).

    Scoped to the grading run: the previous setting is restored afterwards. The folder is the
    grader's alone (mode 700): no sandboxed submission can read or write it.
    """
    if folder is None:
        yield
        return
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    before = (
        getattr(jax.config, "jax_compilation_cache_dir"),
        getattr(jax.config, "jax_persistent_cache_min_compile_time_secs"),
    )
    _reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
        _reset_cache()


def _reset_cache() -> None:
    """Make JAX read its cache settings again (it reads them once, at its first compile)."""
    try:
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - another JAX: the setting applies from its next start
        pass


def _unchanged(students: list[Student], previous: dict[str, Any], keys: dict[str, str]) -> dict[str, Graded]:
    """The grades of the last run whose key (file hashes, options, seed, fnnjax version) is unchanged."""
    kept: dict[str, Graded] = {}
    for s in students:
        saved = previous.get(s.name)
        if isinstance(saved, dict) and saved.get("key") == keys[s.name]:
            with contextlib.suppress(TypeError):
                kept[s.name] = Graded(**saved)
    return kept


def _grade_student(
    student: Student,
    root: Path,
    key: str,
    options: dict[str, Any],
    points: float | None,
    visibility: str,
    summary: list[str],
) -> Graded:
    """One student's submission graded in a sandbox of its own (a copy of ``options``'s); the first
    sandbox summary seen is appended to ``summary``."""
    t = time.perf_counter()
    source = (
        student.paths[0].relative_to(root).as_posix()
        if student.kind != "export"
        else ", ".join(p.name for p in student.paths)
    )
    sandbox = copy.deepcopy(options.get("sandbox"))
    with _materialised(student) as spec:
        shown = Path(spec).name if student.kind != "export" or len(student.paths) == 1 else student.name
        results, parts, error = grade_one(
            spec, options | {"sandbox": sandbox}, points=points, visibility=visibility, shown=shown
        )
    used = results.get("extra_data", {}).get("sandbox") or ""
    if used and not used.endswith("not started yet") and not summary:
        summary.append(used)
    return Graded(
        student.name, source, key, float(results["score"]), _max(results), parts, time.perf_counter() - t, error
    )


def grade_class(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    options: dict[str, Any],
    settings: dict[str, Any] | None = None,
    points: float | None = None,
    visibility: str = "visible",
    jobs: int | None = None,
    force: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    jax_cache: Path | None = None,
) -> ClassResult:
    """Grade every submission of a class folder and record the grades in ``out``'s manifest.

    Args:
      folder: the class folder (see :func:`discover`).
      out: the report folder (created; must not be a file).
      options: :func:`~fnnjax.verify.grader._user_backprop.check_user_backprop`'s keywords, as
        ``--backprop`` passes them (``seed`` included; ``sandbox`` copied for each submission).
      settings: what else decides a grade, for the rerun key (``--memory``...; default: ``options``
        in words).
      points: the total of each submission (``--points``; default 1 per case).
      visibility: Gradescope's visibility (kept in the results).
      jobs: submissions graded at a time (default: the number of cores).
      force: regrade every submission, even those unchanged since the last run.
      progress: called as ``progress(done, total, student)`` after each submission.
      jax_cache: JAX's persistent compilation cache for this run (None: as configured).

    Returns:
      The :class:`ClassResult` (outputs: :func:`fnnjax.verify.grader._class_report.write_report`).

    Raises:
      ClassError: the folder is missing or holds no submission; ``out`` is a file.
    """
    start = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ClassError(
            f"--report {out} is a file; give a folder (it is created), e.g. --report {out.with_suffix('')}-report"
        )
    students, ignored = discover(folder, exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    previous = {} if force else _load_manifest(manifest_path)
    described = settings if settings is not None else {k: v for k, v in options.items() if k != "sandbox"}
    described = described | {"points": points, "visibility": visibility}
    keys = {s.name: _key(s, described) for s in students}
    kept = _unchanged(students, previous, keys)
    todo = [s for s in students if s.name not in kept]
    graded: dict[str, Graded] = dict(kept)
    lock = threading.Lock()
    summary: list[str] = []
    root = Path(folder)

    def one(student: Student) -> Graded:
        return _grade_student(student, root, keys[student.name], options, points, visibility, summary)

    def record(g: Graded) -> None:
        with lock:
            graded[g.student] = g
            data = {"fnnjax_class": 1, "submissions": {k: v.to_dict() for k, v in sorted(graded.items())}}
            _write_json(manifest_path, data)
            if progress is not None:
                progress(len(graded) - len(kept), len(todo), g.student)

    jobs = max(1, jobs or os.cpu_count() or 1)
    with compilation_cache(jax_cache):
        if jobs == 1 or len(todo) <= 1:
            for s in todo:
                record(one(s))
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fnnjax-grade") as pool:
                for future in concurrent.futures.as_completed([pool.submit(one, s) for s in todo]):
                    record(future.result())
    # the manifest holds exactly this class's submissions (a student removed since is dropped)
    _write_json(
        manifest_path,
        {"fnnjax_class": 1, "submissions": {s.name: graded[s.name].to_dict() for s in students}},
    )
    return ClassResult(
        str(folder),
        [graded[s.name] for s in students],
        ignored,
        len(kept),
        time.perf_counter() - start,
        described,
        summary[0] if summary else "",
    )
