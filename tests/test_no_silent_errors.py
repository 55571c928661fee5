"""Every input the core and the trainer accept gets the right answer, or one clear error.

Targets of every form softmax cross-entropy accepts (the output error term of F10 in its general
form), out-of-range labels under jit and vmap, mixed dtypes, float16 sums, one rule for l2 and for
the activation table, and sweeps that compile once.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax import _train
from fnnjax._losses import is_static_zero

SOFTMAX = fnnjax.MLP((4, 6, 3), hidden="tanh", output="softmax")

# every kind of target row softmax cross-entropy takes: (name, rows of 3 classes)
TARGET_ROWS = {
    "one-hot": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]],
    "soft": [[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.9, 0.1], [0.5, 0.5, 0]],
    "multi-hot": [[1, 1, 0], [0, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 0]],
    "all-zero rows": [[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]],
    "rows summing to 3": [[3, 0, 0], [1, 1, 1], [0, 2, 1], [1.5, 1.5, 0], [0, 0, 3]],
}


def softmax_problem(dtype=jnp.float64):
    rng = np.random.default_rng(0)
    params = tuple(
        fnnjax.Layer(jnp.asarray(rng.normal(0, 0.7, (m, n)), dtype), jnp.asarray(rng.normal(0, 0.3, m), dtype))
        for n, m in zip(SOFTMAX.sizes[:-1], SOFTMAX.sizes[1:])
    )
    return params, jnp.asarray(rng.normal(size=(5, 4)), dtype)


@pytest.mark.parametrize("kind", TARGET_ROWS)
def test_backprop_equals_autodiff_for_every_target_form(kind, x64):
    """F10 in general: delta^(L) = y_hat * sum_k y_k - y is dL/dz^(L) for rows of any sum."""
    params, x = softmax_problem()
    y = jnp.asarray(TARGET_ROWS[kind], jnp.float64)
    ref = jax.grad(fnnjax.loss, argnums=1)(SOFTMAX, params, x, y, "cross_entropy", 0.3)
    chex.assert_trees_all_close(fnnjax.backprop(SOFTMAX, params, x, y, l2=0.3), ref, rtol=1e-10, atol=1e-13)
    ds = fnnjax.deltas(SOFTMAX, params, x, y)
    z = fnnjax.forward_trace(SOFTMAX, params, x).z[-1]
    per_sample = jax.vmap(jax.grad(lambda zi, yi: -jnp.sum(yi * jax.nn.log_softmax(zi))))(z, y)
    np.testing.assert_allclose(ds[-1], per_sample, rtol=1e-10, atol=1e-13)


def test_the_simple_output_error_is_wrong_off_the_simplex(x64):
    """The check above can fail: y_hat - y (right only when rows sum to 1) differs from autodiff."""
    params, x = softmax_problem()
    y = jnp.asarray(TARGET_ROWS["multi-hot"], jnp.float64)
    a = fnnjax.forward(SOFTMAX, params, x)
    per_sample = fnnjax.deltas(SOFTMAX, params, x, y)[-1]
    assert float(jnp.max(jnp.abs((a - y) - per_sample))) > 0.5


def test_integer_labels_and_one_hot_rows_give_the_same_gradient(x64):
    params, x = softmax_problem()
    labels = jnp.array([0, 1, 2, 0, 1])
    chex.assert_trees_all_close(
        fnnjax.backprop(SOFTMAX, params, x, labels),
        fnnjax.backprop(SOFTMAX, params, x, jax.nn.one_hot(labels, 3, dtype=jnp.float64)),
        rtol=0,
        atol=0,
    )


def test_fit_trains_on_multi_hot_targets_with_the_right_gradient():
    """fit(gradient="backprop") on multi-hot rows follows fit(gradient="grad") step for step."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (rng.random((40, 3)) < 0.4).astype(np.float32)
    params = fnnjax.init_params(jax.random.key(0), SOFTMAX, "xavier")
    run = {
        g: fnnjax.fit(
            SOFTMAX,
            params,
            (x, y),
            optimizer=optax.sgd(0.5),
            epochs=3,
            batch_size=16,
            key=jax.random.key(1),
            gradient=g,
        )
        for g in fnnjax.GRADIENTS
    }
    chex.assert_trees_all_close(run["backprop"][0], run["grad"][0], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(run["backprop"][1]["train_loss"], run["grad"][1]["train_loss"], rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Out-of-range integer labels


@pytest.mark.parametrize("label", [3, -1])
def test_out_of_range_labels_under_jit_make_loss_and_gradient_nan(label):
    params, x = softmax_problem(jnp.float32)
    y = jnp.array([0, 1, label, 2, 1])
    value = jax.jit(fnnjax.loss, static_argnums=0)(SOFTMAX, params, x, y)
    grads = jax.jit(fnnjax.backprop, static_argnums=0)(SOFTMAX, params, x, y)
    assert np.isnan(float(value))
    assert all(bool(jnp.all(jnp.isnan(g))) for g in jax.tree.leaves(grads))
    # in range under jit: the eager values exactly
    ok = jnp.array([0, 1, 2, 2, 1])
    np.testing.assert_allclose(
        jax.jit(fnnjax.loss, static_argnums=0)(SOFTMAX, params, x, ok), fnnjax.loss(SOFTMAX, params, x, ok), rtol=1e-6
    )


def test_out_of_range_labels_under_vmap_agree_in_loss_and_gradient():
    """Per-sample under vmap: only the bad sample is NaN, in the loss and in its gradient alike."""
    params, x = softmax_problem(jnp.float32)
    y = jnp.array([0, 1, 7, 2, 1])
    losses = jax.vmap(lambda xi, yi: fnnjax.loss(SOFTMAX, params, xi, yi))(x, y)
    grads = jax.vmap(lambda xi, yi: fnnjax.backprop(SOFTMAX, params, xi, yi))(x, y)
    np.testing.assert_array_equal(np.isnan(np.asarray(losses)), [False, False, True, False, False])
    bad_rows = np.isnan(np.asarray(grads[0].W)).any(axis=(1, 2))
    np.testing.assert_array_equal(bad_rows, [False, False, True, False, False])


def test_fit_and_evaluate_check_labels_on_the_host_before_compiling(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a program was compiled before the labels were checked")

    monkeypatch.setattr(_train, "_train_epoch", type("NoJit", (), {"lower": never})())
    monkeypatch.setattr(_train, "evaluation_sums", never)
    x, y = np.zeros((8, 4), np.float32), np.array([0, 1, 2, 3, 0, 1, 2, 0])
    params = fnnjax.init_params(jax.random.key(0), SOFTMAX)
    with pytest.raises(ValueError, match=r"label 3 is out of range: the MLP has 3 classes"):
        fnnjax.fit(SOFTMAX, params, (x, y), optimizer=optax.sgd(0.1), epochs=1, batch_size=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"label 3 is out of range"):
        fnnjax.evaluate(SOFTMAX, params, (x, y), batch_size=4)


# ----------------------------------------------------------------------------------------------
# Dtypes: JAX's promotion decides, nothing is cast down


def test_float64_data_into_float32_params_is_refused(x64):
    params = fnnjax.init_params(jax.random.key(0), SOFTMAX)  # float32
    x = jnp.full((2, 4), 1 + 1e-9, jnp.float64)
    for call in (
        lambda: fnnjax.forward(SOFTMAX, params, x),
        lambda: fnnjax.loss(SOFTMAX, params, x, jnp.array([0, 1])),
        lambda: fnnjax.backprop(SOFTMAX, params, x, jnp.array([0, 1])),
    ):
        with pytest.raises(
            ValueError,
            match=r"x has dtype float64 but the params are float32; casting x "
            r"to float32 would lose precision: pass x.astype\('float32'\)",
        ):
            call()
    with pytest.raises(ValueError, match=r"y has dtype float64 but the params are float32"):
        fnnjax.loss(SOFTMAX, params, x.astype(jnp.float32), jnp.eye(3, dtype=jnp.float64)[:2])
    with pytest.raises(ValueError, match=r"train x has dtype float64|x has dtype float64"):
        fnnjax.fit(
            SOFTMAX,
            params,
            (np.ones((8, 4)), np.zeros(8, np.int32)),
            optimizer=optax.sgd(0.1),
            epochs=1,
            batch_size=4,
            key=jax.random.key(0),
        )


@pytest.mark.parametrize(
    "x_dtype, params_dtype, accepted",
    [
        (jnp.float32, jnp.float64, True),  # widening: exact
        (jnp.int32, jnp.float32, True),  # integers go to any float (JAX's rule)
        (jnp.uint8, jnp.float16, True),
        (jnp.bool_, jnp.float32, True),
        (jnp.float16, jnp.float32, True),
        (jnp.bfloat16, jnp.float16, False),  # JAX promotes the pair to float32: either cast loses
        (jnp.float32, jnp.bfloat16, False),
        (jnp.float64, jnp.float32, False),
    ],
)
def test_the_dtype_rule_is_jax_promotion(x_dtype, params_dtype, accepted, x64):
    mlp = fnnjax.MLP((2, 3, 2), output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, dtype=params_dtype)
    x = jnp.ones((2, 2), x_dtype)
    if accepted:
        out = fnnjax.forward(mlp, params, x)
        assert out.dtype == params_dtype
        np.testing.assert_allclose(
            np.asarray(out, np.float64),
            np.asarray(fnnjax.forward(mlp, params, jnp.ones((2, 2), params_dtype)), np.float64),
        )
    else:
        with pytest.raises(
            ValueError,
            match=rf"x has dtype {jnp.dtype(x_dtype).name} but the params are "
            rf"{jnp.dtype(params_dtype).name}",
        ):
            fnnjax.forward(mlp, params, x)


# ----------------------------------------------------------------------------------------------
# float16: sums in float32, non-finite samples said


def test_float16_training_reports_finite_metrics():
    """40,000 samples of log 10 each sum to 92,000 > float16's max 65,504: sums must be wider."""
    mlp = fnnjax.MLP((4, 8, 10), output="softmax")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 4)).astype(np.float16)
    y = rng.integers(0, 10, 40_000).astype(np.int32)
    params = fnnjax.init_params(jax.random.key(0), mlp, std=0.001, dtype=jnp.float16)
    _, hist = fnnjax.fit(
        mlp, params, (x, y), optimizer=optax.sgd(0.01), epochs=1, batch_size=4000, key=jax.random.key(1), eval=(x, y)
    )
    record = hist.epochs[0]
    assert record["train_loss"] == pytest.approx(np.log(10), rel=1e-2)
    assert record["val_loss"] == pytest.approx(np.log(10), rel=1e-2)
    assert 0.05 < record["val_acc"] < 0.2
    assert fnnjax.evaluate(mlp, params, (x, y))["loss"] == pytest.approx(np.log(10), rel=1e-3)


def test_evaluate_refuses_non_finite_inputs_and_never_invents_an_accuracy():
    mlp = fnnjax.MLP((4, 3), output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp)
    x = np.ones((40, 4), np.float32)
    x[17, 2] = np.nan
    with pytest.raises(
        ValueError,
        match=r"data x holds 1 non-finite values \(NaN or inf; the first at "
        r"row 17, column 2\)",
    ):
        fnnjax.evaluate(mlp, params, (x, np.zeros(40, np.int32)))
    # finite inputs, outputs that overflow: no prediction, so the accuracy is NaN, not a number
    huge = (fnnjax.Layer(jnp.full((3, 4), 3e38, jnp.float32), jnp.zeros(3, jnp.float32)),)
    result = fnnjax.evaluate(mlp, huge, (np.ones((40, 4), np.float32), np.zeros(40, np.int32)))
    assert np.isnan(result["loss"]) and np.isnan(result["acc"])


# ----------------------------------------------------------------------------------------------
# One rule each


def test_one_rule_for_l2_everywhere():
    params, x = softmax_problem(jnp.float32)
    y = jnp.array([0, 1, 2, 0, 1])
    message = r"l2 = -0.1 but the weight-decay coefficient lambda must be a finite number >= 0"
    for call in (
        lambda: fnnjax.loss(SOFTMAX, params, x, y, l2=-0.1),
        lambda: fnnjax.backprop(SOFTMAX, params, x, y, l2=-0.1),
        lambda: fnnjax.gradient(SOFTMAX, params, x, y, l2=-0.1, method="grad"),
        lambda: fnnjax.fit(
            SOFTMAX, params, (x, y), optimizer=optax.sgd(0.1), epochs=1, batch_size=5, key=jax.random.key(0), l2=-0.1
        ),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match=r"l2 has shape \(2,\) but the weight-decay coefficient"):
        fnnjax.loss(SOFTMAX, params, x, y, l2=np.ones(2))


@pytest.mark.parametrize(
    "value, zero",
    [
        (0, True),
        (0.0, True),
        (np.float32(0), True),
        (np.float64(0), True),
        (np.int64(0), True),
        (np.zeros(()), True),
        (jnp.zeros((), jnp.float32), True),
        (1e-3, False),
        (np.float32(1e-3), False),
        (False, False),
    ],
)
def test_static_zero_is_any_concrete_zero(value, zero):
    assert is_static_zero(value) is zero


def test_a_concrete_zero_leaves_the_l2_pass_out_of_the_program():
    params, x = softmax_problem(jnp.float32)
    y = jnp.array([0, 1, 2, 0, 1])
    muls = {
        str(v): str(jax.make_jaxpr(lambda p: fnnjax.backprop(SOFTMAX, p, x, y, l2=v))(params)).count("mul")
        for v in (0.0, np.float32(0), 0.5)
    }
    assert muls["0.0"] == muls["0.0"] < muls["0.5"]
    assert muls[str(np.float32(0))] == muls["0.0"]


def test_the_activation_table_is_read_only():
    with pytest.raises(TypeError):
        fnnjax.ACTIVATIONS["swish"] = fnnjax.ACTIVATIONS["relu"]  # type: ignore[index]
    with pytest.raises(ValueError, match=r"unknown output activation 'swish'"):
        fnnjax.MLP((3, 2), output="swish")


# ----------------------------------------------------------------------------------------------
# Sweeps compile once


def test_a_hyperparameter_sweep_compiles_the_epoch_once(monkeypatch):
    """New l2 and dropout values and new optax objects with equal settings reuse one program."""
    counted = chex.assert_max_traces(_train._epoch_program, n=1)
    monkeypatch.setattr(
        _train,
        "_train_epoch",
        jax.jit(
            counted, static_argnames=("spec", "batch_size", "mesh", "unroll"), donate_argnames=("params", "opt_state")
        ),
    )
    mlp = fnnjax.MLP((4, 5, 3), hidden="relu", output="softmax")
    rng = np.random.default_rng(2)
    data = (rng.normal(size=(24, 4)).astype(np.float32), rng.integers(0, 3, 24).astype(np.int32))
    params = fnnjax.init_params(jax.random.key(0), mlp, "he")
    results = {}
    for l2 in (1e-3, 0.05, 0.3):
        for dropout in (0.1, 0.4):
            out, _ = fnnjax.fit(
                mlp,
                params,
                data,
                optimizer=optax.chain(optax.clip(1.0), optax.sgd(0.3)),
                epochs=2,
                batch_size=8,
                key=jax.random.key(1),
                l2=l2,
                dropout=dropout,
            )
            results[l2, dropout] = np.asarray(out[0].W)
    # the values are used, not baked in: every setting gives other weights (that a traced l2 takes
    # the documented steps is checked against optax's weight decay in test_train.py)
    values = list(results.values())
    assert all(not np.allclose(a, b) for i, a in enumerate(values) for b in values[i + 1 :])


def test_the_trace_counter_does_see_a_new_program(monkeypatch):
    """The check above can fail: another learning rate is another program (a second trace)."""
    counted = chex.assert_max_traces(_train._epoch_program, n=1)
    monkeypatch.setattr(
        _train,
        "_train_epoch",
        jax.jit(
            counted, static_argnames=("spec", "batch_size", "mesh", "unroll"), donate_argnames=("params", "opt_state")
        ),
    )
    mlp = fnnjax.MLP((4, 5, 3), output="softmax")
    data = (np.ones((8, 4), np.float32), np.zeros(8, np.int32))
    params = fnnjax.init_params(jax.random.key(0), mlp)
    fnnjax.fit(mlp, params, data, optimizer=optax.sgd(0.1), epochs=1, batch_size=4, key=jax.random.key(1))
    with pytest.raises(AssertionError, match="traced"):
        fnnjax.fit(mlp, params, data, optimizer=optax.sgd(0.2), epochs=1, batch_size=4, key=jax.random.key(1))


# ----------------------------------------------------------------------------------------------
# Every floating dtype


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_backprop_equals_autodiff_in_every_dtype(dtype, x64):
    """Backprop and jax.grad in the params' dtype agree to a few units of its rounding, and both are
    close to the float64 gradient (the dtype is kept: no silent promotion or demotion)."""
    params64, x64_ = softmax_problem(jnp.float64)
    params = jax.tree.map(lambda a: a.astype(dtype), params64)
    x = x64_.astype(dtype)
    y = jnp.asarray(TARGET_ROWS["soft"], dtype)
    bp = fnnjax.backprop(SOFTMAX, params, x, y, l2=0.1)
    ad = jax.grad(fnnjax.loss, argnums=1)(SOFTMAX, params, x, y, "cross_entropy", 0.1)
    chex.assert_trees_all_equal_shapes_and_dtypes(bp, params)
    eps = float(jnp.finfo(dtype).eps)
    exact = fnnjax.backprop(
        SOFTMAX,
        jax.tree.map(lambda a: a.astype(jnp.float64), params),
        x.astype(jnp.float64),
        y.astype(jnp.float64),
        l2=0.1,
    )
    for got in (bp, ad):
        chex.assert_trees_all_close(jax.tree.map(lambda a: a.astype(jnp.float64), got), exact, rtol=0, atol=64 * eps)
