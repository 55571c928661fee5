"""Edge values get a clear error or the right answer, one by one (none is answered silently).

Drop rates outside [0, 1), NaN, or rounding to 1 in the program's dtype; empty batches; the l2
rule concrete and traced, and an l2 that overflows the params' dtype; finite differences at large
|theta|; Python lists of labels and inputs; integers that the params' dtype cannot hold exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax

MLP = fnnjax.MLP((2, 3, 2), hidden="tanh", output="softmax")
PARAMS = fnnjax.init_params(jax.random.key(0), MLP, "xavier")
X = jnp.asarray([[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0], [1.0, 1.0]], jnp.float32)
Y = jnp.asarray([0, 1, 1, 0], jnp.int32)
KEY = jax.random.key(0)


def fit(params=PARAMS, data=(X, Y), **kw):
    options = dict(optimizer=optax.sgd(0.1), epochs=1, batch_size=2, key=KEY)
    options.update(kw)
    return fnnjax.fit(MLP, params, data, **options)


# ----------------------------------------------------------------------------------------------
# Drop rates


@pytest.mark.parametrize("rate", [1.0, -0.5, 1.5, float("nan")])
def test_a_concrete_drop_rate_outside_the_unit_interval_raises(rate):
    with pytest.raises(ValueError, match=rf"rate = {rate} but the drop rate must satisfy 0 <= rate < 1"):
        fnnjax.dropout_scales(KEY, MLP, 4, rate)


def test_a_traced_drop_rate_outside_the_unit_interval_makes_every_multiplier_nan():
    scales = jax.jit(lambda r: fnnjax.dropout_scales(KEY, MLP, 4, r)[0])
    for rate in (1.0, -0.5, 1.5, float("nan")):
        assert bool(jnp.all(jnp.isnan(scales(rate)))), rate
    np.testing.assert_array_equal(scales(0.5), fnnjax.dropout_scales(KEY, MLP, 4, 0.5)[0])  # in range: as eager


def test_a_drop_rate_that_rounds_to_one_in_the_programs_dtype_raises(x64):
    rate = 1 - 1e-9  # < 1 in float64, exactly 1 in float32
    with pytest.raises(ValueError, match=r"rate = 0.999999999 rounds to 1 in float32.* rate <= 0.99999994"):
        fnnjax.dropout_scales(KEY, MLP, 4, rate, jnp.float32)
    s = np.asarray(fnnjax.dropout_scales(KEY, MLP, 400, rate, jnp.float64)[0])  # float64: a right answer
    assert set(np.unique(s)) <= {0.0, 1 / (1 - rate)}
    with pytest.raises(ValueError, match=r"dropout = 0.999999999 rounds to 1 in float32"):
        fit(dropout=rate)


def test_a_drop_rate_whose_multiplier_overflows_the_params_dtype_raises():
    with pytest.raises(ValueError, match=r"rate = 0.99999 is too close to 1 for float16: the multiplier"):
        fnnjax.dropout_scales(KEY, MLP, 4, 0.99999, jnp.float16)
    params16 = jax.tree.map(lambda a: a.astype(jnp.float16), PARAMS)
    with pytest.raises(ValueError, match=r"dropout = 0.99999 is too close to 1 for float16"):
        fit(params16, (X.astype(jnp.float16), Y), dropout=0.99999)


# ----------------------------------------------------------------------------------------------
# Empty batches


EMPTY = r"x has shape \(0, 2\): no samples \(N = 0\), but the risk is the mean of the loss over the samples"


def test_an_empty_batch_raises_in_loss_backprop_gradient_and_fit_alike():
    x, y = jnp.zeros((0, 2), jnp.float32), jnp.zeros((0,), jnp.int32)
    for call in (
        lambda: fnnjax.loss(MLP, PARAMS, x, y),
        lambda: fnnjax.backprop(MLP, PARAMS, x, y),
        lambda: jax.jit(fnnjax.backprop, static_argnums=0)(MLP, PARAMS, x, y),  # shapes are static
        lambda: fnnjax.gradient(MLP, PARAMS, x, y, method="grad"),
    ):
        with pytest.raises(ValueError, match=EMPTY):
            call()
    with pytest.raises(ValueError, match="train " + EMPTY):
        fit(data=(np.zeros((0, 2), np.float32), np.zeros(0, np.int32)))
    # per-sample error terms of no samples: no mean is taken, the right answer is empty
    assert [d.shape for d in fnnjax.deltas(MLP, PARAMS, x, y)] == [(0, 3), (0, 2)]


# ----------------------------------------------------------------------------------------------
# l2: one rule, concrete or traced


def test_l2_follows_one_rule_concrete_or_traced():
    loss = jax.jit(lambda l2: fnnjax.loss(MLP, PARAMS, X, Y, l2=l2))
    grad = jax.jit(lambda l2: fnnjax.backprop(MLP, PARAMS, X, Y, l2=l2)[0].W)
    reference = float(fnnjax.loss(MLP, PARAMS, X, Y)) + 0.5 * sum(float(jnp.sum(p.W * p.W)) for p in PARAMS)
    for l2 in (1, jnp.asarray(1, jnp.int32)):  # integers are real numbers, concrete and traced alike
        assert float(fnnjax.loss(MLP, PARAMS, X, Y, l2=l2)) == pytest.approx(reference, rel=1e-6)
        assert float(loss(l2)) == pytest.approx(reference, rel=1e-6)
    np.testing.assert_allclose(grad(1), fnnjax.backprop(MLP, PARAMS, X, Y, l2=1.0)[0].W, rtol=1e-6)
    bad = r"but the weight-decay coefficient lambda must be a real number \(an integer or a float\) >= 0"
    with pytest.raises(ValueError, match="l2 = True " + bad):
        fnnjax.loss(MLP, PARAMS, X, Y, l2=True)
    with pytest.raises(ValueError, match="l2 has dtype bool " + bad):
        loss(True)
    # what cannot be checked when traced shows as NaN, never as another number
    for l2 in (-0.1, float("inf"), float("nan")):
        assert np.isnan(float(loss(l2))), l2
        assert bool(jnp.all(jnp.isnan(grad(l2)))), l2
        with pytest.raises(ValueError, match=rf"l2 = {l2} but the weight-decay coefficient lambda must be a finite"):
            fnnjax.loss(MLP, PARAMS, X, Y, l2=l2)


def test_an_l2_that_overflows_the_params_dtype_raises(x64):
    message = r"l2 = 1e\+39 overflows the params' dtype float32 \(largest 3.40282e\+38\)"
    for call in (
        lambda: fnnjax.loss(MLP, PARAMS, X, Y, l2=1e39),
        lambda: fnnjax.backprop(MLP, PARAMS, X, Y, l2=1e39),
        lambda: fnnjax.gradient(MLP, PARAMS, X, Y, l2=1e39, method="grad"),
        lambda: fit(l2=1e39),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    # traced, a float64 1e39 becomes inf in float32: NaN, visible
    assert np.isnan(float(jax.jit(lambda v: fnnjax.loss(MLP, PARAMS, X, Y, l2=v))(jnp.float64(1e39))))
    # in float64 the same coefficient is a finite number: the right answer
    params64 = jax.tree.map(lambda a: a.astype(jnp.float64), PARAMS)
    value = float(fnnjax.loss(MLP, params64, X.astype(jnp.float64), Y, l2=1e39))
    assert value == pytest.approx(1e39 / 2 * sum(float(jnp.sum(p.W * p.W)) for p in params64), rel=1e-12)


# ----------------------------------------------------------------------------------------------
# Finite differences at any |theta|


def half_square(t):
    return 0.5 * jnp.sum(t * t)  # gradient: t


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_the_default_step_survives_rounding_at_large_theta(dtype):
    for value in (1e8, -3e7):
        theta = jnp.asarray([value], dtype)
        g = fnnjax.finite_difference_gradient(half_square, theta)
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(theta, np.float64), rtol=0.05)


def test_the_default_step_stays_inside_the_dtypes_range():
    """float16's largest value is 65504: at 6e4 the default step (0.1 |theta|) would overflow."""
    g = fnnjax.finite_difference_gradient(jnp.sum, jnp.asarray([6e4, -6.5e4], jnp.float16))
    np.testing.assert_array_equal(np.asarray(g, np.float32), [1.0, 1.0])
    largest = float(jnp.finfo(jnp.float32).max)
    with pytest.raises(ValueError, match=r"theta\[0\] = 3.40282e\+38 \(float32\): \|theta\| is the largest float32"):
        fnnjax.finite_difference_gradient(jnp.sum, jnp.asarray([largest], jnp.float32))


def test_a_step_that_vanishes_or_overflows_raises_or_gives_nan_under_jit():
    theta = jnp.asarray([1e8, 1.0], jnp.float32)
    centre = jnp.asarray([1e8, 0.0], jnp.float32)

    def f(t):
        return half_square(t - centre)  # gradient at theta: (0, 1)

    with pytest.raises(
        ValueError,
        match=r"theta\[0\] = 1e\+08 \(float32\): the step 0.001 vanishes there \(theta \+ h == theta in float32\); "
        r"pass a step >= 8",
    ):
        fnnjax.finite_difference_gradient(f, theta, step=1e-3)
    g = jax.jit(lambda t: fnnjax.finite_difference_gradient(f, t, step=1e-3))(theta)
    assert np.isnan(float(g[0])) and float(g[1]) == pytest.approx(1.0, rel=1e-3)  # not inf
    with pytest.raises(ValueError, match=r"step = 100000.0 overflows float16 \(largest 65504\)"):
        fnnjax.finite_difference_gradient(jnp.sum, jnp.ones(1, jnp.float16), step=1e5)
    with pytest.raises(ValueError, match=r"theta\[0\] = 60000 \(float16\): the step 10000 overflows float16 there"):
        fnnjax.finite_difference_gradient(jnp.sum, jnp.full(1, 6e4, jnp.float16), step=1e4)
    with pytest.raises(ValueError, match=r"step = -1 but the finite-difference step must be a finite number > 0"):
        fnnjax.finite_difference_gradient(jnp.sum, theta, step=-1)


# ----------------------------------------------------------------------------------------------
# Python lists


def test_python_lists_of_labels_and_inputs_are_read_as_arrays():
    expected = float(fnnjax.loss(MLP, PARAMS, X, Y))
    assert float(fnnjax.loss(MLP, PARAMS, X, [0, 1, 1, 0])) == expected
    assert float(fnnjax.loss(MLP, PARAMS, X.tolist(), Y)) == expected
    one_hot = jax.nn.one_hot(Y, 2).tolist()
    assert float(fnnjax.loss(MLP, PARAMS, X, one_hot)) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(
        fnnjax.backprop(MLP, PARAMS, X, [0, 1, 1, 0])[0].W, fnnjax.backprop(MLP, PARAMS, X, Y)[0].W
    )
    with pytest.raises(ValueError, match=r"y is a list whose rows have different lengths; pass a rectangular array"):
        fnnjax.loss(MLP, PARAMS, X, [[1, 0], [0], [1, 0], [0, 1]])
    with pytest.raises(TypeError, match=r"y is a list whose entries are not all real numbers"):
        fnnjax.loss(MLP, PARAMS, X, ["cat", "dog", "dog", "cat"])


# ----------------------------------------------------------------------------------------------
# Integers the params' dtype cannot hold


def one_by_one(dtype):
    return fnnjax.MLP((1, 1)), (fnnjax.Layer(jnp.ones((1, 1), dtype), jnp.zeros(1, dtype)),)


@pytest.mark.parametrize(
    "value, dtype, message",
    [
        (
            70000,
            jnp.float16,
            r"x holds the integer 70000, which float16 cannot hold exactly \(it would overflow to inf\)",
        ),
        (
            16777217,
            jnp.float32,
            r"x holds the integer 16777217, which float32 cannot hold exactly \(it would become 16777216\)",
        ),
        (257, jnp.bfloat16, r"x holds the integer 257, which bfloat16 cannot hold exactly \(it would become 256\)"),
    ],
)
def test_an_integer_the_params_dtype_cannot_hold_raises(value, dtype, message):
    mlp, params = one_by_one(dtype)
    with pytest.raises(ValueError, match=message):
        fnnjax.forward(mlp, params, jnp.asarray([[value]], jnp.int32))


def test_integers_convert_exactly_or_become_nan_under_jit():
    mlp, params = one_by_one(jnp.float32)
    ints = jnp.asarray([[16777216], [16777217], [-16777218], [3]], jnp.int32)
    exact = fnnjax.forward(mlp, params, ints[jnp.asarray([0, 2, 3])])
    np.testing.assert_array_equal(exact, [[16777216.0], [-16777218.0], [3.0]])  # on float32's grid: exact
    traced = jax.jit(lambda x: fnnjax.forward(mlp, params, x))(ints)
    np.testing.assert_array_equal(np.isnan(np.asarray(traced)).ravel(), [False, True, False, False])
    # the targets follow the same rule
    with pytest.raises(ValueError, match=r"y holds the integer 16777217, which float32 cannot hold exactly"):
        fnnjax.loss(mlp, params, jnp.ones((1, 1)), jnp.asarray([[16777217]], jnp.int32), loss="mse")
    # uint8 data (images) fits every float dtype exactly: converted without a check
    mlp16, params16 = one_by_one(jnp.bfloat16)
    np.testing.assert_array_equal(
        np.asarray(fnnjax.forward(mlp16, params16, np.asarray([[255]], np.uint8)), np.float32), [[255.0]]
    )
