"""The hand-written backprop and every other gradient method agree with jax.grad.

Property tests over random architectures and every target form the loss accepts, in float64
(tolerances justified by each method's error order) and in float32; per-example gradients under
vmap; jit with a traced l2 held to the eager tolerances.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fnnjax

SMOOTH_HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus")
PAIRINGS = (  # (output activation, loss)
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("identity", "mse"),
    ("tanh", "mse"),
    ("sigmoid", "squared_error"),
    ("softmax", "mse"),
    ("softplus", "mse"),
    ("leaky_relu", "squared_error"),
    ("relu", "mse"),
)


TARGET_FORMS = {  # every form of y each loss accepts (see fnnjax.loss)
    "softmax-cross_entropy": ("labels", "labels-uint8", "one-hot", "soft", "multi-hot", "zero-rows", "sum-3"),
    "sigmoid-cross_entropy": ("probabilities", "labels-float", "bool", "flat"),
    "regression": ("real", "integer", "flat"),
}


def target_forms(output, loss):
    key = f"{output}-{loss}" if loss == "cross_entropy" else "regression"
    return TARGET_FORMS[key]


def make_target(rng, output, loss, n, m, form, dtype):
    """Targets of one accepted form (``form`` is taken modulo the forms of this loss)."""
    forms = target_forms(output, loss)
    form = forms[form % len(forms)] if isinstance(form, int) else form
    if form.startswith("labels") and not form.endswith("float"):
        return jnp.asarray(rng.integers(0, m, n), jnp.uint8 if form.endswith("uint8") else jnp.int32)
    if form == "one-hot":
        return jax.nn.one_hot(rng.integers(0, m, n), m, dtype=dtype)
    if form == "soft":
        return jnp.asarray(rng.dirichlet(np.ones(m), n), dtype)
    if form == "multi-hot":
        return jnp.asarray(rng.random((n, m)) < 0.5, dtype)
    if form == "zero-rows":
        return jax.nn.one_hot(rng.integers(0, m, n), m, dtype=dtype) * jnp.asarray(rng.random((n, 1)) < 0.5, dtype)
    if form == "sum-3":
        return jnp.asarray(3 * rng.dirichlet(np.ones(m), n), dtype)
    if form == "probabilities":
        return jnp.asarray(rng.random((n, m)), dtype)
    if form == "labels-float":
        return jnp.asarray(rng.integers(0, 2, (n, m)), dtype)
    if form == "bool":
        return jnp.asarray(rng.random((n, m)) < 0.5)
    if form == "real":
        return jnp.asarray(rng.normal(size=(n, m)), dtype)
    if form == "integer":
        return jnp.asarray(rng.integers(-2, 3, (n, m)), jnp.int32)
    assert form == "flat"  # (N,) when there is one output
    return (
        make_target(rng, output, loss, n, m, "probabilities" if loss == "cross_entropy" else "real", dtype)[:, 0]
        if m == 1
        else make_target(rng, output, loss, n, m, 0, dtype)
    )


def make_problem(seed, sizes, hidden, output, loss, n, dtype=jnp.float64, form=0):
    """A random MLP problem with nonzero biases, inputs and targets that fit the loss (of the
    accepted target form ``form``: an index into :func:`target_forms`, or a name)."""
    if output == "softmax" and loss == "cross_entropy" and sizes[-1] < 2:
        sizes = (*sizes[:-1], 2)
    if output == "sigmoid" and loss == "cross_entropy":
        sizes = (*sizes[:-1], 1)
    mlp = fnnjax.MLP(sizes, hidden=hidden, output=output, leaky_slope=0.1)
    rng = np.random.default_rng(seed)  # numpy: no per-shape compilation of random kernels
    params = tuple(
        fnnjax.Layer(
            jnp.asarray(rng.normal(0, (2 / (n_in + m_out)) ** 0.5, (m_out, n_in)), dtype),
            jnp.asarray(0.3 * rng.normal(size=m_out), dtype),
        )
        for n_in, m_out in zip(sizes[:-1], sizes[1:])
    )
    x = jnp.asarray(rng.normal(size=(n, sizes[0])), dtype)
    return mlp, params, x, make_target(rng, output, loss, n, sizes[-1], form, dtype)


def rel_err(a, b):
    """Norm-wise relative error ||a - b|| / ||b|| over the whole pytree."""
    diff = sum(float(jnp.sum((u - v) ** 2)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    ref = sum(float(jnp.sum(v**2)) for v in jax.tree.leaves(b))
    return (diff / max(ref, 1e-300)) ** 0.5


architectures = st.tuples(
    st.integers(0, 2**31 - 1),
    # depth 1..6, widths 1..32 from a fixed menu: shapes recur, so eager kernels are reused
    st.lists(st.sampled_from([1, 2, 3, 7, 16, 32]), min_size=2, max_size=7),
    st.sampled_from(fnnjax.HIDDEN_ACTIVATIONS),
    st.sampled_from(PAIRINGS),
    st.sampled_from([0.0, 0.37]),
    st.sampled_from([1, 5]),
    st.integers(0, 6),  # the target form
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures)
def test_backprop_equals_grad_float64(case):
    seed, sizes, hidden, (output, loss), l2, n, form = case
    with jax.enable_x64(True):
        mlp, params, x, y = make_problem(seed, tuple(sizes), hidden, output, loss, n, form=form)
        bp = fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)
        ref = fnnjax.gradient(mlp, params, x, y, loss=loss, l2=l2, method="grad")
        assert jax.tree.structure(bp) == jax.tree.structure(params)
        assert rel_err(bp, ref) <= 1e-10


small_architectures = st.tuples(
    st.integers(0, 2**31 - 1),
    st.lists(st.sampled_from([1, 2, 3, 5]), min_size=2, max_size=4),
    st.sampled_from(SMOOTH_HIDDEN),
    st.sampled_from(PAIRINGS),
    st.sampled_from([0.0, 0.37]),
    st.integers(0, 6),  # the target form
)

# float64 tolerances of each method against jax.grad, relative to 1 + |R|: autodiff methods agree
# to rounding; central differences to O(h^2) with h = eps^(1/3), i.e. ~eps^(2/3) ~ 4e-11, held to
# 1e-7; forward differences to O(h) with h = eps^(1/2), i.e. ~1.5e-8, held to 1e-5 (both leave
# headroom for the derivative constants)
TOLERANCES = {
    "backprop": 1e-10,
    "grad": 1e-12,
    "vjp": 1e-12,
    "jacrev": 1e-12,
    "jacfwd": 1e-10,
    "jvp": 1e-10,
    "fd_central": 1e-7,
    "fd_forward": 1e-5,
}


def assert_gradient_matches(g, ref, params, method, scale):
    """Same structure, shapes and dtypes as params; every element within the method's tolerance."""
    chex.assert_trees_all_equal_shapes_and_dtypes(g, params)
    chex.assert_trees_all_close(g, ref, rtol=0, atol=TOLERANCES[method] * scale)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_architectures)
def test_every_method_agrees_float64(case):
    """Every method against jax.grad within :data:`TOLERANCES`."""
    seed, sizes, hidden, (output, loss), l2, form = case
    with jax.enable_x64(True):
        mlp, params, x, y = make_problem(seed, tuple(sizes), hidden, output, loss, 4, form=form)
        ref = fnnjax.gradient(mlp, params, x, y, loss=loss, l2=l2, method="grad")
        scale = 1.0 + float(jnp.abs(fnnjax.loss(mlp, params, x, y, loss=loss, l2=l2)))
        for method in fnnjax.METHODS:
            g = fnnjax.gradient(mlp, params, x, y, loss=loss, l2=l2, method=method)
            assert_gradient_matches(g, ref, params, method, scale)


def test_finite_difference_orders_float64(x64):
    """Halving h divides the central error by ~4 (O(h^2)) and the forward error by ~2 (O(h))."""
    mlp, params, x, y = make_problem(3, (3, 4, 2), "tanh", "softmax", "cross_entropy", 5)
    ref = jax.flatten_util.ravel_pytree(fnnjax.gradient(mlp, params, x, y, method="grad"))[0]

    def err(method, h):
        g = fnnjax.gradient(mlp, params, x, y, method=method, step=h)
        return float(jnp.max(jnp.abs(jax.flatten_util.ravel_pytree(g)[0] - ref)))

    central = [err("fd_central", h) for h in (1e-2, 5e-3)]
    forward = [err("fd_forward", h) for h in (1e-3, 5e-4)]
    assert 3.0 < central[0] / central[1] < 5.0
    assert 1.6 < forward[0] / forward[1] < 2.4


@pytest.mark.parametrize("output,loss", PAIRINGS[:4])
def test_float32_agreement(output, loss):
    """float32: backprop vs jax.grad to 1e-5 (a few ulps through the layers); central differences
    with the float32 default step (eps^(1/3) ~ 4.9e-3) to 2e-2 relative (error ~ eps^(2/3) ~ 2.5e-5
    times the third-derivative constants, plus cancellation in f(x+h) - f(x-h))."""
    mlp, params, x, y = make_problem(7, (5, 8, 6, 3), "tanh", output, loss, 8, dtype=jnp.float32)
    ref = fnnjax.gradient(mlp, params, x, y, loss=loss, l2=0.1, method="grad")
    assert ref[0].W.dtype == jnp.float32
    assert rel_err(fnnjax.backprop(mlp, params, x, y, loss=loss, l2=0.1), ref) <= 1e-5
    fd = fnnjax.gradient(mlp, params, x, y, loss=loss, l2=0.1, method="fd_central")
    assert rel_err(fd, ref) <= 2e-2


def test_deltas_are_dloss_dz(x64):
    """delta^(l) equals the autodiff derivative of the per-sample loss with respect to z^(l)."""
    mlp, params, x, y = make_problem(11, (4, 6, 5, 3), "sigmoid", "softmax", "cross_entropy", 3)
    ds = fnnjax.deltas(mlp, params, x, y)
    trace = fnnjax.forward_trace(mlp, params, x)
    for l in range(1, mlp.num_layers + 1):

        def loss_from_z(z, i, l=l):
            a = fnnjax.activate(mlp.activations[l - 1], z)
            for layer, name in zip(params[l:], mlp.activations[l:]):
                a = fnnjax.activate(name, layer.W @ a + layer.b)
            return -jnp.log(a[y[i]])

        for i in range(x.shape[0]):
            auto = jax.grad(loss_from_z)(trace.z[l - 1][i], i)
            np.testing.assert_allclose(ds[l - 1][i], auto, rtol=1e-10, atol=1e-13)


def test_backprop_uses_no_autodiff(monkeypatch):
    """With every JAX differentiation entry point disabled, backprop still runs."""
    mlp, params, x, y = make_problem(0, (3, 5, 4), "tanh", "softmax", "cross_entropy", 4, jnp.float32)
    expected = fnnjax.gradient(mlp, params, x, y, method="grad")

    def forbidden(*args, **kwargs):
        raise AssertionError("backprop called JAX autodiff")

    for name in ("grad", "value_and_grad", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "jacobian"):
        monkeypatch.setattr(jax, name, forbidden)
    got = fnnjax.backprop(mlp, params, x, y)
    assert rel_err(got, expected) < 1e-5


def test_per_example_gradients_under_vmap(x64):
    mlp, params, x, y = make_problem(5, (4, 7, 3), "relu", "softmax", "cross_entropy", 6)
    per_example = jax.vmap(lambda xi, yi: fnnjax.backprop(mlp, params, xi, yi))(x, y)
    for i in range(x.shape[0]):
        one = fnnjax.gradient(mlp, params, x[i], y[i], method="grad")
        for a, b in zip(jax.tree.leaves(per_example), jax.tree.leaves(one)):
            np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-14)
    mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), per_example)
    assert rel_err(mean, fnnjax.backprop(mlp, params, x, y)) < 1e-12


def test_jit_with_static_mlp_and_traced_l2(x64):
    mlp, params, x, y = make_problem(9, (4, 8, 3), "softplus", "softmax", "cross_entropy", 5)
    traces = []

    def counted(mlp, params, x, y, loss, l2):
        traces.append(1)  # runs once per trace, never when a compiled program is reused
        return fnnjax.backprop(mlp, params, x, y, loss=loss, l2=l2)

    jitted = jax.jit(counted, static_argnums=0, static_argnames="loss")
    for l2 in (0.5, 0.0):
        got = jitted(mlp, params, x, y, loss="cross_entropy", l2=jnp.float64(l2))
        ref = fnnjax.gradient(mlp, params, x, y, l2=l2, method="grad")
        assert rel_err(got, ref) < 1e-12
    assert len(traces) == 1  # l2 traced: one compilation serves both values
    # every method under jit, with a traced l2, held to the same tolerances as eagerly
    scale = 1.0 + float(jnp.abs(fnnjax.loss(mlp, params, x, y, l2=0.5)))
    ref = fnnjax.gradient(mlp, params, x, y, l2=0.5, method="grad")
    for method in fnnjax.METHODS:
        g = jax.jit(functools.partial(fnnjax.gradient, mlp, method=method))(params, x, y, l2=jnp.float64(0.5))
        assert_gradient_matches(g, ref, params, method, scale)


def test_cross_entropy_stable_for_huge_logits():
    """Logits of magnitude 1e4 in float32: loss and gradients stay finite and correct."""
    # z^(L) = -1e4 (sigmoid) or (-1e4, 1e4) (softmax): sample 0 costs 2e4 (softmax) or 0 (sigmoid,
    # label 0), sample 1 costs 0 (softmax) or 1e4 (sigmoid, label 1)
    for output, y, expected in (("softmax", jnp.array([0, 1]), 1e4), ("sigmoid", jnp.array([0.0, 1.0]), 5e3)):
        m = 2 if output == "softmax" else 1
        mlp = fnnjax.MLP((2, m), output=output)
        W = jnp.array([[1e4, -1e4], [-1e4, 1e4]], jnp.float32)[:m]
        params = (fnnjax.Layer(W, jnp.zeros((m,), jnp.float32)),)
        x = jnp.array([[0.0, 1.0], [0.0, 1.0]], jnp.float32)  # sample 0 very wrong, sample 1 right
        value = fnnjax.loss(mlp, params, x, y)
        assert jnp.isfinite(value)
        np.testing.assert_allclose(value, expected, rtol=1e-6)
        for method in ("backprop", "grad"):
            g = fnnjax.gradient(mlp, params, x, y, method=method)
            assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
        bp, ag = fnnjax.backprop(mlp, params, x, y), fnnjax.gradient(mlp, params, x, y, method="grad")
        assert rel_err(bp, ag) < 1e-6


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_weight_gradient_is_the_sum_of_outer_products(dtype):
    """weight_gradient(d, a) = d^T a = sum_i d_i a_i^T, eagerly, under jit, vmap and both modes of
    autodiff, whichever form of the product the platform gets."""
    from fnnjax._backprop import weight_gradient

    with jax.enable_x64(dtype == jnp.float64):
        rng = np.random.default_rng(3)
        d, a = (jnp.asarray(rng.normal(size=s), dtype) for s in ((6, 4), (6, 5)))
        outer = sum(np.outer(np.asarray(d[i], np.float64), np.asarray(a[i], np.float64)) for i in range(6))
        tol = 1e-12 if dtype == jnp.float64 else 1e-5
        for got in (weight_gradient(d, a), jax.jit(weight_gradient)(d, a)):
            assert got.shape == (4, 5) and got.dtype == dtype
            np.testing.assert_allclose(got, outer, rtol=tol, atol=tol)
        batched = jax.vmap(weight_gradient)(jnp.stack([d, 2 * d]), jnp.stack([a, a]))
        np.testing.assert_allclose(batched[1], 2 * outer, rtol=tol, atol=tol)
        _, tangent = jax.jvp(weight_gradient, (d, a), (jnp.ones_like(d), jnp.zeros_like(a)))
        np.testing.assert_allclose(tangent, np.ones((4, 6)) @ np.asarray(a, np.float64), rtol=tol, atol=tol)
        np.testing.assert_allclose(
            jax.grad(lambda a: jnp.sum(weight_gradient(d, a)))(a),
            np.asarray(d, np.float64).sum(1, keepdims=True) * np.ones((6, 5)),
            rtol=tol,
            atol=tol,
        )


def test_weight_gradient_writes_delta_transposed_out_on_the_cpu():
    """On the CPU the product gets D^T behind an optimisation barrier (the form XLA's CPU backend
    runs in its fast dot library); for a GPU it is the plain transposed product."""
    from fnnjax._backprop import weight_gradient

    d, a = jnp.ones((6, 4)), jnp.ones((6, 5))
    cpu = jax.jit(weight_gradient).trace(d, a).lower(lowering_platforms=("cpu",)).as_text()
    gpu = jax.jit(weight_gradient).trace(d, a).lower(lowering_platforms=("cuda",)).as_text()
    assert "optimization_barrier" in cpu
    assert "optimization_barrier" not in gpu and "dot_general" in gpu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_difference_steps_state_the_rule_once_for_numpy_and_jax(dtype):
    theta = np.array([0.0, 0.5, -4.0, 1e3], dtype)
    expected = (float(jnp.finfo(dtype).eps) ** (1 / 3) * np.maximum(1, np.abs(theta))).astype(dtype)
    got = fnnjax.finite_difference_steps(theta)
    assert isinstance(got, np.ndarray) and got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    on_device = jnp.asarray(theta)  # float32 unless x64 is on
    np.testing.assert_array_equal(
        np.asarray(fnnjax.finite_difference_steps(on_device)), fnnjax.finite_difference_steps(np.asarray(on_device))
    )
    np.testing.assert_array_equal(fnnjax.finite_difference_steps(theta, 1e-3), np.full_like(theta, 1e-3))
    forward = fnnjax.finite_difference_steps(theta, method="fd_forward")
    np.testing.assert_array_equal(
        forward, (fnnjax.default_step(dtype, "fd_forward") * np.maximum(1, np.abs(theta))).astype(dtype)
    )
    taken = fnnjax.representable_step(theta, got)
    np.testing.assert_array_equal((theta + taken) - theta, taken)  # exact: the step the quotient divides by
