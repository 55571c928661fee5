"""Issue 6: data-parallel training on a jax.sharding mesh.

The equivalence on 1, 2, 4 and 8 devices needs 8 CPU host devices, which XLA only creates when
XLA_FLAGS is set before jax is imported: those cases live in tests/sharding_cases.py and run here
in a subprocess, so the rest of the suite keeps its one device. The checks that need no second
device run in this process."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import optax
import pytest

import fnnjax

HERE = Path(__file__).resolve().parent


def test_on_eight_host_devices_in_a_subprocess():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                          "ignore::pytest.PytestUnraisableExceptionWarning",
                          str(HERE / "sharding_cases.py")],
                         cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "9 passed" in run.stdout, run.stdout[-2000:]  # none skipped: 8 devices were there


def test_more_devices_than_there_are_is_one_clear_error():
    have = jax.device_count()
    with pytest.raises(ValueError, match=rf"devices = {have + 1} but only {have} cpu device\(s\) are "
                                         rf"available; use devices <= {have}, or on CPU, set XLA_FLAGS="
                                         rf"--xla_force_host_platform_device_count={have + 1} in the "
                                         "environment before Python imports jax"):
        fnnjax.fit(fnnjax.MLP((2, 2)), fnnjax.init_params(jax.random.key(0), fnnjax.MLP((2, 2))),
                   (jax.numpy.ones((4, 2)), jax.numpy.ones((4, 2))), optimizer=optax.sgd(0.1),
                   loss="mse", epochs=1, batch_size=2, key=jax.random.key(1), devices=have + 1)


def test_mesh_and_devices_are_checked():
    mlp = fnnjax.MLP((2, 2))
    args = (mlp, fnnjax.init_params(jax.random.key(0), mlp), (jax.numpy.ones((4, 2)),) * 2)
    kw = dict(optimizer=optax.sgd(0.1), loss="mse", epochs=1, batch_size=2, key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"pass mesh or devices, not both \(got mesh \{'batch': 1\} "
                                         r"and devices = 1\)"):
        fnnjax.fit(*args, **kw, mesh=fnnjax.data_mesh(1), devices=1)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh .* got int"):
        fnnjax.fit(*args, **kw, mesh=4)
    with pytest.raises(ValueError, match=r"devices = 0 but it must be a positive integer"):
        fnnjax.fit(*args, **kw, devices=0)


def test_a_mesh_of_one_device_is_bit_identical_to_no_mesh():
    mlp = fnnjax.MLP((3, 5, 2), output="softmax")
    p0 = fnnjax.init_params(jax.random.key(0), mlp, "xavier")
    x, y = jax.random.normal(jax.random.key(1), (20, 3)), jax.numpy.arange(20) % 2
    kw = dict(optimizer=optax.sgd(0.5), epochs=2, batch_size=8, key=jax.random.key(2))
    plain, _ = fnnjax.fit(mlp, p0, (x, y), **kw)
    meshed, _ = fnnjax.fit(mlp, p0, (x, y), **kw, devices=1)
    assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(meshed)))
