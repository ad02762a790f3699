"""Turning images from outside MNIST into MNIST's format.

MNIST's digits were size-normalised to fit a 20x20 box (keeping their aspect ratio,
with anti-aliasing) and centred by their centre of mass in a 28x28 field, white ink on
black. :func:`to_mnist` does the same to any picture of one digit: a photo, a scan, a
PNG, or a digit drawn on a web canvas (chapter 8 reuses it for exactly that).
:func:`as_image_batch` is the gate in front of ``predict``: it accepts what a user is
likely to have and rejects everything else with one :class:`ValueError` that says what
is accepted.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 28  # the field
BOX = 20  # the digit is scaled to fit this box, as in MNIST
INK_THRESHOLD = 0.1  # share of the strongest ink below which a pixel does not count for the bounding box
LIGHTING_GRID = 64  # the lighting of a photo is estimated on a copy about this many pixels a side
LIGHTING_WINDOW = 0.3  # ... through a window this share of the copy's shorter side: wider than strokes, not shadows
EVEN = 2.0  # grey levels: a background that varies less than this is evenly lit (one level, MNIST's way)
NO_INK = "found no ink: {what} is a single grey level, so there is no digit to read"

ACCEPTED = (
    "expected images of shape (28, 28), (N, 28, 28) or (N, 1, 28, 28) with N >= 1, holding integer "
    "(e.g. uint8) values 0-255 or float values in [0, 1] (NumPy arrays or torch tensors), or a PIL image or the "
    "path of an image file, of any size (converted with mnist_lib.preprocess.to_mnist)"
)


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise ValueError(f"no image file at {str(path)!r}; {ACCEPTED}") from None
    except Image.DecompressionBombError as e:  # PIL's guard against files that decode to gigabytes
        raise ValueError(f"cannot read {str(path)!r}: the image is too large ({e}); scale it down first "
                         "(a few hundred pixels a side is plenty for one digit)") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read {str(path)!r} as an image ({e}); {ACCEPTED}") from None


def _from_array(array) -> Image.Image:
    """An (H, W), (H, W, 3) or (H, W, 4) array, uint8 0-255 or float 0-1, as a PIL image."""
    a = array.numpy(force=True) if isinstance(array, torch.Tensor) else np.asarray(array)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or a.size == 0:
        raise ValueError(f"to_mnist takes an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError("float images must hold finite values in [0, 1]")
        a = np.rint(a * 255)
    elif a.dtype.kind not in "ui" or a.min() < 0 or a.max() > 255:
        raise ValueError(f"integer images must hold values 0-255 (got {a.dtype})")
    return Image.fromarray(a.astype(np.uint8))


def _greyscale(image: Image.Image) -> np.ndarray:
    """The image as float grey levels (H, W); transparency is painted onto a contrasting background."""
    image = ImageOps.exif_transpose(image)  # photos store their rotation in EXIF
    if image.mode.startswith(("I", "F")):  # 16-bit or float grey: PIL's convert("L") would clip it
        a = np.asarray(image, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("float images must hold finite values, got NaN or infinite values")
        top = 1.0 if a.max() <= 1 else 255.0 if a.max() <= 255 else 65535.0
        return (np.clip(a, 0, top) * (255 / top)).astype(np.float32)
    if image.mode in ("P", "PA"):  # a palette may carry transparency
        image = image.convert("RGBA")
    if "A" in image.getbands():
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
        if alpha.min() < 255:
            # Drawn strokes on a transparent canvas: whatever their colour, paint them on the
            # opposite background (dark strokes on white, light strokes on black).
            grey = np.asarray(rgba.convert("L"), dtype=np.float64)
            dark_ink = (grey * alpha).sum() < 127.5 * max(alpha.sum(), 1.0)
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if dark_ink else (0, 0, 0, 255))
            image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


def _border_median(images: torch.Tensor) -> torch.Tensor:
    """The median of each image's border pixels (N,), for images (N, H, W): the level of its background."""
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1).float().sort(1).values
    middle = border.shape[1] // 2  # the border has 2H + 2W pixels, an even number: average the middle two
    return (border[:, middle - 1] + border[:, middle]) / 2


def _local_background(grey: np.ndarray) -> np.ndarray | None:
    """The background's level at each pixel of ``grey`` (ink lighter than its background), or None if it is even.

    Paper in a photo is lit unevenly (a shadow, a gradient), and one level for the whole
    picture would turn its darker parts into ink. A morphological opening (a minimum, then
    a maximum filter) wider than the strokes removes the ink and keeps the lighting. It
    runs on a small copy of the picture and is scaled back up. The maximum filter sees the
    minima extended past the edges by point reflection, so that a gradient goes on as it
    was: the opening of a linear gradient is the gradient itself, up to the edges.
    """
    h, w = grey.shape
    if min(h, w) < 2 * SIZE:  # MNIST-sized pictures hold a digit, not a shadow
        return None
    scale = min(1.0, LIGHTING_GRID / max(h, w))
    small = F.interpolate(torch.from_numpy(grey).double()[None, None], mode="area",
                          size=(max(1, round(h * scale)), max(1, round(w * scale))))
    r = round(LIGHTING_WINDOW * min(small.shape[-2:]) / 2)
    if r < 2:  # a thin strip: no room to tell lighting from ink
        return None

    def extend(x: torch.Tensor) -> torch.Tensor:
        return 2 * F.pad(x, (r,) * 4, mode="replicate") - F.pad(x, (r,) * 4, mode="reflect")

    darkest = -F.max_pool2d(-small, 2 * r + 1, stride=1, padding=r)  # windows cut at the edges: no mirrored ink
    background = F.max_pool2d(extend(darkest), 2 * r + 1, stride=1)
    if background.max() - background.min() < EVEN:
        return None
    return F.interpolate(background, size=(h, w), mode="bilinear", align_corners=False)[0, 0].float().numpy()


def to_mnist(image: Image.Image | str | os.PathLike | np.ndarray | torch.Tensor) -> torch.Tensor:
    """One picture of a digit, any size, as MNIST would have it: uint8 (28, 28), white on black.

    ``image`` is a PIL image (any mode: colour becomes grey, transparency is used as
    the strokes' mask), the path of an image file, or an (H, W), (H, W, 3) or (H, W, 4)
    array (uint8 0-255 or float 0-1). The steps are MNIST's own:

    1. invert if the background (the median of the border pixels) is light;
    2. set the background level to 0 and the strongest ink to 255 (where the lighting is
       uneven, as in a photo with a shadow, the background's level is measured locally);
    3. crop to the ink's bounding box;
    4. scale to fit 20x20, keeping the aspect ratio, with anti-aliasing (Lanczos);
    5. paste into 28x28 so that the centre of mass lands on pixel (14, 14).

    Raises ``ValueError`` if the image cannot be read or holds no ink.
    """
    if isinstance(image, (str, os.PathLike)):
        image = _open(image)
    elif not isinstance(image, Image.Image):
        image = _from_array(image)
    grey = _greyscale(image)

    background = _border_median(torch.from_numpy(grey)[None]).item()
    paper = background > 127.5  # dark ink on light paper
    if paper:
        grey, background = 255 - grey, 255 - background
    local = _local_background(grey)
    if local is None:
        ink = np.clip(grey - background, 0, None)
    else:
        ink = np.clip(grey - local, 0, None)
        if paper:  # a camera sees lighting x reflectance: ink is the share of the paper's light that it takes away
            ink *= 255 / np.maximum(255 - local, 1)
    strongest = float(ink.max())
    if strongest < 1:
        raise ValueError(NO_INK.format(what="the image"))
    ink *= 255 / strongest

    rows, cols = np.nonzero(ink > INK_THRESHOLD * 255)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL sizes are (width, height)
    small = Image.fromarray(np.rint(crop).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    digit = np.asarray(small, dtype=np.float64)

    # Integer shift that puts the centre of mass on (14, 14), clamped so no ink is cut off.
    mass = digit.sum() or 1.0
    com_row = (digit.sum(1) * np.arange(digit.shape[0])).sum() / mass
    com_col = (digit.sum(0) * np.arange(digit.shape[1])).sum() / mass
    top = min(max(round(SIZE / 2 - com_row), 0), SIZE - digit.shape[0])
    left = min(max(round(SIZE / 2 - com_col), 0), SIZE - digit.shape[1])
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    out[top : top + digit.shape[0], left : left + digit.shape[1]] = np.asarray(small)
    return torch.from_numpy(out)


def _is_picture(obj) -> bool:
    return isinstance(obj, (Image.Image, str, os.PathLike))


def as_image_batch(images) -> torch.Tensor:
    """Check and convert what ``predict`` was given into a batch (N, 28, 28) on the 0-255 scale.

    Accepts a 28x28 image or a batch (N, 28, 28) / (N, 1, 28, 28), as a NumPy array or
    torch tensor of uint8 0-255 (any integer type in that range) or floats in [0, 1];
    or a PIL image, an image file's path, or a list of either, of any size (each goes
    through :func:`to_mnist`). Returns uint8 for integer input, else float32 scaled by 255.
    As :func:`to_mnist` does, an image whose background (its border) is light is dark
    ink on white paper and is inverted, and an image of a single grey level has no ink.
    Anything else raises ``ValueError`` naming what is accepted.
    """
    if _is_picture(images):
        return to_mnist(images)[None]
    if isinstance(images, (list, tuple)) and images and all(_is_picture(i) for i in images):
        return torch.stack([to_mnist(i) for i in images])
    try:
        if isinstance(images, torch.Tensor):
            x = images
        else:
            array = np.asarray(images)
            if not array.flags.writeable or min(array.strides, default=0) < 0:
                array = array.copy()  # torch shares only writeable memory with positive strides (np.fliplr has not)
            x = torch.from_numpy(array)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"got {type(images).__name__} {_short(images)}; {ACCEPTED}") from None
    shape = tuple(x.shape)
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"got {x.dtype} values; {ACCEPTED}")
    channels_first = x.ndim == 4 and x.shape[1] in (3, 4)
    channels_last = x.ndim in (3, 4) and x.shape[-1] in (3, 4) and x.shape[-3:-1] == (28, 28)
    if channels_first or channels_last:
        raise ValueError(
            f"got shape {shape}: colour channels, which this grey-scale model cannot read as they are; "
            f"convert to grey first (for a PIL image: image.convert('L'), or pass the PIL image itself); {ACCEPTED}"
        )
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"got shape {shape}; {ACCEPTED}")
    if len(x) == 0:
        raise ValueError(f"got an empty batch, shape {shape}; {ACCEPTED}")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ValueError(f"float images must hold finite values in [0, 1], got NaN or infinite values; {ACCEPTED}")
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"float images must hold finite values in [0, 1], got {x.min().item():g} to "
                             f"{x.max().item():g} (divide 0-255 floats by 255); {ACCEPTED}")
        return _white_on_black(x.float() * 255)
    if x.dtype in (torch.uint16, torch.uint32, torch.uint64):  # torch stores these but cannot compute with them
        values = x.numpy(force=True)
        low, high = int(values.min()), int(values.max())
    else:
        low, high = x.min().item(), x.max().item()
    if low < 0 or high > 255:
        raise ValueError(f"integer images must hold values 0-255, got {low} to {high}; {ACCEPTED}")
    return _white_on_black(x.to(torch.uint8))


def _white_on_black(x: torch.Tensor) -> torch.Tensor:
    """Images (N, 28, 28) on the 0-255 scale as MNIST has them: each one with a light background is inverted.

    The border decides, as in :func:`to_mnist`: MNIST centres its digits in a 20x20 box,
    so the border of a real digit is black.
    """
    flat = torch.nonzero(x.flatten(1).amax(1).float() - x.flatten(1).amin(1).float() < 1).flatten().tolist()
    if flat:
        what = "the image" if len(x) == 1 else f"image {flat[0]} of the batch (of {len(x)})"
        raise ValueError(NO_INK.format(what=what) + f"; {ACCEPTED}")
    light = _border_median(x) > 127.5
    return torch.where(light[:, None, None], 255 - x, x) if light.any() else x


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 40 else text[:37] + "..."

