"""More hostile attacks for tests/test_sandbox_attacks_more.py: ``loss(params, X, y, reg)`` runs the attack X.

Every attack returns what it found (or raises); the tests read the outcome. Never imported by the
test process itself: it runs only in the grader's worker, inside the sandbox.
"""

import json
import os
import struct


def _try(action):
    try:
        return action()
    except OSError as err:
        return type(err).__name__


def _read(path):
    with open(path, "rb") as f:
        return f.read(100).decode(errors="replace")


def _write(path):
    with open(path, "w") as f:
        f.write("forged")
    return "written"


def _pipes_for_writing():
    import fcntl

    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                    found.append(fd)
        except OSError:
            pass
    return found


def loss(params, X, y, reg):
    attack = X
    if attack == "symlink-out":  # y: a file of the grader's; read and write it through a link
        os.symlink(y, "tmp/link")
        os.symlink("/etc/passwd", "tmp/passwd")
        return {
            "read": _try(lambda: _read("tmp/link")),
            "write": _try(lambda: _write("tmp/link")),
            "passwd": _try(lambda: len(_read("tmp/passwd"))),
        }
    if attack == "symlink-swap":  # y: [victim folder, secret]; swap files the grader may read or remove
        victim, secret = y
        swapped = []
        for name in os.listdir("submission"):
            path = os.path.join("submission", name)
            if os.path.isfile(path) and not os.path.islink(path):
                swapped.append(_try(lambda p=path: (os.unlink(p), os.symlink(secret, p), "swapped")[-1]))
        os.symlink(victim, "tmp/victim")  # a folder the grader removes: rmtree must not follow it
        os.symlink(victim, "victim")
        return swapped
    if attack == "raise":
        raise ValueError("the submission raised")
    if attack == "solution":  # y: the instructor's solution (a folder only the grader reads)
        return {"read": _try(lambda: _read(y)), "list": _try(lambda: os.listdir(os.path.dirname(y)))}
    if attack == "jax-cache":  # y: the grader's JAX compilation cache
        return {
            "env": os.environ.get("JAX_COMPILATION_CACHE_DIR"),
            "write": _try(lambda: _write(os.path.join(y, "forged-entry"))),
            "overwrite": _try(lambda: _write(os.path.join(y, "existing-entry"))),
        }
    if attack == "shm":  # y: a file name under /dev/shm
        with open(os.path.join("/dev/shm", y), "wb") as f:
            for _ in range(128):
                f.write(b"\0" * 2**20)
        return "written"
    if attack == "huge-frame":  # a well-formed frame whose header declares a 8 TB array
        spec = {"dtype": "<f8", "shape": [10**12], "nbytes": 8 * 10**12}
        header = json.dumps({"message": {"ok": True, "result": ["a", 0]}, "arrays": [spec]}).encode()
        forged = struct.pack(">Q", len(header)) + header + b"\0" * 4096
        written = []
        for fd in _pipes_for_writing():
            written.append(_try(lambda fd=fd: (os.write(fd, forged), fd)[-1]))
        return written
    return None
