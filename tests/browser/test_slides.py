"""make slides: a chapter's reveal.js deck opens in Chromium with the network off, maths and figures rendered."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from .conftest import PROJECT_ROOT, SCREENSHOTS, console_errors, missing, open_page


def test_slides_open_offline(driver, tmp_path):
    if shutil.which("npm") is None and not (PROJECT_ROOT / "tools" / "node_modules").is_dir():
        missing("npm is not installed (make slides fetches reveal.js and KaTeX with it once)")
    subprocess.run([sys.executable, str(PROJECT_ROOT / "tools" / "slides.py"), "04", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    deck = tmp_path / "04_lenet5.html"
    text = deck.read_text()
    # Nothing the deck loads lives on the network: scripts, styles and images are local files or data: URLs.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', text)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                           {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        console_errors(driver)  # drain what earlier tests left
        open_page(driver, deck.as_uri())
        assert driver.execute_script("return typeof Reveal !== 'undefined' && Reveal.isReady();")
        slides = driver.execute_script("return Reveal.getTotalSlides();")
        figures = driver.execute_script("return document.querySelectorAll('.slides img').length;")
        broken = driver.execute_script(
            "return [...document.querySelectorAll('.slides img')].filter(i => !i.naturalWidth).length;")
        rendered = driver.execute_script("return document.querySelectorAll('.katex').length;")
        raw = driver.execute_script("return document.querySelectorAll('.math:not(:has(.katex))').length;")
        assert slides >= 15 and figures >= 5 and broken == 0
        assert rendered > 0 and raw == 0  # KaTeX typeset every formula
        assert "glue:text" not in text and "{numref}" not in text and "Solution" not in text
        assert not console_errors(driver)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / "slides_04_title.png"))
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
