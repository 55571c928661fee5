"""The submission's process: load the submission once, then run one case per request.

Started by :class:`fnnjax.verify.grader._isolation.Worker` as ``python -c BOOTSTRAP FOLDER REQUESTS REPLIES``:
BOOTSTRAP registers the grader's folder FOLDER as a bare package of its own (so neither
``fnnjax/__init__`` nor ``fnnjax/verify/__init__``, which import JAX, is run: a worker starts in the
time NumPy takes to import; the grader's modules import each other relatively) and calls
:func:`serve` with the two pipe descriptors. The submission's stdout and stderr are the grader's
capture pipe; the replies travel on their own descriptor as :mod:`fnnjax.verify.grader._wire` frames.
Every exception of the submission, ``SystemExit`` included, becomes a reply: the worker only ends
when the grader closes the requests pipe (or kills it: timeouts, crashes, floods).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

from ._calls import CallError, call, prepare
from ._environment import legacy_numpy
from ._submission import LoadError, Target, describe, import_target, location, one_line
from ._wire import MAX_ARRAY_BYTES, MAX_HEADER, FrameReader, WireError, decode, encode, frame

__all__ = ["BOOTSTRAP", "serve"]

BOOTSTRAP = (
    "import sys, types\n"
    "package = types.ModuleType('fnnjax_grader')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['fnnjax_grader'] = package\n"
    "from fnnjax_grader._worker import serve\n"
    "serve(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])\n"
)
"""The ``python -c`` program that starts a worker (arguments: the grader's folder, the two descriptors,
the sandbox's settings as JSON)."""


def _read(fd: int, reader: FrameReader):
    while True:
        message = reader.next()
        if message is not None:
            return message
        data = os.read(fd, 1 << 16)
        if not data:
            return None
        reader.feed(data)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _failure(err: BaseException, files: tuple[str, ...]) -> dict:
    if isinstance(err, SystemExit):
        where = location(err, files)
        return {
            "ok": False,
            "kind": "exit",
            "error": f"your code called sys.exit({err.code!r}){f' ({where})' if where else ''}; a "
            "submission cannot end the check early",
        }
    if isinstance(err, CallError):
        return {"ok": False, "kind": "contract", "error": str(err)}
    return {"ok": False, "kind": "raised", "error": one_line(err, files)}


def _confine(config: dict) -> None:
    """Apply the sandbox (see :mod:`fnnjax.verify.grader._sandbox`) to this process, before the submission runs.

    Joins the cgroup, sets the resource limits, switches to the sandbox user (supplementary groups
    first, then the group, then the user), asks to be killed when the grader dies, and moves to the
    empty working folder.
    """
    import resource
    import signal

    if config.get("cgroup"):
        with open(config["cgroup"], "w") as f:
            f.write(f"{os.getpid()}\n")
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_AS, config.get("memory")),
        (resource.RLIMIT_CPU, config.get("cpu")),
        (resource.RLIMIT_FSIZE, config.get("file_size")),
        (resource.RLIMIT_NOFILE, config.get("open_files")),
        (resource.RLIMIT_NPROC, config.get("processes")),
    ]
    for which, value in limits:
        if value is not None:
            hard = value + 1 if which == resource.RLIMIT_CPU else value  # SIGXCPU first, then SIGKILL
            resource.setrlimit(which, (int(value), int(hard)))
    if config.get("uid") is not None:
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if config.get("seccomp"):
        from ._seccomp import install as install_filter

        _DEDICATED["seccomp"] = install_filter()
    if config.get("cwd"):
        os.chdir(config["cwd"])
    if not config.get("autodiff", True):
        from ._autodiff import install

        install()


_DEDICATED = {"on": False, "seccomp": False}


def _end_strays(child: int) -> None:
    """Kill every process the case started (its whole process group; every process of the sandbox
    user or namespace when the worker has one of its own), then reap them."""
    import signal

    for target in (lambda: os.killpg(child, signal.SIGKILL), lambda: os.kill(child, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    if _DEDICATED["on"]:
        try:
            os.kill(-1, signal.SIGKILL)  # everything this user (namespace) may signal, but this process
        except (ProcessLookupError, PermissionError):
            pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _can_fork() -> bool:
    """Whether forking is safe: not after JAX (or TensorFlow) started its runtime threads."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is not None and getattr(bridge, "_backends", None):
        return False
    return "tensorflow" not in sys.modules


def _run_case(message: dict, arrays: list, module, files: tuple[str, ...]) -> bytes:
    """One case, in this process: the reply frame."""
    from . import _autodiff

    _autodiff.watching(True)
    try:
        entry = module if message["entry"] is None else getattr(module, message["entry"])
        result = call(message["form"], entry, decode(message["request"], arrays))
        name = _autodiff.used()
        if name is not None:
            return frame({"ok": False, "kind": "autodiff", "error": _autodiff.MESSAGE.format(name=name)})
        tree, out = encode(result)
        return frame({"ok": True, "result": tree}, out)
    except WireError as err:
        return frame({"ok": False, "kind": "wire", "error": str(err)})
    except BaseException as err:  # the submission's own exception, SystemExit included
        name = _autodiff.used()
        if name is not None:
            return frame({"ok": False, "kind": "autodiff", "error": _autodiff.MESSAGE.format(name=name)})
        return frame(_failure(err, files))
    finally:
        _autodiff.watching(False)


def _whole_frame(data: bytes) -> bool:
    """Whether ``data`` is exactly one well-formed frame."""
    reader = FrameReader()
    reader.feed(data)
    try:
        return reader.next() is not None and not reader._buffer
    except WireError:
        return False


class _Waited(NamedTuple):
    """What the worker saw of a case's child: its reply bytes, its exit status (None: still running
    or not reaped), whether it ran out of time, and a frame of its own it wrote (the reader's error)."""

    data: bytearray
    status: int | None
    timed_out: bool
    forged: str


_MOST = 8 + MAX_HEADER + MAX_ARRAY_BYTES
"""The most bytes a reply may have."""


def _start_case(message: dict, arrays: list, module, files: tuple[str, ...], fds: tuple[int, int]) -> tuple[int, int]:
    """Fork the case's child (its own process group, without the worker's pipes); return its pid and
    the read end of its reply pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the case
        try:
            os.close(read_end)
            for fd in fds:
                os.close(fd)
            os.setpgid(0, 0)
            _write(write_end, _run_case(message, arrays, module, files))
        finally:
            os._exit(0)
    os.close(write_end)
    return pid, read_end


def _wait_for_reply(pid: int, read_end: int, limit: float) -> _Waited:
    """Read the child's reply until it is whole, the child ends, or ``limit`` seconds pass (not until
    EOF: a process the child started may hold the pipe open)."""
    import selectors
    import time

    data = bytearray()
    deadline = time.monotonic() + limit
    sel = selectors.DefaultSelector()
    sel.register(read_end, selectors.EVENT_READ)
    reader = FrameReader()
    status, timed_out, forged = None, False, ""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not sel.select(timeout=min(left, 0.05)):
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = code
                    break
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            data += chunk
            reader.feed(chunk)
            try:
                if reader.next() is not None:
                    break
            except WireError as err:
                forged = str(err)
                break
            if len(data) > _MOST:
                break
    finally:
        sel.close()
        os.close(read_end)
    return _Waited(data, status, timed_out, forged)


def _end_case(pid: int, status: int | None) -> int | None:
    """Kill the child and everything it started; its exit status."""
    import signal

    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    if status is None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    _end_strays(pid)
    return status


def _answer_for(kind: str, error: str) -> bytes:
    """The reply the worker gives for a case whose child could not (``timeout``, ``crash``, ``wire``)."""
    return frame({"ok": False, "kind": kind, "error": error})


def _death(status: int | None) -> str:
    """How the child ended, in words (``was killed by SIGXCPU (it used up its CPU time limit)``)."""
    import signal

    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = f"was killed by {name}"
        if sig == signal.SIGXCPU:
            why += " (it used up its CPU time limit)"
        elif sig == signal.SIGXFSZ:
            why += " (it wrote a file larger than the sandbox allows)"
        return why
    code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else "unknown"
    return f"exited with status {code}"


def _fork_case(message: dict, arrays: list, module, files: tuple[str, ...], fds: tuple[int, int]) -> bytes:
    """One case in a child forked from this worker (the submission stays imported here).

    The child runs the case and sends its reply through a pipe of its own; the worker waits at
    most the case's time limit, kills the child and everything it started, and answers for it
    when it times out or dies, or when what it sent is not a reply.
    """
    limit = float(message.get("timeout") or 10.0)
    pid, read_end = _start_case(message, arrays, module, files, fds)
    waited = _wait_for_reply(pid, read_end, limit)
    status = _end_case(pid, waited.status)
    if waited.timed_out:
        return _answer_for(
            "timeout",
            f"timed out: running the submission took more than {limit:g} s (an infinite loop?); it was stopped",
        )
    if len(waited.data) > _MOST:
        return _answer_for("wire", "the submission's reply is too large to check")
    if waited.forged:  # the submission wrote a frame of its own where its reply goes
        return _answer_for("wire", f"the submission's reply could not be read ({waited.forged})")
    if waited.data and _whole_frame(bytes(waited.data)):
        return bytes(waited.data)
    return _answer_for(
        "crash",
        f"the submission's process {_death(status)} while running it (os._exit, or a crash in native code?); "
        "a submission cannot end the check early",
    )


def serve(requests: int, replies: int, sandbox: str = "") -> None:
    """Answer the grader's requests until it closes the requests pipe.

    Requests: ``{"op": "load", "target": Target fields}`` (import the submission, reply with
    :func:`fnnjax.verify.grader._submission.describe`), ``{"op": "prepare", "form": ...}`` (import what the form
    needs), ``{"op": "call", "form": ..., "entry": NAME or None, "request": encoded value,
    "timeout": seconds}`` (reply with the encoded :func:`fnnjax.verify.grader._calls.call` result).

    Each case runs in a child forked from this process (the submission is imported once), unless
    a runtime that cannot be forked (JAX's, once started) is loaded: then it runs here, and a
    timeout costs the grader a restart.

    Args:
      requests: the descriptor requests arrive on.
      replies: the descriptor replies leave on.
      sandbox: the sandbox's settings as JSON (see :meth:`fnnjax.verify.grader._sandbox.Sandbox.config`),
        applied before anything else; empty: none.
    """
    sys.path[:] = [p for p in sys.path if p != ""]  # python -c put the current directory first
    extra_path = None
    if sandbox:
        import json

        config = json.loads(sandbox)
        _DEDICATED["on"] = bool(config.get("dedicated"))
        extra_path = config.get("path")
        _confine(config)
    reader = FrameReader()
    module, files = None, ()
    while True:
        try:
            received = _read(requests, reader)
        except WireError as err:  # bytes the submission wrote into the grader's channel: said, never obeyed
            _write(
                replies, frame({"ok": False, "kind": "wire", "error": f"forged bytes on the grader's channel ({err})"})
            )
            return
        if received is None:
            return
        message, arrays = received
        if message.get("op") == "load":
            try:
                target = Target(**message["target"])
                if extra_path:
                    sys.path.append(extra_path)
                legacy_numpy()  # the courses' NumPy names (np.float, reshape's newshape=): graded on the math
                module = import_target(target)
            except LoadError as err:
                _write(replies, frame({"ok": False, "kind": "load", "error": str(err)}))
                continue
            path = getattr(module, "__file__", None)
            if path:
                files = (path, str(Path(path).resolve()))
                sys.path.insert(0, str(Path(path).resolve().parent))  # for imports made while it runs
            _write(
                replies,
                frame(
                    {"ok": True, "description": describe(module, keep=target.entry), "seccomp": _DEDICATED["seccomp"]}
                ),
            )
            continue
        if message.get("op") == "prepare":
            try:
                prepare(message["form"])
                reply = frame({"ok": True})
            except BaseException as err:
                reply = frame(_failure(err, files))
            _write(replies, reply)
            continue
        if message.get("fork", True) and _can_fork():
            reply = _fork_case(message, arrays, module, files, (requests, replies))
        else:
            reply = _run_case(message, arrays, module, files)
        _write(replies, reply)
