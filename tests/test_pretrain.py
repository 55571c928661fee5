"""Greedy layer-wise autoencoder pretraining (F28).

Independent evidence: a linear autoencoder with k code units, trained to its minimum, spans the
top-k principal subspace of its (centred) data and reconstructs with half the sum of the remaining
covariance eigenvalues as mse (Baldi & Hornik 1989), so each pretrained layer can be checked
against an eigendecomposition; the tied gradient is checked against jax.grad.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnnjax

OPT = optax.sgd(0.05, momentum=0.9)  # one object: the compiled programs are reused across tests


def low_rank_data(n=512, dim=6, rank=2, seed=0):
    """Points near a rank-`rank` affine subspace of R^dim (float32, offset from the origin)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, rank)) * np.linspace(2.0, 1.0, rank)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:rank]
    return (z @ basis + 0.1 * rng.normal(size=(n, dim)) + 0.5).astype(np.float32)


def pca(a, k):
    """(top-k eigenvectors (dim, k), the PCA reconstruction floor 1/2 sum of the other eigenvalues)."""
    a = np.asarray(a, np.float64)
    centred = a - a.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(a))
    return vectors[:, -k:], 0.5 * values[:-k].sum()


def subspace_cosines(W, basis):
    """Cosines of the principal angles between the row space of W and span(basis)."""
    q = np.linalg.qr(np.asarray(W, np.float64).T)[0]
    return np.linalg.svd(basis.T @ q, compute_uv=False)


@pytest.mark.parametrize("tied", [False, True])
def test_linear_layers_learn_the_principal_subspace_layer_by_layer(tied):
    x = low_rank_data(rank=3)  # 3 clear directions for 3 code units, then 2 of those for layer 2
    mlp = fnnjax.MLP((6, 3, 2, 1), hidden="identity")
    params = fnnjax.init_params(jax.random.key(0), mlp, "xavier")
    out = fnnjax.pretrain(mlp, params, x, key=jax.random.key(1), epochs=150, batch_size=32,
                          optimizer=OPT, tied=tied)
    W1, b1 = out.params[0]
    top, floor = pca(x, 3)
    assert subspace_cosines(W1, top).min() > 0.99
    assert floor <= out.losses[0][-1] < 1.1 * floor < 0.1 * out.losses[0][0]
    codes = np.asarray(x, np.float64) @ np.asarray(W1, np.float64).T + np.asarray(b1)  # a^(1)
    top2, floor2 = pca(codes, 2)  # layer 2 is trained on layer 1's codes, not on x
    assert subspace_cosines(out.params[1].W, top2).min() > 0.99
    assert out.losses[1][-1] < 1.1 * floor2 + 1e-4
    assert out.params[2] is params[2]  # the output layer is left as initialised


def test_pretrained_layers_differ_from_a_wrong_variant():
    """The PCA check fails when a layer is NOT pretrained (the random init spans a random plane)."""
    x = low_rank_data()
    params = fnnjax.init_params(jax.random.key(0), fnnjax.MLP((6, 3, 1)), "xavier")
    top, _ = pca(x, 3)
    assert subspace_cosines(params[0].W, top).min() < 0.9


def test_tied_gradient_adds_both_paths():
    mlp = fnnjax.MLP((5, 3, 5), hidden="sigmoid", output="sigmoid")
    k = jax.random.split(jax.random.key(0), 4)
    ae = fnnjax.TiedAutoencoder(jax.random.normal(k[0], (3, 5)), jax.random.normal(k[1], (3,)),
                                jax.random.normal(k[2], (5,)))
    a = jax.random.uniform(k[3], (7, 5))

    def tied_risk(p):
        return fnnjax.loss(mlp, (fnnjax.Layer(p.W, p.b), fnnjax.Layer(p.W.T, p.c)), a, a, "mse")

    expected = jax.grad(tied_risk)(ae)
    got = fnnjax.tied_gradient(mlp, ae, a)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    encoder_path_only = fnnjax.backprop(mlp, (fnnjax.Layer(ae.W, ae.b), fnnjax.Layer(ae.W.T, ae.c)),
                                        a, a, "mse")[0].W
    assert not np.allclose(encoder_path_only, expected.W, atol=1e-4)  # one path is not enough (F20)


def test_pretrained_net_fine_tunes_with_fit():
    x = low_rank_data(n=128)
    y = (x[:, 0] > x[:, 0].mean()).astype(np.int32)
    mlp = fnnjax.MLP((6, 4, 2), hidden="sigmoid", output="softmax")
    params = fnnjax.init_params(jax.random.key(0), mlp, "normal", std=0.01)
    out = fnnjax.pretrain(mlp, params, x, key=jax.random.key(1), epochs=3, batch_size=32,
                          optimizer=optax.sgd(0.1), decoder="identity")
    assert jax.tree.structure(out.params) == jax.tree.structure(params)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(out.params))
    assert not np.allclose(out.params[0].W, params[0].W)
    tuned, history = fnnjax.fit(mlp, out.params, (x, y), optimizer=optax.sgd(0.5), epochs=2,
                                batch_size=32, key=jax.random.key(2))
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()


def test_autoencoder_mlp_shapes():
    mlp = fnnjax.MLP((10, 6, 4, 3), hidden=("tanh", "relu"), output="softmax")
    assert fnnjax.autoencoder_mlp(mlp, 1).sizes == (10, 6, 10)
    second = fnnjax.autoencoder_mlp(mlp, 2, decoder="sigmoid")
    assert second.sizes == (6, 4, 6) and second.activations == ("relu", "sigmoid")


@pytest.mark.parametrize("sizes, kwargs, match", [
    ((4, 2), {}, r"sizes \(4, 2\) has no hidden layer to pretrain"),
    ((4, 3, 2), dict(epochs=0), r"epochs = 0; it must be a positive integer"),
    ((4, 3, 2), dict(batch_size=9), r"batch_size = 9 is larger than the data set \(N = 8\)"),
])
def test_pretrain_errors(sizes, kwargs, match):
    mlp = fnnjax.MLP(sizes)
    options = dict(key=jax.random.key(0), epochs=1, batch_size=4, optimizer=OPT) | kwargs
    with pytest.raises(ValueError, match=match):
        fnnjax.pretrain(mlp, fnnjax.init_params(jax.random.key(0), mlp), np.zeros((8, 4)), **options)


def test_pretrain_checks_params_and_x():
    mlp = fnnjax.MLP((4, 3, 2))
    params = fnnjax.init_params(jax.random.key(0), mlp)
    with pytest.raises(ValueError, match=r"x has width 5 but the MLP expects 4 inputs"):
        fnnjax.pretrain(mlp, params, np.zeros((8, 5)), key=jax.random.key(0), epochs=1,
                        batch_size=4, optimizer=OPT)
    with pytest.raises(TypeError, match=r"params do not match the MLP"):
        fnnjax.pretrain(mlp, params[:1], np.zeros((8, 4)), key=jax.random.key(0), epochs=1,
                        batch_size=4, optimizer=OPT)
