"""The CPU speed levers inside fnnjax.fit change how the epoch is computed, never what: the same
steps to float rounding, with the lever on and off. (Their speed is a benchmark result:
benchmarks/levers.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnnjax
from fnnjax import _train


def test_the_weight_gradient_with_transposed_deltas_is_the_same_product():
    d = jax.random.normal(jax.random.key(0), (32, 5))
    a = jax.random.normal(jax.random.key(1), (32, 7))
    expected = np.einsum("bi,bj->ij", np.asarray(d, np.float64), np.asarray(a, np.float64))
    for transposed in (False, True):
        got = jax.jit(_train._weight_gradient, static_argnums=2)(d, a, transposed)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _trained(monkeypatch, platform, **options):
    monkeypatch.setattr(_train, "_platform", lambda mesh: platform)
    mlp = fnnjax.MLP((12, 16, 8, 3), hidden="relu", output="softmax")
    x = jax.random.uniform(jax.random.key(2), (100, 12))
    y = jnp.arange(100) % 3
    trainer = fnnjax.Trainer(mlp, fnnjax.init_params(jax.random.key(0), mlp, "he"), (x, y),
                             optimizer=optax.sgd(0.3), epochs=3, batch_size=32, key=jax.random.key(1),
                             **options)
    losses = [r["train_loss"] for r in trainer]
    return trainer, losses


def test_fit_takes_the_same_steps_with_the_lever_on_and_off(monkeypatch):
    for options in ({}, {"dropout": 0.25, "l2": 1e-3}):
        on, losses_on = _trained(monkeypatch, "cpu", **options)
        off, losses_off = _trained(monkeypatch, "gpu", **options)
        np.testing.assert_allclose(losses_on, losses_off, rtol=1e-5)
        for a, b in zip(on.state.params, off.state.params):
            np.testing.assert_allclose(a.W, b.W, rtol=1e-4, atol=1e-6)
    # the lever is part of the compiled program: delta^T is formed explicitly only with it on
    assert " transpose(" in str(on._epoch_fn.as_text()) and " transpose(" not in str(off._epoch_fn.as_text())
