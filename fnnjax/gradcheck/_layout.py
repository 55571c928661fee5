"""Params pytree <-> one flat vector theta: the layout on the host, ``ravel_pytree`` in the trace.

The finite-difference stencil and the Taylor points move one coordinate (or one direction) of the
flat parameter vector ``theta``, ``(P,)``, so every oracle is a function of theta. Two halves:

- On the host, :class:`LeafLayout` records where each leaf lives in theta (paths, shapes, offsets)
  for the reports, and :meth:`LeafLayout.ravel` / :meth:`LeafLayout.split` convert with numpy (no
  JAX dispatch, nothing to compile).
- In the trace, :func:`flat_function` rebuilds the pytree with ``jax.flatten_util.ravel_pytree``.
  Its unravel function is made from the params argument *inside* the traced function, so no layout
  needs to be a static (hashable) argument of ``jax.jit``: the compiled program is keyed on params'
  structure, shapes and dtypes like any other pytree argument. (An unravel function made outside
  would have to be a static argument; whether it is hashable by value is an implementation detail
  of JAX that changed between versions, so nothing here relies on it.)

Both orders are ``jax.tree_util.tree_leaves(params)`` with each leaf raveled in C order, so a host
vector and a traced one index the same coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = ["LeafLayout", "flat_function", "leaf_layout"]


class LeafLayout(NamedTuple):
    """Where each leaf of a params pytree lives in the flat vector theta.

    Attributes:
      treedef: the params' tree structure.
      paths: each leaf's path, e.g. ``[0].W`` (``jax.tree_util.keystr``).
      shapes: each leaf's shape.
      offsets: where each leaf starts in theta.
      size: P, the length of theta.
      dtype: the parameters' one floating dtype, e.g. ``float32``.
    """

    treedef: Any
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    size: int
    dtype: str

    @property
    def slices(self) -> tuple[slice, ...]:
        """Each leaf's slice of theta."""
        return tuple(slice(o, o + math.prod(s)) for o, s in zip(self.offsets, self.shapes))

    def ravel(self, tree, dtype=None) -> np.ndarray:
        """A pytree of this layout (or its list of leaves) as one flat numpy vector.

        Args:
          tree: a pytree with params' structure, or the list of its leaves.
          dtype: the vector's dtype (default: the parameters' dtype).

        Returns:
          ``(P,)``, the leaves raveled in tree order.
        """
        leaves = tree if isinstance(tree, list) else jax.tree_util.tree_leaves(tree)
        dt = self.dtype if dtype is None else dtype
        return np.concatenate([np.asarray(leaf).astype(dt).ravel() for leaf in leaves])

    def split(self, theta) -> list[np.ndarray]:
        """A flat ``(P,)`` vector back to one array per leaf (numpy views, each in its leaf's shape)."""
        theta = np.asarray(theta)
        return [theta[sl].reshape(shape) for sl, shape in zip(self.slices, self.shapes)]


def leaf_layout(params) -> LeafLayout:
    """The :class:`LeafLayout` of a params pytree whose leaves share one floating dtype.

    Args:
      params: a pytree of floating arrays (jax or numpy) of one dtype.

    Returns:
      The :class:`LeafLayout`.

    Raises:
      ValueError: params has no leaves.
      TypeError: a leaf is not floating, or the leaves have different dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> from fnnjax.gradcheck import leaf_layout
      >>> layout = leaf_layout({"b": jnp.zeros(2), "w": jnp.zeros((2, 3))})
      >>> layout.paths, layout.offsets, layout.size, layout.dtype
      (("['b']", "['w']"), (0, 2), 8, 'float32')
    """
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not leaves_with_path:
        raise ValueError("params has no array leaves; pass the pytree of parameters f differentiates")
    paths, shapes, offsets, dtype, first = [], [], [], None, None
    offset = 0
    for path, leaf in leaves_with_path:
        name = jax.tree_util.keystr(path) or "params"
        dt = jnp.result_type(leaf)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"params leaf {name} has dtype {dt}; check_gradients needs floating parameters")
        if dtype is None:
            dtype, first = dt, name
        elif dt != dtype:
            raise TypeError(
                f"params leaf {name} has dtype {dt} but {first} has {dtype}; give every "
                f"parameter one dtype (jax.tree.map(lambda p: p.astype('{dtype}'), params))"
            )
        shape = tuple(jnp.shape(leaf))
        paths.append(name)
        shapes.append(shape)
        offsets.append(offset)
        offset += math.prod(shape)
    return LeafLayout(treedef, tuple(paths), tuple(shapes), tuple(offsets), offset, str(dtype))


def flat_function(f: Callable[[Any], jax.Array], params) -> Callable[[jax.Array], jax.Array]:
    """``theta -> f(params rebuilt from theta)``: f as a function of the flat parameter vector.

    The pytree is rebuilt by the unravel function of ``jax.flatten_util.ravel_pytree(params)``, so
    theta is ordered like :meth:`LeafLayout.ravel`. Call it inside the traced function with params
    as a traced argument: only params' structure and shapes are used, never its values.

    Args:
      f: a function of the params pytree.
      params: a pytree of arrays (or tracers) of one dtype.

    Returns:
      A function of ``theta: (P,)``, traceable like f.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fnnjax.gradcheck import flat_function
      >>> params = {"b": jnp.ones(2), "w": jnp.ones((2, 2))}
      >>> F = jax.jit(lambda p, theta: flat_function(lambda q: jnp.sum(q["w"] @ q["b"]), p)(theta))
      >>> float(F(params, jnp.arange(6.0)))  # b = (0, 1), w = [[2, 3], [4, 5]]: 3 + 5
      8.0
    """
    _, unravel = ravel_pytree(params)
    return lambda theta: f(unravel(theta))
