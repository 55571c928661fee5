"""What guards a training run's output folder: one writer at a time, and a clean stop on SIGTERM/SIGINT.

:class:`OutputLock`: a run holds an exclusive lock on ``OUT/.fnnjax-train.lock`` for its lifetime
(``fcntl.flock``; on Windows ``msvcrt.locking``). The file also names the holder (pid, host, start
time), so a second run on the same folder stops at once saying who holds it. The operating system
releases the lock when the process ends, however it ends (a crash, ``kill -9``): a lock left behind
by a killed run never blocks the next one. The file stays after a run that started (it holds outputs
or checkpoints beside it). A start that failed before anything was written (no data set, a wrong
option found late) leaves nothing: :meth:`OutputLock.discard` removes the lock file, and the folder
if the lock created it, while still holding the lock. A process that took the lock on a file that
was removed meanwhile notices (the path no longer names the file it locked) and takes it again on
the new file, so two processes never both hold "the" lock.

:class:`Preemption`: while training, the first SIGTERM or SIGINT (Ctrl-C) asks the run to stop after
the epoch in progress (a compiled epoch cannot be cut in the middle): that epoch is checkpointed and
the run exits with status 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A second signal
stops the process at once (the operating system's default action), except inside a save or while
the outputs are written (:meth:`Preemption.deferred`), which always finish first.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["LOCK_FILE", "OutputLock", "OutputLocked", "Preemption"]

LOCK_FILE = ".fnnjax-train.lock"
"""The lock file's name inside the output folder."""

_WINDOWS_LOCK_OFFSET = 1 << 20  # msvcrt locks a byte range; lock one far past the holder's description


class OutputLocked(Exception):
    """Another live process holds the output folder's lock. ``holder``: its description (a dict)."""

    def __init__(self, folder: Path, holder: dict):
        pid, host, started = (holder.get(k, "?") for k in ("pid", "host", "started"))
        super().__init__(
            f"{folder} is in use by another fnnjax train run (pid {pid} on host {host}, started "
            f"{started}); wait for it to finish, or choose another --out"
        )
        self.folder, self.holder = folder, holder


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            if sys.platform == "win32":  # always, msvcrt imported; the type checker sees its API only here
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):  # held elsewhere
            return False
        raise
    return True


def _holder(path: Path) -> dict:
    """The holder's description; retried briefly, as a holder that just took the lock is writing it."""
    for _ in range(20):
        try:
            text = path.read_text()
            if text.strip():
                return json.loads(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


class OutputLock:
    """An exclusive, process-lifetime lock on an output folder (created if needed).

    Args:
      folder: the output folder.
      command: what the holder is doing, recorded for whoever finds the folder locked.

    Raises:
      OutputLocked (from ``acquire``/``with``): when another live process holds it.
      OSError: when the folder or the lock file cannot be created (e.g. no permission).

    Example:
      >>> import tempfile
      >>> from fnnjax._runguard import OutputLock, OutputLocked
      >>> folder = tempfile.mkdtemp()
      >>> with OutputLock(folder):
      ...     pass
    """

    def __init__(self, folder, *, command: str = "fnnjax train"):
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> OutputLock:
        self._created = []  # the folders this lock creates, deepest first (discard removes them)
        for folder in (self.folder, *self.folder.parents):
            if folder.exists():
                break
            self._created.append(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                raise OutputLocked(self.folder, _holder(self.path))
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder before us discarded the file we locked: lock the new one
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "command": self.command}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None

    def discard(self) -> None:
        """Release the lock of a run that wrote nothing: if the folder holds only the lock file,
        remove it, and the folders :meth:`acquire` created (deepest first); then release. A folder
        that holds anything else keeps its lock file."""
        if self._fd is None:
            return
        try:
            if [p.name for p in self.folder.iterdir()] == [LOCK_FILE]:
                self.path.unlink()  # still holding the lock: see the module docstring
                for folder in self._created:
                    folder.rmdir()
        except OSError:  # something appeared meanwhile, or no permission: leave what is there
            pass
        finally:
            self.release()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd`` (not removed or replaced since it was opened)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


class Preemption:
    """SIGTERM/SIGINT handling for a training loop (see the module docstring); a context manager.

    Inside ``with Preemption() as p``: ``p.requested`` turns True at the first signal; the loop
    checks it after every epoch. ``p.deferred()`` wraps work a second signal must not cut (saves).
    Handlers are installed only in the main thread (elsewhere Python cannot) and restored on exit.

    Args:
      stopping: what the run does on the first signal, for the line written when it arrives.
      notice: called with that line (default: written to stderr).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stopping: str = "stopping after the epoch in progress", notice=None):
        self.signum: int | None = None
        self._stopping = stopping
        self._notice = notice or _write_stderr
        self._previous: dict = {}
        self._deferring = 0

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_status(self) -> int:
        """128 + the signal number: the shell's status of a process ended by that signal."""
        return 128 + int(self.signum or 0)

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            self._notice(f"{signal.Signals(signum).name} received: {self._stopping} (a second signal stops at once)")
        if not self._deferring:
            self._stop_at_once_on_next()

    def _stop_at_once_on_next(self) -> None:
        for s in self._previous:
            signal.signal(s, signal.SIG_DFL)

    @contextlib.contextmanager
    def deferred(self):
        """Signals arriving inside this block only ask to stop: the block (a save) always finishes."""
        if not self._previous:
            yield
            return
        self._deferring += 1
        for s in self._previous:
            signal.signal(s, self._handle)
        try:
            yield
        finally:
            self._deferring -= 1
            if self.signum is not None and not self._deferring:
                self._stop_at_once_on_next()


def _write_stderr(line: str) -> None:
    # os.write, not print: a signal handler may run while sys.stderr is in the middle of a write
    try:
        sys.stderr.flush()
    except (OSError, ValueError, RuntimeError):
        pass
    os.write(2, f"fnnjax train: {line}\n".encode())
