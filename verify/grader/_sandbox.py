"""The sandbox a submission runs in: layers, each used where the machine allows it, and said which.

A submission is code written by someone who wants the points, and Gradescope runs the grader as
root. The worker process (:mod:`fnnjax.verify.grader._worker`) therefore starts inside these layers:

- **user**: when the grader is root, the worker runs as a dedicated unprivileged user, one of a
  small pool (``fnnjax-sandbox-0`` ... ``fnnjax-sandbox-7``, created with ``useradd`` when missing,
  a bare numeric uid where there is no ``useradd``), one per submission running at the same time
  (a lock file per user). A different uid cannot read or write the grader's memory
  (``/proc/PID/mem``), environment or stdout, cannot signal it, cannot write its files, its
  installation, its results folder or its JAX compilation cache, and every process it starts
  (``setsid`` included) is found by its uid and killed. The layer is off, in one line, when the
  grader is not root, or when that user cannot run this Python (an installation under a private
  folder such as ``/root``: install the grader where every user can read it, as Gradescope's
  ``/autograder/venv`` is).
- **namespaces**: where the kernel allows ``unshare`` (not in a default Docker container), new
  PID, network and mount namespaces: the submission sees only its own processes, has no network
  (loopback included), and ending the worker ends every process in it.
- **cgroup**: where the cgroup ``pids`` controller is writable, a process cap that binds root too.
- **limits** (``setrlimit``, always): address space (:attr:`Limits.memory`), CPU seconds per
  process, the largest file written, open files, no core files, and processes per user (only with
  the user layer: the limit counts every process of the uid).
- **environment**: a clean environment (``PATH``, ``HOME``, one thread for BLAS and OpenMP, no
  variable of the grader's) and an empty working folder of its own, with a copy of the
  submission's folder; messages name the original files.

The results file is written by the grader alone, atomically, after every process of the
submission is gone. What each layer stops is tabled in the documentation (grader security).

This module imports only the standard library.
"""

from __future__ import annotations

import fcntl
import math
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["POOL", "Limits", "Sandbox", "child_of", "fresh_seed", "processes_of"]

POOL = 8
"""How many sandbox users there are (submissions checked at the same time on one machine)."""

_FILTER = "system-call filter (no network sockets, ptrace or mounts)"
_LOCKS = Path(tempfile.gettempdir()) / "fnnjax-sandbox-locks"
_COPY_BYTES = 200 * 2**20
_COPY_FILES = 5000
_SKIP = {".git", "__pycache__", ".venv", "venv", "node_modules", ".ipynb_checkpoints"}


def fresh_seed() -> int:
    """A seed no one can know in advance (from the operating system's randomness).

    Example:
      >>> from fnnjax.verify.grader._sandbox import fresh_seed
      >>> 0 <= fresh_seed() < 2**31
      True
    """
    return secrets.randbelow(2**31)


class Limits(NamedTuple):
    """Resource limits of the worker and of every process it starts (``setrlimit``).

    Attributes:
      memory: address space in bytes (``RLIMIT_AS``; JAX maps about 1.5 GiB, so 4 GiB by default).
      cpu: CPU seconds per process (``RLIMIT_CPU``); None: the import limit plus 5 s.
      file_size: the largest file the submission may write, bytes (``RLIMIT_FSIZE``).
      processes: processes and threads of the sandbox user (``RLIMIT_NPROC``, user layer only).
      open_files: open file descriptors (``RLIMIT_NOFILE``).

    Example:
      >>> from fnnjax.verify.grader._sandbox import Limits
      >>> Limits().memory // 2**30, Limits().processes
      (4, 128)
    """

    memory: int = 4 * 2**30
    cpu: float | None = None
    file_size: int = 64 * 2**20
    processes: int = 128
    open_files: int = 256

    def describe(self) -> str:
        """The limits in words, e.g. ``memory 4 GiB, 64 MiB files, 256 open files``."""
        size = self.file_size // 2**20
        return f"memory {self.memory / 2**30:g} GiB, files up to {size} MiB, {self.open_files} open files"


def _status_of_all(field: bytes) -> Iterator[tuple[int, int]]:
    """``(pid, value)`` of every process's ``/proc/PID/status`` line ``field`` (``Uid:``: the real uid)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as f:
                for line in f:
                    if line.startswith(field):
                        yield int(entry), int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue


def processes_of(uid: int) -> list[int]:
    """The ids of every process whose real uid is ``uid`` (read from ``/proc``)."""
    return [pid for pid, real in _status_of_all(b"Uid:") if real == uid]


def _dead(pid: int) -> bool:
    """Whether ``pid`` is a zombie (exited, waiting for its parent to read its status) or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


def child_of(parent: int) -> int | None:
    """A process whose parent is ``parent`` (read from ``/proc``), or None."""
    return next((pid for pid, ppid in _status_of_all(b"PPid:") if ppid == parent), None)


def _probe_unshare(root: bool) -> list[str] | None:
    """The ``unshare`` prefix that works on this machine, or None."""
    exe = shutil.which("unshare")
    if exe is None:
        return None
    prefix = [exe] + ([] if root else ["--user", "--map-root-user"])
    prefix += ["--pid", "--net", "--mount", "--fork", "--kill-child", "--mount-proc"]
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if done.returncode == 0 else None


_UNSHARE: dict[bool, list[str] | None] = {}


def _cgroup_root() -> Path | None:
    for root in (Path("/sys/fs/cgroup/pids"),):
        if (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
            return root
    return None


class Sandbox:
    """Which layers to use, and (once a worker started) which were in force.

    Args:
      user: run the worker as a sandbox user (None: when the grader is root).
      namespaces: new PID, network and mount namespaces (None: where ``unshare`` works; False
        forces the path a default Docker container takes).
      limits: the :class:`Limits`.
      allow_autodiff: let the submission call automatic differentiation (JAX, PyTorch,
        TensorFlow, autograd) while a case runs; by default a case that does fails.
      enabled: False runs the worker as before the sandbox (same user, same environment): only for
        trusted code.
      cgroup: a cgroup with a process cap (None: where the ``pids`` controller is writable).

    Example:
      >>> from fnnjax.verify.grader._sandbox import Sandbox
      >>> Sandbox(namespaces=False, user=False).summary()
      'sandbox: not started yet'
    """

    def __init__(
        self,
        *,
        user: bool | None = None,
        namespaces: bool | None = None,
        limits: Limits = Limits(),
        allow_autodiff: bool = False,
        enabled: bool = True,
        cgroup: bool | None = None,
    ):
        self.want_user = user
        self.want_namespaces = namespaces
        self.limits = limits
        self.allow_autodiff = allow_autodiff
        self.enabled = enabled
        self.want_cgroup = cgroup
        self.layers: list[str] = []
        self.missing: list[str] = []
        self.uid: int | None = None
        self.gid: int | None = None
        self.user_name: str | None = None
        self.prefix: list[str] = []
        self.folder: Path | None = None
        self.work: Path | None = None
        self.original: Path | None = None
        self.cgroup: Path | None = None
        self._lock: int | None = None
        self._started = False

    @classmethod
    def from_options(cls, args) -> Sandbox:
        """The sandbox the command line's options ask for (``--memory``, ``--no-namespaces``, ``--allow-autodiff``)."""
        memory = getattr(args, "memory", None)
        limits = Limits(memory=int(memory * 2**20)) if memory else Limits()
        return cls(
            namespaces=False if getattr(args, "no_namespaces", False) else None,
            limits=limits,
            allow_autodiff=bool(getattr(args, "allow_autodiff", False)),
        )

    # -- the layers ------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: the layers in force and those that were not available."""
        if not self._started and not self.layers and not self.missing:
            return "sandbox: not started yet"
        text = "sandbox: " + (", ".join(self.layers) or "no layer")
        if self.missing:
            text += "; not available: " + "; ".join(self.missing)
        return text

    def start(self, target_source: str, is_path: bool, load_timeout: float) -> str:
        """Choose the layers, make the working folder and copy the submission there.

        Args:
          target_source: the submission's file (or module name).
          is_path: ``target_source`` is a file.
          load_timeout: the import limit (sets the CPU limit by default).

        Returns:
          The file the worker imports (in the copy), or the module name.
        """
        if self._started:
            return self._mapped(target_source, is_path)
        self._started = True
        self.layers, self.missing, self.prefix = [], [], []  # chosen afresh (a hand-in checks several files)
        root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="fnnjax-sandbox-"))
        os.chmod(self.folder, 0o711)
        if self.enabled:
            self._choose_namespaces(root)
            self._choose_user(root)
            self._choose_cgroup(root)
        self._make_folder(target_source, is_path)
        cpu = self.limits.cpu if self.limits.cpu is not None else load_timeout + 5
        self.limits = self.limits._replace(cpu=cpu)
        if self.enabled:
            from . import _seccomp

            if _seccomp.available():
                self.layers.append(_FILTER)
            else:
                self.missing.append("system-call filter (no seccomp filter for this architecture)")
            nproc = f", {self.limits.processes} processes" if self.uid is not None else ""
            self.layers.append(f"limits ({self.limits.describe()}, {math.ceil(cpu)} CPU s per process{nproc})")
            self.layers.append("clean environment and an empty working folder")
        if self.missing:  # one line, whatever is missing
            print(f"fnnjax sandbox: not available: {'; '.join(self.missing)}", file=sys.stderr)
        return self._mapped(target_source, is_path)

    def _choose_user(self, root: bool) -> None:
        if self.want_user is False:
            return
        if not root:
            self.missing.append("user (the grader is not root: the submission runs as your own user)")
            return
        found = self._acquire_user()
        if found is None:
            self.missing.append(f"user (all {POOL} sandbox users are busy, or none could be created)")
            return
        uid, gid, name = found
        if self.prefix:
            self._reveal()
        blocked = self._probe_user(uid, gid)
        if blocked is not None:
            self._release_user()
            self.missing.append(
                f"user ({name} cannot read {blocked}: install the grader where every user can read "
                "it, e.g. /opt or /autograder/venv)"
            )
            return
        self.uid, self.gid, self.user_name = uid, gid, name
        self.sweep()  # what a grader killed before its end may have left running as this user
        self.layers.append(f"user {name} (uid {uid})")

    def _acquire_user(self) -> tuple[int, int, str] | None:
        _LOCKS.mkdir(mode=0o700, exist_ok=True)
        for attempt in range(2):
            for k in range(POOL):
                fd = os.open(_LOCKS / f"{k}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if attempt == 0 else 0))
                except BlockingIOError:
                    os.close(fd)
                    continue
                found = _sandbox_user(k)
                if found is None:
                    os.close(fd)
                    return None
                self._lock = fd
                return found
        return None  # pragma: no cover - the blocking pass always gets a lock

    def _release_user(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _needed(self) -> list[str]:
        """What the worker reads after it switched users: the interpreter, the standard library,
        the installed packages and the grader's own modules."""
        import sysconfig

        paths = sysconfig.get_paths()
        return [
            os.path.realpath(sys.executable),
            paths["stdlib"],
            paths["purelib"],
            str(Path(__file__).resolve().parent),
        ]

    def _probe_user(self, uid: int, gid: int) -> str | None:
        """The first file this Python needs that ``uid`` cannot read (inside the namespaces), or None."""
        code = (
            "import os, sys\n"
            "os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
            "for p in sys.argv[3:]:\n"
            "    if not os.access(p, os.R_OK | os.X_OK): print(p); break\n"
        )
        try:
            done = subprocess.run(
                [*self.prefix, sys.executable, "-I", "-S", "-c", code, str(uid), str(gid), *self._needed()],
                capture_output=True,
                text=True,
                timeout=20,
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
            )
        except (OSError, subprocess.SubprocessError):
            return sys.executable
        if done.returncode != 0:
            return sys.executable
        return done.stdout.strip() or None

    def _reveal(self) -> None:
        """In the mount namespace, make the installation readable by the sandbox user without
        changing the machine: a private folder on its path (``/root``, a ``mktemp -d`` folder) is
        covered by an empty read-only tmpfs that shows only what the worker needs."""
        mount = shutil.which("mount") or "/bin/mount"
        umount = shutil.which("umount") or "/bin/umount"
        plan: dict[str, set[str]] = {}
        for needed in self._needed():
            parts = Path(needed).parts
            for k in range(1, len(parts) - 1):
                folder = Path(*parts[: k + 1])
                if folder.is_dir() and not folder.stat().st_mode & 0o001:
                    plan.setdefault(str(folder), set()).add(parts[k + 1])
                    break
        if not plan or self.folder is None:
            return
        stage = self.folder / "stage"
        stage.mkdir(mode=0o700)
        lines = ["set -e"]
        for k, (folder, children) in enumerate(sorted(plan.items())):
            lines.append(f"mkdir -p '{stage}/{k}' && {mount} --bind '{folder}' '{stage}/{k}'")
            lines.append(f"{mount} -t tmpfs -o mode=0755,size=1m tmpfs '{folder}'")
            for child in sorted(children):
                lines.append(f"mkdir -p '{folder}/{child}' && {mount} --bind '{stage}/{k}/{child}' '{folder}/{child}'")
            lines.append(f"{mount} -o remount,ro,bind '{folder}' 2>/dev/null || true")
            lines.append(f"{umount} -l '{stage}/{k}'")
        lines.append('unset PWD OLDPWD SHLVL _; exec "$@"')
        if any("'" in x for x in [*plan, *(c for cs in plan.values() for c in cs), str(stage)]):
            return  # a name we will not quote: go without
        self.prefix = [*self.prefix, "/bin/sh", "-c", "\n".join(lines), "sh"]

    def _choose_namespaces(self, root: bool) -> None:
        if self.want_namespaces is False:
            self.missing.append("namespaces (turned off)")
            return
        if root not in _UNSHARE:
            _UNSHARE[root] = _probe_unshare(root)
        prefix = _UNSHARE[root]
        if prefix is None:
            self.missing.append("namespaces (the kernel or the container refuses unshare)")
            return
        self.prefix = list(prefix)
        self.layers.append("PID, network and mount namespaces")

    def _choose_cgroup(self, root: bool) -> None:
        parent = _cgroup_root() if root and self.want_cgroup is not False else None
        if parent is None:
            return
        path = parent / f"fnnjax-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(f"{self.limits.processes}\n")
        except OSError:
            return
        self.cgroup = path
        self.layers.append(f"cgroup ({self.limits.processes} processes)")

    def _make_folder(self, source: str, is_path: bool) -> None:
        assert self.folder is not None
        self.work = self.folder / "work"
        self.work.mkdir(mode=0o700)
        (self.work / "tmp").mkdir(mode=0o700)
        if is_path and Path(source).is_file():
            from ._submission import submission_root

            self.original = submission_root(source)  # its own folder, or its course package's root
            _copy_folder(self.original, self.work / "submission")
        if self.uid is not None:
            for path in _walk(self.work):
                os.lchown(path, self.uid, self.gid if self.gid is not None else self.uid)

    def _mapped(self, source: str, is_path: bool) -> str:
        if not (is_path and self.original is not None and self.work is not None):
            return source
        try:
            inside = Path(source).resolve().relative_to(self.original)
        except ValueError:  # a link that leads out of its folder: the copy keeps the link
            inside = Path(Path(source).name)
        return str(self.work / "submission" / inside)

    def restore_paths(self, text: str) -> str:
        """A message with the copy's folder replaced by the submission's own."""
        if self.work is None or self.original is None:
            return text
        return text.replace(str(self.work / "submission"), str(self.original))

    # -- the worker's start -----------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The worker's whole environment."""
        if not self.enabled:
            return {**os.environ, "PYTHONUNBUFFERED": "1"}
        home = str(self.work)
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": str(Path(home) / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        }

    def config(self) -> dict:
        """What the worker applies to itself before it reads the submission (no secret in it)."""
        if not self.enabled:
            return {}
        lim = self.limits
        return {
            "uid": self.uid,
            "gid": self.gid,
            "memory": lim.memory,
            "cpu": math.ceil(lim.cpu or 65),
            "file_size": lim.file_size,
            "processes": lim.processes if self.uid is not None else None,
            "open_files": lim.open_files,
            "cwd": str(self.work),
            "cgroup": str(self.cgroup / "cgroup.procs") if self.cgroup else None,
            "dedicated": self.uid is not None or bool(self.prefix),
            "autodiff": self.allow_autodiff,
            "seccomp": _FILTER in self.layers,
        }

    def filter_refused(self) -> None:
        """The worker could not install the system-call filter: say so."""
        if _FILTER in self.layers:
            self.layers.remove(_FILTER)
            line = "system-call filter (the kernel refused seccomp)"
            self.missing.append(line)
            print(f"fnnjax sandbox: {line}", file=sys.stderr)

    # -- ending processes ---------------------------------------------------------------------------

    def sweep(self, keep: int | None = None, *, wait_for_zombies: bool = True) -> int:
        """Kill every process of the sandbox (its user, its cgroup) except ``keep``; return how many.

        Repeats until none is left (a process that forks meanwhile is caught on the next pass). With
        ``wait_for_zombies=False``, a zombie (dead, waiting for its parent to reap it) counts as gone:
        for the worker's own end, whose parent the caller reaps right after.
        """
        killed = 0
        for _ in range(50):
            pids: set[int] = set()
            if self.uid is not None:
                pids.update(processes_of(self.uid))
            if self.cgroup is not None:
                try:
                    pids.update(int(p) for p in (self.cgroup / "cgroup.procs").read_text().split())
                except (OSError, ValueError):
                    pass
            pids.discard(os.getpid())
            if keep is not None:
                pids.discard(keep)
            if not wait_for_zombies:
                pids = {pid for pid in pids if not _dead(pid)}
            if not pids:
                return killed
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)
        return killed

    def close(self) -> None:
        """Kill what is left, remove the working folder, give the sandbox user back."""
        self.sweep()
        if self.cgroup is not None:
            for _ in range(100):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    self.sweep()
                    time.sleep(0.01)
            self.cgroup = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        if self.uid is not None:
            remove_leftovers(self.uid)
        self._release_user()
        self.uid = self.gid = self.user_name = None
        self.work = self.original = None
        self._started = False


SHARED_FOLDERS = ("/dev/shm", "/tmp", "/var/tmp")
"""World-writable folders where a submission could leave files behind (``/dev/shm`` is memory)."""


def remove_leftovers(uid: int, folders: Sequence[str] = SHARED_FOLDERS) -> int:
    """Remove what the sandbox user ``uid`` left in the shared folders; return how many entries.

    The user is the sandbox's own, so everything it owns there is a submission's leftover. Links are
    removed, never followed.
    """
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _sandbox_user(k: int) -> tuple[int, int, str] | None:
    name = f"fnnjax-sandbox-{k}"
    try:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid, name
    except KeyError:
        pass
    useradd = shutil.which("useradd") or ("/usr/sbin/useradd" if os.path.exists("/usr/sbin/useradd") else None)
    if useradd is not None:
        subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                name,
            ],
            capture_output=True,
            timeout=30,
        )
        try:
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid, name
        except KeyError:
            pass
    uid = 64000 + k  # no useradd (Alpine, a minimal image): a bare uid works all the same
    try:
        pwd.getpwuid(uid)
        return None  # taken by someone else's account
    except KeyError:
        return uid, uid, f"uid {uid}"


def _walk(top: Path):
    yield top
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _copy_folder(source: Path, dest: Path) -> None:
    """Copy the submission's folder (symbolic links as links, never followed; bounded in size)."""
    budget = {"bytes": _COPY_BYTES, "files": _COPY_FILES}

    def ignore(folder, names):
        skipped = set()
        for name in names:
            path = Path(folder) / name
            if name in _SKIP:
                skipped.add(name)
                continue
            try:
                size = path.lstat().st_size
            except OSError:
                skipped.add(name)
                continue
            budget["files"] -= 1
            budget["bytes"] -= size
            if budget["files"] < 0 or budget["bytes"] < 0:
                skipped.add(name)
        return skipped

    shutil.copytree(source, dest, symlinks=True, ignore=ignore)
