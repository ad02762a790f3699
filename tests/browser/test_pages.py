"""Every page of the built book, in headless Chromium: no console error, no missing image.

Every page also has the book's favicon (so the browser asks for no /favicon.ico), the
author and licences in its footer, and the repository's buttons; the chapters have launch
buttons (Binder, Colab) for the repository named in pyproject.toml's [tool.mnist_book].

A screenshot of each whole page is saved under ``_build/screenshots/`` (named after the
page's path, e.g. ``chapters__08_draw_a_digit.png``), for a human to look at.
"""

from __future__ import annotations

import tomllib

import pytest

from .conftest import BOOK_HTML, PROJECT_ROOT, SCREENSHOTS, built_pages, console_errors, missing, open_page, screenshot

PAGES = [p.relative_to(BOOK_HTML).as_posix() for p in built_pages()]
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
META = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["mnist_book"]

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

# The page's declared icon, fetched: [href, HTTP status, content type] (or null without one).
FAVICON = """
const done = arguments[arguments.length - 1];
const link = document.querySelector('link[rel~="icon"]');
if (!link) { done(null); } else {
  fetch(link.href).then(r => done([link.href, r.status, r.headers.get("content-type")]),
                        e => done([link.href, 0, String(e)]));
}
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
    icon = driver.execute_async_script(FAVICON)
    footer = driver.execute_script("const f = document.querySelector('footer.bd-footer-content'); return f ? f.innerText : '';")
    errors = console_errors(driver)
    screenshot(driver, SCREENSHOTS / (page.removesuffix(".html").replace("/", "__") + ".png"))
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not errors, f"{page}: console errors: {errors}"
    assert icon and icon[1] == 200 and "image" in (icon[2] or ""), f"{page}: no favicon that loads: {icon}"
    for expected in (META["author"], str(META["year"]), "CC BY-SA 4.0", "MIT"):
        assert expected in footer, f"{page}: the footer does not show {expected!r}: {footer!r}"


def test_chapters_have_repository_and_launch_buttons(driver, site):
    if not CHAPTERS:
        missing(f"no built chapters under {BOOK_HTML}")
    page = CHAPTERS[0]
    open_page(driver, site + page)
    links = driver.execute_script("return Array.from(document.querySelectorAll('a[href]'), a => a.href);")
    repo = META["repository"].rstrip("/")
    owner_name = repo.removeprefix("https://github.com/")
    notebook = page.removesuffix(".html") + ".ipynb"
    expected = {
        "repository": repo,
        "open an issue": f"{repo}/issues/new",
        "edit this page": f"{repo}/edit/main/{notebook}",
        "Binder": f"https://mybinder.org/v2/gh/{owner_name}/main?urlpath=lab/tree/{notebook}",
        "Colab": f"https://colab.research.google.com/github/{owner_name}/blob/main/{notebook}",
    }
    absent = [name for name, href in expected.items() if not any(link.startswith(href) for link in links)]
    assert not absent, f"{page}: no link for {absent} (links: {[link for link in links if 'http' in link]})"


# What a chapter page shows before the reader clicks anything.
READING_VIEW = """
const closed = e => !!e.closest("details:not([open])");  // inside a collapsed dropdown or toggle
const dropdowns = Array.from(document.querySelectorAll("details.sd-dropdown"));
const solutions = dropdowns.filter(d => /Solution/.test(d.querySelector("summary")?.textContent || ""));
const hidden = Array.from(document.querySelectorAll(".cell.tag_hide-input"));
const inputs = Array.from(document.querySelectorAll(".cell .cell_input"));
// A code cell of nothing but imports (and comments) is boilerplate.
const onlyImports = i => {
  const lines = i.textContent.split("\\n").map(l => l.trim()).filter(l => l && !l.startsWith("#"));
  return lines.length > 0 && lines.every(l => /^(import|from) \\w/.test(l));
};
const figures = Array.from(document.querySelectorAll('figure[class*="align-"]'));  // Sphinx's figures, not a widget's
const outputImages = Array.from(document.querySelectorAll(".cell_output img"));
return {
  solutions: solutions.length,
  solutionsOpen: solutions.filter(d => d.open).map(d => d.querySelector("summary").textContent.trim()),
  hideInput: hidden.length,
  hideInputShown: hidden.filter(c => { const i = c.querySelector(".cell_input"); return !i || !closed(i); }).length,
  importsShown: inputs.filter(i => !closed(i) && onlyImports(i)).map(i => i.textContent.trim().slice(0, 60)),
  figures: figures.length,
  uncaptioned: figures.filter(f => !f.querySelector(".caption-number")).map(f => f.id),
  unnumberedImages: outputImages.filter(img => !img.closest("figure")).length,
};
"""


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_shows_the_story_and_hides_the_rest(driver, site, page):
    """Solutions collapsed, boilerplate (imports, glue) collapsed, every figure numbered with a caption."""
    open_page(driver, site + page)
    view = driver.execute_script(READING_VIEW)
    screenshot(driver, SCREENSHOTS / "reading_view" / (page.removesuffix(".html").replace("/", "__") + ".png"))
    assert view["solutions"] >= 1, f"{page}: no solution dropdowns"
    assert not view["solutionsOpen"], f"{page}: solutions open before any click: {view['solutionsOpen']}"
    assert view["hideInput"] >= 1 and view["hideInputShown"] == 0, f"{page}: hidden code cells shown: {view}"
    assert not view["importsShown"], f"{page}: code cells of only imports are shown: {view['importsShown']}"
    assert not view["uncaptioned"], f"{page}: figures without a number and caption: {view['uncaptioned']}"
    assert view["unnumberedImages"] == 0, f"{page}: {view['unnumberedImages']} output figure(s) outside a numbered figure"
