"""More rows of docs/how-to/grader-security.md's attack table, each run through the grader's real path.

The hostile submissions are tests/submissions/attacks/attacks_more.py (run in the grader's worker,
inside the layers this machine allows, as tests/test_sandbox_attacks.py does), injection.py,
monkeypatch.py and hardcoded.py (run through ``fnnjax verify --backprop --gradescope``). An attack
whose only defence is a layer not in force here is skipped, never run unguarded.
"""

import json
import os
import resource
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from fnnjax.cli import main
from fnnjax.verify.grader._isolation import Worker
from fnnjax.verify.grader._sandbox import Limits, Sandbox
from fnnjax.verify.grader._submission import parse_target

HERE = Path(__file__).resolve().parent / "submissions" / "attacks"
ATTACKS = HERE / "attacks_more.py"
LIMITS = Limits(memory=2 * 2**30, file_size=16 * 2**20, processes=64)
CACHE_ENTRY = b"a compiled executable"


def start(timeout=3.0, **kwargs) -> Worker:
    sandbox = Sandbox(limits=LIMITS, **kwargs)
    worker = Worker(parse_target(f"{ATTACKS}:loss"), timeout=timeout, load_timeout=20, sandbox=sandbox)
    loaded = worker.load()
    assert loaded.ok, loaded.message
    return worker


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """The grader's JAX compilation cache: a folder of the grader's, named in the grader's environment."""
    folder = tmp_path_factory.mktemp("jax-cache")
    (folder / "existing-entry").write_bytes(CACHE_ENTRY)
    os.chmod(folder, 0o755)
    os.chmod(tmp_path_factory.getbasetemp(), 0o755)
    return folder


@pytest.fixture(scope="module")
def worker(jax_cache):
    before = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(jax_cache)
    try:
        w = start()
    finally:
        if before is None:
            del os.environ["JAX_COMPILATION_CACHE_DIR"]
        else:
            os.environ["JAX_COMPILATION_CACHE_DIR"] = before
    yield w
    w.close()
    w.sandbox.close()


def attack(worker, name, arg: object = 0.0):
    return worker.call("cs231n-function", "loss", {"params": {}, "X": name, "y": arg, "reg": 0.0})


def returned(out):
    assert out.ok, out.message
    return out.value["result"]["returned"]


def has(worker, *layers):
    summary = worker.sandbox.summary().split("; not available")[0]
    return any(layer in summary for layer in layers)


def private(folder: Path, name: str, text: str) -> Path:
    """A file only the grader (root) may read: mode 0600 in a folder of mode 0700."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    os.chmod(path, 0o600)
    os.chmod(folder, 0o700)
    return path


def gradescope(path: Path, out: Path, *options: str) -> dict:
    status = main(["verify", "--backprop", str(path), "--gradescope", str(out), *options])
    assert status in (0, 1)
    return json.loads(out.read_text())  # valid JSON, whatever the submission did


# ----------------------------------------------------------------------------------------------
# 1. markup or CSV injection through exception text


def test_markup_and_csv_injection_in_exception_text_is_one_line_of_plain_text(tmp_path, capsys):
    data = gradescope(HERE / "injection.py", tmp_path / "results.json")
    capsys.readouterr()
    assert data["score"] == 0 and data["tests"] and all(t["status"] == "failed" for t in data["tests"])
    assert data.get("output_format", "text") == "text"
    for test in data["tests"]:
        assert test.get("output_format", "text") == "text"
        lines = [line for line in test["output"].splitlines() if "<script>" in line]
        assert len(lines) == 1, test["output"]
        line = lines[0]  # one line: what followed the message's first line break is left out, never a new line
        assert "=HYPERLINK(" in line and "end-of-first-line" in line, line
        assert "second line" not in test["output"] and "cleared screen" not in test["output"]
        assert not any(row.lstrip().startswith(("=", "+", "@")) for row in test["output"].splitlines())
        assert len(test["output"]) <= 4000
    assert "second line" not in data["output"] and "cleared screen" not in data["output"]


# ----------------------------------------------------------------------------------------------
# 2. sys.modules and NumPy monkeypatching


def test_monkeypatching_numpy_builtins_and_sys_modules_changes_only_the_worker(tmp_path, capsys):
    import builtins

    import fnnjax

    allclose, testing, abs_ = np.allclose, np.testing, builtins.abs
    data = gradescope(HERE / "monkeypatch.py", tmp_path / "results.json")
    capsys.readouterr()
    assert data["score"] == 0 and all(t["status"] == "failed" for t in data["tests"])  # dW doubled still fails
    assert any("dW" in t["output"] for t in data["tests"])
    assert np.allclose is allclose and np.testing is testing and builtins.abs is abs_
    assert sys.modules["fnnjax"] is fnnjax and not np.allclose(1.0, 2.0)


# ----------------------------------------------------------------------------------------------
# 3. symbolic links out of the working folder, symlink swaps


def test_a_symlink_out_of_the_working_folder_reads_and_writes_nothing_of_the_graders(worker, tmp_path):
    if not has(worker, "user "):
        pytest.skip("the submission runs as the grader's own user here: a link reaches what the grader can")
    results = private(tmp_path / "results", "results.json", '{"score": 0}')
    found = returned(attack(worker, "symlink-out", str(results)))
    assert found["read"] in ("PermissionError", "FileNotFoundError"), found
    assert found["write"] in ("PermissionError", "FileNotFoundError"), found
    assert results.read_text() == '{"score": 0}' and not (tmp_path / "results" / "link").exists()


def test_a_symlink_swap_leaves_the_graders_files_and_verdicts_alone(jax_cache, tmp_path):
    w = start()
    try:
        if not has(w, "user "):
            pytest.skip("the submission runs as the grader's own user here")
        secret = private(tmp_path / "secret", "solution.py", "SECRET = 'the instructor solution'\n")
        victim = tmp_path / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("keep")
        swapped = returned(attack(w, "symlink-swap", [str(victim), str(secret)]))
        assert swapped and all(s in ("swapped", "PermissionError") for s in swapped), swapped
        after = attack(w, "raise")  # a later case: judged as before, quoting nothing through the links
        assert not after.ok and "the submission raised" in after.message, after.message
        assert "instructor solution" not in after.message
        assert returned(attack(w, "jax-cache", str(jax_cache)))["env"] is None
    finally:
        w.close()
        w.sandbox.close()
    assert (victim / "keep.txt").read_text() == "keep"  # rmtree removed the links, not what they point to
    assert secret.read_text() == "SECRET = 'the instructor solution'\n"


# ----------------------------------------------------------------------------------------------
# 4. other submissions' files, the instructor's solution


def test_the_instructors_solution_in_a_private_folder_is_not_readable(worker, tmp_path):
    if os.geteuid() != 0 or not has(worker, "user "):
        pytest.skip("only meaningful as root with the user layer (the submission runs as another uid)")
    solution = private(tmp_path / "source", "solution.py", "SECRET = 1\n")
    found = returned(attack(worker, "solution", str(solution)))
    assert found["read"] in ("PermissionError", "FileNotFoundError"), found
    assert found["list"] in ("PermissionError", "FileNotFoundError"), found


# ----------------------------------------------------------------------------------------------
# 5. the JAX compilation cache


def test_the_jax_compilation_cache_is_neither_named_nor_writable(worker, jax_cache):
    before = sorted((p.name, p.read_bytes()) for p in jax_cache.iterdir())
    found = returned(attack(worker, "jax-cache", str(jax_cache)))
    assert found["env"] is None, found  # the cache variable is not in the worker's environment
    if not has(worker, "user "):
        pytest.skip("the submission runs as the grader's own user here: only the environment layer holds")
    assert found["write"] in ("PermissionError", "FileNotFoundError", "OSError"), found
    assert found["overwrite"] in ("PermissionError", "FileNotFoundError", "OSError"), found
    assert sorted((p.name, p.read_bytes()) for p in jax_cache.iterdir()) == before


# ----------------------------------------------------------------------------------------------
# 6. a /dev/shm bomb


def test_a_dev_shm_bomb_is_stopped_and_leaves_nothing_behind():
    """The file-size limit stops the write; what is left in /dev/shm (shared even with namespaces) is
    removed when the sandbox closes, with everything else its own user owns in the shared folders."""
    name = f"fnnjax-more-{uuid.uuid4().hex}.bin"
    w = start()
    if w.sandbox.uid is None:
        w.close()
        w.sandbox.close()
        pytest.skip("no user of its own here: leftovers are removed by owner, so only with the user layer")
    try:
        out = attack(w, "shm", name)
        assert not out.ok, out  # File too large (or no /dev/shm): the case fails
        assert "\n" not in out.message.strip()
        leftover = Path("/dev/shm") / name
        size = leftover.stat().st_size if leftover.exists() else 0
        assert size <= LIMITS.file_size
    finally:
        w.close()
        w.sandbox.close()
    try:
        assert not leftover.exists(), f"{leftover} ({size} bytes) is left in /dev/shm after the run"
    finally:
        if leftover.exists():
            leftover.unlink()


# ----------------------------------------------------------------------------------------------
# 7. a well-formed reply that declares a huge array


def test_a_reply_declaring_a_huge_array_fails_in_one_line_and_is_never_allocated(worker):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    out = attack(worker, "huge-frame")
    assert not out.ok and out.kind == "wire", out
    assert out.message and "\n" not in out.message.strip(), out.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 256 * 1024  # less than 256 MiB more
    assert returned(attack(worker, "jax-cache", "/nonexistent"))["env"] is None  # the worker lives on


# ----------------------------------------------------------------------------------------------
# 8. hard-coded answers


def test_hard_coded_answers_for_seed_0_fail_under_a_fresh_gradescope_seed(tmp_path, capsys):
    path = HERE / "hardcoded.py"
    fixed = gradescope(path, tmp_path / "seed0.json", "--seed", "0")
    full = sum(t["max_score"] for t in fixed["tests"])
    assert fixed["extra_data"]["seed"] == 0 and fixed["score"] == pytest.approx(full)  # they did match seed 0
    fresh = gradescope(path, tmp_path / "results.json")
    capsys.readouterr()
    assert fresh["extra_data"]["seed"] != 0
    assert fresh["score"] < sum(t["max_score"] for t in fresh["tests"])
    assert any(t["status"] == "failed" for t in fresh["tests"])
