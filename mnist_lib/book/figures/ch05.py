"""Chapter 5's figures: four activations, the activation and learning-rate sweeps, the improved LeNet-5."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from ..reports import REPORTS
from . import figure

CHAPTER = "05_improving_lenet5"


@figure("activations", CHAPTER, "The sigmoid, tanh, ReLU and ELU and their derivatives (by autograd)",
        ("activation_curves",))
def activations(curves: pd.DataFrame) -> Figure:
    """Each activation (left) and its derivative (right) (``curves``: activation, x, f, df); ReLU drawn wide."""
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, curve in curves.groupby("activation", sort=False):
        style = {"lw": 4, "alpha": 0.5} if name == "relu" else {"lw": 1.5}  # ELU equals ReLU for x > 0
        ax_f.plot(curve["x"], curve["f"], label=name, **style)
        ax_d.plot(curve["x"], curve["df"], label=name, **style)
    ax_f.set(xlabel="x", ylabel="f(x)", title="activation", ylim=(-1.5, 3))
    ax_d.set(xlabel="x", ylabel="f'(x), by autograd", title="derivative")
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _sweep(epochs: pd.DataFrame, part: str) -> pd.DataFrame:
    """The runs of one part of the sweep (``epochs``: lenet5_sweep_epochs; ``part``: "activations" or "rates")."""
    return epochs[epochs[f"in_{part}"]]


@figure("act-final-val", CHAPTER, "Validation accuracy of each activation after the last epoch, one dot per seed",
        ("lenet5_sweep_epochs",))
def act_final_val(epochs: pd.DataFrame) -> Figure:
    runs = _sweep(epochs, "activations")
    final = runs[runs["epoch"] == runs.groupby(["config", "seed"])["epoch"].transform("max")]
    return plots.compare_configs(final, "val_acc",
                                 title=f"Activation functions: validation accuracy after {final['epoch'].max()} epochs")


@figure("act-convergence", CHAPTER, "Validation accuracy after each epoch, by activation", ("lenet5_sweep_epochs",))
def act_convergence(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(_sweep(epochs, "activations"), metrics=["val_acc"],
                              title="Convergence by activation (mean over seeds)")


@figure("lr-convergence", CHAPTER, "Validation accuracy after each epoch for ReLU at four learning rates",
        ("lenet5_sweep_epochs",))
def lr_convergence(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(_sweep(epochs, "rates"), metrics=["val_acc"],
                              title="Convergence by learning rate (ReLU, mean over seeds)")


@figure("improved-architecture", CHAPTER, "The improved LeNet-5, one box per layer of its layer table",
        ("lenet5_improved_layers",))
def improved_architecture(layers: pd.DataFrame) -> Figure:
    """The network of ``layers`` (a layer table with the network's name in column ``model``)."""
    title = f"{layers['model'].iloc[0]}: {int(layers['parameters'].sum()):,} weights"
    return plots.architecture(layers.drop(columns="model").astype({"output shape": str}), title=title)


@figure("improved-vs-report", CHAPTER, "The improved LeNet-5's test accuracy per seed against the IOP report's",
        ("lenet5_improved_final",))
def improved_vs_report(final: pd.DataFrame) -> Figure:
    error = REPORTS["iop2020"]["improved_error"]
    return plots.runs_vs_report(final, 1 - error, f"IOP 2020 report ({error:.1%} error)")
