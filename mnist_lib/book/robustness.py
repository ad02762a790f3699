"""How accuracy holds up when the test digits move or turn (chapter 7).

A network that recognises a 7 in the middle of the frame should recognise it a few
pixels to the left. Convolutions share their filters across positions, so a CNN's
features move with the digit; a perceptron's weights are tied to pixel positions.
These functions make the moved and turned test sets and measure any model on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from ..augment import rotate_images, shift_images
from ..data import Split
from ..train import predict

# The four directions a digit is moved in: right, left, down, up.
DIRECTIONS = torch.tensor([[1, 0], [-1, 0], [0, 1], [0, -1]])


def shifted(split: Split, pixels: int, seed: int = 0) -> Split:
    """Each image moved by ``pixels`` whole pixels in one of four directions, chosen at random per image."""
    direction = DIRECTIONS[torch.randint(4, (len(split),), generator=torch.Generator().manual_seed(seed))]
    images = split.images.clone()
    for d, (dx, dy) in enumerate(DIRECTIONS.tolist()):
        chosen = (direction == DIRECTIONS[d]).all(1)
        images[chosen] = shift_images(split.images[chosen], dx * pixels, dy * pixels)
    return Split(images, split.labels)


def rotated(split: Split, degrees: float, seed: int = 0) -> Split:
    """Each image turned by ``degrees`` about its centre, clockwise or anticlockwise at random per image.

    Bilinear resampling (:func:`~mnist_lib.augment.rotate_images`).
    """
    sign = torch.randint(2, (len(split),), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return Split(rotate_images(split.images, sign * degrees), split.labels)


def robustness(models: dict[str, nn.Module], split: Split, shifts: Iterable[int] = range(7),
               angles: Iterable[float] = range(0, 31, 5), *, device=None) -> pd.DataFrame:
    """Accuracy of each model on ``split`` shifted by each of ``shifts`` pixels and rotated by each of ``angles``.

    ``models`` maps a name to a model (any ``nn.Module`` that takes [0, 1] pixels, a
    :class:`~mnist_lib.book.committee.Committee` too). Returns a tidy table: model,
    transform ("shift" or "rotation"), amount, test_acc.
    """
    cases = [("shift", s, shifted(split, s)) for s in shifts] + [("rotation", a, rotated(split, a)) for a in angles]
    rows, accuracies = [], []
    for name, model in models.items():
        for transform, amount, moved in cases:
            predicted = predict(model, moved.images, device=device)
            accuracies.append(predicted.eq(moved.labels.to(predicted.device)).float().mean())
            rows.append({"model": name, "transform": transform, "amount": amount})
    accuracies = torch.stack(accuracies).tolist() if accuracies else []  # one read of the device for the table
    return pd.DataFrame([{**row, "test_acc": accuracy} for row, accuracy in zip(rows, accuracies)])

