"""MNIST as tensors: ``load_mnist``, its splits, and device-resident batching.

:func:`load_mnist` reads the four IDX files, found and verified by
:mod:`mnist_lib.data_files` (in ``root=``, else ``$MNIST_DATA``, else the project's
``data/mnist`` in a checkout, else the user cache, which ``load_mnist(download=True)``
fills through torchvision), and returns ``uint8`` images and ``int64`` labels.
Anything wrong with the files ends in one :class:`MNISTDataError` that names the file, what
was expected, what was found and what to do; partial data is never returned.

Training does not use a per-image ``Dataset``/``DataLoader`` pipeline: MNIST fits in
memory, so :class:`DeviceLoader` keeps a whole split as one tensor of [0, 1] pixels on the
device and yields batches as index slices of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .data_files import (  # noqa: F401 (part of data's API: finding, verifying and fetching the files)
    DATA_ENV_VAR, DEFAULT_ROOT, FILES, FIX_LAYOUT, RAW_SHA256, _data_folder, _download, _load_split, cache_root,
    data_root, is_original_mnist, read_idx_file, torchvision_root)
from .idx import (  # noqa: F401 (part of data's API: the IDX parser and its error)
    FIX_SHIPPED, MNISTDataError, parse_idx, parse_idx_header, read_idx_bytes, unreadable)

# The standardisation every MNIST tutorial uses (the models' default input scale); chapter 1 computes both.
MEAN, STD = 0.1307, 0.3081


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
                f"Split images must be a uint8 tensor of pixels 0-255, got {_kind(images)}; training "
                "divides them by 255, so [0, 1] floats would be scaled twice: convert them with "
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


def scale_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]: what every model of the library takes.

    The same operations as torchvision's ``ToTensor``, so the result is bitwise identical
    to the conventional pipeline's; the models standardise it themselves
    (:class:`~mnist_lib.models.Standardize`, as ``Normalize`` would).
    """
    return images.unsqueeze(1).float().div(255)


class DeviceLoader:
    """Mini-batches of one split, kept whole on the device.

    The split is scaled once to [0, 1] pixels (:func:`scale_pixels`) and stored as one
    tensor; an epoch is a (seeded) random permutation of the indices, cut into slices, so
    each sample is seen exactly once per epoch and no Python code runs per image.
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
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.device = torch.device(device)
        self.x = scale_pixels(split.images.to(self.device))
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


def pixel_stats(split: Split) -> tuple[float, float]:
    """Mean and standard deviation of a split's pixels on the [0, 1] scale (from a histogram: no float copy)."""
    counts = torch.bincount(split.images.flatten(), minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * levels).sum() / counts.sum()
    std = ((counts * (levels - mean) ** 2).sum() / counts.sum()).sqrt()
    return mean.item(), std.item()
