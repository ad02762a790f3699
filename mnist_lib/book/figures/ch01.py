"""Chapter 1's figures: the digits, the class balance, the grey levels, and k nearest neighbours.

Digits are stored one per row, their pixels as columns ``p0`` .. ``p783`` (row by row)
beside whatever describes them (label, prediction, ...): small, and readable in a spreadsheet.
"""

from __future__ import annotations

import pandas as pd
import torch
from matplotlib.figure import Figure

from .. import plots
from . import figure

CHAPTER = "01_mnist_database"
PIXELS = [f"p{k}" for k in range(784)]


def digit_table(images: torch.Tensor, **columns) -> pd.DataFrame:
    """Images (N, 28, 28) one per row: the ``columns`` given (tensors, lists or scalars), then p0..p783."""
    pixels = images.detach().cpu().reshape(len(images), -1).numpy()
    described = {name: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for name, v in columns.items()}
    return pd.concat([pd.DataFrame(described, index=range(len(images))), pd.DataFrame(pixels, columns=PIXELS)], axis=1)


def digit_images(table: pd.DataFrame) -> torch.Tensor:
    """The images (N, 28, 28) of a :func:`digit_table`: uint8 grey levels, or float pixels as stored."""
    pixels = table[PIXELS].to_numpy()
    dtype = torch.uint8 if pixels.dtype.kind in "iu" else torch.float32
    return torch.tensor(pixels, dtype=dtype).view(-1, 28, 28)


@figure("mnist-first-digits", CHAPTER, "The first 40 training images with their labels", ("mnist_first_digits",))
def first_digits(digits: pd.DataFrame) -> Figure:
    """The digits of ``digits`` (label, p0..p783), ten per row, each titled with its label."""
    return plots.digit_grid(digit_images(digits), [str(y) for y in digits["label"]])


@figure("mnist-class-balance", CHAPTER, "Training images per digit", ("mnist_class_counts",))
def class_balance(counts: pd.DataFrame) -> Figure:
    """Bars of ``counts`` (digit, images): plots.class_balance of labels with these counts."""
    labels = torch.repeat_interleave(torch.tensor(counts["digit"].to_numpy()), torch.tensor(counts["images"].to_numpy()))
    return plots.class_balance(labels)


@figure("mnist-mean-digits", CHAPTER, "The mean training image of each digit", ("mnist_mean_digits",))
def mean_digits(means: pd.DataFrame) -> Figure:
    """The ten mean images (``means``: digit, p0..p783 in [0, 1])."""
    return plots.digit_grid(digit_images(means), [str(d) for d in means["digit"]], ncols=10, size=1.1)


@figure("mnist-pixel-histogram", CHAPTER, "How many training pixels have each grey level", ("mnist_pixel_counts",))
def pixel_histogram(counts: pd.DataFrame) -> Figure:
    """``counts``: grey_level 0-255 and how many pixels have it."""
    return plots.pixel_histogram(counts.sort_values("grey_level")["pixels"])


@figure("knn-neighbours", CHAPTER, "Test digits and their five nearest training images", ("knn_neighbours",))
def knn_neighbours(shown: pd.DataFrame) -> Figure:
    """One row per test digit (``shown``: row, rank, label, vote, p0..p783; rank 0 the test digit, 1..5 its
    neighbours, nearest first; vote: the k-nearest-neighbour prediction for the row's test digit)."""
    shown = shown.sort_values(["row", "rank"])
    titles = [f"test: {y}→{v}" if rank == 0 else str(y) for y, v, rank in zip(shown["label"], shown["vote"], shown["rank"])]
    return plots.digit_grid(digit_images(shown), titles, ncols=int(shown["rank"].max()) + 1)
