"""Binding ``*args`` under ``jax.jit``: array leaves are traced, every other leaf is static.

``check_gradients(f, grad_f, params, *args)`` passes ``args`` on to f and grad_f. Arrays become
traced arguments of the compiled oracles; names, numbers and descriptions (an :class:`fnnjax.MLP`)
become part of the static, hashable :class:`StaticArgs`, so one compiled program serves every call
with the same static values and the same array shapes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["StaticArgs", "merge_args", "split_args"]


class StaticArgs(NamedTuple):
    """The static half of ``args``: their tree structure and the non-array leaves (hashable).

    Attributes:
      treedef: the structure of the ``args`` tuple.
      values: ``(index, value)`` for every leaf that is not an array.
    """

    treedef: Any
    values: tuple


def split_args(args: tuple) -> tuple[StaticArgs, tuple]:
    """``args`` as ``(StaticArgs, arrays)``.

    Raises:
      TypeError: a leaf is neither an array nor hashable.
    """
    leaves, treedef = jax.tree_util.tree_flatten(args)
    static, dynamic = [], []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, (jax.Array, np.ndarray)):
            dynamic.append(leaf)
        else:
            try:
                hash(leaf)
            except TypeError:
                raise TypeError(
                    f"argument leaf {leaf!r} of type {type(leaf).__name__} is neither an array "
                    "nor hashable; pass arrays, numbers, strings or hashable objects"
                ) from None
            static.append((i, leaf))
    return StaticArgs(treedef, tuple(static)), tuple(dynamic)


def merge_args(static: StaticArgs, dynamic: tuple) -> tuple:
    """The inverse of :func:`split_args`: the original ``args`` (with traced arrays inside a trace)."""
    fixed = dict(static.values)
    it = iter(dynamic)
    leaves = [fixed[i] if i in fixed else next(it) for i in range(static.treedef.num_leaves)]
    return jax.tree_util.tree_unflatten(static.treedef, leaves)
