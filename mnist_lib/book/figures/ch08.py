"""Chapter 8's figures: test digits redrawn on the draw page's pad, and two ways of reading the pad.

The pads are stored as the strokes the page's pen drew (one row per point: ``pad``, ``digit``,
``stroke``, ``x``, ``y``), a few kilobytes instead of 280 x 280 pixels each; drawing them again
with the page's pen (:func:`mnist_lib.web.strokes.render_strokes`) gives the same pads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ...web.strokes import render_strokes
from .. import plots
from . import figure

CHAPTER = "08_draw_a_digit"
PIXELS = [f"p{k}" for k in range(784)]


def strokes_table(strokes: dict[int, list[list[tuple[float, float]]]], digits: dict[int, int]) -> pd.DataFrame:
    """The strokes of each pad (by pad number) as one table: pad, digit, stroke, x, y (pad pixels)."""
    rows = [(pad, digits[pad], s, x, y) for pad, pad_strokes in strokes.items()
            for s, stroke in enumerate(pad_strokes) for x, y in stroke]
    return pd.DataFrame(rows, columns=["pad", "digit", "stroke", "x", "y"])


def pixel_table(images: torch.Tensor, **columns) -> pd.DataFrame:
    """Digits (N, 28, 28) as one row each: the given ``columns`` (one value each, or N), then pixels p0..p783."""
    pixels = pd.DataFrame(images.reshape(len(images), -1).numpy(), columns=PIXELS)
    return pd.concat([pd.DataFrame(columns, index=pixels.index), pixels], axis=1)


def pad_image(points: pd.DataFrame) -> torch.Tensor:
    """One pad's strokes (rows of :func:`strokes_table`) drawn with the page's pen: white ink on black, uint8."""
    strokes = [list(zip(s["x"], s["y"])) for _, s in points.groupby("stroke", sort=True)]
    return 255 - torch.from_numpy(np.array(render_strokes(strokes).convert("L")))


@figure("drawn-pads", CHAPTER, "Redrawn test digits that shrinking the pad gets wrong and to_mnist right, on the pad",
        ("drawn_pads",))
def drawn_pads(strokes: pd.DataFrame) -> Figure:
    pads = [(int(rows["digit"].iloc[0]), pad_image(rows)) for _, rows in strokes.groupby("pad", sort=False)]
    return plots.digit_grid(torch.stack([image for _, image in pads]), [f"drawn: a {digit}" for digit, _ in pads],
                            ncols=3, size=2.2)


@figure("drawn-shrunk-vs-to-mnist", CHAPTER, "The same drawings as 28 x 28 images: the pad shrunk, and to_mnist",
        ("drawn_shrunk_vs_to_mnist",))
def drawn_shrunk_vs_to_mnist(images: pd.DataFrame) -> Figure:
    """One row of digits per way (``images``: way, read_as and the pixels p0..p783, in the order shown)."""
    pixels = torch.tensor(images[PIXELS].to_numpy(), dtype=torch.uint8).view(-1, 28, 28)
    titles = [f"{way}: read as {read_as}" for way, read_as in zip(images["way"], images["read_as"])]
    return plots.digit_grid(pixels, titles, ncols=3, size=2.2)
