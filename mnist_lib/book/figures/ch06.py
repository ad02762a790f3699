"""Chapter 6's figures: the layer configurations and calibration."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from . import figure

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
