"""The check of greedy layer-wise autoencoder pretraining: F28."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnnjax

from ._evidence import max_rel_error
from ._registry import Outcome, check

__all__ = ["layerwise_autoencoders"]

COSINE_TOL = 0.99
"""Every principal-angle cosine between a pretrained layer's row space and the PCA subspace of its
own input must exceed this."""

GRAD_TOL = 1e-10
_EPOCHS = 150
_OPTIMIZER = optax.sgd(0.05, momentum=0.9)  # one object: its compiled programs are reused


def _low_rank_data(seed: int, n: int = 512, dim: int = 6, rank: int = 3) -> np.ndarray:
    """Points near a rank-3 affine subspace of R^6 with distinct variances 4, 2.25, 1."""
    rng = np.random.default_rng([28, seed])
    z = rng.normal(size=(n, rank)) * np.linspace(2.0, 1.0, rank)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:rank]
    return z @ basis + 0.1 * rng.normal(size=(n, dim)) + 0.5


def _principal_subspace(a: np.ndarray, k: int) -> np.ndarray:
    """The top-k eigenvectors (dim, k) of the covariance of a, by numpy's eigh."""
    centred = a - a.mean(0)
    _, vectors = np.linalg.eigh(centred.T @ centred / len(a))
    return vectors[:, -k:]


def _min_cosine(W, basis: np.ndarray) -> float:
    """The smallest cosine of the principal angles between W's row space and span(basis)."""
    q = np.linalg.qr(np.asarray(W, np.float64).T)[0]
    return float(np.linalg.svd(basis.T @ q, compute_uv=False).min())


def _tied_gradient_error(seed: int, tied_gradient) -> float:
    """max rel error of tied_gradient vs jax.grad of the tied reconstruction risk (both paths, F20)."""
    mlp = fnnjax.MLP((5, 3, 5), hidden="sigmoid", output="sigmoid")
    k = jax.random.split(jax.random.key(seed), 4)
    ae = fnnjax.TiedAutoencoder(
        jax.random.normal(k[0], (3, 5), jnp.float64),
        jax.random.normal(k[1], (3,), jnp.float64),
        jax.random.normal(k[2], (5,), jnp.float64),
    )
    a = jax.random.uniform(k[3], (7, 5), jnp.float64)

    def tied_risk(p):
        return fnnjax.loss(mlp, (fnnjax.Layer(p.W, p.b), fnnjax.Layer(p.W.T, p.c)), a, a, "mse")

    return max_rel_error(tuple(tied_gradient(mlp, ae, a)), tuple(jax.grad(tied_risk)(ae)))


@check(
    "F28-layerwise-autoencoders",
    claim="greedy pretraining trains each layer as an autoencoder on the previous layer's codes "
    "(unsupervised), stacks the encoders, and leaves the output layer to fine-tuning",
    method="linear autoencoders: at the optimum layer l spans the top-M_l principal subspace of "
    "ITS OWN input (x, then layer 1's codes), by numpy eigh; tied gradient vs jax.grad",
)
def layerwise_autoencoders(
    *, seed: int = 0, quick: bool = False, pretrain=fnnjax.pretrain, tied_gradient=fnnjax.tied_gradient
) -> Outcome:
    """F28 on a 6-3-2-1 linear net pretrained on rank-3 data, untied and tied.

    A linear autoencoder trained to its minimum reconstructs through the principal subspace of its
    data (Baldi & Hornik 1989), so layer 1 must span the top-3 subspace of x and layer 2 the top-2
    subspace of layer 1's codes ``W1 x + b1`` (computed from the returned W1): a layer trained on
    the wrong data, or not trained, fails.

    Args:
      seed, quick: the data draw; quick changes nothing (the check is already small: 512 points,
        150 epochs per layer).
      pretrain: the implementation under test, ``(mlp, params, x, *, key, epochs, batch_size,
        optimizer, tied) -> Pretrained``.
      tied_gradient: the tied-weight gradient under test, ``(ae_mlp, ae, a) -> TiedAutoencoder``.
    """
    x = _low_rank_data(seed)
    mlp = fnnjax.MLP((6, 3, 2, 1), hidden="identity")
    params = fnnjax.init_params(jax.random.key(seed), mlp, "xavier", dtype=jnp.float64)
    measured, cosines, output_kept = {}, [], True
    for tied in (False, True):
        out = pretrain(
            mlp,
            params,
            jnp.asarray(x),
            key=jax.random.key(seed + 1),
            epochs=_EPOCHS,
            batch_size=32,
            optimizer=_OPTIMIZER,
            tied=tied,
        )
        W1, b1 = (np.asarray(a, np.float64) for a in out.params[0])
        codes = x @ W1.T + b1  # a^(1): what layer 2 must have been trained on
        c1 = _min_cosine(W1, _principal_subspace(x, 3))
        c2 = _min_cosine(out.params[1].W, _principal_subspace(codes, 2))
        name = "tied" if tied else "untied"
        measured[f"{name}: layer 1 min cosine to PCA(x)"] = c1
        measured[f"{name}: layer 2 min cosine to PCA(layer-1 codes)"] = c2
        cosines += [c1, c2]
        output_kept &= bool(np.array_equal(np.asarray(out.params[2].W), np.asarray(params[2].W)))
    grad_err = _tied_gradient_error(seed, tied_gradient)
    measured["output layer left as initialised"] = output_kept
    measured["tied gradient max rel error vs jax.grad"] = grad_err
    passed = min(cosines) > COSINE_TOL and output_kept and grad_err <= GRAD_TOL
    return Outcome(measured, f"cosines > {COSINE_TOL}; output layer unchanged; tied gradient <= {GRAD_TOL:g}", passed)
