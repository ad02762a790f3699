"""mnist_lib.web without a browser: sidecars that are checked before use, and the HTML of the widget."""

from __future__ import annotations

import json
import re

import pytest
import torch

from mnist_lib import load_model, predict, web
from mnist_lib.__main__ import main
from mnist_lib.saved import ModelError
from mnist_lib.models import LeNet5

MEMBER = {"architecture": {"class": "LeNet5", "kwargs": {"act": "relu"}}, "weights": "m.pt"}
GOOD = {"name": "m", "members": [MEMBER]}


def one(**changes) -> dict:
    """GOOD with its member changed (a value of None removes the entry)."""
    member = {k: v for k, v in (MEMBER | changes).items() if v is not None}
    return GOOD | {"members": [member]}


@pytest.fixture
def folder(tmp_path):
    """A folder with the weights of a small LeNet-5, ``m.pt``, for hand-written sidecars."""
    torch.manual_seed(0)
    torch.save(LeNet5("relu").state_dict(), tmp_path / "m.pt")
    return tmp_path


def write(folder, sidecar) -> str:
    path = folder / "m.json"
    path.write_text(json.dumps(sidecar))
    return str(path)


# The sidecar's mistakes: each must be named (its key) with what was expected.
BAD_SIDECARS = {
    "not-an-object": ([1, 2], "expected a JSON object"),
    "kwargs-unknown": (one(architecture={"class": "LeNet5", "kwargs": {"bogus": 1}}), r"'kwargs'.*LeNet5.*bogus"),
    "kwargs-value": (one(architecture={"class": "LeNet5", "kwargs": {"act": "nope"}}),
                     r"'kwargs'.*LeNet5.*unknown activation 'nope'"),
    "kwargs-list": (one(architecture={"class": "LeNet5", "kwargs": [1]}),
                    r"'members\[0\]\.architecture\.kwargs'.*expected an object"),
    "architecture-string": (one(architecture="LeNet5"), r"'members\[0\]\.architecture'.*expected an object"),
    "class-missing": (one(architecture={"kwargs": {}}), r"'members\[0\]\.architecture\.class'.*missing; expected the name"),
    "weights-number": (one(weights=5), r"'members\[0\]\.weights'.*expected the name of a \.pt file"),
    "weights-missing": (one(weights=None), r"'members\[0\]\.weights'.*missing"),
    "sha-number": (one(weights_sha256=5), r"'members\[0\]\.weights_sha256'.*64 hexadecimal digits"),
    "members-missing": ({"name": "m"}, r"'members'.*missing"),
    "members-object": ({"members": {"a": 1}}, r"'members'.*expected a non-empty list"),
    "members-of-strings": ({"members": ["m.pt"]}, r"'members\[0\]'.*expected an object"),
    "title-number": (GOOD | {"title": 5}, r"'title'.*expected a string"),
    "test-acc-string": (GOOD | {"test_acc": "99%"}, r"'test_acc'.*expected a number"),
}


@pytest.mark.parametrize("name", BAD_SIDECARS)
def test_bad_sidecars_are_named_in_one_clear_error(folder, name):
    sidecar, message = BAD_SIDECARS[name]
    path = write(folder, sidecar)
    with pytest.raises(ModelError, match=message) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("name", ["kwargs-unknown", "weights-number", "members-missing", "not-an-object"])
def test_export_web_with_a_bad_sidecar_says_what_is_wrong(folder, name, capsys):
    sidecar, message = BAD_SIDECARS[name]
    assert main(["export-web", write(folder, sidecar), "--out", str(folder / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err), err
    assert not (folder / "out.json").exists()


def test_a_good_sidecar_still_loads(folder):
    model = load_model(write(folder, GOOD | {"title": "a small LeNet-5", "test_acc": None}))
    assert isinstance(model, LeNet5) and not model.training


# ------------------------------------------------------------ the widget's HTML


HOSTILE_TITLE = 'LeNet <!--<script> </script><b>"bold"</b> & co'


def inlined_model(page: str) -> str:
    """The text of the widget's <script type="application/json"> element, as an HTML parser would cut it."""
    start = page.index('<script type="application/json" class="mnist-draw-model">')
    start = page.index(">", start) + 1
    return page[start:page.index("</script>", start)]


def test_inlined_model_cannot_end_its_script_element(folder):
    spec = web.export_model(write(folder, GOOD | {"title": HOSTILE_TITLE}))
    page = web.widget_html(spec=spec)
    text = inlined_model(page)
    assert "<" not in text  # no "</script>", no "<!--" (which would change how the element ends)
    assert json.loads(text) == spec  # and the JSON is unchanged by the escaping
    assert 'aria-label="LeNet &lt;!--&lt;script&gt;' in page


# ------------------------------------------------------------ the pen


def centred_strokes(image, scale: float):
    """A test digit traced as strokes (``web.digit_strokes``), its ink centred on the pad."""
    rows, cols = torch.nonzero(image >= 128, as_tuple=True)
    centre = ((cols.min() + cols.max() + 1).item() / 2, (rows.min() + rows.max() + 1).item() / 2)
    return web.digit_strokes(image, scale, tuple(web.PAD_SIZE / 2 - scale * c for c in centre), step=2)


def test_the_pen_is_a_share_of_the_drawing():
    assert web.pen_width([[(10.0, 10.0)]]) == web.MIN_PEN  # a click
    assert web.pen_width([[(20.0, 20.0), (260.0, 40.0)]]) == web.PEN_WIDTH  # as wide as the pad's 20x20 box
    assert web.pen_width([[(100.0, 100.0), (100.0, 160.0)], [(90.0, 120.0)]]) == pytest.approx(60 * web.PEN_SHARE)
    pad = web.export_model(web.DEFAULT_MODEL)["pad"]  # what draw.js reads
    assert pad == {"size": web.PAD_SIZE, "pen": web.PEN_WIDTH, "pen_share": web.PEN_SHARE, "min_pen": web.MIN_PEN,
                   "min_drawing": web.MIN_DRAWING}


def test_small_drawings_are_read_with_the_pages_pen(mnist):
    """Digits drawn a sixth of the pad's size: a fixed 20-pixel pen makes blobs (mostly read as 8); the page's pen not."""
    from mnist_lib.preprocess import to_mnist

    model = load_model(web.DEFAULT_MODEL)
    images, labels = mnist.test.images[:40], mnist.test.labels[:40]
    drawn = [centred_strokes(image, 2.5) for image in images]
    read = {}
    for pen in (None, web.PEN_WIDTH):
        converted = torch.stack([to_mnist(web.render_strokes(strokes, pen=pen)) for strokes in drawn])
        read[pen] = (predict(model, converted, device="cpu") == labels).float().mean().item()
    assert read[None] >= 0.9 and read[None] > read[web.PEN_WIDTH] + 0.2, read


def test_read_export_refuses_damaged_files(folder):
    (folder / "export.json").write_text("[1, 2]")
    with pytest.raises(web.WebModelError, match="expected format 'mnist_lib web model 2', found 'list'"):
        web.read_export(web.DEFAULT_MODEL, folder / "export.json")
    (folder / "export.json").write_text(json.dumps({"format": web.FORMAT}))
    write(folder, one(weights_sha256=7))
    with pytest.raises(ModelError, match=r"'members\[0\]\.weights_sha256'"):
        web.read_export(str(folder / "m.json"), folder / "export.json")
