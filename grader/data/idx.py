"""Read and write IDX files, the format MNIST is distributed in (raw or gzip-compressed).

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the data in big-endian C order.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_TYPE_CODES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES_BY_KIND = {(dt.kind, dt.itemsize): code for code, dt in _TYPE_CODES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file is missing, truncated, corrupt or not IDX at all; the message names the file."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one IDX file (raw, or gzip by content) into a native-endian array."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == _GZIP_MAGIC
    except FileNotFoundError:
        raise IDXError(f"{path}: file not found") from None
    except OSError as exc:
        raise IDXError(f"{path}: cannot be read ({exc.strerror})") from None
    opener = gzip.open if is_gzip else open
    try:
        with opener(path, "rb") as stream:
            header = stream.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in _TYPE_CODES:
                raise IDXError(f"{path}: not an IDX file (bad magic number)")
            dtype, ndim = _TYPE_CODES[header[2]], header[3]
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise IDXError(f"{path}: truncated in its header")
            shape = struct.unpack(f">{ndim}I", dims_raw)
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            # One byte past the promised size detects trailing garbage without ever
            # decompressing more than the header says the file holds (no gzip bombs).
            body = stream.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXError(f"{path}: corrupt gzip data ({exc})") from None
    if len(body) < expected:
        raise IDXError(f"{path}: truncated: header promises {expected} data bytes, found {len(body)}")
    if len(body) > expected:
        raise IDXError(f"{path}: trailing bytes after the {expected} data bytes the header promises")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in ``.gz``).

    The file appears atomically: readers never see a half-written one.
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = _CODES_BY_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.ndim > 255:
        raise IDXError(f"{path}: IDX cannot hold a {array.ndim}-d {array.dtype} array")
    payload = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload += array.astype(_TYPE_CODES[code], copy=False).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
