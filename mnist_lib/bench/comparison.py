"""The per-epoch comparison: the conventional pipeline against mnist_lib's, with one stated protocol.

:func:`compare` trains the same :class:`~mnist_lib.experiments.Config` with both pipelines,
interleaved over repeats, and reports the median *steady* epoch (every epoch after the
first) with its min and max; :func:`calibrate_workers` first picks the baseline's fastest
``num_workers`` on this machine, so that the baseline is not handicapped.
"""

from __future__ import annotations

import os

import pandas as pd
import torch

from .baseline import EPOCH_IMAGES, run_baseline
from .pipeline import PLAIN, Switches, median, train_lib
from ..data import Split
from ..experiments import Config

def run_pipeline(pipeline: str, config: Config, train: Split, test: Split | None, root, device, *, epochs: int = 1,
         seed: int = 0, switches: Switches = PLAIN, workers: int | None = None, **timing) -> dict:
    """One training run of ``pipeline`` (``"baseline"`` or ``"mnist_lib"``)."""
    if pipeline == "baseline":
        return run_baseline(config, root, device=device, epochs=epochs, seed=seed, train_limit=len(train),
                            test_limit=len(test) if test is not None else 100, workers=workers, **timing)
    return train_lib(config, train, device=device, epochs=epochs, seed=seed, switches=switches, test=test, **timing)


def compare(config: Config, train: Split, test: Split, root, device: torch.device, *, epochs: int, repeats: int,
            seed: int = 0, fast: Switches = PLAIN, workers: int | None = None, plain: bool = True, label: str = "",
            log=print) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline against mnist_lib (plain, and fast if any switch helped), interleaved ``repeats`` times.

    Returns one row per pipeline, repeat and epoch, and a summary per pipeline. Its
    ``seconds_per_epoch`` is the median *steady* epoch (every epoch after the first, when
    there are several); the first epoch, which also pays for starting DataLoader workers
    and warming caches, is reported on its own, and so is any compilation (``warmup``).
    ``speedup_vs_baseline`` is the median over repeats of each repeat's ratio. Each median
    comes with its min and max (``_min``, ``_max``: over the steady epochs of all repeats,
    over the repeats' ratios). Test accuracy is evaluated after training, outside the clock;
    memory is the peak of the run. ``plain=False`` leaves plain ``fit`` out when the fast
    preset differs from it; ``label`` goes into the progress lines.
    """
    pipelines = [("baseline", "baseline", PLAIN)]
    if plain or fast == PLAIN:
        pipelines.append(("mnist_lib plain", "mnist_lib", PLAIN))
    if fast != PLAIN:
        pipelines.append(("mnist_lib fast", "mnist_lib", fast))
    rows, runs = [], {name: [] for name, _, _ in pipelines}
    for repeat in range(repeats):
        for name, kind, switches in pipelines:
            log(f"per-epoch comparison{label} {repeat + 1}/{repeats}: {name}")
            run = run_pipeline(kind, config, train, test, root, device, epochs=epochs, seed=seed, switches=switches,
                               workers=workers)
            runs[name].append(run)
            for epoch, (seconds, images) in enumerate(zip(run["epoch_seconds"], run["epoch_images"], strict=True), 1):
                rows.append({"pipeline": name, "repeat": repeat + 1, "epoch": epoch, "seconds": seconds,
                             "images": images, "images_per_second": images / seconds})

    def steady(run: dict) -> list[float]:
        return run["epoch_seconds"][1:] or run["epoch_seconds"]

    base = [median(steady(r)) for r in runs["baseline"]]
    summary = []
    for name, kind, switches in pipelines:
        mine = [median(steady(r)) for r in runs[name]]
        epochs_seen = [s for r in runs[name] for s in steady(r)]
        seconds, ratios = median(epochs_seen), [b / m for b, m in zip(base, mine, strict=True)]
        first = runs[name][0]
        loader = first.get("loader", {})
        memory = {key: max((r[key] or 0) for r in runs[name]) or None
                  for key in ("host_peak_mb", "host_start_mb", "device_peak_mb")}
        summary.append({
            "pipeline": name,
            "how": (f"fit, {switches.label()}" if kind != "baseline" else
                    f"DataLoader, {loader['num_workers']} worker(s), pin_memory={loader['pin_memory']}"),
            "seconds_per_epoch": seconds, "images_per_epoch": first["epoch_images"][0],
            "images_per_second": first["epoch_images"][0] / seconds,
            "first_epoch_seconds": median(r["epoch_seconds"][0] for r in runs[name]),
            "warmup_seconds": median(r["warmup_seconds"] for r in runs[name]),
            "speedup_vs_baseline": median(ratios),
            "seconds_per_epoch_min": min(epochs_seen), "seconds_per_epoch_max": max(epochs_seen),
            "speedup_vs_baseline_min": min(ratios), "speedup_vs_baseline_max": max(ratios),
            "test_acc": sum(r["test_acc"] for r in runs[name]) / len(runs[name]),
            **memory,
            "host_added_mb": memory["host_peak_mb"] - memory["host_start_mb"] if memory["host_start_mb"] else None,
        })
    return pd.DataFrame(rows), pd.DataFrame(summary)


def calibrate_workers(config: Config, train: Split, root, device: torch.device, *, seed: int = 0,
                      log=print) -> tuple[int, pd.DataFrame]:
    """The baseline's best ``num_workers`` on this machine, measured: the second of two epochs on
    ``train`` for each candidate (none, one, two on a CPU; two, four, eight feeding a GPU), up
    to the number of cores. The baseline then runs with the fastest, so it is not handicapped
    by a worker setting that does not suit the machine."""
    cores = os.cpu_count() or 1
    candidates = (0, 1, 2) if device.type == "cpu" else (2, 4, 8)
    candidates = [n for n in candidates if n <= max(cores - (device.type != "cpu"), 0)] or [0]
    rows = []
    for workers in candidates:
        log(f"baseline DataLoader workers: trying {workers}")
        run = run_pipeline("baseline", config, train, None, root, device, epochs=2, seed=seed, workers=workers)
        rows.append({"num_workers": workers, "seconds_per_epoch": run["epoch_seconds"][-1] * EPOCH_IMAGES / len(train)})
    frame = pd.DataFrame(rows)
    return int(frame.loc[frame["seconds_per_epoch"].idxmin(), "num_workers"]), frame
