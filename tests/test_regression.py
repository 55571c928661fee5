"""Deep regression (the notes' regression article; F3, F25): on the U-shaped curve and y = 5 x^2 a
model without a hidden nonlinearity stays at the least-squares line's error however deep it is,
while an MLP fits far below it.

Independent evidence: the best affine fit by numpy's least squares (its mse is the floor no affine
model can beat), and the composed affine map of the trained linear net.
"""

import functools

import jax
import numpy as np
import optax
import pytest

import fnnjax
from fnnjax import data

OPT = optax.sgd(0.05, momentum=0.9)
MODELS = {
    "linear": fnnjax.MLP((1, 1)),
    "deep-linear": fnnjax.MLP((1, 16, 16, 1), hidden="identity"),
    "mlp": fnnjax.MLP((1, 16, 16, 1), hidden="tanh"),
}


def datasets():
    return {"u-shaped": data.u_shaped(300, key=jax.random.key(0)), "5x^2": data.quadratic(300, key=jax.random.key(1))}


def least_squares(x, y) -> tuple[np.ndarray, float]:
    """The best affine fit y ~ w x + b by numpy: ``((w, b), its mse)`` (mse: 1/2 mean squared
    residual, the floor no affine model can beat)."""
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    return coef.ravel(), 0.5 * float(np.mean((design @ coef - y) ** 2))


def least_squares_floor(x, y) -> float:
    return least_squares(x, y)[1]


def stays_at_the_floor(final: float, floor: float) -> bool:
    """The claim for models without a hidden nonlinearity: converged to the floor, never below."""
    return floor * (1 - 1e-5) <= final < 1.05 * floor


@functools.cache
def trained(dataset: str, model: str):
    x, y = datasets()[dataset]
    mlp = MODELS[model]
    params = fnnjax.init_params(jax.random.key(2), mlp, "xavier")
    params, _ = fnnjax.fit(
        mlp, params, (x, y), loss="mse", optimizer=OPT, epochs=150, batch_size=20, key=jax.random.key(3)
    )
    return params, float(fnnjax.loss(mlp, params, x, y, "mse"))


@pytest.mark.parametrize("dataset", ["u-shaped", "5x^2"])
@pytest.mark.parametrize("model", ["linear", "deep-linear"])
def test_models_without_hidden_nonlinearity_stay_at_the_line_floor(dataset, model):
    floor = least_squares_floor(*datasets()[dataset])
    _, final = trained(dataset, model)
    assert stays_at_the_floor(final, floor)  # converged, and no affine map does better
    assert floor > {"u-shaped": 0.04, "5x^2": 1.0}[dataset]  # Var(x^2)/2 on [-1, 1]: a high floor


@pytest.mark.parametrize("dataset", ["u-shaped", "5x^2"])
def test_mlp_fits_far_below_the_floor(dataset):
    x, y = datasets()[dataset]
    floor = least_squares_floor(x, y)
    _, final = trained(dataset, "mlp")
    assert final < floor / 20
    if dataset == "u-shaped":  # down to the noise: 1/2 * 0.05^2 = 0.00125
        assert final < 2 * 0.5 * 0.05**2


@pytest.mark.parametrize("dataset", ["u-shaped", "5x^2"])
def test_deep_linear_net_is_the_least_squares_line(dataset):
    """F3: the trained 1-16-16-1 identity net is one affine map x -> (W3 W2 W1) x + b_eff, and
    training made it THE least-squares line numpy finds (not merely some line)."""
    params, _ = trained(dataset, "deep-linear")
    (W1, b1), (W2, b2), (W3, b3) = (tuple(np.asarray(a, np.float64) for a in p) for p in params)
    w_eff, b_eff = W3 @ W2 @ W1, W3 @ (W2 @ b1 + b2) + b3
    x = np.linspace(-1, 1, 7)[:, None]
    out = np.asarray(fnnjax.forward(MODELS["deep-linear"], params, x.astype(np.float32)))
    np.testing.assert_allclose(out, x @ w_eff.T + b_eff, atol=1e-5)
    (w, b), _ = least_squares(*datasets()[dataset])
    scale = 1.0 + abs(b)
    assert abs(w_eff.item() - w) < 0.05 * scale and abs(b_eff.item() - b) < 0.05 * scale


@pytest.mark.parametrize("dataset", ["u-shaped", "5x^2"])
def test_the_floor_check_fails_for_a_model_with_a_hidden_nonlinearity(dataset):
    """The checks above can fail: the trained tanh MLP breaks 'stays at the floor'."""
    floor = least_squares_floor(*datasets()[dataset])
    _, final = trained(dataset, "mlp")
    assert not stays_at_the_floor(final, floor)
