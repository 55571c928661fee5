"""The grader's compiled programs (the references, the classic wrong gradients), saved beside JAX's cache.

JAX's persistent compilation cache (``JAX_COMPILATION_CACHE_DIR``, as the Gradescope setup sets it,
or ``fnnjax verify --class``'s report folder) saves compiling a program in a new process, not
tracing it; for the grader's reference programs the tracing is most of the time. When that cache is
configured, :func:`run` also saves each compiled program, whole, in its ``fnnjax-programs/``
subfolder, keyed by everything it depends on (the program, the convention's trace key and the case,
the structure, shapes and dtypes of its inputs, the source of fnnjax and of the grader, the JAX
and jaxlib versions and the device), and a new process loads it instead of tracing and compiling.
Without a configured cache, :func:`run` is the plain ``jax.jit`` call.

Only a program compiled in this process is saved (one JAX read from its own cache does not
serialise whole), and only if, read back, it computes the same result bit for bit; a saved program
that fails to load or to run is removed and compiled again. The folder is the grader's alone: it
is used only when it belongs to this user and no one else can write to it (mode 700, created so),
as JAX's own cache must be (a sandboxed submission can neither name nor write either: grader
security).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["RECENT", "SUBFOLDER", "folder", "prefetch", "run"]

SUBFOLDER = "fnnjax-programs"
"""The subfolder of JAX's compilation cache the grader's programs are saved in."""

_loaded: dict[str, Any] = {}
_lock = threading.Lock()
_used: list[str] = []
_prefetching: list[threading.Thread] = []
RECENT = "recent"
"""The file (in :data:`SUBFOLDER`) that lists the programs the last grading process used."""
_cache_hits = [0]
_listening = [False]


def _count_cache_hits(event: str, **_kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _cache_hits[0] += 1


def _listen() -> None:
    """Count JAX's persistent-cache hits: an executable it read from its cache does not serialise whole
    (read back in another process, it misses functions), so a program compiled by a hit is not saved."""
    with _lock:
        if not _listening[0]:
            jax.monitoring.register_event_listener(_count_cache_hits)
            _listening[0] = True


def folder() -> Path | None:
    """Where compiled programs are saved: ``fnnjax-programs/`` in JAX's compilation cache, or None
    (no cache configured, or one this user does not own alone)."""
    base = getattr(jax.config, "jax_compilation_cache_dir", None)
    if not base:
        return None
    path = Path(base) / SUBFOLDER
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path if _private(path) else None
    except OSError:
        return None


def _private(path: Path) -> bool:
    info = path.lstat()
    return (
        info.st_uid == os.geteuid()
        and not (info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        and not stat.S_ISLNK(info.st_mode)
    )


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    """The source of fnnjax and of the grader, the JAX and jaxlib versions, and the device."""
    import jaxlib

    import fnnjax

    digest = hashlib.sha256()
    package = Path(fnnjax.__file__).resolve().parent
    grader = Path(__file__).resolve().parent
    for path in sorted([*package.glob("*.py"), *package.glob("gradcheck/*.py"), *grader.glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    device = jax.devices()[0]
    digest.update(f"{jax.__version__} {jaxlib.version.__version__} {device.platform} {device.device_kind}".encode())
    return digest.hexdigest()


def _key(name: str, static: tuple, dynamic: tuple) -> str:
    leaves, tree = jax.tree_util.tree_flatten(dynamic)
    shapes = [(np.shape(leaf), str(np.result_type(leaf))) for leaf in leaves]
    keys = [s._trace_key() if hasattr(s, "_trace_key") else s for s in static]
    text = repr((name, keys, str(tree), shapes, bool(getattr(jax.config, "jax_enable_x64")), _environment()))
    return hashlib.sha256(text.encode()).hexdigest()


def _load(path: Path):
    from jax.experimental import serialize_executable

    if not path.exists() or not _private(path):
        return None
    try:
        blob, in_tree, out_tree = pickle.loads(path.read_bytes())
        return serialize_executable.deserialize_and_load(blob, in_tree, out_tree)
    except Exception:  # written by another version, cut short...: compile it again
        return None


def _same(a, b) -> bool:
    """Whether two results are the same pytree of the same arrays, bit for bit."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        return False
    for x, y in zip(leaves_a, leaves_b):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            return False
    return True


def _save(path: Path, compiled, dynamic: tuple, result) -> None:
    """Save ``compiled`` if, read back, it computes ``result`` again bit for bit (an executable that
    JAX's own cache handed out may not serialise whole: it is then not saved)."""
    from jax.experimental import serialize_executable

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        data = pickle.dumps(serialize_executable.serialize(compiled))
        blob, in_tree, out_tree = pickle.loads(data)
        again = jax.device_get(serialize_executable.deserialize_and_load(blob, in_tree, out_tree)(*dynamic))
        if not _same(again, result):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except Exception:  # a program that cannot be serialised, a full disk: it is only not saved
        tmp.unlink(missing_ok=True)


def prefetch() -> None:
    """Start loading, in a thread of its own, the saved programs the last grading process used (the
    same assignment's, most likely), while the submission's worker starts and imports it."""
    where = folder()
    if where is None or _prefetching:
        return
    try:
        keys = [k for k in (where / RECENT).read_text().split() if len(k) == 64 and k.isalnum()][:256]
    except OSError:
        return

    def load() -> None:
        for key in keys:
            with _lock:
                if key in _loaded:
                    continue
            program = _load(where / f"{key}.pkl")
            if program is not None:
                with _lock:
                    _loaded.setdefault(key, program)

    thread = threading.Thread(target=load, name="fnnjax-prefetch", daemon=True)
    _prefetching.append(thread)
    thread.start()


def _record(where: Path, key: str) -> None:
    """Add ``key`` to the programs this process used (:data:`RECENT`)."""
    with _lock:
        if key in _used:
            return
        _used.append(key)
        text = "\n".join(_used) + "\n"
    tmp = where / f".{RECENT}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        tmp.write_text(text)
        os.replace(tmp, where / RECENT)
    except OSError:
        tmp.unlink(missing_ok=True)


def run(jitted, static: tuple, dynamic: tuple, name: str):
    """``jitted(*static, *dynamic)``, from a saved compiled program where one is (see the module).

    Args:
      jitted: a ``jax.jit`` function whose first ``len(static)`` arguments are static.
      static: its static arguments (a :class:`Convention` is keyed by its trace key).
      dynamic: its other arguments (arrays, pytrees of arrays).
      name: the program's name in the key.

    Returns:
      The result, on the host (``jax.device_get``).
    """
    where = folder()
    if where is None:
        return jax.device_get(jitted(*static, *dynamic))
    key = _key(name, static, dynamic)
    path = where / f"{key}.pkl"
    _record(where, key)
    with _lock:
        program = _loaded.get(key)
    if program is None and _prefetching and _prefetching[0].is_alive():
        _prefetching[0].join()  # it is loading the programs this run needs
        with _lock:
            program = _loaded.get(key)
    if program is None:
        program = _load(path)
    if program is not None:
        try:
            result = jax.device_get(program(*dynamic))
        except Exception:  # a saved program that does not run: removed, compiled again below
            path.unlink(missing_ok=True)
            with _lock:
                _loaded.pop(key, None)
        else:
            with _lock:
                _loaded[key] = program
            return result
    _listen()
    hits = _cache_hits[0]
    compiled = jitted.lower(*static, *dynamic).compile()
    result = jax.device_get(compiled(*dynamic))
    if _cache_hits[0] == hits:  # compiled here (not read from JAX's cache, by this thread or another)
        _save(path, compiled, dynamic, result)
    with _lock:
        _loaded[key] = compiled
    return result
