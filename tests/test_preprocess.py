"""mnist_lib.preprocess: pictures of digits made into MNIST's format; what predict accepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_lib.models import MLP
from mnist_lib.preprocess import ACCEPTED, as_image_batch, to_mnist
from mnist_lib.train import fit, predict, predict_proba, seed_everything

ACCEPTED_START = "expected images of shape (28, 28), (N, 28, 28) or (N, 1, 28, 28)"


@pytest.fixture(scope="module")
def model(mnist):
    """A small MLP trained on 2,000 images (about a second): good enough to read digits."""
    seed_everything(0)
    net = MLP((784, 64, 10), "relu")
    fit(net, mnist.train.head(2000), epochs=4, batch_size=50, lr=2e-3, device="cpu", progress=False)
    return net


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    x = image.double()
    rows, cols = torch.arange(x.shape[0], dtype=torch.float64), torch.arange(x.shape[1], dtype=torch.float64)
    return ((x.sum(1) * rows).sum() / x.sum()).item(), ((x.sum(0) * cols).sum() / x.sum()).item()


def on_paper(digit: torch.Tensor, size=(100, 80), scale: float = 2.0, at=(40, 7)) -> Image.Image:
    """An MNIST digit as dark ink, enlarged and pasted off-centre on white paper (PIL size: width, height)."""
    ink = Image.fromarray(255 - digit.numpy())
    ink = ink.resize((round(28 * scale), round(28 * scale)), Image.Resampling.BICUBIC)
    paper = Image.new("L", size, 255)
    paper.paste(ink, at)
    return paper


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.double().flatten(), b.double().flatten()]))[0, 1].item()


# ---------------------------------------------------------------------------- to_mnist


def test_an_mnist_digit_stays_itself(mnist):
    for digit in mnist.test.images[:20]:
        out = to_mnist(digit)
        assert out.dtype == torch.uint8 and out.shape == (28, 28)
        assert correlation(out, digit) > 0.99


def test_enlarged_off_centre_digit_on_white_paper(mnist, model):
    """The issue's test: still predicted correctly, centre of mass within 1 pixel of (14, 14)."""
    images, labels = mnist.test.images[:60], mnist.test.labels[:60]
    known = predict(model, images, device="cpu") == labels  # digits the model reads as they are
    papers = [on_paper(d) for d in images[known]]
    assert papers[0].size == (100, 80) and np.asarray(papers[0])[0, 0] == 255
    converted = torch.stack([to_mnist(p) for p in papers])
    for out in converted:
        row, col = centre_of_mass(out)
        assert abs(row - 14) <= 1 and abs(col - 14) <= 1, (row, col)
        assert out.max() > 200 and out[[0, -1]].sum() + out[:, [0, -1]].sum() < 255 * 4  # ink, borders (nearly) clear
    hits = predict(model, converted, device="cpu") == labels[known]
    assert hits[0] and hits.float().mean() >= 0.95, hits
    # predict takes the PIL images directly and does the same
    assert torch.equal(predict(model, papers[:5], device="cpu"), predict(model, converted[:5], device="cpu"))
    assert predict(model, papers[0], device="cpu").tolist() == [labels[known][0].item()]


@pytest.mark.parametrize("size, scale, at", [((100, 80), 2.0, (2, 2)), ((300, 300), 6.0, (100, 60)),
                                             ((40, 50), 0.7, (3, 25)), ((28, 28), 1.0, (0, 0))])
def test_any_size_fits_the_20x20_box(mnist, size, scale, at):
    out = to_mnist(on_paper(mnist.test.images[0], size, scale, at))
    rows, cols = torch.nonzero(out > 0.1 * 255, as_tuple=True)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert max(height, width) in (19, 20)  # the longer side fills the box (faint edge pixels aside)
    assert all(abs(c - 14) <= 1 for c in centre_of_mass(out))
    assert correlation(out, mnist.test.images[0]) > 0.85


def test_a_wide_digit_keeps_its_aspect_ratio():
    bar = Image.new("L", (60, 40), 255)
    bar.paste(0, (5, 18, 55, 23))  # a 50x5 stroke: 10:1
    out = to_mnist(bar)
    rows, cols = torch.nonzero(out > 25, as_tuple=True)
    assert cols.max() - cols.min() + 1 == 20
    assert 2 <= rows.max() - rows.min() + 1 <= 3


def test_grey_paper_and_grey_ink_are_stretched(mnist):
    """Background level 0 and strongest ink 255, as in MNIST, whatever the paper and pen."""
    clean = to_mnist(on_paper(mnist.test.images[1]))
    faded = Image.fromarray((np.asarray(on_paper(mnist.test.images[1]), dtype=np.float64) * 0.4 + 140).astype(np.uint8))
    out = to_mnist(faded)
    assert out.max() == 255 and out[:3].max() == 0
    assert correlation(out, clean) > 0.97


def test_light_ink_on_dark_background_is_not_inverted(mnist):
    digit = mnist.test.images[2]
    light_on_dark = Image.fromarray(255 - np.asarray(on_paper(digit)))
    assert torch.equal(to_mnist(light_on_dark), to_mnist(on_paper(digit)))


def test_rgb_converts_to_grey(mnist):
    grey = on_paper(mnist.test.images[3])
    assert torch.equal(to_mnist(grey.convert("RGB")), to_mnist(grey))
    # blue ballpoint on white: only the grey level counts
    ink = 255 - np.asarray(grey, dtype=np.float64)
    blue = np.stack([255 - ink, 255 - ink, 255 - 0.3 * ink], axis=-1).astype(np.uint8)
    assert correlation(to_mnist(Image.fromarray(blue, "RGB")), to_mnist(grey)) > 0.97


@pytest.mark.parametrize("stroke", [(0, 0, 0), (255, 255, 255), (200, 30, 30)], ids=["black", "white", "red"])
def test_rgba_strokes_on_a_transparent_canvas(mnist, stroke):
    """A web canvas: strokes of one colour, the background transparent (its colour meaningless)."""
    digit = mnist.test.images[4]
    reference = to_mnist(on_paper(digit))
    alpha = 255 - np.asarray(on_paper(digit))
    rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    rgba[..., :3] = stroke
    rgba[alpha == 0, :3] = 255 - np.array(stroke)  # invisible pixels of another colour must not count
    rgba[..., 3] = alpha
    out = to_mnist(Image.fromarray(rgba, "RGBA"))
    assert correlation(out, reference) > 0.97
    assert all(abs(c - 14) <= 1 for c in centre_of_mass(out))


def test_opaque_rgba_is_plain_rgb(mnist):
    rgb = on_paper(mnist.test.images[5]).convert("RGB")
    assert torch.equal(to_mnist(rgb.convert("RGBA")), to_mnist(rgb))
    assert torch.equal(to_mnist(rgb.convert("LA")), to_mnist(rgb))


def test_16_bit_and_float_images(tmp_path, mnist):
    paper = np.asarray(on_paper(mnist.test.images[8]), dtype=np.uint16)
    expected = to_mnist(Image.fromarray(paper.astype(np.uint8)))
    Image.fromarray(paper * 257).save(tmp_path / "deep.png")  # a 16-bit PNG
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert torch.equal(to_mnist(tmp_path / "deep.png"), expected)
    assert torch.equal(to_mnist(Image.fromarray(paper.astype(np.float32) / 255, "F")), expected)


def test_arrays_of_any_size(mnist):
    paper = on_paper(mnist.test.images[6])
    expected = to_mnist(paper)
    assert torch.equal(to_mnist(np.asarray(paper)), expected)
    assert torch.equal(to_mnist(torch.from_numpy(np.array(paper))), expected)
    assert torch.equal(to_mnist(np.asarray(paper) / 255.0), expected)
    assert torch.equal(to_mnist(np.asarray(paper.convert("RGBA"))), expected)


def test_image_files(tmp_path, mnist, model):
    paper = on_paper(mnist.test.images[7])
    for name in ("digit.png", "digit.bmp"):
        paper.save(tmp_path / name)
        assert torch.equal(to_mnist(tmp_path / name), to_mnist(paper))
        assert torch.equal(predict(model, str(tmp_path / name), device="cpu"), predict(model, paper, device="cpu"))
    paper.convert("RGB").save(tmp_path / "digit.jpg", quality=95)  # lossy: close, not equal
    assert correlation(to_mnist(tmp_path / "digit.jpg"), to_mnist(paper)) > 0.97
    proba = predict_proba(model, [tmp_path / "digit.png", paper], device="cpu")
    assert proba.shape == (2, 10)
    torch.testing.assert_close(proba[0], proba[1])


@pytest.mark.parametrize("image, message", [
    (Image.new("L", (50, 40), 255), "found no ink"),
    (Image.new("RGBA", (50, 40), (0, 0, 0, 0)), "found no ink"),
    (np.zeros((5, 5, 2), np.uint8), r"\(H, W\), \(H, W, 3\) or \(H, W, 4\) array"),
    (np.full((30, 30), 2.0), r"finite values in \[0, 1\]"),
    (np.full((30, 30), -1, np.int16), "values 0-255"),
])
def test_to_mnist_rejects(image, message):
    with pytest.raises(ValueError, match=message):
        to_mnist(image)


def test_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="no image file at") as info:
        to_mnist(tmp_path / "nowhere.png")
    assert ACCEPTED in str(info.value)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read .*notes.png.* as an image"):
        to_mnist(tmp_path / "notes.png")


# ------------------------------------------------------------ what predict accepts


@pytest.mark.parametrize("images", [
    np.arange(784).reshape(28, 28) % 256,                                  # int64 0-255 from Python ints
    torch.arange(784, dtype=torch.int32).reshape(1, 1, 28, 28) % 256,
])
def test_other_integer_types_0_255_are_pixels(images):
    x = as_image_batch(images)
    assert x.dtype == torch.uint8 and x.shape == (1, 28, 28)
    assert torch.equal(x.flatten().long(), torch.as_tensor(images).flatten().long())


BAD_INPUTS = {
    "none": (None, "got NoneType"),
    "dict": ({"image": 1}, "got dict"),
    "string-not-a-file": ("seven", "no image file at 'seven'"),
    "ragged-list": ([np.zeros((28, 28)), np.zeros((27, 28))], "got list"),
    "bool": (torch.zeros(28, 28, dtype=torch.bool), "torch.bool"),
    "complex": (torch.zeros(28, 28, dtype=torch.complex64), "torch.complex64"),
    "28x27": (torch.zeros(28, 27, dtype=torch.uint8), "got shape (28, 27)"),
    "flat": (torch.zeros(784, dtype=torch.uint8), "got shape (784,)"),
    "5d": (torch.zeros(2, 1, 28, 28, 1), "got shape (2, 1, 28, 28, 1)"),
    "rgb-channels-first": (torch.zeros(2, 3, 28, 28, dtype=torch.uint8), "colour channels"),
    "rgb-channels-last": (np.zeros((28, 28, 3), np.uint8), "colour channels"),
    "rgba-batch": (np.zeros((4, 28, 28, 4), np.uint8), "colour channels"),
    "empty": (torch.zeros(0, 28, 28, dtype=torch.uint8), "empty batch"),
    "empty-list": ([], "got shape (0,)"),
    "nan": (torch.full((28, 28), float("nan")), "finite values in [0, 1]"),
    "float-0-255": (torch.full((28, 28), 255.0), "divide 0-255 floats by 255"),
    "int-above-255": (np.full((28, 28), 300), "values 0-255, got 300 to 300"),
    "int-negative": (np.full((28, 28), -2, np.int8), "values 0-255, got -2"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_predict_rejects_with_what_is_accepted(model, name):
    bad, specific = BAD_INPUTS[name]
    for call in (predict, predict_proba):
        with pytest.raises(ValueError) as info:
            call(model, bad, device="cpu")
        assert specific in str(info.value) and ACCEPTED_START in str(info.value), str(info.value)


# ------------------------------------------- arrays: polarity, blanks, integer types, strides


def test_real_mnist_digits_are_never_inverted(mnist):
    """The polarity check (a light border means dark ink on light paper) must leave every real digit alone."""
    digits = mnist.test.images[:1000]
    assert torch.equal(as_image_batch(digits), digits)
    assert torch.equal(as_image_batch(digits.numpy()[:, None]), digits)
    torch.testing.assert_close(as_image_batch(digits.float() / 255), digits.float(), rtol=0, atol=1e-4)


def test_dark_ink_on_white_arrays_are_inverted(mnist):
    """Black on white, as an array or tensor, is read like the same digits as PIL images: white on black."""
    digits = mnist.test.images[:1000]
    assert torch.equal(as_image_batch(255 - digits), digits)
    assert torch.equal(as_image_batch((255 - digits).numpy()), digits)
    torch.testing.assert_close(as_image_batch(1 - digits.double().numpy() / 255), digits.float(), rtol=0, atol=1e-4)
    mixed = torch.stack([digits[0], 255 - digits[1]])  # each image of a batch is checked by itself
    assert torch.equal(as_image_batch(mixed), digits[:2])


@pytest.mark.parametrize("blank", [np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8),
                                   torch.ones(3, 1, 28, 28), np.full((28, 28), 0.4)],
                         ids=["black", "white", "white-float-batch", "grey-float"])
def test_blank_arrays_have_no_ink(blank):
    """As PIL blanks do: a single grey level is no digit."""
    with pytest.raises(ValueError, match="found no ink"):
        as_image_batch(blank)


def test_a_blank_image_in_a_batch_is_named(mnist):
    batch = mnist.test.images[:4].clone()
    batch[2] = 0
    with pytest.raises(ValueError, match="found no ink.*image 2 of the batch"):
        as_image_batch(batch)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64, np.int16, np.int32])
def test_any_integer_type_holding_0_255(mnist, dtype):
    digits = mnist.test.images[:3]
    assert torch.equal(as_image_batch(digits.numpy().astype(dtype)), digits)
    assert torch.equal(as_image_batch(torch.from_numpy(digits.numpy().astype(dtype))), digits)


@pytest.mark.parametrize("value", [256, 65535, 2**63 + 5])
def test_wide_integers_above_255_are_refused(value):
    image = np.zeros((28, 28), np.uint64 if value > 2**32 else np.uint32)
    image[5, 5] = value
    for images in (image, torch.from_numpy(image)):
        with pytest.raises(ValueError, match=f"values 0-255, got 0 to {value}"):
            as_image_batch(images)


def test_flipped_views_are_accepted(mnist):
    """np.fliplr gives negative strides, which torch cannot share: a copy is taken."""
    digit = mnist.test.images[0]
    assert torch.equal(as_image_batch(np.fliplr(digit.numpy())), digit.flip(1)[None])
    assert torch.equal(as_image_batch(mnist.test.images[:3].numpy()[::-1]), mnist.test.images[:3].flip(0))


def test_huge_image_files_are_refused_clearly(tmp_path, monkeypatch):
    """PIL's guard against decompression bombs, as one ValueError (a small limit stands in for 15000x15000)."""
    Image.new("L", (300, 300), 255).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ValueError, match=r"huge\.png.*too large.*scale it down"):
        to_mnist(tmp_path / "huge.png")


def test_float_images_with_nan_are_refused_clearly():
    values = np.full((40, 40), 0.8, np.float32)
    values[10:30, 18:22] = 0.1
    values[3, 3] = np.nan
    with pytest.raises(ValueError, match=r"float images must hold finite values, got NaN"):
        to_mnist(Image.fromarray(values, "F"))


# ------------------------------------------------------- photos: uneven lighting


def shadowed(digit: torch.Tensor, darkest: float, angle: float, size: int = 240, scale: int = 6) -> Image.Image:
    """A real MNIST digit printed large (dark ink on white paper), photographed in a shadow.

    The lighting falls linearly across the picture, in direction ``angle`` (radians), from 1
    to ``darkest``; what the camera sees is the lighting times the paper's (or ink's) reflectance.
    """
    ink = Image.fromarray(digit.numpy()).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    amount = np.zeros((size, size))
    at = (size - 28 * scale) // 2
    amount[at:at + 28 * scale, at:at + 28 * scale] = np.asarray(ink) / 255
    reflectance = 0.9 - 0.75 * amount
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    lighting = 1 - (1 - darkest) * (ramp - ramp.min()) / (ramp.max() - ramp.min())
    return Image.fromarray(np.rint(255 * reflectance * lighting).astype(np.uint8))


@pytest.fixture(scope="module")
def shipped():
    from mnist_lib import load_model

    return load_model("lenet5_improved")


def test_a_shadow_across_the_paper_is_not_ink(mnist, shipped):
    """50 digits under a shadow that darkens the paper to 40%: read as well as without it, and seen alike."""
    digits, labels = mnist.test.images[:50], mnist.test.labels[:50]
    converted, hits = {}, {}
    for darkest in (1.0, 0.4):
        converted[darkest] = torch.stack([to_mnist(shadowed(d, darkest, angle=i)) for i, d in enumerate(digits)])
        hits[darkest] = (predict(shipped, converted[darkest], device="cpu") == labels).float().mean().item()
    assert hits[1.0] >= 0.9
    assert hits[0.4] >= hits[1.0] - 0.04, hits
    likeness = [correlation(a, b) for a, b in zip(converted[0.4], converted[1.0])]
    assert np.mean(likeness) > 0.95, likeness
