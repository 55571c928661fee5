"""fnnjax.check_gradients: right gradients pass (float64, float32, float16, at kinks), wrong ones fail
with the right diagnosis, fast mode, the Taylor rate, and every error message."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax.gradcheck import diagnose_leaf, fit_combination, name_factor


def f_tanh(p, x):
    """A small pytree problem: sum over samples of tanh(x w + b)^2."""
    return jnp.sum(jnp.tanh(x @ p["w"] + p["b"][None, :]) ** 2)


def grad_tanh(p, x):
    """Its gradient by hand: d/dz tanh(z)^2 = 2 tanh (1 - tanh^2)."""
    t = jnp.tanh(x @ p["w"] + p["b"][None, :])
    g = 2 * t * (1 - t * t)
    return {"b": jnp.sum(g, axis=0), "w": x.T @ g}


def tanh_problem(dtype=jnp.float32, m=2):
    """Params {"b": (m,), "w": (3, m)} and x: (5, 3), drawn with numpy (no eager JAX op to compile)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(5, 3)).astype(dtype))
    params = {
        "b": jnp.asarray(np.array([0.1, -0.2, 0.3][:m], dtype)),
        "w": jnp.asarray((0.5 * rng.normal(size=(3, m))).astype(dtype)),
    }
    return params, x


def risk(p, mlp, x, y, loss, l2):
    return fnnjax.loss(mlp, p, x, y, loss=loss, l2=l2)


def backprop(p, mlp, x, y, loss, l2):
    return fnnjax.backprop(mlp, p, x, y, loss=loss, l2=l2)


def mlp_problem(hidden, dtype=jnp.float32, sizes=(4, 6, 3), n=8, seed=0):
    """A softmax MLP with He-scaled weights, nonzero biases, inputs and one-hot targets (numpy draws)."""
    mlp = fnnjax.MLP(sizes, hidden=hidden, output="softmax")
    rng = np.random.default_rng(seed)
    params = tuple(
        fnnjax.Layer(
            jnp.asarray((rng.normal(size=(m, k)) * np.sqrt(2 / k)).astype(dtype)),
            jnp.asarray((0.3 * rng.normal(size=m)).astype(dtype)),
        )
        for k, m in zip(sizes[:-1], sizes[1:])
    )
    x = jnp.asarray(rng.normal(size=(n, sizes[0])).astype(dtype))
    y = jnp.asarray(np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)])
    return mlp, params, x, y


def scaled(grad_fn, path_factor):
    """grad_fn with some leaves multiplied: {leaf key: factor}."""

    def wrong(p, *args):
        g = grad_fn(p, *args)
        return {k: v * path_factor.get(k, 1.0) for k, v in g.items()}

    return wrong


# ----------------------------------------------------------------------------------------------
# Right gradients pass


def test_right_gradient_passes_every_oracle_in_float64(x64):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f_tanh, grad_tanh, params, x)
    assert report.passed and report.diagnosis is None
    assert {(r.path, r.oracle) for r in report.leaves} == {
        ("['b']", "autodiff"),
        ("['b']", "fd"),
        ("['w']", "autodiff"),
        ("['w']", "fd"),
    }
    by = {(r.path, r.oracle): r for r in report.leaves}
    assert by["['w']", "autodiff"].max_abs_err < 1e-14  # jax.grad agrees to rounding
    assert by["['w']", "fd"].max_abs_err < 1e-8  # Richardson-extrapolated central differences
    assert all(abs(r - 2) < 0.1 for r in report.taylor.rates)  # remainder ~ e^2
    report.raise_if_failed()  # no exception


@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid"])
def test_right_float32_backprop_passes_default_tolerances(hidden):
    mlp, params, x, y = mlp_problem(hidden)
    report = fnnjax.check_gradients(risk, backprop, params, mlp, x, y, "cross_entropy", 0.01)
    assert report.passed, report.render()
    assert report.dtype == "float32"
    fd = [r for r in report.leaves if r.oracle == "fd"]
    assert max(r.max_abs_err for r in fd) > 1e-7  # float32 differences are noisy, yet within tolerance


def test_float16_right_gradient_passes_where_a_fixed_step_would_give_zero():
    params, x = tanh_problem(jnp.float16)
    big = params["w"][jnp.abs(params["w"]) >= 0.25]  # a fixed step of 1e-4 is lost in float16 there
    assert big.size and bool(jnp.all(big + jnp.float16(1e-4) == big))
    report = fnnjax.check_gradients(f_tanh, grad_tanh, params, x)
    assert report.passed, report.render()
    assert report.step == pytest.approx(float(jnp.finfo(jnp.float16).eps) ** (1 / 3))


def test_too_large_step_widens_the_fd_tolerance_instead_of_failing(x64):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f_tanh, grad_tanh, params, x, step=0.05)
    assert report.passed, report.render()
    fd = [r for r in report.leaves if r.oracle == "fd"]
    assert max(r.tolerance for r in fd) > 1e-4  # the estimated truncation error is in the tolerance


def relu_at_kink(dtype):
    """A ReLU net where unit 3 of layer 1 has z = 0 exactly for sample 0 (x_0 = 0, b_3 = 0)."""
    mlp, params, x, y = mlp_problem("relu", dtype, sizes=(3, 4, 2), n=5, seed=3)
    params = (fnnjax.Layer(params[0].W, jnp.asarray(np.array([0.5, -0.3, 0.0, 0.2], dtype))), params[1])
    x = jnp.asarray(np.asarray(x).copy() * (np.arange(5) > 0)[:, None])  # sample 0 is the zero vector
    return mlp, params, x, y


def backprop_relu_ge(p, mlp, x, y, loss, l2):
    """backprop with relu'(0) = 1 (the 1[z >= 0] convention) for a (3, 4, 2) softmax net: right too."""
    z1 = x @ p[0].W.T + p[0].b[None, :]
    a1 = jnp.maximum(z1, 0)
    d2 = (jax.nn.softmax(a1 @ p[1].W.T + p[1].b[None, :], axis=-1) - y) / x.shape[0]
    d1 = (d2 @ p[1].W) * (z1 >= 0).astype(x.dtype)
    return (fnnjax.Layer(d1.T @ x, jnp.sum(d1, 0)), fnnjax.Layer(d2.T @ a1, jnp.sum(d2, 0)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grad_fn", [backprop, backprop_relu_ge], ids=["relu'(0)=0", "relu'(0)=1"])
def test_relu_exactly_at_a_kink_does_not_false_fail(dtype, grad_fn):
    with jax.enable_x64(dtype == "float64"):
        mlp, params, x, y = relu_at_kink(jnp.dtype(dtype))
        assert float(np.asarray(x)[0] @ np.asarray(params[0].W)[2] + np.asarray(params[0].b)[2]) == 0.0
        report = fnnjax.check_gradients(risk, grad_fn, params, mlp, x, y, "cross_entropy", 0.0)
    assert report.passed, report.render()
    b1 = {r.oracle: r for r in report.leaves if r.path == "[0].b"}
    assert b1["fd"].skipped == 1  # b_3 straddles the kink: skipped, not failed
    assert b1["autodiff"].skipped == (1 if grad_fn is backprop_relu_ge else 0)


def test_wrong_gradient_still_fails_at_a_kink(x64):
    mlp, params, x, y = relu_at_kink(jnp.float64)

    def wrong(p, *args):
        g = backprop(p, *args)
        return (g[0], fnnjax.Layer(-g[1].W, g[1].b))

    report = fnnjax.check_gradients(risk, wrong, params, mlp, x, y, "cross_entropy", 0.0)
    assert not report.passed
    assert report.diagnosis.startswith("[1].W: sign flipped")


# ----------------------------------------------------------------------------------------------
# Wrong gradients fail, with a diagnosis


@pytest.mark.parametrize(
    "factor, words",
    [(2.0, "constant factor 2 "), (0.5, "constant factor 1/2"), (-1.0, "sign flipped"), (5.0, "5 = N, the batch size")],
)
def test_constant_factor_is_diagnosed(x64, factor, words):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(
        f_tanh, scaled(grad_tanh, {"b": factor, "w": factor}), params, x, factors=[(5, "N, the batch size")]
    )
    assert not report.passed
    assert all(not r.passed for r in report.leaves)
    assert words in report.diagnosis
    assert report.diagnosis.startswith("every leaf is wrong the same way")
    assert report.taylor.passed is False and max(report.taylor.rates) < 1.3  # remainder ~ e: wrong


def test_one_wrong_leaf_is_located(x64):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f_tanh, scaled(grad_tanh, {"b": 3.0}), params, x)
    failing = report.failures()
    assert {r.path for r in failing} == {"['b']"}
    ad = next(r for r in failing if r.oracle == "autodiff")
    e = np.asarray(jax.grad(f_tanh)(params, x)["b"])
    assert ad.expected == pytest.approx(e[ad.worst_index])
    assert ad.got == pytest.approx(3 * e[ad.worst_index])
    assert ad.max_abs_err == pytest.approx(2 * np.max(np.abs(e)))
    assert ad.rel_err == pytest.approx(2.0)
    assert "['b']: off by a constant factor 3" in report.diagnosis


def test_wrong_only_in_one_group_of_an_mlp(x64):
    mlp, params, x, y = mlp_problem("tanh", jnp.float64, sizes=(3, 4, 5, 2))

    def wrong(p, *args):
        g = backprop(p, *args)
        return (g[0], fnnjax.Layer(g[1].W, 2 * g[1].b), g[2])

    with pytest.raises(fnnjax.GradientCheckError, match=r"wrong only in \[1\] \(\[1\]\.b\)"):
        fnnjax.check_gradients(risk, wrong, params, mlp, x, y, "cross_entropy", 0.0).raise_if_failed()


def test_transposed_matrix_is_diagnosed_for_both_shapes(x64):
    for m in (2, 3):  # w is 3 x 2 (the transpose has another shape) and 3 x 3 (square)
        params, x = tanh_problem(jnp.float64, m=m)

        def transposed(p, x):
            g = grad_tanh(p, x)
            return {"b": g["b"], "w": g["w"].T}

        report = fnnjax.check_gradients(f_tanh, transposed, params, x)
        assert not report.passed
        assert "['w']: transposed" in report.diagnosis, report.diagnosis


def test_zero_gradient_and_suspects(x64):
    params, x = tanh_problem(jnp.float64)
    zero = fnnjax.check_gradients(f_tanh, lambda p, x: {"b": grad_tanh(p, x)["b"], "w": 0 * p["w"]}, params, x)
    assert "['w']: zero where the expected gradient is not" in zero.diagnosis
    t = jnp.tanh(x @ params["w"] + params["b"][None, :])
    no_fprime = {"b": jnp.sum(2 * t, 0), "w": x.T @ (2 * t)}  # forgot tanh' = 1 - tanh^2
    report = fnnjax.check_gradients(f_tanh, lambda p, x: no_fprime, params, x, suspects={"forgot tanh'": no_fprime})
    assert report.diagnosis.startswith("every leaf is wrong the same way: forgot tanh'")


def test_fd_only_oracle_diagnoses_against_central_differences(x64):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f_tanh, scaled(grad_tanh, {"w": 2.0}), params, x, oracles=("fd",))
    assert [r.oracle for r in report.leaves] == ["fd", "fd"] and report.taylor is None
    assert report.diagnosis.startswith("['w']: off by a constant factor 2")


def test_autodiff_disagreeing_with_fd_is_blamed_on_f(x64):
    @jax.custom_jvp
    def square(z):
        return z * z

    @square.defjvp
    def square_jvp(primals, tangents):
        (z,), (dz,) = primals, tangents
        return z * z, 3 * z * dz  # wrong on purpose: d(z^2) = 2 z dz

    def f(p, x):
        return jnp.sum(square(x @ p["w"]))

    def grad(p, x):  # the true gradient: 2 x^T (x w)
        return {"w": 2 * x.T @ (x @ p["w"])}

    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f, grad, {"w": params["w"]}, x)
    assert not report.passed
    assert "agrees with central differences but not with jax.grad(f)" in report.diagnosis


def test_user_tolerances_replace_the_derived_ones(x64):
    params, x = tanh_problem(jnp.float64)
    slightly = scaled(grad_tanh, {"w": 1 + 1e-6})
    assert not fnnjax.check_gradients(f_tanh, slightly, params, x).passed
    loose = fnnjax.check_gradients(f_tanh, slightly, params, x, rtol=1e-4, oracles=("autodiff", "fd"))
    assert loose.passed and all(r.tolerance >= 1e-4 * abs(r.expected) for r in loose.leaves)


# ----------------------------------------------------------------------------------------------
# Fast mode


def test_fast_mode_passes_a_right_gradient_and_catches_a_small_error():
    mlp, params, x, y = mlp_problem("tanh", sizes=(30, 20, 5), n=16)  # P = 725, float32
    right = fnnjax.check_gradients(
        risk, backprop, params, mlp, x, y, "cross_entropy", 1e-3, fast=True, key=jax.random.key(7)
    )
    assert right.passed, right.render()
    assert right.mode == "fast" and len(right.probes) == 4 * 4  # 4 fd probes on each of the 4 leaves
    assert [(r.path, r.oracle) for r in right.leaves] == [(p, "autodiff") for p in ("[0].W", "[0].b", "[1].W", "[1].b")]

    def wrong(p, *args):  # 0.1 % too large in one leaf: invisible in a single sum of probes
        g = backprop(p, *args)
        return (g[0], fnnjax.Layer(g[1].W * 1.001, g[1].b))

    report = fnnjax.check_gradients(
        risk, wrong, params, mlp, x, y, "cross_entropy", 1e-3, fast=True, key=jax.random.key(7)
    )
    assert not report.passed
    (located,) = report.failures()  # every element is compared with one reverse pass of jax.grad
    assert located.path == "[1].W" and located.oracle == "autodiff"
    assert located.got == pytest.approx(1.001 * located.expected, rel=1e-5)
    assert "off by a constant factor 1.001" in located.diagnosis


def test_fast_mode_catches_one_wrong_element_of_200000():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 500)).astype(np.float32))
    params = {"w": jnp.asarray((rng.normal(size=(500, 400)) / 20).astype(np.float32))}  # P = 200,000

    def f(p, x):
        return jnp.sum(jnp.tanh(x @ p["w"]) ** 2) / x.shape[0]

    right = jax.grad(f)(params, x)["w"]
    worst = np.unravel_index(int(np.argmax(np.abs(np.asarray(right)))), right.shape)
    wrong = {"w": right.at[worst].multiply(1.005)}  # one element 0.5 % off
    report = fnnjax.check_gradients(f, lambda p, x: wrong, params, x, fast=True)
    assert not report.passed and report.num_params == 200_000
    (located,) = report.failures()
    assert located.worst_index == tuple(int(i) for i in worst)
    assert located.got == pytest.approx(1.005 * located.expected, rel=1e-6)
    assert report.diagnosis.startswith("['w']: wrong in 1 of 200000 elements")
    assert all(p.passed for p in report.probes)  # the random probes alone cannot see it


# ----------------------------------------------------------------------------------------------
# Reports


def test_report_render_and_to_dict(x64):
    params, x = tanh_problem(jnp.float64)
    report = fnnjax.check_gradients(f_tanh, scaled(grad_tanh, {"w": 2.0}), params, x)
    text = report.render()
    assert text.startswith("gradient check: FAIL (full mode, float64, 8 parameters")
    assert "['w']  autodiff" in text and "taylor remainder" in text and "diagnosis: ['w']" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is False and d["num_params"] == 8
    assert {leaf["path"] for leaf in d["leaves"]} == {"['b']", "['w']"}


def test_diagnosis_helpers():
    e = np.arange(1.0, 7.0).reshape(2, 3)
    assert diagnose_leaf(e, e.T).startswith("transposed")
    assert diagnose_leaf(e, 4 * e).startswith("off by a constant factor 4")
    assert diagnose_leaf(e, e + np.array([[0, 0, 1.0], [0, 0, 0]])).startswith(
        "wrong in 1 of 6 elements (the first at [0, 2])"
    )
    assert diagnose_leaf(e, e + np.array([[0, 0, 1.0], [0, 1.0, 0]])) is None
    assert "non-finite" in diagnose_leaf(e, np.full_like(e, np.nan))
    c, res = fit_combination(2 * e - 0.5 * np.ones_like(e), [e, np.ones_like(e)])
    assert np.allclose(c, [2.0, -0.5]) and res < 1e-12
    assert name_factor(7.0, [(7, "N")]) == "7 = N" and name_factor(-0.25) == "-1/4"
    assert name_factor(1.2345) == "1.2345"


# ----------------------------------------------------------------------------------------------
# Errors


def test_structure_mismatch_shows_both_treedefs():
    params, x = tanh_problem()
    with pytest.raises(
        TypeError,
        match=r"expected treedef: PyTreeDef\(\{'b': \*, 'w': \*\}\); got treedef: "
        r"PyTreeDef\(\(\*, \*\)\)",
    ):
        fnnjax.check_gradients(f_tanh, lambda p, x: (p["b"], p["w"]), params, x)


def test_leaf_shape_and_dtype_errors():
    params, x = tanh_problem()
    with pytest.raises(ValueError, match=r"leaf \['b'\] has shape \(3,\) but .* has shape \(2,\)"):
        fnnjax.check_gradients(f_tanh, lambda p, x: {"b": jnp.zeros(3), "w": p["w"]}, params, x)
    with pytest.raises(TypeError, match=r"leaf \['w'\] has dtype float16 but the parameters are float32"):
        fnnjax.check_gradients(f_tanh, lambda p, x: {"b": p["b"], "w": p["w"].astype(jnp.float16)}, params, x)
    mixed = {"b": params["b"].astype(jnp.float16), "w": params["w"]}
    with pytest.raises(TypeError, match=r"params leaf \['w'\] has dtype float32 but \['b'\] has float16"):
        fnnjax.check_gradients(f_tanh, grad_tanh, mixed, x)


def test_option_errors():
    params, x = tanh_problem()
    with pytest.raises(TypeError, match=r"f must return a scalar, but f\(params, \*args\) has shape \(5,\)"):
        fnnjax.check_gradients(lambda p, x: jnp.sum(x @ p["w"], axis=1), grad_tanh, params, x)
    with pytest.raises(ValueError, match=r"oracles must be a non-empty subset of .*'jacobian'"):
        fnnjax.check_gradients(f_tanh, grad_tanh, params, x, oracles=("autodiff", "jacobian"))
    with pytest.raises(ValueError, match="rtol must be a number >= 0 or None"):
        fnnjax.check_gradients(f_tanh, grad_tanh, params, x, rtol=-1.0)
    with pytest.raises(ValueError, match="probes must be a positive integer"):
        fnnjax.check_gradients(f_tanh, grad_tanh, params, x, fast=True, probes=0)
    with pytest.raises(ValueError, match="step must be a positive number"):
        fnnjax.check_gradients(f_tanh, grad_tanh, params, x, step=0.0)
    big = {"w": jnp.zeros(50_001)}
    with pytest.raises(ValueError, match=r"params have 50001 scalars: .* use fast=True"):
        fnnjax.check_gradients(lambda p: jnp.sum(p["w"] ** 2), lambda p: {"w": 2 * p["w"]}, big)
