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

from ._calls import CallError, call, prepare
from ._submission import LoadError, Target, describe, import_target, location, one_line
from ._wire import FrameReader, WireError, decode, encode, frame

__all__ = ["BOOTSTRAP", "serve"]

BOOTSTRAP = (
    "import sys, types\n"
    "package = types.ModuleType('fnnjax_grader')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['fnnjax_grader'] = package\n"
    "from fnnjax_grader._worker import serve\n"
    "serve(int(sys.argv[2]), int(sys.argv[3]))\n"
)
"""The ``python -c`` program that starts a worker (arguments: the grader's folder, the two descriptors)."""


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


def serve(requests: int, replies: int) -> None:
    """Answer the grader's requests until it closes the requests pipe.

    Requests: ``{"op": "load", "target": Target fields}`` (import the submission, reply with
    :func:`fnnjax.verify.grader._submission.describe`), ``{"op": "prepare", "form": ...}`` (import what the form
    needs), ``{"op": "call", "form": ..., "entry": NAME or None, "request": encoded value}`` (reply
    with the encoded :func:`fnnjax.verify.grader._calls.call` result).
    """
    sys.path[:] = [p for p in sys.path if p != ""]  # python -c put the current directory first
    reader = FrameReader()
    module, files = None, ()
    while True:
        try:
            received = _read(requests, reader)
        except WireError:
            return
        if received is None:
            return
        message, arrays = received
        if message.get("op") == "load":
            try:
                target = Target(**message["target"])
                module = import_target(target)
            except LoadError as err:
                _write(replies, frame({"ok": False, "kind": "load", "error": str(err)}))
                continue
            path = getattr(module, "__file__", None)
            if path:
                files = (path, str(Path(path).resolve()))
                sys.path.insert(0, str(Path(path).resolve().parent))  # for imports made while it runs
            _write(replies, frame({"ok": True, "description": describe(module)}))
            continue
        if message.get("op") == "prepare":
            try:
                prepare(message["form"])
                reply = frame({"ok": True})
            except BaseException as err:
                reply = frame(_failure(err, files))
            _write(replies, reply)
            continue
        try:
            entry = module if message["entry"] is None else getattr(module, message["entry"])
            result = call(message["form"], entry, decode(message["request"], arrays))
            tree, out = encode(result)
            reply = frame({"ok": True, "result": tree}, out)
        except WireError as err:
            reply = frame({"ok": False, "kind": "wire", "error": str(err)})
        except BaseException as err:  # the submission's own exception, SystemExit included
            reply = frame(_failure(err, files))
        _write(replies, reply)
