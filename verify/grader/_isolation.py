"""Running a submission in its own process, with a time limit per case and a limit on its output.

:class:`Worker` starts ``python -c BOOTSTRAP`` (:mod:`fnnjax.verify.grader._worker`) in a new session (its own
process group), imports the submission there once, and sends it one case at a time. The grader's
process never imports the submission, never unpickles what it sends (see :mod:`fnnjax.verify.grader._wire`) and
keeps its own copies of every array it hands out. A case *fails* (and only that case) when the
submission

- raises, or calls ``sys.exit`` (the worker catches it and replies);
- does not answer within ``timeout`` seconds (an infinite loop): the process group is killed;
- ends its process (``os._exit``, a crash in native code, a signal);
- prints more than ``output_limit`` bytes to stdout/stderr while the case runs: killed;
- sends something that is not a well-formed reply.

After a kill or a crash the next case starts a fresh worker (and imports the submission again), so
one case never affects the next. POSIX only (``pass_fds``, process groups).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from ._sandbox import Sandbox, child_of
from ._submission import Target
from ._wire import FrameReader, WireError, decode, encode, frame
from ._worker import BOOTSTRAP

__all__ = ["OUTPUT_LIMIT", "Outcome", "Worker"]

OUTPUT_LIMIT = 1_000_000
"""The most bytes a submission may print (stdout and stderr together) while one case runs."""

_TAIL = 2000

_GRACE = 3.0
"""Seconds the grader waits beyond a case's limit for the worker to stop the case and answer."""
"""How much of the end of a submission's output a failure message quotes."""


class Outcome(NamedTuple):
    """What one request to the worker came to.

    Attributes:
      kind: ``ok``; ``raised``, ``exit`` (``sys.exit``), ``contract`` (the submission does not fit
        the convention's calling contract), ``load`` (the import failed), ``wire`` (an unreadable
        reply): answered by the worker; ``timeout``, ``crash``, ``output``: the worker was lost.
      value: the decoded reply (``ok`` only).
      message: what went wrong, in one line (not ``ok``).
      seconds: wall time of the request.
      output: the end of what the submission printed meanwhile.
    """

    kind: str
    value: Any
    message: str | None
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        """The worker answered with a result."""
        return self.kind == "ok"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class Worker:
    """One submission's process, inside its sandbox; restarted after a kill or a crash.

    Args:
      target: the submission (see :func:`fnnjax.verify.grader._submission.parse_target`).
      timeout: seconds each case may take.
      load_timeout: seconds the import of the submission may take.
      output_limit: bytes the submission may print per request.
      sandbox: the :class:`~fnnjax.verify.grader._sandbox.Sandbox` (default: every layer the
        machine allows).
      total: seconds the submission may take over the whole check, restarts included (None: no
        limit beyond each request's); may be set once the number of cases is known.

    Use as a context manager (every process of the sandbox is killed on exit).

    Example:
      >>> from fnnjax.verify.grader._isolation import Worker
      >>> from fnnjax.verify.grader._submission import parse_target
      >>> with Worker(parse_target("examples/courses/nielsen/network.py"), timeout=5) as worker:
      ...     sorted(worker.load().value["description"]["classes"])
      ['Network']
    """

    def __init__(
        self,
        target: Target,
        *,
        timeout: float,
        load_timeout: float | None = None,
        output_limit: int = OUTPUT_LIMIT,
        sandbox: Sandbox | None = None,
        total: float | None = None,
    ):
        self.target = target
        self.timeout = float(timeout)
        self.load_timeout = float(load_timeout if load_timeout is not None else max(timeout, 60.0))
        self.output_limit = int(output_limit)
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.total = total
        self.spent = 0.0
        self._proc: subprocess.Popen | None = None
        self._fds: dict[str, int] = {}
        self._source: str | None = None
        self.restarts = 0

    # -- process lifecycle ---------------------------------------------------------------------

    def _start(self) -> None:
        sandbox = self.sandbox
        self._source = sandbox.start(self.target.source, self.target.is_path, self.load_timeout)
        config = sandbox.config()
        if config and not self.target.is_path:
            config["path"] = os.getcwd()  # a module name is looked up from the grader's folder, as before
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        folder = str(Path(__file__).resolve().parent)
        # -E: none of the grader's PYTHON* variables; -s: no user site-packages of a user it is not
        flags = (["-E", "-u"] + (["-s"] if sandbox.uid is not None else [])) if sandbox.enabled else []
        command = [*sandbox.prefix, sys.executable, *flags, "-c", BOOTSTRAP, folder, str(req_r), str(rep_w)]
        if config:
            command.append(json.dumps(config))
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(req_r, rep_w),
                start_new_session=True,
                env=sandbox.environment(),
                cwd=str(sandbox.work) if sandbox.work is not None and sandbox.enabled else None,
            )  # output counted per case
        finally:
            for fd in (req_r, rep_w, out_w):
                os.close(fd)
        for fd in (req_w, rep_r, out_r):
            os.set_blocking(fd, False)
        self._fds = {"requests": req_w, "replies": rep_r, "output": out_r}

    def _worker_pid(self) -> int | None:
        """The worker's process id as this process sees it (the child of ``unshare`` in namespaces)."""
        proc = self._proc
        if proc is None:
            return None
        if not self.sandbox.prefix:
            return proc.pid
        return child_of(proc.pid)

    def close(self) -> None:
        """Kill the worker and every process of its sandbox (if running) and close the pipes."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except OSError:
                pass
            self.sandbox.sweep(wait_for_zombies=False)  # the killed worker is a zombie until the wait below
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
                pass
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        self.sandbox.close()

    def load(self) -> Outcome:
        """Start the worker and import the submission; the reply holds ``description``."""
        self.close()
        self._start()
        target = self.target._replace(source=self._source or self.target.source)
        loaded = self._request({"op": "load", "target": target._asdict()}, [], self.load_timeout, "importing")
        if loaded.ok and self.sandbox.config().get("seccomp") and loaded.value.get("seccomp") is not True:
            self.sandbox.filter_refused()
        return loaded

    def prepare(self, form: str) -> Outcome:
        """Import what a form needs (JAX for the fnnjax form) within the import time limit."""
        return self._request({"op": "prepare", "form": form}, [], self.load_timeout, "preparing")

    def call(self, form: str, entry: str | None, request: dict) -> Outcome:
        """Run one case: restart (and re-import) first when the previous request lost the worker."""
        if self._proc is None:
            self.restarts += 1
            loaded = self.load()
            if loaded.ok:
                loaded = self.prepare(form)
            if not loaded.ok:
                return loaded._replace(
                    message=f"could not restart the submission after the previous case failed: {loaded.message}"
                )
        tree, arrays = encode(request)
        message = {"op": "call", "form": form, "entry": entry, "request": tree, "timeout": self.timeout}
        outcome = self._request(message, arrays, self.timeout + _GRACE, "running", shown=self.timeout)
        if self._proc is not None:  # nothing the case started outlives it, but the worker
            keep = self._worker_pid()
            if keep is not None:
                self.sandbox.sweep(keep=keep)
        return outcome

    def _request(self, message: dict, arrays: list, limit: float, doing: str, shown: float | None = None) -> Outcome:
        start = time.perf_counter()
        try:
            outcome = self._exchange(message, arrays, limit, doing, limit if shown is None else shown)
        finally:
            self.spent += time.perf_counter() - start
        if outcome.message is not None:
            outcome = outcome._replace(message=self.sandbox.restore_paths(outcome.message))
        return outcome

    def _exchange(self, message: dict, arrays: list, limit: float, doing: str, shown: float) -> Outcome:
        start = time.perf_counter()
        deadline = start + limit
        whole_deadline = None if self.total is None else start + max(self.total - self.spent, 0.0)
        whole = whole_deadline is not None and whole_deadline < deadline
        if whole_deadline is not None:
            deadline = min(deadline, whole_deadline)
        pending = memoryview(frame(message, arrays))
        reader = FrameReader()
        tail, printed = bytearray(), 0
        sel = selectors.DefaultSelector()
        sel.register(self._fds["replies"], selectors.EVENT_READ, "replies")
        sel.register(self._fds["output"], selectors.EVENT_READ, "output")
        sel.register(self._fds["requests"], selectors.EVENT_WRITE, "requests")

        def lost(kind: str, text: str) -> Outcome:
            self.close()
            return Outcome(kind, None, text, time.perf_counter() - start, bytes(tail).decode(errors="replace"))

        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    if whole:
                        return lost(
                            "timeout",
                            f"stopped: the whole check may take at most {self.total:g} s (the import limit "
                            "plus every case's time limit) and that time is up",
                        )
                    return lost(
                        "timeout",
                        f"timed out: {doing} the submission took more than {shown:g} s "
                        "(an infinite loop?); it was stopped",
                    )
                for key, _ in sel.select(timeout=min(left, 1.0)):
                    if key.data == "requests":
                        try:
                            pending = pending[os.write(self._fds["requests"], pending) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:  # the worker is gone: its reply pipe says how
                            pending = pending[:0]
                        if not pending:
                            sel.unregister(self._fds["requests"])
                        continue
                    try:
                        data = os.read(key.fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if key.data == "output":
                        if not data:
                            sel.unregister(key.fd)
                            continue
                        printed += len(data)
                        tail = (tail + data)[-_TAIL:]
                        if printed > self.output_limit:
                            return lost(
                                "output",
                                f"printed more than {self.output_limit:,} bytes while "
                                f"{doing} the submission; it was stopped (remove the prints)",
                            )
                        continue
                    if not data:
                        return lost("crash", self._death(doing))
                    reader.feed(data)
                    reply = reader.next()
                    if reply is not None:
                        return self._outcome(reply, start, tail)
        except WireError as err:
            return lost("wire", f"the submission's process sent an unreadable reply ({err})")
        except Exception as err:  # never the grader: whatever the bytes were, this case fails in one line
            return lost("wire", f"the submission's process sent an unreadable reply ({type(err).__name__})")
        finally:
            sel.close()

    def _death(self, doing: str) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            return f"the submission's process stopped answering while {doing} it"
        if code < 0:
            return f"the submission's process was killed by {_signal_name(code)} while {doing} it"
        return (
            f"the submission's process exited with status {code} while {doing} it (os._exit, or a crash "
            "in native code?); a submission cannot end the check early"
        )

    def _outcome(self, reply, start: float, tail: bytearray) -> Outcome:
        message, arrays = reply
        seconds = time.perf_counter() - start
        output = bytes(tail).decode(errors="replace")
        if message.get("ok") is True:
            value = dict(message)
            if "result" in message:
                try:
                    value["result"] = decode(message["result"], arrays)
                except WireError as err:
                    return Outcome("wire", None, f"the submission's reply could not be read ({err})", seconds, output)
            return Outcome("ok", value, None, seconds, output)
        kinds = ("raised", "exit", "contract", "load", "wire", "timeout", "crash", "autodiff")
        kind = message.get("kind") if message.get("kind") in kinds else "wire"
        return Outcome(kind, None, str(message.get("error", "failed"))[:2000], seconds, output)
