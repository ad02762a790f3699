"""Drawing digits without a human: a test digit as pen strokes, rendered like the page's canvas.

The drawing pad's size and pen are defined here and read by ``draw.js`` from the exported
model's ``"pad"`` entry, so Python and the page cannot disagree. The pen is a share of the
drawing's size (the larger side of its strokes' bounding box): a fixed pen would make a
small drawing a blob once :func:`~mnist_lib.preprocess.to_mnist` scales it to 20x20.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

PAD_SIZE = 280  # the drawing pad in canvas pixels: 10x MNIST's 28
PEN_WIDTH = 20  # the widest pen, for a drawing of 240 pixels (the 20x20 box, 12 pad pixels a digit pixel) or more
PEN_SHARE = PEN_WIDTH / 240
MIN_PEN = 3
MIN_DRAWING = 0.15  # share of the pad: a drawing smaller than this (a click, a short dash) is no digit yet

def digit_strokes(image: np.ndarray | torch.Tensor, scale: float | tuple[float, float] = 10.0, offset=(0.0, 0.0),
                  threshold: int = 128, step: float = 0.5) -> list[list[tuple[float, float]]]:
    """Pen strokes that trace a 28x28 digit's ink: one horizontal stroke per run of ink pixels in a row.

    Coordinates are (x, y) in pad pixels: pixel (row, col) of the digit is centred at
    ``offset + scale * (col + 0.5, row + 0.5)``; ``scale`` is one number or (x, y) scales.
    A pen about twice the vertical scale wide fills the rows between strokes, so the
    drawing is the digit's ink, enlarged. Along a stroke, points are ``step`` digit
    pixels apart (at most), like the positions a moving pointer reports.
    """
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    a = np.asarray(image) >= threshold
    strokes = []
    for row in range(a.shape[0]):
        cols = np.flatnonzero(a[row])
        if not len(cols):
            continue
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1):
            y = offset[1] + sy * (row + 0.5)
            x0, x1 = offset[0] + sx * (run[0] + 0.5), offset[0] + sx * (run[-1] + 0.5)
            n = max(2, int(math.ceil((run[-1] - run[0]) / step)) + 1)
            strokes.append([(x0 + (x1 - x0) * i / (n - 1), y) for i in range(n)])
    return strokes


def drawing_size(strokes) -> float:
    """The larger side of the bounding box of the strokes' points, in pad pixels (0 for a click)."""
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return max(max(xs) - min(xs), max(ys) - min(ys)) if xs else 0.0


def pen_width(strokes) -> float:
    """The page's pen for these strokes: a share of the drawing's size, between MIN_PEN and PEN_WIDTH (as draw.js)."""
    return min(max(PEN_SHARE * drawing_size(strokes), MIN_PEN), PEN_WIDTH)


def render_strokes(strokes, size: int = PAD_SIZE, pen: float | None = None, supersample: int = 4) -> Image.Image:
    """Strokes drawn with a round pen, dark on white, anti-aliased: what the page's canvas holds (``RGB``).

    The pen is the page's (:func:`pen_width`) unless ``pen`` gives another width.
    """
    pen = pen_width(strokes) if pen is None else pen
    big = Image.new("L", (size * supersample, size * supersample), 255)
    draw = ImageDraw.Draw(big)
    w, r = pen * supersample, pen * supersample / 2
    for stroke in strokes:
        points = [(x * supersample, y * supersample) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=0, width=round(w), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return big.resize((size, size), Image.Resampling.BOX).convert("RGB")
