"""Chapter 2's figures: softmax's gradient, SGD against Adam, and the 784-300-10 network.

The loss of every training step is stored one column per config (:func:`per_step`), as
float32: tens of thousands of steps stay small without rounding a value.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from ..reports import REPORTS
from . import figure

CHAPTER = "02_backpropagation"


def per_step(steps: pd.DataFrame) -> pd.DataFrame:
    """The loss of every step of one seed (``steps``: config, step, loss) as columns: step, then one per config."""
    wide = steps.pivot(index="step", columns="config", values="loss")
    return wide[list(dict.fromkeys(steps["config"]))].astype("float32").reset_index()


def _steps(*tables: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_step` tables back as one long table (config, step, loss), configs in their order."""
    long = [t.melt(id_vars="step", var_name="config", value_name="loss").dropna() for t in tables]
    return pd.concat(long, ignore_index=True)


def bowl(theta1: np.ndarray | float, theta2: np.ndarray | float) -> np.ndarray | float:
    """The two-parameter loss of the chapter's optimizer paths, L = (theta1^2 + 25 theta2^2) / 2."""
    return 0.5 * (theta1 ** 2 + 25 * theta2 ** 2)


@figure("softmax-gradient", CHAPTER, "One image's logits, softmax probabilities and the gradient p - Y",
        ("softmax_gradient",))
def softmax_gradient(one: pd.DataFrame) -> Figure:
    """Three bar charts over the digits (``one``: digit, logit, probability, gradient, label), the label red."""
    label = int(one["label"].iloc[0])
    colours = ["C3" if k == label else "C0" for k in one["digit"]]
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharex=True)
    for ax, column, title in zip(axes, ("logit", "probability", "gradient"),
                                 ("logits z", "softmax p", "gradient dL/dz = p - Y")):
        ax.bar(one["digit"], one[column], color=colours)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(title=title, xlabel="digit", xticks=range(10))
    loss = -np.log(one.loc[one["digit"] == label, "probability"].iloc[0])
    fig.suptitle(f"One training image (label {label}, red), untrained network: loss -log p_y = {loss:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


@figure("manual-sgd-loss", CHAPTER, "The loss of every step of the hand-written SGD training", ("manual_sgd_steps",))
def manual_sgd_loss(steps: pd.DataFrame) -> Figure:
    return plots.step_losses(_steps(steps), title="Hand-written backpropagation: loss of every step")


@figure("sgd-adam-paths", CHAPTER, "SGD's and Adam's paths on a two-parameter loss", ("sgd_adam_paths",))
def sgd_adam_paths(paths: pd.DataFrame) -> Figure:
    """Each optimizer's path (``paths``: config, step, theta1, theta2) over the contours of :func:`bowl`."""
    theta1, theta2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2, 2, 200))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.contour(theta1, theta2, bowl(theta1, theta2), levels=12, colors="lightgrey")
    for label, path in paths.groupby("config", sort=False):
        last = path.iloc[-1]
        ax.plot(path["theta1"], path["theta2"], "o-", ms=3, lw=1,
                label=f"{label}: L = {bowl(last['theta1'], last['theta2']):.3f} after {int(last['step'])} steps")
    ax.plot(0, 0, "k*", ms=10)
    ax.set(xlabel="θ1 (flat direction)", ylabel="θ2 (steep direction)",
           title=f"{paths['step'].max()} steps from the same start")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


@figure("mlp300-architecture", CHAPTER, "The 784-300-10 network, one box per layer of its layer table",
        ("mlp300_layers",))
def mlp300_architecture(layers: pd.DataFrame) -> Figure:
    """The network of ``layers`` (:func:`~mnist_lib.models.layer_table`)."""
    return plots.architecture(layers.astype({"output shape": str}), title="784-300-10 MLP: one box per layer")


@figure("mlp300-runs", CHAPTER, "The 784-300-10 network with Adam: test accuracy per seed against the ANU report",
        ("mlp300_final",))
def mlp300_runs(final: pd.DataFrame) -> Figure:
    return plots.runs_vs_report(final, REPORTS["anu_nn"]["mlp300_test_acc"], "ANU report (mean of 10 runs)")


@figure("mlp300-step-loss", CHAPTER, "The loss of every step of the 784-300-10 network with Adam (seed 0)",
        ("mlp300_adam_steps",))
def mlp300_step_loss(adam: pd.DataFrame) -> Figure:
    return plots.step_losses(_steps(adam), title="784-300-10 with Adam: loss of every step (seed 0)")


@figure("sgd-adam-epochs", CHAPTER, "Test accuracy after each epoch: the 784-300-10 network with SGD and with Adam",
        ("sgd_adam_epochs",))
def sgd_adam_epochs(epochs: pd.DataFrame) -> Figure:
    return plots.epoch_curves(epochs, metrics=["test_acc"], title="Test accuracy after each epoch (seed 0)")


@figure("sgd-adam-step-loss", CHAPTER, "The loss of every step: the 784-300-10 network with SGD and with Adam",
        ("mlp300_adam_steps", "mlp300_sgd_steps"))
def sgd_adam_step_loss(adam: pd.DataFrame, sgd: pd.DataFrame) -> Figure:
    return plots.step_losses(_steps(adam, sgd), title="Loss of every step: SGD and Adam (seed 0)")
