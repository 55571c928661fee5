"""Every check of the verification suite passes on fnnjax and FAILS on a deliberately wrong
implementation (the classic mistakes: delta without f', W where W^T belongs, L2 forgotten or applied
to biases, a sum where a mean belongs, a wrong derivative, a wrong finite-difference formula, ...).

Checks run in quick mode (one seed, small sizes); compiled programs are shared within the session.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
import pytest

import fnnjax
from fnnjax import Layer
from fnnjax.verify import get_check, run_check


def run(check_id: str, **implementations):
    return run_check(get_check(check_id), seed=0, quick=True, **implementations)


def assert_catches(check_id: str, allow_error: bool = False, **wrong):
    """The check passes with fnnjax's implementation and fails with the wrong one, by measurement
    (not by crashing) unless ``allow_error``."""
    good = run(check_id)
    assert good.passed, (check_id, good.measured)
    bad = run(check_id, **wrong)
    assert bad.status == "fail", (check_id, bad.measured)
    if not allow_error:
        assert "error" not in bad.measured, bad.measured
    return bad


# ----------------------------------------------------------------------------------------------
# A student-style backprop with switchable bugs (jittable, like fnnjax's)


def _target(mlp, y, dtype):
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(jnp.reshape(y, (-1,)), mlp.sizes[-1], dtype=dtype)
    return jnp.reshape(y.astype(dtype), (-1, mlp.sizes[-1]))


def make_deltas(bug=None):
    def deltas(mlp, params, x, y, loss="cross_entropy"):
        single = x.ndim == 1
        x2 = x[None, :] if single else x
        trace = fnnjax.forward_trace(mlp, params, x2)
        a, z = trace.a[-1], trace.z[-1]
        t = _target(mlp, y, a.dtype)
        slope = mlp.leaky_slope
        if loss == "cross_entropy":
            general = mlp.output == "softmax" and bug != "simple_softmax_delta"
            d = a * jnp.sum(t, axis=-1, keepdims=True) - t if general else a - t
            if bug == "ce_fprime":  # the f' that cancels, multiplied in anyway
                d = d * a * (1 - a)
        else:
            g = (a - t) if (loss == "mse" or bug == "se_no_factor2") else 2 * (a - t)
            if mlp.output == "softmax":
                d = fnnjax.softmax_vjp(a, g)
            elif bug == "no_output_fprime":
                d = g
            else:
                d = g * fnnjax.activation_derivative(mlp.output, z, slope=slope)
        ds = [d]
        for l in range(mlp.num_layers - 1, 0, -1):
            W = params[l].W
            back = ds[-1] @ (W.T if (bug == "transpose" and W.shape[0] == W.shape[1]) else W)
            if bug == "no_hidden_fprime":
                ds.append(back)
            else:
                ds.append(fnnjax.activation_derivative(mlp.hidden[l - 1], trace.z[l - 1], slope=slope) * back)
        ds = ds[::-1]
        return tuple(d[0] for d in ds) if single else tuple(ds)

    return deltas


def make_backprop(bug=None):
    deltas = make_deltas(bug)

    def backprop(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[None] if x.ndim == 1 else y
        ds = deltas(mlp, params, x2, y2, loss)
        acts = fnnjax.forward_trace(mlp, params, x2).a
        n = 1 if bug == "sum" else x2.shape[0]
        grads = []
        for l, (d, a_prev, p) in enumerate(zip(ds, acts[:-1], params)):
            gW = d.T @ a_prev / n + (0 if bug == "no_l2" else l2) * p.W
            gb = jnp.sum(d, axis=0) / n + (l2 * p.b if bug == "l2_bias" else 0)
            if bug == "sign":
                gW, gb = -gW, -gb
            if bug == "zero_first_layer" and l == 0:
                gW, gb = jnp.zeros_like(gW), jnp.zeros_like(gb)
            grads.append(Layer(gW, gb))
        return tuple(grads)

    return backprop


def test_student_backprop_without_bugs_is_right(x64):
    mlp = fnnjax.MLP((3, 4, 4, 2), hidden=("tanh", "sigmoid"), output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, "xavier", dtype=jnp.float64)
    x, y = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64), jnp.asarray([0, 1, 1, 0, 1])
    got = jax.jit(make_backprop(), static_argnums=(0, 4))(mlp, params, x, y, "cross_entropy", 0.1)
    want = fnnjax.backprop(mlp, params, x, y, "cross_entropy", 0.1)
    assert all(jnp.allclose(g.W, w.W, atol=1e-12) and jnp.allclose(g.b, w.b, atol=1e-12) for g, w in zip(got, want))


# ----------------------------------------------------------------------------------------------
# F1-F5


def forward_without_bias(mlp, params, x):
    return fnnjax.forward(mlp, tuple(Layer(p.W, jnp.zeros_like(p.b)) for p in params), x)


def test_f1_catches_forgotten_bias():
    def trace(mlp, params, x):
        return fnnjax.forward_trace(mlp, tuple(Layer(p.W, jnp.zeros_like(p.b)) for p in params), x)

    assert_catches("F1-composition", forward_trace=trace)


def test_f2_catches_forgotten_bias():
    assert_catches("F2-augmented-weight", forward=forward_without_bias)


def test_f3_catches_a_nonlinear_hidden_layer():
    def relu_net(mlp, params, x):
        return fnnjax.forward(dataclasses.replace(mlp, hidden="relu"), params, x)

    assert_catches("F3-linear-collapse", forward=relu_net)


def unit_without_bias(w, b, X):
    return (X @ jnp.asarray(w, jnp.float64) > 0).astype(jnp.float64)


def test_f4_threshold_units_catch_a_unit_without_bias():
    assert_catches("F4-threshold-units", unit_output=unit_without_bias)


def test_f4_xor_proof_catches_a_unit_that_does_not_compute_its_table():
    bad = assert_catches("F4-xor-not-separable", unit_output=unit_without_bias)
    assert "unit or certificate failed" in bad.measured


def test_f4_xor_proof_has_the_farkas_certificate():
    good = run("F4-xor-not-separable")
    assert good.measured["XOR certificate y"] == "1/4, 1/4, 1/4, 1/4"
    assert good.measured["y^T A"] == "0, 0, 0" and good.measured["y^T c"] == "-1/2"
    assert good.measured["separable (unit verified)"] == 14


def test_f4_xor_net_catches_forgotten_bias():
    assert_catches("F4-xor-hidden-layer", forward=forward_without_bias)


def test_f4_relu_catches_a_linear_relu():
    def identity_relu(name, z, slope=0.01):
        return z if name == "relu" else fnnjax.activate(name, z, slope=slope)

    assert_catches("F4-relu-piecewise-linear", activate=identity_relu)


def test_f5_softmax_catches_missing_normalisation():
    def unnormalised(mlp, params, x):
        return jnp.exp(fnnjax.forward_trace(mlp, params, x).z[-1])

    assert_catches("F5-softmax-probabilities", forward=unnormalised)


def test_f5_sigmoid_catches_tanh_output():
    def tanh_out(mlp, params, x):
        return fnnjax.forward(dataclasses.replace(mlp, output="tanh") if mlp.output == "sigmoid" else mlp, params, x)

    assert_catches("F5-sigmoid-binary", forward=tanh_out)


# ----------------------------------------------------------------------------------------------
# F6-F9


def test_f6_softmax_catches_sum_where_mean_belongs():
    def summed(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        n = 1 if x.ndim == 1 else x.shape[0]
        return n * fnnjax.loss(mlp, params, x, y, loss, l2)

    assert_catches("F6-softmax-ce", loss=summed)


def test_f6_sigmoid_catches_missing_negative_class_term():
    def half_bce(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        p = fnnjax.forward(mlp, params, x)
        t = jnp.reshape(y, p.shape).astype(p.dtype)
        return jnp.mean(-jnp.sum(jnp.reshape(t * jnp.log(p), (-1, p.shape[-1])), axis=-1))

    assert_catches("F6-sigmoid-bce", loss=half_bce)


def loss_l2_on_biases(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    return fnnjax.loss(mlp, params, x, y, loss, l2) + l2 / 2 * sum(jnp.sum(p.b * p.b) for p in params)


def loss_l2_forgotten(mlp, params, x, y, loss="cross_entropy", l2=0.0):
    return fnnjax.loss(mlp, params, x, y, loss, 0.0)


@pytest.mark.parametrize("wrong", [loss_l2_on_biases, loss_l2_forgotten], ids=["l2-on-biases", "l2-forgotten"])
def test_f7_catches_l2_mistakes(wrong):
    assert_catches("F7-structural-risk", loss=wrong)


@pytest.mark.parametrize("bug", ["l2_bias", "no_l2"])
def test_f8_catches_l2_mistakes_in_the_update(bug):
    assert_catches("F8-gradient-descent", backprop=make_backprop(bug))


def test_f9_catches_mse_without_the_half():
    def no_half(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        value = fnnjax.loss(mlp, params, x, y, loss, l2)
        return 2 * value if loss == "mse" else value

    assert_catches("F9-squared-error", loss=no_half)


# ----------------------------------------------------------------------------------------------
# F10-F16


@pytest.mark.parametrize(
    "check_id, bug",
    [
        ("F10-softmax-ce", "ce_fprime"),
        ("F10-softmax-ce", "simple_softmax_delta"),  # y_hat - y: right only for rows summing to 1
        ("F10-sigmoid-bce", "ce_fprime"),
        ("F10-sigmoid-mse", "no_output_fprime"),
        ("F10-general", "se_no_factor2"),
    ],
)
def test_f10_catches_wrong_output_deltas(check_id, bug):
    assert_catches(check_id, deltas=make_deltas(bug))


def test_f10_sigmoid_mse_measures_saturation():
    m = run("F10-sigmoid-mse").measured
    assert m["saturated delta_mse / delta_bce"] == pytest.approx(m["sigma'(8)"], rel=1e-10)
    assert m["sigma'(8)"] < 1e-3


@pytest.mark.parametrize("bug", ["no_hidden_fprime", "transpose"])
def test_f11_catches_wrong_hidden_deltas(bug):
    assert_catches("F11-hidden-deltas", deltas=make_deltas(bug))


def test_f12_catches_wrong_deltas_and_wrong_single_sample_gradient():
    assert_catches("F12-outer-product", deltas=make_deltas("no_hidden_fprime"))
    assert_catches("F12-outer-product", backprop=make_backprop("transpose"))


@pytest.mark.parametrize("bug", ["sum", "no_l2", "l2_bias"])
def test_f13_catches_batch_and_l2_mistakes(bug):
    assert_catches("F13-batched-regularised", backprop=make_backprop(bug))


def test_f14_catches_the_wrong_scaling():
    def half_scaled(mlp, params, x, y, loss="cross_entropy", l2=0.0):
        return fnnjax.backprop(mlp, params, x, y, "mse" if loss == "squared_error" else loss, l2)

    assert_catches("F14-worked-example", backprop=half_scaled)
    assert run("F14-worked-example").measured["dloss/dw1 by hand"] == pytest.approx(-2 * (1 - 0.191) * 0.14 * 2)


def test_f15_catches_w_where_w_transpose_belongs():
    assert_catches("F15-node-indexed", backprop=make_backprop("transpose"))


def test_f16_catches_a_wrong_trace_and_a_wrong_gradient():
    def pre_activation_trace(mlp, params, x):
        t = fnnjax.forward_trace(mlp, params, x)
        return fnnjax.Trace(t.z, (t.a[0], *t.z))

    assert_catches("F16-algorithm", forward_trace=pre_activation_trace)
    bad = assert_catches("F16-algorithm", backprop=make_backprop("sign"))
    assert bad.measured["lowest Taylor order"] < 1.5


# ----------------------------------------------------------------------------------------------
# F17-F18


def derivative_with(name_wrong, fn):
    def derivative(name, z, slope=0.01):
        return fn(z) if name == name_wrong else fnnjax.activation_derivative(name, z, slope=slope)

    return derivative


@pytest.mark.parametrize(
    "name, wrong",
    [
        ("sigmoid", lambda z: jax.nn.sigmoid(z)),
        ("tanh", lambda z: 1 - jnp.tanh(z)),
        ("relu", lambda z: jnp.ones_like(z)),
        ("softplus", lambda z: jax.nn.softplus(z)),
    ],
    ids=["sigmoid", "tanh", "relu", "softplus"],
)
def test_f17_catches_a_wrong_derivative(name, wrong):
    assert_catches("F17-derivatives", activation_derivative=derivative_with(name, wrong))


def test_f17_identities_catch_a_wrong_tanh():
    def activate(name, z, slope=0.01):
        return 2 * jax.nn.sigmoid(z) - 1 if name == "tanh" else fnnjax.activate(name, z, slope=slope)

    assert_catches("F17-identities", activate=activate)


def test_f18_bounds_catch_sigma_prime_equal_sigma():
    assert_catches("F18-derivative-bounds", activation_derivative=derivative_with("sigmoid", jax.nn.sigmoid))


def test_f18_vanishing_catches_deltas_without_f_prime():
    assert_catches("F18-vanishing-gradients", deltas=make_deltas("no_hidden_fprime"))


# ----------------------------------------------------------------------------------------------
# F19-F23


def forward_difference_everywhere(f, theta, *, central=True, step=None):
    return fnnjax.finite_difference_gradient(f, theta, central=False, step=step)


def test_f19_orders_catch_a_forward_difference_sold_as_central():
    bad = assert_catches("F19-fd-orders", finite_difference_gradient=forward_difference_everywhere)
    assert bad.measured["central order (fitted)"] < 1.3


def test_f19_best_step_catches_a_fixed_step():
    assert_catches("F19-best-step", default_step=lambda dtype, method="fd_central": 1e-4)


def test_f19_cost_catches_extra_evaluations():
    def wasteful(f, theta, *, central=True, step=None):
        if central:
            return fnnjax.finite_difference_gradient(f, theta, central=True, step=step)
        h = fnnjax.default_step(theta.dtype, "fd_forward")

        def partial(i):  # re-evaluates f(theta) for every coordinate: 2P evaluations, not P + 1
            e = jnp.zeros_like(theta).at[i].set(h)
            return (f(theta + e) - f(theta)) / h

        return jax.lax.map(partial, jnp.arange(theta.shape[0]))

    assert_catches("F19-fd-cost", finite_difference_gradient=wasteful)


def test_f20_catches_a_gradient_wrong_in_one_layer():
    assert_catches("F20-autodiff-programs", backprop=make_backprop("zero_first_layer"))


def test_f21_passes_catch_swapped_modes():
    assert_catches("F21-jacobian-passes", jacfwd=jax.jacrev, jacrev=jax.jacfwd)


def test_f21_crossover_catches_swapped_modes():
    assert_catches("F21-crossover", jacfwd=jax.jacrev, jacrev=jax.jacfwd)


def test_f21_loss_catches_forward_mode_sold_as_reverse():
    def gradient(mlp, params, x, y, loss="cross_entropy", l2=0.0, method="backprop", *, step=None):
        return fnnjax.gradient(mlp, params, x, y, loss, l2, "jacfwd" if method == "grad" else method)

    assert_catches("F21-loss-one-reverse-pass", gradient=gradient)


def test_f22_catches_the_numerator_order():
    # (dz/dy)^T (dy/dx)^T is the numerator-layout result: wrong values on the square case, wrong shape
    # on the others (a crash is a failure too)
    assert_catches("F22-layouts", allow_error=True, chain=lambda dy_dx, dz_dy: dz_dy.T @ dy_dx.T)


def test_f23_catches_a_jit_that_does_not_compile():
    bad = assert_catches("F23-jit-vs-eager", jit=lambda fn: fn)
    assert bad.measured["jit: traces in 5 calls"] == 5


# ----------------------------------------------------------------------------------------------
# F24-F27


def test_f24_catches_a_convex_loss():
    def convex(w1, w2, x, t):
        return jnp.mean((w1 * x + w2 - t) ** 2)

    assert_catches("F24-nonconvex", loss_fn=convex)


def test_f25_catches_a_non_squashing_hidden_layer():
    assert_catches("F25-universal-approximation", hidden="identity")


def test_f26_dropout_catches_missing_rescale():
    def no_rescale(key, mlp, n, rate, dtype=jnp.float32):
        return tuple(s * (1 - rate) for s in fnnjax.dropout_scales(key, mlp, n, rate, dtype))

    assert_catches("F26-dropout", dropout_scales=no_rescale)


def test_f26_dropout_catches_dropout_left_on_at_evaluation():
    def evaluate_with_dropout(mlp, params, data, *, loss="cross_entropy", batch_size=8192):
        x, y = data
        scales = fnnjax.dropout_scales(jax.random.key(0), mlp, x.shape[0], 0.5, x.dtype)
        a = x
        for l, (p, name) in enumerate(zip(params, mlp.activations)):
            z = a @ p.W.T + p.b[None, :]
            a = fnnjax.activate(name, z, slope=mlp.leaky_slope)
            if l < mlp.num_layers - 1:
                a = a * scales[l]
        logp = jax.nn.log_softmax(z, axis=-1)
        return {"loss": float(-jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))), "acc": None}

    assert_catches("F26-dropout", evaluate=evaluate_with_dropout)


def test_f26_weight_decay_catches_decayed_biases():
    assert_catches("F26-weight-decay", backprop=make_backprop("l2_bias"))
    assert_catches("F26-weight-decay", l2_decay=lambda lam: optax.add_decayed_weights(lam))


def test_f26_validation_catches_a_gradient_without_l2():
    assert_catches("F26-validation", backprop=make_backprop("no_l2"))


def test_f27_catches_a_count_without_biases():
    def weights_only(mlp):
        return sum(m * n for n, m in zip(mlp.sizes[:-1], mlp.sizes[1:]))

    assert_catches("F27-weight-count", count_params=weights_only)
