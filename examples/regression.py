"""Deep regression (the notes' regression article; F3, F25): fit the noisy U-shaped curve and
y = 5 x^2 with a linear model, a deep net without hidden nonlinearity, and an MLP (mse loss).

The linear and the deep linear model cannot go below the error of the best straight line (computed
here in closed form by least squares): without a nonlinear activation any depth is one affine map
(F3). The tanh MLP fits both curves far below it (F25).

Run: python examples/regression.py [--epochs 150] [--plot regression.png]
"""

import argparse

import jax
import numpy as np
import optax

import fnnjax
from fnnjax import data

MODELS = {
    "linear 1-1": fnnjax.MLP((1, 1)),
    "deep linear 1-16-16-1": fnnjax.MLP((1, 16, 16, 1), hidden="identity"),
    "MLP 1-16-16-1 tanh": fnnjax.MLP((1, 16, 16, 1), hidden="tanh"),
}


def line_floor(x, y) -> float:
    """The mse (1/2 mean squared residual) of the best affine fit, by least squares."""
    design = np.hstack([x, np.ones_like(x)]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    return 0.5 * float(np.mean((design @ coef - y) ** 2))


def main(epochs: int, plot: str | None) -> None:
    sets = {
        "U-shaped: y = x^2 - 0.5 + noise": data.u_shaped(300, key=jax.random.key(0)),
        "y = 5 x^2": data.quadratic(300, key=jax.random.key(1)),
    }
    optimizer = optax.sgd(0.05, momentum=0.9)
    fits = {}
    for title, (x, y) in sets.items():
        print(f"{title}  (best straight line: mse {line_floor(x, y):.5f})")
        for name, mlp in MODELS.items():
            params = fnnjax.init_params(jax.random.key(2), mlp, "xavier")
            params, _ = fnnjax.fit(
                mlp,
                params,
                (x, y),
                loss="mse",
                optimizer=optimizer,
                epochs=epochs,
                batch_size=20,
                key=jax.random.key(3),
            )
            mse = float(fnnjax.loss(mlp, params, x, y, "mse"))
            fits[title, name] = (mlp, params)
            print(f"  {name:<24} mse {mse:.5f}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(sets), figsize=(10, 4))
        grid = np.linspace(-1, 1, 200, dtype=np.float32)[:, None]
        for ax, (title, (x, y)) in zip(axes, sets.items()):
            ax.scatter(x[:, 0], y[:, 0], s=4, color="grey", label="data")
            for name in MODELS:
                mlp, params = fits[title, name]
                ax.plot(grid[:, 0], np.asarray(fnnjax.forward(mlp, params, grid))[:, 0], label=name)
            ax.set_title(title)
            ax.set_xlabel("x")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        print(f"wrote {plot}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    parser.add_argument("--plot", help="write a PNG of the data and the fitted curves here")
    args = parser.parse_args()
    main(args.epochs, args.plot)
