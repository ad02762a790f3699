"""Chapter 7's figures: moved and distorted digits, the schedules, the BN-CNN's training, robustness,
the committee, the test-time views, the ablation and the last errors.

Digits are stored one row per image: a ``title`` and the pixels ``p0`` .. ``p783``
(:func:`pixel_table`); every other table is a plain tidy table of numbers.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

from .. import plots
from . import figure

CHAPTER = "07_beyond"
FULL_RECIPE = "full recipe"  # the ablation table's name for the unchanged BEST_SINGLE runs
CURVES = {"train_acc": "training, running mean (train mode, distorted)",
          "train_eval_acc": "training digits, eval mode (plain)", "test_acc": "test digits (eval mode)"}


def pixel_table(images: torch.Tensor, titles=None) -> pd.DataFrame:
    """Images (N, H, W) as one row per image: ``title`` and the pixels ``p0`` .. ``p{H*W-1}``.

    uint8 pixels are stored as integers, float pixels (in [0, 1]) rounded to three decimals."""
    images = images.detach().cpu()
    flat = images.flatten(1).numpy() if images.dtype == torch.uint8 else images.float().flatten(1).numpy().round(3)
    table = pd.DataFrame(flat, columns=[f"p{i}" for i in range(flat.shape[1])])
    table.insert(0, "title", list(titles) if titles is not None else "")
    return table


def pixel_images(table: pd.DataFrame) -> tuple[torch.Tensor, list[str] | None]:
    """The images of a :func:`pixel_table` (uint8 again if they were 0..255) and their titles (or None)."""
    pixels = table.filter(regex=r"^p\d+$").to_numpy(dtype=np.float32)
    side = math.isqrt(pixels.shape[1])
    images = torch.from_numpy(pixels).view(-1, side, side)
    if pixels.max() > 1.5:  # stored uint8 pixels: draw them on the 0..255 scale
        images = images.round().to(torch.uint8)
    titles = table["title"].fillna("").astype(str).tolist()
    return images, titles if any(titles) else None


def _grid(table: pd.DataFrame, ncols: int, size: float = 1.0) -> Figure:
    images, titles = pixel_images(table)
    return plots.digit_grid(images, titles, ncols=ncols, size=size)


@figure("ch7-moved-digit", CHAPTER, "One test digit moved by 0 to 6 pixels and turned by 0 to 30 degrees",
        ("ch7_moved_digit",))
def moved_digit(digits: pd.DataFrame) -> Figure:
    return _grid(digits, ncols=7)


@figure("ch7-distortions", CHAPTER, "Ten training digits, plain, with affine and with elastic distortions",
        ("ch7_distortions",))
def distortions(digits: pd.DataFrame) -> Figure:
    return _grid(digits, ncols=10)


@figure("ch7-schedules", CHAPTER, "Constant, cosine and one-cycle schedules: learning rate and Adam's beta1",
        ("ch7_schedules",))
def schedules(table: pd.DataFrame) -> Figure:
    """``table``: schedule, epoch, lr, beta1 (one row per step shown)."""
    fig, (ax_lr, ax_beta) = plt.subplots(1, 2, figsize=(10, 3.2))
    for name, rows in table.groupby("schedule", sort=False):
        ax_lr.plot(rows["epoch"], rows["lr"], label=name)
        ax_beta.plot(rows["epoch"], rows["beta1"], label=name)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title=f"Learning rate, peak {table['lr'].max():.3g}")
    ax_beta.set(xlabel="epoch", ylabel="Adam's beta1", title="Adam's beta1 (momentum)")
    ax_lr.legend(title="schedule")
    fig.tight_layout()
    return fig


@figure("ch7-bncnn-epochs", CHAPTER, "BN-CNN: accuracy per epoch, one line per seed",
        ("ch7_bncnn_epochs", "ch7_train_distorted"))
def bncnn_epochs(epochs: pd.DataFrame, distorted: pd.DataFrame) -> Figure:
    """Each seed's running training accuracy, eval-mode training accuracy and test accuracy per epoch
    (``epochs``: seed, epoch and the :data:`CURVES`), and the finished networks' eval-mode accuracy on
    distorted training digits (``distorted``: seed, epoch, accuracy) as stars."""
    long = epochs.melt(id_vars=["seed", "epoch"], value_vars=list(CURVES), var_name="metric")
    long["metric"] = long["metric"].map(CURVES)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    sns.lineplot(data=long, x="epoch", y="value", hue="metric", units="seed", estimator=None, lw=1, alpha=0.8,
                 marker="o", markersize=3, ax=ax)
    ax.scatter(distorted["epoch"], distorted["accuracy"], marker="*", s=140, color="k", zorder=3,
               label="finished network, eval mode, distorted training digits")
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"BN-CNN: accuracy per epoch, one line per seed "
                                                    f"({epochs['seed'].nunique()} seeds)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


@figure("ch7-robustness", CHAPTER, "Test accuracy of five networks on moved and turned digits", ("ch7_robustness",))
def robustness(moves: pd.DataFrame) -> Figure:
    return plots.robustness(moves)


@figure("ch7-committee-size", CHAPTER, "Committee of BN-CNNs: test accuracy against the number of members",
        ("ch7_committee_sizes",))
def committee_size(sizes: pd.DataFrame) -> Figure:
    """``sizes``: members, test_acc, and single_mean (the members' mean accuracy, one value repeated)."""
    return plots.metric_vs(sizes, "members", "test_acc", reference={"mean of single networks":
                                                                    float(sizes["single_mean"].iloc[0])},
                           title="Committee of BN-CNNs: test accuracy against the number of members")


@figure("ch7-tta-views", CHAPTER, "The candidate test-time views of one test digit, the chosen ones marked",
        ("ch7_tta_views",))
def tta_views(digits: pd.DataFrame) -> Figure:
    return _grid(digits, ncols=7, size=1.3)


@figure("ch7-tta-committee", CHAPTER, "Committee accuracy with and without test-time augmentation",
        ("ch7_tta_committee",))
def tta_committee(both: pd.DataFrame) -> Figure:
    """``both``: members, test_acc, test_digits (as they are, or averaged over the views)."""
    return plots.metric_vs(both, "members", "test_acc", hue="test_digits",
                           title="Committee of BN-CNNs, with and without test-time augmentation")


@figure("ch7-ablation", CHAPTER, "The ablation: one change undone at a time, one point per run", ("ch7_ablation",))
def ablation(runs: pd.DataFrame) -> Figure:
    """``runs``: variant, seed, test_acc; the :data:`FULL_RECIPE` rows give the band (mean +- 1 std)."""
    full = runs.loc[runs["variant"] == FULL_RECIPE, "test_acc"]
    mean, std = float(full.mean()), float(full.std()) if len(full) > 1 else 0.0
    order = list(dict.fromkeys(runs["variant"]))
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * len(order)))
    ax.axvspan(mean - std, mean + std, color="C0", alpha=0.2,
               label=f"{FULL_RECIPE}, {len(full)} seeds: mean +- 1 std")
    ax.axvline(mean, color="C0")
    sns.stripplot(data=runs, x="test_acc", y="variant", order=order, color="k", size=6, jitter=0.15, ax=ax)
    ax.set(xlabel="test accuracy", ylabel="", title="One change of the recipe undone at a time")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


@figure("ch7-last-errors", CHAPTER, "The test digits the committee with its views still gets wrong",
        ("ch7_last_errors",))
def last_errors(digits: pd.DataFrame) -> Figure:
    return _grid(digits, ncols=10, size=1.1)
