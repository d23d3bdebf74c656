"""IDX files (the MNIST family's raw format): integrity checks before torchvision reads them.

torchvision's reader asserts on a short file and trusts the header otherwise; here a
truncated, padded or corrupt file is a DataError naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import zlib
from pathlib import Path

from .format import DataError

_DTYPE_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def header(path: Path) -> tuple[int, list[int], int]:
    """(dtype code, dims, expected file size) from an uncompressed IDX file."""
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPE_SIZES:
            raise DataError(f"{path}: not an IDX file (bad magic {head.hex() or 'empty'})")
        nd = head[3]
        raw_dims = f.read(4 * nd)
        if len(raw_dims) < 4 * nd:
            raise DataError(f"{path}: truncated IDX header")
    dims = list(struct.unpack(f">{nd}I", raw_dims))
    size = 4 + 4 * nd + _DTYPE_SIZES[head[2]] * _prod(dims)
    return head[2], dims, size


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def check(path: Path, ndim: int, item_shape: tuple[int, ...] | None = None) -> int:
    """Validate one IDX file; return its item count."""
    if not path.is_file():
        raise DataError(f"{path}: missing")
    code, dims, size = header(path)
    if code != 0x08:
        raise DataError(f"{path}: expected unsigned-byte IDX data, got type code 0x{code:02x}")
    if len(dims) != ndim:
        raise DataError(f"{path}: expected {ndim} dimensions, header says {dims}")
    if item_shape is not None and tuple(dims[1:]) != tuple(item_shape):
        raise DataError(f"{path}: expected items of shape {item_shape}, header says {dims[1:]}")
    actual = path.stat().st_size
    if actual != size:
        what = "truncated" if actual < size else "has trailing bytes"
        raise DataError(f"{path}: {what}: header declares {dims} ({size} bytes) but the file has {actual} bytes")
    return dims[0]


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gunzip_if_needed(raw: Path) -> None:
    """Pre-staged `X.gz` without `X` (torchvision's raw layout): decompress it, atomically."""
    gz = raw.with_name(raw.name + ".gz")
    if raw.exists() or not gz.exists():
        return
    tmp = raw.with_name(f".{raw.name}.tmp")
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{gz}: cannot decompress ({type(e).__name__}: {e}); the file is truncated or corrupt: replace it"
        ) from e
    finally:
        tmp.unlink(missing_ok=True)
