"""The figures of the page "The networks of this book": each network drawn from its stored layer table."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from . import figure

PAGE = "networks"
# The page's networks, in its order (keys of its NETWORKS table)
KEYS = ("mlp100", "mlp300", "autoencoder", "conv-autoencoder", "lenet5", "lenet5-improved", "deepcnn", "bncnn",
        "canonical")


def layers_table(networks: dict[str, tuple[str, object, str]]) -> pd.DataFrame:
    """Every network's layer table, one below the other: key, title (name, chapter, weights), then layer_table's."""
    from ...models import count_parameters, layer_table  # the models, only when tables are made

    frames = []
    for key, (name, make, chapter) in networks.items():
        title = f"{name} (chapter {int(chapter[:2])}): {count_parameters(make()):,} weights"
        frames.append(layer_table(make()).assign(key=key, title=title))
    table = pd.concat(frames, ignore_index=True)
    return table[["key", "title", *[c for c in table.columns if c not in ("key", "title")]]]


def _drawer(key: str):
    def draw(layers: pd.DataFrame) -> Figure:
        rows = layers[layers["key"] == key]
        return plots.architecture(rows.drop(columns=["key", "title"]).astype({"output shape": str}),
                                  title=rows["title"].iloc[0])

    draw.__name__ = f"network_{key.replace('-', '_')}"
    draw.__doc__ = f"The network {key!r}, one box per layer of its stored layer table."
    return draw


for _key in KEYS:
    figure(f"net-{_key}", PAGE, f"The network {_key}, one box per layer", ("network_layers",))(_drawer(_key))
