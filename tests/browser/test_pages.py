"""Every page of the built book, in headless Chromium: no console error, no missing image.

A screenshot of each whole page is saved under ``_build/screenshots/`` (named after the
page's path, e.g. ``chapters__08_draw_a_digit.png``), for a human to look at.
"""

from __future__ import annotations

import pytest

from .conftest import BOOK_HTML, SCREENSHOTS, built_pages, console_errors, missing, open_page, screenshot

PAGES = [p.relative_to(BOOK_HTML).as_posix() for p in built_pages()]

# Wait for every image (lazy ones included) to load or fail; return those that failed.
BROKEN_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(image => { image.loading = "eager"; });
Promise.all(images.map(image => image.complete ? null : new Promise(settle => {
  image.addEventListener("load", settle); image.addEventListener("error", settle);
}))).then(() => done(images.filter(image => !(image.complete && image.naturalWidth > 0))
                           .map(image => image.currentSrc || image.src || image.outerHTML.slice(0, 120))));
"""


def test_the_book_is_built():
    if not PAGES:
        missing(f"no built pages under {BOOK_HTML}")
    assert "index.html" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_cleanly(driver, site, page):
    console_errors(driver)  # drain what earlier tests left
    open_page(driver, site + page)
    broken = driver.execute_async_script(BROKEN_IMAGES)
    errors = console_errors(driver)
    screenshot(driver, SCREENSHOTS / (page.removesuffix(".html").replace("/", "__") + ".png"))
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not errors, f"{page}: console errors: {errors}"
