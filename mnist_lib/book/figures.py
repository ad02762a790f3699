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

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from . import plots, store


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


# Chapter 6 ----------------------------------------------------------------------------------

@figure("deepcnn-configs", "06_deeper_cnn", "The layer configurations: final test accuracy, one point per seed",
        ("deepcnn_final",))
def deepcnn_configs(final: pd.DataFrame) -> Figure:
    return plots.compare_configs(final, "test_acc", title="The layer configurations: test accuracy after 15 epochs")


@figure("deepcnn-test-loss", "06_deeper_cnn", "Test loss after each epoch, per configuration", ("deepcnn_epochs",))
def deepcnn_test_loss(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(epochs, metrics=["test_loss"], title="Test loss after each epoch")


@figure("deepcnn-reliability", "06_deeper_cnn", "Reliability diagrams without and with dropout",
        ("deepcnn_reliability",))
def deepcnn_reliability(bins: pd.DataFrame) -> Figure:
    """Accuracy per confidence bin (``bins``: config, label, bin_left, width, accuracy, ECE), one panel per config."""
    configs = list(dict.fromkeys(bins["config"]))
    fig, axes = plt.subplots(1, len(configs), figsize=(4.5 * len(configs), 4), sharey=True, squeeze=False)
    for ax, config in zip(axes[0], configs):
        rows = bins[bins["config"] == config]
        ax.bar(rows["bin_left"], rows["accuracy"], width=rows["width"], align="edge", edgecolor="black",
               label="accuracy in the bin")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set(title=f"{rows['label'].iloc[0]}: ECE {rows['ECE'].iloc[0]:.4f}", xlabel="confidence (max probability)",
               xlim=(0, 1), ylim=(0, 1))
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(loc="upper left")
    fig.tight_layout()
    return fig
