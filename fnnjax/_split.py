"""A deterministic train/validation split (F26: compare training and validation loss)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np

__all__ = ["Split", "train_val_split"]


class Split(NamedTuple):
    """A training part and a validation part of one data set (same dtypes as the input)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def _validation_count(n: int, fraction, count) -> int:
    if (fraction is None) == (count is None):
        raise ValueError(
            f"give exactly one of fraction= (e.g. 0.1) or count= (e.g. 5000), got fraction={fraction!r}, "
            f"count={count!r}"
        )
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 < count < n:
            raise ValueError(f"count={count!r} but the validation part must hold 1..{n - 1} of the {n} samples")
        return int(count)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} but it must lie strictly between 0 and 1")
    k = math.floor(fraction * n + 0.5)
    if not 0 < k < n:
        raise ValueError(
            f"fraction={fraction} of {n} samples gives {k} validation samples; choose a fraction "
            f"that leaves at least one sample on each side (or pass count=)"
        )
    return k


def _key_from(key, seed) -> jax.Array:
    if (key is None) == (seed is None):
        raise ValueError(
            "give exactly one of key= (a jax.random key) or seed= (an int) to make the split "
            f"deterministic, got key={key!r}, seed={seed!r}"
        )
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        return jax.random.key(int(seed))
    return key


def train_val_split(x, y, *, key=None, seed=None, fraction=None, count=None) -> Split:
    """Split ``(x, y)`` at random into a training and a validation part, deterministically.

    The samples are permuted with ``jax.random.permutation(key, N)``; the first ``count``
    (``round(fraction * N)``) of the permutation form the validation part, the rest the training
    part (in permutation order). The same key or seed always gives the same split.

    Args:
      x: inputs ``(N, ...)`` (numpy or jax array).
      y: targets ``(N, ...)``.
      key: a jax.random key (give exactly one of key and seed).
      seed: an int, used as ``jax.random.key(seed)``.
      fraction: the validation share, strictly between 0 and 1 (give exactly one of fraction and
        count).
      count: the number of validation samples, 1..N-1.

    Returns:
      A :class:`Split` ``(x_train (N - k, ...), y_train, x_val (k, ...), y_val)`` of numpy arrays.

    Raises:
      ValueError: when x and y differ in length, when both or neither of key/seed or
        fraction/count are given, or when the validation size is not in 1..N-1.
      TypeError: for a seed that is not an int.

    Example:
      >>> import numpy as np
      >>> from fnnjax import data
      >>> s = data.train_val_split(np.arange(10.0)[:, None], np.arange(10), seed=0, count=2)
      >>> s.x_train.shape, s.x_val.shape
      ((8, 1), (2, 1))
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x has shape {x.shape} and y has shape {y.shape}; they must share the sample axis N")
    n = len(x)
    k = _validation_count(n, fraction, count)
    order = np.asarray(jax.random.permutation(_key_from(key, seed), n))
    val, train = order[:k], order[k:]
    return Split(x[train], y[train], x[val], y[val])
