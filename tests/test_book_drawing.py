"""mnist_lib.book.drawing: test digits redrawn on the draw page's pad (chapter 8), on three digits."""

from __future__ import annotations

import pytest
import torch

from mnist_lib.book.drawing import random_placement, redraw, shrink, draw
from mnist_lib.web import PAD_SIZE


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.test.images[:3]


@pytest.fixture(scope="module")
def drawn(digits):
    return redraw(digits, seed=0)


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    w = images.float()
    grid = torch.arange(28, dtype=torch.float32)
    return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2))[:, None]


def test_both_readings_are_uint8_digits(drawn, digits):
    for images in (drawn.redrawn, drawn.shrunk):
        assert images.shape == (3, 28, 28) and images.dtype == torch.uint8
    assert (drawn.redrawn.flatten(1).amax(1) > 200).all()  # ink on every redrawn digit
    # to_mnist centres by the centre of mass, as MNIST did; the shrunk pad has the digit wherever it was drawn.
    assert (centre_of_mass(drawn.redrawn) - 13.5).abs().max() < 1.5
    assert len(drawn.placements) == 3


def test_placements_fit_the_pad_and_follow_the_seed(drawn, digits):
    for scale, (x, y) in drawn.placements:
        assert 5 <= scale <= 9
        assert 0 <= x and 0 <= y and max(x, y) + 28 * scale <= PAD_SIZE
    assert redraw(digits[:1], seed=0).placements == drawn.placements[:1]
    assert redraw(digits[:1], seed=1).placements != drawn.placements[:1]
    first = random_placement(torch.Generator().manual_seed(0))
    assert first == drawn.placements[0]


def test_pad_is_the_drawing_white_on_black(drawn, digits):
    pad = drawn.pad(digits, 0)
    assert pad.shape == (PAD_SIZE, PAD_SIZE) and pad.dtype == torch.uint8
    assert pad[0, 0] == 0 and pad.max() == 255
    assert torch.equal(shrink(draw(digits[0], *drawn.placements[0])), drawn.shrunk[0])


def test_rejects_what_is_not_a_batch_of_uint8_digits(digits):
    with pytest.raises(ValueError, match=r"uint8 images \(N, 28, 28\)"):
        redraw(digits.float() / 255)
    with pytest.raises(ValueError, match=r"uint8 images \(N, 28, 28\)"):
        redraw(digits[0])
