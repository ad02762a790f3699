"""Chapter 3's figures: the two autoencoders, their training, reconstructions and codes, and the code sizes.

Digits are stored as pixel columns ``p0..p783`` (grey levels 0..255), the codes as their
projection on the plane that is drawn, and each network as its layer table
(:func:`~mnist_lib.models.layer_table`, with the ``config`` it belongs to).
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from matplotlib.figure import Figure

from .. import plots
from . import figure
from .ch01 import PIXELS

CHAPTER = "03_autoencoders"


def pixel_rows(rows: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Images (N, 28, 28) of grey levels in [0, 1], by row name, as one table: row, image, p0..p783 (0..255)."""
    frames = [pd.DataFrame((plots._host(images).flatten(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
                           columns=PIXELS).assign(row=name, image=range(len(images)))
              for name, images in rows.items()]
    return pd.concat(frames, ignore_index=True)[["row", "image", *PIXELS]]


def principal_plane(codes: torch.Tensor, labels: torch.Tensor, digits: int = 4) -> pd.DataFrame:
    """Codes projected on their first two principal components, as plots.code_scatter projects them: digit, pc1, pc2.

    Each axis is rounded to ``digits`` significant digits of its largest coordinate: far finer than the scatter shows.
    """
    plane = plots.principal_plane(plots._host(codes).float()).numpy()
    table = pd.DataFrame({"digit": plots._host(labels).numpy()})
    for k, axis in enumerate(plane.T, 1):
        table[f"pc{k}"] = axis.round(max(0, digits - 1 - math.floor(math.log10(abs(axis).max() or 1))))
    return table


def _architecture(layers: pd.DataFrame) -> Figure:
    """The network of a stored layer table (``config`` and layer_table's columns), titled with its weight count."""
    title = f"{layers['config'].iloc[0]}: {layers['parameters'].sum():,} weights"
    return plots.architecture(layers.drop(columns="config").astype({"output shape": str}), title=title)


@figure("ae-architecture", CHAPTER, "The dense autoencoder, one box per layer", ("ae_layers",))
def ae_architecture(layers: pd.DataFrame) -> Figure:
    return _architecture(layers)


@figure("conv-ae-architecture", CHAPTER, "The convolutional autoencoder, one box per layer", ("conv_ae_layers",))
def conv_ae_architecture(layers: pd.DataFrame) -> Figure:
    return _architecture(layers)


@figure("ae-loss-curves", CHAPTER, "Both autoencoders' training and test reconstruction loss per epoch",
        ("ae_epochs",))
def ae_loss_curves(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(epochs, metrics=["train_loss", "test_loss"],
                              title="Reconstruction loss (binary cross-entropy per pixel)")


@figure("ae-reconstructions", CHAPTER, "Ten test digits and their reconstructions by both autoencoders",
        ("ae_reconstructions",))
def ae_reconstructions(table: pd.DataFrame) -> Figure:
    """The ``original`` row on top, each other row (a :func:`pixel_rows` table) below it."""
    images = {name: torch.tensor(rows[PIXELS].to_numpy(), dtype=torch.uint8).view(-1, 28, 28)
              for name, rows in table.groupby("row", sort=False)}
    originals = images.pop("original")
    return plots.reconstructions(originals, {name: rows.float() / 255 for name, rows in images.items()})


@figure("ae-code-space", CHAPTER, "The dense autoencoder's codes of the test images, on their principal plane",
        ("ae_codes",))
def ae_code_space(plane: pd.DataFrame) -> Figure:
    """A :func:`principal_plane` table as plots.code_scatter draws the codes it projects."""
    return plots.code_scatter(torch.tensor(plane[["pc1", "pc2"]].to_numpy()), torch.tensor(plane["digit"].to_numpy()),
                              axes=("principal component 1", "principal component 2"))


@figure("ae-code-size", CHAPTER, "A classifier on frozen codes: test accuracy against the code size",
        ("ae_code_size_sweep",))
def ae_code_size(sweep: pd.DataFrame) -> Figure:
    """``sweep``: code_size, test_acc and the reference pixels_test_acc (the perceptron on raw pixels)."""
    pixels = float(sweep["pixels_test_acc"].iloc[0])
    return plots.metric_vs(sweep, "code_size", "test_acc", logx=True,
                           reference={"MLP 784-300-10 on raw pixels": pixels, "1 point below": pixels - 0.01},
                           title="Classifier on autoencoder codes: test accuracy against code size")
