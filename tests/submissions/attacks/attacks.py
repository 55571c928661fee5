"""A hostile submission for the sandbox's tests: ``loss(params, X, y, reg)`` runs the attack named by X.

Every attack returns what it found (or raises); the tests read the outcome. Never imported by the
test process itself: it runs only in the grader's worker, inside the sandbox.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import autograd  # the stand-in next to this file: importing is no fault

_square_grad = autograd.grad(lambda w: w * w)  # built at import time: no fault either


def _detached(path):
    """A process in a session of its own (setsid) that appends to ``path`` for ever."""
    code = f"import time\nwhile True:\n    open({path!r}, 'a').write('x')\n    time.sleep(0.05)\n"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True).pid


def loss(params, X, y, reg):
    attack = X
    if attack == "whoami":
        return {"uid": os.getuid(), "cwd": os.getcwd(), "files": sorted(os.listdir(".")), "env": sorted(os.environ)}
    if attack == "detach":  # a process that outlives the case (and the grader, if it could)
        return _detached(y)
    if attack == "count":  # how many processes of the sandbox are alive besides this one
        return len([p for p in os.listdir("/proc") if p.isdigit()])
    if attack == "grader":  # the grader's memory and environment, by its process id
        found = []
        for name in ("environ", "mem", "cmdline"):
            try:
                with open(f"/proc/{int(y)}/{name}", "rb") as f:
                    found.append((name, len(f.read(100))))
            except OSError as err:
                found.append((name, type(err).__name__))
        return found
    if attack == "signal":  # stop the grader
        try:
            os.kill(int(y), signal.SIGSTOP)
            return "stopped"
        except OSError as err:
            return type(err).__name__
    if attack == "memory":
        return len(bytearray(16 * 2**30))
    if attack == "disk":
        with open("big.bin", "wb") as f:
            f.write(b"\0" * (200 * 2**20))
        return "written"
    if attack == "shm":
        with open("/dev/shm/fnnjax-attack.bin", "wb") as f:
            f.write(b"\0" * (200 * 2**20))
        return "written"
    if attack == "forkbomb":
        children = 0
        for _ in range(1000):
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
            except OSError:
                break
        return children
    if attack == "network":
        try:
            socket.create_connection(("127.0.0.1", int(y)), timeout=2).close()
            return "connected"
        except OSError as err:
            return type(err).__name__
    if attack == "write":  # a file of the grader's (its results, its installation)
        try:
            with open(y, "w") as f:
                f.write("forged")
            return "written"
        except OSError as err:
            return type(err).__name__
    if attack == "sleep":
        time.sleep(60)
    if attack == "autodiff":
        import jax
        import jax.numpy as jnp

        value, grad = jax.value_and_grad(lambda w: jnp.sum(w**2))(jnp.ones(3))
        return float(value)
    if attack == "autograd":  # calling it while a case runs is
        return _square_grad(3.0)
    if attack == "float16":
        import numpy as np

        return 1.0, {"W1": np.zeros((2, 2), np.float16)}
    return None
