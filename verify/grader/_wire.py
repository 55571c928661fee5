"""Messages between the grader and the submission's worker process: JSON plus raw arrays, no pickle.

A submission runs in its own process (see :mod:`fnnjax.verify.grader._isolation`); what it returns travels back
as a *frame*: an 8-byte length, a JSON header, then the raw bytes of every array. Nothing is
unpickled, so a submission that writes to the channel can at worst send a malformed frame (the
case then fails), never run code in the grader. Values are encoded as tagged JSON lists:

- ``["n"]`` None, ``["b", v]`` bool, ``["i", v]`` int, ``["f", v]`` float, ``["s", v]`` str;
- ``["a", k]`` the k-th array of the frame (NumPy, JAX or PyTorch arrays, converted by duck
  typing: ``.detach().cpu().numpy()`` for a tensor, ``np.asarray`` for anything with
  ``__array__``; the dtype is kept, so float32 results are judged as float32);
- ``["l", items]`` list, ``["t", items]`` tuple, ``["d", [[key, value], ...]]`` dict,
  ``["nt", name, fields, items]`` named tuple;
- ``["o", type name, repr]`` anything else (reported, never executed).

This module imports only the standard library and NumPy: the worker process loads it without JAX.
"""

from __future__ import annotations

import json
import struct
from collections import namedtuple
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FrameReader", "Opaque", "WireError", "decode", "encode", "frame", "to_numpy"]

MAX_HEADER = 16 * 2**20
"""The largest JSON header a frame may have (bytes)."""

MAX_ARRAY_BYTES = 256 * 2**20
"""The most array bytes one frame may carry."""

MAX_NODES = 100_000
"""The most values one frame may encode (a submission returning a huge list is cut off)."""

_NUMERIC_KINDS = "biuf"


class WireError(ValueError):
    """A frame that cannot be encoded or decoded (too large, malformed, an unsupported dtype)."""


class Opaque(NamedTuple):
    """A returned value that is not data (a function, a generator, an object array...).

    Attributes:
      type: its type's name, e.g. ``generator``.
      text: a short ``repr``.
    """

    type: str
    text: str


def to_numpy(x) -> np.ndarray | None:
    """``x`` as a NumPy array when it is one (NumPy, JAX or PyTorch on the CPU), else None.

    Duck typing, so no array library is imported: a tensor is recognised by ``detach``/``cpu``/
    ``numpy``, anything else with ``__array__`` goes through ``np.asarray``.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if all(hasattr(x, name) for name in ("detach", "cpu", "numpy")):
        return np.asarray(x.detach().cpu().numpy())
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes, dict, list, tuple)):
        return np.asarray(x)
    return None


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def encode(value) -> tuple[Any, list[np.ndarray]]:
    """``(tree, arrays)``: a value as tagged JSON and the arrays it holds.

    Raises:
      WireError: more than :data:`MAX_NODES` values, or nesting deeper than 100.
    """
    arrays: list[np.ndarray] = []
    count = [0]

    def enc(v, depth):
        count[0] += 1
        if count[0] > MAX_NODES or depth > 100:
            raise WireError(
                f"the returned value is too large to check (more than {MAX_NODES} items or nested more than 100 deep)"
            )
        if v is None:
            return ["n"]
        if isinstance(v, bool):
            return ["b", v]
        if isinstance(v, int):
            return ["i", v] if abs(v) < 2**63 else ["f", float(v)]
        if isinstance(v, float):
            return ["f", v]
        if isinstance(v, str):
            return ["s", v[:10_000]]
        if _is_namedtuple(v):
            return ["nt", type(v).__name__, list(type(v)._fields), [enc(x, depth + 1) for x in v]]
        if isinstance(v, (list, tuple)):
            return ["l" if isinstance(v, list) else "t", [enc(x, depth + 1) for x in v]]
        if isinstance(v, dict):
            return ["d", [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]]
        try:
            arr = to_numpy(v)
        except Exception:  # a tensor on a GPU, a tensor that requires grad in an odd state...
            arr = None
        if arr is not None and arr.dtype.kind in _NUMERIC_KINDS and not arr.dtype.hasobject:
            arrays.append(np.ascontiguousarray(arr))
            return ["a", len(arrays) - 1]
        kind = f"{arr.dtype} array" if arr is not None else type(v).__name__
        try:
            text = repr(v)[:200]
        except Exception:
            text = f"<{kind}>"
        return ["o", kind, text]

    return enc(value, 0), arrays


def decode(tree, arrays: Sequence[np.ndarray]) -> Any:
    """The inverse of :func:`encode`: dicts, lists, tuples, named tuples, arrays and :class:`Opaque` s.

    Named tuples come back as ``collections.namedtuple`` types of the same name and fields.

    Raises:
      WireError: a malformed tree.
    """
    types: dict[tuple, type] = {}

    def dec(node):
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise WireError(f"malformed value {str(node)[:80]!r}")
        tag = node[0]
        if tag == "n":
            return None
        if tag in ("b", "i", "f", "s"):
            return node[1]
        if tag == "a":
            if not isinstance(node[1], int) or not 0 <= node[1] < len(arrays):
                raise WireError(f"array reference {node[1]!r} out of range")
            return arrays[node[1]]
        if tag == "l":
            return [dec(x) for x in node[1]]
        if tag == "t":
            return tuple(dec(x) for x in node[1])
        if tag == "d":
            out = {}
            for key, value in node[1]:
                k = dec(key)
                out[k if isinstance(k, (str, int, float, bool)) or k is None else repr(k)] = dec(value)
            return out
        if tag == "nt":
            name, fields, items = node[1], tuple(node[2]), node[3]
            if not (
                isinstance(name, str)
                and name.isidentifier()
                and all(isinstance(f, str) and f.isidentifier() for f in fields)
                and len(fields) == len(items)
            ):
                raise WireError(f"malformed named tuple {name!r}")
            cls = types.setdefault((name, fields), namedtuple(name, fields, rename=True))
            return cls(*(dec(x) for x in items))
        if tag == "o":
            return Opaque(str(node[1]), str(node[2]))
        raise WireError(f"unknown tag {tag!r}")

    return dec(tree)


def frame(message: dict, arrays: Sequence[np.ndarray] = ()) -> bytes:
    """One frame: the JSON header (the message and the arrays' dtypes and shapes), then the array bytes."""
    specs = [{"dtype": a.dtype.str, "shape": list(a.shape), "nbytes": int(a.nbytes)} for a in arrays]
    header = json.dumps({"message": message, "arrays": specs}).encode()
    return b"".join([struct.pack(">Q", len(header)), header, *(np.ascontiguousarray(a).tobytes() for a in arrays)])


class FrameReader:
    """Reassembles frames from bytes as they arrive (a pipe read in pieces).

    Example:
      >>> import numpy as np
      >>> from fnnjax.verify.grader._wire import FrameReader, frame
      >>> reader = FrameReader()
      >>> reader.feed(frame({"ok": True}, [np.arange(3.0)]))
      >>> message, arrays = reader.next()
      >>> message, arrays[0].tolist()
      ({'ok': True}, [0.0, 1.0, 2.0])
    """

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        """Append bytes read from the channel."""
        self._buffer += data

    def next(self) -> tuple[dict, list[np.ndarray]] | None:
        """The next complete frame as ``(message, arrays)``, or None while it is incomplete.

        Raises:
          WireError: a malformed or oversized frame.
        """
        buf = self._buffer
        if len(buf) < 8:
            return None
        (size,) = struct.unpack(">Q", bytes(buf[:8]))
        if size > MAX_HEADER:
            raise WireError(f"a frame header of {size} bytes (at most {MAX_HEADER})")
        if len(buf) < 8 + size:
            return None
        try:
            header = json.loads(bytes(buf[8 : 8 + size]))
            specs = header["arrays"]
            message = header["message"]
            dtypes = [np.dtype(s["dtype"]) for s in specs]
            shapes = [tuple(int(n) for n in s["shape"]) for s in specs]
        except (ValueError, KeyError, TypeError) as err:
            raise WireError(f"a malformed frame header ({err})") from None
        if not isinstance(message, dict) or any(d.kind not in _NUMERIC_KINDS or d.hasobject for d in dtypes):
            raise WireError("a frame with a malformed message or a non-numeric array")
        sizes = [int(np.prod(s, dtype=np.int64)) * d.itemsize for d, s in zip(dtypes, shapes)]
        if any(n < 0 for n in sizes) or sum(sizes) > MAX_ARRAY_BYTES:
            raise WireError(f"a frame with {sum(sizes)} bytes of arrays (at most {MAX_ARRAY_BYTES})")
        end = 8 + size + sum(sizes)
        if len(buf) < end:
            return None
        arrays, offset = [], 8 + size
        for d, s, n in zip(dtypes, shapes, sizes):
            arrays.append(np.frombuffer(bytes(buf[offset : offset + n]), dtype=d).reshape(s).copy())
            offset += n
        del buf[:end]
        return message, arrays
