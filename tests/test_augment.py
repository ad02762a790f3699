"""Device-side augmentation: random affine distortions, integer shifts and rotations."""

import math

import numpy as np
import torch

from mnist_lib.augment import RandomAffine, rotate_images, shift_images
from mnist_lib.data import scale_pixels


def test_identity_affine_leaves_images_unchanged(mnist):
    x = scale_pixels(mnist.test.images[:8])
    out = RandomAffine(degrees=0, scale=0, shift=0)(x)
    assert torch.allclose(out, x, atol=1e-5)


def test_random_affine_keeps_background_and_moves_ink(mnist):
    torch.manual_seed(0)
    x = scale_pixels(mnist.test.images[:64])
    out = RandomAffine(degrees=15, scale=0.1, shift=3)(x)
    assert out.shape == x.shape
    background = x.min()
    # the corners stay background, though the digits moved
    assert torch.allclose(out[:, :, 0, 0], background.expand(64, 1), atol=1e-5)
    assert not torch.allclose(out, x, atol=1e-2)


def test_random_affine_is_reproducible_under_a_seed(mnist):
    x = scale_pixels(mnist.test.images[:8])
    aug = RandomAffine(degrees=10, shift=2)
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    assert torch.equal(a, aug(x))


def test_shift_images_moves_pixels_by_whole_pixels():
    images = torch.zeros(1, 28, 28, dtype=torch.uint8)
    images[0, 10, 12] = 255
    moved = shift_images(images, dx=3, dy=-2)
    assert moved[0, 8, 15] == 255 and moved.sum() == 255
    assert shift_images(images, dx=30, dy=0).sum() == 0  # shifted out entirely
    assert torch.equal(shift_images(images, 0, 0), images)


def rotate_by_hand(image: np.ndarray, degrees: float) -> np.ndarray:
    """A square image turned about its centre, written out pixel by pixel in float64.

    Each output pixel reads the input at its own position turned by ``degrees`` (x to the
    right, y down), interpolating bilinearly between the four nearest pixels, with 0
    outside the frame.
    """
    size = image.shape[0]
    centre, a = (size - 1) / 2, math.radians(degrees)
    rows, cols = np.mgrid[0:size, 0:size] - centre
    src_x, src_y = centre + math.cos(a) * cols - math.sin(a) * rows, centre + math.sin(a) * cols + math.cos(a) * rows
    out = np.zeros((size, size))
    for x in (np.floor(src_x), np.floor(src_x) + 1):
        for y in (np.floor(src_y), np.floor(src_y) + 1):
            inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            pixel = image[y.clip(0, size - 1).astype(int), x.clip(0, size - 1).astype(int)]
            out += np.where(inside, (1 - abs(src_x - x)) * (1 - abs(src_y - y)) * pixel, 0)
    return out


def test_rotate_images_matches_a_rotation_written_out_by_hand(mnist):
    images = mnist.test.images[:6]
    angles = [5.0, -5.0, 17.5, 90, -33.3, 180]
    for turned in (torch.stack([rotate_images(images[i:i + 1], a)[0] for i, a in enumerate(angles)]),
                   rotate_images(images, torch.tensor(angles))):  # one angle each, or all at once
        for image, out, a in zip(images.numpy().astype(float), turned.numpy().astype(int), angles):
            expected = rotate_by_hand(image, a).round().clip(0, 255)
            off = np.abs(out - expected)
            assert off.max() <= 1 and (off > 0).mean() < 0.01, a  # float32 vs float64 at the .5 boundaries
