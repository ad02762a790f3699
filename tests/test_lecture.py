"""The lecture profile's headline numbers against the committed full run (make test-lecture).

Reads the chapters that ``make lecture`` executed into ``_build/lecture`` and compares each
headline of :mod:`mnist_lib.book.headlines` with the committed notebook's value. Skipped
unless ``MNIST_LECTURE_TESTS=1`` (``make test-lecture`` sets it, after running the chapters).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat
import pytest

from mnist_lib.book.headlines import HEADLINES, within
from mnist_lib.book.lab import glued_in

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "_build" / "lecture"


def glued(path: Path) -> dict[str, float]:
    """The numbers a notebook's outputs glue, by name."""
    values = {}
    for name, text in glued_in(nbformat.read(path, as_version=4)).items():
        try:
            values[name] = float(ast.literal_eval(text))
        except (ValueError, SyntaxError, TypeError):
            pass
    return values


@pytest.mark.skipif(os.environ.get("MNIST_LECTURE_TESTS") != "1", reason="make test-lecture runs it")
@pytest.mark.parametrize("chapter", sorted(HEADLINES))
def test_lecture_headlines_are_close_to_the_full_run(chapter):
    run = LECTURE / chapter
    assert run.is_file(), f"{run} missing: run `make lecture` first"
    lecture, full = glued(run), glued(ROOT / "chapters" / chapter)
    far = {name: (lecture.get(name), full.get(name)) for name, kind in HEADLINES[chapter].items()
           if name not in lecture or name not in full or not within(kind, lecture[name], full[name])}
    assert not far, f"outside the tolerance (lecture, full): {far}"
