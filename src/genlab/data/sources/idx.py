"""The IDX format of MNIST-like data (gzipped or not), read with numpy alone.

Layout: two zero bytes, a dtype code byte, a byte giving the number of dimensions, then one
big-endian uint32 per dimension, then the values, big-endian, row-major.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ...errors import UserError

# IDX type codes -> big-endian numpy dtypes
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array in one IDX file, in native byte order; UserError naming the file if it is not sound."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise UserError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated .gz
        raise UserError(f"cannot read IDX file {path}: {e.__class__.__name__}: {e}") from None
    return parse_idx(raw, path)


def parse_idx(raw: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in DTYPES:
        raise UserError(f"{name} is not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"IDX file {name} is truncated: its header lists {ndim} dimensions but ends early")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise UserError(f"IDX file {name} is {what}: {len(raw)} bytes for shape {dims}, expected {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in native order
