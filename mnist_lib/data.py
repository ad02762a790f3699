"""MNIST from its IDX files: parsing, checksums, splits and device-resident batching.

The project ships the four original files under ``data/mnist/``. They are parsed here
byte by byte (no torchvision needed), verified against the SHA-256 of their
uncompressed bytes, and returned as ``uint8`` images and ``int64`` labels. Anything
wrong with the files ends in one :class:`MNISTDataError` that names the file, what was
expected, what was found and what to do; partial data is never returned.

Training does not use a per-image ``Dataset``/``DataLoader`` pipeline: MNIST fits in
memory, so :class:`DeviceLoader` keeps a whole split as one normalised tensor on the
device and yields batches as index slices of it.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

DATA_ENV_VAR = "MNIST_DATA"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data" / "mnist"

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
COUNTS = {"train": 60_000, "test": 10_000}

# SHA-256 of each file's *uncompressed* IDX bytes: the identity of the data, whatever
# compressor was used (the same values as data/mnist/SHA256SUMS.raw).
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# The normalisation every MNIST tutorial uses; chapter 1 computes both from the data.
MEAN, STD = 0.1307, 0.3081

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
    "restore the project's copy (git checkout -- data/mnist) or pass root= a folder "
    "holding the four original MNIST files"
)
MAX_DIMS = 32  # NumPy's limit (NumPy 1.x; 2.x allows 64); MNIST's files have 1 or 3
GZIP_MAGIC = b"\x1f\x8b"


class MNISTDataError(ValueError):
    """The MNIST files are missing, corrupt or not what they claim to be."""

    def __init__(self, file: str | os.PathLike, expected: str, found: str, fix: str = FIX_SHIPPED):
        self.file, self.expected, self.found, self.fix = str(file), expected, found, fix
        super().__init__(f"{file}: expected {expected}, found {found}. Fix: {fix}.")


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of one uncompressed IDX file into a NumPy array.

    The header is two zero bytes, a type code, the number of dimensions, then each
    dimension as a big-endian uint32; the data follow in row-major order.
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
    size = math.prod(dims) * dtype.itemsize  # Python ints: no overflow on absurd headers
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "trailing bytes"
        raise MNISTDataError(
            name,
            f"{size} data bytes for dimensions {'x'.join(map(str, dims))}",
            f"{len(raw) - header} ({state})",
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_file(path: str | os.PathLike, verify: bool = True) -> np.ndarray:
    """Read one IDX file (``name`` or ``name.gz``), check its SHA-256, and parse it."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise MNISTDataError(path, "the file to exist", "no such file") from None
    except OSError as e:
        raise MNISTDataError(path, "a readable file", f"{type(e).__name__}: {e}") from None
    if path.suffix == ".gz":
        if not blob.startswith(GZIP_MAGIC):
            raise MNISTDataError(
                path,
                "gzip data (the name ends in .gz), which starts with the bytes 1f 8b",
                f"bytes starting {blob[:4].hex(' ')}" if blob else "an empty file",
                "if it is an uncompressed IDX file, remove .gz from its name; otherwise " + FIX_SHIPPED,
            )
        try:
            raw = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as e:
            found = f"a truncated or damaged one ({type(e).__name__}: {e})"
            raise MNISTDataError(path, "a complete gzip file", found) from None
    else:
        raw = blob
    name = path.name.removesuffix(".gz")
    if verify and name in RAW_SHA256:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != RAW_SHA256[name]:
            raise MNISTDataError(
                path,
                f"uncompressed SHA-256 {RAW_SHA256[name][:16]}...",
                f"{digest[:16]}... (the bytes differ from the original MNIST)",
                FIX_SHIPPED + "; to use files you changed on purpose, load them with verify=False",
            )
    return parse_idx(raw, str(path))


@dataclass
class Split:
    """One part of MNIST: ``images`` uint8 (N, 28, 28) and ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> "Split":
        return Split(self.images[index], self.labels[index])

    def head(self, n: int) -> "Split":
        """The first ``n`` samples (all of them if ``n`` is larger)."""
        return self[:n]


@dataclass
class MNIST:
    """The training and test sets, and a validation set when one was split off."""

    train: Split
    test: Split
    val: Split | None = None


def _find(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.exists():
            return candidate
    return root / f"{name}.gz"  # reported as missing by read_idx_file


@lru_cache(maxsize=4)
def _load_split(root: Path, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = FILES[split]
    image_path, label_path = _find(root, image_name), _find(root, label_name)
    images = read_idx_file(image_path, verify)
    labels = read_idx_file(label_path, verify)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MNISTDataError(image_path, "uint8 images of shape (N, 28, 28)", f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MNISTDataError(label_path, "uint8 labels of shape (N,)", f"{labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise MNISTDataError(label_path, f"{len(images)} labels, one per image in {image_path.name}", f"{len(labels)}")
    if labels.size and labels.max() > 9:
        raise MNISTDataError(label_path, "labels 0-9", f"label {int(labels.max())}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the IDX files are: ``root``, else ``$MNIST_DATA``, else the project's ``data/mnist``."""
    return Path(root or os.environ.get(DATA_ENV_VAR) or DEFAULT_ROOT).expanduser().resolve()


def download_with_torchvision(root: str | os.PathLike) -> Path:
    """Fetch MNIST with torchvision into ``root`` (needs a network); return the IDX folder."""
    from torchvision import datasets

    for train in (True, False):
        datasets.MNIST(str(root), train=train, download=True)
    return Path(root) / "MNIST" / "raw"


def _check_folder(folder: Path, named_by_env: bool) -> None:
    if folder.is_dir():
        return
    if named_by_env:
        expected = f"a folder holding the four MNIST files (named by ${DATA_ENV_VAR})"
        fix = f"set ${DATA_ENV_VAR} to an existing folder, or unset it to use the project's copy in {DEFAULT_ROOT}"
    else:
        expected = "a folder holding the four MNIST files"
        fix = f"pass an existing folder (root=, or --data on the command line); the project's copy is in {DEFAULT_ROOT}"
    raise MNISTDataError(folder, expected, "a file, not a folder" if folder.exists() else "no such folder", fix)


def load_split(split: str, root: str | os.PathLike | None = None, verify: bool = True) -> Split:
    """Load ``"train"`` or ``"test"`` as a :class:`Split` (a fresh copy each call)."""
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    folder = data_root(root)
    _check_folder(folder, named_by_env=root is None and bool(os.environ.get(DATA_ENV_VAR)))
    images, labels = _load_split(folder, split, verify)
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


def split_train_val(train: Split, val_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Split ``train`` at random (seeded) into disjoint training and validation parts.

    ``val_fraction=0.2`` gives the CUHK report's 4:1 split (48,000 / 12,000).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(train) * val_fraction)
    return train[order[n_val:]], train[order[:n_val]]


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    verify: bool = True,
    download: bool = False,
) -> MNIST:
    """Load MNIST: 60,000 training and 10,000 test images (uint8) with int64 labels.

    Args:
        root: folder of the four IDX files (``.gz`` or not). Default: the project's
            ``data/mnist`` (or ``$MNIST_DATA``).
        val_fraction: if > 0, split this fraction of the training set off as ``val``
            (seeded by ``split_seed``, so the split is the same every time).
        verify: check each file's SHA-256 against the original MNIST.
        download: fetch the files with torchvision into ``root`` first (network needed).
    """
    if download:
        if root is None:
            raise ValueError("download=True needs a root folder to download into")
        root = download_with_torchvision(root)
    data = MNIST(load_split("train", root, verify), load_split("test", root, verify))
    if val_fraction:
        data.train, data.val = split_train_val(data.train, val_fraction, split_seed)
    return data


def normalize(images: torch.Tensor, mean: float = MEAN, std: float = STD) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), scaled to [0, 1] then standardised.

    The same operations, in the same order, as torchvision's ``ToTensor`` + ``Normalize``,
    so the result is bitwise identical to the conventional pipeline.
    """
    return images.unsqueeze(1).float().div(255).sub(mean).div(std)


class DeviceLoader:
    """Mini-batches of one split, kept whole on the device.

    The split is normalised once (``normalization=(mean, std)`` on the [0, 1] scale;
    ``(0, 1)`` keeps plain [0, 1] pixels) and stored as one tensor; an epoch is a (seeded)
    random permutation of the indices, cut into slices, so each sample is seen exactly
    once per epoch and no Python code runs per image.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = True,
        device: torch.device | str = "cpu",
        seed: int = 0,
        drop_last: bool = False,
        normalization: tuple[float, float] = (MEAN, STD),
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.device = torch.device(device)
        self.x = normalize(split.images.to(self.device), *normalization)
        self.y = split.labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def indices(self) -> torch.Tensor:
        """The order of one epoch (advances the shuffle generator)."""
        n = len(self.y)
        if self.shuffle:
            return torch.randperm(n, generator=self.generator).to(self.device)
        return torch.arange(n, device=self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices()
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


def torchvision_root(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Lay out the shipped files the way ``torchvision.datasets.MNIST`` expects them.

    torchvision reads uncompressed files from ``<folder>/MNIST/raw``; this writes them
    there (once) from the project's copy, so the conventional pipeline runs offline.
    Returns ``folder``, ready for ``datasets.MNIST(folder, download=False)``.
    """
    raw_dir = Path(folder) / "MNIST" / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    source = data_root(root)
    for names in FILES.values():
        for name in names:
            target = raw_dir / name
            if not target.exists():
                src = _find(source, name)
                read_idx_file(src)  # verify before copying
                blob = src.read_bytes()
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(gzip.decompress(blob) if src.suffix == ".gz" else blob)
                tmp.replace(target)
    return Path(folder)
