"""Greedy layer-wise autoencoder pretraining (F28): the API, the tied gradient, the errors.

That each layer is trained on the codes of the layer below is checked against principal component
analysis by the verify suite's F28 check (tests/test_pretrain_verify.py, with wrong variants).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax

OPT = optax.sgd(0.05, momentum=0.9)  # one object: the compiled programs are reused across tests


def low_rank_data(n=128, dim=6, rank=2, seed=0):
    """Points near a rank-`rank` affine subspace of R^dim (float32, offset from the origin)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, rank)) * np.linspace(2.0, 1.0, rank)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:rank]
    return (z @ basis + 0.1 * rng.normal(size=(n, dim)) + 0.5).astype(np.float32)


def test_tied_gradient_adds_both_paths():
    mlp = fnnjax.MLP((5, 3, 5), hidden="sigmoid", output="sigmoid")
    k = jax.random.split(jax.random.key(0), 4)
    ae = fnnjax.TiedAutoencoder(
        jax.random.normal(k[0], (3, 5)), jax.random.normal(k[1], (3,)), jax.random.normal(k[2], (5,))
    )
    a = jax.random.uniform(k[3], (7, 5))

    def tied_risk(p):
        return fnnjax.loss(mlp, (fnnjax.Layer(p.W, p.b), fnnjax.Layer(p.W.T, p.c)), a, a, "mse")

    expected = jax.jit(jax.grad(tied_risk))(ae)
    got = jax.jit(fnnjax.tied_gradient, static_argnums=0)(mlp, ae, a)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    untied = (fnnjax.Layer(ae.W, ae.b), fnnjax.Layer(ae.W.T, ae.c))
    encoder_path_only = jax.jit(fnnjax.backprop, static_argnums=(0, 4))(mlp, untied, a, a, "mse")[0].W
    assert not np.allclose(encoder_path_only, expected.W, atol=1e-4)  # one path is not enough (F20)


def min_cosine_to_pca(W, x, k):
    """The smallest cosine of the principal angles between W's row space and the top-k principal
    subspace of x (numpy's SVD of the centred data: independent of fnnjax)."""
    centred = np.asarray(x, np.float64) - np.mean(x, axis=0)
    pca = np.linalg.svd(centred, full_matrices=False)[2][:k]
    rows = np.linalg.qr(np.asarray(W, np.float64).T)[0]
    return float(np.min(np.linalg.svd(pca @ rows, compute_uv=False)))


def test_a_linear_autoencoder_layer_learns_the_principal_subspace():
    """F28 with a linear layer: pretraining must move W^(1)'s rows onto the data's top-2 principal
    subspace (Baldi and Hornik); the random start is far from it (so the check can fail)."""
    x = low_rank_data(n=256)
    mlp = fnnjax.MLP((6, 2, 2), hidden="identity", output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, "xavier")
    out = fnnjax.pretrain(
        mlp, params, x, key=jax.random.key(1), epochs=60, batch_size=16, optimizer=OPT, decoder="identity"
    )
    assert min_cosine_to_pca(params[0].W, x, 2) < 0.9
    assert min_cosine_to_pca(out.params[0].W, x, 2) > 0.995
    assert out.losses[0][-1] < 0.2 * out.losses[0][0]  # the reconstruction loss fell
    assert out.params[1] is params[1]  # the output layer is left for fine-tuning


def test_pretrained_net_fine_tunes_with_fit():
    x = low_rank_data()
    y = (x[:, 0] > x[:, 0].mean()).astype(np.int32)
    mlp = fnnjax.MLP((6, 4, 2), hidden="sigmoid", output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, "normal", std=0.01)
    out = fnnjax.pretrain(
        mlp, params, x, key=jax.random.key(1), epochs=3, batch_size=32, optimizer=OPT, decoder="identity"
    )
    assert jax.tree.structure(out.params) == jax.tree.structure(params)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(out.params))
    assert not np.allclose(out.params[0].W, params[0].W)
    assert out.losses[0][-1] < out.losses[0][0]
    tuned, history = fnnjax.fit(mlp, out.params, (x, y), optimizer=OPT, epochs=2, batch_size=32, key=jax.random.key(2))
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()
    assert float(fnnjax.loss(mlp, tuned, x, y)) < float(fnnjax.loss(mlp, out.params, x, y))


def test_autoencoder_mlp_shapes():
    mlp = fnnjax.MLP((10, 6, 4, 3), hidden=("tanh", "relu"), output="softmax")
    assert fnnjax.autoencoder_mlp(mlp, 1).sizes == (10, 6, 10)
    second = fnnjax.autoencoder_mlp(mlp, 2, decoder="sigmoid")
    assert second.sizes == (6, 4, 6) and second.activations == ("relu", "sigmoid")


@pytest.mark.parametrize(
    "sizes, kwargs, match",
    [
        ((4, 2), {}, r"sizes \(4, 2\) has no hidden layer to pretrain"),
        ((4, 3, 2), dict(epochs=0), r"epochs = 0; it must be a positive integer"),
        ((4, 3, 2), dict(batch_size=9), r"batch_size = 9 is larger than the data set \(N = 8\)"),
    ],
)
def test_pretrain_errors(sizes, kwargs, match):
    mlp = fnnjax.MLP(sizes)
    options = dict(key=jax.random.key(0), epochs=1, batch_size=4, optimizer=OPT) | kwargs
    with pytest.raises(ValueError, match=match):
        fnnjax.pretrain(mlp, fnnjax.init_params(jax.random.key(0), mlp), np.zeros((8, 4)), **options)


def test_pretrain_checks_params_and_x():
    mlp = fnnjax.MLP((4, 3, 2))
    params = fnnjax.init_params(jax.random.key(0), mlp)
    with pytest.raises(ValueError, match=r"x has width 5 but the MLP expects 4 inputs"):
        fnnjax.pretrain(mlp, params, np.zeros((8, 5)), key=jax.random.key(0), epochs=1, batch_size=4, optimizer=OPT)
    with pytest.raises(TypeError, match=r"params do not match the MLP"):
        fnnjax.pretrain(mlp, params[:1], np.zeros((8, 4)), key=jax.random.key(0), epochs=1, batch_size=4, optimizer=OPT)
