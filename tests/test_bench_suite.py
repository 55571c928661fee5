"""benchmarks/suite.py: the steps' command lines, the time limit (a step that runs out of time is
killed and recorded, the rest of the budget goes on), the archive, and option errors."""

import json
import tarfile

from fnnjax.benchmarks import suite


def test_step_commands_carry_the_common_options():
    cmds = suite.step_commands("/tmp/r", quick=False, tag="gpu", seeds="0,1")
    assert list(cmds) == list(suite.STEPS)
    for name, argv in cmds.items():
        assert argv[0].startswith("fnnjax.benchmarks.") and "--quick" not in argv
        tag = "gpu_cmdbuf_while" if name == "train_while" else "gpu"
        assert argv[1:5] == ["--out", "/tmp/r", "--tag", tag]
    assert cmds["train"][-4:] == ["--unroll", "1,4,16,64", "--full-run", "50"]
    assert cmds["reference"][-2:] == ["--seeds", "0,1"]
    assert cmds["time_to_accuracy"] == ["fnnjax.benchmarks.time_to_accuracy", "--out", "/tmp/r", "--tag", "gpu"]
    assert cmds["train_while"][0] == "fnnjax.benchmarks.train" and "WHILE" in suite.STEP_ENV["train_while"]["XLA_FLAGS"]
    quick = suite.step_commands("/tmp/r", quick=True, tag=None, seeds="0", platform="cpu")
    assert all("--quick" in argv for argv in quick.values())
    assert all("--tag" not in argv for name, argv in quick.items() if name != "train_while")
    assert quick["train_while"][3:5] == ["--tag", "cpu_cmdbuf_while"]
    assert quick["train"][-2:] == ["--samples", "4096"]


def test_a_step_past_its_limit_is_killed_and_the_budget_stops_the_rest(tmp_path, capsys):
    archive = tmp_path / "back" / "gpu_results.tar.gz"
    # 3 s cannot cover importing jax and compiling: backprop times out; modes finds no budget left
    status = suite.main(
        [
            "--out",
            str(tmp_path / "r"),
            "--archive",
            str(archive),
            "--budget-s",
            "3",
            "--steps",
            "modes,backprop",
            "--tag",
            "t",
        ]
    )
    assert status == 1
    summary = json.loads((tmp_path / "r" / "suite_t.json").read_text())
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == ["backprop", "modes"]  # the suite's order, not the option's
    assert steps["backprop"]["status"] == "timed out after 3 s" and steps["backprop"]["exit_code"] is None
    assert steps["backprop"]["seconds"] < 30
    assert steps["modes"]["status"] == "not run: the budget is spent"
    with tarfile.open(archive) as tar:
        assert {"suite_t.json", "suite_backprop.log"} <= set(tar.getnames())
    out = capsys.readouterr().out
    assert "- backprop: timed out after 3 s" in out and "- modes: not run: the budget is spent" in out


def test_suite_rejects_bad_options(tmp_path, capsys):
    assert suite.main(["--out", str(tmp_path), "--steps", "train,nope"]) == 2
    assert "unknown --steps nope; valid steps are train, time_to_accuracy, backprop" in capsys.readouterr().err
    assert suite.main(["--out", str(tmp_path), "--budget-s", "0"]) == 2
    assert "--budget-s 0.0 must be positive" in capsys.readouterr().err
