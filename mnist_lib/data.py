"""MNIST from its IDX files: finding them, checksums, splits and device-resident batching.

The files are looked for in ``root=``, else ``$MNIST_DATA``, else the project's
``data/mnist`` (in a checkout, which ships the four original files), else the user cache
(``$XDG_CACHE_HOME/mnist_lib/mnist`` or ``~/.cache/mnist_lib/mnist``), which
``load_mnist(download=True)`` fills through torchvision. They are parsed byte by byte
(:mod:`mnist_lib.idx`), verified against the SHA-256 of their uncompressed bytes (known
to the library itself, so files anywhere can be checked), and returned as ``uint8``
images and ``int64`` labels.
Anything wrong with the files ends in one :class:`MNISTDataError` that names the file, what
was expected, what was found and what to do; partial data is never returned.

Training does not use a per-image ``Dataset``/``DataLoader`` pipeline: MNIST fits in
memory, so :class:`DeviceLoader` keeps a whole split as one normalised tensor on the
device and yields batches as index slices of it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .idx import (  # parse_idx_header: also re-exported, the IDX header is part of the data API
    FIX_SHIPPED, MNISTDataError, parse_idx, parse_idx_header, read_idx_bytes, unreadable)  # noqa: F401

DATA_ENV_VAR = "MNIST_DATA"
# The project's copy: there when the library runs from a checkout, not when pip-installed.
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

FIX_LAYOUT = (
    FIX_SHIPPED + "; for another dataset, store it in MNIST's layout: 28x28 uint8 images and uint8 "
    "labels 0-9, one per image, under MNIST's file names"
)
# The normalisation every MNIST tutorial uses; chapter 1 computes both from the data.
MEAN, STD = 0.1307, 0.3081

def _read_idx(path: Path) -> tuple[np.ndarray, str]:
    """Parse one IDX file, and hash its uncompressed bytes: (array, SHA-256 in hex)."""
    raw = read_idx_bytes(path)
    return parse_idx(raw, str(path)), hashlib.sha256(raw).hexdigest()


def _verify(path: Path, digest: str) -> None:
    """Refuse a file that has one of MNIST's names but not MNIST's bytes."""
    expected = RAW_SHA256.get(path.name.removesuffix(".gz"))
    if expected is not None and digest != expected:
        raise MNISTDataError(
            path,
            f"uncompressed SHA-256 {expected[:16]}...",
            f"{digest[:16]}... (the bytes differ from the original MNIST)",
            FIX_SHIPPED + "; to use other files under MNIST's names on purpose, pass verify=False "
            "(command line: --no-verify)",
        )


def read_idx_file(path: str | os.PathLike, verify: bool = True) -> np.ndarray:
    """Read one IDX file (``name`` or ``name.gz``), check its structure, then its SHA-256 (``verify``)."""
    path = Path(path)
    array, digest = _read_idx(path)
    if verify:
        _verify(path, digest)
    return array


@dataclass
class Split:
    """One part of MNIST: ``images`` uint8 (N, 28, 28) and ``labels`` int64 (N,) in 0-9.

    Checked on construction (integer labels of another type are converted to int64): a
    wrong split would otherwise train "fine", e.g. float pixels divided by 255 twice.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise ValueError(
                f"Split images must be a uint8 tensor of pixels 0-255, got {_kind(images)}; normalize() "
                "divides by 255, so [0, 1] floats would be scaled twice: convert them with "
                "(images * 255).round().to(torch.uint8)")
        if images.shape[1:] != (28, 28) or images.ndim != 3:
            raise ValueError(f"Split images must have shape (N, 28, 28), got {tuple(images.shape)}")
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex() \
                or labels.dtype == torch.bool:
            raise ValueError(f"Split labels must be integer labels 0-9, got {_kind(labels)}")
        if labels.ndim != 1:
            raise ValueError(f"Split labels must be labels of shape (N,), got {tuple(labels.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"Split needs one label per image, got {len(images)} images and {len(labels)} labels")
        if len(labels) and not labels.is_meta:  # meta tensors hold no values to check
            low, high = (int(v) for v in torch.aminmax(labels))  # one pass over the labels
            if low < 0 or high > 9:
                raise ValueError(f"Split labels must be labels 0-9, got {low if low < 0 else high}")
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> "Split":
        return Split(self.images[index], self.labels[index])

    def head(self, n: int) -> "Split":
        """The first ``n`` samples (all of them if ``n`` is larger)."""
        return self[:n]


def _kind(x) -> str:
    return f"{x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


@dataclass
class MNIST:
    """The training and test sets, and a validation set when one was split off."""

    train: Split
    test: Split
    val: Split | None = None


# ------------------------------------------------------------------- finding the files


def cache_root() -> Path:
    """The user cache: ``$XDG_CACHE_HOME/mnist_lib/mnist``, else ``~/.cache/mnist_lib/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "mnist_lib" / "mnist"


def _usual_places() -> list[tuple[str, Path]]:
    """Where the files are looked for when neither ``root=`` nor ``$MNIST_DATA`` names a folder."""
    checkout = [("the project's copy, in a checkout", DEFAULT_ROOT)] if DEFAULT_ROOT.is_dir() else []  # not when pip-installed
    return checkout + [("the user cache", cache_root())]


def _find(root: Path, name: str) -> Path:
    """``root/name.gz`` or ``root/name``, whichever exists (the first, reported missing, if neither)."""
    for candidate in (root / f"{name}.gz", root / name):
        try:
            if candidate.exists():
                return candidate
        except OSError as e:  # e.g. a folder without permission
            raise unreadable(candidate, e) from None
    return root / f"{name}.gz"


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` holds any of the four files (then it is the folder meant, even if incomplete)."""
    return any(_find(folder, name).exists() for name in RAW_SHA256)


def _choose(root: str | os.PathLike | None) -> tuple[Path | None, bool]:
    """(the data folder, whether ``$MNIST_DATA`` named it); the folder is None when nothing was found."""
    if root is not None:
        if os.fspath(root) == "":
            raise MNISTDataError("root", "a folder", "an empty path",
                                 "name the folder that holds the four MNIST files, or pass no folder at all "
                                 "(root=None, no --data) to look in the usual places")
        return Path(root).expanduser().resolve(), False
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser().resolve(), True
    return next((folder for _, folder in _usual_places() if _holds_files(folder)), None), False


def _nothing_found() -> MNISTDataError:
    looked = "; ".join([f"${DATA_ENV_VAR} (not set)"] + [f"{folder} ({what})" for what, folder in _usual_places()])
    return MNISTDataError(
        "MNIST files",
        f"the four files ({', '.join(RAW_SHA256)}, each optionally .gz) in one of the places looked in: {looked}",
        "none of them there",
        f"set ${DATA_ENV_VAR} to the folder that holds them, pass root= that folder (command line: --data FOLDER), "
        f"or fetch them into {cache_root()} with load_mnist(download=True)",
    )


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the IDX files are: ``root``, else ``$MNIST_DATA``, else the first of the project's
    ``data/mnist`` (in a checkout) and the user cache (:func:`cache_root`) that holds them.

    Raises :class:`MNISTDataError`, listing the places looked in, when none does.
    """
    folder, _ = _choose(root)
    if folder is None:
        raise _nothing_found()
    return folder


def _check_folder(folder: Path, named_by_env: bool) -> None:
    try:
        if folder.is_dir():
            return
        exists = folder.exists()
    except OSError as e:
        raise unreadable(folder, e) from None
    usual = " and ".join(str(place) for _, place in _usual_places())
    if named_by_env:
        expected = f"a folder holding the four MNIST files (named by ${DATA_ENV_VAR})"
        fix = f"set ${DATA_ENV_VAR} to an existing folder, or unset it to look in the usual places ({usual})"
    else:
        expected = "a folder holding the four MNIST files"
        fix = (f"pass an existing folder (root=, or --data on the command line), or none to look in the usual "
               f"places ({usual}); load_mnist(root, download=True) fetches the files into root")
    raise MNISTDataError(folder, expected, "a file, not a folder" if exists else "no such folder", fix)


def _data_folder(root: str | os.PathLike | None) -> Path:
    """:func:`data_root`, checked to be an existing folder."""
    folder, named_by_env = _choose(root)
    if folder is None:
        raise _nothing_found()
    _check_folder(folder, named_by_env)
    return folder


# ------------------------------------------------------------------- reading the files


def _signature(path: Path) -> tuple[int, ...]:
    """What changes when the file on disk does: its identity, size and times."""
    try:
        st = path.stat()
    except OSError as e:
        raise unreadable(path, e) from None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@lru_cache(maxsize=8)
def _read_idx_cached(path: Path, signature: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """:func:`_read_idx` as a read-only array, remembered while the file's ``signature`` is unchanged."""
    array, digest = _read_idx(path)
    array.setflags(write=False)
    return array, digest


def _read_checked(path: Path, verify: bool) -> np.ndarray:
    array, digest = _read_idx_cached(path, _signature(path))
    if verify:
        _verify(path, digest)
    return array


def _load_split(root: Path, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = (_find(root, name) for name in FILES[split])
    images = _read_checked(image_path, verify)
    labels = _read_checked(label_path, verify)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MNISTDataError(image_path, "uint8 images of shape (N, 28, 28)", f"{images.dtype} {images.shape}",
                             FIX_LAYOUT)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MNISTDataError(label_path, "uint8 labels of shape (N,)", f"{labels.dtype} {labels.shape}", FIX_LAYOUT)
    if len(images) != len(labels):
        raise MNISTDataError(label_path, f"{len(images)} labels, one per image in {image_path.name}",
                             f"{len(labels)}", FIX_LAYOUT)
    if labels.size and labels.max() > 9:
        raise MNISTDataError(label_path, "labels 0-9", f"label {int(labels.max())}", FIX_LAYOUT)
    return images, labels


def is_original_mnist(root: str | os.PathLike | None = None) -> bool:
    """Whether the four files in the data folder (see :func:`data_root`) are MNIST's own.

    Compares the SHA-256 of each file's uncompressed bytes with the original's (cheap after
    :func:`load_mnist`, which has read them). Returns False for files that differ; raises
    :class:`MNISTDataError` only when the folder or a file cannot be read as IDX at all.
    """
    folder = _data_folder(root)
    paths = {name: _find(folder, name) for name in RAW_SHA256}
    return all(_read_idx_cached(path, _signature(path))[1] == RAW_SHA256[name] for name, path in paths.items())


def _download(root: str | os.PathLike | None) -> None:
    """Fetch, with torchvision, the files the data folder lacks (into the user cache when none is named).

    Downloads are always verified against MNIST's SHA-256, and only verified files are
    moved into the folder; files already there are never replaced.
    """
    from torchvision import datasets

    folder = _choose(root)[0] or cache_root()
    missing = [name for name in RAW_SHA256 if not _find(folder, name).exists()]
    if not missing:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
            datasets.MNIST(tmp, train=True, download=True)  # fetches all four files
            fetched = {name: _find(Path(tmp) / "MNIST" / "raw", name) for name in missing}
            for path in fetched.values():
                read_idx_file(path, verify=True)
            for path in fetched.values():
                os.replace(path, folder / path.name)
    except (RuntimeError, OSError) as e:  # torchvision reports network failures as RuntimeError
        reason = " ".join(str(e).split())  # torchvision's message spans several lines
        raise MNISTDataError(
            folder, "the MNIST files fetched by torchvision", f"the download failed ({type(e).__name__}: {reason})",
            f"check the network connection and retry, or fetch the four files ({', '.join(RAW_SHA256)}, "
            f".gz or not) by hand and put them in {folder}, or in any folder named by ${DATA_ENV_VAR} or root=",
        ) from None


def load_split(split: str, root: str | os.PathLike | None = None, verify: bool = True) -> Split:
    """Load ``"train"`` or ``"test"`` as a :class:`Split` (a fresh copy each call)."""
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    images, labels = _load_split(_data_folder(root), split, verify)
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
        root: folder of the four IDX files (``.gz`` or not). Default: ``$MNIST_DATA``,
            else the first of the project's ``data/mnist`` (in a checkout) and the user
            cache (:func:`cache_root`) that holds them.
        val_fraction: if > 0, split this fraction of the training set off as ``val``
            (seeded by ``split_seed``, so the split is the same every time).
        verify: check each file's SHA-256 against the original MNIST; ``False`` loads
            another dataset stored in MNIST's layout under MNIST's file names.
        download: first fetch, with torchvision, the files the folder lacks (the user
            cache when no folder is named; network needed; always verified).
    """
    if download:
        _download(root)
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
    source = _data_folder(root)
    for name in RAW_SHA256:
        target = raw_dir / name
        if not target.exists():
            src = _find(source, name)
            read_idx_file(src)  # verify before copying
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(read_idx_bytes(src))
            tmp.replace(target)
    return Path(folder)
