"""Data augmentation on the device: random affine distortions of whole batches.

Each image of a batch gets its own random rotation, scale and shift, applied with one
``affine_grid`` + ``grid_sample`` call for the whole batch, on whatever device the batch
lives. No per-image Python code, no CPU round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .data import MEAN, STD


@dataclass(frozen=True)
class RandomAffine:
    """Random rotation (+- ``degrees``), scaling (1 +- ``scale``) and shift (+- ``shift`` pixels).

    Works on normalised batches (N, 1, 28, 28): pixels shifted in from outside the image
    get the background value, i.e. what a 0 pixel becomes after ``normalization``.
    Randomness comes from the global torch generator, which ``fit`` seeds.
    """

    degrees: float = 0.0
    scale: float = 0.0
    shift: float = 2.0
    normalization: tuple[float, float] = (MEAN, STD)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, device = len(x), x.device
        angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(self.degrees)
        zoom = 1 + (torch.rand(n, device=device) * 2 - 1) * self.scale
        # affine_grid works in [-1, 1] coordinates: one pixel is 2 / 28 of the width.
        offset = (torch.rand(n, 2, device=device) * 2 - 1) * self.shift * 2 / x.shape[-1]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        background = -self.normalization[0] / self.normalization[1]
        return F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background


def shift_images(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """uint8 images (N, 28, 28) moved by whole pixels, filling with background (0)."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out  # moved out of the frame entirely
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out
