"""How fast can MNIST go? The benchmark behind chapter 9 and ``python -m mnist_lib bench``.

In one process, on one device, with the same model, hyperparameters, seeds and epochs, it
times the conventional pipeline (:mod:`mnist_lib.bench.baseline`) against the library's
(:mod:`mnist_lib.bench.pipeline`: ``fit`` on device-resident data, plain and with the switches
that help on this device), then measures how the cost grows with work (batch size, model
size, FLOPs against the device's measured matmul throughput) and the training time to 99%
test accuracy, and chapter 9's live timings (:func:`~mnist_lib.bench.live.live_timings`). The
per-epoch comparison runs with and without augmentation (:mod:`mnist_lib.bench.comparison`); the
canonical PyTorch MNIST example is a second baseline (:mod:`mnist_lib.bench.canonical`); and
torch.compile's cold start is timed in a fresh process (:mod:`mnist_lib.bench.coldstart`).
:func:`run_bench` runs it all and writes one JSON file; chapter 9 reads it. Every table states
its protocol (``result["protocols"]``).
Every function returns plain dicts or DataFrames. Performance is judged in the output
(:mod:`mnist_lib.bench.report`: PASS / FAIL against the targets), never in timed unit tests.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch

from .baseline import EPOCH_IMAGES, default_workers, sync
from .canonical import canonical_comparison
from .coldstart import compile_cold
from .comparison import calibrate_workers, compare, run_pipeline
from .pipeline import (MIN_GAIN, PLAIN, Switches, ablation, checked, fast_switches, median, median_time,
                        recipe_switches, switch_problem, train_lib)
from .live import live_timings
from .recipe import recipe_table, recipe_variants
from .report import (CH7_TARGET_ACC, PROTOCOLS, TARGET_ACC, TARGET_MODEL, TARGETS, environment,  # noqa: F401
                     format_report, judge, plain, write_json)
from .. import paths
from ..data import Split, load_mnist, torchvision_root
from ..experiments import CONFIGS, LOSSES, Config
from ..models import count_parameters
from ..train import choose_device

RESULTS_DIR = paths.BENCH  # the committed results: cpu.json, cuda.json
# Setups of mnist_lib.experiments.CONFIGS, by name: the benchmarked one (the improved LeNet-5
# of chapter 5, which the targets are for), the model-size sweep, the speed-tuned recipe
# (SpeedNet, timed to 99% and ablated), the first sprint recipe (chapter 5's network, where
# chapter 9's speed run started) and chapter 7's best single network.
DEFAULT_MODEL = TARGET_MODEL
SWEEP_MODELS = ("mlp", "lenet5-improved", "deepcnn")
SPEED_TUNED, FIRST_SPRINT, CHAPTER7 = "speednet", "lenet5-speed", "bncnn"


@dataclass(frozen=True)
class Sizes:
    """How much of MNIST each part of the benchmark uses."""

    train: int | None = None  # training images of the per-epoch comparison (None: all 60,000)
    test: int | None = None  # test images (None: all 10,000)
    ablation: int = 20_000  # images per ablation measurement (extrapolated to an epoch)
    sweep: int = 10_000  # images per point of the batch-size and model-size sweeps
    batch_sizes: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    book_max_epochs: int = 5  # budget of the book-settings time-to-accuracy runs
    chapter7_max_epochs: int | None = None  # budget of chapter 7's run (None: its config's epochs)
    evals_per_epoch: int = 10  # how finely the time to accuracy is resolved
    live: int = 4096  # images per timed epoch of the live timings (chapter 9's)
    compile: bool = True  # the compile measurements: ablation row, cold start (mnist_lib.bench.coldstart)
    matmul_n: int | None = None  # None: 2048 on a CPU, 8192 on a GPU
    canonical_max_epochs: int = 6  # budget of each canonical-example run (mnist_lib.bench.canonical)
    canonical_train: int | None = None  # its training images (None: the run's training set)
    canonical_target: float = TARGET_ACC  # what the canonical runs are timed to


QUICK = Sizes(train=1024, test=500, ablation=512, sweep=512, batch_sizes=(64, 256), book_max_epochs=1,
              chapter7_max_epochs=1, evals_per_epoch=2, compile=False, matmul_n=512, live=256,
              canonical_max_epochs=1, canonical_train=256, canonical_target=0.5)


def sizes_for(device: torch.device, quick: bool = False) -> Sizes:
    """The sizes of a run: :data:`QUICK`, else whole epochs on a GPU, subsets on a CPU."""
    if quick:
        return QUICK
    return Sizes(ablation=EPOCH_IMAGES, sweep=EPOCH_IMAGES) if device.type == "cuda" else Sizes()


def matmul_throughput(device: torch.device, n: int | None = None, repeats: int = 3) -> pd.DataFrame:
    """The device's measured matmul speed (best of ``repeats``): GFLOP/s per number format."""
    n = n or (8192 if device.type == "cuda" else 2048)
    formats = {"float32": (torch.float32, "highest"), "bfloat16": (torch.bfloat16, "highest")}
    if device.type == "cuda":
        formats["tf32"] = (torch.float32, "high")
    inner = 10 if device.type == "cuda" else 1
    rows, precision = [], torch.get_float32_matmul_precision()
    try:
        for name, (dtype, matmul_precision) in formats.items():
            torch.set_float32_matmul_precision(matmul_precision)
            a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
            a @ b  # warm-up
            times = []
            for _ in range(repeats):
                sync(device)
                start = time.perf_counter()
                for _ in range(inner):
                    a @ b
                sync(device)
                times.append((time.perf_counter() - start) / inner)
            rows.append({"format": name, "n": n, "seconds": min(times), "gflops": 2 * n**3 / min(times) / 1e9})
    finally:
        torch.set_float32_matmul_precision(precision)
    return pd.DataFrame(rows)


def training_flops_per_image(config: Config, batch: int = 16) -> float:
    """FLOPs of one training step per image (forward + backward), counted by torch's FlopCounterMode.

    Matmuls and convolutions only: activations, pooling and the optimizer are memory-bound
    and add little arithmetic.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = config.model()
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as counter:
        LOSSES[config.loss](model(x), y).backward()
    return counter.get_total_flops() / batch


def sweep_switches(fast: Switches, device: torch.device, config: Config) -> Switches:
    """The fast preset for the sweeps: without compilation (each new shape would compile afresh),
    and without what ``config`` cannot use (channels-last without convolutions)."""
    switches = replace(fast, compile=False, cuda_graphs=False)
    if switch_problem(Switches(channels_last=switches.channels_last), device, config):
        switches = replace(switches, channels_last=False)
    return switches


def batch_sweep(config: Config, train: Split, root, device: torch.device, batch_sizes, *, fast: Switches = PLAIN,
                seed: int = 0, workers: int | None = None, log=print) -> pd.DataFrame:
    """Seconds per epoch against the batch size, both pipelines.

    Each point trains two epochs on ``train`` and times the second (start-up excluded),
    scaled to a 60,000-image epoch.
    """
    rows = []
    switches = sweep_switches(fast, device, config)
    for batch_size in batch_sizes:
        for pipeline in ("baseline", "mnist_lib"):
            log(f"batch-size sweep: {pipeline}, batch {batch_size}")
            run = run_pipeline(pipeline, config.with_(batch_size=batch_size), train, None, root, device, epochs=2,
                               seed=seed, switches=switches, workers=workers)
            seconds = run["epoch_seconds"][-1] * EPOCH_IMAGES / len(train)
            rows.append({"pipeline": pipeline, "batch_size": batch_size, "seconds_per_epoch": seconds,
                         "images_per_second": EPOCH_IMAGES / seconds,
                         "switches": "" if pipeline == "baseline" else switches.label()})
    return pd.DataFrame(rows)


def model_sweep(configs: dict[str, Config], train: Split, root, device: torch.device, *, fast: Switches = PLAIN,
                peak_gflops: float | None = None, seed: int = 0, workers: int | None = None, log=print) -> pd.DataFrame:
    """Seconds per epoch, FLOPs per epoch and the share of the matmul peak they reach, per model.

    Timed like :func:`batch_sweep` (the second of two epochs on ``train``, scaled to 60,000
    images), each model with its own batch size and recipe (augmentation included).
    """
    rows = []
    for name, config in configs.items():
        flops = training_flops_per_image(config)
        switches = sweep_switches(fast, device, config)
        for pipeline in ("baseline", "mnist_lib"):
            log(f"model-size sweep: {pipeline}, {name}")
            run = run_pipeline(pipeline, config, train, None, root, device, epochs=2, seed=seed, switches=switches,
                               workers=workers)
            seconds = run["epoch_seconds"][-1] * EPOCH_IMAGES / len(train)
            achieved = flops * EPOCH_IMAGES / seconds / 1e9
            rows.append({"model": name, "config": config.name, "parameters": count_parameters(config.model()),
                         "batch_size": config.batch_size, "pipeline": pipeline,
                         "switches": "" if pipeline == "baseline" else switches.label(),
                         "gflop_per_epoch": flops * EPOCH_IMAGES / 1e9, "seconds_per_epoch": seconds,
                         "achieved_gflops": achieved,
                         "fraction_of_matmul_peak": achieved / peak_gflops if peak_gflops else None})
    return pd.DataFrame(rows)


def time_to_accuracy(config: Config, train: Split, test: Split, device: torch.device, *, pipeline: str = "mnist_lib",
                     switches: Switches | None = None, target: float = TARGET_ACC, seed: int = 0, root=None,
                     max_epochs: int | None = None, evals_per_epoch: int = 10, workers: int | None = None,
                     label: str = "") -> tuple[dict, list[dict]]:
    """Training seconds from the first step to the first evaluation at or above ``target``.

    The test set is evaluated every 1/``evals_per_epoch`` epoch with the clock stopped; the
    schedule spans ``config.epochs`` and training stops at the target or after
    ``max_epochs`` (default: ``config.epochs``). ``switches`` default to plain ``fit`` with the
    layout and precision ``config`` asks for (:func:`~mnist_lib.bench.pipeline.recipe_switches`).
    Returns a summary row and the curve.
    """
    device = torch.device(device)
    switches = recipe_switches(config, PLAIN, device) if switches is None else switches
    steps_per_epoch = -(-len(train) // config.batch_size)
    eval_every = max(1, steps_per_epoch // evals_per_epoch)
    max_steps = (max_epochs or config.epochs) * steps_per_epoch
    run = run_pipeline(pipeline, config, train, test, root, device, epochs=config.epochs, seed=seed, switches=switches,
                       workers=workers, eval_every=eval_every, target=target, max_steps=max_steps)
    label = label or f"{pipeline}, {config.name}"
    reached = run["seconds_to_target"]
    row = {"run": label, "pipeline": pipeline, "config": str(config),
           "switches": "" if pipeline == "baseline" else switches.label(), "seed": seed, "target": target,
           "reached": reached is not None, "seconds_to_target": reached, "warmup_seconds": run["warmup_seconds"],
           "seconds_incl_warmup": None if reached is None else reached + run["warmup_seconds"],
           "steps": run["steps"], "images": run["images"], "epochs_trained": run["images"] / len(train),
           "final_test_acc": run["curve"][-1]["test_acc"] if run["curve"] else None,
           "eval_every_steps": eval_every, "eval_seconds": run["eval_seconds"]}
    return row, [{"run": label, "seed": seed} | point for point in run["curve"]]


def _per_epoch_headline(comparison: pd.DataFrame, suffix: str = "") -> dict:
    """The headline's per-epoch numbers of one comparison table, ``suffix`` after each name."""
    summary = comparison.set_index("pipeline")
    lib = summary.loc["mnist_lib fast" if "mnist_lib fast" in summary.index else "mnist_lib plain"]
    return {f"lib_pipeline{suffix}": lib["how"], f"lib_epoch_seconds{suffix}": lib["seconds_per_epoch"],
            f"baseline_epoch_seconds{suffix}": summary.loc["baseline", "seconds_per_epoch"],
            f"speedup_vs_baseline{suffix}": lib["speedup_vs_baseline"],
            f"speedup_vs_baseline{suffix}_min": lib["speedup_vs_baseline_min"],
            f"speedup_vs_baseline{suffix}_max": lib["speedup_vs_baseline_max"]}


def _headline(result: dict, tuned: list[dict], canonical: dict) -> dict:
    """The numbers the targets judge, and what qualifies them (min-max over repeats, runs reached)."""
    times = [r["seconds_to_target"] for r in tuned]
    reached = [t for t in times if t is not None]
    return {**_per_epoch_headline(result["comparison"]), "seconds_to_99": median_time(times),
            "seconds_to_99_min": min(reached, default=None), "seconds_to_99_max": max(reached, default=None),
            "seconds_to_99_runs_reached": f"{len(reached)}/{len(tuned)}",
            "warmup_seconds": median(r["warmup_seconds"] for r in tuned),
            **_per_epoch_headline(result["comparison_no_aug"], "_no_aug"), **canonical,
            "compile_cold_seconds": result["compile_cold"]["compile_cold_seconds"]}


def run_bench(device: str | torch.device | None = None, model: str = DEFAULT_MODEL, epochs: int = 2,
              repeats: int = 3, quick: bool = False, out: str | os.PathLike | None = None, *, seed: int = 0,
              threads: int | None = None, compile: bool = True, workers: int | None = None,
              speed_tuned: Config = CONFIGS[SPEED_TUNED], sizes: Sizes | None = None, log=None) -> dict:
    """Run the whole benchmark; return it as a dict and write it to ``out`` (JSON) if given.

    ``quick`` runs every part on a small subset (1 epoch, 1 repeat, no compilation): it
    checks the code, its numbers mean nothing. ``threads`` sets torch's CPU threads for the
    whole run; ``workers`` the baseline's DataLoader workers (default: see
    :func:`~mnist_lib.bench.baseline.default_workers`); ``log`` receives progress lines.
    ``model`` names a setup of :data:`~mnist_lib.experiments.CONFIGS`.
    """
    # Over 60 lines on purpose: the benchmark's parts in the order they run, each one call, read top to bottom.
    if model not in CONFIGS:
        raise ValueError(f"unknown model {model!r}; expected one of: {', '.join(CONFIGS)}")
    if epochs < 1 or repeats < 1:
        raise ValueError(f"epochs and repeats must be positive integers, got {epochs} and {repeats}")
    device, log = choose_device(device), log or (lambda message: None)
    sizes = sizes or sizes_for(device, quick)
    epochs, repeats = (1, 1) if quick else (epochs, repeats)
    config, started, old_threads = CONFIGS[model], time.perf_counter(), torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        data = load_mnist()
        train, test = data.train.head(sizes.train or EPOCH_IMAGES), data.test.head(sizes.test or 10_000)
        result = {"schema": 1, "environment": environment(device), "settings": {
            "model": model, "config": str(config), "epochs": epochs, "repeats": repeats, "quick": quick, "seed": seed,
            "threads": torch.get_num_threads(), "workers": workers, "train_images": len(train),
            "test_images": len(test), "config_no_aug": str(config.with_(augment=None)),
            "sizes": asdict(sizes), "speed_tuned": str(speed_tuned), "target_acc": TARGET_ACC,
            "min_gain_for_fast_preset": MIN_GAIN}}
        log("matmul throughput")
        result["matmul"] = matmul_throughput(device, sizes.matmul_n)
        log("warming up the process (untimed)")  # first-call costs of kernels and allocator, paid before any timing
        train_lib(config, train.head(2 * config.batch_size), device=device, epochs=1, seed=seed)
        result["ablation"] = ablation(config, train.head(sizes.ablation), device, repeats=repeats, seed=seed,
                                      compile=compile and sizes.compile, log=log)
        fast, note = checked(config, fast_switches(result["ablation"]), train, test, device, seed)
        result["fast_switches"], result["fast_switches_note"] = fast.label(), note
        skipped = result["ablation"][result["ablation"]["status"] != "measured"]
        result["skipped"] = skipped[["change", "note"]]
        with tempfile.TemporaryDirectory() as tmp:
            root = torchvision_root(tmp)
            sweep = train.head(sizes.sweep)
            if workers is not None:
                result["baseline_workers"] = {"chosen": workers, "how": "given (--workers)", "trials": []}
            elif quick:
                workers = default_workers(device)
                result["baseline_workers"] = {"chosen": workers, "how": "default (quick: not measured)", "trials": []}
            else:
                workers, trials = calibrate_workers(config, sweep, root, device, seed=seed, log=log)
                result["baseline_workers"] = {"chosen": workers, "how": "measured, fastest", "trials": trials}
            result["epochs"], result["comparison"] = compare(config, train, test, root, device, epochs=epochs,
                                                             repeats=repeats, seed=seed, fast=fast, workers=workers,
                                                             log=log)
            if config.augment is None:  # nothing to leave out: that comparison was without augmentation
                result["epochs_no_aug"], result["comparison_no_aug"] = result["epochs"], result["comparison"]
            else:  # the same protocol, the headline pipelines only (plain fit is in the table above)
                result["epochs_no_aug"], result["comparison_no_aug"] = compare(
                    config.with_(augment=None), train, test, root, device, epochs=epochs, repeats=repeats, seed=seed,
                    fast=fast, workers=workers, plain=False, label=" without augmentation", log=log)
            result["batch_sweep"] = batch_sweep(config, sweep, root, device, sizes.batch_sizes, fast=fast, seed=seed,
                                                workers=workers, log=log)
            fmt = "bfloat16" if fast.amp_bf16 else "tf32" if fast.tf32 else "float32"
            peak = float(result["matmul"].set_index("format").loc[fmt, "gflops"])  # in the fast preset's format
            result["peak"] = {"format": fmt, "gflops": peak}
            result["model_sweep"] = model_sweep({name: CONFIGS[name] for name in SWEEP_MODELS}, sweep, root, device,
                                                fast=fast, peak_gflops=peak, seed=seed, workers=workers, log=log)
            tuned, book_runs, curves = [], [], []
            common = dict(target=TARGET_ACC, root=root, evals_per_epoch=sizes.evals_per_epoch, workers=workers)
            # Each recipe runs with the fast preset plus its own layout and number format; its label names them.
            own = recipe_switches(speed_tuned, fast, device)
            for i in range(repeats):  # the speed-tuned run, one seed per repeat
                log(f"time to {TARGET_ACC:.0%}: speed-tuned, seed {seed + i}")
                row, curve = time_to_accuracy(speed_tuned, train, test, device, seed=seed + i, switches=own,
                                              label=f"mnist_lib ({own.label()}), {speed_tuned.name}", **common)
                tuned.append(row)
                curves.extend(curve)
            recipe_runs = [{"ingredient": "(none: the recipe)", "instead": ""} | row for row in tuned]
            for variant in recipe_variants(speed_tuned)[1:]:  # the recipe's ablation: one ingredient out at a time
                for i in range(repeats):
                    log(f"time to {TARGET_ACC:.0%}: the recipe without {variant.ingredient}, seed {seed + i}")
                    row, _ = time_to_accuracy(variant.config, train, test, device, seed=seed + i,
                                              switches=recipe_switches(variant.config, fast, device),
                                              label=f"recipe without {variant.ingredient}", **common)
                    recipe_runs.append({"ingredient": variant.ingredient, "instead": variant.instead} | row)
            result["recipe_ablation"], result["recipe_runs"] = recipe_table(recipe_runs), pd.DataFrame(recipe_runs)
            first = CONFIGS[FIRST_SPRINT]  # the first sprint recipe, where the speed run started (one seed)
            log(f"time to {TARGET_ACC:.0%}: the first sprint recipe ({first.name})")
            own = recipe_switches(first, fast, device)
            row, curve = time_to_accuracy(first, train, test, device, switches=own, seed=seed,
                                          label=f"mnist_lib ({own.label()}), {first.name} (first sprint)", **common)
            book_runs.append(row)
            curves.extend(curve)
            book = CONFIGS[DEFAULT_MODEL]
            for pipeline, switches in (("baseline", PLAIN), ("mnist_lib", fast)):  # the book's own settings
                log(f"time to {TARGET_ACC:.0%}: book settings, {pipeline}")
                row, curve = time_to_accuracy(book, train, test, device, pipeline=pipeline, switches=switches,
                                              seed=seed, max_epochs=sizes.book_max_epochs,
                                              label=f"{pipeline}, {book.name} (book settings)", **common)
                book_runs.append(row)
                curves.extend(curve)
            log(f"time to {CH7_TARGET_ACC:.1%}: chapter 7's best network")
            ch7 = CONFIGS[CHAPTER7]
            own = recipe_switches(ch7, fast, device)
            own = own if switch_problem(own, device, ch7) is None else sweep_switches(own, device, ch7)
            row, curve = time_to_accuracy(ch7, train, test, device, switches=own, seed=seed,
                                          max_epochs=sizes.chapter7_max_epochs, label=f"mnist_lib ({own.label()}), "
                                          f"{ch7.name}", **(common | {"target": CH7_TARGET_ACC}))
            result["chapter7"] = {"target": CH7_TARGET_ACC, "run": row, "curve": curve}
            result["canonical"], canonical = canonical_comparison(
                train.head(sizes.canonical_train or len(train)), test, root, device,
                library_seconds=median_time(r["seconds_to_target"] for r in tuned), seed=seed,
                max_epochs=sizes.canonical_max_epochs, target=sizes.canonical_target, log=log)
        result["time_to_accuracy"], result["curves"] = pd.DataFrame(tuned + book_runs), pd.DataFrame(curves)
        log("live timings (chapter 9's)")
        result["live"] = live_timings(train.head(sizes.live), test.head(1000), device=device, repeats=repeats)
        if compile and sizes.compile:
            log("torch.compile, cold: the first compiled step in a fresh process")
            result["compile_cold"] = compile_cold(model, device, batch_size=config.batch_size)
        else:
            result["compile_cold"] = {"compile_cold_seconds": None, "note": "skipped: compilation turned off for this "
                                                                            "run (quick mode or --no-compile)"}
    finally:
        torch.set_num_threads(old_threads)
    result["headline"] = _headline(result, tuned, canonical)
    result["protocols"] = PROTOCOLS
    result["targets"] = judge(result)
    result["wall_seconds"] = time.perf_counter() - started
    result = plain(result)
    if out is not None:
        write_json(result, out)
    return result
