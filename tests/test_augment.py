"""Device-side augmentation: random affine distortions and integer shifts."""

import torch

from mnist_lib.augment import RandomAffine, shift_images
from mnist_lib.data import normalize


def test_identity_affine_leaves_images_unchanged(mnist):
    x = normalize(mnist.test.images[:8])
    out = RandomAffine(degrees=0, scale=0, shift=0)(x)
    assert torch.allclose(out, x, atol=1e-5)


def test_random_affine_keeps_background_and_moves_ink(mnist):
    torch.manual_seed(0)
    x = normalize(mnist.test.images[:64])
    out = RandomAffine(degrees=15, scale=0.1, shift=3)(x)
    assert out.shape == x.shape
    background = x.min()
    # the corners stay background, though the digits moved
    assert torch.allclose(out[:, :, 0, 0], background.expand(64, 1), atol=1e-5)
    assert not torch.allclose(out, x, atol=1e-2)


def test_random_affine_is_reproducible_under_a_seed(mnist):
    x = normalize(mnist.test.images[:8])
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
