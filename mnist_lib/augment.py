"""Data augmentation on the device: random affine and elastic distortions of whole batches.

Each image of a batch gets its own random rotation, scale and shift (and, with
:class:`ElasticAffine`, its own smooth random displacement field), applied with one
``grid_sample`` call for the whole batch, on whatever device the batch lives. No
per-image Python code, no CPU round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class RandomAffine:
    """Random rotation (+- ``degrees``), scaling (1 +- ``scale``) and shift (+- ``shift`` pixels).

    Works on batches of [0, 1] pixels (N, 1, 28, 28), as the loaders yield them: pixels
    shifted in from outside the image get the background, 0. Randomness comes from the
    global torch generator, which ``fit`` seeds.
    """

    degrees: float = 0.0
    scale: float = 0.0
    shift: float = 2.0

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """Where each output pixel samples the input: (N, H, W, 2) in ``grid_sample``'s [-1, 1] units."""
        n, device = len(x), x.device
        angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(self.degrees)
        zoom = 1 + (torch.rand(n, device=device) * 2 - 1) * self.scale
        # affine_grid works in [-1, 1] coordinates: one pixel is 2 / 28 of the width.
        offset = (torch.rand(n, 2, device=device) * 2 - 1) * self.shift * 2 / x.shape[-1]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
        return F.affine_grid(theta, list(x.shape), align_corners=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(x, self.grid(x), align_corners=False, padding_mode="zeros")


@dataclass(frozen=True)
class ElasticAffine(RandomAffine):
    """:class:`RandomAffine` plus an elastic distortion (Simard et al. 2003), in one resampling.

    Every pixel is displaced by a random field: uniform noise in [-1, 1] for each
    coordinate, smoothed by a Gaussian of width ``sigma`` pixels and scaled by ``alpha``
    pixels. A small ``sigma`` gives jitter, a large one a gentle bend of the strokes,
    like different hands writing the same digit. Simard et al. used alpha 34, sigma 4.
    """

    alpha: float = 34.0
    sigma: float = 4.0

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        affine = super().grid(x)  # first, so that alpha=0 draws the same maps as RandomAffine
        noise = torch.rand(n * 2, 1, h, w, device=x.device) * 2 - 1  # one field per coordinate
        field = gaussian_blur(noise, self.sigma).view(n, 2, h, w).permute(0, 2, 3, 1) * self.alpha * 2
        # Pixels to [-1, 1] units, x by the width and y by the height. Python numbers, not a
        # tensor made from them: that would be a copy from the host (a GPU sync) every batch.
        return affine + torch.stack([field[..., 0] / w, field[..., 1] / h], -1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, H, W) smoothed by a normalised Gaussian of std ``sigma`` pixels (zero padding)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    # Separable: a row pass, then a column pass.
    x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))


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


def rotate_images(images: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) turned by ``degrees`` about their centre: one angle, or one per image (the sign sets the way).

    Bilinear resampling, rounded back to uint8 grey levels like any other MNIST image.
    Runs on the images' device; per-image angles on another device are copied over.
    """
    n, device = len(images), images.device
    if isinstance(degrees, (int, float)):  # filled on the device: no copy from the host
        angle = torch.full((n,), degrees, dtype=torch.float32, device=device)
    else:
        angle = torch.as_tensor(degrees, dtype=torch.float32, device=device).expand(n)
    angle = angle * (math.pi / 180)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    x = images.float().unsqueeze(1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False).squeeze(1).round().clamp(0, 255).to(torch.uint8)
