"""Checks of backpropagation, the delta recursion: F10-F16.

Each compares fnnjax's hand-written deltas/backprop (or an injected implementation) with autodiff of
a reference network written from ``jax.nn`` (see :mod:`fnnjax.verify.formulas._evidence`), with closed forms, or
with the notes' worked examples done by hand, node by node.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax import MLP, Layer

from ._evidence import (
    NUMPY_DERIVATIVES,
    PAIRINGS,
    TAYLOR_STEPS,
    compiled,
    evidence_for,
    fit_slope,
    gradient_cases,
    max_rel_error,
    unit_direction,
)
from ._registry import Outcome, check

__all__ = [
    "algorithm",
    "batched_regularised",
    "hidden_deltas",
    "node_indexed_3_2_2",
    "outer_product",
    "output_delta_general",
    "output_delta_sigmoid_bce",
    "output_delta_sigmoid_mse",
    "output_delta_softmax_ce",
    "worked_example_2_2_1",
]

TOL = 1e-10
"""float64 agreement between two exact methods (rounding only)."""


def _np(tree):
    return [np.asarray(t) for t in tree]


def _output_delta(pairing, closed_form, deltas, seed, quick):
    """Max rel error of the implementation's delta^(L) vs autodiff and vs a numpy closed form."""
    worst_ad = worst_cf = 0.0
    cases = gradient_cases(seed, quick, pairings=[pairing])
    for case in cases:
        ev = evidence_for(case, deltas=deltas)
        got = np.asarray(ev["deltas"][-1])
        worst_ad = max(worst_ad, max_rel_error(got, ev["autodiff_deltas"][-1]))
        z, a = np.asarray(ev["zs"][-1]), np.asarray(ev["acts"][-1])
        worst_cf = max(worst_cf, max_rel_error(got, closed_form(case, z, a, np.asarray(case.target))))
    return worst_ad, worst_cf, len(cases)


def _delta_outcome(worst_ad, worst_cf, count, closed_name, extra=None, extra_ok=True):
    measured = {
        "max rel error vs autodiff dL/dz(L)": worst_ad,
        f"max rel error vs {closed_name}": worst_cf,
        "networks x draws": count,
        **(extra or {}),
    }
    return Outcome(measured, f"<= {TOL:g}", max(worst_ad, worst_cf) <= TOL and extra_ok)


def _target_forms(case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Target rows of every form softmax cross-entropy accepts, for ``case``'s batch shape."""
    n, m = np.asarray(case.target).shape
    one_hot = np.eye(m)[rng.integers(0, m, n)]
    return {
        "soft": rng.dirichlet(np.ones(m), n),
        "multi-hot": (rng.random((n, m)) < 0.5).astype(np.float64),
        "all-zero rows": one_hot * (rng.random((n, 1)) < 0.5),
        "rows summing to 3": 3 * rng.dirichlet(np.ones(m), n),
    }


def _softmax_ce_closed_form(case, z, a, t):
    return a * np.sum(t, axis=-1, keepdims=True) - t  # = y_hat - y when every row sums to 1


@check(
    "F10-softmax-ce",
    claim="softmax output + cross-entropy: delta(L) = y_hat * sum_k y_k - y, which "
    "is y_hat - y for targets summing to 1 (no f' factor)",
    method="fnnjax.deltas' delta(L) vs jax.grad of the reference loss w.r.t. z(L) and vs the closed "
    "form, for integer labels and for soft, multi-hot, all-zero and sum-3 target rows",
)
def output_delta_softmax_ce(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F10 for softmax + cross-entropy, for every target form the loss accepts.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    pairing = ("softmax", "cross_entropy")
    worst_ad, worst_cf, count = _output_delta(pairing, _softmax_ce_closed_form, deltas, seed, quick)
    naive_off_simplex = 0.0  # how far y_hat - y is from the truth when rows do not sum to 1
    for case in gradient_cases(seed, quick, pairings=[pairing]):
        rng = np.random.default_rng([seed, case.mlp.sizes[-1], count])
        for name, rows in _target_forms(case, rng).items():
            form = dataclasses.replace(case, y=jnp.asarray(rows, case.x.dtype))
            ev = evidence_for(form, deltas=deltas)
            got = np.asarray(ev["deltas"][-1])
            z, a = np.asarray(ev["zs"][-1]), np.asarray(ev["acts"][-1])
            worst_ad = max(worst_ad, max_rel_error(got, ev["autodiff_deltas"][-1]))
            worst_cf = max(worst_cf, max_rel_error(got, _softmax_ce_closed_form(form, z, a, rows)))
            if name != "soft":
                naive_off_simplex = max(naive_off_simplex, max_rel_error(a - rows, ev["autodiff_deltas"][-1]))
            count += 1
    return _delta_outcome(
        worst_ad,
        worst_cf,
        count,
        "y_hat * sum_k y_k - y",
        extra={
            "max rel error of the simple y_hat - y on rows not summing to 1 "
            "(why the general form is needed)": naive_off_simplex
        },
    )


@check(
    "F10-sigmoid-bce",
    claim="sigmoid output + binary cross-entropy: delta(L) = y_hat - y (sigma' cancels)",
    method="fnnjax.deltas' delta(L) vs jax.grad of the reference loss w.r.t. z(L), and vs y_hat - y",
)
def output_delta_sigmoid_bce(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F10 for sigmoid + binary cross-entropy.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    res = _output_delta(("sigmoid", "cross_entropy"), lambda c, z, a, t: a - t, deltas, seed, quick)
    return _delta_outcome(*res, "y_hat - y")


def _saturated_ratio(deltas) -> float:
    """delta_mse / delta_bce for one sigmoid unit at z = 8 with target 0 (a confidently wrong unit)."""
    mlp = MLP((1, 1), output="sigmoid")
    params = (Layer(jnp.asarray([[8.0]]), jnp.zeros((1,), jnp.float64)),)
    x, y = jnp.ones((1, 1), jnp.float64), jnp.zeros((1, 1), jnp.float64)
    impl = compiled(deltas, 0, 4)
    mse = float(np.asarray(impl(mlp, params, x, y, "mse")[-1]).ravel()[0])
    bce = float(np.asarray(impl(mlp, params, x, y, "cross_entropy")[-1]).ravel()[0])
    return mse / bce


@check(
    "F10-sigmoid-mse",
    claim="sigmoid output + squared error: delta(L) = (y_hat - y) sigma'(z(L)), tiny when saturated",
    method="fnnjax.deltas' delta(L) vs jax.grad w.r.t. z(L) and vs (y_hat - y) e^-|z|/(1+e^-|z|)^2; at z = 8, "
    "y = 0 the ratio delta_mse/delta_bce vs sigma'(8)",
)
def output_delta_sigmoid_mse(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F10 for sigmoid + mse, and why cross-entropy trains saturated sigmoid units faster.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    res = _output_delta(
        ("sigmoid", "mse"), lambda c, z, a, t: (a - t) * NUMPY_DERIVATIVES["sigmoid"](z, 0.0), deltas, seed, quick
    )
    ratio = _saturated_ratio(deltas)
    expected = float(NUMPY_DERIVATIVES["sigmoid"](np.asarray(8.0), 0.0))
    ok = abs(ratio - expected) <= TOL * expected
    return _delta_outcome(
        *res, "(y_hat - y) sigma'(z)", {"saturated delta_mse / delta_bce": ratio, "sigma'(8)": expected}, ok
    )


def _general_closed_form(case, z, a, t):
    g = (a - t) if case.loss == "mse" else 2 * (a - t)  # dL/da(L)
    if case.mlp.output == "softmax":
        return a * (g - np.sum(a * g, axis=1, keepdims=True))  # J^T g, J = diag(a) - a a^T
    return g * NUMPY_DERIVATIVES[case.mlp.output](z, case.mlp.leaky_slope)


@check(
    "F10-general",
    claim="delta(L) = dL/da(L) * f_L'(z(L)) (softmax: the Jacobian product) for the other output/loss pairs",
    method="fnnjax.deltas' delta(L) vs jax.grad w.r.t. z(L), and vs dL/da * f' with numpy closed forms, "
    "for identity/tanh/softplus/softmax outputs with mse and squared_error",
)
def output_delta_general(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F10 for the remaining output activation / loss pairs.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    worst_ad = worst_cf = 0.0
    count = 0
    for pairing in PAIRINGS[3:5] if quick else PAIRINGS[3:]:
        ad, cf, n = _output_delta(pairing, _general_closed_form, deltas, seed, quick)
        worst_ad, worst_cf, count = max(worst_ad, ad), max(worst_cf, cf), count + n
    return _delta_outcome(worst_ad, worst_cf, count, "dL/da * f'(z)")


def _per_neuron_deltas(case, ev) -> float:
    """F11 neuron by neuron (Python loops): delta_j = f'(z_j) sum_k w_kj delta_k, from the autodiff
    delta(l+1) and numpy f'; the max rel error against the autodiff delta(l)."""
    worst = 0.0
    auto = _np(ev["autodiff_deltas"])
    zs = _np(ev["zs"])
    for l in range(case.mlp.num_layers - 1):  # 0-based layer index; W of the next layer is params[l+1]
        W_next = np.asarray(case.params[l + 1].W)
        fprime = NUMPY_DERIVATIVES[case.mlp.hidden[l]](zs[l], case.mlp.leaky_slope)
        by_neuron = np.zeros_like(auto[l])
        for i in range(by_neuron.shape[0]):
            for j in range(by_neuron.shape[1]):
                total = sum(W_next[k, j] * auto[l + 1][i, k] for k in range(W_next.shape[0]))
                by_neuron[i, j] = fprime[i, j] * total
        worst = max(worst, max_rel_error(by_neuron, auto[l]))
    return worst


@check(
    "F11-hidden-deltas",
    claim="delta(l) = f_l'(z(l)) * (W(l+1)^T delta(l+1)); per neuron delta_j = f'(net_j) sum_k w_kj delta_k",
    method="fnnjax.deltas' delta(l<L) vs jax.grad of the reference loss w.r.t. each z(l); the per-neuron "
    "sum (Python loops, numpy f') vs the same autodiff deltas",
)
def hidden_deltas(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas) -> Outcome:
    """F11 on random nets of every pairing (including equally wide layers, where W and W^T have the
    same shape).

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
    """
    worst_impl = worst_formula = 0.0
    layers = 0
    cases = gradient_cases(seed, quick)
    for case in cases:
        ev = evidence_for(case, deltas=deltas)
        worst_impl = max(worst_impl, max_rel_error(tuple(ev["deltas"][:-1]), tuple(ev["autodiff_deltas"][:-1])))
        worst_formula = max(worst_formula, _per_neuron_deltas(case, ev))
        layers += case.mlp.num_layers - 1
    worst = max(worst_impl, worst_formula)
    return Outcome(
        {
            "max rel error of delta(l<L) vs autodiff": worst_impl,
            "per-neuron sum vs autodiff": worst_formula,
            "hidden layers checked": layers,
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F12-outer-product",
    claim="dL/dW(l) = delta(l) a(l-1)^T (outer product, M_l x M_(l-1)), "
    "dL/db(l) = delta(l); per weight dE/dw_kj = delta_k y_j",
    method="per sample and layer: outer(fnnjax.deltas' delta_i, a_i(l-1)) and fnnjax.backprop on the "
    "sample alone vs jax.grad of that sample's reference loss (vmap)",
)
def outer_product(*, seed: int = 0, quick: bool = False, deltas=fnnjax.deltas, backprop=fnnjax.backprop) -> Outcome:
    """F12 per sample and per layer.

    Args:
      deltas: the implementation under test, ``(mlp, params, x, y, loss) -> (delta^(1), ..., delta^(L))``.
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``, on one sample.
    """
    worst_outer = worst_single = 0.0
    cases = gradient_cases(seed, quick)
    for case in cases:
        ev = evidence_for(case, deltas=deltas, backprop=backprop)
        acts, ds = _np(ev["acts"]), _np(ev["deltas"])
        for l, ps in enumerate(ev["per_sample_gradients"]):
            outer = np.einsum("ik,ij->ikj", ds[l], acts[l])  # dE/dw_kj = delta_k y_j, every sample i
            worst_outer = max(worst_outer, max_rel_error((outer, ds[l]), (ps.W, ps.b)))
        worst_single = max(worst_single, max_rel_error(tuple(ev["backprop_single"]), tuple(ev["per_sample_gradients"])))
    worst = max(worst_outer, worst_single)
    return Outcome(
        {
            "outer product max rel error": worst_outer,
            "one-sample backprop max rel error": worst_single,
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F13-batched-regularised",
    claim="dR/dW(l) = (1/N) sum_i delta_i a_i(l-1)^T + lambda W(l); dR/db(l) = (1/N) sum_i delta_i",
    method="fnnjax.backprop (batch, l2 on and off) vs jax.grad of the reference risk; the formula itself "
    "from autodiff deltas vs the same",
)
def batched_regularised(*, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop) -> Outcome:
    """F13: the batched, regularised gradient.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    worst_impl = worst_formula = 0.0
    cases = gradient_cases(seed, quick)
    for case in cases:
        ev = evidence_for(case, backprop=backprop)
        worst_impl = max(worst_impl, max_rel_error(tuple(ev["backprop"]), tuple(ev["reference_gradient"])))
        n = case.x.shape[0]
        acts, auto = _np(ev["acts"]), _np(ev["autodiff_deltas"])
        formula = tuple(
            (auto[l].T @ acts[l] / n + case.l2 * np.asarray(p.W), auto[l].sum(axis=0) / n)
            for l, p in enumerate(case.params)
        )
        want = tuple((np.asarray(g.W), np.asarray(g.b)) for g in ev["reference_gradient"])
        worst_formula = max(worst_formula, max_rel_error(formula, want))
    worst = max(worst_impl, worst_formula)
    with_l2 = sum(case.l2 > 0 for case in cases)
    return Outcome(
        {
            "backprop max rel error vs autodiff": worst_impl,
            "formula max rel error vs autodiff": worst_formula,
            "networks x draws": len(cases),
            "with l2 > 0": with_l2,
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


# ----------------------------------------------------------------------------------------------
# F14, F15: worked examples done by hand

_F14_EXAMPLE = {"x": (2.0, 3.0), "w": (0.11, 0.21, 0.12, 0.08, 0.14, 0.15), "label": 1.0}


def _f14_by_hand(x, w, label):
    """y = w5 h1 + w6 h2, h1 = w1 x1 + w2 x2, h2 = w3 x1 + w4 x2, loss (label - y)^2: every partial."""
    x1, x2 = x
    w1, w2, w3, w4, w5, w6 = w
    h1, h2 = w1 * x1 + w2 * x2, w3 * x1 + w4 * x2
    y = w5 * h1 + w6 * h2
    e = -2 * (label - y)
    return y, (e * w5 * x1, e * w5 * x2, e * w6 * x1, e * w6 * x2, e * h1, e * h2)


@check(
    "F14-worked-example",
    claim="2-2-1 linear net, loss (label - y)^2: dloss/dw1 = -2 (label - y) w5 x1 (and likewise for w2..w6)",
    method="fnnjax.backprop (squared_error, one sample) vs the six partials by hand; x = (2, 3), "
    "w = 0.11, 0.21, 0.12, 0.08, 0.14, 0.15, label 1 (y = 0.191), plus random draws",
)
def worked_example_2_2_1(*, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop) -> Outcome:
    """F14 with the example's numbers and random ones.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    impl = compiled(backprop, 0, 4)
    mlp = MLP((2, 2, 1), hidden="identity", output="identity")
    rng = np.random.default_rng(seed)
    examples = [_F14_EXAMPLE] + [
        {"x": tuple(rng.standard_normal(2)), "w": tuple(rng.standard_normal(6)), "label": float(rng.standard_normal())}
        for _ in range(0 if quick else 2)
    ]
    worst = 0.0
    for ex in examples:
        w1, w2, w3, w4, w5, w6 = ex["w"]
        params = (
            Layer(jnp.asarray([[w1, w2], [w3, w4]]), jnp.zeros((2,), jnp.float64)),
            Layer(jnp.asarray([[w5, w6]]), jnp.zeros((1,), jnp.float64)),
        )
        g = impl(mlp, params, jnp.asarray(ex["x"]), jnp.asarray(ex["label"]), "squared_error", 0.0)
        got = np.concatenate([np.asarray(g[0].W).ravel(), np.asarray(g[1].W).ravel()])
        y, by_hand = _f14_by_hand(ex["x"], ex["w"], ex["label"])
        worst = max(worst, max_rel_error(got, np.asarray(by_hand)))
    y, by_hand = _f14_by_hand(**_F14_EXAMPLE)
    return Outcome(
        {
            "y": round(y, 12),
            "dloss/dw1 by hand": round(by_hand[0], 12),
            "max rel error of the six partials": worst,
            "examples": len(examples),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


_F15_EXAMPLE = {
    "x": {1: 0.5, 2: -1.0, 3: 2.0},
    "t": {6: 1.0, 7: 0.0},
    "w": {
        (4, 1): 0.1,
        (4, 2): 0.2,
        (4, 3): -0.3,
        (4, "b"): 0.1,
        (5, 1): -0.2,
        (5, 2): 0.4,
        (5, 3): 0.1,
        (5, "b"): -0.1,
        (6, 4): 0.5,
        (6, 5): -0.6,
        (6, "b"): 0.2,
        (7, 4): -0.3,
        (7, 5): 0.7,
        (7, "b"): 0.0,
    },
}


def _f15_by_hand(x, t, w):
    """The notes' per-node formulas, node by node, for sigmoid units and E = 1/2 sum_k (t_k - y_k)^2."""
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    y = dict(x)
    for k, feeds in ((4, (1, 2, 3)), (5, (1, 2, 3)), (6, (4, 5)), (7, (4, 5))):
        y[k] = sig(sum(w[k, j] * y[j] for j in feeds) + w[k, "b"])
    delta = {k: (y[k] - t[k]) * y[k] * (1 - y[k]) for k in (6, 7)}
    for j in (4, 5):  # the total derivative over every next-layer neuron that j feeds
        delta[j] = y[j] * (1 - y[j]) * sum(w[k, j] * delta[k] for k in (6, 7))
    grad = {(k, j): delta[k] * (1.0 if j == "b" else y[j]) for (k, j) in w}
    return grad


@check(
    "F15-node-indexed",
    claim="3-2-2 net (inputs 1-3, hidden 4-5, outputs 6-7, weights w41..w43, w_b4, ...): "
    "the per-node formulas equal the matrix form",
    method="dE/dw_kj = delta_k y_j with delta by hand per node (sigmoid units, E = 1/2 sum (t - y)^2) vs "
    "fnnjax.backprop (mse, one sample), W(l)[k, j] = w_kj; the example plus random draws",
)
def node_indexed_3_2_2(*, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop) -> Outcome:
    """F15 node by node; W^(2) is 2 x 2, so W and W^T have the same shape here.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    impl = compiled(backprop, 0, 4)
    mlp = MLP((3, 2, 2), hidden="sigmoid", output="sigmoid")
    rng = np.random.default_rng(seed)
    examples = [_F15_EXAMPLE]
    for _ in range(0 if quick else 2):
        examples.append(
            {
                "x": {j: float(rng.standard_normal()) for j in (1, 2, 3)},
                "t": {k: float(rng.uniform()) for k in (6, 7)},
                "w": {key: float(rng.standard_normal()) for key in _F15_EXAMPLE["w"]},
            }
        )
    worst = 0.0
    for ex in examples:
        w = ex["w"]
        W1 = [[w[k, j] for j in (1, 2, 3)] for k in (4, 5)]  # next-layer index first: row k, column j
        W2 = [[w[k, j] for j in (4, 5)] for k in (6, 7)]
        params = (
            Layer(jnp.asarray(W1), jnp.asarray([w[4, "b"], w[5, "b"]])),
            Layer(jnp.asarray(W2), jnp.asarray([w[6, "b"], w[7, "b"]])),
        )
        g = impl(
            mlp, params, jnp.asarray([ex["x"][j] for j in (1, 2, 3)]), jnp.asarray([ex["t"][6], ex["t"][7]]), "mse", 0.0
        )
        grad = _f15_by_hand(ex["x"], ex["t"], w)
        by_hand = (
            [[grad[k, j] for j in (1, 2, 3)] for k in (4, 5)],
            [grad[k, "b"] for k in (4, 5)],
            [[grad[k, j] for j in (4, 5)] for k in (6, 7)],
            [grad[k, "b"] for k in (6, 7)],
        )
        got = tuple(np.asarray(a) for a in (g[0].W, g[0].b, g[1].W, g[1].b))
        worst = max(worst, max_rel_error(got, tuple(np.asarray(a) for a in by_hand)))
    first = _f15_by_hand(**_F15_EXAMPLE)
    return Outcome(
        {
            "dE/dw41 by hand": round(first[4, 1], 12),
            "dE/dw64 by hand": round(first[6, 4], 12),
            "max rel error, all 14 weights": worst,
            "examples": len(examples),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


# ----------------------------------------------------------------------------------------------
# F16: the algorithm


def _trace_consistency(trace, case) -> float:
    """Max rel error of a stored trace against its own recursion: a(0) = x, z(l) = W a(l-1) + b,
    a(l) = f(z(l)) (numpy; softmax as exp/sum)."""
    zs, acts = _np(trace.z), _np(trace.a)
    worst = max_rel_error(acts[0], np.asarray(case.x))
    for l, (p, name) in enumerate(zip(case.params, case.mlp.activations)):
        worst = max(worst, max_rel_error(zs[l], acts[l] @ np.asarray(p.W).T + np.asarray(p.b)))
        z = zs[l]
        if name == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            f = e / e.sum(axis=1, keepdims=True)
        elif name == "sigmoid":
            f = 1 / (1 + np.exp(-z))
        elif name == "tanh":
            f = np.tanh(z)
        elif name == "softplus":
            f = np.logaddexp(z, 0.0)
        elif name == "relu":
            f = np.maximum(z, 0.0)
        elif name == "leaky_relu":
            f = np.where(z > 0, z, case.mlp.leaky_slope * z)
        elif name == "step":
            f = (z > 0).astype(np.float64)
        else:
            f = z
        worst = max(worst, max_rel_error(acts[l + 1], f))
    return worst


@check(
    "F16-algorithm",
    claim="backprop = (1) forward pass storing z(l), a(l); (2) deltas from L down to 1; (3) gradients, then the update",
    method="(1) the stored trace vs its own recursion (numpy); (2)+(3) Taylor remainder "
    "|R(theta + t d) - R(theta) - t <g, d>| of the reference risk with g = fnnjax.backprop "
    "shrinks like t^2 (fitted order)",
)
def algorithm(
    *, seed: int = 0, quick: bool = False, forward_trace=fnnjax.forward_trace, backprop=fnnjax.backprop
) -> Outcome:
    """F16: the stored forward pass is consistent, and the gradient it leads to is the derivative of
    the risk: the Taylor remainder test needs no tolerance on the gradient itself, only on the order
    (2 when g is right, 1 when it is wrong).

    Args:
      forward_trace: the implementation under test of step (1), ``(mlp, params, x) -> Trace``.
      backprop: the implementation under test of steps (2)-(3), ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    cases = gradient_cases(seed, quick)
    worst_trace = 0.0
    orders = []
    steps = np.asarray(TAYLOR_STEPS[1:])
    for case in cases:
        ev = evidence_for(case, forward_trace=forward_trace, backprop=backprop)
        worst_trace = max(worst_trace, _trace_consistency(ev["trace"], case))
        risks = np.asarray(ev["risk_along"])
        d = unit_direction(case)
        slope = sum(
            float(np.sum(np.asarray(g.W) * np.asarray(u.W)) + np.sum(np.asarray(g.b) * np.asarray(u.b)))
            for g, u in zip(ev["backprop"], d)
        )
        remainder = np.abs(risks[1:] - risks[0] - steps * slope)
        orders.append(fit_slope(np.log(steps), np.log(np.maximum(remainder, 1e-300))))
    lowest = min(orders)
    passed = worst_trace <= 1e-12 and lowest >= 1.8
    return Outcome(
        {
            "trace max rel error": worst_trace,
            "lowest Taylor order": lowest,
            "median Taylor order": float(np.median(orders)),
            "networks x draws": len(cases),
        },
        "trace <= 1e-12; order >= 1.8 (2 when g is the gradient, 1 when not)",
        passed,
    )
