"""Properties over the accepted domain (hypothesis): for architectures, activations, losses, target
forms, dtypes, L2 and dropout values drawn from a fixed pool of shapes (one compiled program per
problem, whatever the values), at random, trained and near-optimal points, backprop (the trainer's
path, with dropout) equals jax.grad within the rounding rule, check_gradients passes it, and every
planted mistake that moves some element by 1 % of its own scale fails. The scale of an element, the
sum of the magnitudes of its terms, is computed here independently: the delta recursion run on
absolute values in float64."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fnnjax
from fnnjax._backprop import backward, output_delta, weight_gradient
from fnnjax._losses import per_sample_loss
from fnnjax._model import trace_batch
from fnnjax.gradcheck import check_gradients, flat_function, gradient_tolerance, rounding_scales


class Problem(NamedTuple):
    mlp: fnnjax.MLP
    loss: str
    target: str  # labels | rows | probabilities | values
    dtype: str
    dropout: bool
    n: int = 6


POOL = (
    Problem(fnnjax.MLP((3, 5, 3), hidden="tanh", output="softmax"), "cross_entropy", "labels", "float32", True),
    Problem(fnnjax.MLP((3, 4, 3), hidden="relu", output="softmax"), "cross_entropy", "rows", "float64", False),
    Problem(
        fnnjax.MLP((2, 4, 3, 1), hidden=("softplus", "leaky_relu"), output="identity"),
        "mse",
        "values",
        "float32",
        False,
    ),
    Problem(
        fnnjax.MLP((4, 3, 2), hidden="sigmoid", output="sigmoid"), "cross_entropy", "probabilities", "float64", False
    ),
)


def risk(p, x, y, l2, scales, problem):
    """R with inverted-dropout scales on the hidden layers (ones: no dropout)."""
    trace = trace_batch(problem.mlp, p, x, scales if problem.dropout else None)
    target = jax.nn.one_hot(y, problem.mlp.sizes[-1], dtype=x.dtype) if problem.target == "labels" else y
    target = target.reshape(x.shape[0], -1)
    return jnp.mean(per_sample_loss(problem.mlp, problem.loss, trace, target)) + l2 / 2 * sum(
        jnp.sum(layer.W * layer.W) for layer in p
    )


def backprop(p, x, y, l2, scales, problem):
    """The trainer's backward pass: the delta recursion with the dropout scales (F10-F13, F26)."""
    mlp = problem.mlp
    hidden = scales if problem.dropout else None
    trace = trace_batch(mlp, p, x, hidden)
    target = jax.nn.one_hot(y, mlp.sizes[-1], dtype=x.dtype) if problem.target == "labels" else y
    target = target.reshape(x.shape[0], -1)
    ds = backward(mlp, p, trace, output_delta(mlp, problem.loss, trace, target) / x.shape[0], hidden)
    return tuple(
        fnnjax.Layer(weight_gradient(d, a) + l2 * layer.W, jnp.sum(d, axis=0)) for d, a, layer in zip(ds, trace.a, p)
    )


NP_ACTIVATIONS = {  # (f, |f'|) in numpy, float64: independent of fnnjax's
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(np.float64)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "softplus": (lambda z: np.logaddexp(z, 0), lambda z: 1 / (1 + np.exp(-z))),
    "softmax": (
        lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True),
        None,
    ),
}


def forward64(p, x, scales, problem):
    """z^(l), a^(l) in float64 numpy."""
    a, zs = [np.asarray(x, np.float64)], []
    for k, layer in enumerate(p):
        z = a[-1] @ np.asarray(layer.W, np.float64).T + np.asarray(layer.b, np.float64)
        zs.append(z)
        out = NP_ACTIVATIONS[problem.mlp.activations[k]][0](z)
        a.append(out * np.asarray(scales[k], np.float64) if problem.dropout and k < len(p) - 1 else out)
    return zs, a


def terms_scale(p, x, y, l2, scales, problem) -> list[np.ndarray]:
    """The sum of the magnitudes of the terms of each gradient element, by the delta recursion on
    absolute values in float64 (independent of the checker): |delta^(L)|'s terms (|y_hat| + |y|),
    pushed down through |W| and |f'|, then |delta|^T |a| / N + |l2 W| and sum |delta| / N."""
    mlp = problem.mlp
    W = [np.asarray(layer.W, np.float64) for layer in p]
    s = [np.asarray(v, np.float64) for v in scales]
    zs, a = forward64(p, x, scales, problem)
    n = x.shape[0]
    target = np.eye(mlp.sizes[-1])[np.asarray(y)] if problem.target == "labels" else np.asarray(y, np.float64)
    target = np.abs(target.reshape(n, -1))
    top = np.abs(a[-1])
    if problem.loss == "cross_entropy" and mlp.output == "softmax":
        d = top * target.sum(axis=1, keepdims=True) + target
    elif problem.loss == "cross_entropy":
        d = top + target
    else:
        dz = NP_ACTIVATIONS[mlp.output][1](zs[-1])
        d = (top + target) * dz * (2 if problem.loss == "squared_error" else 1)
    ds = [d]
    for k in range(len(W) - 1, 0, -1):
        fp = NP_ACTIVATIONS[mlp.hidden[k - 1]][1](zs[k - 1])
        if problem.dropout:
            fp = fp * np.abs(s[k - 1])
        ds.append((ds[-1] @ np.abs(W[k])) * fp)
    ds = ds[::-1]
    out = []
    for d, a_prev, w in zip(ds, a, W):
        out += [d.T @ np.abs(a_prev) / n + abs(float(l2)) * np.abs(w), d.sum(axis=0) / n]
    return out


_COMPILED: dict = {}


def compiled(problem: Problem):
    """The problem's functions, made once (one compiled program per problem, whatever the values)."""
    if problem not in _COMPILED:

        def f(p, x, y, l2, scales):
            return risk(p, x, y, l2, scales, problem)

        gj = jax.jit(lambda p, x, y, l2, scales: backprop(p, x, y, l2, scales, problem))

        def g(p, x, y, l2, scales):  # the compiled backprop, run as it is (not retraced by the check)
            return jax.tree.map(np.asarray, gj(p, x, y, l2, scales))

        _COMPILED[problem] = (f, g, gj)
    return _COMPILED[problem]


def draw(problem: Problem, seed: int, point: str, l2: float, rate: float):
    """Params, x, y, l2, scales at a random, trained or near-optimal point (numpy draws)."""
    rng = np.random.default_rng(seed)
    mlp, dt, n = problem.mlp, np.dtype(problem.dtype), problem.n
    scale = rng.choice([0.5, 1.0, 2.0])
    params = tuple(
        fnnjax.Layer(
            jnp.asarray((rng.normal(size=(m, k)) * scale / np.sqrt(k)).astype(dt)),
            jnp.asarray((0.3 * rng.normal(size=m)).astype(dt)),
        )
        for k, m in zip(mlp.sizes[:-1], mlp.sizes[1:])
    )
    x = jnp.asarray(rng.normal(size=(n, mlp.sizes[0])).astype(dt))
    keep = (rng.random((n, sum(mlp.sizes[1:-1]))) >= rate).astype(dt) / dt.type(1 - rate)
    scales = tuple(jnp.asarray(c) for c in np.split(keep, np.cumsum(mlp.sizes[1:-2]), axis=1))
    m_out = mlp.sizes[-1]
    if problem.target == "labels":
        y = jnp.asarray(rng.integers(0, m_out, n).astype(np.int32))
    elif problem.target == "rows":
        y = jnp.asarray(rng.dirichlet(np.ones(m_out), n).astype(dt))
    elif problem.target == "probabilities":
        y = jnp.asarray(rng.random((n, m_out)).astype(dt))
    else:
        y = jnp.asarray(rng.normal(size=n).astype(dt))
    l2v = jnp.asarray(l2, dt)
    f, g, gj = compiled(problem)
    if point == "trained":  # gradient descent with the problem's own (compiled) backprop
        for _ in range(30):
            grads = gj(params, x, y, l2v, scales)
            params = jax.tree.map(lambda p, d: p - jnp.asarray(0.5, dt) * d, params, grads)
    elif point == "near-optimal":  # the targets the net already outputs: the data gradient is ~0
        out = forward64(params, x, scales, problem)[1][-1]
        if problem.target == "labels":  # confident and right: scale the last layer up, label = argmax
            params = params[:-1] + (fnnjax.Layer(params[-1].W * 30, params[-1].b * 30),)
            y = jnp.asarray(np.argmax(forward64(params, x, scales, problem)[1][-1], axis=1).astype(np.int32))
        else:
            y = jnp.asarray(out.reshape(np.shape(y)).astype(dt))
    return params, x, y, l2v, scales


MISTAKES = ("one element 1 % of its scale", "factor 2", "factor 1/2", "sign", "transposed", "zero leaf")


def plant(kind: str, right: list[np.ndarray], scale: list[np.ndarray], rng) -> list[np.ndarray]:
    wrong = [g.copy() for g in right]
    leaf = int(rng.integers(len(wrong)))
    if kind == "one element 1 % of its scale":
        candidates = [(i, np.flatnonzero(s > 0)) for i, s in enumerate(scale) if np.any(s > 0)]
        i, flat = candidates[int(rng.integers(len(candidates)))]
        k = np.unravel_index(int(rng.choice(flat)), wrong[i].shape)
        wrong[i][k] += 0.01 * scale[i][k] * rng.choice([-1.0, 1.0])
    elif kind == "transposed":
        i = next((j for j, g in enumerate(wrong) if g.ndim == 2), 0)
        wrong[i] = wrong[i].T.copy()
    elif kind == "zero leaf":
        wrong[leaf] = np.zeros_like(wrong[leaf])
    else:
        wrong[leaf] = wrong[leaf] * {"factor 2": 2.0, "factor 1/2": 0.5, "sign": -1.0}[kind]
    return wrong


def is_mistake(right, wrong, scale) -> bool:
    """A mistake moves some element by at least 1 % of its own scale (or transposes a matrix)."""
    for r, w, s in zip(right, wrong, scale):
        if r.shape != w.shape:
            return True
        moved = np.abs(w.astype(np.float64) - r)
        if np.any((moved > 0) & (moved >= 0.01 * s)):
            return True
    return False


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    problem=st.sampled_from(POOL),
    seed=st.integers(0, 2**31 - 1),
    point=st.sampled_from(["random", "trained", "near-optimal"]),
    l2=st.sampled_from([0.0, 1e-3, 0.1]),
    rate=st.sampled_from([0.0, 0.3, 0.5]),
    kind=st.sampled_from(MISTAKES),
)
def test_backprop_passes_and_planted_mistakes_fail(problem, seed, point, l2, rate, kind):
    with jax.enable_x64(problem.dtype == "float64"):
        params, x, y, l2v, scales = draw(problem, seed, point, l2, rate if problem.dropout else 0.0)
        f, g, gj = compiled(problem)
        report = check_gradients(f, g, params, x, y, l2v, scales)
        # backprop equals jax.grad within the rounding rule, and the check passes it
        assert all(r.passed for r in report.leaves if r.oracle == "autodiff"), report.render()
        assert report.passed and report.verdict == "pass", report.render()
        right = [np.asarray(v) for v in jax.tree.leaves(gj(params, x, y, l2v, scales))]
        scale = terms_scale(params, x, y, l2v, scales, problem)
        wrong = plant(kind, right, scale, np.random.default_rng(seed))
        tree = jax.tree.unflatten(jax.tree.structure(params), [jnp.asarray(w) for w in wrong])
        report = check_gradients(f, lambda p, *a: tree, params, x, y, l2v, scales)
    if is_mistake(right, wrong, scale):
        assert not report.passed and report.verdict == "fail", f"{kind} at a {point} point: {report.render()}"


@pytest.mark.parametrize("problem", POOL, ids=lambda p: f"{p.mlp.output}-{p.loss}-{p.dtype}")
def test_the_tolerance_of_every_element_is_below_one_percent_of_its_independent_scale(problem):
    """At a near-optimal point, where the gradient itself is rounding noise: a mistake of 1 % of an
    element's scale cannot pass anywhere."""
    with jax.enable_x64(problem.dtype == "float64"):
        params, x, y, l2v, scales = draw(problem, 7, "near-optimal", 1e-3, 0.3 if problem.dropout else 0.0)
        f, _, _ = compiled(problem)
        flat = jnp.concatenate([v.ravel() for v in jax.tree.leaves(params)])
        _, A, measured = jax.jit(
            lambda t, x, y, l2, s: rounding_scales(flat_function(lambda q: f(q, x, y, l2, s), params), t)
        )(flat, x, y, l2v, scales)
        tol = gradient_tolerance(np.asarray(measured.grad_error), problem.dtype)
        scale = np.concatenate([s.ravel() for s in terms_scale(params, x, y, l2v, scales, problem)])
    exact_zero = (scale == 0) & (np.asarray(A) == 0) & (tol == 0)  # a dead unit: nothing to round
    assert np.all((tol <= 1e-2 * scale) | exact_zero), np.max(tol / np.maximum(scale, 1e-300))
