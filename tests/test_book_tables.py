"""mnist_lib.book.tables: the comparison table of chapter 5, on hand-made runs."""

from __future__ import annotations

import math
from functools import partial

import pandas as pd
import pytest

from mnist_lib.book.tables import compare_table
from mnist_lib.experiments import Config, Runs
from mnist_lib.models import MLP

A, B = (Config(name, partial(MLP, (784, 8, 10))) for name in ("a", "b"))


def runs(rows: list[tuple]) -> Runs:
    epochs = pd.DataFrame(rows, columns=["config", "seed", "epoch", "val_acc", "test_acc"])
    return Runs(epochs=epochs, steps=pd.DataFrame(), models={})


def test_means_stds_and_epochs_to_threshold():
    table = compare_table(runs([
        ("a", 0, 1, 0.97, 0.96), ("a", 0, 2, 0.985, 0.98),
        ("a", 1, 1, 0.981, 0.97), ("a", 1, 2, 0.99, 0.99),
        ("b", 0, 1, 0.90, 0.91), ("b", 0, 2, 0.95, 0.94),
    ]), [B, A])
    assert list(table.index) == ["b", "a"]  # the order asked for, not the runs' order
    assert list(table.columns) == ["val_acc mean", "val_acc std", "test_acc mean", "test_acc std", "epochs to 98% (val)"]
    assert table.loc["a", "val_acc mean"] == pytest.approx((0.985 + 0.99) / 2)  # last epochs only
    assert table.loc["a", "test_acc std"] == pytest.approx(pd.Series([0.98, 0.99]).std())
    assert table.loc["a", "epochs to 98% (val)"] == pytest.approx(1.5)  # seed 0 at epoch 2, seed 1 at epoch 1
    assert math.isnan(table.loc["b", "epochs to 98% (val)"])  # never reached


def test_threshold_and_metric_name_the_column():
    table = compare_table(runs([("a", 0, 1, 0.9, 0.95), ("a", 0, 2, 0.9, 0.99)]), [A], ("test_acc",),
                          threshold=0.99, by="test_acc")
    assert list(table.columns) == ["test_acc mean", "test_acc std", "epochs to 99% (test_acc)"]
    assert table.loc["a", "epochs to 99% (test_acc)"] == 2


def test_a_config_without_runs_is_named():
    with pytest.raises(ValueError, match=r"no runs of \['b'\]"):
        compare_table(runs([("a", 0, 1, 0.9, 0.9)]), [A, B])
