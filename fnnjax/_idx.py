"""The IDX file format of (Fashion-)MNIST: a reader that validates everything and a writer.

An IDX file is a big-endian binary array: a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``,
then ``ndim`` 4-byte unsigned dimension sizes, then the data in C order. The dtype codes are
0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Files may be gzip
compressed (detected from the content, not the name).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from fnnjax.errors import DataError

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX dtype code -> the (big-endian) numpy dtype of the stored elements."""

_GZIP_MAGIC = b"\x1f\x8b"


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {path} does not exist") from None
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is a corrupt or truncated gzip file ({err}); delete it and fetch it again") from None


def _parse(data: bytes, path: Path) -> np.ndarray:
    if len(data) < 4:
        raise DataError(
            f"{path} has {len(data)} bytes, fewer than the 4-byte IDX magic number; the file is "
            "truncated or not an IDX file"
        )
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise DataError(
            f"{path} starts with magic number 0x{data[:4].hex()} but an IDX file starts with "
            f"0x0000 then a dtype code in {{{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}}}; "
            "the file is corrupt or not an IDX file"
        )
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(
            f"{path} declares {ndim} dimensions but has only {len(data)} bytes (a header needs "
            f"{header}); the file is truncated or corrupt"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path} declares shape {shape} of {dtype.name} ({expected} data bytes) but holds "
            f"{len(data) - header}; the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip compressed) into a numpy array.

    Args:
      path: the file; gzip compression is detected from its first bytes.

    Returns:
      A native-endian array with the file's shape and dtype (e.g. ``(60000, 28, 28)`` uint8 for
      Fashion-MNIST's ``train-images-idx3-ubyte.gz``, ``(60000,)`` uint8 for its labels).

    Raises:
      FileNotFoundError: when the file does not exist.
      DataError (a ValueError): for a corrupt gzip stream, a wrong magic number or dtype code, or a size that
        does not match the declared dimensions (truncated or padded file).

    Example:
      >>> import numpy as np, tempfile, os
      >>> from fnnjax import data
      >>> p = os.path.join(tempfile.mkdtemp(), "x-idx2-ubyte.gz")
      >>> _ = data.write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
      >>> data.read_idx(p)
      array([[0, 1, 2],
             [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    return _parse(_raw_bytes(path), path)


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as an IDX file, gzip compressed when ``path`` ends in ``.gz``.

    Args:
      path: the destination (its folder must exist).
      array: an array of dtype uint8, int8, int16, int32, float32 or float64, at least 1-D.

    Returns:
      The path written.

    Raises:
      ValueError: for a 0-d array, a dimension that does not fit 32 bits, or a dtype IDX cannot
        store.

    Example:
      >>> import numpy as np, tempfile, os
      >>> from fnnjax import data
      >>> p = data.write_idx(os.path.join(tempfile.mkdtemp(), "y-idx1-ubyte"), np.array([3, 1], np.uint8))
      >>> data.read_idx(p).tolist()
      [3, 1]
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {', '.join(dt.name for dt in codes)}")
    if array.ndim == 0 or array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX stores arrays of 1 to 255 dimensions each < 2**32, got shape {array.shape}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
