"""The book's figures (matplotlib + seaborn). Each helper returns its ``Figure``.

They take the library's own results (tensors, :class:`~mnist_lib.experiments.Runs`
tables), so a chapter cell is one call.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

sns.set_theme(context="notebook", style="whitegrid")


def digit_grid(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 10, size: float = 1.0) -> Figure:
    """Images (N, 28, 28) in a grid, each with an optional title (e.g. ``"7->2"``)."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * (1.25 if titles else 1)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(images[i]), cmap="gray_r", vmin=0, vmax=255 if images.dtype == torch.uint8 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def class_balance(labels: torch.Tensor, title: str = "Training images per digit") -> Figure:
    """Bar chart of how many images each digit has."""
    counts = torch.bincount(labels, minlength=10).numpy()
    fig, ax = plt.subplots(figsize=(7, 3))
    sns.barplot(x=np.arange(10), y=counts, ax=ax, color="C0")
    ax.bar_label(ax.containers[0], fontsize=8)
    ax.set(xlabel="digit", ylabel="images", title=title)
    return fig


def mean_digits(images: torch.Tensor, labels: torch.Tensor) -> Figure:
    """The mean image of each digit, 0 to 9."""
    means = torch.stack([images[labels == d].float().mean(0) for d in range(10)])
    return digit_grid(means, [str(d) for d in range(10)], ncols=10, size=1.1)


def pixel_histogram(images: torch.Tensor) -> Figure:
    """Histogram of the grey levels of all pixels (log count axis)."""
    counts = torch.bincount(images.flatten().long(), minlength=256).numpy()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(np.arange(256), counts, width=1.0, color="C0")
    ax.set(xlabel="grey level (0 = background, 255 = ink)", ylabel="pixels", yscale="log", title="Pixel intensities")
    return fig


def step_losses(steps: pd.DataFrame, window: int = 50, title: str = "Training loss of every step") -> Figure:
    """The loss of every training step (faint) and its moving average, one colour per config.

    ``steps`` is :attr:`Runs.steps`; the mean over seeds is drawn.
    """
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for i, (config, group) in enumerate(steps.groupby("config", sort=False)):
        loss = group.groupby("step")["loss"].mean()
        ax.plot(loss.index, loss.values, color=f"C{i}", alpha=0.2, linewidth=0.6)
        ax.plot(loss.index, loss.rolling(window, min_periods=1).mean(), color=f"C{i}", label=config)
    ax.set(xlabel="training step (batch)", ylabel="cross-entropy loss", yscale="log", title=title)
    ax.legend()
    return fig


def epoch_curves(epochs: pd.DataFrame, metrics: Sequence[str] = ("train_acc", "test_acc"), title: str = "") -> Figure:
    """Per-epoch metrics of :attr:`Runs.epochs`: mean over seeds with a band of +-1 std."""
    long = epochs.melt(id_vars=["config", "seed", "epoch"], value_vars=list(metrics), var_name="metric")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.lineplot(data=long, x="epoch", y="value", hue="config", style="metric", errorbar="sd", marker="o", ax=ax)
    ax.set(xlabel="epoch", ylabel=" / ".join(metrics), title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def runs_vs_report(final: pd.DataFrame, report: float, report_label: str, metric: str = "test_acc") -> Figure:
    """Each run's final ``metric`` as a dot per seed, with the report's number as a line."""
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * final["config"].nunique()))
    sns.stripplot(data=final, x=metric, y="config", hue="config", size=7, ax=ax, legend=False)
    ax.axvline(report, color="k", linestyle="--", label=report_label)
    ax.set(xlabel=metric.replace("_", " "), ylabel="")
    ax.legend(loc="lower left", fontsize=8)
    return fig
