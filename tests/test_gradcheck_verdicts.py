"""No accepted choice of oracles passes a wrong gradient: choices that cannot decide are refused at
the call, an inconclusive oracle is never a pass (the Taylor test, central differences below their
noise, tolerances too loose to decide), and a diagnosis names only the evidence that was computed."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnjax
from fnnjax.gradcheck import (
    ORACLES,
    analyze_full,
    check_gradients,
    evaluate_oracles,
    fd_steps,
    leaf_layout,
    plan_oracles,
)

FULL = [c for r in (1, 2, 3) for c in itertools.combinations(ORACLES, r) if c != ("taylor",)]
FAST = [c for c in FULL if "autodiff" in c]


def f_tanh(p, x):
    return jnp.sum(jnp.tanh(x @ p["w"] + p["b"][None, :]) ** 2)


def grad_tanh(p, x):
    t = jnp.tanh(x @ p["w"] + p["b"][None, :])
    g = 2 * t * (1 - t * t)
    return {"b": jnp.sum(g, axis=0), "w": x.T @ g}


@pytest.fixture(scope="module")
def problem():
    """{"b": (3,), "w": (4, 3)} and x: (6, 4), float64, with its right gradient and the planted mistakes."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        x = jnp.asarray(rng.normal(size=(6, 4)))
        params = {"b": jnp.asarray(rng.normal(size=3) * 0.3), "w": jnp.asarray(rng.normal(size=(4, 3)) * 0.5)}
        right = jax.tree.map(np.asarray, grad_tanh(params, x))
    w = right["w"]
    k = np.unravel_index(int(np.argmax(np.abs(w))), w.shape)
    mistakes = {
        "transposed": {"b": right["b"], "w": w.T},
        "one element 5 % off": {"b": right["b"], "w": w.copy()},
        "factor 2": {"b": 2 * right["b"], "w": 2 * w},
        "sign": {"b": -right["b"], "w": w},
    }
    mistakes["one element 5 % off"]["w"][k] *= 1.05
    return params, x, right, mistakes


@pytest.mark.parametrize("oracles", [("taylor",), "taylor"])
def test_taylor_alone_is_refused(oracles):
    params, x = {"w": jnp.ones(2)}, jnp.ones(2)
    with pytest.raises(
        ValueError, match=r"cannot pass a gradient: the Taylor test only shows a gradient wrong.*add 'autodiff'"
    ):
        check_gradients(lambda p, x: jnp.sum(p["w"] * x), lambda p, x: {"w": x}, params, x, oracles=oracles)


@pytest.mark.parametrize("oracles", [("fd",), ("fd", "taylor")])
def test_fast_without_jax_grad_is_refused(oracles):
    params, x = {"w": jnp.ones(2)}, jnp.ones(2)
    with pytest.raises(ValueError, match=r"fast=True with oracles=.* never decide an element; add 'autodiff'"):
        check_gradients(lambda p, x: jnp.sum(p["w"] * x), lambda p, x: {"w": x}, params, x, fast=True, oracles=oracles)


def test_analyze_full_refuses_taylor_alone_too():
    params = {"w": np.array([1.0, 2.0], np.float32)}
    layout = leaf_layout(params)
    theta = layout.ravel(params)
    plan = plan_oracles(theta, fd_steps(theta), np.ones(2, np.float32), stencil=False)
    values = evaluate_oracles(lambda t: jnp.sum(t**3), plan)
    assert analyze_full(values, plan, [np.array([3.0, 12.0])], layout, oracles=("autodiff", "taylor")).passed
    with pytest.raises(ValueError, match=r"oracles=\('taylor',\) cannot pass a gradient"):
        analyze_full(values, plan, [np.array([3.0, 12.0])], layout, oracles=("taylor",))


@pytest.mark.parametrize("fast, oracles", [(False, c) for c in FULL] + [(True, c) for c in FAST])
def test_no_accepted_choice_passes_a_planted_mistake(problem, x64, fast, oracles):
    params, x, right, mistakes = problem
    report = check_gradients(f_tanh, lambda p, x: right, params, x, fast=fast, oracles=oracles)
    assert report.passed and report.verdict == "pass", report.render()
    for words, wrong in mistakes.items():
        report = check_gradients(f_tanh, lambda p, x, g=wrong: g, params, x, fast=fast, oracles=oracles)
        assert not report.passed and report.verdict == "fail", f"{words}: {report.render()}"
        # a diagnosis names only evidence that was computed
        if "autodiff" not in oracles:
            assert "jax.grad" not in report.diagnosis, report.diagnosis
        if "fd" not in oracles:
            assert "central differences" not in report.diagnosis, report.diagnosis
        if words == "transposed":
            assert "['w']: transposed" in report.diagnosis


def test_a_diagnosis_claims_agreement_only_where_it_was_decided():
    """f with a wrong custom_jvp, where central differences are below their noise (float32, a large
    constant in f): jax.grad disagrees with the right gradient, but nothing confirms the right one,
    so f is not blamed; where the differences do decide (float64), it is."""

    @jax.custom_jvp
    def square(z):
        return z * z

    @square.defjvp
    def square_jvp(primals, tangents):
        (z,), (dz,) = primals, tangents
        return z * z, 3 * z * dz  # wrong on purpose: d(z^2) = 2 z dz

    def f(p, c):
        return c + 1e-4 * jnp.sum(square(p["w"]))

    def right(p, c):
        return {"w": 2e-4 * p["w"]}

    params = {"w": jnp.asarray(np.linspace(0.5, 1.5, 5).astype(np.float32))}
    report = check_gradients(f, right, params, jnp.float32(1e3))
    assert report.verdict == "fail"
    fd = next(r for r in report.leaves if r.oracle == "fd")
    assert fd.passed and fd.inconclusive == 5  # the differences decide nothing here
    assert "central differences" not in report.diagnosis and report.diagnosis.startswith(
        "['w']: off by a constant factor"
    )
    with jax.enable_x64(True):
        params64 = {"w": jnp.asarray(np.linspace(0.5, 1.5, 5))}
        report = check_gradients(f, right, params64, jnp.float64(1.0))
    assert report.diagnosis.startswith("your gradient agrees with central differences but not with jax.grad(f)")


def test_tolerances_too_loose_to_decide_are_inconclusive(problem, x64):
    params, x, right, _ = problem
    near = jax.tree.map(lambda g: 1.2 * g, right)  # 20 % off: within rtol=0.5, which decides nothing
    report = check_gradients(f_tanh, lambda p, x: near, params, x, rtol=0.5, oracles=("autodiff",))
    assert not report.passed and report.verdict == "inconclusive"
    assert "the tolerances given (rtol, atol) exceed 1 %" in report.diagnosis
    twice = jax.tree.map(lambda g: 2 * g, right)
    assert check_gradients(f_tanh, lambda p, x: twice, params, x, rtol=0.5, oracles=("autodiff",)).verdict == "fail"
    report = check_gradients(f_tanh, lambda p, x: right, params, x, rtol=1e-6, oracles=("autodiff",))
    assert report.passed


def test_a_report_says_its_verdict(problem, x64):
    params, x, right, mistakes = problem
    passed = check_gradients(f_tanh, lambda p, x: right, params, x)
    failed = check_gradients(f_tanh, lambda p, x: mistakes["factor 2"], params, x)
    assert (passed.verdict, failed.verdict) == ("pass", "fail")
    assert passed.to_dict()["verdict"] == "pass" and failed.to_dict()["verdict"] == "fail"
    assert passed.render().startswith("gradient check: PASS") and failed.render().startswith("gradient check: FAIL")
    assert passed.taylor.passed is True and "decides nothing alone" in passed.taylor.note
    assert fnnjax.GradCheckReport is type(passed)
