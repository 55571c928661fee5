"""benchmarks/pretrain.py: a --quick smoke run on synthetic images, and its option errors.

Accuracies and times are results, never asserted; what is asserted is the record's shape, and
values with independent evidence: with N(0, 0.01^2) weights the softmax output is uniform to
within ~1e-3, so the output error term ``delta^(L) = y_hat - onehot(y)`` has norm
``sqrt((1 - 0.1)^2 + 9 * 0.1^2) = sqrt(0.9)`` (F11) for every sample.
"""

import json
import math

import jax
import jax.numpy as jnp
import pytest

import fnnjax
from fnnjax.benchmarks import pretrain as bench
from fnnjax.errors import UsageError


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FNNJAX_DATA", raising=False)
        assert bench.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "pretrain_cpu_quick.json").read_text())


def test_quick_run_writes_every_field(quick_result):
    out, data = quick_result
    q = bench.QUICK
    work = data["workload"]
    assert work["sizes"] == [784, *[q["width"]] * q["depth"], 10]
    assert work["train_samples"] == q["samples"] and work["data"].startswith("synthetic")
    assert data["environment"]["jax"] == jax.__version__
    assert set(data["results"]) == {"normal/random", "normal/pretrained"}
    layers = q["depth"] + 1
    for label, r in data["results"].items():
        for curve in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert len(r[curve]) == q["epochs"] + 1, (label, curve)  # epoch 0 = before fine-tuning
        assert all(0.0 <= a <= 1.0 for a in r["test_acc"] + r["train_acc"])
        assert len(r["delta_norms_start"]) == len(r["delta_norms_end"]) == layers
        assert all(math.isfinite(v) and v > 0 for v in r["delta_norms_start"] + r["delta_norms_end"])
        assert r["fine_tune_s"] > 0 and r["fine_tune_compile_s"] > 0
    random, pre = data["results"]["normal/random"], data["results"]["normal/pretrained"]
    assert random["pretrain_s"] == 0.0 and random["reconstruction_loss"] is None
    assert pre["pretrain_s"] > 0
    assert [len(l) for l in pre["reconstruction_loss"]] == [q["pretrain_epochs"]] * q["depth"]
    # nearly uniform softmax at the N(0, 0.01^2) init: ||delta^(L)|| = sqrt(0.9) (module docstring)
    assert random["delta_norms_start"][-1] == pytest.approx(math.sqrt(0.9), abs=2e-3)
    # pretraining changed the hidden layers, so the signal reaching layer 1 differs
    assert pre["delta_norms_start"][0] != random["delta_norms_start"][0]
    table = (out / "pretrain_cpu_quick.md").read_text()
    assert "| normal | pretrained |" in table and "delta1_start" in table
    assert (out / "pretrain_cpu_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_delta_norms_match_autodiff():
    """mean_i ||dL_i/dz_i^(l)||, with dL_i/dz^(l) from jax.grad through the layers above l."""
    mlp = fnnjax.MLP((5, 4, 3, 2), hidden="sigmoid", output="softmax")
    params = fnnjax.init_params(jax.random.key(3), mlp, "xavier")
    x = jax.random.uniform(jax.random.key(4), (6, 5))
    y = jnp.array([0, 1, 1, 0, 1, 0], jnp.int32)
    z1 = x @ params[0].W.T + params[0].b[None, :]

    def loss_from_z1(z, yi):  # one sample: z^(1) -> loss
        rest = fnnjax.MLP((4, 3, 2), hidden="sigmoid", output="softmax")
        return fnnjax.loss(rest, params[1:], jax.nn.sigmoid(z), yi)

    d1 = jax.vmap(jax.grad(loss_from_z1))(z1, y)
    got = bench.delta_norms(mlp, params, x, y)
    assert len(got) == 3
    assert got[0] == pytest.approx(float(jnp.mean(jnp.linalg.norm(d1, axis=1))), rel=1e-5)
    wrong = bench.delta_norms(mlp, params, x, 1 - y)  # other labels: another signal
    assert wrong[0] != pytest.approx(got[0], rel=1e-3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quick", "--inits", "orthogonal"], r"--inits 'orthogonal': unknown or no scheme; valid schemes"),
        (["--quick", "--epochs", "0"], r"--epochs 0 must be a positive integer"),
        (["--quick", "--samples", "10"], r"--samples 10 must lie in 256\.\.512"),
        ([], r"needs Fashion-MNIST: no --data-dir and \$FNNJAX_DATA is unset"),
    ],
)
def test_bad_options_fail_with_one_line(argv, message, monkeypatch, tmp_path):
    monkeypatch.delenv("FNNJAX_DATA", raising=False)
    with pytest.raises(UsageError, match=message):
        bench.main([*argv, "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())
