"""Greedy layer-wise pretraining (F28) on a deep saturating net: does it help backprop fine-tune?

The net: 784 -> ``--depth`` (6) sigmoid hidden layers of ``--width`` (128) units -> 10 softmax,
cross-entropy, float32, on Fashion-MNIST (all 60000 training images unless ``--samples``; test
accuracy on the 10000 test images). For every initialisation scheme in ``--inits`` (default
``normal`` = N(0, 0.01^2), the notes' recipe, and ``xavier``), two arms start from the SAME initial
params (key 0):

- ``random``: fine-tune the initial params directly;
- ``pretrained``: :func:`fnnjax.pretrain` first trains each hidden layer, from those params, as an
  untied autoencoder with a sigmoid decoder on the codes of the layer below (``--pretrain-epochs``
  K = 5 epochs per layer, SGD lr ``--pretrain-lr`` 0.01 momentum 0.9, batch 64, key 1, no labels);
  the output layer keeps its initial weights.

Both arms are then fine-tuned identically by :func:`fnnjax.fit` (hand-written backprop, SGD lr
``--lr`` 0.1, batch ``--batch-size`` 64, ``--epochs`` k = 10, key 2). Recorded per arm: train loss,
train and test accuracy after every fine-tuning epoch (epoch 0: before fine-tuning), the mean
per-sample error-term norm ``mean_i ||delta_i^(l)||`` (F10, F11; :func:`fnnjax.deltas`) of every
layer l on the first ``--delta-samples`` (1000) training images at the start and at the end of
fine-tuning, the autoencoders' reconstruction losses, and the wall times of pretraining (one run,
compilation included) and fine-tuning (compilation apart). These are single runs, not repeated
timings: the numbers are what one seed gives, and the times are only indicative.

Results: ``benchmarks/results/pretrain_<platform>.{json,md,png}`` (``--tag`` replaces the platform;
``--quick`` adds ``_quick``). Run: ``FNNJAX_DATA=/path/holding/fashion-mnist python -m
fnnjax.benchmarks.pretrain``; ``--quick`` is a smoke run (a small net and, without data, synthetic images).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnnjax
from fnnjax import data
from fnnjax.errors import UsageError

from . import _harness, _plot as plot

__all__ = ["add_arguments", "run", "main", "ARMS", "synthetic_images", "delta_norms"]

ARMS = ("random", "pretrained")
"""The two arms for every init scheme: fine-tune the initial params, or pretrain them first."""

QUICK = {
    "width": 16,
    "depth": 3,
    "epochs": 2,
    "pretrain_epochs": 1,
    "samples": 512,
    "delta_samples": 256,
    "inits": "normal",
}
"""What ``--quick`` sets (a smoke run well under a minute)."""

INIT_KEY, PRETRAIN_KEY, FIT_KEY = 0, 1, 2
"""The seeds shared by every arm."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options to ``parser``."""

    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run well under a minute: {QUICK}; synthetic images unless "
        "--data-dir or $FNNJAX_DATA gives the data",
    )
    parser.add_argument(
        "--out",
        default=str(_harness.RESULTS_DIR),
        help=_harness.OUT_HELP,
    )
    parser.add_argument("--tag", default=None, help="suffix of the result names (default: the JAX platform, e.g. cpu)")
    parser.add_argument("--data-dir", default=None, help="folder holding fashion-mnist/ (default: $FNNJAX_DATA)")
    parser.add_argument("--width", type=int, default=128, help="units per hidden layer (default 128)")
    parser.add_argument("--depth", type=int, default=6, help="sigmoid hidden layers (default 6)")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs k (default 10)")
    parser.add_argument(
        "--pretrain-epochs", type=int, default=5, help="autoencoder epochs per hidden layer K (default 5)"
    )
    parser.add_argument("--lr", type=float, default=0.1, help="fine-tuning SGD learning rate (0.1)")
    parser.add_argument(
        "--pretrain-lr", type=float, default=0.01, help="pretraining SGD learning rate, momentum 0.9 (0.01)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of both phases (64)")
    parser.add_argument(
        "--samples", type=int, default=0, help="use only the first N training images (default 0: all 60000)"
    )
    parser.add_argument(
        "--delta-samples",
        type=int,
        default=1000,
        help="training images over which ||delta^(l)|| is averaged (default 1000)",
    )
    parser.add_argument(
        "--inits",
        default="normal,xavier",
        help="comma-separated init schemes: normal (std 0.01) and/or any "
        "fnnjax.SCHEMES name with its default options (default: normal,xavier)",
    )


def synthetic_images(n: int, n_test: int, *, seed: int = 0):
    """Learnable stand-in data: 10 random prototype images in [0, 1], each sample a prototype plus
    uniform noise, clipped to [0, 1]. Returns ``(x (n, 784), y (n,), x_test, y_test)``."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32)

    def draw(m):
        y = rng.integers(0, 10, m).astype(np.int32)
        noise = rng.uniform(-0.5, 0.5, (m, 784)).astype(np.float32)
        return np.clip(prototypes[y] + noise, 0.0, 1.0), y

    return (*draw(n), *draw(n_test))


def _load(args):
    """``(x, y, x_test, y_test, description)``: Fashion-MNIST, or synthetic images for --quick."""
    if args.data_dir is not None or os.environ.get(data.DATA_ENV_VAR):
        ds = data.load_fashion_mnist(args.data_dir)
        return ds.x_train, ds.y_train, ds.x_test, ds.y_test, "fashion-mnist"
    if args.quick:
        n = QUICK["samples"]
        return (*synthetic_images(n, n // 2), "synthetic (10 noisy prototypes)")
    raise UsageError(
        f"the pretrain benchmark needs Fashion-MNIST: no --data-dir and ${data.DATA_ENV_VAR} "
        f"is unset; pass --data-dir DIR (the folder holding fashion-mnist/) or use --quick "
        "(synthetic data)"
    )


def _check_options(args) -> None:
    """One-line errors for options that cannot work."""
    for name in ("width", "depth", "epochs", "pretrain_epochs", "batch_size", "delta_samples"):
        value = getattr(args, name)
        if value < 1:
            raise UsageError(f"--{name.replace('_', '-')} {value} must be a positive integer")
    if args.samples < 0:
        raise UsageError(f"--samples {args.samples} must be >= 0 (0: all training images)")
    for name in ("lr", "pretrain_lr"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} {getattr(args, name)} must be > 0")
    unknown = [s for s in _inits(args) if s not in fnnjax.SCHEMES]
    if unknown or not _inits(args):
        raise UsageError(f"--inits {args.inits!r}: unknown or no scheme; valid schemes are {', '.join(fnnjax.SCHEMES)}")


def _inits(args) -> list[str]:
    return [s.strip() for s in args.inits.split(",") if s.strip()]


def _apply_quick(args) -> None:
    """--quick replaces the sizes the user left at their defaults by :data:`QUICK`'s."""
    defaults = {
        "width": 128,
        "depth": 6,
        "epochs": 10,
        "pretrain_epochs": 5,
        "samples": 0,
        "delta_samples": 1000,
        "inits": "normal,xavier",
    }
    for name, value in QUICK.items():
        if getattr(args, name) == defaults[name]:
            setattr(args, name, value)


def delta_norms(mlp, params, x, y) -> list[float]:
    """``[mean_i ||delta_i^(l)||_2 for l = 1..L]``: the error signal reaching each layer (F10, F11).

    :func:`fnnjax.deltas` (cross-entropy) in one compiled program.

    Example:
      >>> import jax, jax.numpy as jnp, fnnjax
      >>> mlp = fnnjax.MLP((3, 2), output="softmax")
      >>> p = fnnjax.init_params(jax.random.key(0), mlp, std=0.0)  # y_hat = (1/2, 1/2)
      >>> round(delta_norms(mlp, p, jnp.ones((4, 3)), jnp.zeros(4, jnp.int32))[0], 4)  # sqrt(1/2)
      0.7071
    """
    return np.asarray(_mean_delta_norms(mlp, params, x, y)).tolist()


@functools.partial(jax.jit, static_argnums=0)
def _mean_delta_norms(mlp, params, x, y):
    return jnp.stack([jnp.mean(jnp.linalg.norm(d, axis=1)) for d in fnnjax.deltas(mlp, params, x, y, "cross_entropy")])


def _initial_params(mlp, scheme: str):
    options = {"std": 0.01} if scheme == "normal" else {}
    return fnnjax.init_params(jax.random.key(INIT_KEY), mlp, scheme, **options)


def _pretrain(mlp, params, x, args) -> tuple:
    """``(params, per-layer reconstruction losses, wall seconds)`` of :func:`fnnjax.pretrain`."""
    t0 = time.perf_counter()
    out = fnnjax.pretrain(
        mlp,
        params,
        x,
        key=jax.random.key(PRETRAIN_KEY),
        epochs=args.pretrain_epochs,
        batch_size=args.batch_size,
        optimizer=optax.sgd(args.pretrain_lr, momentum=0.9),
        decoder="sigmoid",
    )  # every layer's input lies in [0, 1]
    jax.block_until_ready(out.params)
    return out.params, [losses.tolist() for losses in out.losses], time.perf_counter() - t0


def _fine_tune(mlp, params, sets, args) -> dict:
    """Fine-tune with :func:`fnnjax.fit`; the per-epoch curves (epoch 0 = before) and the times."""
    x, y, x_test, y_test = sets
    n = args.delta_samples
    start_train = fnnjax.evaluate(mlp, params, (x, y))
    start_test = fnnjax.evaluate(mlp, params, (x_test, y_test))
    deltas_start = delta_norms(mlp, params, x[:n], y[:n])
    trained, history = fnnjax.fit(
        mlp,
        params,
        (x, y),
        optimizer=optax.sgd(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        key=jax.random.key(FIT_KEY),
        eval={"test": (x_test, y_test)},
    )
    return {
        "train_loss": [start_train["loss"], *history["train_loss"].tolist()],
        "train_acc": [start_train["acc"], *history["train_acc"].tolist()],
        "test_loss": [start_test["loss"], *history["test_loss"].tolist()],
        "test_acc": [start_test["acc"], *history["test_acc"].tolist()],
        "delta_norms_start": deltas_start,
        "delta_norms_end": delta_norms(mlp, trained, x[:n], y[:n]),
        "fine_tune_s": float(np.sum(history["seconds"])),
        "fine_tune_compile_s": float(history.compile_seconds),
    }


def _run_arms(mlp, sets, args) -> dict:
    """``{"<scheme>/<arm>": record}`` for every init scheme and both arms."""
    results = {}
    for scheme in _inits(args):
        init = _initial_params(mlp, scheme)
        for arm in ARMS:
            print(f"pretrain benchmark: init {scheme}, arm {arm} ...", file=sys.stderr)
            record = {"init": scheme, "arm": arm, "pretrain_s": 0.0, "reconstruction_loss": None}
            params = init
            if arm == "pretrained":
                params, losses, seconds = _pretrain(mlp, init, sets[0], args)
                record.update(reconstruction_loss=losses, pretrain_s=seconds)
            record.update(_fine_tune(mlp, params, sets, args))
            results[f"{scheme}/{arm}"] = record
    return results


def _table(results: dict, args, source: str, sizes, n_train: int) -> str:
    """The markdown table: one row per arm, after a paragraph stating the workload."""
    k = args.epochs
    rows = [
        {
            "init": r["init"],
            "arm": r["arm"],
            "test_acc_start": r["test_acc"][0],
            f"test_acc_after_{k}": r["test_acc"][-1],
            "best_test_acc": max(r["test_acc"]),
            f"train_loss_epoch_{k}": r["train_loss"][-1],
            "delta1_start": r["delta_norms_start"][0],
            f"delta{len(sizes) - 1}_start": r["delta_norms_start"][-1],
            "delta1_end": r["delta_norms_end"][0],
            "pretrain_s": r["pretrain_s"],
            "fine_tune_s": r["fine_tune_s"],
        }
        for r in results.values()
    ]
    head = (
        f"{source}, {n_train} training images; net {'-'.join(map(str, sizes))} (sigmoid "
        f"hidden, softmax output, cross-entropy); pretraining: {args.pretrain_epochs} autoencoder "
        f"epochs per layer (untied, sigmoid decoder, mse, SGD lr {args.pretrain_lr} momentum 0.9, "
        f"batch {args.batch_size}); "
        f"fine-tuning: {k} epochs of SGD lr {args.lr}, batch {args.batch_size}. delta1 / "
        f"delta{len(sizes) - 1} = mean_i ||delta_i^(l)|| of the first / output layer over "
        f"{args.delta_samples} training images; times in seconds (one run; pretraining includes "
        "compilation, fine-tuning excludes it but includes the per-epoch test evaluation)."
    )
    return head + "\n\n" + _harness.markdown_table(rows, list(rows[0]))


def _plot(results: dict, path: Path, title: str) -> Path:
    """Test accuracy per fine-tuning epoch, and ||delta^(l)|| against l at the start (log scale)."""

    fig, axes = plot.new_panels(3, width=4.6, height=3.6)
    colors = plot.palette(list(results))
    for label, r in results.items():
        style = {
            "color": colors[label],
            "linestyle": "-" if r["arm"] == "pretrained" else "--",
            "marker": "o",
            "markersize": 3,
            "label": label,
        }
        epochs = range(len(r["test_acc"]))
        axes[0].plot(epochs, r["test_acc"], **style)
        axes[1].plot(list(epochs)[1:], r["train_loss"][1:], **style)
        axes[2].plot(range(1, len(r["delta_norms_start"]) + 1), r["delta_norms_start"], **style)
    for ax, (ttl, xl, yl) in zip(
        axes,
        (
            ("test accuracy", "fine-tuning epoch", "accuracy"),
            ("train loss (epoch mean)", "fine-tuning epoch", "cross-entropy"),
            ("||delta^(l)|| at start of fine-tuning", "layer l", "mean_i ||delta_i^(l)||"),
        ),
    ):
        ax.set_title(ttl, fontsize=10)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[2].set_yscale("log")
    fig.suptitle(title, fontsize=9)
    return plot.save(fig, path)


def run(args) -> int:
    """Run the benchmark; write the JSON, markdown and PNG results; return 0.

    Raises:
      ValueError: for an option out of range, an unknown init scheme, or missing data without --quick.
    """

    args = argparse.Namespace(**vars(args))  # --quick changes the copy, not the caller's
    if args.quick:
        _apply_quick(args)
    _check_options(args)
    x, y, x_test, y_test, source = _load(args)
    if args.samples:
        if not max(args.batch_size, args.delta_samples) <= args.samples <= len(x):
            low = max(args.batch_size, args.delta_samples)
            raise UsageError(
                f"--samples {args.samples} must lie in {low}..{len(x)} (at least one batch and the --delta-samples)"
            )
        x, y = x[: args.samples], y[: args.samples]
    if args.delta_samples > len(x):
        raise UsageError(f"--delta-samples {args.delta_samples} exceeds the {len(x)} training images")
    sizes = (784, *(args.width,) * args.depth, 10)
    mlp = fnnjax.MLP(sizes, hidden="sigmoid", output="softmax")
    t0 = time.perf_counter()
    results = _run_arms(mlp, (x, y, x_test, y_test), args)
    table = _table(results, args, source, sizes, len(x))
    payload = {
        "workload": {
            "data": source,
            "train_samples": len(x),
            "test_samples": len(x_test),
            "sizes": sizes,
            "hidden": "sigmoid",
            "output": "softmax",
            "loss": "cross_entropy",
            "dtype": "float32",
            "inits": _inits(args),
            "init_options": {"normal": {"std": 0.01}},
            "pretrain": {
                "epochs": args.pretrain_epochs,
                "optimizer": "sgd",
                "lr": args.pretrain_lr,
                "momentum": 0.9,
                "tied": False,
                "decoder": "sigmoid",
                "loss": "mse",
            },
            "fine_tune": {"epochs": args.epochs, "optimizer": "sgd", "lr": args.lr, "gradient": "backprop"},
            "batch_size": args.batch_size,
            "delta_samples": args.delta_samples,
            "keys": {"init": INIT_KEY, "pretrain": PRETRAIN_KEY, "fit": FIT_KEY},
        },
        "total_s": time.perf_counter() - t0,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    name = _harness.result_name("pretrain", args)
    json_path, md_path = _harness.write_results(name, payload, table, args.out)
    png = _plot(
        results,
        Path(json_path).with_suffix(".png"),
        f"F28 pretraining, {'-'.join(map(str, sizes))} sigmoid, {source}, {len(x)} images",
    )
    print(table)
    print(_harness.wrote_line(json_path, md_path, png))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fnnjax.benchmarks.pretrain [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fnnjax.benchmarks.pretrain", description=(__doc__ or "").split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
