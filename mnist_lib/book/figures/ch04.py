"""Chapter 4's figures: LeNet-5's training, what it learned, its errors, and the size sweep.

The tables are tidy: one row per value, with the array a value belongs to and its
position (``array``, ``channel``, ``i``, ``j``, ``value``), so that weights, feature maps
and images are stored as plainly as accuracies.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .. import plots
from . import figure

CHAPTER = "04_lenet5"


def tidy(arrays: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Arrays (C, H, W) or (H, W) as one tidy table: array, channel, i, j, value."""
    frames = []
    for name, a in arrays.items():
        a = a.detach().cpu().float()
        a = a[None] if a.ndim == 2 else a
        c, i, j = np.indices(a.shape).reshape(3, -1)
        frames.append(pd.DataFrame({"array": name, "channel": c, "i": i, "j": j, "value": a.numpy().ravel()}))
    return pd.concat(frames, ignore_index=True)


def untidy(table: pd.DataFrame, name: str) -> torch.Tensor:
    """Array ``name`` of a :func:`tidy` table, shape (C, H, W)."""
    rows = table[table["array"] == name]
    shape = (rows["channel"].max() + 1, rows["i"].max() + 1, rows["j"].max() + 1)
    out = np.zeros(shape, dtype=np.float32)
    out[rows["channel"], rows["i"], rows["j"]] = rows["value"]
    return torch.from_numpy(out)


def power_law(per_size: pd.Series) -> tuple[float, float]:
    """Least-squares fit of log(error) = intercept + exponent log(n) to mean accuracies by size: (exponent, intercept)."""
    error = 1 - per_size
    if len(per_size) < 2 or not (error > 0).all():
        return float("nan"), float("nan")  # one size (the smoke profile) or no errors: no slope
    design = torch.tensor([[math.log(n), 1.0] for n in per_size.index], dtype=torch.float64)
    target = torch.tensor(error.map(math.log).to_numpy())[:, None]
    exponent, intercept = torch.linalg.lstsq(design, target).solution[:, 0].tolist()
    return exponent, intercept


def _no_ticks(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


@figure("lenet5-epochs", CHAPTER, "LeNet-5: training (running and evaluation-mode) and test accuracy per epoch",
        ("lenet5_epochs",))
def lenet5_epochs(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(epochs, metrics=["train_acc", "train_eval_acc", "test_acc"],
                              title="LeNet-5: accuracy after each epoch")


@figure("lenet5-c1-filters", CHAPTER, "C1's six learned 5x5 filters", ("lenet5_c1",))
def conv_filters(c1: pd.DataFrame) -> Figure:
    """The filters of a convolution with one input channel, one panel each, on one colour scale."""
    w = untidy(c1, "weight")
    lim = w.abs().max().item()
    fig, axes = plt.subplots(1, len(w), figsize=(1.5 * len(w) + 1, 2))
    for o, ax in enumerate(axes):
        shown = ax.imshow(w[o], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"filter {o}", fontsize=9)
    _no_ticks(axes)
    fig.colorbar(shown, ax=list(axes), shrink=0.8, label="weight")
    fig.suptitle("C1's learned filters (first seed)")
    return fig


@figure("lenet5-sliding", CHAPTER, "One C1 filter sliding over a digit, and the map it makes", ("lenet5_sliding",))
def filter_sliding(sliding: pd.DataFrame) -> Figure:
    """The digit with the filter's window where its response is largest, the filter's weights, and its map.

    ``sliding``: the arrays ``digit`` (standardised, 28x28), ``filter`` (KxK, with the bias as
    ``bias``) and ``map`` (the filter's response before the activation, padding P = (K-1)/2).
    """
    x, w, response = (untidy(sliding, name)[0] for name in ("digit", "filter", "map"))
    bias = untidy(sliding, "bias").item()
    i, j = divmod(int(response.argmax()), response.shape[1])
    k = w.shape[0]
    p = (k - 1) // 2
    lim = w.abs().max().item()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    axes[0].imshow(x, cmap="gray_r")
    axes[0].add_patch(plt.Rectangle((j - p - 0.5, i - p - 0.5), k, k, fill=False, edgecolor="red", lw=2))
    axes[0].set_title(f"digit, {k}x{k} window at output ({i}, {j})")
    axes[1].imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for u in range(k):
        for v in range(k):
            axes[1].text(v, u, f"{w[u, v]:.2f}", ha="center", va="center", fontsize=7,
                         color="white" if abs(w[u, v]) > 0.6 * lim else "black")
    axes[1].set_title(f"filter (bias {bias:.2f})")
    top = response.abs().max().item()
    axes[2].imshow(response, cmap="RdBu_r", vmin=-top, vmax=top)
    axes[2].add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    axes[2].set_title(f"map: y[{i}, {j}] = {response[i, j].item():.2f}")
    _no_ticks(axes)
    fig.tight_layout()
    return fig


@figure("lenet5-feature-maps", CHAPTER, "A digit's feature maps after C1, S2 and C3", ("lenet5_feature_maps",))
def feature_maps(maps: pd.DataFrame, ncols: int = 8) -> Figure:
    """The ``input`` and each stage's maps (arrays in order of appearance), one scale from -1 to 1 (tanh)."""
    stages = [name for name in dict.fromkeys(maps["array"]) if name != "input"]
    arrays = {name: untidy(maps, name) for name in stages}
    nrows = 1 + sum(math.ceil(len(m) / ncols) for m in arrays.values())
    # A fixed layout and plain text labels (as plots.digit_grid): tight_layout measured all 40 panels, for seconds
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.25 * nrows), gridspec_kw={"hspace": 0.35})
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.22 / (1.25 * nrows))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(untidy(maps, "input")[0], cmap="gray_r")
    axes[0, 0].text(0.5, 1.03, "input", transform=axes[0, 0].transAxes, ha="center", va="bottom", fontsize=9)
    row = 1
    for label, m in arrays.items():
        for c, fmap in enumerate(m):
            ax = axes[row + c // ncols, c % ncols]
            ax.imshow(fmap, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.text(0.5, 1.03, f"{label} {c} ({fmap.shape[0]}x{fmap.shape[1]})" if c == 0 else f"{label} {c}",
                    transform=ax.transAxes, ha="center", va="bottom", fontsize=8)
        row += math.ceil(len(m) / ncols)
    return fig


@figure("lenet5-cuhk-curves", CHAPTER, "The CUHK recipe: training and validation accuracy per epoch", ("cuhk_epochs",))
def cuhk_curves(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(epochs, metrics=["train_acc", "val_acc"],
                              title="CUHK recipe: training and validation accuracy")


@figure("sigmoid-tanh-derivatives", CHAPTER, "The derivatives of the sigmoid and tanh", ("sigmoid_tanh_derivatives",))
def sigmoid_tanh_derivatives(curves: pd.DataFrame) -> Figure:
    """sigma'(x), tanh'(x) and tanh'(x)/4 (``curves``: x, d_sigmoid, d_tanh, crossing)."""
    crossing = curves["crossing"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(curves["x"], curves["d_tanh"], label="tanh'(x) = 4 sigma'(2x), at most 1")
    ax.plot(curves["x"], curves["d_sigmoid"], label="sigma'(x) = sigma(x)(1 - sigma(x)), at most 1/4")
    ax.plot(curves["x"], curves["d_tanh"] / 4, "--", label="tanh'(x) / 4")
    for edge in (-crossing, crossing):
        ax.axvline(edge, color="grey", lw=0.8)
    ax.set(xlabel="x", ylabel="derivative", title=f"sigma' is the larger beyond |x| = {crossing:.2f} (grey lines)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


@figure("lenet5-confusion", CHAPTER, "LeNet-5's confusion matrix on the test set", ("lenet5_predictions",))
def lenet5_confusion(predictions: pd.DataFrame) -> Figure:
    return plots.confusion(torch.tensor(predictions["true"].to_numpy()), torch.tensor(predictions["predicted"].to_numpy()))


@figure("lenet5-misclassified", CHAPTER, "The test digits LeNet-5 gets wrong", ("lenet5_misclassified",))
def lenet5_misclassified(wrong: pd.DataFrame) -> Figure:
    """Up to 100 digits (``wrong``: true, predicted and the pixels p0..p783), titled true->predicted."""
    images = torch.tensor(wrong[[f"p{k}" for k in range(784)]].to_numpy(), dtype=torch.uint8).view(-1, 28, 28)
    titles = [f"{t}->{p}" for t, p in zip(wrong["true"], wrong["predicted"])]
    return plots.digit_grid(images, titles, ncols=10)


@figure("lenet5-size-acc", CHAPTER, "LeNet-5's test accuracy against the training-set size", ("lenet5_size_sweep",))
def size_accuracy(sweep: pd.DataFrame) -> Figure:
    return plots.metric_vs(sweep, "train_size", "test_acc", logx=True,
                           title="LeNet-5: test accuracy against training-set size")


@figure("lenet5-size-error", CHAPTER, "LeNet-5's test error against the training-set size, log-log, with a power law",
        ("lenet5_size_sweep",))
def size_error(sweep: pd.DataFrame) -> Figure:
    per_size = sweep.groupby("train_size")["test_acc"].mean()
    exponent, intercept = power_law(per_size)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.loglog(per_size.index, 1 - per_size, "o-", label=f"test error (mean of {sweep['seed'].nunique()} seeds per size)")
    if not math.isnan(exponent):
        fit = [math.exp(intercept) * n ** exponent for n in per_size.index]
        ax.loglog(per_size.index, fit, "--", color="grey", label=f"power law, exponent {exponent:.2f}")
    ax.set(xlabel="training images", ylabel="test error", title="LeNet-5: test error against training-set size")
    ax.legend()
    fig.tight_layout()
    return fig


@figure("anu-nn-step-loss", CHAPTER, "The loss of every training step: the ANU NN recipe's CNN and perceptron",
        ("anu_nn_steps",))
def step_loss(steps: pd.DataFrame) -> Figure:
    """The training loss of every step, one line per config (``steps``: config, step, loss)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for name, curve in steps.groupby("config", sort=False):
        ax.plot(curve["step"], curve["loss"], linewidth=0.6, alpha=0.8, label=name)
    ax.set(yscale="log", xlabel="training step (batch of 100)", ylabel="training loss (one batch)",
           title="The loss of every step, seed 0")
    ax.legend(fontsize=8)
    return fig
