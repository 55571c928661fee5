"""Checks of optimisation and generalisation claims: non-convexity (F24), universal approximation
(F25), weight decay and dropout (F26), and the parameter count of fully connected layers (F27)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnnjax
from fnnjax import MLP, Layer

from ._evidence import (
    QUICK_PAIRINGS,
    case_set,
    compiled,
    evidence_for,
    fit_slope,
    gradient_cases,
    host_layer,
    jit_reference_risk,
    max_rel_error,
    seeds_for,
)
from ._registry import Outcome, check

__all__ = [
    "dropout_expectation",
    "nonconvex_loss",
    "parameter_count",
    "universal_approximation",
    "validation_weight_decay",
    "weight_decay_update",
]


# ----------------------------------------------------------------------------------------------
# F24


def _two_weight_loss(w1, w2, x, t):
    """The squared error of y = sigma(w2 sigma(w1 x)) through fnnjax (zero biases)."""
    mlp = MLP((1, 1, 1), hidden="sigmoid", output="sigmoid")
    params = (
        Layer(jnp.reshape(w1, (1, 1)), jnp.zeros((1,), x.dtype)),
        Layer(jnp.reshape(w2, (1, 1)), jnp.zeros((1,), x.dtype)),
    )
    return fnnjax.loss(mlp, params, x[:, None], t, "squared_error")


def _hessians(loss_fn, grid, x, t):
    def f(w):
        return loss_fn(w[0], w[1], x, t)

    return jax.vmap(jax.hessian(f))(grid), jax.vmap(f)(grid)


_jit_hessians = compiled(_hessians, 0)


def _grad_at(loss_fn, w, x, t):
    return jax.grad(lambda v: loss_fn(v[0], v[1], x, t))(w)


_jit_grad_at = compiled(_grad_at, 0)


@check(
    "F24-nonconvex",
    claim="even y = sigma(w2 sigma(w1 x)) has a non-convex loss surface in (w1, w2)",
    method="jax.hessian of the squared error on a 41 x 41 grid of (w1, w2) in [-8, 8]^2: a negative eigenvalue, "
    "confirmed by central differences of the gradient and a violated midpoint inequality",
)
def nonconvex_loss(*, seed: int = 0, quick: bool = False, loss_fn=_two_weight_loss) -> Outcome:
    """F24: a point where the Hessian has a negative eigenvalue, for each seed's data.

    Args:
      loss_fn: the loss under test, ``(w1, w2, x, t) -> scalar``.
    """
    axis = np.linspace(-8.0, 8.0, 21 if quick else 41)
    grid = jnp.asarray(np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2))
    worst = {"lambda_min": np.inf}
    ok = True
    for s in seeds_for(seed, quick):
        rng = np.random.default_rng(s)
        x, t = jnp.asarray(rng.uniform(0.5, 2.0, 2)), jnp.asarray(rng.uniform(0.1, 0.9, 2))
        H, values = (np.asarray(v) for v in _jit_hessians(loss_fn, grid, x, t))
        eig = np.linalg.eigvalsh(H)
        i = int(np.argmin(eig[:, 0]))
        lam, scale = float(eig[i, 0]), float(np.max(np.abs(eig)))
        w = np.asarray(grid[i])
        h = 1e-5
        H_fd = np.stack(
            [
                (
                    np.asarray(_jit_grad_at(loss_fn, jnp.asarray(w + h * e), x, t))
                    - np.asarray(_jit_grad_at(loss_fn, jnp.asarray(w - h * e), x, t))
                )
                / (2 * h)
                for e in np.eye(2)
            ]
        )
        fd_err = max_rel_error(0.5 * (H_fd + H_fd.T), H[i])
        u = np.linalg.eigh(H[i])[1][:, 0]
        step = 0.05
        ends = np.asarray(jax.vmap(lambda v: loss_fn(v[0], v[1], x, t))(jnp.asarray([w + step * u, w - step * u])))
        midpoint_gap = float(values[i] - ends.mean())  # > 0: the midpoint lies above the chord
        ok = ok and lam < -1e-4 * scale and fd_err <= 1e-6 and midpoint_gap > 0
        if lam < worst["lambda_min"]:
            worst = {
                "lambda_min": lam,
                "at (w1, w2)": [float(w[0]), float(w[1])],
                "FD Hessian rel error": fd_err,
                "midpoint gap L(w) - (L(w+su) + L(w-su))/2": midpoint_gap,
            }
    worst["seeds"] = len(seeds_for(seed, quick))
    return Outcome(worst, "every seed: lambda_min < -1e-4 max|lambda|, FD agrees <= 1e-6, midpoint gap > 0", ok)


# ----------------------------------------------------------------------------------------------
# F25


def _target(x):
    return np.sin(3 * x) + 0.5 * np.abs(x)


@check(
    "F25-universal-approximation",
    claim="one hidden layer of squashing units approximates a continuous "
    "function on a compact set; the error falls as the width grows",
    method="sigmoid hidden layer (centres spread over [-1, 1], slopes ~ width), output layer by least squares "
    "on 1001 points of [-1, 1]; max error of fnnjax.forward_trace vs width 1..64, fitted log-log slope",
)
def universal_approximation(
    *, seed: int = 0, quick: bool = False, forward_trace=fnnjax.forward_trace, hidden: str = "sigmoid"
) -> Outcome:
    """F25 for f(x) = sin(3x) + |x|/2 on [-1, 1] (continuous, with a kink).

    Args:
      forward_trace: the implementation under test, ``(mlp, params, x) -> Trace(z, a)``.
      hidden: the hidden activation (a squashing one; ``identity`` must fail).
    """
    impl = compiled(forward_trace, 0)
    rng = np.random.default_rng(seed)
    widths = (1, 4, 16, 64) if quick else (1, 2, 4, 8, 16, 32, 64)
    x = np.linspace(-1, 1, 1001)
    errors = []
    for width in widths:
        centres = np.linspace(-1, 1, width) + rng.uniform(-0.2, 0.2, width) / width
        slope = 4.0 * width
        first = Layer(jnp.asarray(slope * np.ones((width, 1))), jnp.asarray(-slope * centres))
        net = MLP((1, width, 1), hidden=hidden, output="identity")
        blank = Layer(jnp.zeros((1, width), jnp.float64), jnp.zeros((1,), jnp.float64))
        H = np.asarray(impl(net, (first, blank), jnp.asarray(x[:, None])).a[1])  # the hidden units' outputs
        coef = np.linalg.lstsq(np.column_stack([H, np.ones_like(x)]), _target(x), rcond=None)[0]
        fitted = (first, Layer(jnp.asarray(coef[None, :-1]), jnp.asarray(coef[-1:])))
        y = np.asarray(impl(net, fitted, jnp.asarray(x[:, None])).a[-1])[:, 0]
        errors.append(float(np.max(np.abs(y - _target(x)))))
    slope_fit = fit_slope(np.log(widths), np.log(errors))
    passed = slope_fit <= -0.7 and errors[-1] <= 0.05 * errors[0]
    return Outcome(
        {"widths": list(widths), "max errors": [float(f"{e:.3g}") for e in errors], "log-log slope": slope_fit},
        "slope <= -0.7; error at the largest width <= 5% of width 1's",
        passed,
    )


# ----------------------------------------------------------------------------------------------
# F26


def _dropout_samples(dropout_scales, mlp, n, rate, keys):
    return jax.vmap(lambda k: dropout_scales(k, mlp, n, rate, jnp.float64))(keys)


_jit_dropout_samples = compiled(_dropout_samples, 0, 1, 2, 3)


@check(
    "F26-dropout",
    claim="dropout zeroes hidden units at random during training only; inverted dropout "
    "rescales the kept ones by 1/(1-p), so the expected activation is unchanged",
    method="fnnjax.dropout_scales over 4000 keys: mean of a * s vs a (z-scores), zero fraction vs p (binomial "
    "z-score), kept multipliers = 1/(1-p) exactly; fnnjax.evaluate = the dropout-free loss, repeatably",
)
def dropout_expectation(
    *, seed: int = 0, quick: bool = False, dropout_scales=fnnjax.dropout_scales, evaluate=fnnjax.evaluate
) -> Outcome:
    """F26: inverted dropout's expectation and scaling, and no dropout at evaluation.

    Args:
      dropout_scales: the implementation under test, ``(key, mlp, n, rate, dtype) -> (s^(1), ..., s^(L-1))``.
      evaluate: the implementation under test, ``(mlp, params, (x, y), loss=) -> {"loss", "acc"}``.
    """
    rng = np.random.default_rng(seed)
    mlp = MLP((3, 8, 8, 2), hidden="tanh", output="softmax")
    n = 4
    a = rng.uniform(0.5, 2.0, (n, 8))  # a hidden activation to be dropped
    K = 1000 if quick else 4000
    worst_z = worst_zero_z = worst_scale = 0.0
    for i, rate in enumerate((0.2, 0.5)):
        keys = jax.random.split(jax.random.key(seed * 10 + i), K)
        for s in _jit_dropout_samples(dropout_scales, mlp, n, rate, keys):
            s = np.asarray(s)  # (K, N, M_l)
            dropped = a[None] * s
            se = a * np.sqrt(rate / (1 - rate) / K)
            worst_z = max(worst_z, float(np.max(np.abs(dropped.mean(axis=0) - a) / se)))
            zero = float(np.mean(s == 0))
            worst_zero_z = max(worst_zero_z, abs(zero - rate) / np.sqrt(rate * (1 - rate) / s.size))
            kept = s[s != 0]
            worst_scale = max(worst_scale, float(np.max(np.abs(kept - 1 / (1 - rate)))) * (1 - rate))
    case = case_set(seed, True, pairings=[("softmax", "cross_entropy")])[0]
    first = evaluate(case.mlp, case.params, (case.x, case.y), loss="cross_entropy")["loss"]
    second = evaluate(case.mlp, case.params, (case.x, case.y), loss="cross_entropy")["loss"]
    plain = float(jit_reference_risk(case.mlp, case.params, case.x, case.target, "cross_entropy", 0.0))
    eval_err = max_rel_error(np.asarray([first, second]), np.asarray([plain, plain]))
    passed = worst_z <= 5 and worst_zero_z <= 5 and worst_scale <= 1e-15 and eval_err <= 1e-12
    return Outcome(
        {
            "max |mean of a s - a| / standard error": worst_z,
            "zero fraction z-score": float(worst_zero_z),
            "kept multipliers vs 1/(1-p) (max rel error)": worst_scale,
            "evaluate vs dropout-free loss (max rel error, 2 calls)": eval_err,
            "rates": [0.2, 0.5],
            "keys": K,
        },
        "z-scores <= 5; kept = 1/(1-p) to rounding; evaluation = dropout-free loss <= 1e-12",
        passed,
    )


def _sgd_step(optimizer, params, grads):
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return updates


_jit_sgd_step = compiled(_sgd_step, 0)


@check(
    "F26-weight-decay",
    claim="the L2 term (F7) acts as weight decay: gradient descent on R with lambda equals "
    "decaying the weights (not the biases) and stepping along the data gradient",
    method="one SGD step: fnnjax.backprop(l2 = lambda) vs optax.chain(fnnjax.l2_decay(lambda), optax.sgd) on "
    "backprop(l2 = 0) vs the closed form W(1 - alpha lambda) - alpha g_W, b - alpha g_b",
)
def weight_decay_update(
    *, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop, l2_decay=fnnjax.l2_decay
) -> Outcome:
    """F26: L2 regularisation is weight decay; fnnjax's optax transformation decays weights only.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
      l2_decay: the implementation under test, ``lambda -> optax.GradientTransformation``.
    """
    alpha, lam = 0.1, 0.3
    optimizer = optax.chain(l2_decay(lam), optax.sgd(alpha))
    worst_backprop = worst_optax = 0.0
    cases = [dataclasses.replace(c, l2=lam) for c in gradient_cases(seed, quick, pairings=QUICK_PAIRINGS)]
    for case in cases:
        with_l2 = evidence_for(case, backprop=backprop)["backprop"]
        data = evidence_for(dataclasses.replace(case, l2=0.0), backprop=backprop)["backprop"]
        closed = tuple(
            host_layer(-alpha * (lam * np.asarray(p.W) + np.asarray(g.W)), -alpha * np.asarray(g.b))
            for p, g in zip(case.params, data)
        )
        by_l2 = tuple(host_layer(-alpha * np.asarray(g.W), -alpha * np.asarray(g.b)) for g in with_l2)
        by_optax = tuple(
            host_layer(np.asarray(u.W), np.asarray(u.b)) for u in _jit_sgd_step(optimizer, case.params, tuple(data))
        )
        worst_backprop = max(worst_backprop, max_rel_error(by_l2, closed))
        worst_optax = max(worst_optax, max_rel_error(by_optax, closed))
    worst = max(worst_backprop, worst_optax)
    return Outcome(
        {
            "backprop(l2) step vs closed form": worst_backprop,
            "l2_decay + sgd step vs closed form": worst_optax,
            "networks x draws": len(cases),
            "alpha": alpha,
            "lambda": lam,
        },
        "<= 1e-10",
        worst <= 1e-10,
    )


@check(
    "F26-validation",
    claim="compare training and validation loss: an over-parameterised net interpolates noise "
    "(small training, large validation loss); weight decay (L2, biases free) narrows the gap",
    method="1-64-1 tanh net, output layer = the exact minimiser of fnnjax.loss(mse, l2) on 16 noisy points "
    "(closed form, checked stationary by fnnjax.backprop); training/validation loss for l2 = 0 and "
    "best l2 > 0",
)
def validation_weight_decay(*, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop) -> Outcome:
    """F26: the training/validation comparison, and weight decay as the remedy.

    Only the output layer is fitted (the hidden layer is a fixed random feature map), so the
    regularised risk is convex in it and its minimiser is exact: ``(H^T H / N + lambda D) w = H^T y / N``
    with D = diag(1, ..., 1, 0) (the bias is not decayed). ``backprop``'s gradient must vanish there.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    rng = np.random.default_rng(seed)
    width, n = 64, 16
    mlp = MLP((1, width, 1), hidden="tanh", output="identity")
    W1, b1 = rng.standard_normal((width, 1)) * 3.0, rng.standard_normal(width) * 2.0
    x_tr = rng.uniform(-1, 1, n)
    y_tr = np.sin(3 * x_tr) + 0.3 * rng.standard_normal(n)
    x_va = np.linspace(-1, 1, 200)
    y_va = np.sin(3 * x_va)
    H = np.column_stack([np.tanh(x_tr[:, None] @ W1.T + b1), np.ones(n)])
    loss = compiled(fnnjax.loss, 0, 4)
    grad = compiled(backprop, 0, 4)
    results = {}
    stationarity = 0.0
    for lam in (0.0, 1e-4, 1e-3, 1e-2, 1e-1):
        if lam == 0:  # underdetermined: the least-norm interpolant
            w = np.linalg.lstsq(H, y_tr, rcond=None)[0]
        else:
            w = np.linalg.solve(H.T @ H / n + lam * np.diag(np.r_[np.ones(width), 0.0]), H.T @ y_tr / n)
        params = (Layer(jnp.asarray(W1), jnp.asarray(b1)), Layer(jnp.asarray(w[None, :-1]), jnp.asarray(w[-1:])))
        train = float(loss(mlp, params, jnp.asarray(x_tr[:, None]), jnp.asarray(y_tr), "mse", 0.0))
        valid = float(loss(mlp, params, jnp.asarray(x_va[:, None]), jnp.asarray(y_va), "mse", 0.0))
        results[lam] = (train, valid)
        if lam > 0:
            g = grad(mlp, params, jnp.asarray(x_tr[:, None]), jnp.asarray(y_tr), "mse", lam)[1]
            scale = float(np.max(np.abs(H.T @ (H @ w - y_tr) / n))) + 1e-300
            stationarity = max(
                stationarity, float(np.max(np.abs(np.r_[np.asarray(g.W).ravel(), np.asarray(g.b)]))) / max(scale, 1e-12)
            )
    best = min((lam for lam in results if lam > 0), key=lambda lam: results[lam][1])
    train0, valid0 = results[0.0]
    train_b, valid_b = results[best]
    passed = (
        valid0 > 2 * train0 and valid_b < valid0 and (valid_b - train_b) < (valid0 - train0) and stationarity <= 1e-6
    )
    return Outcome(
        {
            "l2 = 0: train / validation": [train0, valid0],
            f"l2 = {best:g}: train / validation": [train_b, valid_b],
            "backprop gradient at the regularised minimiser (rel)": stationarity,
        },
        "validation > 2 x train at l2 = 0; best l2 > 0 lowers validation and the gap; gradient <= 1e-6",
        passed,
    )


# ----------------------------------------------------------------------------------------------
# F27


def _count_by_shapes(mlp: MLP) -> int:
    shapes = jax.eval_shape(lambda k: fnnjax.init_params(k, mlp), jax.random.key(0))
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(shapes)))


@check(
    "F27-weight-count",
    claim="a 100x100x3 image input gives 30,000 weights per first-layer neuron; P = sum_l M_l (M_(l-1) + 1)",
    method="MLP.num_params and the shapes of fnnjax.init_params (jax.eval_shape, nothing allocated) vs the "
    "formula; nonzero entries of jax.grad of one first-layer unit w.r.t. W(1) for an image",
)
def parameter_count(*, seed: int = 0, quick: bool = False, count_params=lambda mlp: mlp.num_params) -> Outcome:
    """F27: parameter arithmetic on the notes' image example and the reference experiment's net.

    Args:
      count_params: the implementation under test, ``mlp -> P``.
    """
    nets = {
        "100x100x3 -> 1000 -> 10": (30000, 1000, 10),
        "784 -> 256 -> 10": (784, 256, 10),
        "30000 -> 100 -> 100 -> 2": (30000, 100, 100, 2),
    }
    measured, ok = {}, True
    for name, sizes in nets.items():
        mlp = MLP(sizes)
        formula = sum(m * (n + 1) for n, m in zip(sizes[:-1], sizes[1:]))
        claimed, actual = int(count_params(mlp)), _count_by_shapes(mlp)
        measured[name] = claimed
        ok = ok and claimed == formula == actual
    rng = np.random.default_rng(seed)
    image = jnp.asarray(rng.uniform(0.01, 1.0, 30000))
    W = jnp.asarray(0.01 * rng.standard_normal((4, 30000)))
    per_neuron = jax.jit(jax.grad(lambda W: jnp.tanh(W @ image)[0]))(W)
    nonzero = np.count_nonzero(np.asarray(per_neuron), axis=1)
    measured["weights feeding first-layer unit 1"] = int(nonzero[0])
    measured["other units' weights it depends on"] = int(nonzero[1:].sum())
    ok = ok and nonzero[0] == 30000 and nonzero[1:].sum() == 0
    return Outcome(measured, "claimed = formula = counted shapes (784-256-10: 203,530); 30,000 weights per unit", ok)
