"""The notes' worked examples (F2, F3, F14, F15), activations (F17) and initialisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax import Layer


def test_f3_linear_net_collapses_to_one_affine_map():
    """2-2-1 linear net, weights 1,2,3,4 then 1,1: y1 = x1 + 3 x2, y2 = 2 x1 + 4 x2, y = 3 x1 + 7 x2."""
    mlp = fnnjax.MLP((2, 2, 1), hidden="identity", output="identity")
    # next-layer index first: w11 = 1, w21 = 2, w12 = 3, w22 = 4
    params = (Layer(jnp.array([[1.0, 3.0], [2.0, 4.0]]), jnp.zeros(2)), Layer(jnp.array([[1.0, 1.0]]), jnp.zeros(1)))
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    trace = fnnjax.forward_trace(mlp, params, x)
    np.testing.assert_allclose(trace.a[1], jnp.stack([x[:, 0] + 3 * x[:, 1], 2 * x[:, 0] + 4 * x[:, 1]], 1))
    np.testing.assert_allclose(trace.a[2][:, 0], 3 * x[:, 0] + 7 * x[:, 1])
    collapsed = params[1].W @ params[0].W
    np.testing.assert_allclose(collapsed, [[3.0, 7.0]])


def test_f2_bias_as_augmented_weight():
    """f(W x + b) equals f([W | b] [x; 1])."""
    rng = np.random.default_rng(0)
    W, b, x = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(5, 3))
    mlp = fnnjax.MLP((3, 4), output="sigmoid")
    plain = fnnjax.forward(mlp, (Layer(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)),), x)
    augmented = fnnjax.activate(
        "sigmoid", jnp.asarray(np.hstack([x, np.ones((5, 1))]) @ np.hstack([W, b[:, None]]).T, jnp.float32)
    )
    np.testing.assert_allclose(plain, augmented, rtol=1e-6)


def test_f14_worked_example(x64):
    """2-2-1 linear net, loss (label - y)^2: dloss/dw1 = -2 (label - y) w5 x1."""
    w1, w2, w3, w4, w5, w6 = 0.11, 0.21, 0.12, 0.08, 0.14, 0.15
    x1, x2, label = 2.0, 3.0, 1.0
    mlp = fnnjax.MLP((2, 2, 1), hidden="identity")
    params = (Layer(jnp.array([[w1, w2], [w3, w4]]), jnp.zeros(2)), Layer(jnp.array([[w5, w6]]), jnp.zeros(1)))
    h1, h2 = w1 * x1 + w2 * x2, w3 * x1 + w4 * x2
    y = w5 * h1 + w6 * h2
    assert y == pytest.approx(0.191, abs=1e-12)  # the notes' forward value
    g = fnnjax.backprop(mlp, params, jnp.array([x1, x2]), jnp.array(label), loss="squared_error")
    closed = {  # every weight's closed form, from the chain rule of F14
        "w1": -2 * (label - y) * w5 * x1,
        "w2": -2 * (label - y) * w5 * x2,
        "w3": -2 * (label - y) * w6 * x1,
        "w4": -2 * (label - y) * w6 * x2,
        "w5": -2 * (label - y) * h1,
        "w6": -2 * (label - y) * h2,
    }
    got = {
        "w1": g[0].W[0, 0],
        "w2": g[0].W[0, 1],
        "w3": g[0].W[1, 0],
        "w4": g[0].W[1, 1],
        "w5": g[1].W[0, 0],
        "w6": g[1].W[0, 1],
    }
    for name in closed:
        assert float(got[name]) == pytest.approx(closed[name], rel=1e-12), name
    # one SGD step with eta = 0.05 as in the notes: w1 <- w1 - eta * dloss/dw1
    assert w1 - 0.05 * float(got["w1"]) == pytest.approx(w1 + 0.05 * 2 * (label - y) * w5 * x1)


def test_f15_per_node_formulas_equal_matrix_form(x64):
    """3-2-2 sigmoid net (inputs 1,2,3; hidden 4,5; outputs 6,7), E = 1/2 sum (t - o)^2:
    delta_k = (o_k - t_k) o_k (1 - o_k), delta_j = y_j (1 - y_j) sum_k w_kj delta_k,
    dE/dw_kj = delta_k y_j, written out node by node, equal the matrix backprop."""
    rng = np.random.default_rng(15)
    w = {f"w{i}{j}": rng.normal() for i in (4, 5) for j in (1, 2, 3)}
    w.update({f"w{k}{j}": rng.normal() for k in (6, 7) for j in (4, 5)})
    wb = {n: rng.normal() for n in (4, 5, 6, 7)}  # w_b4 ... the bias weights
    x = {1: 0.35, 2: -0.9, 3: 0.6}
    t = {6: 0.0, 7: 1.0}

    def sig(v):
        return 1 / (1 + np.exp(-v))

    y = dict(x)
    for j in (4, 5):
        y[j] = sig(sum(w[f"w{j}{i}"] * x[i] for i in (1, 2, 3)) + wb[j])
    for k in (6, 7):
        y[k] = sig(sum(w[f"w{k}{j}"] * y[j] for j in (4, 5)) + wb[k])
    delta = {k: (y[k] - t[k]) * y[k] * (1 - y[k]) for k in (6, 7)}
    for j in (4, 5):
        delta[j] = y[j] * (1 - y[j]) * sum(w[f"w{k}{j}"] * delta[k] for k in (6, 7))

    mlp = fnnjax.MLP((3, 2, 2), hidden="sigmoid", output="sigmoid")
    params = (
        Layer(jnp.array([[w[f"w{i}{j}"] for j in (1, 2, 3)] for i in (4, 5)]), jnp.array([wb[4], wb[5]])),
        Layer(jnp.array([[w[f"w{k}{j}"] for j in (4, 5)] for k in (6, 7)]), jnp.array([wb[6], wb[7]])),
    )
    xs, ts = jnp.array([x[1], x[2], x[3]]), jnp.array([t[6], t[7]])
    np.testing.assert_allclose(fnnjax.forward(mlp, params, xs), [y[6], y[7]], rtol=1e-13)
    ds = fnnjax.deltas(mlp, params, xs, ts, loss="mse")
    np.testing.assert_allclose(ds[0], [delta[4], delta[5]], rtol=1e-12)
    np.testing.assert_allclose(ds[1], [delta[6], delta[7]], rtol=1e-12)
    g = fnnjax.backprop(mlp, params, xs, ts, loss="mse")
    for a, i in enumerate((4, 5)):
        for b, j in enumerate((1, 2, 3)):
            assert float(g[0].W[a, b]) == pytest.approx(delta[i] * x[j], rel=1e-12)
        assert float(g[0].b[a]) == pytest.approx(delta[i], rel=1e-12)  # dE/dw_b = delta * 1
    for a, k in enumerate((6, 7)):
        for b, j in enumerate((4, 5)):
            assert float(g[1].W[a, b]) == pytest.approx(delta[k] * y[j], rel=1e-12)


@pytest.mark.parametrize("name", [n for n in fnnjax.HIDDEN_ACTIVATIONS])
def test_f17_hand_written_derivatives_match_autodiff(name, x64):
    z = jnp.concatenate([jnp.linspace(-30.0, 30.0, 601), jnp.array([-1e-9, 1e-9, 0.3, -0.3])])
    z = z[z != 0]  # relu/leaky/step have a kink at 0 (checked separately)
    auto = jax.vmap(jax.grad(lambda v: fnnjax.activate(name, v, slope=0.2)))(z)
    np.testing.assert_allclose(fnnjax.activation_derivative(name, z, slope=0.2), auto, rtol=1e-12, atol=1e-15)


def test_f17_conventions_at_zero_and_identities(x64):
    z = jnp.zeros(1)
    assert float(fnnjax.activation_derivative("relu", z)[0]) == 0.0  # 1[z > 0]
    assert float(fnnjax.activation_derivative("leaky_relu", z, slope=0.2)[0]) == pytest.approx(0.2)
    assert float(fnnjax.activate("step", z)[0]) == 0.0 and float(fnnjax.activate("step", jnp.ones(1))[0]) == 1.0
    v = jnp.linspace(-5, 5, 101)
    np.testing.assert_allclose(jnp.tanh(v), 2 * fnnjax.activate("sigmoid", 2 * v) - 1, atol=1e-15)
    assert float(jnp.max(fnnjax.activation_derivative("sigmoid", v))) <= 0.25


def test_softmax_vjp_is_the_jacobian_product(x64):
    z, g = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.0, -2.0, 0.5])
    J = jax.jacobian(lambda v: jax.nn.softmax(v))(z)
    np.testing.assert_allclose(fnnjax.softmax_vjp(jax.nn.softmax(z), g), J.T @ g, rtol=1e-13)


@pytest.mark.parametrize(
    "scheme,expected_std",
    [
        ("normal", lambda i, o: 0.01),
        ("xavier", lambda i, o: (2 / (i + o)) ** 0.5),
        ("he", lambda i, o: (2 / i) ** 0.5),
        ("uniform", lambda i, o: (1 / i) ** 0.5 / 3**0.5),
        ("xavier_uniform", lambda i, o: (6 / (i + o)) ** 0.5 / 3**0.5),
        ("he_uniform", lambda i, o: (6 / i) ** 0.5 / 3**0.5),
    ],
)
def test_init_schemes_have_the_documented_scale(scheme, expected_std):
    mlp = fnnjax.MLP((300, 200, 10))
    params = fnnjax.init_params(jax.random.key(0), mlp, scheme)
    W = params[0].W
    assert W.shape == (200, 300) and W.dtype == jnp.float32
    assert float(jnp.std(W)) == pytest.approx(expected_std(300, 200), rel=0.03)
    assert all(float(jnp.max(jnp.abs(p.b))) == 0.0 for p in params)


def test_init_aliases_options_and_dtype(x64):
    mlp = fnnjax.MLP((5, 4, 3))
    a = fnnjax.init_params(jax.random.key(1), mlp, "glorot")
    b = fnnjax.init_params(jax.random.key(1), mlp, "xavier")
    assert all(bool(jnp.array_equal(u, v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    c = fnnjax.init_params(jax.random.key(1), mlp, "normal", std=0.5, dtype=jnp.float64)
    assert c[0].W.dtype == jnp.float64
    assert float(jnp.max(jnp.abs(c[0].W))) > 0.1
    keys_differ = fnnjax.init_params(jax.random.key(2), mlp, "xavier")
    assert not bool(jnp.array_equal(a[0].W, keys_differ[0].W))


def test_mlp_is_hashable_static_description():
    a = fnnjax.MLP([784, 256, 10], hidden="relu", output="softmax")
    b = fnnjax.MLP((784, 256, 10), hidden=("relu",), output="softmax")
    assert a == b and hash(a) == hash(b)
    assert a.sizes == (784, 256, 10) and a.activations == ("relu", "softmax")
    assert a.num_params == 784 * 256 + 256 + 256 * 10 + 10
    with pytest.raises(dataclasses_frozen_error()):
        a.sizes = (1, 2)


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_single_sample_shapes():
    mlp = fnnjax.MLP((3, 4, 2), output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, "he")
    assert fnnjax.forward(mlp, params, jnp.ones(3)).shape == (2,)
    assert [d.shape for d in fnnjax.deltas(mlp, params, jnp.ones(3), jnp.array(1))] == [(4,), (2,)]
    assert float(jnp.sum(fnnjax.forward(mlp, params, jnp.ones((5, 3))), axis=-1)[0]) == pytest.approx(1.0)
