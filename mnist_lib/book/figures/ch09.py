"""Chapter 9's figures: the speed benchmark, drawn from the tables the chapter takes from its JSON.

Each table has a first column ``device`` (``"cpu"``, ``"cuda"``: one benchmark result each, as
:func:`mnist_lib.bench.report.stacked` makes it); each figure has one panel per device, one
above the other, titled with the device.
"""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import figure

CHAPTER = "09_speed"
COLORS = {"baseline": "C3", "mnist_lib": "C0"}


def per_device(table: pd.DataFrame, panel: Callable[[Axes, pd.DataFrame, str], None], width: float,
               height: Callable[[pd.DataFrame], float]) -> Figure:
    """One panel per device, one above the other: ``panel(ax, rows, device)`` draws, ``height(rows)`` sizes it."""
    devices = list(table.groupby("device", sort=False))
    heights = [height(rows) for _, rows in devices]
    fig, axes = plt.subplots(len(devices), 1, figsize=(width, sum(heights)), height_ratios=heights, squeeze=False)
    for (device, rows), ax in zip(devices, axes[:, 0]):
        panel(ax, rows.reset_index(drop=True), device)
    if len(devices) > 1:
        fig.tight_layout()
    return fig


def pipelines_panel(ax: Axes, comparison: pd.DataFrame, device: str) -> None:
    """Seconds per epoch of each pipeline, labelled with its time and its speedup over the baseline."""
    colors = ["C3" if p == "baseline" else "C0" for p in comparison["pipeline"]]
    ax.barh(comparison["pipeline"], comparison["seconds_per_epoch"], color=colors)
    labels = [f"{s:.3g} s  ({x:.1f}x)"
              for s, x in zip(comparison["seconds_per_epoch"], comparison["speedup_vs_baseline"])]
    ax.bar_label(ax.containers[0], labels, padding=3, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, comparison["seconds_per_epoch"].max() * 1.35)
    ax.set(xlabel="seconds per epoch (steady state)", ylabel="", title=f"Seconds per epoch ({device})")


@figure("speed-pipelines", CHAPTER, "Seconds per epoch: the tutorial pipeline against mnist_lib, plain and fast",
        ("speed_comparison",))
def speed_pipelines(comparison: pd.DataFrame) -> Figure:
    return per_device(comparison, pipelines_panel, 8, lambda rows: 0.9 + 0.55 * len(rows))


def ablation_panel(ax: Axes, ablation: pd.DataFrame, device: str) -> None:
    """Each change's speedup over plain ``fit``; a change not measured is named with its status instead of a bar."""
    speed = ablation["speedup_vs_plain"].astype(float).fillna(0)
    ax.barh(ablation["change"], speed, color=["C2" if s >= 1 else "C3" for s in speed])
    top = max(speed.max(), 1.0) * 1.3
    for i, (value, status) in enumerate(zip(speed, ablation["status"])):
        measured = status == "measured"
        ax.text(value + top * 0.01 if measured else top * 0.01, i, f"{value:.2f}x" if measured else status,
                va="center", fontsize=8, color="k" if measured else "0.5")
    ax.axvline(1, color="k", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set(xlabel="speedup over plain fit (epoch time)", ylabel="",
           title=f"One change at a time, from plain fit ({device})")


@figure("speed-ablation", CHAPTER, "One change at a time: each switch's speedup over plain fit", ("speed_ablation",))
def speed_ablation(ablation: pd.DataFrame) -> Figure:
    return per_device(ablation, ablation_panel, 8, lambda rows: 0.9 + 0.4 * len(rows))


def batch_panel(ax: Axes, sweep: pd.DataFrame, device: str) -> None:
    """Seconds per epoch against the batch size, one line per pipeline, log-log."""
    sns.lineplot(data=sweep, x="batch_size", y="seconds_per_epoch", hue="pipeline", marker="o", ax=ax, palette=COLORS)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds per epoch",
           title=f"Cost of an epoch against the batch size ({device})")
    sizes = sorted(sweep["batch_size"].unique())
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


@figure("speed-batch", CHAPTER, "Seconds per epoch against the batch size, baseline and mnist_lib",
        ("speed_batch_sweep",))
def speed_batch(sweep: pd.DataFrame) -> Figure:
    return per_device(sweep, batch_panel, 7, lambda rows: 3.5)


def models_panel(ax: Axes, sweep: pd.DataFrame, device: str) -> None:
    """Achieved GFLOP/s per model and pipeline, against the device's matmul peak (column ``peak_gflops``)."""
    peak = float(sweep["peak_gflops"].iloc[0])
    sns.barplot(data=sweep, x="model", y="achieved_gflops", hue="pipeline", ax=ax, palette=COLORS)
    for container in ax.containers:
        ax.bar_label(container, [f"{v / peak:.1%}" for v in container.datavalues], fontsize=8)
    ax.axhline(peak, color="k", linestyle="--", label=f"matmul peak ({peak:.0f} GFLOP/s)")
    ax.set(yscale="log", xlabel="model", ylabel="GFLOP/s (training)",
           title=f"Arithmetic done per second, per model ({device}; bar labels: share of the peak)")
    ax.legend(fontsize=8)


@figure("speed-models", CHAPTER, "GFLOP/s achieved by three models and both pipelines, against the matmul peak",
        ("speed_model_sweep",))
def speed_models(sweep: pd.DataFrame) -> Figure:
    return per_device(sweep, models_panel, 8, lambda rows: 3.5)


def time_to_accuracy_panel(ax: Axes, curves: pd.DataFrame, title: str) -> None:
    """Test accuracy against training seconds, one line per run and seed, and the target (column ``target``)."""
    target = float(curves["target"].iloc[0])
    sns.lineplot(data=curves, x="train_seconds", y="test_acc", hue="run", units="seed", estimator=None,
                 marker=".", ax=ax)
    ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target * 100:g}%")
    near = curves["test_acc"].max() >= target - 0.05  # zoom on the last stretch when the runs get there
    ax.set_ylim(target - 0.05 if near else curves["test_acc"].min() - 0.02, 1.0)
    ax.set(xlabel="training seconds (evaluation excluded)", ylabel="test accuracy", title=title)
    ax.legend(fontsize=8, loc="lower right")


@figure("speed-tta", CHAPTER, "Test accuracy against training seconds: the speed-tuned recipe and the book's",
        ("speed_time_to_accuracy",))
def speed_tta(curves: pd.DataFrame) -> Figure:
    """``curves``: device, run, seed, train_seconds, test_acc and the device's target."""
    return per_device(curves, lambda ax, rows, device: time_to_accuracy_panel(
        ax, rows, f"Test accuracy against training time ({device})"), 8, lambda rows: 3.8)


@figure("speed-ch7", CHAPTER, "Chapter 7's BN-CNN: test accuracy against training seconds, to its higher target",
        ("speed_chapter7",))
def speed_ch7(curve: pd.DataFrame) -> Figure:
    return per_device(curve, lambda ax, rows, device: time_to_accuracy_panel(
        ax, rows, f"Chapter 7's network ({device})"), 8, lambda rows: 3.8)


def recipe_panel(ax: Axes, recipe: pd.DataFrame, device: str) -> None:
    """Seconds to the target of the recipe and of each variant without one ingredient (median, min-max bar);
    a variant whose median seed never got there is named with how many seeds did instead of a bar."""
    seconds = recipe["seconds_to_target"].astype(float)
    labels = ["the recipe" if i == 0 else f"without {w}" for i, w in enumerate(recipe["without"])]
    low = (seconds - recipe["min"].astype(float)).clip(lower=0).fillna(0)
    high = (recipe["max"].astype(float) - seconds).clip(lower=0).fillna(0)
    ax.barh(labels, seconds.fillna(0), xerr=[low, high], capsize=3,
            color=["C0" if i == 0 else "C1" for i in range(len(recipe))])
    ends = (seconds + high).fillna(0)
    top = max(float(ends.max()), 1.0) * 1.3
    for i, (value, reached) in enumerate(zip(seconds, recipe["reached"])):
        text = f"not reached ({reached} seeds did)" if pd.isna(value) else f"{value:.3g} s ({reached})"
        ax.text(ends.iloc[i] + top * 0.01, i, text, va="center", fontsize=8, color="0.4" if pd.isna(value) else "k")
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set(xlabel="training seconds to 99% (median over seeds; bar: min to max)", ylabel="",
           title=f"The sprint recipe, one ingredient out at a time ({device})")


@figure("speed-recipe", CHAPTER, "The sprint to 99%: the recipe, and the recipe without each of its ingredients",
        ("speed_recipe_ablation",))
def speed_recipe(recipe: pd.DataFrame) -> Figure:
    """``recipe``: device, without, seconds_to_target, min, max, reached (mnist_lib.bench.recipe.recipe_table)."""
    return per_device(recipe, recipe_panel, 8, lambda rows: 0.9 + 0.45 * len(rows))
