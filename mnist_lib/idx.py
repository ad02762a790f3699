"""The IDX file format (MNIST's): its header, its data, and reading a file no further than it declares.

Anything wrong with a file ends in one :class:`MNISTDataError` that names the file, what
was expected, what was found and what to do. :mod:`mnist_lib.data` finds the files and
checks them against MNIST's checksums.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# IDX type codes (third byte of the magic number) and their big-endian NumPy types.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FIX_SHIPPED = (
    "restore the original files (in a checkout: git checkout -- data/mnist; elsewhere: move damaged ones "
    "away and call load_mnist(download=True)) or pass root= a folder holding the four original MNIST files"
)
MAX_DIMS = 32  # NumPy's limit (NumPy 1.x; 2.x allows 64); MNIST's files have 1 or 3
GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1 << 20  # bytes decompressed at a time: memory stays bounded whatever the file claims


class MNISTDataError(ValueError):
    """The MNIST files are missing, corrupt or not what they claim to be."""

    def __init__(self, file: str | os.PathLike, expected: str, found: str, fix: str = FIX_SHIPPED):
        self.file, self.expected, self.found, self.fix = str(file), expected, found, fix
        super().__init__(f"{file}: expected {expected}, found {found}. Fix: {fix}.")


def unreadable(path: Path, error: OSError) -> MNISTDataError:
    """One MNISTDataError for a file or folder the system will not let us read."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return MNISTDataError(path, "the file to exist", "no such file")
    if isinstance(error, PermissionError):
        fix = (f"give your user read access to it and to its folder (e.g. chmod -R u+rX {path.parent}), "
               "or copy the files to a folder you can read and pass that folder")
        return MNISTDataError(path, "permission to read it", "permission denied", fix)
    return MNISTDataError(path, "a readable file", f"{type(error).__name__}: {error}")


def parse_idx_header(raw: bytes, name: str = "<bytes>") -> tuple[np.dtype, tuple[int, ...], int]:
    """Check the IDX header at the start of ``raw``; return (data type, dimensions, header length).

    The header is two zero bytes, a type code, the number of dimensions, then each
    dimension as a big-endian uint32.
    """
    if len(raw) < 4:
        raise MNISTDataError(name, "a 4-byte IDX magic number", f"a file of {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise MNISTDataError(
            name,
            "an IDX magic number 00 00 <type> <ndim> with type one of "
            + ", ".join(f"{t:#04x}" for t in IDX_TYPES),
            f"{raw[:4].hex(' ')}",
        )
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    if ndim > MAX_DIMS:
        raise MNISTDataError(name, f"at most {MAX_DIMS} dimensions (the 4th byte of the magic number)", f"{ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MNISTDataError(name, f"a {header}-byte header for {ndim} dimensions", f"{len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if math.prod(d for d in dims if d) * dtype.itemsize > sys.maxsize:  # NumPy's limit, even for 0 elements
        raise MNISTDataError(name, "dimensions an array can have", f"{'x'.join(map(str, dims))}")
    return dtype, dims, header


def _size_error(name: str, dims: tuple[int, ...], size: int, found: str) -> MNISTDataError:
    return MNISTDataError(name, f"{size} data bytes for dimensions {'x'.join(map(str, dims))}", found)


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of one uncompressed IDX file into a NumPy array.

    After the header (:func:`parse_idx_header`), the data follow in row-major order.
    """
    dtype, dims, header = parse_idx_header(raw, name)
    size = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on absurd headers
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "trailing bytes"
        raise _size_error(name, dims, size, f"{len(raw) - header} ({state})")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _read_declared(stream: BinaryIO, name: str) -> bytes:
    """Read one IDX file from ``stream``, no further than one byte past the size its header declares.

    So a damaged or hostile file (a gzip bomb: megabytes that inflate to gigabytes) is
    refused after reading what it claims to hold, not after filling the memory.
    """
    raw = stream.read(4)
    if len(raw) == 4 and raw[3] <= MAX_DIMS:
        raw += stream.read(4 * raw[3])
    dtype, dims, _ = parse_idx_header(raw, name)
    size = math.prod(dims) * dtype.itemsize
    chunks, left = [raw], size + 1  # the one extra byte tells a file with trailing bytes
    while left > 0 and (chunk := stream.read(min(left, READ_CHUNK))):
        chunks.append(chunk)
        left -= len(chunk)
    if left <= 0:
        raise _size_error(name, dims, size, f"more than {size} (trailing bytes; reading stopped there)")
    return b"".join(chunks)


def read_idx_bytes(path: Path) -> bytes:
    """The uncompressed bytes of one IDX file (``name`` or ``name.gz``)."""
    try:
        with open(path, "rb") as file:
            if path.suffix != ".gz":
                return _read_declared(file, str(path))
            start = file.read(4)
            if not start.startswith(GZIP_MAGIC):
                raise MNISTDataError(
                    path,
                    "gzip data (the name ends in .gz), which starts with the bytes 1f 8b",
                    f"bytes starting {start.hex(' ')}" if start else "an empty file",
                    "if it is an uncompressed IDX file, remove .gz from its name; otherwise " + FIX_SHIPPED,
                )
            file.seek(0)
            with gzip.GzipFile(fileobj=file) as stream:
                return _read_declared(stream, str(path))
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        found = f"a truncated or damaged one ({type(e).__name__}: {e})"
        raise MNISTDataError(path, "a complete gzip file", found) from None
    except OSError as e:
        raise unreadable(path, e) from None
