"""benchmarks/time_to_accuracy.py: the clock, the errors, and a quick run on a learnable random
look-alike (the real data set is never needed). Timings are results, never asserted."""

import json
import time

import jax
import pytest

from fnnjax import cli
from fnnjax.benchmarks import time_to_accuracy as tta


def test_the_clock_records_the_first_epoch_at_the_target():
    clock = tta._Clock(0.89, time.perf_counter())
    for acc in (0.85, 0.891, 0.889, 0.9):
        clock.tick(acc)
    r = clock.record()
    assert r["epoch_reached"] == 2 and r["final_test_acc"] == 0.9 and r["best_test_acc"] == 0.9
    assert 0 <= r["seconds_to_target"] <= r["total_s"] and len(r["curve"]) == 4
    never = tta._Clock(0.99, time.perf_counter())
    never.tick(0.5)
    assert never.record()["seconds_to_target"] is None and never.record()["epoch_reached"] is None


def test_it_needs_the_real_data_and_known_names(monkeypatch, capsys):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    assert cli.main(["bench", "time_to_accuracy"]) == 2
    assert "needs the real data set: pass --data-dir or set $FNNJAX_DATA" in capsys.readouterr().err
    assert cli.main(["bench", "time_to_accuracy", "--quick", "--preset", "slow"]) == 2
    assert "unknown --preset 'slow'; valid presets are notes, fast" in capsys.readouterr().err
    assert cli.main(["bench", "time_to_accuracy", "--quick", "--methods", "keras"]) == 2
    assert "unknown --methods keras" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_fit_and_the_command_train_the_same_run(tmp_path, monkeypatch):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    with jax.numpy_dtype_promotion("standard"):  # optax's adam and schedules mix Python floats and int32
        assert (
            cli.main(
                [
                    "bench",
                    "time_to_accuracy",
                    "--quick",
                    "--out",
                    str(tmp_path),
                    "--torch-threads",
                    "1",
                    "--methods",
                    "fnnjax_fit,fnnjax_train,torch_loop",
                ]
            )
            == 0
        )
    data = json.loads((tmp_path / "time_to_accuracy_cpu_quick.json").read_text())
    assert data["preset"] == "fast" and data["epochs"] == 2 and data["seeds"] == [0]
    runs = data["runs"]
    # same init, recipe and keys: fnnjax.fit and the fnnjax train command end with the same model
    assert runs["fnnjax_fit"][0]["final_test_acc"] == runs["fnnjax_train"][0]["final_test_acc"]
    for m, rs in runs.items():
        assert rs[0]["final_test_acc"] > 0.5, m  # the look-alike is learnable in two epochs
        assert len(rs[0]["curve"]) == 2
    assert set(data["targets"]) == {"fnnjax_fit", "fnnjax_train"}
    assert data["targets"]["fnnjax_fit"]["accuracy_met"] is True
    if "torch_loop" in runs:
        assert "speedup_vs_torch" in data["summary"]["fnnjax_fit"]
    md = (tmp_path / "time_to_accuracy_cpu_quick.md").read_text()
    assert "### Targets" in md and "fnnjax-bench" not in md and "/tmp" not in md
    assert (tmp_path / "time_to_accuracy_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"
