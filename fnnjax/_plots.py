"""Pictures of a training run, drawn with matplotlib (no pyplot state: one Figure per call).

- :func:`plot_history`: loss and accuracy per epoch, training against validation/test (F26: the
  gap between the curves is the generalisation gap).
- :func:`plot_predictions`: a grid of images with their true and predicted labels, as the notes
  show after training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_history", "plot_predictions"]

_SERIES = (("train", "tab:blue", "-"), ("val", "tab:orange", "--"), ("test", "tab:green", ":"))


def _series(records: Sequence[dict], name: str) -> tuple[list, list]:
    pairs = [(r["epoch"], r[name]) for r in records if r.get(name) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_history(records: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw loss and accuracy against the epoch, one line per data set, into a PNG.

    Args:
      records: per-epoch dicts as in :attr:`fnnjax.History.epochs` (``epoch``, ``train_loss``,
        ``train_acc`` and any of ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc``; missing or
        None values are skipped).
      path: the PNG file to write.
      title: an optional figure title.

    Returns:
      The path written.

    Raises:
      ValueError: when ``records`` is empty.

    Example:
      >>> import tempfile, os
      >>> from fnnjax._plots import plot_history
      >>> recs = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.6},
      ...         {"epoch": 2, "train_loss": 0.6, "train_acc": 0.8}]
      >>> plot_history(recs, os.path.join(tempfile.mkdtemp(), "c.png")).suffix
      '.png'
    """
    if not records:
        raise ValueError("no epochs to plot: the history is empty")
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
        for name, colour, style in _SERIES:
            xs, ys = _series(records, f"{name}_{metric}")
            if xs:
                ax.plot(xs, ys, style, color=colour, marker="." if len(xs) < 30 else None, label=f"{name} {label}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def plot_predictions(
    images, labels, predictions, classes: Sequence[str], path: str | os.PathLike, *, columns: int = 8
) -> Path:
    """A grid of images titled with the true label (first line) and the prediction (second line).

    Wrong predictions are titled in red.

    Args:
      images: ``(K, 784)`` (square images, flattened) or ``(K, H, W)`` pixel values.
      labels: ``(K,)`` true class indices.
      predictions: ``(K,)`` predicted class indices.
      classes: class names by index.
      path: the PNG file to write.
      columns: images per row.

    Returns:
      The path written.

    Raises:
      ValueError: when the counts differ or an image is not square when flattened.

    Example:
      >>> import numpy as np, tempfile, os
      >>> from fnnjax._plots import plot_predictions
      >>> p = plot_predictions(np.zeros((2, 4)), [0, 1], [0, 0], ["a", "b"],
      ...                      os.path.join(tempfile.mkdtemp(), "p.png"))
      >>> p.name
      'p.png'
    """
    images = np.asarray(images)
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    k = len(images)
    if not k or len(labels) != k or len(predictions) != k:
        raise ValueError(
            f"got {k} images, {len(labels)} labels and {len(predictions)} predictions; "
            "give the same positive number of each"
        )
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"images of {images.shape[1]} pixels are not square; pass them as (K, H, W)")
        images = images.reshape(k, side, side)
    columns = max(1, min(columns, k))
    rows = -(-k // columns)
    fig = Figure(figsize=(1.5 * columns, 1.9 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, img, true, pred in zip(axes, images, labels, predictions):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(
            f"{classes[int(true)]}\n{classes[int(pred)]}", fontsize=8, color="black" if true == pred else "red"
        )
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
