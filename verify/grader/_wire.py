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
import math
import re
import struct
from collections import namedtuple
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FrameReader", "Opaque", "WireError", "decode", "encode", "frame", "to_numpy", "too_coarse"]

MAX_HEADER = 16 * 2**20
"""The largest JSON header a frame may have (bytes)."""

MAX_ARRAY_BYTES = 256 * 2**20
"""The most array bytes one frame may carry."""

MAX_NODES = 100_000
"""The most values one frame may encode (a submission returning a huge list is cut off)."""

_NUMERIC_KINDS = "biuf"
_SCALARS: dict[str, type | tuple[type, ...]] = {"b": bool, "i": int, "f": (float, int), "s": str}


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
        if arr is not None:
            kind = f"{arr.dtype} array"
        elif "float16" in str(getattr(v, "dtype", "")):  # a bfloat16 tensor NumPy cannot hold
            kind = f"{str(v.dtype).rsplit('.', 1)[-1]} array"
        else:
            kind = type(v).__name__
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
      WireError: a malformed tree (whatever is wrong with it: a missing field, a wrong type,
        nesting deeper than :data:`MAX_DEPTH`).
    """
    types: dict[tuple, type] = {}
    depth = [0]

    def dec(node):
        depth[0] += 1
        try:
            return dec_node(node)
        finally:
            depth[0] -= 1

    def dec_node(node):
        if depth[0] > MAX_DEPTH:
            raise WireError(f"a value nested more than {MAX_DEPTH} deep")
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise WireError(f"malformed value {str(node)[:80]!r}")
        tag = node[0]
        if tag == "n":
            return None
        if tag in _SCALARS:
            value = node[1]
            if not isinstance(value, _SCALARS[tag]) or (tag != "b" and isinstance(value, bool)):
                raise WireError(f"malformed {tag!r} value {str(value)[:40]!r}")
            return float(value) if tag == "f" else value
        if tag == "a":
            if not isinstance(node[1], int) or isinstance(node[1], bool) or not 0 <= node[1] < len(arrays):
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
        raise WireError(f"unknown tag {tag[:20]!r}")

    try:
        return dec(tree)
    except WireError:
        raise
    except Exception as err:  # IndexError, TypeError, ValueError, RecursionError... of a forged tree
        raise WireError(f"malformed value ({type(err).__name__}: {str(err)[:80]})") from None


def frame(message: dict, arrays: Sequence[np.ndarray] = ()) -> bytes:
    """One frame: the JSON header (the message and the arrays' dtypes and shapes), then the array bytes."""
    specs = [{"dtype": a.dtype.str, "shape": list(a.shape), "nbytes": int(a.nbytes)} for a in arrays]
    header = json.dumps({"message": message, "arrays": specs}).encode()
    return b"".join([struct.pack(">Q", len(header)), header, *(np.ascontiguousarray(a).tobytes() for a in arrays)])


def too_coarse(value) -> str | None:
    """The dtype of the coarsest float array in a decoded value when it is coarser than float32, else None.

    float16 and bfloat16 (which travels as an :class:`Opaque` ``bfloat16 array``) are too coarse to
    judge a gradient of float64 inputs; float32 is the loosest precision the grader accepts.

    Example:
      >>> import numpy as np
      >>> from fnnjax.verify.grader._wire import too_coarse
      >>> too_coarse({"W": np.zeros(2, np.float16)}), too_coarse([np.zeros(2, np.float32)])
      ('float16', None)
    """
    found: list[str] = []

    def walk(v, depth):
        if depth > MAX_DEPTH:
            return
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype.itemsize < 4:
            found.append(str(v.dtype))
        elif isinstance(v, Opaque) and v.type.endswith("float16 array"):
            found.append(v.type.removesuffix(" array"))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x, depth + 1)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, depth + 1)

    walk(value, 0)
    return found[0] if found else None


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

        Whatever the bytes are (a frame forged by the submission, a truncated one, a header nested
        200,000 deep, an array spec with a negative or astronomical shape), this raises
        :class:`WireError` and nothing else.

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
        message, dtypes, shapes = _parse_header(bytes(buf[8 : 8 + size]))
        sizes = [math.prod(s) * d.itemsize for d, s in zip(dtypes, shapes)]
        if sum(sizes) > MAX_ARRAY_BYTES:
            raise WireError(f"a frame with {sum(sizes)} bytes of arrays (at most {MAX_ARRAY_BYTES})")
        end = 8 + size + sum(sizes)
        if len(buf) < end:
            return None
        arrays, offset = [], 8 + size
        try:
            for d, s, n in zip(dtypes, shapes, sizes):
                arrays.append(np.frombuffer(bytes(buf[offset : offset + n]), dtype=d).reshape(s).copy())
                offset += n
        except Exception as err:  # pragma: no cover - sizes were checked; said in one line all the same
            raise WireError(f"a frame whose arrays cannot be read ({type(err).__name__})") from None
        del buf[:end]
        return message, arrays


MAX_DEPTH = 200
"""The deepest nesting a frame header may have (checked before JSON decodes it)."""


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(text: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, outside strings (no recursion, at C speed)."""
    if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
        return 0
    codes = np.frombuffer(_STRING.sub(b"", text), dtype=np.uint8)
    steps = (codes == ord("[")).astype(np.int64) + (codes == ord("{")) - (codes == ord("]")) - (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


_MAX_ARRAYS = 10_000
_MAX_DIMS = 32


def _parse_header(raw: bytes) -> tuple[dict, list[np.dtype], list[tuple[int, ...]]]:
    """The message, dtypes and shapes of a frame header; every malformed header raises :class:`WireError`."""
    if _depth(raw) > MAX_DEPTH:
        raise WireError(f"a frame header nested more than {MAX_DEPTH} deep")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise WireError(f"a frame header that is not JSON ({type(err).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("message"), dict):
        raise WireError("a frame header without a message")
    specs = header.get("arrays")
    if not isinstance(specs, list) or len(specs) > _MAX_ARRAYS:
        raise WireError("a frame header without a list of arrays")
    dtypes, shapes = [], []
    for spec in specs:
        if not (isinstance(spec, dict) and isinstance(spec.get("dtype"), str) and isinstance(spec.get("shape"), list)):
            raise WireError(f"a malformed array spec {str(spec)[:80]!r}")
        try:
            dtype = np.dtype(spec["dtype"])
        except Exception:
            raise WireError(f"an unknown array dtype {spec['dtype'][:40]!r}") from None
        if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.itemsize == 0:
            raise WireError(f"a non-numeric array dtype {spec['dtype'][:40]!r}")
        shape = spec["shape"]
        if len(shape) > _MAX_DIMS or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise WireError(f"a malformed array shape {str(shape)[:80]}")
        if math.prod(shape) * dtype.itemsize > MAX_ARRAY_BYTES:
            raise WireError(f"an array of shape {str(shape)[:80]} (more than {MAX_ARRAY_BYTES} bytes)")
        dtypes.append(dtype)
        shapes.append(tuple(shape))
    return header["message"], dtypes, shapes
