"""Property-based tests (hypothesis) of the IDX reader: random and mutated bytes.

Whatever bytes it is given, the reader either returns exactly the array the header
describes or raises MNISTDataError that names the file; never another exception, never
a wrong array. The expected array is worked out here independently of the parser.
"""

from __future__ import annotations

import gzip
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import idx_bytes
from mnist_lib.data import MNISTDataError, parse_idx, read_idx_file

NAME = "fuzzed-idx-ubyte"
# Written out here, not taken from the library: type code -> big-endian dtype.
TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_array(raw: bytes) -> np.ndarray | None:
    """What a correct reader returns for ``raw``, or None where it must refuse the bytes."""
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in TYPES or raw[3] > 32:
        return None
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(TYPES[raw[2]])
    if math.prod(d for d in dims if d) * dtype.itemsize >= 2**63:  # no array can have this shape
        return None
    if len(raw) != 4 + 4 * ndim + math.prod(dims) * dtype.itemsize:
        return None
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=dtype).reshape(dims)


def check(raw: bytes) -> None:
    """The property: the right array, or MNISTDataError naming the file."""
    expected = expected_array(raw)
    try:
        out = parse_idx(raw, NAME)
    except MNISTDataError as e:
        assert expected is None, f"refused valid bytes: {e}"
        assert str(e).startswith(f"{NAME}: expected ") and "Fix: " in str(e)
        return
    assert expected is not None, "accepted invalid bytes"
    assert out.shape == expected.shape and out.dtype == expected.dtype.newbyteorder("=")
    assert out.dtype.isnative
    assert out.astype(expected.dtype).tobytes() == expected.tobytes()  # bit for bit, NaNs included


# Valid IDX files of small arrays of every IDX type, to mutate.
idx_arrays = st.sampled_from(["u1", "i1", "i2", "i4", "f4", "f8"]).flatmap(
    lambda dtype: arrays(np.dtype(dtype), st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple))
)


@st.composite
def mutated_idx(draw) -> bytes:
    raw = bytearray(idx_bytes(draw(idx_arrays)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "append"]))
        where = draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[where] = draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[where:]
        elif kind == "insert":
            raw[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and raw:
            del raw[where]
        elif kind == "append":
            raw += draw(st.binary(min_size=1, max_size=8))
    return bytes(raw)


# Headers that look like IDX (two zero bytes, a known type) over random dimensions and data.
plausible = st.builds(
    lambda code, dims, data: bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + data,
    st.sampled_from(list(TYPES)),
    st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), max_size=5),
    st.binary(max_size=64),
)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    check(raw)


@FUZZ
@given(mutated_idx())
def test_mutated_idx_files(raw):
    check(raw)


@FUZZ
@given(plausible)
def test_plausible_headers(raw):
    check(raw)


@FUZZ
@given(idx_arrays)
def test_valid_files_round_trip(array):
    out = parse_idx(idx_bytes(array), NAME)
    assert out.shape == array.shape and out.dtype == array.dtype
    assert out.tobytes() == array.tobytes()


@FUZZ
@given(mutated_idx(), st.data())
def test_mutated_gzip_files(raw, data):
    """Through the file reader: a damaged .gz is refused cleanly, never half-read."""
    blob = bytearray(gzip.compress(raw, mtime=0))
    for _ in range(data.draw(st.integers(0, 2))):
        if not blob:
            break
        where = data.draw(st.integers(0, len(blob) - 1))
        if data.draw(st.booleans()):
            blob[where] ^= 1 << data.draw(st.integers(0, 7))
        else:
            del blob[where:]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.gz"
        path.write_bytes(bytes(blob))
        try:
            unpacked = gzip.decompress(bytes(blob))
        except Exception:
            unpacked = None  # the reader must refuse it
        try:
            out = read_idx_file(path, verify=False)
        except MNISTDataError as e:
            assert str(e).startswith(f"{path}: expected ")
            assert unpacked is None or expected_array(unpacked) is None
            return
        assert unpacked is not None and expected_array(unpacked) is not None
        assert out.shape == expected_array(unpacked).shape
