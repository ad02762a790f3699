"""The draw-a-digit page (chapter 8): a trained network, exported for the reader's browser.

The browser side is plain JavaScript in ``_static/draw/draw.js`` (and its ``draw.css``):
the same preprocessing as :func:`mnist_lib.preprocess.to_mnist`, step for step, and a
forward pass that interprets a list of layers. This package provides everything else:

* :mod:`~mnist_lib.web.export`: any model (a network, a committee, a shipped name such as
  ``lenet5_improved``, see :func:`mnist_lib.load_model`) as JSON for the browser
  (``python -m mnist_lib export-web`` writes ``_static/draw/NAME.json``), its standardisation
  as the first layer, checked against PyTorch by a NumPy interpreter of the same layer list
  (:func:`reference_logits`);
* :mod:`~mnist_lib.web.widget`: the self-contained HTML of the page (script, style and model
  inlined), which works in Jupyter, on the built website and from ``file://``;
* :mod:`~mnist_lib.web.strokes`: a test digit turned into pen strokes and drawn like a canvas
  would (with the page's pen, :func:`pen_width`, which narrows with a small drawing), for
  measuring "drawn digits" without a human.
"""

from .export import (DEFAULT_MODEL, FORMAT, STATIC_DIR, WebModelError, decode, export_model, export_path, export_web,
                     layer_summary, max_logit_difference, member_logits, members, read_export, reference_logits)
from .strokes import (MIN_DRAWING, MIN_PEN, PAD_SIZE, PEN_SHARE, PEN_WIDTH, digit_strokes, drawing_size, pen_width,
                      render_strokes)
from .widget import static_source, widget, widget_html


__all__ = [
    "DEFAULT_MODEL", "FORMAT", "STATIC_DIR", "WebModelError", "decode", "export_model", "export_path", "export_web",
    "layer_summary", "max_logit_difference", "member_logits", "members", "read_export", "reference_logits",
    "MIN_DRAWING", "MIN_PEN", "PAD_SIZE", "PEN_SHARE", "PEN_WIDTH", "digit_strokes", "drawing_size", "pen_width",
    "render_strokes", "static_source", "widget", "widget_html",
]
