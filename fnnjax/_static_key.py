"""Equality by construction for the static arguments of compiled programs.

``jax.jit`` reuses a compiled program when its static arguments compare equal. An optax
``GradientTransformation`` is a pair of closures, and two closures compare by identity, so
``optax.sgd(0.1)`` built twice would compile the training epoch twice. :class:`ByStructure` wraps
such a value so that it compares by *what it computes*: two values share a key only when every
function in them is the same code reading the same values. A function's key holds

- its code (nested code objects included), defaults and keyword defaults;
- the values in its closure cells;
- the values of the globals its code (and every nested code object) names, looked up in its module
  (or the builtins) when the key is made, and of the attributes its code names on a module, a class
  or an object it reaches: ``lambda step: lr`` at module level reads the global ``lr``, so
  ``optax.sgd(lambda step: lr)`` with ``lr = 0.0`` and with ``lr = 0.5`` are two keys;

recursively (numbers, strings, tuples, lists, dicts, sets, arrays, other functions). Containers and
NumPy arrays are keyed by a snapshot of their contents: a key is made just before the program is
traced, and the program holds the values it read then, so equal snapshots are equal programs.

Where the key cannot see everything, it is strict, never permissive:

- an object it cannot see into (one implemented in C, an instance of a class) is compared by
  identity *and* by a snapshot of its attributes; the key holds the object itself, so its ``id`` is
  never reused by another object while the key lives;
- a value whose behaviour cannot be pinned down (a traced value, an iterator or a random
  generator, a function of your code that looks names up at run time with ``globals``, ``vars``,
  ``getattr``, ``eval`` or ``exec``, a structure nested deeper than 64 levels) makes the key
  *fresh*: equal to no other, so the program is compiled anew.

One thing is trusted rather than compared: the module-level names of installed code (the standard
library, site-packages, fnnjax itself) are taken to stay what they are, so a function of optax or
JAX is keyed by its code, its closure and the *identity* of the globals it reads, without following
them into JAX's internals (whose caches would make every key fresh). Your own code (a script, a
notebook, a test file, a package outside site-packages) is followed all the way.
"""

from __future__ import annotations

import builtins
import collections
import enum
import functools
import hashlib
import os
import random
import sys
import sysconfig
import types
from collections.abc import Hashable, Iterator, Mapping, Sequence, Set
from typing import Any

import jax
import jax.core
import numpy as np

__all__ = ["ByStructure", "structural_key"]

_MAX_DEPTH = 64
_MAX_ARRAY_BYTES = 1 << 16  # larger NumPy arrays are keyed by a SHA-256 digest of their bytes
_MAX_JAX_ARRAY_SIZE = 4096  # larger JAX arrays (immutable) are keyed by identity

# builtins through which a function can read names its code does not spell out
_DYNAMIC_LOOKUPS = frozenset({"globals", "vars", "locals", "getattr", "eval", "exec", "__import__", "__dict__"})

# library types whose state changes with every use
_STATEFUL_TYPES: tuple[type, ...] = (
    random.Random,
    np.random.Generator,
    np.random.RandomState,
    np.random.BitGenerator,
    Iterator,
)


class _Fresh:
    """A part of a key equal to nothing but itself: a key holding one is never shared."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<fresh>"


class _Identity:
    """A part of a key that compares by the identity of ``obj`` and keeps ``obj`` alive (so its
    ``id`` cannot be reused by another object while the key lives)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __eq__(self, other) -> bool:
        return isinstance(other, _Identity) and self.obj is other.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"<identity of {type(self.obj).__name__} at {id(self.obj):#x}>"


_ABSENT = ("absent",)


@functools.cache
def _trusted_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(os.path.dirname(os.__file__))  # the standard library, wherever the venv points
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # fnnjax itself
    return tuple(os.path.realpath(r) + os.sep for r in roots)


@functools.lru_cache(maxsize=4096)
def _is_installed_file(filename: str) -> bool:
    """True for a file of the standard library, site-packages or fnnjax (trusted, see above)."""
    if not filename or filename.startswith("<"):  # <stdin>, <string>, notebooks: your code
        return False
    return os.path.realpath(filename).startswith(_trusted_roots())


@functools.lru_cache(maxsize=4096)
def _is_installed_module(name: str | None) -> bool:
    if name is None or name == "__main__":
        return False
    module = sys.modules.get(name)
    if module is None:
        return False
    filename = getattr(module, "__file__", None)
    if filename is None:  # built into the interpreter
        return name in sys.builtin_module_names or name == "builtins"
    return _is_installed_file(filename)


@functools.lru_cache(maxsize=4096)
def _names_read(code: types.CodeType) -> frozenset[str]:
    """Every global or attribute name ``code`` and its nested code objects refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_read(const)
    return frozenset(names)


class _Keyer:
    """One key computation: a memo of the objects keyed so far, so that shared parts are keyed once
    and cycles (a function that calls itself through a global) end in a back-reference."""

    def __init__(self):
        self.memo: dict[tuple[int, frozenset[str] | None], int] = {}
        self.alive: list[Any] = []  # keeps every memoised object alive: no id reused mid-way

    def key(self, obj: Any, depth: int = 0, names: frozenset[str] | None = None) -> Hashable:
        if depth > _MAX_DEPTH:
            return _Fresh()
        kind = type(obj)
        if obj is None or obj is Ellipsis or obj is NotImplemented:
            return ("const", repr(obj))
        if kind in (bool, int, str, bytes):
            return (kind.__name__, obj)
        if kind is float:
            return ("float", obj.hex())  # tells 0.0 from -0.0
        if kind is complex:
            return ("complex", obj.real.hex(), obj.imag.hex())
        if isinstance(obj, enum.Enum):
            return ("enum", _Identity(obj))
        if isinstance(obj, np.generic) and obj.dtype.kind != "O":
            return ("numpy", obj.dtype.str, obj.tobytes())
        if isinstance(obj, np.dtype):
            return ("dtype", obj)
        if isinstance(obj, types.CodeType):
            return ("code", obj)
        if isinstance(obj, jax.core.Tracer) or isinstance(obj, _STATEFUL_TYPES):
            return _Fresh()
        memo_names = names if isinstance(obj, (types.ModuleType, type)) or not _is_plain(obj) else None
        slot = (id(obj), memo_names)
        if slot in self.memo:
            return ("ref", self.memo[slot])
        self.memo[slot] = len(self.memo)
        self.alive.append(obj)
        return self._compound(obj, depth + 1, names)

    def _compound(self, obj: Any, depth: int, names: frozenset[str] | None) -> Hashable:
        key = self.key
        if isinstance(obj, jax.Array):  # immutable: contents when small, else identity
            if obj.size <= _MAX_JAX_ARRAY_SIZE:
                try:
                    host = np.asarray(obj)
                except Exception:  # a PRNG key array, a deleted buffer: identity is still sound
                    return ("jax-array", _Identity(obj))
                return ("jax-array", host.dtype.str, host.shape, host.tobytes())
            return ("jax-array", _Identity(obj))
        if isinstance(obj, np.ndarray):  # mutable: a snapshot of the contents
            if obj.dtype.kind == "O":
                return ("ndarray", _Identity(type(obj)), obj.shape, key(obj.tolist(), depth, names))
            data = np.ascontiguousarray(obj).tobytes()
            if len(data) > _MAX_ARRAY_BYTES:
                data = hashlib.sha256(data).digest()
            return ("ndarray", _Identity(type(obj)), obj.dtype.str, obj.shape, data)
        if isinstance(obj, types.FunctionType):
            return self._function(obj, depth)
        if isinstance(obj, types.MethodType):
            return ("method", key(obj.__func__, depth), key(obj.__self__, depth, names))
        if isinstance(obj, functools.partial):
            return (
                "partial",
                _Identity(type(obj)),
                key(obj.func, depth, names),
                key(obj.args, depth, names),
                key(obj.keywords, depth, names),
                key(getattr(obj, "__dict__", {}), depth, names),
            )
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            bound = getattr(obj, "__self__", None)
            if bound is None or isinstance(bound, types.ModuleType):
                return ("builtin", _Identity(obj))
            return ("builtin-method", obj.__name__, key(bound, depth, names))
        if isinstance(obj, (staticmethod, classmethod)):
            return (type(obj).__name__, key(obj.__func__, depth, names))
        if isinstance(obj, property):
            return ("property", key(obj.fget, depth), key(obj.fset, depth), key(obj.fdel, depth))
        if isinstance(obj, types.ModuleType):
            return ("module", _Identity(obj), self._attributes(obj, depth, names))
        if isinstance(obj, type):
            if _is_installed_module(getattr(obj, "__module__", None)):
                return ("class", _Identity(obj))
            return ("class", _Identity(obj), self._attributes(obj, depth, names))
        if type(obj) in (tuple, list):
            return (type(obj).__name__, tuple(key(v, depth, names) for v in obj))
        if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):  # a NamedTuple: its type and fields
            return ("namedtuple", _Identity(type(obj)), tuple(key(v, depth, names) for v in obj))
        if isinstance(obj, dict) and type(obj) in (dict, collections.OrderedDict, collections.defaultdict):
            items = tuple((key(k, depth, names), key(v, depth, names)) for k, v in obj.items())
            factory = key(getattr(obj, "default_factory", None), depth, names)
            return (type(obj).__name__, items, factory)
        if type(obj) in (set, frozenset):
            return (type(obj).__name__, frozenset(key(v, depth, names) for v in obj))
        return self._object(obj, depth, names)

    def _function(self, fn: types.FunctionType, depth: int) -> Hashable:
        code = fn.__code__
        names = _names_read(code)
        installed = _is_installed_file(code.co_filename)
        if not installed and names & _DYNAMIC_LOOKUPS:
            return _Fresh()  # it may read any global: nothing short of a new program is sound
        key = self.key
        scope, builtin_scope = fn.__globals__, getattr(fn, "__builtins__", None) or vars(builtins)
        read = []
        for name in sorted(names):
            value = scope.get(name, _ABSENT)
            if value is _ABSENT:
                value = builtin_scope.get(name, _ABSENT)
            if value is _ABSENT:  # an attribute name (keyed where the attribute is read) or unbound
                read.append((name, _ABSENT))
            elif installed:  # trusted: its module's names stay what they are
                read.append((name, _Identity(value)))
            else:
                read.append((name, key(value, depth, names)))
        return (
            "function",
            fn.__module__,
            fn.__qualname__,
            code,
            key(fn.__defaults__, depth, names),
            key(fn.__kwdefaults__, depth, names),
            tuple(self._cell(c, depth, names) for c in fn.__closure__ or ()),
            tuple(read),
            () if installed else key(fn.__dict__, depth, names),
        )

    def _cell(self, cell, depth: int, names: frozenset[str]) -> Hashable:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a closure variable not assigned yet)
            return ("empty-cell",)
        return self.key(contents, depth, names)

    def _attributes(self, obj: Any, depth: int, names: frozenset[str] | None) -> Hashable:
        """The values of the attributes named in ``names`` that ``obj`` (a module or class) has."""
        if not names:
            return ()
        out = []
        for name in sorted(names):
            try:
                value = getattr(obj, name)
            except Exception:  # no such attribute (or one that fails): nothing is read there
                continue
            out.append((name, self.key(value, depth, names)))
        return tuple(out)

    def _object(self, obj: Any, depth: int, names: frozenset[str] | None) -> Hashable:
        """Anything else: identity (the object kept alive) and a snapshot of what it holds."""
        key = self.key
        parts: list[Hashable] = ["object", _Identity(obj), key(type(obj), depth, names)]
        if isinstance(obj, Mapping):
            parts.append(tuple((key(k, depth, names), key(v, depth, names)) for k, v in obj.items()))
        elif isinstance(obj, (Sequence, Set)) and not isinstance(obj, (str, bytes)):
            parts.append(tuple(key(v, depth, names) for v in obj))
        elif isinstance(obj, (bytearray, memoryview)):
            parts.append(bytes(obj))
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            parts.append(key(dict(state), depth, names))
        for klass in type(obj).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if slot not in ("__dict__", "__weakref__"):
                    parts.append((slot, key(getattr(obj, slot, _ABSENT), depth, names)))
        return tuple(parts)


def _is_plain(obj: Any) -> bool:
    """Values whose key does not depend on the names read where they are reached."""
    return isinstance(obj, (tuple, list, dict, set, frozenset, np.ndarray, jax.Array, types.FunctionType))


def structural_key(obj: Any, depth: int = 0) -> Hashable:
    """A hashable key equal for two values that compute the same (see the module docstring).

    Args:
      obj: any value (an optax optimizer, a function, a pytree of numbers ...).
      depth: the nesting level to start at (keys deeper than 64 levels are fresh).

    Returns:
      A hashable key; two keys compare equal only when the values are built from the same code
      reading equal values. The key keeps alive every object it compares by identity.

    Example:
      >>> import optax
      >>> from fnnjax._static_key import structural_key
      >>> structural_key(optax.sgd(0.1)) == structural_key(optax.sgd(0.1))
      True
      >>> structural_key(optax.sgd(0.1)) == structural_key(optax.sgd(0.2))
      False
      >>> lr = 0.1
      >>> before = structural_key(optax.sgd(lambda step: lr))
      >>> lr = 0.2  # the schedule reads the global lr: another computation
      >>> structural_key(optax.sgd(lambda step: lr)) == before
      False
    """
    return _Keyer().key(obj, depth)


class ByStructure:
    """Wraps ``value`` so that equality and hashing follow :func:`structural_key`.

    The key is a snapshot made when the wrapper is built: wrap the value just before the program
    that reads it is traced (as :func:`fnnjax.fit` does), so that the program and the key see the
    same values.

    Attributes:
      value: the wrapped object (used as is by the program that receives it).

    Example:
      >>> import optax
      >>> from fnnjax._static_key import ByStructure
      >>> ByStructure(optax.adam(1e-3)) == ByStructure(optax.adam(1e-3))
      True
      >>> ByStructure(optax.adam(1e-3)) == ByStructure(optax.adam(2e-3))
      False
    """

    __slots__ = ("value", "_key", "_hash")

    def __init__(self, value: Any):
        self.value = value
        self._key = structural_key(value)
        self._hash = hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, ByStructure) and self._hash == other._hash and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ByStructure({self.value!r})"
