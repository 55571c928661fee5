"""Greedy layer-wise autoencoder pretraining (F28) of a deep sigmoid net on Fashion-MNIST.

Trains each hidden layer as an autoencoder on the codes of the layer below (unsupervised), then
fine-tunes the whole net with backprop, and compares with the same net trained from its random
initialisation: test accuracy after the fine-tuning epochs, and the size of the first layer's error
term ||delta^(1)|| (F11, F18) at the start of fine-tuning.

Needs the data set: FNNJAX_DATA=/path/holding/fashion-mnist, or --data-dir, or a download.
Run: python examples/pretrain.py [--samples 5000] [--pretrain-epochs 3] [--epochs 3]
"""

import argparse

import jax
import jax.numpy as jnp
import optax

import fnnjax
from fnnjax import data


def first_delta_norm(mlp, params, x, y) -> float:
    """mean_i ||delta_i^(1)||: how much error signal reaches the first layer."""
    d1 = fnnjax.deltas(mlp, params, x, y, "cross_entropy")[0]
    return float(jnp.mean(jnp.linalg.norm(d1, axis=1)))


def main(args) -> None:
    ds = data.load_fashion_mnist(args.data_dir)
    x, y = ds.x_train[: args.samples], ds.y_train[: args.samples]
    mlp = fnnjax.MLP((784, 256, 128, 64, 32, 10), hidden="sigmoid", output="softmax")
    init = fnnjax.init_params(jax.random.key(0), mlp, "normal", std=0.01)
    pre = fnnjax.pretrain(
        mlp,
        init,
        x,
        key=jax.random.key(1),
        epochs=args.pretrain_epochs,
        batch_size=64,
        optimizer=optax.sgd(0.01, momentum=0.9),
        decoder="sigmoid",
    )  # every layer's input lies in [0, 1]
    for l, losses in enumerate(pre.losses, start=1):
        print(f"layer {l} autoencoder: reconstruction mse {losses[0]:.4f} -> {losses[-1]:.4f}")
    for name, start in (("random init", init), ("pretrained", pre.params)):
        norm = first_delta_norm(mlp, start, x[:1000], y[:1000])
        params, _ = fnnjax.fit(
            mlp, start, (x, y), optimizer=optax.sgd(0.1), epochs=args.epochs, batch_size=64, key=jax.random.key(2)
        )
        scores = fnnjax.evaluate(mlp, params, (ds.x_test, ds.y_test))
        print(
            f"{name:<12} ||delta^(1)|| at start {norm:.2e}; after {args.epochs} fine-tuning "
            f"epochs: test accuracy {scores['acc']:.4f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="folder holding the Fashion-MNIST files (default: $FNNJAX_DATA or the cache)"
    )
    parser.add_argument("--samples", type=int, default=5000, help="training images used")
    parser.add_argument("--pretrain-epochs", type=int, default=3, help="autoencoder epochs per layer")
    parser.add_argument("--epochs", type=int, default=3, help="supervised fine-tuning epochs")
    main(parser.parse_args())
