"""benchmarks/train.py: a smoke run on a slice of random data (timings are results, never asserted)."""

import json

import numpy as np
import pytest

from fnnjax import cli
from fnnjax.benchmarks import train as bench


@pytest.mark.slow
def test_quick_train_benchmark_writes_results(tmp_path, monkeypatch):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    notes = ("fnnjax_backprop", "fnnjax_grad", "jax_plain", "torch_eager")  # the peers: test_bench_peers.py
    assert (
        cli.main(
            [
                "bench",
                "train",
                "--quick",
                "--samples",
                "600",
                "--out",
                str(tmp_path),
                "--torch-threads",
                "1",
                "--methods",
                ",".join(notes),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "train_cpu_quick.json").read_text())
    assert data["workload"]["samples"] == 600 and data["workload"]["timed_rounds"] == 3
    results = data["results"]
    methods = set(notes) if bench._torch_available() else set(notes) - {"torch_eager"}
    assert set(results) == methods
    for m, r in results.items():
        assert r["repeats"] == 3 and len(r["times_s"]) == 3 and r["min_s"] <= r["median_s"] <= r["max_s"]
        # every method trains the same 784-256-10 net from the same weights on random labels: it
        # starts at chance, log 10 = 2.3026, and descends (a wrong sign or a lost step would not)
        assert 2.0 < r["final_train_loss"] < np.log(10), (m, r["final_train_loss"])
        if m != "torch_eager":
            assert r["compile_s"] > 0
    # the hand-written gradient and jax.grad take the same steps: the same loss to float rounding
    assert results["fnnjax_backprop"]["final_train_loss"] == pytest.approx(
        results["fnnjax_grad"]["final_train_loss"], rel=1e-5
    )
    if "torch_eager" in results:
        assert results["fnnjax_backprop"]["speedup_vs_torch"] > 0
        assert results["torch_eager"]["torch_threads"] == 1
    assert (tmp_path / "train_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_train_benchmark_rejects_bad_options(capsys):
    assert cli.main(["bench", "train", "--repeats", "5"]) == 2
    assert "--repeats 5 is below 20" in capsys.readouterr().err
    assert cli.main(["bench", "train", "--quick", "--methods", "keras"]) == 2
    assert "unknown --methods keras" in capsys.readouterr().err


def test_unroll_variants_are_added_after_each_fnnjax_method():
    assert bench._with_unrolls(["fnnjax_backprop", "jax_plain", "fnnjax_grad"], (1, 4, 16)) == [
        "fnnjax_backprop",
        "fnnjax_backprop_unroll4",
        "fnnjax_backprop_unroll16",
        "jax_plain",
        "fnnjax_grad",
        "fnnjax_grad_unroll4",
        "fnnjax_grad_unroll16",
    ]
    assert bench._with_unrolls(["fnnjax_grad"], (1,)) == ["fnnjax_grad"]


def test_the_full_run_takes_the_fastest_backprop_unroll():
    results = {
        "fnnjax_backprop": {"median_s": 0.010},
        "fnnjax_backprop_unroll16": {"median_s": 0.004},
        "fnnjax_grad_unroll64": {"median_s": 0.001},
        "jax_plain": {"median_s": 0.0005},
    }
    assert bench._fastest_unroll(results) == 16
    assert bench._fastest_unroll({"jax_plain": {"median_s": 1.0}}) == 1


def test_speed_targets_per_platform():
    """GPU: <= 5 ms per epoch; CPU: >= 1.2x the torch loop, undecided without torch."""
    assert bench._target_met("gpu", {"median_s": 0.0049}) is True
    assert bench._target_met("gpu", {"median_s": 0.0051}) is False
    assert bench._target_met("cpu", {"median_s": 0.3, "speedup_vs_torch": 1.25}) is True
    assert bench._target_met("cpu", {"median_s": 0.3, "speedup_vs_torch": 1.1}) is False
    assert bench._target_met("cpu", {"median_s": 0.3}) is None


@pytest.mark.slow
def test_quick_train_benchmark_with_unrolls(tmp_path, monkeypatch):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    assert (
        cli.main(
            [
                "bench",
                "train",
                "--quick",
                "--samples",
                "600",
                "--out",
                str(tmp_path),
                "--methods",
                "fnnjax_backprop",
                "--unroll",
                "1,3",
                "--full-run",
                "2",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "train_cpu_quick.json").read_text())
    assert set(data["results"]) == {"fnnjax_backprop", "fnnjax_backprop_unroll3"}
    # the same steps from the same weights and key: the same loss to float rounding
    losses = [r["final_train_loss"] for r in data["results"].values()]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert data["full_run"]["epochs"] == 2 and data["full_run"]["unroll"] in (1, 3)
    assert data["full_run"]["compile_s"] > 0 and data["full_run"]["wall_s"] > data["full_run"]["compile_s"]


def test_train_benchmark_rejects_a_bad_torch_device(capsys):
    assert cli.main(["bench", "train", "--quick", "--torch-device", "tpu"]) == 2
    assert "unknown --torch-device 'tpu'; valid values are auto, cpu, cuda" in capsys.readouterr().err
