"""The chapters' prose types no measured number: a decimal percentage in it comes from glue.

A percentage such as 99.2% written by hand goes stale the moment the chapter is re-run;
the book glues every measured or quoted accuracy from the computation (or from the
library's table of reports). Headings may name a target ("Towards 99.7%"); code blocks,
inline code, maths and the glue roles themselves are not prose.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "chapters").glob("*.ipynb")) + [ROOT / "instructor.ipynb", ROOT / "networks.ipynb"]

DECIMAL_PERCENT = re.compile(r"\d+[.,]\d+\s?(%|percent\b)")
NOT_PROSE = [
    re.compile(r"^(`{3,}|~{3,}).*?^\1", re.S | re.M),  # fenced blocks (solutions' code, directives' bodies)
    re.compile(r"\$\$.*?\$\$", re.S),  # display maths
    re.compile(r"\$[^$\n]+\$"),  # inline maths
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # roles: {glue:text}`name:.2%`, {cite}`key`
    re.compile(r"`[^`\n]*`"),  # inline code
]


def typed_percentages(markdown: str) -> list[str]:
    """The decimal percentages typed in ``markdown``'s prose, outside headings, code, maths and roles."""
    for pattern in NOT_PROSE:
        markdown = pattern.sub(" ", markdown)
    return [m.group(0) for line in markdown.splitlines() if not line.lstrip().startswith("#")
            for m in DECIMAL_PERCENT.finditer(line)]


def test_the_check_finds_a_typed_percentage_and_only_that():
    text = ("# Towards 99.7%\n\nIt reaches 99.21% on the test set, {glue:text}`acc:.2%` here,\n"
            "`f'{x:.1%}'` in code, $0.5\\%$ in maths and 100% of the digits.\n"
            "```python\nprint('98.5%')\n```\nAnd 0,75 percent.")
    assert typed_percentages(text) == ["99.21%", "0,75 percent"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_decimal_percentage_is_typed_in_the_prose(page):
    cells = nbformat.read(page, as_version=4).cells
    found = {i: typed_percentages(c.source) for i, c in enumerate(cells) if c.cell_type == "markdown"}
    found = {i: hits for i, hits in found.items() if hits}
    assert not found, (f"{page.name}: decimal percentages typed in prose (cell: values) {found}; glue them from the "
                       "computation, or from mnist_lib.book.reports for a report's number")
