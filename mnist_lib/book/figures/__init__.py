"""The book's figures by name, each drawn by one function from stored results.

Every figure that a chapter draws from an experiment is registered here with
:func:`figure`: its name, its chapter, the results it reads (:mod:`mnist_lib.book.store`)
and the function that draws it from those tables. The chapter saves the tables and calls
:func:`draw`; the command line redraws the same figure later from the committed results,
in seconds and without training::

    python -m mnist_lib figure --list                 # one figure per line, the name first
    python -m mnist_lib figure deepcnn-configs --out configs.svg
    python -m mnist_lib figure deepcnn-configs --profile lecture   # re-measure, then draw
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from matplotlib.figure import Figure

from .. import store


@dataclass(frozen=True)
class FigureSpec:
    """A named figure: the chapter that shows it, the results it reads, the function that draws it."""

    name: str
    chapter: str
    title: str
    results: tuple[str, ...]
    draw: Callable[..., Figure]


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, chapter: str, title: str, results: tuple[str, ...]):
    """Register the decorated function as the one that draws figure ``name`` from ``results``."""

    def register(draw: Callable[..., Figure]) -> Callable[..., Figure]:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} is registered twice")
        FIGURES[name] = FigureSpec(name, chapter, title, results, draw)
        return draw

    return register


def draw(name: str, folder: str | os.PathLike | None = None) -> Figure:
    """Figure ``name`` drawn from the results in ``folder`` (default: the store of the active profile)."""
    try:
        spec = FIGURES[name]
    except KeyError:
        raise ValueError(f"no figure named {name!r}; `python -m mnist_lib figure --list` lists them") from None
    return spec.draw(*(store.load(result, folder) for result in spec.results))


# The figures of each chapter register themselves when their module is imported.
from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, networks  # noqa: E402,F401
