"""Chapter 9's live timings: what the speed switches do for a bigger network, and two networks side by side.

Chapter 9 calls :func:`live_timings` as it is executed and shows its table; the benchmark
(:func:`~mnist_lib.bench.run_bench`) runs it too and stores the table in its JSON under
``"live"``. Every time is seconds per 60,000-image epoch, measured on a subset and scaled.
"""

from __future__ import annotations

import pandas as pd
import torch

from .baseline import EPOCH_IMAGES
from .pipeline import PLAIN, Switches, median, switch_problem, train_lib
from ..data import MNIST, Split
from ..experiments import CONFIGS, Config, run_jobs
from ..train import choose_device

# The switches that change a bigger network's speed the most, alone and together.
SWITCH_VARIANTS: dict[str, Switches] = {
    "plain fit": PLAIN,
    "channels-last": Switches(channels_last=True),
    "bfloat16 autocast": Switches(amp_bf16=True),
    "channels-last + bfloat16": Switches(channels_last=True, amp_bf16=True),
}


def switch_timings(config: Config, train: Split, device: torch.device, *, repeats: int = 3) -> pd.DataFrame:
    """``config`` under each of :data:`SWITCH_VARIANTS`: one epoch on ``train`` per run, the variants
    interleaved ``repeats`` times (seed = repeat); the median (min, max), and the speedup over plain ``fit``.
    A variant this device cannot run (bfloat16 on a CPU without bfloat16 arithmetic) gets NaN and a ``note``."""
    notes = {name: switch_problem(switches, device, config) for name, switches in SWITCH_VARIANTS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in SWITCH_VARIANTS}
    for repeat in range(repeats):
        for name, switches in SWITCH_VARIANTS.items():
            if not notes[name]:
                run = train_lib(config, train, device=device, epochs=1, seed=repeat, switches=switches)
                seconds[name].append(run["epoch_seconds"][0] * EPOCH_IMAGES / len(train))
    plain = median(seconds["plain fit"])
    nan = float("nan")
    return pd.DataFrame([{"measurement": "switches", "variant": name, "device": str(device),
                          "seconds_per_epoch": median(values) if values else nan,
                          "seconds_per_epoch_min": min(values, default=nan),
                          "seconds_per_epoch_max": max(values, default=nan),
                          "speedup": plain / median(values) if values else nan, "repeats": repeats if values else 0,
                          "note": notes[name] or ""}
                         for name, values in seconds.items()])


def worker_timings(config: Config, train: Split, test: Split, *, networks: int = 2, epochs: int = 2) -> pd.DataFrame:
    """``networks`` independently seeded copies of ``config`` trained on the CPU one after the other
    (one process, all threads), then side by side (:func:`~mnist_lib.experiments.run_jobs` with one
    worker process each). Each run trains ``epochs`` epochs; the last one is timed (start-up and
    evaluation excluded). The seconds are those of one epoch of every network: summed one after
    the other, the slowest one side by side."""
    data = MNIST(train=train, test=test)
    jobs = [(config.with_(epochs=epochs), seed) for seed in range(networks)]
    last = {}
    for workers in (1, networks):
        runs = run_jobs(jobs, data, workers=workers, device="cpu", progress=False)  # CPU cores: pinned to the CPU
        last[workers] = runs.final()["seconds"] * EPOCH_IMAGES / len(train)
    alone, side_by_side = float(last[1].sum()), float(last[networks].max())
    return pd.DataFrame([
        {"measurement": "workers", "variant": f"{networks} networks one after the other", "device": "cpu",
         "seconds_per_epoch": alone, "speedup": 1.0, "repeats": 1},
        {"measurement": "workers", "variant": f"{networks} networks side by side", "device": "cpu",
         "seconds_per_epoch": side_by_side, "speedup": alone / side_by_side, "repeats": 1},
    ])


def live_timings(train: Split, test: Split, *, config: Config | None = None, device: str | torch.device | None = "cpu",
                 repeats: int = 3) -> pd.DataFrame:
    """Chapter 9's timings of ``config`` (default: chapter 7's BN-CNN, ``CONFIGS["bncnn"]``), one table.

    ``measurement == "switches"``: :func:`switch_timings` on ``device``; ``"workers"``:
    :func:`worker_timings` (always on the CPU, since it measures CPU cores). Columns:
    ``measurement``, ``variant``, ``device``, ``seconds_per_epoch``, ``speedup`` (over the
    measurement's first row), ``repeats`` (median of), ``config``, ``images`` (per timed epoch).
    """
    config = config or CONFIGS["bncnn"]
    table = pd.concat([switch_timings(config, train, choose_device(device), repeats=repeats),
                       worker_timings(config, train, test)], ignore_index=True)
    return table.assign(config=config.name, images=len(train))
