"""The rounding rule of check_gradients: right gradients pass where their terms cancel (a trained
point, a least-squares optimum, a saddle) in float32 and float64, computed in any summation order;
the tolerance is not looser than the rounding of its terms needs (closed forms, adversarial orders);
one element off by 1 % of its scale, a transposed matrix and a wrong factor still fail; finite
differences at an optimum are inconclusive, not failed; loops and branches are measured too."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax.gradcheck import SAFETY, check_gradients, gradient_tolerance, rounding_scales, sum_weight


def risk(p, mlp, x, y):
    return fnnjax.loss(mlp, p, x, y)


def backprop(p, mlp, x, y):
    return fnnjax.backprop(mlp, p, x, y)


@pytest.fixture(scope="module")
def trained():
    """The issue's point: a 4-8-3 tanh/softmax MLP after 200 full-batch Adam steps (float32)."""
    rng = np.random.default_rng(0)
    mlp = fnnjax.MLP((4, 8, 3), hidden="tanh", output="softmax")
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    x, y = jnp.asarray(x), jnp.asarray(y)
    params = fnnjax.init_params(jax.random.key(0), mlp, "normal", std=0.5)

    @jax.jit
    def adam(p, m, v, t):  # Adam(0.05, 0.9, 0.999), written out
        g = jax.grad(risk)(p, mlp, x, y)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        return jax.tree.map(lambda p, m, v: p - 0.05 * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), p, m, v), m, v

    m = v = jax.tree.map(jnp.zeros_like, params)
    for t in range(1, 201):
        params, m, v = adam(params, m, v, np.float32(t))
    return mlp, params, x, y


def test_right_gradients_pass_at_a_trained_point_and_misses_still_fail(trained):
    mlp, params, x, y = trained
    A = jax.grad(risk)(params, mlp, x, y)
    assert float(risk(params, mlp, x, y)) < 0.05 and max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(A)) < 0.01
    for grad_f in (backprop, jax.grad(risk)):  # the hand-written recursion, and autodiff compiled apart
        report = check_gradients(risk, grad_f, params, mlp, x, y)
        assert report.passed and report.verdict == "pass", report.render()
    ad = {r.path: r for r in report.leaves if r.oracle == "autodiff"}
    assert all(r.tolerance < 1e-2 * abs(r.expected) or r.tolerance < 1e-7 for r in ad.values())  # still tight
    W = np.asarray(A[0].W)
    k = np.unravel_index(int(np.argmax(np.abs(W))), W.shape)
    off = (fnnjax.Layer(jnp.asarray(W).at[k].multiply(1.01), A[0].b), A[1])  # one element 1 % off
    report = check_gradients(risk, lambda p, *a: off, params, mlp, x, y)
    assert not report.passed and report.verdict == "fail"
    assert report.diagnosis.startswith(f"[0].W: wrong in 1 of 32 elements (the first at {list(map(int, k))})")
    transposed = (A[0], fnnjax.Layer(A[1].W.T, A[1].b))
    assert "[1].W: transposed" in check_gradients(risk, lambda p, *a: transposed, params, mlp, x, y).diagnosis
    twice = jax.tree.map(lambda g: 2 * g, A)
    assert "constant factor 2" in check_gradients(risk, lambda p, *a: twice, params, mlp, x, y).diagnosis


# ----------------------------------------------------------------------------------------------
# A least-squares optimum: the gradient A^T r is rounding noise, its terms are not


def least_squares(dtype, n_samples=200, n=6, seed=0):
    """A (N, n), b (N,) and the optimum w of 1/2 ||A w - b||^2 rounded to dtype, all exact in dtype."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_samples, n)).astype(dtype)
    b = rng.normal(size=n_samples).astype(dtype)
    w = np.linalg.lstsq(A.astype(np.float64), b.astype(np.float64), rcond=None)[0].astype(dtype)
    return A, b, w


def ls_f(p, A, b):
    return 0.5 * jnp.sum((A @ p["w"] - b) ** 2)


def ls_hand(p, A, b):  # the residual formula, by hand
    return {"w": A.T @ (A @ p["w"] - b)}


def exact_gradient(A, b, w):
    """A^T (A w - b) of the rounded data, exactly (math.fsum), and the sum of the magnitudes of its
    terms S_j = sum_k |A_kj| (sum_l |A_kl w_l| + |b_k|)."""
    A, b, w = (np.asarray(v, np.float64) for v in (A, b, w))
    r = [math.fsum([*(A[k] * w), -b[k]]) for k in range(len(b))]
    g = np.array([math.fsum(A[:, j] * r) for j in range(A.shape[1])])
    return g, np.abs(A).T @ (np.abs(A) @ np.abs(w) + np.abs(b))


def sequential(A, b, w, order_k, order_l):
    """A^T (A w - b) with every sum accumulated one term at a time in the given orders, in A's dtype."""
    dt = A.dtype.type
    r = np.empty(len(b), A.dtype)
    for k in range(len(b)):
        acc = dt(0)
        for l in order_l:
            acc = dt(acc + dt(A[k, l] * w[l]))
        r[k] = dt(acc - b[k])
    g = np.empty(A.shape[1], A.dtype)
    for j in range(A.shape[1]):
        acc = dt(0)
        for k in order_k(A[:, j] * r):
            acc = dt(acc + dt(A[k, j] * r[k]))
        g[j] = acc
    return g


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_right_gradients_pass_at_a_least_squares_optimum_in_any_summation_order(dtype):
    with jax.enable_x64(dtype == "float64"):
        A, b, w = least_squares(np.dtype(dtype))
        g_exact, S = exact_gradient(A, b, w)
        u = float(np.finfo(dtype).eps) / 2
        orders = {
            "forward": lambda t: range(len(t)),
            "reversed": lambda t: range(len(t) - 1, -1, -1),
            "positives first": lambda t: np.argsort(-t),  # partial sums as large as they get
            "largest first": lambda t: np.argsort(-np.abs(t)),
        }
        params = {"w": jnp.asarray(w)}
        args = (jnp.asarray(A), jnp.asarray(b))
        rows = range(A.shape[1])
        gradients = {name: sequential(A, b, w, order, rows[::-1]) for name, order in orders.items()}
        gradients["exact (fsum), rounded"] = g_exact.astype(dtype)
        ratios = []
        for name, g in gradients.items():
            report = check_gradients(ls_f, lambda p, A, b, g=g: {"w": jnp.asarray(g)}, params, *args)
            assert report.passed, f"{name}: {report.render()}"
            ad = next(r for r in report.leaves if r.oracle == "autodiff")  # the worst element by err / tol
            ratios.append(abs(ad.got - g_exact[ad.worst_index]) / ad.tolerance)
            assert ad.tolerance < 1e-2 * S[ad.worst_index]  # a mistake of 1 % of the element's scale cannot pass
            assert ad.tolerance > 1e-3 * u * S[ad.worst_index]
        # far above what any of these orders produced, yet within 3 orders of magnitude of the worst
        assert 1e-3 < max(ratios) < 0.2, ratios
        report = check_gradients(ls_f, ls_hand, params, *args)
        assert report.passed, report.render()
        wrong = g_exact.copy()
        wrong[2] += 0.01 * S[2]
        report = check_gradients(ls_f, lambda p, A, b: {"w": jnp.asarray(wrong.astype(dtype))}, params, *args)
        assert not report.passed and report.diagnosis.startswith("['w']: wrong in 1 of 6 elements (the first at [2])")


def test_the_measured_rounding_lies_between_its_closed_form_bounds():
    """At the float32 optimum: sigma_j is at least the rounding of the last sum alone, and at most the
    l1 worst case of every rounding (the estimate from 16 random sign vectors, within a factor 2),
    which is below the deterministic worst case of the last sum, (N - 1) u S_j: the tolerance is not
    looser than the rounding of the terms needs."""
    A, b, w = least_squares(np.float32)
    f0, g, scales = jax.jit(lambda t: rounding_scales(lambda q: ls_f({"w": q}, jnp.asarray(A), jnp.asarray(b)), t))(
        jnp.asarray(w)
    )
    np.testing.assert_array_equal(np.asarray(g), np.asarray(jax.jit(jax.grad(ls_f))({"w": w}, A, b)["w"]))
    assert float(f0) == pytest.approx(float(ls_f({"w": w}, A, b)), rel=1e-6)
    _, S = exact_gradient(A, b, w)
    r = np.abs(A.astype(np.float64) @ w.astype(np.float64) - b)
    last_sum = (sum_weight(len(b)) + 1) * (np.abs(A).T @ r)  # the terms A_kj r_k of the final sum
    s = np.asarray(scales.grad_error, np.float64)
    l1 = (sum_weight(len(b)) + sum_weight(A.shape[1]) + 4) * S  # every rounding at its largest, added up
    assert np.all(s >= 0.3 * last_sum) and np.all(s <= 2 * l1)
    tol = gradient_tolerance(s, "float32")
    u = float(np.finfo(np.float32).eps) / 2
    assert np.all(tol <= 2 * SAFETY * u * 2 * l1) and np.all(tol < (len(b) - 1) * u * S)
    assert sum_weight(1) == 0.0 and sum_weight(17) == 4.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_right_gradient_passes_at_a_saddle(dtype):
    """1/2 ||A w - b||^2 - 1/2 ||C w - d||^2 at its stationary point, where the Hessian is indefinite."""
    with jax.enable_x64(dtype == "float64"):
        rng = np.random.default_rng(1)
        A, C = (rng.normal(size=(40, 4)).astype(dtype) for _ in range(2))
        C = (C * np.array([0.5, 0.5, 2.0, 2.0])).astype(dtype)  # A^T A - C^T C has both signs
        b, d = (rng.normal(size=40).astype(dtype) for _ in range(2))
        A64, C64 = A.astype(np.float64), C.astype(np.float64)
        H = A64.T @ A64 - C64.T @ C64
        assert np.min(np.linalg.eigvalsh(H)) < 0 < np.max(np.linalg.eigvalsh(H))
        w = np.linalg.solve(H, A64.T @ b - C64.T @ d).astype(dtype)

        def f(p, A, b, C, d):
            return 0.5 * jnp.sum((A @ p["w"] - b) ** 2) - 0.5 * jnp.sum((C @ p["w"] - d) ** 2)

        def hand(p, A, b, C, d):
            return {"w": A.T @ (A @ p["w"] - b) - C.T @ (C @ p["w"] - d)}

        args = tuple(jnp.asarray(v) for v in (A, b, C, d))
        report = check_gradients(f, hand, {"w": jnp.asarray(w)}, *args)
        assert report.passed and report.verdict == "pass", report.render()


def test_finite_differences_at_an_optimum_are_inconclusive_not_failed():
    A, b, w = least_squares(np.float32)
    args = (jnp.asarray(A), jnp.asarray(b))
    report = check_gradients(ls_f, ls_hand, {"w": jnp.asarray(w)}, *args, oracles=("fd",))
    assert not report.passed and report.verdict == "inconclusive" and report.inconclusive
    (leaf,) = report.leaves
    assert leaf.passed and leaf.inconclusive == 6  # nothing disagrees, nothing is decided
    assert report.diagnosis.startswith("inconclusive: no oracle disagrees, but central differences cannot decide")
    assert report.diagnosis.endswith("add 'autodiff' to oracles")
    assert report.render().startswith("gradient check: INCONCLUSIVE")
    with pytest.raises(fnnjax.GradientCheckError, match="INCONCLUSIVE"):
        report.raise_if_failed()
    _, S = exact_gradient(A, b, w)  # a mistake as large as the terms is still seen
    wrong = {"w": ls_hand({"w": w}, A, b)["w"] + jnp.asarray((0.01 * S).astype(np.float32))}
    assert check_gradients(ls_f, lambda p, A, b: wrong, {"w": jnp.asarray(w)}, *args, oracles=("fd",)).verdict == "fail"


def test_loops_and_branches_are_measured():
    """A scanned recurrence with a branch: the rounding inside the loop is measured (a float32
    gradient from another program passes, a wrong one fails)."""

    def f(p, xs):
        def step(h, x):
            h = jnp.tanh(p["w"] * h + x)
            return h, jax.lax.cond(x > 0, lambda v: v * v, lambda v: -v, h)

        _, ys = jax.lax.scan(step, jnp.float32(0.5), xs)
        return jnp.sum(ys)

    xs = jnp.asarray(np.random.default_rng(2).normal(size=40).astype(np.float32))
    params = {"w": jnp.float32(0.7)}
    right = jax.jit(jax.jacrev(f))(params, xs)  # reverse mode through its own program
    report = check_gradients(f, lambda p, xs: right, params, xs)
    assert report.passed, report.render()
    ad = next(r for r in report.leaves if r.oracle == "autodiff")
    u = float(np.finfo(np.float32).eps) / 2
    assert ad.tolerance > 8 * u * abs(ad.expected)  # forty steps of rounding, not none
    wrong = {"w": right["w"] * 1.001}
    assert not check_gradients(f, lambda p, xs: wrong, params, xs).passed
