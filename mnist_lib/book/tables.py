"""Tables that compare setups run over several seeds (chapter 5)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..experiments import Config, Runs, epochs_to


def compare_table(runs: Runs, configs: Sequence[Config], metrics: Sequence[str] = ("val_acc", "test_acc"), *,
                  threshold: float = 0.98, by: str = "val_acc") -> pd.DataFrame:
    """Mean and std over seeds of each ``metric`` at the last epoch, and how fast ``by`` reached ``threshold``.

    One row per config (in the given order), columns ``"<metric> mean"``, ``"<metric> std"``
    and ``"epochs to 98% (val)"`` (for the defaults): the first epoch at which ``by``
    reached ``threshold``, averaged over the seeds that reached it (NaN: none did).
    """
    names = [c.name for c in configs]
    missing = sorted(set(names) - set(runs.epochs["config"]))
    if missing:
        raise ValueError(f"no runs of {missing}; runs has {sorted(runs.epochs['config'].unique())}")
    final = runs.final()
    rows = final[final["config"].isin(names)]
    out = rows.groupby("config", sort=False)[list(metrics)].agg(["mean", "std"]).reindex(names)
    out.columns = [f"{m} {s}" for m, s in out.columns]
    where = "val" if by == "val_acc" else by
    reached = epochs_to(runs.epochs[runs.epochs["config"].isin(names)], threshold, by)
    speed = reached.groupby("config")[f"epochs_to_{threshold:g}"].mean().rename(f"epochs to {threshold:.0%} ({where})")
    return out.join(speed)
