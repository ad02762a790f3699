"""A chapter in JupyterLab, as a student runs it: MyST prose, all cells run under the lecture profile.

Starts JupyterLab (jupyterlab-myst installed, as ``make lab`` does) on the lab copies of the
chapters, on a free port of 127.0.0.1 without a token, as root where the tests run as root.
Headless Chromium opens chapter 1, runs every cell with the Run menu and saves the notebook;
the saved file must hold no error output, and its prose must show the values the cells glued
(jupyterlab-myst's ``{eval}`` results, stored in the markdown cells' metadata).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import PROJECT_ROOT, console_errors, missing

CHAPTER = "01_mnist_database.ipynb"  # the quickest chapter with figures, tables and glued prose
RUN_SECONDS = 600  # the whole chapter under the lecture profile, with a margin for a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, driver):
    """The URL of a JupyterLab serving a folder of lab copies, and that folder.

    Afterwards the browser leaves JupyterLab before its server stops: a JupyterLab page left
    open keeps reconnecting to the stopped server, and its errors would land in the next
    test's console."""
    try:
        import jupyterlab  # noqa: F401
        import jupyterlab_myst  # noqa: F401
    except ImportError:
        missing("JupyterLab or jupyterlab-myst is not installed in this environment")
    folder = tmp_path_factory.mktemp("lab")
    subprocess.run([sys.executable, "-m", "mnist_lib.book", str(folder)], check=True, cwd=PROJECT_ROOT)
    port = _free_port()
    env = os.environ | {"MNIST_PROFILE": "lecture", "MNIST_PROGRESS": "0"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.root_dir={folder}", "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = (folder / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab stopped: {(folder / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, folder
    finally:
        _leave(driver)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _leave(driver) -> None:
    """Go to a blank page (past any "leave this page?" prompt) and drain the console."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.get("about:blank")
    except WebDriverException:
        try:
            driver.switch_to.alert.accept()
        except WebDriverException:
            pass
    console_errors(driver)


def _click_menu(driver, menu: str, item: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//div[contains(@class,'lm-MenuBar-itemLabel') and text()='{menu}']").click()
    time.sleep(0.5)
    driver.find_element(By.XPATH, f"//div[contains(@class,'lm-Menu-itemLabel') and text()='{item}']").click()


def _idle(url: str, driver) -> bool:
    """A kernel is running, it is idle (the server says), and no cell waits to run ([*])."""
    from selenium.webdriver.common.by import By

    kernels = json.loads(urllib.request.urlopen(f"{url}/api/kernels", timeout=5).read())
    queued = driver.find_elements(By.XPATH, "//div[contains(@class,'jp-InputPrompt') and contains(text(),'[*]')]")
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels) and not queued


def test_a_chapter_runs_in_jupyterlab_with_its_glued_numbers_in_the_prose(lab, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    url, folder = lab
    driver.get(f"{url}/lab/tree/{CHAPTER}")
    wait = WebDriverWait(driver, 120)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-MarkdownCell")))
    # before anything runs, the prose shows the committed run's numbers (no raw roles, no expressions)
    first = (By.CSS_SELECTOR, ".jp-Notebook .jp-MarkdownCell")
    wait.until(lambda d: "the full profile" in d.find_element(*first).text)  # rendered by jupyterlab-myst
    assert "{glue" not in driver.find_element(*first).text
    wait.until(lambda d: _idle(url, d))  # the kernel has started
    _click_menu(driver, "Run", "Run All Cells")
    time.sleep(3)
    WebDriverWait(driver, RUN_SECONDS, poll_frequency=2).until(lambda d: _idle(url, d))
    _click_menu(driver, "File", "Save Notebook")
    time.sleep(3)

    saved = json.loads((folder / CHAPTER).read_text())
    errors = [out for cell in saved["cells"] for out in cell.get("outputs", []) if out["output_type"] == "error"]
    assert not errors, f"error outputs: {[e['ename'] + ': ' + e['evalue'] for e in errors]}"
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    assert all(cell.get("execution_count") for cell in code), "some code cells did not run"
    # the prose's {eval} expressions were evaluated after their cells ran: no "run the cells above" left
    results = [result for cell in saved["cells"] if cell["cell_type"] == "markdown"
               for result in cell.get("metadata", {}).get("user_expressions", [])]
    assert results, "no markdown cell holds evaluated expressions (is jupyterlab-myst active?)"
    shown = [r["result"].get("data", {}).get("text/plain", "") for r in results]
    assert all(r["result"].get("status") == "ok" for r in results)
    assert not any("run the cells above" in text for text in shown), shown
    assert shown[0].startswith("the lecture profile"), shown[0]  # the intro's sentence: this run's profile
    driver.execute_script("document.querySelector('.jp-WindowedPanel-outer').scrollTo(0, 0)")
    intro = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-MarkdownCell").text
    assert "the lecture profile" in intro and "{glue" not in intro and "book.glued" not in intro
