"""Shared fixtures and helpers for the mnist_lib tests.

The tests run on CPU, on small data (a few hundred images or hand-made IDX files), so
the whole suite takes well under a minute on a couple of cores.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mnist_lib import data as data_mod

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = PROJECT_ROOT / "data" / "mnist"
HAS_CUDA = torch.cuda.is_available()

# The models under test are tiny: one intra-op thread is faster than several fighting
# over a couple of shared cores (tens of times faster for the small fits here).
torch.set_num_threads(1)

# IDX type codes, written out here (not taken from the library) so the tests build
# the bytes independently of the parser under test.
TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
              np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of an uncompressed IDX file holding ``array``, built by hand."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def small_mnist(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Hand-made MNIST-shaped arrays, keyed by the real file names."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_mnist_folder(root: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> Path:
    """Write the four files named like the real ones into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(root / (name + (".gz" if gz else "")), array)
    return root


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (tests/test_gpu.py; skipped without one)")


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend this machine has one CUDA GPU, for code that only *branches* on it.

    Nothing can run on the pretended GPU: use it to test choices (fused Adam, the bfloat16
    guard, run_jobs' warning, choose_device), not computations. Set ``.bf16 = False`` for
    a GPU without bfloat16 and ``.initialized = True`` for a process where CUDA already runs.
    """
    state = SimpleNamespace(bf16=True, initialized=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Pretend GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: state.bf16)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: state.initialized)
    return state


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Pretend this CPU computes in bfloat16 (``.native = False``: it does not), for amp on the CPU."""
    import mnist_lib.device

    state = SimpleNamespace(native=True)
    monkeypatch.setattr(mnist_lib.device, "cpu_has_bfloat16", lambda: state.native)
    return state


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No test sees the caller's data folder, device or profile choice."""
    for var in ("MNIST_DATA", "MNIST_DEVICE", "MNIST_PROFILE", "MNIST_PROGRESS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def mnist() -> data_mod.MNIST:
    """The shipped MNIST, loaded (and verified) once. Tests must not modify it."""
    return data_mod.load_mnist(SHIPPED)


@pytest.fixture(scope="session")
def small_train(mnist) -> data_mod.Split:
    return mnist.train.head(512)


@pytest.fixture(scope="session")
def small_test(mnist) -> data_mod.Split:
    return mnist.test.head(1000)
