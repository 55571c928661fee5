"""benchmarks/levers.py: a smoke run on a slice of random data (timings are results, never asserted)."""

import json

import pytest

from fnnjax import cli
from fnnjax.benchmarks import levers


@pytest.mark.slow
def test_the_model_epoch_is_fits_program_and_a_lever_changes_one_thing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    args = ["bench", "levers", "--quick", "--samples", "600", "--out", str(tmp_path)]
    assert cli.main(args) == 0  # every method
    data = json.loads((tmp_path / "levers_cpu_quick.json").read_text())
    results = data["results"]
    assert set(results) == set(levers.METHODS)
    assert data["workload"]["samples"] == 600 and data["workload"]["timed_rounds"] == 3
    # model copies fit's epoch: the same steps (loss to float rounding) compiled to the same program
    assert results["fit"]["loss_rel_diff"] < 1e-5
    for count in ("transposes", "ynn_dots", "onednn_dots", "eigen_dots"):
        assert results["fit"][count] == results["model"][count], count
    # the weight gradient as written: the same steps, without fit's written-out D^T (one per layer)
    for m in levers.VARIANTS:  # every variant takes the same steps
        assert results[m]["loss_rel_diff"] < 1e-4, m
    assert results["model"]["transposes"] - results["dW_as_written"]["transposes"] == 2
    assert all(r["speedup_vs_model"] > 0 for m, r in results.items() if not m.startswith("eval_"))
    assert results["eval_fit"]["share_of_fit_epoch"] > 0
    assert (tmp_path / "levers_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_levers_benchmark_rejects_bad_options(capsys):
    assert cli.main(["bench", "levers", "--quick", "--methods", "fit,warp"]) == 2
    assert "unknown --methods warp; valid methods are fit, model" in capsys.readouterr().err
    assert cli.main(["bench", "levers", "--repeats", "5"]) == 2
    assert "--repeats 5 is below 20" in capsys.readouterr().err
    assert cli.main(["bench", "levers", "--quick", "--samples", "100"]) == 2
    assert "--samples 100 must lie in 256..60000" in capsys.readouterr().err
