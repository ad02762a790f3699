"""The book's side of the library: what the chapter notebooks use and a user of the core does not need.

This module holds what every chapter shares: :func:`show_source` (the library's real
source, highlighted), :func:`glue_text` (words glued into the prose), :func:`glued` (a glued
value, for the prose of JupyterLab's lab copies: :mod:`~mnist_lib.book.lab`) and
:func:`provenance` (the closing cell: device, versions, profile, seed, wall time). It
imports only torch and the core's small device and profile modules; the plotting and
chapter helpers are submodules, imported where used: :mod:`~mnist_lib.book.plots`
(figures), :mod:`~mnist_lib.book.reports` (the reports' published numbers),
:mod:`~mnist_lib.book.backprop` (chapter 2), :mod:`~mnist_lib.book.autoencoders`
(chapter 3), :mod:`~mnist_lib.book.tables` (chapter 5), :mod:`~mnist_lib.book.committee`
and :mod:`~mnist_lib.book.robustness` (chapter 7), :mod:`~mnist_lib.book.drawing`
(chapter 8).
"""

from __future__ import annotations

import datetime
import inspect
import platform
import time

import torch

from ..profiles import profile
from ..device import choose_device, describe_device
from .lab import Text, glued, watch

_STARTED = time.perf_counter()  # the chapter's kernel imports mnist_lib in its first cell
watch()  # in JupyterLab, the lab copies' prose shows the glued values (mnist_lib.book.lab)
__all__ = ["Text", "environment", "glue_text", "glued", "provenance", "show_source"]

SEEDS_AS_LISTED = "as listed in each experiment"


def glue_text(name: str, text: str) -> None:
    """Glue ``text`` so that ``{glue:text}`name``` shows it as plain words, not as a quoted string."""
    from myst_nb import glue

    glue(name, Text(text), display=False)


def show_source(obj) -> "IPython.display.Code":  # noqa: F821
    """The library's real source of ``obj``, highlighted (never a retyped copy)."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def environment(seed: int | str = SEEDS_AS_LISTED) -> dict[str, str]:
    """Device, versions, profile and seed of this run."""
    return {
        "device": describe_device(choose_device()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "profile": profile().name,
        "seed": str(seed),
        "date": datetime.date.today().isoformat(),
    }


def provenance(seed: int | str = SEEDS_AS_LISTED) -> None:
    """Print how this chapter's outputs were made: environment, seed and wall time.

    Chapters whose experiments each state their own seeds call it without ``seed``.
    """
    info = environment(seed) | {"wall time": f"{time.perf_counter() - _STARTED:.0f} s since mnist_lib was imported"}
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}}: {value}")
