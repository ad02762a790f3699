"""The speed-tuned recipe and its ablation (mnist_lib.bench.recipe): what each variant changes."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd
import pytest
import torch

from mnist_lib import device as device_mod
from mnist_lib.bench.pipeline import PLAIN, Switches, median_time, recipe_switches
from mnist_lib.bench.recipe import recipe_table, recipe_variants
from mnist_lib.experiments import CONFIGS, SPEEDNET
from mnist_lib.models import SpeedNet


def _changed(config) -> set[str]:
    """The fields of ``config`` that differ from the recipe's (its name aside)."""
    return {f.name for f in fields(config) if f.name != "name" and getattr(config, f.name) != getattr(SPEEDNET, f.name)}


def test_each_variant_takes_out_one_ingredient():
    variants = recipe_variants()
    assert variants[0].config == SPEEDNET and CONFIGS["speednet"] == SPEEDNET
    changed = [_changed(v.config) for v in variants[1:]]
    assert changed == [{"model"}, {"model"}, {"schedule"}, {"lr"}, {"batch_size"}, {"channels_last"}, {"amp"}]
    assert len({v.config.name for v in variants}) == len(variants)  # each run labelled apart
    # a recipe without channels-last or bfloat16 has nothing of them to take out
    plain = recipe_variants(SPEEDNET.with_(channels_last=False, amp=False))
    assert [v.ingredient for v in plain] == [v.ingredient for v in variants[:-2]]


def test_the_recipe_brings_its_own_layout_and_number_format(monkeypatch):
    # The fast preset may have neither; a recipe that asks for them gets them, and its
    # variants without them do not (before, the preset's "plain" overrode the recipe's layout).
    cpu = torch.device("cpu")
    by_ingredient = {v.ingredient: recipe_switches(v.config, PLAIN, cpu) for v in recipe_variants()}
    monkeypatch.setattr(device_mod, "cpu_has_bfloat16", lambda: True)
    assert recipe_switches(SPEEDNET, PLAIN, cpu) == Switches(channels_last=True, amp_bf16=True)
    assert recipe_switches(SPEEDNET.with_(channels_last=False), PLAIN, cpu) == Switches(amp_bf16=True)
    assert recipe_switches(SPEEDNET.with_(amp=False), Switches(threads=1), cpu) == Switches(channels_last=True,
                                                                                            threads=1)
    assert not by_ingredient["the channels-last layout"].channels_last
    assert not by_ingredient["bfloat16 autocast"].amp_bf16
    # where the CPU has no bfloat16 arithmetic, fit would train in float32: so does the switch
    monkeypatch.setattr(device_mod, "cpu_has_bfloat16", lambda: False)
    assert recipe_switches(SPEEDNET, PLAIN, cpu) == Switches(channels_last=True)


def test_median_time_counts_a_run_that_never_got_there_as_infinitely_slow():
    assert median_time([4.0, None, 6.0]) == 6.0
    assert median_time([4.0, float("nan"), None]) is None
    assert median_time([]) is None and median_time([3.0]) == 3.0


def test_speednet_shapes_and_its_no_batch_norm_variant():
    x = torch.rand(4, 1, 28, 28)
    assert SpeedNet()(x).shape == (4, 10) and SpeedNet(batch_norm=False)(x).shape == (4, 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in SpeedNet(batch_norm=False).modules())


def _row(ingredient, seconds, acc=0.99):
    return {"ingredient": ingredient, "instead": "x" if ingredient != "recipe" else "",
            "seconds_to_target": seconds, "final_test_acc": acc}


def test_recipe_table_medians_and_seeds_that_never_got_there():
    rows = [_row("recipe", 4.0), _row("recipe", 5.0), _row("recipe", 6.0),
            _row("slow", 9.0), _row("slow", None), _row("slow", 11.0),
            _row("never", None), _row("never", None), _row("never", 7.0)]
    table = recipe_table(rows).set_index("without")
    assert table.loc["recipe", "seconds_to_target"] == 5.0 and table.loc["recipe", "vs_recipe"] == 1.0
    # a seed that did not get there counts as infinitely slow: the median of (9, 11, inf) is 11
    assert table.loc["slow", "seconds_to_target"] == 11.0 and table.loc["slow", "reached"] == "2/3"
    assert table.loc["slow", "vs_recipe"] == pytest.approx(11 / 5)
    never = table.loc["never"]
    assert pd.isna(never["seconds_to_target"]) and never["reached"] == "1/3" and never["min"] == never["max"] == 7.0
    assert list(table.index) == ["recipe", "slow", "never"]  # the recipe first, the order of the runs kept

