"""Test digits redrawn on the draw page's pad, to measure the path from canvas to answer (chapter 8).

Nobody can redraw the digits a report's authors drew, but MNIST's own test digits can
be: each is traced as pen strokes, drawn with the page's pen at a random size and place
on the pad, and read back either the page's way (:func:`~mnist_lib.preprocess.to_mnist`)
or by the obvious shortcut of shrinking the whole pad to 28 x 28.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..preprocess import to_mnist
from ..web import PAD_SIZE, digit_strokes, render_strokes

# A placement on the pad: the scale of the digit's 28 x 28 field, and its top-left corner (x, y).
Placement = tuple[float, tuple[float, float]]


def draw(digit: torch.Tensor | np.ndarray, scale: float, offset: tuple[float, float]) -> Image.Image:
    """A 28 x 28 uint8 digit drawn on the page's pad, as a grey-level PIL image (dark ink on white)."""
    return render_strokes(digit_strokes(digit, scale, offset)).convert("L")


def shrink(pad: Image.Image) -> torch.Tensor:
    """The shortcut: the whole pad resized to 28 x 28 (Lanczos), white ink on black, uint8."""
    return 255 - torch.from_numpy(np.array(pad.resize((28, 28), Image.Resampling.LANCZOS)))


def random_placement(generator: torch.Generator) -> Placement:
    """A scale of 5 to 9 (the digit's field becomes 140 to 252 pad pixels) and a place where it fits."""
    scale = 5 + 4 * torch.rand((), generator=generator).item()
    room = PAD_SIZE - 28 * scale
    offset = (room * torch.rand((), generator=generator).item(), room * torch.rand((), generator=generator).item())
    return scale, offset


@dataclass
class Redrawn:
    """Digits redrawn on the pad: where each was drawn, and what each way of reading the pad makes of it."""

    placements: list[Placement]
    redrawn: torch.Tensor  # (N, 28, 28) uint8: the pad through to_mnist, as the page reads it
    shrunk: torch.Tensor  # (N, 28, 28) uint8: the whole pad shrunk to 28 x 28

    def pad(self, digits: torch.Tensor, i: int) -> torch.Tensor:
        """Digit ``i`` of ``digits`` (the images given to :func:`redraw`) on the pad, white ink on black, uint8."""
        return 255 - torch.from_numpy(np.array(draw(digits[i], *self.placements[i])))


def redraw(digits: torch.Tensor, seed: int = 0) -> Redrawn:
    """Draw each uint8 digit (N, 28, 28) on the pad at a random size and place (seeded), and read the pad back."""
    if digits.ndim != 3 or tuple(digits.shape[1:]) != (28, 28) or digits.dtype != torch.uint8:
        raise ValueError(f"digits must be uint8 images (N, 28, 28) such as data.test.images[:100], "
                         f"got {digits.dtype} {tuple(digits.shape)}")
    generator = torch.Generator().manual_seed(seed)
    placements, redrawn, shrunk = [], [], []
    for digit in digits:
        placement = random_placement(generator)
        pad = draw(digit, *placement)
        placements.append(placement)
        redrawn.append(to_mnist(pad))
        shrunk.append(shrink(pad))
    empty = torch.empty(0, 28, 28, dtype=torch.uint8)
    return Redrawn(placements, torch.stack(redrawn) if redrawn else empty, torch.stack(shrunk) if shrunk else empty)
