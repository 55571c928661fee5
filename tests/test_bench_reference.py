"""benchmarks/reference.py: the per-run summary against hand-made histories, and a --quick run of
the real ``fnnjax train`` recipe on a tiny Fashion-MNIST look-alike written as IDX files."""

import json

import numpy as np
import pytest

from fnnjax import cli
from fnnjax.benchmarks import reference


def history(test_accs, *, loss1=1.04, train_acc=0.915):
    n = len(test_accs)
    return [
        {
            "epoch": e + 1,
            "train_loss": loss1 / (e + 1),
            "train_acc": train_acc if e == n - 1 else 0.5,
            "test_acc": a,
            "seconds": 0.1 * (e + 1),
        }
        for e, a in enumerate(test_accs)
    ]


def test_summary_of_a_run():
    accs = [0.70 + 0.01 * k for k in range(15)]  # 0.70 .. 0.84, best at the end
    accs[-1] = 0.83  # a dip at the last epoch: the best is epoch 14
    row = reference.summarise_run(history(accs))
    assert row["epochs"] == 15 and row["epoch1_loss"] == 1.04 and row["epoch2_loss"] == 0.52
    assert row["last_test_acc"] == 0.83 and row["last_train_acc"] == 0.915
    assert row["best_test_acc"] == pytest.approx(0.83) and row["best_epoch"] == 14
    assert row["test_acc_median_last10"] == pytest.approx(np.median(accs[-10:]))
    assert row["median_epoch_s"] == pytest.approx(0.8)
    assert row["epoch1_loss_ok"] and row["train_acc_ok"] and not row["test_acc_ok"]


def test_the_targets_fail_on_runs_that_miss_them():
    far = reference.summarise_run(history([0.9], loss1=1.10, train_acc=0.90))
    assert not far["epoch1_loss_ok"] and not far["train_acc_ok"] and far["test_acc_ok"]
    assert "epoch2_loss" not in far


@pytest.fixture
def tiny_fashion(tmp_path, fashion_lookalike):
    """300 training images (the recipe's batch is 256) and 60 test images, learnable classes."""
    return fashion_lookalike(tmp_path, 300, 60)


@pytest.mark.slow
def test_quick_reference_runs_the_recipe_for_both_gradients(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "results"
    assert (
        cli.main(
            ["bench", "reference", "--quick", "--data-dir", str(tiny_fashion), "--seeds", "3,4", "--out", str(out)]
        )
        == 0
    )
    result = json.loads((out / "reference_cpu_quick.json").read_text())
    assert result["epochs"] == 2 and result["seeds"] == [3]  # --quick: 2 epochs, the first seed
    assert [(r["seed"], r["gradient"]) for r in result["runs"]] == [(3, "backprop"), (3, "grad")]
    assert [len(h) for h in result["histories"]] == [2, 2]
    bp, gr = result["runs"]
    # the hand-written backprop and jax.grad take the same steps: the same curves to rounding
    assert bp["epoch1_loss"] == pytest.approx(gr["epoch1_loss"], rel=1e-5)
    assert bp["last_test_acc"] == pytest.approx(gr["last_test_acc"], abs=0.02)
    text = (out / "reference_cpu_quick.md").read_text()
    assert "### Across seeds" in text and "| 3 | backprop |" in text
    assert (out / "reference_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_reference_rejects_bad_options(capsys):
    assert cli.main(["bench", "reference", "--gradients", "fd"]) == 2
    assert "unknown --gradients fd; valid values are backprop, grad" in capsys.readouterr().err
    assert cli.main(["bench", "reference", "--epochs", "0"]) == 2
    assert "--epochs 0 must be >= 1" in capsys.readouterr().err
