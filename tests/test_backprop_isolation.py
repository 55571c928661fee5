"""A submission runs in its own process: one that loops forever, raises, exits, prints megabytes or
changes its inputs fails the case it is in (never passes, never hangs the grader, never touches the
other cases); Gradescope's results.json (every field, scores that add up, a file even when nothing
could be checked); the command line's options and exit statuses; the ready run_autograder script."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fnnjax.cli import main
from fnnjax.verify.grader._conventions import CONVENTIONS
from fnnjax.verify.grader._gradescope import split_points
from fnnjax.verify.grader._user_backprop import SubmissionError, check_user_backprop

ROOT = Path(__file__).resolve().parent.parent
CS231N = ROOT / "examples" / "courses" / "cs231n"
TIMEOUT = 2.0

_cache = {}


def submission(tmp_path_factory, name, insert):
    """cs231n's function form with lines inserted at the top of fc_net_loss."""
    dest = tmp_path_factory.mktemp(name)
    shutil.copytree(CS231N, dest, dirs_exist_ok=True)
    path = dest / "fc_loss.py"
    anchor = "    L = len(params) // 2\n"
    path.write_text(path.read_text().replace(anchor, insert + anchor))
    return str(path)


def checked(tmp_path_factory, name, insert):
    if name not in _cache:
        start = time.perf_counter()
        report = check_user_backprop(submission(tmp_path_factory, name, insert), timeout=TIMEOUT)
        _cache[name] = report, time.perf_counter() - start
    return _cache[name]


# N, the batch size, tells the cases apart: 7, 5, 9, 11, 5, 7
MISBEHAVIOURS = [
    (
        "loops_forever",
        "    if X.shape[0] == 5:\n        while True:\n            pass\n",
        "timeout",
        r"timed out: running the submission took more than 2 s \(an infinite loop\?\); it was stopped",
    ),
    (
        "raises",
        "    if X.shape[0] == 9:\n        raise RuntimeError('not done yet')\n",
        "raised",
        r"RuntimeError: not done yet \(.*fc_loss.py line \d+\)",
    ),
    (
        "calls_sys_exit",
        "    if X.shape[0] == 11:\n        import sys\n        sys.exit(0)\n",
        "exit",
        r"your code called sys.exit\(0\) \(.*fc_loss.py line \d+\); a submission cannot end the check early",
    ),
    (
        "calls_os_exit",
        "    if X.shape[0] == 11:\n        import os\n        os._exit(0)\n",
        "crash",
        r"the submission's process exited with status 0 while running it \(os._exit, or a crash in native code\?\)",
    ),
    (
        "prints_megabytes",
        "    if X.shape[0] == 9:\n        print('x' * 3_000_000)\n",
        "output",
        r"printed more than 1,000,000 bytes while running the submission; it was stopped",
    ),
]


@pytest.mark.parametrize("name, insert, kind, message", MISBEHAVIOURS, ids=[m[0] for m in MISBEHAVIOURS])
def test_a_misbehaving_submission_fails_only_the_cases_it_misbehaves_in(tmp_path_factory, name, insert, kind, message):
    import re

    report, seconds = checked(tmp_path_factory, name, insert)
    n = {"loops_forever": 5, "raises": 9, "calls_sys_exit": 11, "calls_os_exit": 11, "prints_megabytes": 9}[name]
    assert [c.passed for c in report.cases] == [c.case.batch != n for c in report.cases], report.render()
    for c in report.cases:
        if not c.passed:
            assert c.kind == kind and re.search(message, c.error), c.error
    assert not report.passed
    if name == "loops_forever":  # two cases time out: each costs TIMEOUT, no re-import, never forever
        assert sum(c.seconds for c in report.cases) < 2 * TIMEOUT + 5
        assert "TIMEOUT" in report.render()


def test_a_submission_that_changes_its_inputs_in_place_fails(tmp_path_factory):
    report, _ = checked(tmp_path_factory, "modifies_inputs", "    params['W1'][0, 0] += 1e-5\n")
    assert not any(c.passed for c in report.cases)
    note = report.cases[0].notes[0]
    assert note.startswith(
        "modified its inputs in place: params['W1'] (1 of 40 elements, by up to 1.00e-05); work on copies"
    )
    helper = "    W = params['W1']\n    old = W[0, 0]\n    W[0, 0] = old + 1e-5\n    W[0, 0] = old\n"
    restored, _ = checked(tmp_path_factory, "restores_inputs", helper)  # cs231n's helper, restoring: fine
    assert restored.passed, restored.render()


def test_an_import_that_hangs_or_fails_is_reported_in_one_line(tmp_path):
    hangs = tmp_path / "hangs.py"
    hangs.write_text("while True:\n    pass\n")
    with pytest.raises(SubmissionError, match=r"timed out: importing the submission took more than 1 s"):
        check_user_backprop(str(hangs), timeout=1, load_timeout=1)
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(SubmissionError, match=r"importing .*exits.py failed: SystemExit: 3 \(.*exits.py line 2\)"):
        check_user_backprop(str(exits))
    with pytest.raises(SubmissionError, match=r"cannot load '.*missing.py': no such file"):
        check_user_backprop(str(tmp_path / "missing.py"))


# ----------------------------------------------------------------------------------------------
# Gradescope and the command line


def results_of(path):
    data = json.loads(Path(path).read_text())
    for key in ("score", "execution_time", "output", "tests"):
        assert key in data
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "status", "visibility"}
        assert t["status"] in ("passed", "failed") and t["output"]
        if t["max_score"] > 0:  # an optional case is worth no points either way
            assert (t["score"] == t["max_score"]) == (t["status"] == "passed")
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]), abs=1e-9)
    return data


def test_gradescope_results_for_a_mistake_and_scores_that_add_up(tmp_path, capsys):
    wrong = tmp_path / "wrong"
    shutil.copytree(CS231N, wrong)
    fc_net = wrong / "fc_net.py"
    fc_net.write_text(
        fc_net.read_text().replace('grads[f"W{l}"] += self.reg * W', 'grads[f"W{l}"] += 2 * self.reg * W')
    )
    out = tmp_path / "results.json"
    status = main(
        [
            "verify",
            "--backprop",
            str(fc_net),
            "--gradescope",
            str(out),
            "--points",
            "10",
            "--visibility",
            "after_due_date",
        ]
    )
    assert status == 1
    data = results_of(out)
    tests = data["tests"]
    graded = [t for t in tests if "[optional" not in t["name"]]  # an optional case scores no points
    assert [t["max_score"] for t in graded] == split_points(10, len(graded))
    assert sum(t["max_score"] for t in tests) == pytest.approx(10)
    # 2·reg·W where reg·W belongs: exactly the cases with reg ≠ 0 fail
    assert [t["status"] for t in tests] == [
        "passed" if t["name"].endswith("reg = 0") or "reg = 0 [" in t["name"] else "failed" for t in tests
    ]
    assert data["score"] == pytest.approx(sum(t["max_score"] for t in tests if t["status"] == "passed"))
    assert {t["visibility"] for t in tests} == {"after_due_date"}
    first = tests[0]
    assert first["name"] == "case 1: 5-8-4 (N = 7), reg = 0.3"
    assert "gains 2·reg·W where reg·W belongs: cs231n's loss is 0.5·reg·Σ W², so dW gains reg·W" in first["output"]
    assert "grads['W1']" in first["output"] and "expected" in first["output"]
    failing = sum(t["status"] == "failed" for t in tests)
    assert data["output"].startswith(f"{len(tests) - failing} of {len(tests)} cases pass (cs231n convention")
    scored = [t for t in tests if "[optional" not in t["name"]]
    scored_failing = sum(t["status"] == "failed" for t in scored)
    out = capsys.readouterr().out
    assert f"FAIL: {scored_failing} of {len(scored)} scored cases fail" in out
    assert out.rstrip("\n").splitlines()[-1] == f"wrote {tmp_path.resolve()}/: results.json"  # where, last


def test_gradescope_results_when_nothing_can_be_checked(tmp_path, capsys):
    broken = tmp_path / "fc_net.py"
    broken.write_text("class FullyConnectedNet:\n    def loss(self, X, y)\n        pass\n")
    out = tmp_path / "results.json"
    assert main(["verify", "--backprop", str(broken), "--convention", "cs231n", "--gradescope", str(out)]) == 1
    data = results_of(out)
    cases = CONVENTIONS["cs231n"].all_cases
    assert len(data["tests"]) == len(cases) and data["score"] == 0  # every case of the convention, each at 0
    assert all("SyntaxError" in t["output"] and "fc_net.py line 2" in t["output"] for t in data["tests"])
    assert data["output"].startswith("Your submission could not be checked: importing")
    unknown = tmp_path / "results2.json"
    assert main(["verify", "--backprop", str(tmp_path / "absent.py"), "--gradescope", str(unknown)]) == 1
    data = results_of(unknown)
    assert [t["name"] for t in data["tests"]] == ["submission"] and "no such file" in data["tests"][0]["output"]
    capsys.readouterr()
    assert main(["verify", "--backprop", str(broken)]) == 2  # without --gradescope: a usage error
    assert "SyntaxError" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backprop", "x.py", "--points", "5"], "--points sets the total of --gradescope; add --gradescope PATH"),
        (["--backprop", "x.py", "--timeout", "0"], "--timeout 0 must be a positive number of seconds"),
        (["--gradescope", "r.json"], "--gradescope applies to --backprop"),
        (["--backprop", "x.py", "--only", "F1"], "--only applies to the formula suite, not to --backprop"),
        (["--backprop", "student_backprop"], "--backprop expects MODULE:FUNCTION or path/to/file.py:FUNCTION"),
    ],
)
def test_command_line_usage_errors_exit_2(capsys, argv, message):
    assert main(["verify", *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_convention_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--backprop", "x.py", "--convention", "pytorch"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'pytorch'" in capsys.readouterr().err


def test_the_run_autograder_script_grades_a_submission(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    for name in ("fc_net.py", "layers.py"):
        shutil.copy(CS231N / name, root / "submission" / name)
    script = ROOT / "examples" / "gradescope" / "run_autograder"
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = results_of(root / "results" / "results.json")
    assert data["score"] == pytest.approx(100) and len(data["tests"]) == len(CONVENTIONS["cs231n"].all_cases)
    assert any((root / "jax-cache").iterdir())  # the compiled reference programs, for the next student


def test_the_instructors_page_shows_the_committed_run_autograder():
    page = (ROOT / "docs" / "how-to" / "grade-backprop.md").read_text()
    script = (ROOT / "examples" / "gradescope" / "run_autograder").read_text()
    assert f"```bash\n{script}```" in page


def test_the_parsers_lists_are_the_conventions_and_visibilities():
    from fnnjax.verify import cli
    from fnnjax.verify.grader._conventions import CONVENTIONS
    from fnnjax.verify.grader._gradescope import VISIBILITIES

    assert cli.CONVENTION_NAMES == tuple(CONVENTIONS) and cli.VISIBILITIES == VISIBILITIES


def test_a_grader_that_fails_still_writes_results(tmp_path, monkeypatch, capsys):
    import fnnjax.verify.grader._user_backprop

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(fnnjax.verify.grader._user_backprop, "check_user_backprop", broken)
    out = tmp_path / "results.json"
    assert main(["verify", "--backprop", str(CS231N / "fc_net.py"), "--gradescope", str(out)]) == 1
    data = results_of(out)
    assert data["score"] == 0 and "the grader failed (RuntimeError: out of memory)" in data["tests"][0]["output"]
    assert "RuntimeError: out of memory" in capsys.readouterr().err  # the traceback, for the instructor
