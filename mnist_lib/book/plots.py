"""The book's figures (matplotlib + seaborn). Each helper returns its ``Figure``.

They take the library's own results (tensors, :class:`~mnist_lib.experiments.Runs`
tables), so a chapter cell is one call. Tensors may be on any device, or need grad:
each helper brings them to the host first.
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


def _host(t: torch.Tensor) -> torch.Tensor:
    """``t`` in host memory, out of autograd: what NumPy and matplotlib can read (a GPU tensor is not)."""
    return t.detach().cpu()


GRID_PAD = 4  # pixels between the digits of a digit_grid


def digit_grid(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 10, size: float = 1.0) -> Figure:
    """Images (N, 28, 28) in a grid, each with an optional title (e.g. ``"7->2"``).

    Drawn as one picture with text labels: a panel per digit made the 100-digit grids take seconds."""
    images = _host(images)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    h, w = (images.shape[-2:]) if n else (28, 28)
    pad, top = GRID_PAD, (12 if titles is not None else 0)  # pixels between digits, and above each for its title
    cell_h, cell_w = h + pad + top, w + pad
    canvas = np.full((nrows * cell_h, ncols * cell_w), np.nan)  # NaN: left blank
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * cell_h + top:r * cell_h + top + h, c * cell_w:c * cell_w + w] = np.asarray(images[i], dtype=float)
    fig, ax = plt.subplots(figsize=(ncols * size, nrows * size * (1.25 if titles is not None else 1)))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=255 if images.dtype == torch.uint8 else None,
              interpolation="nearest", aspect="auto")
    for i, title in enumerate(titles if titles is not None else []):
        r, c = divmod(i, ncols)
        ax.text(c * cell_w + w / 2, r * cell_h + top - 1.5, title, ha="center", va="bottom", fontsize=9)
    ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    return fig


def class_balance(labels: torch.Tensor, title: str = "Training images per digit") -> Figure:
    """Bar chart of how many images each digit has."""
    counts = torch.bincount(_host(labels), minlength=10).numpy()
    fig, ax = plt.subplots(figsize=(7, 3))
    sns.barplot(x=np.arange(10), y=counts, ax=ax, color="C0")
    ax.bar_label(ax.containers[0], fontsize=8)
    ax.set(xlabel="digit", ylabel="images", title=title)
    return fig


def pixel_histogram(counts) -> Figure:
    """Bars of how many pixels have each grey level 0-255 (``counts``: 256 numbers), log count axis."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(np.arange(256), np.asarray(counts), width=1.0, color="C0")
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
    metrics = list(metrics)
    long = epochs.melt(id_vars=["config", "seed", "epoch"], value_vars=metrics, var_name="metric")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    sns.lineplot(data=long, x="epoch", y="value", hue="config", style="metric" if len(metrics) > 1 else None,
                 errorbar="sd", marker="o", ax=ax)
    ax.set(xlabel="epoch", ylabel=" / ".join(m.replace("_", " ") for m in metrics), title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


def runs_vs_report(final: pd.DataFrame, report: float, report_label: str, metric: str = "test_acc") -> Figure:
    """Each run's final ``metric`` as a dot per seed, with the report's number as a line."""
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * final["config"].nunique()))
    sns.stripplot(data=final, x=metric, y="config", hue="config", size=7, ax=ax, legend=False)
    ax.axvline(report, color="k", linestyle="--", label=report_label)
    ax.set(xlabel=metric.replace("_", " "), ylabel="")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, title: str = "Confusion matrix (test set)") -> Figure:
    """Heatmap of counts: row = true digit, column = predicted digit (diagonal hidden)."""
    y_true, y_pred = _host(y_true), _host(y_pred)
    matrix = torch.zeros(10, 10, dtype=torch.long)
    matrix.index_put_((y_true.long(), y_pred.long()), torch.ones(len(y_true), dtype=torch.long), accumulate=True)
    off = matrix.numpy().astype(float)
    np.fill_diagonal(off, np.nan)  # the correct ones would drown the colour scale
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(off, annot=True, fmt=".0f", cmap="Reds", cbar_kws={"label": "test images"}, ax=ax, square=True)
    ax.set(xlabel="predicted digit", ylabel="true digit", title=title)
    return fig


def metric_vs(frame: pd.DataFrame, x: str, y: str = "test_acc", hue: str | None = None, logx: bool = False,
              reference: dict[str, float] | None = None, title: str = "") -> Figure:
    """``y`` against ``x`` (mean over seeds, +-1 std), optionally with horizontal reference lines."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.lineplot(data=frame, x=x, y=y, hue=hue, marker="o", errorbar="sd", ax=ax)
    for i, (label, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color=f"C{i + 3}", linestyle="--", label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "), title=title)
    if reference or hue:
        ax.legend(fontsize=8)
    return fig


def compare_configs(final: pd.DataFrame, metric: str = "test_acc", reports: dict[str, float] | None = None,
                    title: str = "") -> Figure:
    """Final ``metric`` per config: one dot per seed, the mean as a bar; the reports' values as crosses."""
    order = list(dict.fromkeys(final["config"]))
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.45 * len(order)))
    sns.barplot(data=final, y="config", x=metric, order=order, errorbar=None, color="C0", alpha=0.35, ax=ax)
    sns.stripplot(data=final, y="config", x=metric, order=order, color="C0", size=5, ax=ax)
    for config, value in (reports or {}).items():
        ax.plot(value, order.index(config), "x", color="C3", markersize=9, mew=2,
                label="report" if config == next(iter(reports)) else None)
    low = final[metric].min()
    ax.set_xlim(low - (1 - low) * 0.5, min(1.0, final[metric].max() + (1 - low) * 0.3))
    ax.set(xlabel=metric.replace("_", " "), ylabel="", title=title)
    if reports:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def reconstructions(originals: torch.Tensor, rows: dict[str, torch.Tensor]) -> Figure:
    """Originals on the top row, each named reconstruction (same images) below."""
    images = torch.cat([_host(originals).float() / 255, *[_host(r).float() for r in rows.values()]])
    n = len(originals)
    fig = digit_grid(images.clamp(0, 1), ncols=n, size=0.9)
    fig.subplots_adjust(left=0.1)  # room for the row labels
    height = images.shape[-2] + GRID_PAD  # one row of the grid, in its pixels
    for row, label in enumerate(["original", *rows]):
        fig.axes[0].text(-GRID_PAD, row * height + height / 2, label, ha="right", va="center", fontsize=9)
    return fig


def principal_plane(codes: torch.Tensor) -> torch.Tensor:
    """Codes (N, D) projected on their first two principal components: (N, 2)."""
    centred = codes - codes.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T


def code_scatter(codes: torch.Tensor, labels: torch.Tensor, title: str = "Codes of the test images",
                 axes: tuple[str, str] | None = None) -> Figure:
    """Codes coloured by digit; codes of more than 2 dimensions are projected on their first 2 principal
    components (:func:`principal_plane`). ``axes`` names the axes (default: what was drawn)."""
    codes, labels = _host(codes).float(), _host(labels)
    if codes.shape[1] > 2:
        codes = principal_plane(codes)
        axes = axes or ("principal component 1", "principal component 2")
    else:
        axes = axes or ("code 1", "code 2")
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.scatterplot(x=codes[:, 0].numpy(), y=codes[:, 1].numpy(), hue=labels.numpy(), palette="tab10", s=6,
                    linewidth=0, ax=ax, legend="full")
    ax.set(xlabel=axes[0], ylabel=axes[1], title=title)
    ax.legend(title="digit", fontsize=7, markerscale=2, bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


def robustness(frame: pd.DataFrame, title: str = "Test accuracy on moved and turned digits") -> Figure:
    """Accuracy against shift (pixels) and rotation (degrees), one line per model (:func:`mnist_lib.robustness.robustness`)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (transform, label) in zip(axes, [("shift", "shift (pixels)"), ("rotation", "rotation (degrees)")]):
        sns.lineplot(data=frame[frame["transform"] == transform], x="amount", y="test_acc", hue="model", marker="o",
                     ax=ax, legend=ax is axes[-1])
        ax.set(xlabel=label, ylabel="test accuracy")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- Concept figures drawn from a model (no training needed) ---

_KIND_COLOURS = {"Standardize": "#bbbbbb", "Conv2d": "#4c72b0", "ConvTranspose2d": "#4c72b0",
                 "MaxPool2d": "#55a868", "AvgPool2d": "#55a868", "Linear": "#c44e52",
                 "BatchNorm2d": "#8172b3", "BatchNorm1d": "#8172b3", "Dropout": "#937860",
                 "Flatten": "#dddddd", "Unflatten": "#dddddd"}


def architecture(model: torch.nn.Module | pd.DataFrame, input_shape: tuple[int, ...] = (1, 1, 28, 28),
                 title: str = "", max_per_row: int = 16) -> Figure:
    """The network as a row of boxes, one per layer of :func:`~mnist_lib.models.layer_table`.

    ``model`` is a network or its layer table (e.g. one kept in the results store). A box's
    height grows with the logarithm of the numbers the layer outputs, so the reader sees
    where the network shrinks the image; under each box are its output shape and its
    parameter count. Activations (ReLU, tanh, ...) are drawn as thin grey boxes. Long networks
    wrap after ``max_per_row`` layers.
    """
    from ..models import layer_table  # here, not at the top: models must not depend on plots

    shape = "x".join(map(str, input_shape[1:]))
    layers = model if isinstance(model, pd.DataFrame) else layer_table(model, input_shape)
    table = pd.concat([pd.DataFrame([{"layer": "input", "type": "input", "output shape": shape, "parameters": 0}]),
                       layers], ignore_index=True)
    sizes = [int(np.prod([int(d) for d in s.split("x")])) for s in table["output shape"]]
    rows = -(-len(table) // max_per_row)
    fig, axes = plt.subplots(rows, 1, figsize=(min(len(table), max_per_row) * 1.05 + 0.5, 2.6 * rows), squeeze=False)
    top = np.log10(max(sizes))
    for i, ((_, layer), size) in enumerate(zip(table.iterrows(), sizes)):
        ax, x = axes[i // max_per_row, 0], i % max_per_row
        kind = layer["type"]
        height = 0.1 + 0.9 * np.log10(max(size, 1)) / top
        thin = kind not in _KIND_COLOURS and kind != "input"
        width = 0.25 if thin else 0.7
        ax.add_patch(plt.Rectangle((x - width / 2, -height / 2), width, height,
                                   color=_KIND_COLOURS.get(kind, "#e5e5e5" if thin else "#64b5cd")))
        ax.text(x, height / 2 + 0.06, kind.replace("BatchNorm", "BN"), ha="center", va="bottom", fontsize=7,
                rotation=30 if thin else 0)
        ax.text(x, -height / 2 - 0.06, layer["output shape"], ha="center", va="top", fontsize=7)
        if layer["parameters"]:
            ax.text(x, -height / 2 - 0.22, f"{layer['parameters']:,} w", ha="center", va="top", fontsize=7,
                    color="#c44e52")
    for ax in axes[:, 0]:
        ax.axhline(0, color="#888888", lw=0.6, zorder=0)  # the data flows left to right along this line
        ax.set(xlim=(-0.6, max_per_row - 0.4 if rows > 1 else len(table) - 0.4), ylim=(-0.9, 0.85))
        ax.axis("off")
    total = int(table["parameters"].sum())
    name = "" if isinstance(model, pd.DataFrame) else f"{type(model).__name__}: "
    fig.suptitle(title or f"{name}{total:,} weights (red: weights per layer)", fontsize=10)
    fig.tight_layout()
    return fig
