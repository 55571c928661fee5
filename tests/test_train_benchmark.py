"""benchmarks/train.py: a smoke run on a slice of random data (timings are results, never asserted)."""

import json

import pytest

from benchmarks import train as bench
from fnnjax import cli


@pytest.mark.slow
def test_quick_train_benchmark_writes_results(tmp_path, monkeypatch):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    assert cli.main(["bench", "train", "--quick", "--samples", "600", "--out", str(tmp_path),
                     "--torch-threads", "1"]) == 0
    data = json.loads((tmp_path / "train_cpu_quick.json").read_text())
    assert data["workload"]["samples"] == 600 and data["workload"]["timed_rounds"] == 3
    results = data["results"]
    methods = set(bench.METHODS) if bench._torch_available() else set(bench.METHODS) - {"torch_eager"}
    assert set(results) == methods
    for m, r in results.items():
        assert r["repeats"] == 3 and len(r["times_s"]) == 3 and r["min_s"] <= r["median_s"] <= r["max_s"]
        # every method trains the same 784-256-10 net from the same weights on random labels:
        # the loss stays near log 10 = 2.303 for all of them
        assert r["final_train_loss"] == pytest.approx(2.30, abs=0.1), m
        if m != "torch_eager":
            assert r["compile_s"] > 0
    if "torch_eager" in results:
        assert results["fnnjax_backprop"]["speedup_vs_torch"] > 0
        assert results["torch_eager"]["torch_threads"] == 1
    assert (tmp_path / "train_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_train_benchmark_rejects_bad_options(capsys):
    assert cli.main(["bench", "train", "--repeats", "5"]) == 2
    assert "--repeats 5 is below 20" in capsys.readouterr().err
    assert cli.main(["bench", "train", "--quick", "--methods", "keras"]) == 2
    assert "unknown --methods keras" in capsys.readouterr().err
