"""Data-parallel training on 8 CPU host devices: run by tests/test_sharding.py in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (the flag must be set before jax is imported,
so these cases cannot share the main test process; the file name keeps pytest from collecting it
there). Run by hand:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m pytest -q tests/sharding_cases.py
"""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8,
    reason="needs 8 devices: set XLA_FLAGS=--xla_force_host_platform_device_count=8 before jax is imported",
)

MLP = fnnjax.MLP((6, 16, 3), hidden="tanh", output="softmax")
N, BATCH = 100, 16  # 6 full batches and a last one of 4 samples padded with 12 of weight 0
X = jax.random.normal(jax.random.key(1), (N, 6))
Y = jnp.arange(N) % 3
P0 = fnnjax.init_params(jax.random.key(0), MLP, "xavier")


def train(gradient, **where):
    """Three epochs; returns the Trainer (its state, history and compiled epoch program)."""
    trainer = fnnjax.Trainer(
        MLP,
        P0,
        (X, Y),
        optimizer=optax.sgd(0.3, momentum=0.9),
        epochs=3,
        batch_size=BATCH,
        key=jax.random.key(2),
        gradient=gradient,
        dropout=0.1,
        **where,
    )
    for _ in trainer:
        pass
    return trainer


@pytest.fixture(scope="module")
def single():
    return {g: train(g) for g in fnnjax.GRADIENTS}


def assert_close(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("gradient, devices", [("backprop", 2), ("backprop", 4), ("backprop", 8), ("grad", 8)])
def test_data_parallel_matches_one_device(single, gradient, devices):
    # devices=4 goes through a mesh of the caller's; the others through the devices= shortcut
    where = {"mesh": fnnjax.data_mesh(4)} if devices == 4 else {"devices": devices}
    trainer, ref = train(gradient, **where), single[gradient]
    params = trainer.state.params
    assert all(leaf.sharding.num_devices == devices for leaf in jax.tree.leaves(params))
    assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(params))
    assert_close(params, ref.state.params)
    np.testing.assert_allclose(trainer.history["train_loss"], ref.history["train_loss"], rtol=1e-5)
    # the run really moved: the tolerance is far below the change training made
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(P0))) > 0.05
    # the gradient sums are combined by an all-reduce XLA inserted; one device has none
    assert "all-reduce" in trainer._epoch_fn.as_text()
    assert "all-reduce" not in ref._epoch_fn.as_text()
    assert np.isfinite(np.asarray(P0[0].W)).all()  # the caller's params were not donated away


def test_a_mesh_of_one_device_is_bit_identical_to_no_mesh(single):
    trainer = train("backprop", devices=1)
    for a, b in zip(jax.tree.leaves(trainer.state.params), jax.tree.leaves(single["backprop"].state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_batch_that_does_not_divide_is_an_error():
    with pytest.raises(
        ValueError,
        match=r"batch_size = 18 does not divide over the 4 devices of "
        r"the mesh; .* use a multiple of 4 \(e.g. 16 or 20\)",
    ):
        fnnjax.fit(MLP, P0, (X, Y), optimizer=optax.sgd(0.3), epochs=1, batch_size=18, key=jax.random.key(2), devices=4)


def test_too_many_devices_names_both_numbers_and_the_remedy():
    with pytest.raises(
        ValueError,
        match=r"devices = 9 but only 8 cpu device\(s\) are available; "
        r"use devices <= 8, or on CPU, set XLA_FLAGS="
        r"--xla_force_host_platform_device_count=9",
    ):
        fnnjax.data_mesh(9)


def test_cli_devices_trains_like_one_device(tmp_path):
    from fnnjax import data
    from fnnjax.cli import main

    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    arrays = (
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 40, dtype=np.uint8),
        rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 8, dtype=np.uint8),
    )
    for name, arr in zip(names, arrays):
        data.write_idx(folder / name, arr)
    (folder / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    )
    runs = {}
    for devices in ((), ("--devices", "4")):
        out = tmp_path / f"run{len(devices)}"
        assert (
            main(
                [
                    "train",
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--sizes",
                    "784,8,10",
                    "--batch-size",
                    "16",
                    "--epochs",
                    "2",
                    "--out",
                    str(out),
                    "--quiet",
                    *devices,
                ]
            )
            == 0
        )
        with np.load(out / "params.npz") as f:
            runs[devices] = {k: f[k].copy() for k in f.files if k not in ("mlp", "checksums")}
        assert json.loads((out / "history.json").read_text())["config"]["devices"] == (
            int(devices[1]) if devices else None
        )
    for k in runs[()]:
        np.testing.assert_allclose(runs[("--devices", "4")][k], runs[()][k], rtol=2e-5, atol=2e-6)
