"""Fixtures for the browser tests: the built book served on 127.0.0.1, and headless Chromium.

The tests open the *built* website (``_build/html``, or ``$MNIST_BOOK_HTML``), served by
a static file server of their own on a free port of 127.0.0.1, in Debian's Chromium
driven by Selenium and Debian's chromedriver (``make browser-deps`` installs all three).
Chromium starts headless, without sandbox, GPU or background networking, with a fresh
profile, so nothing outside the machine is contacted.

Without Chromium, chromedriver, Selenium or a built book the tests are skipped, unless
``MNIST_BROWSER_TESTS=1`` (set by ``make browser``, hence by ``make test`` and CI): then
they fail and say what is missing.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BOOK_HTML = Path(os.environ.get("MNIST_BOOK_HTML") or PROJECT_ROOT / "_build" / "html").resolve()
SCREENSHOTS = BOOK_HTML.parent / "screenshots"
CHROMIUM = os.environ.get("MNIST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MNIST_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED = os.environ.get("MNIST_BROWSER_TESTS") == "1"
WINDOW = (1280, 1000)


def missing(reason: str) -> None:
    """Fail under ``MNIST_BROWSER_TESTS=1`` (make browser, CI), else skip: something the tests need is missing."""
    message = f"{reason}; run `make browser-deps` (Chromium, chromedriver, Selenium) and `make book` first"
    if REQUIRED:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def site() -> str:
    """The base URL of the built book, served from a thread on a free port of 127.0.0.1."""
    if not (BOOK_HTML / "index.html").exists():
        missing(f"no built book at {BOOK_HTML}")
    handler = functools.partial(_QuietHandler, directory=str(BOOK_HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def driver():
    """Headless Chromium (one for the whole session), with the browser console recorded."""
    for path, what in ((CHROMIUM, "Chromium"), (CHROMEDRIVER, "chromedriver")):
        if not Path(path).exists():
            missing(f"{what} is not installed at {path}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("Selenium is not installed in this environment")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for downloads
    profile = tempfile.mkdtemp(prefix="mnist-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     f"--user-data-dir={profile}", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-extensions", "--disable-component-update", "--disable-sync",
                     "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(120)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """The browser console's errors since the last call (the log is drained by reading it).

    Every error counts, a missing favicon's included: every page names the book's icon.
    """
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(driver, url: str) -> None:
    """Load ``url`` and wait until the document and its images have finished loading."""
    driver.get(url)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const ready = () => document.readyState === 'complete' ? done() : setTimeout(ready, 50);"
        "ready();"
    )


def screenshot(driver, path: Path, max_height: int = 16000) -> Path:
    """A PNG of the whole page at ``path``: the window is made as tall as the page for the shot.

    (Capturing beyond the viewport instead would paint the theme's sticky header and
    sidebar where the window happened to be.)
    """
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight);")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WINDOW[0], "height": max(min(int(height), max_height), 1), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0);")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def built_pages() -> list[Path]:
    """Every HTML page of the built book (not the copies of sources and static files)."""
    if not BOOK_HTML.is_dir():
        return []
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(p for p in BOOK_HTML.rglob("*.html") if not skip & set(p.relative_to(BOOK_HTML).parts))


def draw_pages() -> list[Path]:
    """The built pages that hold a draw-a-digit widget."""
    return [p for p in built_pages() if 'class="mnist-draw-widget"' in p.read_text(errors="replace")]
