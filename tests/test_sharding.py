"""Data-parallel training on a jax.sharding mesh.

The equivalence on 1, 2, 4 and 8 devices needs 8 CPU host devices, which XLA only creates when
XLA_FLAGS is set before jax is imported: those cases live in tests/sharding_cases.py and run here
in a subprocess, so the rest of the suite keeps its one device. The checks that need no second
device run in this process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import fnnjax

HERE = Path(__file__).resolve().parent


def test_on_eight_host_devices_in_a_subprocess():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestUnraisableExceptionWarning",
            str(HERE / "sharding_cases.py"),
        ],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "8 passed" in run.stdout, run.stdout[-2000:]  # none skipped: 8 devices were there


def test_more_devices_than_there_are_is_one_clear_error():
    have = jax.device_count()
    with pytest.raises(
        ValueError,
        match=rf"devices = {have + 1} but only {have} cpu device\(s\) are "
        rf"available; use devices <= {have}, or on CPU, set XLA_FLAGS="
        rf"--xla_force_host_platform_device_count={have + 1} in the "
        "environment before Python imports jax",
    ):
        fnnjax.fit(
            fnnjax.MLP((2, 2)),
            fnnjax.init_params(jax.random.key(0), fnnjax.MLP((2, 2))),
            (jax.numpy.ones((4, 2)), jax.numpy.ones((4, 2))),
            optimizer=optax.sgd(0.1),
            loss="mse",
            epochs=1,
            batch_size=2,
            key=jax.random.key(1),
            devices=have + 1,
        )


def test_mesh_and_devices_are_checked():
    mlp = fnnjax.MLP((2, 2))
    args = (mlp, fnnjax.init_params(jax.random.key(0), mlp), (jax.numpy.ones((4, 2)),) * 2)
    kw = dict(optimizer=optax.sgd(0.1), loss="mse", epochs=1, batch_size=2, key=jax.random.key(1))
    with pytest.raises(
        ValueError,
        match=r"pass mesh or devices, not both \(got mesh \{'batch': 1\} "
        r"and devices = 1\)",
    ):
        fnnjax.fit(*args, **kw, mesh=fnnjax.data_mesh(1), devices=1)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh .* got int"):
        fnnjax.fit(*args, **kw, mesh=4)
    with pytest.raises(ValueError, match=r"devices = 0 but it must be a positive integer"):
        fnnjax.fit(*args, **kw, devices=0)


def test_docstring_examples_run():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("fnnjax._sharding"))
    assert result.failed == 0 and result.attempted > 0


def tiny_problem():
    """A small softmax net, data and fit options (shared with tests/sharding_process.py)."""
    mlp = fnnjax.MLP((6, 16, 3), hidden="tanh", output="softmax")
    x = np.asarray(jax.random.normal(jax.random.key(1), (100, 6)))
    kw = dict(optimizer=optax.sgd(0.3, momentum=0.9), epochs=3, batch_size=16, key=jax.random.key(2), dropout=0.1)
    return mlp, fnnjax.init_params(jax.random.key(0), mlp, "xavier"), (x, np.arange(100) % 3), kw


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_after_jax_distributed_initialize(tmp_path):
    """Two hosts simulated by two processes of 2 CPU devices each: one 4-device global mesh."""
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "sharding_process.py"), str(i), port, str(tmp_path)],
            env=env,
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)
    mlp, p0, data, kw = tiny_problem()
    params, history = fnnjax.fit(mlp, p0, data, **kw)
    for i in range(2):
        with np.load(tmp_path / f"process{i}.npz") as got:
            np.testing.assert_allclose(got["loss"], history["train_loss"], rtol=1e-5)
            for j, leaf in enumerate(jax.tree.leaves(params)):
                np.testing.assert_allclose(got[f"p{j}"], np.asarray(leaf), rtol=2e-5, atol=2e-6)
