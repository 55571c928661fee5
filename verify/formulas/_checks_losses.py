"""Checks of the losses, the structural risk and the gradient-descent update: F6-F9."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax import MLP, Layer

from ._evidence import PAIRINGS, compiled, evidence_for, gradient_cases, jit_reference_forward, max_rel_error
from ._registry import Outcome, check

__all__ = [
    "binary_cross_entropy",
    "gradient_descent_update",
    "softmax_cross_entropy",
    "squared_errors",
    "structural_risk",
]

TOL = 1e-12


def _per_sample_losses(loss_fn, mlp, params, x, y, loss):
    return jax.vmap(lambda xi, yi: loss_fn(mlp, params, xi, yi, loss))(x, y)


_jit_per_sample_losses = compiled(_per_sample_losses, 0, 1, 5)


def _unregularised(case):
    return dataclasses.replace(case, l2=0.0)


@check(
    "F6-softmax-ce",
    claim="cross-entropy of one sample is L = -y^T log y_hat (one-hot y); the batch loss is its mean",
    method="fnnjax.loss of each sample alone vs -log of the reference output at the label (numpy), batch vs "
    "the mean, one-hot vs integer labels, and logits (1000, 0) vs the exact 1000",
)
def softmax_cross_entropy(*, seed: int = 0, quick: bool = False, loss=fnnjax.loss) -> Outcome:
    """F6 for softmax outputs.

    Args:
      loss: the implementation under test, ``(mlp, params, x, y, loss, l2) -> R``.
    """
    worst_sample = worst_batch = 0.0
    cases = gradient_cases(seed, quick, pairings=[("softmax", "cross_entropy")])
    for case in cases:
        ev = evidence_for(_unregularised(case), loss=loss)
        p = np.asarray(ev["acts"][-1])
        labels = np.asarray(case.y)
        by_formula = -np.log(p[np.arange(len(labels)), labels])
        worst_sample = max(worst_sample, max_rel_error(ev["per_sample_loss"], by_formula))
        worst_batch = max(worst_batch, max_rel_error(ev["risk"], np.mean(by_formula)))
    first = cases[0]
    impl = compiled(loss, 0, 4)
    onehot = jnp.asarray(np.eye(first.mlp.sizes[-1])[np.asarray(first.y)])
    worst_onehot = max_rel_error(
        impl(first.mlp, first.params, first.x, onehot, "cross_entropy", 0.0),
        impl(first.mlp, first.params, first.x, first.y, "cross_entropy", 0.0),
    )
    mlp = MLP((1, 2), output="softmax")
    big = impl(
        mlp,
        (Layer(jnp.asarray([[1000.0], [0.0]]), jnp.zeros((2,), jnp.float64)),),
        jnp.ones((1,), jnp.float64),
        jnp.asarray(1),
        "cross_entropy",
        0.0,
    )
    big_err = abs(float(big) - 1000.0) / 1000.0
    worst = max(worst_sample, worst_batch, worst_onehot, big_err)
    return Outcome(
        {
            "per-sample max rel error": worst_sample,
            "batch mean max rel error": worst_batch,
            "one-hot vs labels max rel error": worst_onehot,
            "logits (1000, 0), label 1": float(big),
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}; large logits give 1000 (finite)",
        worst <= TOL,
    )


@check(
    "F6-sigmoid-bce",
    claim="a sigmoid output's cross-entropy is -[y log p + (1 - y) log(1 - p)]",
    method="fnnjax.loss of each sample alone and of the batch vs the formula from the reference output p "
    "(numpy), soft labels in [0, 1]",
)
def binary_cross_entropy(*, seed: int = 0, quick: bool = False, loss=fnnjax.loss) -> Outcome:
    """F6 for a sigmoid output (binary cross-entropy).

    Args:
      loss: the implementation under test, ``(mlp, params, x, y, loss, l2) -> R``.
    """
    worst_sample = worst_batch = 0.0
    cases = gradient_cases(seed, quick, pairings=[("sigmoid", "cross_entropy")])
    for case in cases:
        ev = evidence_for(_unregularised(case), loss=loss)
        p = np.asarray(ev["acts"][-1])
        t = np.asarray(case.y)
        by_formula = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=1)
        worst_sample = max(worst_sample, max_rel_error(ev["per_sample_loss"], by_formula))
        worst_batch = max(worst_batch, max_rel_error(ev["risk"], np.mean(by_formula)))
    worst = max(worst_sample, worst_batch)
    return Outcome(
        {
            "per-sample max rel error": worst_sample,
            "batch mean max rel error": worst_batch,
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F7-structural-risk",
    claim="R = (1/N) sum_i L_i + (lambda/2) ||W||_F^2 over every weight of every layer, biases excluded",
    method="fnnjax.loss with l2 vs the mean of its one-sample losses (l2 = 0) plus lambda/2 sum W^2 "
    "(numpy), every loss; the l2 part unchanged when the biases are redrawn",
)
def structural_risk(*, seed: int = 0, quick: bool = False, loss=fnnjax.loss) -> Outcome:
    """F7 on random nets and every loss.

    Args:
      loss: the implementation under test, ``(mlp, params, x, y, loss, l2) -> R``.
    """
    worst_risk = worst_bias = 0.0
    cases = gradient_cases(seed, quick)
    for i, case in enumerate(cases):
        lam = 0.1 + 0.05 * i
        frob = sum(float(np.sum(np.asarray(p.W) ** 2)) for p in case.params)
        ev = evidence_for(dataclasses.replace(case, l2=lam), loss=loss)
        expected = float(np.mean(np.asarray(ev["per_sample_loss"]))) + lam / 2 * frob
        worst_risk = max(worst_risk, max_rel_error(ev["risk"], expected))
        rng = np.random.default_rng(i)
        moved = tuple(Layer(p.W, jnp.asarray(3.0 * rng.standard_normal(p.b.shape))) for p in case.params)
        with_l2 = evidence_for(dataclasses.replace(case, params=moved, l2=lam), loss=loss)["risk"]
        without = evidence_for(dataclasses.replace(case, params=moved, l2=0.0), loss=loss)["risk"]
        worst_bias = max(worst_bias, max_rel_error(with_l2 - without, lam / 2 * frob))
    worst = max(worst_risk, worst_bias)
    return Outcome(
        {
            "max rel error of R": worst_risk,
            "max rel error of the l2 part, biases redrawn": worst_bias,
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}",
        worst <= TOL,
    )


@check(
    "F8-gradient-descent",
    claim="W <- W - alpha((1/N) sum_i dL_i/dW + lambda W), b <- b - alpha (1/N) "
    "sum_i dL_i/db: weight decay is the L2 term's gradient",
    method="one step with fnnjax.backprop(l2 = lambda) vs per-sample jax.grad of the reference loss "
    "(vmap), averaged, plus lambda W for weights only; lambda 0 and > 0",
)
def gradient_descent_update(*, seed: int = 0, quick: bool = False, backprop=fnnjax.backprop) -> Outcome:
    """F8: the update of weights and biases, with weight decay.

    Args:
      backprop: the implementation under test, ``(mlp, params, x, y, loss, l2) -> grads``.
    """
    alpha = 0.1
    worst_W = worst_b = 0.0
    cases = gradient_cases(seed, quick)
    for case in cases:
        ev = evidence_for(case, backprop=backprop)
        for p, g, ps in zip(case.params, ev["backprop"], ev["per_sample_gradients"]):
            step_W = -alpha * (np.mean(np.asarray(ps.W), axis=0) + case.l2 * np.asarray(p.W))
            step_b = -alpha * np.mean(np.asarray(ps.b), axis=0)
            new_W, new_b = np.asarray(p.W) - alpha * np.asarray(g.W), np.asarray(p.b) - alpha * np.asarray(g.b)
            worst_W = max(worst_W, max_rel_error(new_W - np.asarray(p.W), step_W))
            worst_b = max(worst_b, max_rel_error(new_b - np.asarray(p.b), step_b))
    worst = max(worst_W, worst_b)
    return Outcome(
        {
            "max rel error of the W update": worst_W,
            "max rel error of the b update": worst_b,
            "alpha": alpha,
            "networks x draws": len(cases),
            "with lambda > 0": sum(c.l2 > 0 for c in cases),
        },
        "<= 1e-10",
        worst <= 1e-10,
    )


@check(
    "F9-squared-error",
    claim="mse = 1/2 ||y_hat - y||^2 per sample averaged over the batch; "
    "squared_error = ||y_hat - y||^2 = 2 mse is the notes' (label - y)^2",
    method="fnnjax.loss 'mse' and 'squared_error' (batch and each sample alone) vs the formulas from the "
    "reference output (numpy); (label - y)^2 for a one-output net",
)
def squared_errors(*, seed: int = 0, quick: bool = False, loss=fnnjax.loss) -> Outcome:
    """F9: both scalings of the squared error.

    Args:
      loss: the implementation under test, ``(mlp, params, x, y, loss, l2) -> R``.
    """
    worst = {"mse": 0.0, "squared_error": 0.0}
    pairings = [pair for pair in PAIRINGS if pair[1] in ("mse", "squared_error")]
    cases = gradient_cases(seed, quick, pairings=pairings[:2] if quick else pairings)
    for case in cases:
        ev = evidence_for(_unregularised(case), loss=loss)
        r = np.asarray(ev["acts"][-1]) - np.asarray(case.y)
        per = (0.5 if case.loss == "mse" else 1.0) * np.sum(r * r, axis=1)
        worst[case.loss] = max(
            worst[case.loss], max_rel_error(ev["per_sample_loss"], per), max_rel_error(ev["risk"], np.mean(per))
        )
    one = cases[0]
    mlp = MLP(one.mlp.sizes[:-1] + (1,), hidden=one.mlp.hidden, output="identity")
    params = one.params[:-1] + (Layer(one.params[-1].W[:1], one.params[-1].b[:1]),)
    label = one.y[:, 0]
    y_hat = np.asarray(jit_reference_forward(mlp, params, one.x)[1][-1])[:, 0]
    got = np.asarray(_jit_per_sample_losses(loss, mlp, params, one.x, label, "squared_error"))
    scalar = max_rel_error(got, (np.asarray(label) - y_hat) ** 2)
    top = max(*worst.values(), scalar)
    return Outcome(
        {
            "mse max rel error": worst["mse"],
            "squared_error max rel error": worst["squared_error"],
            "(label - y)^2 max rel error": scalar,
            "networks x draws": len(cases),
        },
        f"<= {TOL:g}",
        top <= TOL,
    )
