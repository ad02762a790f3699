"""The draw-a-digit page (chapter 8) in a real browser: headless Chromium on the built website.

What is checked, on the page as the reader gets it (the JavaScript and the model inlined
in the chapter's output, ``_static/draw/draw.js`` loaded by the theme):

* the page's own forward pass gives PyTorch's logits on 200 test images (within 1e-4);
* ten test digits (the first of each class), traced as strokes and drawn with real
  pointer events, are read back from the page: at least 9 must be right;
* for each drawing, the page's 28x28 input equals ``to_mnist`` of the canvas image, and
  its probabilities are PyTorch's for that input;
* an empty pad shows no prediction, Clear empties it, a finger (touch) draws too, and the
  page works opened from ``file://``;
* a click or a short dash shows "no digit yet"; the ten digits drawn a sixth of the pad's
  size are read too (the pen narrows with the drawing);
* the widget's text has a contrast of at least 4.5:1 in the light and the dark theme, and
  a model title holding ``<!--<script>`` cannot stop the widget from mounting.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_lib import load_model, predict_proba, web
from mnist_lib.data import load_mnist
from mnist_lib.preprocess import to_mnist

from .conftest import BOOK_HTML, SCREENSHOTS, console_errors, draw_pages, missing, open_page, screenshot

N_LOGITS = 200
LOGIT_TOLERANCE = 1e-4
DIGITS_NEEDED = 9  # of 10 drawn digits
PIXEL_TOLERANCE = 2  # grey levels between the page's 28x28 input and to_mnist of its canvas


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def model():
    return load_model(web.DEFAULT_MODEL)


@pytest.fixture(scope="module")
def draw_page() -> str:
    pages = draw_pages()
    if not pages:
        missing(f"no page of the built book at {BOOK_HTML} holds the draw-a-digit widget "
                "(is chapter 8 in _toc.yml and executed?)")
    return pages[0].relative_to(BOOK_HTML).as_posix()


def wait_ready(driver, timeout: float = 20):
    """The widget's element, once draw.js has mounted it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '.mnist-draw[data-ready="true"]'))


@pytest.fixture(scope="module")
def page(driver, site, draw_page):
    """The draw page, loaded; the console is drained so each test sees only its own errors."""
    open_page(driver, site + draw_page)
    host = wait_ready(driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", host)
    errors = console_errors(driver)
    assert not errors, f"console errors while loading {draw_page}: {errors}"
    return host


def state(driver, host) -> dict:
    return driver.execute_script(
        "const host = arguments[0], s = host.mnistDraw;"
        "return {prediction: host.getAttribute('data-prediction'),"
        "        input: s.input ? Array.from(s.input) : null, probabilities: s.probabilities,"
        "        png: s.pad.toDataURL('image/png'),"
        "        bars: Array.from(host.querySelectorAll('.mnist-draw-bar-fill')).map(b => b.style.width),"
        "        seen: Array.from(host.querySelector('.mnist-draw-seen').getContext('2d')"
        "                .getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 === 0))};",
        host)


def clear(driver, host) -> None:
    from selenium.webdriver.common.by import By

    host.find_element(By.CSS_SELECTOR, ".mnist-draw-clear").click()


def draw(driver, host, strokes, pointer: str = "mouse") -> None:
    """Drag a pointer (mouse or touch) along each stroke on the pad: real input events, one perform()."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.interaction import POINTER_MOUSE, POINTER_TOUCH
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    pad = host.find_element(By.CSS_SELECTOR, ".mnist-draw-pad")
    g = driver.execute_script(
        "const p = arguments[0], r = p.getBoundingClientRect();"
        "return {w: r.width, h: r.height, left: p.clientLeft, top: p.clientTop,"
        "        cw: p.clientWidth, ch: p.clientHeight, size: p.width};", pad)

    def offset(x: float, y: float) -> tuple[int, int]:  # WebDriver's element origin is the element's centre
        return (round(g["left"] + x * g["cw"] / g["size"] - g["w"] / 2),
                round(g["top"] + y * g["ch"] / g["size"] - g["h"] / 2))

    kind = POINTER_TOUCH if pointer == "touch" else POINTER_MOUSE
    actions = ActionBuilder(driver, mouse=PointerInput(kind, pointer), duration=0)
    for stroke in strokes:
        actions.pointer_action.move_to(pad, *offset(*stroke[0]))
        actions.pointer_action.pointer_down()
        for x, y in stroke[1:]:
            actions.pointer_action.move_to(pad, *offset(x, y))
        actions.pointer_action.pointer_up()
    actions.perform()


DRAW_SCALE = 12.0  # one digit pixel becomes 12 pad pixels: the 20x20 box of MNIST's ink spans 240 of the pad's 280


def strokes(image, scale: float = DRAW_SCALE) -> list[list[tuple[float, float]]]:
    """A test digit as strokes, its ink centred on the pad, big as people draw (see web.digit_strokes)."""
    rows, cols = np.nonzero(np.asarray(image) >= 128)
    centre = ((cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2)
    offset = tuple(web.PAD_SIZE / 2 - scale * c for c in centre)
    return web.digit_strokes(image, scale, offset, step=2)


def one_per_class(mnist) -> list[int]:
    """The index of the first test image of each digit, 0 to 9."""
    labels = mnist.test.labels
    return [int((labels == d).nonzero()[0]) for d in range(10)]


@pytest.fixture(scope="module")
def drawings(driver, page, mnist):
    """Ten test digits drawn on the page with the mouse; what the page showed after each."""
    results = []
    start = time.perf_counter()
    for index in one_per_class(mnist):
        clear(driver, page)
        draw(driver, page, strokes(mnist.test.images[index]))
        result = state(driver, page) | {"index": index, "label": int(mnist.test.labels[index])}
        results.append(result)
        (SCREENSHOTS / "draw").mkdir(parents=True, exist_ok=True)
        page.screenshot(str(SCREENSHOTS / "draw" / f"digit_{result['label']}.png"))  # the widget only
    screenshot(driver, SCREENSHOTS / "draw_a_digit_drawn.png")
    print(f"drew {len(results)} digits in {time.perf_counter() - start:.1f} s; page read: "
          + ", ".join(f"{r['label']}->{r['prediction']}" for r in results))
    return results


def test_empty_pad_shows_no_prediction(driver, page):
    s = state(driver, page)
    assert s["prediction"] == "" and s["input"] is None and s["probabilities"] is None
    assert all(width in ("0%", "0.0%", "") for width in s["bars"])
    assert max(s["seen"]) == 0  # the 28x28 view is black


def test_page_forward_pass_equals_pytorch(driver, page, mnist, model):
    images = mnist.test.images[:N_LOGITS]
    logits = driver.execute_script(
        "const s = arguments[0].mnistDraw;"
        "return arguments[1].map(p => MnistDraw.logits(s.model, p));",
        page, images.reshape(N_LOGITS, -1).tolist())
    ours = np.array(logits)  # (N, members, 10)
    theirs = np.stack([z.double().numpy() for z in web.member_logits(model, images)], 1)
    worst = float(np.abs(ours - theirs).max())
    print(f"JS vs PyTorch: largest logit difference over {N_LOGITS} test images: {worst:.2e}")
    assert ours.shape == theirs.shape
    assert worst < LOGIT_TOLERANCE
    assert console_errors(driver) == []


def test_drawn_digits_are_recognised(drawings):
    right = [r for r in drawings if r["prediction"] == str(r["label"])]
    assert len(right) >= DIGITS_NEEDED, "page read " + ", ".join(f"{r['label']}->{r['prediction']}" for r in drawings)


def test_page_preprocessing_equals_to_mnist(drawings):
    worst = 0
    for r in drawings:
        canvas = Image.open(io.BytesIO(base64.b64decode(r["png"].split(",", 1)[1])))
        expected = to_mnist(canvas).numpy().astype(int)
        got = np.array(r["input"]).reshape(28, 28)
        difference = np.abs(expected - got)
        worst = max(worst, int(difference.max()))
        assert difference.max() <= PIXEL_TOLERANCE, (
            f"digit {r['label']}: page and to_mnist differ by up to {difference.max()} grey levels "
            f"in {(difference > 0).sum()} pixels")
    print(f"page vs to_mnist of the same canvas: largest difference {worst} grey levels over {len(drawings)} drawings")


def test_page_shows_its_input_and_pytorch_probabilities(drawings, model):
    for r in drawings:
        assert r["seen"] == r["input"]  # the 28x28 view is the network's input
        probabilities = predict_proba(model, torch.tensor(r["input"], dtype=torch.uint8).reshape(1, 28, 28), device="cpu")[0]
        assert np.abs(np.array(r["probabilities"]) - probabilities.double().numpy()).max() < 1e-5
        widths = [float(w.rstrip("%")) for w in r["bars"]]  # the bars' CSS widths, in percent
        assert np.abs(np.array(widths) - 100 * np.array(r["probabilities"])).max() < 0.051


def test_clear_empties_the_pad(driver, page, drawings):
    assert state(driver, page)["prediction"] != ""  # the last drawing is still there
    clear(driver, page)
    s = state(driver, page)
    assert s["prediction"] == "" and s["input"] is None and max(s["seen"]) == 0
    assert console_errors(driver) == []


def test_a_finger_draws_too(driver, page, mnist, drawings):
    seven = one_per_class(mnist)[7]
    clear(driver, page)
    draw(driver, page, strokes(mnist.test.images[seven]), pointer="touch")
    s = state(driver, page)
    mouse = next(r for r in drawings if r["index"] == seven)
    assert s["prediction"] == mouse["prediction"] != ""
    clear(driver, page)
    assert console_errors(driver) == []


def test_page_works_from_a_file(driver, draw_page):
    open_page(driver, (BOOK_HTML / draw_page).as_uri())
    host = wait_ready(driver)
    assert host.get_attribute("data-prediction") == ""
    assert console_errors(driver) == []


# What JupyterLab does with an HTML output: innerHTML into a detached node (scripts do
# not run), each script replaced by a fresh copy, then the node attached to the page.
JUPYTER_LIKE = """
const host = document.createElement("div");
host.innerHTML = arguments[0];
host.querySelectorAll("script").forEach(old => {
  const script = document.createElement("script");
  for (const attribute of old.attributes) script.setAttribute(attribute.name, attribute.value);
  script.textContent = old.textContent;
  old.replaceWith(script);
});
document.body.appendChild(host);
"""


def test_widget_works_in_a_notebook_output(driver, mnist):
    """The chapter cell's HTML alone (as Jupyter shows it: no website, no _static) draws and predicts."""
    driver.get("about:blank")
    console_errors(driver)
    driver.execute_script(JUPYTER_LIKE, web.widget_html(web.DEFAULT_MODEL))
    host = wait_ready(driver)
    assert driver.execute_script("return getComputedStyle(arguments[0]).display;", host) == "flex"  # draw.css came along
    three = one_per_class(mnist)[3]
    draw(driver, host, strokes(mnist.test.images[three]))
    assert host.get_attribute("data-prediction") == "3"
    assert console_errors(driver) == []



# ------------------------------------------------ too little ink, small drawings, dark mode


@pytest.fixture(scope="module")
def fresh(driver, site, draw_page):
    """The draw page loaded again (the tests above end on other pages)."""
    open_page(driver, site + draw_page)
    host = wait_ready(driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", host)
    console_errors(driver)
    return host


def status(host) -> str:
    from selenium.webdriver.common.by import By

    return host.find_element(By.CSS_SELECTOR, ".mnist-draw-status").text


@pytest.mark.parametrize("marks", [[[(140.0, 140.0)]], [[(125.0, 140.0), (155.0, 140.0)]]], ids=["click", "short-dash"])
def test_too_little_ink_is_no_digit_yet(driver, fresh, marks):
    """A click or a short dash is no digit: the page says so instead of naming one with 99% confidence."""
    clear(driver, fresh)
    draw(driver, fresh, marks)
    s = state(driver, fresh)
    assert s["prediction"] == "" and s["probabilities"] is None, s["prediction"]
    assert "no digit yet" in status(fresh).lower()
    assert all(width in ("0%", "0.0%", "") for width in s["bars"])
    clear(driver, fresh)
    assert status(fresh) == ""
    assert console_errors(driver) == []


SMALL_SCALE = 2.5  # a digit's 20x20 box of ink becomes about 50 of the pad's 280 pixels: a sixth of the pad


def test_small_drawings_are_read(driver, fresh, mnist):
    """Drawn a sixth of the pad's size, the ten digits are still read (the pen narrows with the drawing)."""
    read = []
    for index in one_per_class(mnist):
        clear(driver, fresh)
        draw(driver, fresh, strokes(mnist.test.images[index], SMALL_SCALE))
        s = state(driver, fresh)
        read.append((int(mnist.test.labels[index]), s["prediction"]))
        canvas = Image.open(io.BytesIO(base64.b64decode(s["png"].split(",", 1)[1])))
        difference = to_mnist(canvas).numpy().astype(int) - np.array(s["input"]).reshape(28, 28)
        assert np.abs(difference).max() <= PIXEL_TOLERANCE
    clear(driver, fresh)
    print("small drawings read: " + ", ".join(f"{label}->{got}" for label, got in read))
    assert sum(str(label) == got for label, got in read) >= DIGITS_NEEDED, read


# The colours that reach the screen: the element's colour, faded by its (and its ancestors')
# opacity, over the first painted background behind it.
PAINTED = """
const rgba = text => {
  const v = text.match(/[\\d.]+/g).map(Number);
  return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
};
return arguments[0].map(el => {
  const style = getComputedStyle(el);
  let alpha = rgba(style.color)[3], background = [255, 255, 255, 1];
  for (let e = el; e; e = e.parentElement) {
    const paint = rgba(getComputedStyle(e).backgroundColor);
    if (paint[3] > 0) { background = paint; break; }
    alpha *= Number(getComputedStyle(e).opacity);
  }
  return {text: el.textContent, color: rgba(style.color), alpha: alpha, background: background};
});
"""


def luminance(rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255 channels)."""
    def linear(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(painted: dict) -> float:
    shown = [b + (c - b) * painted["alpha"] for c, b in zip(painted["color"], painted["background"])]
    light, dark = sorted([luminance(shown), luminance(painted["background"])], reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_widget_text_is_readable_in_both_themes(driver, fresh, theme):
    """WCAG AA for normal text (4.5:1), from computed styles, the caption "What the network sees" included."""
    from selenium.webdriver.common.by import By

    driver.execute_script("document.documentElement.dataset.theme = arguments[0];"
                          "document.documentElement.dataset.mode = arguments[0];", theme)
    try:
        body = driver.execute_script("return getComputedStyle(document.body).backgroundColor;")
        assert (luminance([float(v) for v in body[body.index("(") + 1:-1].split(",")[:3]]) < 0.1) == (theme == "dark")
        texts = [fresh.find_element(By.CSS_SELECTOR, css) for css in
                 (".mnist-draw-caption", ".mnist-draw-hint", ".mnist-draw-about", ".mnist-draw-answer-label",
                  ".mnist-draw-digit", ".mnist-draw-bar-digit", ".mnist-draw-status", ".mnist-draw-clear")]
        for painted in driver.execute_script(PAINTED, texts):
            ratio = contrast(painted)
            print(f"{theme}: {ratio:4.1f}:1 {painted['text'][:40]!r}")
            assert ratio >= 4.5, painted
    finally:
        driver.execute_script("document.documentElement.dataset.theme = 'light';"
                              "document.documentElement.dataset.mode = 'light';")


def test_a_title_with_markup_cannot_break_the_widget(driver, mnist):
    """A model title holding "<!--<script>" (inlined as JSON into a script element) must not stop the widget."""
    spec = web.read_export(web.DEFAULT_MODEL) | {"title": 'LeNet <!--<script> </script><b>"bold"</b>'}
    driver.get("about:blank")
    console_errors(driver)
    driver.execute_script(JUPYTER_LIKE, web.widget_html(spec=spec))
    host = wait_ready(driver)
    assert spec["title"] in host.text
    draw(driver, host, strokes(mnist.test.images[one_per_class(mnist)[3]]))
    assert host.get_attribute("data-prediction") == "3"
    assert console_errors(driver) == []
