"""The code in the exercises' solutions runs (make chapters-smoke, smoke profile).

A solution is a collapsed ``{dropdown} Solution ...`` block in a chapter's markdown; its
``python`` code blocks are what a student would paste at the end of the chapter. Each
chapter that has such code is executed under the smoke profile with its solutions' code
appended as cells, in order, in the same kernel, so a solution that names something the
chapter never defines, or that no longer matches the library, fails here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
# Read at import: the suite's autouse fixture clears MNIST_PROFILE before each test runs.
PROFILE = os.environ.get("MNIST_PROFILE")
# A dropdown fence of three or more backticks or colons, up to the same fence closing it.
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{dropdown\} Solution[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.S | re.M)
PYTHON = re.compile(r"^```python\n(?P<code>.*?)^```\s*$", re.S | re.M)


def solution_code(notebook: nbformat.NotebookNode) -> list[str]:
    """The python code blocks of every solution dropdown of ``notebook``, in reading order."""
    blocks = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for solution in SOLUTION.finditer(cell.source):
                blocks += [m["code"] for m in PYTHON.finditer(solution["body"])]
    return blocks


def test_solution_code_is_found():
    text = "x\n\n````{dropdown} Solution (easy)\nSay\n\n```python\nprint(1)\n```\n\nthen\n````\n\n```python\nnot(a solution)\n```\n"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    assert solution_code(notebook) == ["print(1)\n"]


WITH_CODE = [path.name for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
             if solution_code(nbformat.read(path, as_version=4))]


@pytest.mark.parametrize("chapter", WITH_CODE)
def test_solution_code_runs_after_the_chapter(chapter, monkeypatch):
    if PROFILE != "smoke":
        pytest.skip("run under the smoke profile: make chapters-smoke")
    notebook = nbformat.read(CHAPTERS / chapter, as_version=4)
    blocks = solution_code(notebook)
    for cell in notebook.cells:  # the chapter's own outputs are not needed
        if cell.cell_type == "code":
            cell.outputs = []
    notebook.cells += [nbformat.v4.new_code_cell(f"# solution code block {i + 1} of {len(blocks)}\n{code}")
                       for i, code in enumerate(blocks)]
    monkeypatch.setenv("MNIST_PROFILE", "smoke")  # for the kernel, which inherits this environment
    monkeypatch.setenv("MNIST_PROGRESS", "0")
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(CHAPTERS)}}).execute()
