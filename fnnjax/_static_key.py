"""Equality by construction for the static arguments of compiled programs.

``jax.jit`` reuses a compiled program when its static arguments compare equal. An optax
``GradientTransformation`` is a pair of closures, and two closures compare by identity, so
``optax.sgd(0.1)`` built twice would compile the training epoch twice. :class:`ByStructure` wraps
such a value so that it compares by *how it was built*: the code of every function and the values
its closures captured (recursively: numbers, strings, tuples, dicts, small arrays, other
functions). Two optimizers built by the same calls with the same numbers are then one static
argument; anything the key cannot see into (an arbitrary object) is compared by identity, which
is always safe (it only costs a compilation).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Hashable
from typing import Any

import jax
import jax.core
import numpy as np

__all__ = ["ByStructure", "structural_key"]

_MAX_DEPTH = 64
_MAX_ARRAY_SIZE = 4096  # larger captured arrays are compared by identity


def _cell_key(cell, depth: int) -> Hashable:
    try:
        return structural_key(cell.cell_contents, depth + 1)
    except ValueError:  # an empty cell (a closure variable not assigned yet)
        return ("empty-cell",)


def structural_key(obj: Any, depth: int = 0) -> Hashable:
    """A hashable key equal for two values built the same way (see the module docstring).

    Example:
      >>> import optax
      >>> from fnnjax._static_key import structural_key
      >>> structural_key(optax.sgd(0.1)) == structural_key(optax.sgd(0.1))
      True
      >>> structural_key(optax.sgd(0.1)) == structural_key(optax.sgd(0.2))
      False
    """
    if depth > _MAX_DEPTH:
        return ("id", id(obj))
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return (type(obj).__name__, obj)
    if isinstance(obj, np.generic):
        return ("numpy", obj.dtype.str, obj.item())
    if isinstance(obj, (np.ndarray, jax.Array)):
        if isinstance(obj, jax.core.Tracer) or obj.size > _MAX_ARRAY_SIZE:
            return ("id", id(obj))
        host = np.asarray(obj)
        return ("array", type(obj).__name__, host.dtype.str, host.shape, host.tobytes())
    if isinstance(obj, types.FunctionType):
        return (
            "function",
            obj.__module__,
            obj.__qualname__,
            obj.__code__,
            structural_key(obj.__defaults__, depth + 1),
            structural_key(obj.__kwdefaults__, depth + 1),
            tuple(_cell_key(c, depth) for c in obj.__closure__ or ()),
        )
    if isinstance(obj, functools.partial):
        return (
            "partial",
            structural_key(obj.func, depth + 1),
            structural_key(obj.args, depth + 1),
            structural_key(obj.keywords, depth + 1),
        )
    if isinstance(obj, (tuple, list)):  # NamedTuples keep their type
        return (type(obj), tuple(structural_key(v, depth + 1) for v in obj))
    if isinstance(obj, dict):
        return (type(obj), tuple((structural_key(k, depth + 1), structural_key(v, depth + 1)) for k, v in obj.items()))
    if isinstance(obj, (type, types.BuiltinFunctionType, types.ModuleType)):
        return ("object", obj)
    return ("id", id(obj))


class ByStructure:
    """Wraps ``value`` so that equality and hashing follow :func:`structural_key`.

    Attributes:
      value: the wrapped object (used as is by the program that receives it).

    Example:
      >>> import optax
      >>> from fnnjax._static_key import ByStructure
      >>> ByStructure(optax.adam(1e-3)) == ByStructure(optax.adam(1e-3))
      True
    """

    __slots__ = ("value", "_key")

    def __init__(self, value: Any):
        self.value = value
        self._key = structural_key(value)

    def __eq__(self, other) -> bool:
        return isinstance(other, ByStructure) and (self.value is other.value or self._key == other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"ByStructure({self.value!r})"
