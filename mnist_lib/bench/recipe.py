"""Chapter 9's speed run: which ingredient of the sprint recipe buys what.

The recipe (:data:`~mnist_lib.experiments.SPEEDNET`) reaches 99% test accuracy in a few
seconds of training. Its ablation takes one ingredient out at a time, everything else kept,
and the benchmark times each variant to 99% like the recipe itself
(:func:`mnist_lib.bench.time_to_accuracy`, with the layout and number format each variant
asks for: :func:`~mnist_lib.bench.pipeline.recipe_switches`): a variant that no longer gets
there within its budget, or gets there later, shows what that ingredient was worth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd

from ..experiments import LENET5_IMPROVED, SPEEDNET, Config
from ..models import SpeedNet
from .pipeline import median_time


@dataclass(frozen=True)
class Variant:
    """The recipe with one ingredient changed: what was taken out, and what replaced it."""

    ingredient: str
    instead: str
    config: Config


def recipe_variants(recipe: Config = SPEEDNET) -> list[Variant]:
    """The recipe itself, then one variant per ingredient (same budget, seeds and evaluation)."""

    def without(ingredient: str, instead: str, **changes) -> Variant:
        return Variant(ingredient, instead, recipe.with_(name=f"{recipe.name}, {instead}", **changes))

    variants = [
        Variant("(none: the recipe)", "", recipe),
        without("the network", "chapter 5's improved LeNet-5", model=LENET5_IMPROVED.model),
        without("batch normalisation", "biases, no normalisation", model=partial(SpeedNet, batch_norm=False)),
        without("the one-cycle schedule", "a constant learning rate (the same peak)", schedule="constant"),
        without("the high peak learning rate", f"a peak of {recipe.lr / 2:g}", lr=recipe.lr / 2),
        without(f"batches of {recipe.batch_size}", f"batches of {recipe.batch_size // 2}",
                batch_size=recipe.batch_size // 2),
    ]
    if recipe.channels_last:
        variants.append(without("the channels-last layout", "the default layout", channels_last=False))
    if recipe.amp:
        variants.append(without("bfloat16 autocast", "float32 throughout", amp=False))
    return variants


def recipe_table(rows: list[dict]) -> pd.DataFrame:
    """One line per variant (rows: :func:`~mnist_lib.bench.time_to_accuracy`'s, with ``ingredient``
    and ``instead``): median seconds to the target over its seeds (a seed that never got there
    counts as infinitely slow: None if half of them did not), min, max, how many got there, and
    the ratio to the recipe's median."""
    lines = []
    for (ingredient, instead), runs in pd.DataFrame(rows).groupby(["ingredient", "instead"], sort=False):
        reached = [t for t in runs["seconds_to_target"] if t is not None and not pd.isna(t)]
        lines.append({"without": ingredient, "instead": instead,
                      "seconds_to_target": median_time(runs["seconds_to_target"]),
                      "min": min(reached, default=None), "max": max(reached, default=None),
                      "reached": f"{len(reached)}/{len(runs)}",
                      "final_test_acc": float(runs["final_test_acc"].median())})
    table = pd.DataFrame(lines)
    recipe = table["seconds_to_target"].iloc[0]
    table["vs_recipe"] = [None if t is None or pd.isna(t) or not recipe else t / recipe
                          for t in table["seconds_to_target"]]
    return table
