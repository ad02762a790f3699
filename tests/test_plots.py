"""The concept figures drawn from a model: one box per layer, the right weight count."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mnist_lib.book import plots  # noqa: E402
from mnist_lib.models import MLP, Autoencoder, LeNet5, count_parameters, layer_table  # noqa: E402


@pytest.mark.parametrize("model", [MLP(), LeNet5(), Autoencoder()], ids=lambda m: type(m).__name__)
def test_architecture_draws_one_box_per_layer_and_the_weight_count(model):
    fig = plots.architecture(model)
    boxes = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == len(layer_table(model)) + 1  # the input, then every layer
    assert f"{count_parameters(model):,} weights" in fig._suptitle.get_text()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("1x28x28") >= 2  # under the input and under Standardize


def test_architecture_makes_the_code_layer_the_smallest_box():
    fig = plots.architecture(Autoencoder())
    boxes = [p for ax in fig.axes for p in ax.patches]
    heights = [b.get_height() for b in boxes]
    table = layer_table(Autoencoder())
    smallest = table["output shape"].map(lambda s: math.prod(map(int, s.split("x")))).idxmin() + 1
    assert heights.index(min(heights)) == smallest
