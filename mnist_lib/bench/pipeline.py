"""The library's side of the benchmark: ``fit`` on device-resident data, and switches that make it fast.

:class:`Switches` change how a training step is computed, never what it computes (except
``amp_bf16``, which rounds to bfloat16): memory layout, compilation, CUDA graphs, tensor
cores, thread count. :func:`train_lib` trains a :class:`~mnist_lib.experiments.Config`
with :func:`~mnist_lib.train.fit` under any combination of them, timed like the baseline
(:mod:`mnist_lib.bench.baseline`); :func:`ablation` measures each one on its own, and
:func:`fast_switches` keeps those that helped on this device: the *fast* preset.
Where a switch cannot run (the CUDA-only ones on a CPU), :func:`switch_problem` says why
and the benchmark reports it as skipped.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields, replace

import pandas as pd
import torch
from torch import nn

from .baseline import EPOCH_IMAGES, AccuracyLog, PeakMemory, TrainClock, sync
from ..callbacks import Callback, Run
from .. import device as device_mod
from ..data import DeviceLoader, Split
from ..experiments import Config
from ..train import History, evaluate, fit, seed_everything

MIN_GAIN = 1.03  # a switch joins the fast preset if it makes the epoch at least 3% faster


@dataclass(frozen=True)
class Switches:
    """How the library computes a training step. Each switch can be measured on its own."""

    channels_last: bool = False  # NHWC memory layout for convolutions
    compile: bool = False  # torch.compile (Inductor): fused kernels
    cuda_graphs: bool = False  # torch.compile(mode="reduce-overhead"): replay whole steps as CUDA graphs
    amp_bf16: bool = False  # autocast to bfloat16 (tensor cores, AVX-512 BF16/AMX); the loss stays float32
    tf32: bool = False  # TF32 tensor cores for float32 matmuls
    cudnn_benchmark: bool = False  # let cuDNN time its algorithms and keep the fastest
    fused_adam: bool = False  # one fused kernel for the whole optimizer step
    threads: int | None = None  # intra-op CPU threads (None: torch's default)

    def changed(self) -> dict:
        """The switches that are on (and the thread count, if set), e.g. ``{"compile": True, "threads": 2}``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (False, None)}

    def label(self) -> str:
        """For tables: ``"compile + threads=2"``, ``"plain"`` when none is on."""
        return " + ".join(name if value is True else f"{name}={value}" for name, value in self.changed().items()) or "plain"


PLAIN = Switches()  # fit as it is
CUDA_ONLY = ("cuda_graphs", "tf32", "cudnn_benchmark", "fused_adam")


def switch_problem(switches: Switches, device: torch.device, config: Config) -> str | None:
    """Why ``switches`` cannot run here (skipped, with this note), or None."""
    missing = [name for name in CUDA_ONLY if getattr(switches, name)]
    if missing and device.type != "cuda":
        return f"CUDA only ({', '.join(missing)}): skipped on {device.type}, no CUDA device"
    if switches.amp_bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16 support"
    if switches.amp_bf16 and device.type == "cpu" and not device_mod.cpu_has_bfloat16():
        return "this CPU has no bfloat16 arithmetic (AVX512-BF16 or AMX): fit would train in float32"
    if switches.fused_adam and config.optimizer not in ("adam", "adamw"):
        return f"fused_adam needs Adam, the setup uses {config.optimizer}"
    if switches.channels_last and not any(isinstance(m, nn.Conv2d) for m in config.model().modules()):
        return "no convolutions: nothing to lay out channels-last"
    return None


@contextmanager
def applied(switches: Switches, device: torch.device):
    """The process-wide settings of ``switches`` (threads, TF32, cuDNN, CUDA graphs), restored afterwards."""
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    benchmark = torch.backends.cudnn.benchmark
    graphs = nullcontext()
    if switches.cuda_graphs:  # what torch.compile(mode="reduce-overhead") turns on, for the model fit compiles
        from torch._inductor import config as inductor

        graphs = inductor.patch({"triton.cudagraphs": True})
    try:
        if switches.threads:
            torch.set_num_threads(switches.threads)
        if switches.tf32:
            torch.set_float32_matmul_precision("high")
        if switches.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        with graphs:
            yield
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(precision)
        torch.backends.cudnn.benchmark = benchmark


def recipe_switches(config: Config, fast: Switches, device: torch.device) -> Switches:
    """The switches of a time-to-accuracy run of ``config``: ``fast``, with the layout and precision
    that ``config`` itself asks for (``channels_last``, ``amp``), since in a sprint recipe they are
    ingredients; bfloat16 only where this device computes in it (elsewhere fit would not use it)."""
    amp = config.amp and switch_problem(Switches(amp_bf16=True), device, config) is None
    return replace(fast, channels_last=config.channels_last, amp_bf16=amp)


def fit_switches(switches: Switches, device: torch.device, config: Config) -> dict:
    """``switches`` as arguments of :func:`~mnist_lib.train.fit` (the process-wide ones: :func:`applied`).

    CUDA graphs are ``compile=True`` under :func:`applied`'s Inductor setting. Adam is fused
    only where the switch says so, also on CUDA where ``fit`` would fuse it by default, so
    that the ablation can measure it.
    """
    kwargs = {"channels_last": switches.channels_last, "amp": switches.amp_bf16,
              "compile": switches.compile or switches.cuda_graphs}
    if device.type == "cuda" and config.optimizer in ("adam", "adamw"):
        kwargs["fused"] = switches.fused_adam
    return kwargs


class Timer(Callback):
    """Times a :func:`~mnist_lib.train.fit` run for the benchmark: training seconds, steps and images.

    The clock starts with training and, every ``eval_every`` steps (when ``test`` is given),
    stops while the test set is evaluated (:class:`~mnist_lib.bench.baseline.AccuracyLog`).
    Training stops at the first evaluation at or above ``target``, or after ``max_steps``.
    """

    def __init__(self, device: torch.device, test: Split | None = None, *, eval_every: int | None = None,
                 target: float | None = None, max_steps: int | None = None):
        self.clock = TrainClock(device)
        self.test = None if test is None else DeviceLoader(test, 1000, shuffle=False, device=device)
        self.eval_every, self.max_steps = eval_every, max_steps
        self.log = AccuracyLog(self.clock, self.accuracy, target)
        self.model: nn.Module | None = None
        self.steps = self.images = 0
        self.stopped = False  # ended before its epochs: at the target or out of steps

    def accuracy(self) -> float:
        """Test accuracy of the model being trained (left in training mode)."""
        acc = evaluate(self.model, self.test)["acc"]
        self.model.train()
        return acc

    def on_fit_start(self, run: Run) -> None:
        self.model = run.model
        self.clock.start()

    def on_step_end(self, run: Run, step: int, loss: torch.Tensor) -> None:
        batch = run.loader.batch_size
        self.steps += 1
        self.images += min(batch, len(run.loader.y) - (step - 1) * batch)
        reached = bool(self.test is not None and self.eval_every and self.steps % self.eval_every == 0
                       and self.log.check(self.steps, self.images))
        if reached or (self.max_steps is not None and self.steps >= self.max_steps):
            run.stop = self.stopped = True
            self.clock.stop()  # what fit does after the last step is not training

    def on_fit_end(self, run: Run) -> None:
        self.clock.stop()
        last = self.log.points[-1]["step"] if self.log.points else None
        if self.test is not None and self.log.seconds_to_target() is None and last != self.steps:
            # the final weights' point, so that every curve ends where its training did
            self.log.points.append({"step": self.steps, "images": self.images, "train_seconds": self.clock.seconds,
                                    "test_acc": self.accuracy()})


def _fit(config: Config, switches: Switches, device: torch.device, train: Split, *, epochs: int, seed: int,
         callbacks: list[Callback] = ()) -> tuple[nn.Module, History]:
    seed_everything(seed)  # the same initial weights as the baseline's
    model = config.model()
    # The switches, not the setup, decide how fast a step is computed.
    history = fit(model, train, seed=seed, device=device, progress=False, callbacks=callbacks,
                  **config.fit_kwargs(epochs=epochs, **fit_switches(switches, device, config)))
    return model, history


def warm_up(config: Config, switches: Switches, device: torch.device, train: Split, test: Split | None) -> float:
    """Compile on a throwaway model, with every shape the real run will meet; the seconds it took.

    The compiled code is cached and reused by the real run's model, so the compilation is
    reported here, separately, instead of inside the first epoch.
    """
    start = time.perf_counter()
    head = train.head(config.batch_size + len(train) % config.batch_size)
    model, _ = _fit(config, switches, device, head, epochs=1, seed=0)
    if test is not None:
        evaluate(model, DeviceLoader(test, 1000, shuffle=False, device=device))
    sync(device)
    return time.perf_counter() - start


def train_lib(config: Config, train: Split, *, device: torch.device, epochs: int, seed: int = 0,
              switches: Switches = PLAIN, test: Split | None = None, eval_every: int | None = None,
              target: float | None = None, max_steps: int | None = None) -> dict:
    """Train ``config`` with :func:`fit`; seconds, images and memory, and the accuracy curve.

    Every ``eval_every`` steps the clock stops and the test set is evaluated; training ends
    at the first evaluation at or above ``target``, or after ``max_steps`` (:class:`Timer`).
    The schedule always spans ``epochs`` epochs.
    """
    problem = switch_problem(switches, device, config)
    if problem:
        raise ValueError(problem)
    with applied(switches, device):
        warmup = warm_up(config, switches, device, train, test) if switches.compile or switches.cuda_graphs else 0.0
        timer = Timer(device, test, eval_every=eval_every, target=target, max_steps=max_steps)
        with PeakMemory(device) as memory:
            _, history = _fit(config, switches, device, train, epochs=epochs, seed=seed, callbacks=[timer])
    # Epoch times only of whole epochs: a run that stopped early has none.
    whole = not timer.stopped and len(history.epochs) == epochs
    log = timer.log
    return {
        "pipeline": "mnist_lib", "switches": switches.label(),
        "epoch_seconds": [record["seconds"] for record in history.epochs] if whole else [],
        "epoch_images": [timer.images // epochs] * epochs if whole else [],
        "train_seconds": timer.clock.seconds, "steps": timer.steps, "images": timer.images,
        "test_acc": log.points[-1]["test_acc"] if log.points else None,
        "curve": log.points, "seconds_to_target": log.seconds_to_target(), "eval_seconds": log.eval_seconds,
        "warmup_seconds": warmup, **memory.as_dict(),
    }


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else None


def median_time(times) -> float | None:
    """The median of times to a target over runs, a run that never got there (None or NaN) counting
    as infinitely slow: None when half of the runs or more never got there, or there are none."""
    times = [math.inf if t is None or t != t else t for t in times]
    if not times:
        return None
    value = float(statistics.median(times))
    return None if value == math.inf else value


def _per_epoch(run: dict, n_images: int) -> float:
    """Seconds per 60,000-image epoch, from a run on ``n_images`` (the median epoch)."""
    return median(run["epoch_seconds"]) * EPOCH_IMAGES / n_images


def ablation_steps(device: torch.device) -> list[tuple[str, str, Switches]]:
    """(change, kind, switches): each change on its own, from plain ``fit``."""
    steps = [("device-resident data (fit)", "pipeline", PLAIN),
             ("channels-last layout", "same training", Switches(channels_last=True)),
             ("torch.compile", "same training", Switches(compile=True))]
    default = torch.get_num_threads()
    steps += [(f"{n} CPU thread{'s' * (n > 1)}", "same training", Switches(threads=n))
              for n in sorted({1, os.cpu_count() or 1} - {default})]
    steps += [("bfloat16 autocast", "same training, bf16 rounding", Switches(amp_bf16=True)),
              ("TF32 matmuls", "same training", Switches(tf32=True)),
              ("cudnn.benchmark", "same training", Switches(cudnn_benchmark=True)),
              ("fused Adam", "same training", Switches(fused_adam=True)),
              ("CUDA graphs (compile, reduce-overhead)", "same training", Switches(cuda_graphs=True))]
    return steps


def ablation(config: Config, train: Split, device: torch.device, *, repeats: int, seed: int = 0,
             compile: bool = True, log=print) -> pd.DataFrame:
    """Seconds per epoch of plain ``fit`` and of each change on its own (median, min and max of ``repeats``).

    The repeats are interleaved (every change once, then again) so that a slow spell of the
    machine hits all of them alike. One more row changes the training itself: 4x the batch.
    """
    steps = ablation_steps(device) + [(f"batch {4 * config.batch_size} instead of {config.batch_size}",
                                       "changes the training", PLAIN)]
    runs: dict[int, list[dict]] = {i: [] for i in range(len(steps))}
    notes: dict[int, str] = {}
    for i, (_, _, switches) in enumerate(steps):
        note = switch_problem(switches, device, config)
        if not note and not compile and (switches.compile or switches.cuda_graphs):
            note = "skipped: compilation turned off for this run (quick mode or --no-compile)"
        if note:
            notes[i] = note
    for repeat in range(repeats):
        for i, (change, kind, switches) in enumerate(steps):
            if i in notes:
                continue
            cfg = config.with_(batch_size=4 * config.batch_size) if kind == "changes the training" else config
            log(f"ablation {repeat + 1}/{repeats}: {change}")
            try:
                runs[i].append(train_lib(cfg, train, device=device, epochs=1, seed=seed, switches=switches))
            except Exception as e:  # a switch this machine cannot do: say so, keep going
                notes[i] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    rows = []
    for i, (change, kind, switches) in enumerate(steps):
        ok = i not in notes and runs[i]
        seconds = [_per_epoch(r, len(train)) for r in runs[i]] if ok else [None]
        rows.append({"change": change, "kind": kind, "switches": switches.label(), "settings": switches.changed(),
                     "status": "measured" if ok else ("failed" if notes[i].startswith("failed") else "skipped"),
                     "note": notes.get(i, ""), "seconds_per_epoch": median(seconds),
                     "seconds_per_epoch_min": min(seconds) if ok else None,
                     "seconds_per_epoch_max": max(seconds) if ok else None,
                     "warmup_seconds": median(r["warmup_seconds"] for r in runs[i]) if ok else None})
    frame = pd.DataFrame(rows)
    plain = frame.loc[0, "seconds_per_epoch"]
    frame["speedup_vs_plain"] = [plain / s if s else None for s in frame["seconds_per_epoch"]]
    return frame


def fast_switches(ablation_frame: pd.DataFrame) -> Switches:
    """The fast preset: every switch that made the epoch >= 3% faster without changing the training, together.

    (bfloat16 autocast counts: it rounds, but trains the same model the same way.)
    """
    chosen = PLAIN
    same = ablation_frame["kind"].str.startswith("same training")
    helpful = ablation_frame[same & (ablation_frame["status"] == "measured")]
    helpful = helpful[helpful["speedup_vs_plain"] >= MIN_GAIN].sort_values("speedup_vs_plain")
    for settings in helpful["settings"]:  # the best last, so the best thread count wins
        chosen = replace(chosen, **settings)
    if chosen.cuda_graphs:
        chosen = replace(chosen, compile=False)  # CUDA graphs are compiled already
    return chosen


def checked(config: Config, switches: Switches, train: Split, test: Split, device: torch.device,
            seed: int = 0) -> tuple[Switches, str]:
    """``switches`` if a short trial run with them works, as time to accuracy uses them (evaluations
    between steps included); else the same without CUDA graphs, then without compilation. Returns
    the switches to use and a note of what was dropped and why ("" if nothing was)."""
    fallbacks = [switches]
    if switches.cuda_graphs:
        fallbacks.append(replace(switches, cuda_graphs=False, compile=True))
    if switches.cuda_graphs or switches.compile:
        fallbacks.append(replace(switches, cuda_graphs=False, compile=False))
    errors = []
    for candidate in fallbacks:
        try:
            train_lib(config, train.head(3 * config.batch_size), device=device, epochs=1, seed=seed,
                      switches=candidate, test=test, eval_every=1)
        except Exception as e:  # noqa: BLE001 - any failure of a switch: fall back, and say why
            errors.append(f"{candidate.label()}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}")
            continue
        return candidate, "; ".join(errors) and f"failed in a trial run, dropped ({'; '.join(errors)})"
    return PLAIN, f"failed in a trial run, dropped ({'; '.join(errors)})"
