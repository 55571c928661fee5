"""The attack suite: a hostile submission (tests/submissions/attacks/attacks.py) against the sandbox.

Each attack runs in the grader's real worker, inside the layers this machine allows; an attack
whose only defence is a layer that is not in force here is skipped (never run unguarded: a fork
bomb runs only under a process cap, a signal to the grader only where it cannot reach it). The
same submission is run with namespaces forced off (the path a default Docker container takes).
"""

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from fnnjax.verify.grader._isolation import Worker
from fnnjax.verify.grader._sandbox import Limits, Sandbox
from fnnjax.verify.grader._submission import parse_target

ATTACKS = Path(__file__).resolve().parent / "submissions" / "attacks" / "attacks.py"
LIMITS = Limits(memory=2 * 2**30, file_size=16 * 2**20, processes=64)


def start(timeout=3.0, **kwargs) -> Worker:
    sandbox = Sandbox(limits=LIMITS, **kwargs)
    worker = Worker(parse_target(f"{ATTACKS}:loss"), timeout=timeout, load_timeout=20, sandbox=sandbox)
    loaded = worker.load()
    assert loaded.ok, loaded.message
    return worker


@pytest.fixture(scope="module", params=["default", "no-namespaces"])
def worker(request):
    w = start(namespaces=False) if request.param == "no-namespaces" else start()
    yield w
    w.close()
    w.sandbox.close()


def attack(worker, name, arg: object = 0.0):
    return worker.call("cs231n-function", "loss", {"params": {}, "X": name, "y": arg, "reg": 0.0})


def has(worker, *layers):
    summary = worker.sandbox.summary().split("; not available")[0]
    return any(layer in summary for layer in layers)


def test_a_clean_environment_and_an_empty_working_folder(worker, monkeypatch):
    out = attack(worker, "whoami")
    assert out.ok, out.message
    seen = out.value["result"]["returned"]
    assert seen["files"] == ["submission", "tmp"] and seen["cwd"] != os.getcwd()
    assert set(seen["env"]) <= set(worker.sandbox.environment()), seen["env"]  # nothing of the grader's
    if has(worker, "user "):
        assert seen["uid"] != 0


def test_nothing_a_case_starts_outlives_it(worker):
    if not has(worker, "user ", "namespaces", "cgroup"):
        pytest.skip("no layer that finds every process of the submission (not root, no namespaces)")
    marker = Path(str(worker.sandbox.work)) / "tmp" / "alive"
    out = attack(worker, "detach", str(marker))
    assert out.ok, out.message
    time.sleep(0.3)
    size = marker.stat().st_size if marker.exists() else 0
    time.sleep(0.3)
    assert (marker.stat().st_size if marker.exists() else 0) == size  # killed with its case
    again = attack(worker, "whoami")  # the worker that holds the submission lives on
    assert again.ok and worker.restarts == 0


def test_the_graders_memory_environment_and_signals_are_out_of_reach(worker):
    if not has(worker, "user ", "namespaces"):
        pytest.skip("the grader's own user and no namespaces: only a seccomp filter could stop this")
    out = attack(worker, "grader", float(os.getpid()))
    found = dict(out.value["result"]["returned"])
    assert not isinstance(found["environ"], int) and not isinstance(found["mem"], int), found
    stop = attack(worker, "signal", float(os.getpid()))
    assert stop.value["result"]["returned"] in ("ProcessLookupError", "PermissionError")


@pytest.mark.parametrize(
    "name, words",
    [
        ("memory", "MemoryError"),
        ("disk", "File too large"),
        ("shm", "File too large|No such file|Permission denied"),
    ],
)
def test_memory_disk_and_shm_bombs_fail_their_case(worker, name, words):
    import re

    out = attack(worker, name)
    assert not out.ok and out.kind in ("raised", "crash") and re.search(words, out.message), out.message
    for leftover in ("/dev/shm/fnnjax-attack.bin",):
        if os.path.exists(leftover):
            assert os.path.getsize(leftover) <= LIMITS.file_size
            os.unlink(leftover)


def test_a_fork_bomb_is_capped_and_cleaned_up(worker):
    if not has(worker, "user ", "cgroup"):
        pytest.skip("no process cap binds this user here (root without a sandbox user or a cgroup)")
    out = attack(worker, "forkbomb")
    assert out.ok and out.value["result"]["returned"] < LIMITS.processes, out
    assert attack(worker, "whoami").ok


def test_no_network(worker):
    if not has(worker, "namespaces", "system-call filter"):
        pytest.skip("no network namespace and no system-call filter here")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        out = attack(worker, "network", float(server.getsockname()[1]))
    assert out.value["result"]["returned"] in ("PermissionError", "OSError", "ConnectionRefusedError"), out


def test_the_graders_files_are_not_writable(worker, tmp_path):
    if not has(worker, "user "):
        pytest.skip("the submission runs as the grader's own user here")
    target = tmp_path / "results.json"
    target.write_text("{}")
    out = attack(worker, "write", str(target))
    assert out.value["result"]["returned"] in ("PermissionError",) and target.read_text() == "{}"


def test_a_case_that_sleeps_costs_its_time_limit_not_a_restart(worker):
    start_ = time.perf_counter()
    out = attack(worker, "sleep")
    assert out.kind == "timeout" and "took more than 3 s" in out.message
    assert time.perf_counter() - start_ < 3 + 3
    assert attack(worker, "whoami").ok and worker.restarts == 0  # no re-import


def test_a_total_limit_bounds_the_run():
    w = start(timeout=1)
    try:
        w.total = w.spent + 1.5
        first = attack(w, "sleep")
        second = attack(w, "sleep")
        assert first.kind == "timeout" and second.kind == "timeout"
        assert "the whole check may take at most" in str(second.message)
    finally:
        w.close()
        w.sandbox.close()


def test_automatic_differentiation_fails_its_case(worker):
    out = attack(worker, "autograd")  # a function autograd.grad built at import, called in the case
    assert out.kind == "autodiff" and out.message == (
        "uses automatic differentiation (autograd.grad): the assignment asks for a backward pass written by hand"
    )
    assert attack(worker, "whoami").ok  # the next case is judged as usual


def test_jax_value_and_grad_fails_its_case_and_allow_autodiff_lets_it_pass():
    w = start(timeout=60)
    try:
        out = attack(w, "autodiff")
    finally:
        w.close()
        w.sandbox.close()
    assert out.kind == "autodiff" and out.message == (
        "uses automatic differentiation (jax.value_and_grad): the assignment asks for a backward pass written by hand"
    )
    w = start(allow_autodiff=True)
    try:
        assert attack(w, "autograd").ok
    finally:
        w.close()
        w.sandbox.close()


def test_nothing_is_left_after_the_worker_closes():
    w = start()
    if not has(w, "user ", "namespaces", "cgroup"):
        w.close()
        w.sandbox.close()
        pytest.skip("no layer that finds every process of the submission")
    marker = Path(str(w.sandbox.work)) / "tmp" / "alive"
    assert attack(w, "detach", str(marker)).ok
    folder = w.sandbox.folder
    w.close()
    w.sandbox.close()
    assert folder is not None and not folder.exists()
    if w.sandbox.uid is not None:
        from fnnjax.verify.grader._sandbox import processes_of

        assert processes_of(w.sandbox.uid) == []
    assert signal.SIGKILL  # (the marker's folder is gone with the sandbox)


DOCKER_PATH = r"""
import json, os, sys, time
from pathlib import Path
from fnnjax.verify.grader._isolation import Worker
from fnnjax.verify.grader._sandbox import Limits, Sandbox, _dead, processes_of
from fnnjax.verify.grader._submission import parse_target

grader, results = int(sys.argv[2]), sys.argv[3]
sandbox = Sandbox(namespaces=False, cgroup=False, limits=Limits(memory=2 * 2**30, processes=64))
w = Worker(parse_target(sys.argv[1] + ":loss"), timeout=3, load_timeout=20, sandbox=sandbox)
out = {"loaded": w.load().ok, "summary": sandbox.summary()}
def attack(name, arg=0.0):
    o = w.call("cs231n-function", "loss", {"params": {}, "X": name, "y": arg, "reg": 0.0})
    return o.value["result"]["returned"] if o.ok else [o.kind, o.message]
out["whoami"] = attack("whoami")["uid"]
out["grader"] = attack("grader", float(grader))
out["signal"] = attack("signal", float(grader))
out["write"] = attack("write", results)
out["network"] = attack("network", 9.0)
marker = Path(sandbox.work) / "tmp" / "alive"
attack("detach", str(marker))
time.sleep(0.3)
size = marker.stat().st_size if marker.exists() else 0
time.sleep(0.3)
out["detached_grew"] = (marker.stat().st_size if marker.exists() else 0) != size
out["forkbomb"] = attack("forkbomb")
uid = sandbox.uid
w.close()
sandbox.close()
out["left"] = [p for p in processes_of(uid) if not _dead(p)]  # zombies wait for PID 1 to reap them: dead
print(json.dumps(out))
"""


def test_without_namespaces_the_user_filter_and_limit_layers_hold_on_their_own(tmp_path):
    """The path of a default Docker container (namespaces refused), run as root: the grader runs in a
    mount namespace of its own only so that the sandbox user can read this machine's Python."""
    import json
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.skip("the user layer needs root")
    probe = Sandbox()
    probe.folder = tmp_path
    probe.prefix = ["unshare", "--mount"]
    probe._reveal()
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make this machine's Python readable by the sandbox user (no mount namespace)")
    results = tmp_path / "results.json"
    results.write_text("{}")
    os.chmod(tmp_path, 0o755)
    proc = subprocess.run(
        [*probe.prefix, sys.executable, "-c", DOCKER_PATH, str(ATTACKS), str(os.getpid()), str(results)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] and "user fnnjax-sandbox-" in out["summary"] and "not available: namespaces" in out["summary"]
    assert out["whoami"] != 0
    found = dict(out["grader"])
    assert found["environ"] == "PermissionError" and found["mem"] == "PermissionError", found
    assert out["signal"] == "PermissionError" and out["write"] == "PermissionError"
    assert out["network"] == "PermissionError"  # the system-call filter
    assert not out["detached_grew"] and out["left"] == []  # setsid did not escape the uid
    assert out["forkbomb"] < 64
    assert results.read_text() == "{}"


def test_a_float16_return_travels_as_float16_and_fails_in_one_line(worker):
    from fnnjax.verify.grader._user_backprop import _too_coarse

    out = attack(worker, "float16")
    assert out.ok
    assert str(_too_coarse(out.value["result"])).startswith("returned float16 arrays: the case hands out float64")
