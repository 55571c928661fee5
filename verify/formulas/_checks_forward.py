"""Checks of the forward pass and what a network can represent: F1-F5."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

import fnnjax
from fnnjax import MLP, Layer

from ._evidence import (
    N,
    case_set,
    compiled,
    draw_case,
    evidence_for,
    gradient_cases,
    jit_reference_forward,
    max_rel_error,
    random_case,
    seeds_for,
)
from ._registry import Outcome, check

__all__ = [
    "augmented_weight",
    "composition",
    "linear_collapse",
    "relu_piecewise_linear",
    "sigmoid_binary",
    "softmax_probabilities",
    "threshold_units",
    "xor_hidden_layer",
    "xor_not_separable",
]

TOL = 1e-12

_NUMPY_ACTIVATIONS = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}


_EXTRA_NETS = (
    (("relu", "mse"), ("step", "softplus")),
    (("leaky_relu", "mse"), ("leaky_relu", "step")),
    (("step", "mse"), ("relu", "tanh")),
)
"""Output activations (and hidden ones) that the gradient problems do not use: relu, leaky_relu and
step outputs, step hidden layers."""


def _extra_cases(seed: int, quick: bool):
    cases = []
    for i, (pairing, hidden) in enumerate(_EXTRA_NETS[:1] if quick else _EXTRA_NETS):
        mlp = random_case(seed * 100 + i, pairing=pairing, depth=3, hidden=hidden).mlp
        for k in range(1 if quick else 2):
            cases.append(draw_case(np.random.default_rng([seed, i, k]), mlp, "mse", seed=seed))
    return cases


@check(
    "F1-composition",
    claim="z(l) = W(l) a(l-1) + b(l), a(l) = f_l(z(l)); the net is the composition of these affine + nonlinear maps",
    method="every z(l), a(l) of fnnjax.forward_trace vs the recursion written with jax.nn activations, "
    "random nets using every activation",
)
def composition(*, seed: int = 0, quick: bool = False, forward_trace=fnnjax.forward_trace) -> Outcome:
    """F1 on random nets (nonzero biases) covering every hidden and output activation.

    Args:
      seed, quick: the random draw and the size of the run.
      forward_trace: the implementation under test, ``(mlp, params, x) -> Trace(z, a)``.
    """
    worst = 0.0
    used = set()
    cases = gradient_cases(seed, quick)
    for case in cases:
        ev = evidence_for(case, forward_trace=forward_trace)
        trace = ev["trace"]
        worst = max(worst, max_rel_error((tuple(trace.z), tuple(trace.a)), (tuple(ev["zs"]), tuple(ev["acts"]))))
        used.update(case.mlp.activations)
    impl = compiled(forward_trace, 0)
    extra = _extra_cases(seed, quick)
    for case in extra:
        trace = impl(case.mlp, case.params, case.x)
        zs, acts = jit_reference_forward(case.mlp, case.params, case.x)
        worst = max(worst, max_rel_error((tuple(trace.z), tuple(trace.a)), (tuple(zs), tuple(acts))))
        used.update(case.mlp.activations)
    return Outcome(
        {"max rel error of z, a": worst, "networks x draws": len(cases) + len(extra), "activations used": len(used)},
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F2-augmented-weight",
    claim="appending 1 to the input and the bias as a last weight column gives "
    "the same layer output: y = f(w^T [x; 1])",
    method="fnnjax.forward of (W, b) on x vs f([W b] [x; 1]) (jax.nn) and vs fnnjax.forward of "
    "([W b], 0) on [x; 1]; includes the notes' 3-input neuron 4",
)
def augmented_weight(*, seed: int = 0, quick: bool = False, forward=fnnjax.forward) -> Outcome:
    """F2 on single layers (the notes' neuron 4: three inputs, weights w41, w42, w43, w_b4).

    Args:
      forward: the implementation under test, ``(mlp, params, x) -> a^(L)``.
    """
    impl = compiled(forward, 0)
    worst_ref = worst_aug = 0.0
    count = 0
    names = ("sigmoid",) if quick else ("sigmoid", "relu", "tanh")
    for act in names:
        for n_in, m in ((3, 1), (4, 3)):  # (3, 1): the notes' neuron 4 with w41, w42, w43, w_b4
            for s in seeds_for(seed, quick, full=2):
                rng = np.random.default_rng([s, n_in, m])
                W = jnp.asarray(rng.standard_normal((m, n_in)))
                b = jnp.asarray(rng.standard_normal(m))
                x = jnp.asarray(rng.standard_normal((N, n_in)))
                W_aug = jnp.asarray(np.concatenate([np.asarray(W), np.asarray(b)[:, None]], axis=1))
                x_aug = jnp.asarray(np.concatenate([np.asarray(x), np.ones((N, 1))], axis=1))
                with_bias = impl(MLP((n_in, m), output=act), (Layer(W, b),), x)
                expected = _NUMPY_ACTIVATIONS[act](np.asarray(x_aug) @ np.asarray(W_aug).T)
                augmented = impl(MLP((n_in + 1, m), output=act), (Layer(W_aug, jnp.zeros((m,), jnp.float64)),), x_aug)
                worst_ref = max(worst_ref, max_rel_error(with_bias, expected))
                worst_aug = max(worst_aug, max_rel_error(with_bias, augmented))
                count += 1
    worst = max(worst_ref, worst_aug)
    return Outcome(
        {"max rel error vs f(w^T [x;1])": worst_ref, "max rel error vs augmented net": worst_aug, "layers": count},
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F3-linear-collapse",
    claim="without nonlinear activations any depth is one affine map; the "
    "notes' 2-2-1 net with weights 1,2,3,4 then 1,1 is y = 3 x1 + 7 x2",
    method="the worked example exactly (hidden y1 = x1 + 3 x2, y2 = 2 x1 + 4 x2) on an integer grid; "
    "random identity nets vs the product W(L)...W(1) and the collapsed bias",
)
def linear_collapse(*, seed: int = 0, quick: bool = False, forward=fnnjax.forward) -> Outcome:
    """F3: the worked example (exact integers) and random linear nets.

    Args:
      forward: the implementation under test, ``(mlp, params, x) -> a^(L)``.
    """
    grid = jnp.asarray(list(itertools.product(range(-3, 4), repeat=2)), jnp.float64)
    W1 = jnp.asarray([[1.0, 3.0], [2.0, 4.0]])  # y1 = x1 + 3 x2, y2 = 2 x1 + 4 x2
    zeros2 = jnp.zeros((2,), jnp.float64)
    hidden = compiled(forward, 0)(MLP((2, 2), output="identity"), (Layer(W1, zeros2),), grid)
    y = compiled(forward, 0)(
        MLP((2, 2, 1), hidden="identity", output="identity"),
        (Layer(W1, zeros2), Layer(jnp.ones((1, 2), jnp.float64), jnp.zeros((1,), jnp.float64))),
        grid,
    )
    x1, x2 = grid[:, 0], grid[:, 1]
    hidden_err = float(jnp.max(jnp.abs(hidden - jnp.stack([x1 + 3 * x2, 2 * x1 + 4 * x2], axis=1))))
    example_err = float(jnp.max(jnp.abs(y[:, 0] - (3 * x1 + 7 * x2))))
    impl = compiled(forward, 0)
    worst = 0.0
    cases = case_set(seed, quick, pairings=[("identity", "mse")], archs=3, draws=2, hidden_pool=("identity",))
    for case in cases:
        W_eff = np.eye(case.mlp.sizes[0])
        b_eff = np.zeros(case.mlp.sizes[0])
        for layer in case.params:
            W, b = np.asarray(layer.W), np.asarray(layer.b)
            W_eff, b_eff = W @ W_eff, W @ b_eff + b
        collapsed = np.asarray(case.x) @ W_eff.T + b_eff
        worst = max(worst, max_rel_error(impl(case.mlp, case.params, case.x), collapsed))
    nets = len(cases)
    passed = example_err == 0.0 and hidden_err == 0.0 and worst <= TOL
    return Outcome(
        {
            "worked example max |y - (3 x1 + 7 x2)|": example_err,
            "hidden max |error|": hidden_err,
            "random linear nets: max rel error vs one affine map": worst,
            "networks": nets,
        },
        f"worked example exact (0); random nets <= {TOL:g}",
        passed,
    )


# ----------------------------------------------------------------------------------------------
# F4: threshold units and XOR

_INPUTS = ((0, 0), (0, 1), (1, 0), (1, 1))
_NAMED_TABLES: dict[tuple[int, ...], str] = {
    (0, 0, 0, 1): "AND",
    (0, 1, 1, 1): "OR",
    (0, 1, 1, 0): "XOR",
    (1, 0, 0, 1): "XNOR",
    (1, 1, 1, 0): "NAND",
    (1, 0, 0, 0): "NOR",
}


def _step_unit(w, b, X):
    """One threshold unit through fnnjax: 1[w.x + b > 0] for each row of X."""
    mlp = MLP((X.shape[1], 1), output="step")
    return compiled(fnnjax.forward, 0)(
        mlp, (Layer(jnp.asarray(w, jnp.float64)[None, :], jnp.asarray([b], jnp.float64)),), X
    )[:, 0]


@check(
    "F4-threshold-units",
    claim="AND, OR and NOT are each computed by one threshold unit",
    method="the units AND = 1[x1 + x2 - 1.5 > 0], OR = 1[x1 + x2 - 0.5 > 0], NOT = 1[-x + 0.5 > 0] "
    "through fnnjax.forward with a step output vs the truth tables",
)
def threshold_units(*, seed: int = 0, quick: bool = False, unit_output=_step_unit) -> Outcome:
    """F4, first half: AND, OR, NOT each have a threshold unit.

    Args:
      unit_output: the implementation under test, ``(w, b, X) -> 1[X w + b > 0]``.
    """
    X2 = jnp.asarray(_INPUTS, jnp.float64)
    X1 = jnp.asarray([[0.0], [1.0]])
    results = {
        "AND": (np.asarray(unit_output([1.0, 1.0], -1.5, X2)), (0, 0, 0, 1)),
        "OR": (np.asarray(unit_output([1.0, 1.0], -0.5, X2)), (0, 1, 1, 1)),
        "NOT": (np.asarray(unit_output([-1.0], 0.5, X1)), (1, 0)),
    }
    measured = {name: "".join(str(int(v)) for v in got) for name, (got, _) in results.items()}
    passed = all(np.array_equal(got, np.asarray(want, np.float64)) for got, want in results.values())
    return Outcome(measured, "AND 0001, OR 0111, NOT 10 (outputs for inputs 00,01,10,11 / 0,1)", passed)


def _constraints(table):
    """``A theta <= c`` for theta = (w1, w2, b): 1 rows need w.x + b >= 1, 0 rows w.x + b <= 0."""
    A, c = [], []
    for x, g in zip(_INPUTS, table):
        a = [x[0], x[1], 1]
        A.append([-v for v in a] if g else a)
        c.append(-1 if g else 0)
    return A, c


def _separating_unit(table):
    A, c = _constraints(table)
    res = linprog(
        np.zeros(3), A_ub=np.asarray(A, float), b_ub=np.asarray(c, float), bounds=[(None, None)] * 3, method="highs"
    )
    return res.x if res.status == 0 else None


def _farkas_certificate(table):
    """y >= 0 with A^T y = 0 and c^T y < 0, checked exactly in rationals; None if none exists."""
    A, c = _constraints(table)
    res = linprog(
        np.asarray(c, float),
        A_eq=np.vstack([np.asarray(A, float).T, np.ones((1, 4))]),
        b_eq=np.asarray([0, 0, 0, 1], float),
        bounds=[(0, None)] * 4,
        method="highs",
    )
    if res.status != 0:
        return None
    y = [Fraction(v).limit_denominator(1000) for v in res.x]
    combo = [sum(yi * A[i][j] for i, yi in enumerate(y)) for j in range(3)]
    value = sum(yi * ci for yi, ci in zip(y, c))
    if min(y) < 0 or any(v != 0 for v in combo) or not value < 0:
        return None
    return y, combo, value


@check(
    "F4-xor-not-separable",
    claim="no single threshold unit computes XOR (it is not linearly "
    "separable); 14 of the 16 two-input Boolean functions have one",
    method="LP over (w1, w2, b) for all 16 truth tables: a unit found by LP is run through fnnjax; "
    "for the infeasible ones an exact rational Farkas certificate y >= 0, y^T A = 0, y^T c < 0",
)
def xor_not_separable(*, seed: int = 0, quick: bool = False, unit_output=_step_unit) -> Outcome:
    """F4: a proof, not a failed training run. A threshold unit 1[w.x + b > 0] computes table g iff
    ``w.x + b >= 1`` where g = 1 and ``<= 0`` where g = 0 (scale theta; four points) is feasible.
    Farkas: it is infeasible iff some y >= 0 has ``y^T A = 0`` and ``y^T c < 0`` (adding the rows
    with weights y gives 0 <= negative). XOR's certificate is y = (1, 1, 1, 1)/4.

    Args:
      unit_output: the implementation under test, ``(w, b, X) -> 1[X w + b > 0]``.
    """
    X = jnp.asarray(_INPUTS, jnp.float64)
    separable, not_separable, bad = [], [], []
    certificates = {}
    for table in itertools.product((0, 1), repeat=4):
        name = _NAMED_TABLES.get(table, "".join(map(str, table)))
        theta = _separating_unit(table)
        if theta is not None:
            got = np.asarray(unit_output(theta[:2], float(theta[2]), X))
            (separable if np.array_equal(got, np.asarray(table, np.float64)) else bad).append(name)
            continue
        cert = _farkas_certificate(table)
        if cert is None:
            bad.append(name)
        else:
            not_separable.append(name)
            certificates[name] = cert
    measured = {"separable (unit verified)": len(separable), "not separable": ", ".join(not_separable)}
    if "XOR" in certificates:
        y, combo, value = certificates["XOR"]
        measured["XOR certificate y"] = ", ".join(str(v) for v in y)
        measured["y^T A"] = ", ".join(str(v) for v in combo)
        measured["y^T c"] = str(value)
    if bad:
        measured["unit or certificate failed"] = ", ".join(bad)
    passed = not bad and len(separable) == 14 and sorted(not_separable) == ["XNOR", "XOR"]
    return Outcome(
        measured,
        "14 separable, each unit reproduces its table; XOR and XNOR infeasible with exact certificates",
        passed,
    )


@check(
    "F4-xor-hidden-layer",
    claim="one hidden layer of threshold units computes XOR",
    method="the 2-2-1 step net h1 = OR, h2 = AND, y = 1[h1 - h2 - 0.5 > 0] through fnnjax.forward on all four inputs",
)
def xor_hidden_layer(*, seed: int = 0, quick: bool = False, forward=fnnjax.forward) -> Outcome:
    """F4: XOR = OR and not AND, with one hidden layer of step units.

    Args:
      forward: the implementation under test, ``(mlp, params, x) -> a^(L)``.
    """
    mlp = MLP((2, 2, 1), hidden="step", output="step")
    params = (
        Layer(jnp.ones((2, 2), jnp.float64), jnp.asarray([-0.5, -1.5])),
        Layer(jnp.asarray([[1.0, -1.0]]), jnp.asarray([-0.5])),
    )
    X = jnp.asarray(_INPUTS, jnp.float64)
    impl = compiled(forward, 0)
    hidden = np.asarray(impl(MLP((2, 2), output="step"), params[:1], X))
    got = np.asarray(impl(mlp, params, X))[:, 0]
    passed = (
        np.array_equal(got, [0, 1, 1, 0])
        and np.array_equal(hidden[:, 0], [0, 1, 1, 1])
        and np.array_equal(hidden[:, 1], [0, 0, 0, 1])
    )
    return Outcome(
        {
            "XOR outputs": "".join(str(int(v)) for v in got),
            "h1 (OR)": "".join(str(int(v)) for v in hidden[:, 0]),
            "h2 (AND)": "".join(str(int(v)) for v in hidden[:, 1]),
        },
        "XOR 0110, h1 0111, h2 0001",
        passed,
    )


@check(
    "F4-relu-piecewise-linear",
    claim="ReLU is nonlinear overall though linear on each half-line",
    method="additivity f(a+b) = f(a)+f(b) and homogeneity f(ca) = c f(a) on same-sign random pairs "
    "(must hold) and on mixed-sign pairs (must fail), fnnjax.activate",
)
def relu_piecewise_linear(*, seed: int = 0, quick: bool = False, activate=fnnjax.activate) -> Outcome:
    """F4: ReLU restricted to z > 0 or z < 0 is linear, but not on the whole line.

    Args:
      activate: the implementation under test, ``(name, z, slope=) -> f(z)``.
    """
    rng = np.random.default_rng(seed)
    n = 200 if quick else 2000
    a, b = (rng.uniform(0.01, 10.0, n) for _ in range(2))
    c = rng.uniform(0.1, 10.0, n)

    impl = compiled(activate, 0)

    def f(z):
        return np.asarray(impl("relu", z))

    same = []
    for sign in (1.0, -1.0):
        u, v = sign * a, sign * b
        same.append(float(np.max(np.abs(f(u + v) - f(u) - f(v)))))
        same.append(float(np.max(np.abs(f(c * u) - c * f(u)))))
    linear_err = max(same) / 20.0  # relative to the scale of the values (|a + b| <= 20)
    mixed = float(np.max(np.abs(f(a - b) - f(a) - f(-b))))
    passed = linear_err <= TOL and mixed >= 1.0
    return Outcome(
        {"max violation on a half-line (relative)": linear_err, "max violation on mixed signs": mixed},
        f"half-lines <= {TOL:g}; mixed signs >= 1 (nonlinear)",
        passed,
    )


# ----------------------------------------------------------------------------------------------
# F5: output layers as classifiers


@check(
    "F5-softmax-probabilities",
    claim="C softmax units give p(y=c|x): positive and summing to 1",
    method="fnnjax.forward with a softmax output vs exp(z - max z)/sum (numpy) on random nets, logits "
    "up to ~+-60; min output and max |sum - 1|",
)
def softmax_probabilities(*, seed: int = 0, quick: bool = False, forward=fnnjax.forward) -> Outcome:
    """F5: softmax outputs are a probability distribution.

    Args:
      forward: the implementation under test, ``(mlp, params, x) -> a^(L)``.
    """
    impl = compiled(forward, 0)
    worst_err = worst_sum = 0.0
    smallest = np.inf
    for case in case_set(seed, quick, pairings=[("softmax", "cross_entropy")]):
        for scale in (1.0, 20.0):
            params = case.params[:-1] + (Layer(scale * case.params[-1].W, case.params[-1].b),)
            p = np.asarray(impl(case.mlp, params, case.x))
            z = np.asarray(jit_reference_forward(case.mlp, params, case.x)[0][-1])
            e = np.exp(z - z.max(axis=1, keepdims=True))
            worst_err = max(worst_err, max_rel_error(p, e / e.sum(axis=1, keepdims=True)))
            worst_sum = max(worst_sum, float(np.max(np.abs(p.sum(axis=1) - 1))))
            smallest = min(smallest, float(p.min()))
    passed = worst_err <= TOL and worst_sum <= TOL and smallest > 0
    return Outcome(
        {"max rel error vs exp(z)/sum exp(z)": worst_err, "max |sum - 1|": worst_sum, "min probability": smallest},
        f"errors <= {TOL:g}; min > 0",
        passed,
    )


@check(
    "F5-sigmoid-binary",
    claim="one logistic unit gives p(y=1|x) for two classes",
    method="fnnjax.forward with one sigmoid output vs 1/(1+exp(-z)) (numpy) and vs the 2-class softmax "
    "with logits (0, z) built from the same weights; all outputs in (0, 1)",
)
def sigmoid_binary(*, seed: int = 0, quick: bool = False, forward=fnnjax.forward) -> Outcome:
    """F5: a sigmoid unit is the two-class softmax with one logit pinned at 0.

    Args:
      forward: the implementation under test, ``(mlp, params, x) -> a^(L)``.
    """
    impl = compiled(forward, 0)
    worst_ref = worst_softmax = 0.0
    inside = True
    for case in case_set(seed, quick, pairings=[("sigmoid", "cross_entropy")]):
        p = np.asarray(impl(case.mlp, case.params, case.x))[:, 0]
        z = np.asarray(jit_reference_forward(case.mlp, case.params, case.x)[0][-1])[:, 0]
        last = case.params[-1]
        two = dataclasses.replace(case.mlp, sizes=case.mlp.sizes[:-1] + (2,), output="softmax")
        two_params = case.params[:-1] + (
            Layer(
                jnp.asarray(np.concatenate([np.zeros_like(last.W), last.W])),
                jnp.asarray(np.concatenate([np.zeros_like(last.b), last.b])),
            ),
        )
        p2 = np.asarray(impl(two, two_params, case.x))[:, 1]
        worst_ref = max(worst_ref, max_rel_error(p, 1 / (1 + np.exp(-z))))
        worst_softmax = max(worst_softmax, max_rel_error(p, p2))
        inside = inside and bool(np.all((p > 0) & (p < 1)))
    passed = worst_ref <= TOL and worst_softmax <= TOL and inside
    return Outcome(
        {
            "max rel error vs 1/(1+exp(-z))": worst_ref,
            "max rel error vs softmax(0, z)[1]": worst_softmax,
            "all in (0, 1)": inside,
        },
        f"<= {TOL:g}; in (0, 1)",
        passed,
    )
