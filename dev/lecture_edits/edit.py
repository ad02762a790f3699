"""Shared by the scripts beside it: find a cell of a chapter by a marker and edit it, asserting each step.

The scripts hold chapter edits that wait for the chapters' full re-runs, because a chapter is committed
only with the outputs of a full run of its code. ch04.py and ch06.py give chapters 4 and 6 their lecture
design (#16):

    python dev/lecture_edits/ch04.py chapters/04_lenet5.ipynb     # then: make chapter CH=04

Chapters 4 and 6 also need their HEADLINES entries in mnist_lib/book/headlines.py (chapter 4:
lenet5_test_acc_mean and anu_nn_cnn_test_acc_mean; chapter 6: none). Delete a script once its chapter has
run, and this folder with the last one.
"""
import sys

import nbformat

path = sys.argv[1]
notebook = nbformat.read(path, as_version=4)
cells = notebook.cells


def find(marker: str, kind: str = "code") -> int:
    hits = [i for i, c in enumerate(cells) if c.cell_type == kind and marker in c.source]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


def edit(marker: str, old: str, new: str, kind: str = "code") -> None:
    c = cells[find(marker, kind)]
    assert c.source.count(old) == 1, (marker, old)
    c.source = c.source.replace(old, new)


def save(what: str) -> None:
    nbformat.write(notebook, path)
    print(f"{path}: {what}")
