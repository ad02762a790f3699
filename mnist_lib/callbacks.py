"""Callbacks: what :func:`~mnist_lib.train.fit` does besides training, one small class each.

A callback sees the run (:class:`Run`) at four moments: before the first epoch, after
every step, after every epoch and at the end. It may end the training early
(``run.stop = True``) or, when it restores a run, move ``run.start_epoch``. The standard
ones: :class:`DivergenceCheck` (always on), :class:`Checkpoint` (``fit(checkpoint=...)``),
:class:`ProgressBar` (``fit(progress=...)``), :class:`OnEpoch` (``fit(on_epoch=...)``) and
:class:`StopAt`. For example, to stop as soon as the test accuracy reaches 99%::

    fit(model, data.train, evals={"test": data.test}, epochs=20, callbacks=[StopAt("test_acc", 0.99)])

A step's loss reaches ``on_step_end`` as a tensor on the device: reading it (``.item()``)
makes the host wait for the device, so callbacks read losses rarely, as
:class:`DivergenceCheck` does (every :data:`DIVERGENCE_CHECK_STEPS` steps).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ckpt

if TYPE_CHECKING:
    from .data import DeviceLoader
    from .train import History

# Reading the device's losses (which makes the host wait for the device, a "sync") only
# this often and at the end of each epoch; a NaN is named by its step.
DIVERGENCE_CHECK_STEPS = 100
# An epoch whose mean loss is this many times the run's first loss is "exploding".
LOSS_EXPLOSION_FACTOR = 100.0
# Optimizer settings that change how a step is computed, not what it computes.
IMPLEMENTATION_FLAGS = {"foreach", "fused", "capturable", "differentiable"}


class TrainingDiverged(FloatingPointError):
    """The loss (or the weights) became NaN or infinite."""


class LossExplosionWarning(UserWarning):
    """The training loss grew by orders of magnitude (yet stayed finite)."""


@dataclass
class Run:
    """What callbacks see of a run of :func:`~mnist_lib.train.fit`; they may set ``start_epoch`` and ``stop``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: DeviceLoader
    history: History
    device: torch.device
    epochs: int
    epoch: int = 0  # the epoch being trained, or just finished
    start_epoch: int = 1  # a callback that restores a run moves it
    stop: bool = False  # set in on_step_end or on_epoch_end to end the training after that step or epoch


class Callback:
    """Does nothing; subclasses override the moments they need.

    ``on_step_end`` comes after the optimizer's step, before the learning-rate schedule
    moves on (``run.optimizer.param_groups[0]["lr"]`` is the rate the step used); ``step``
    counts from 1 within the epoch. ``on_epoch_end`` gets the epoch's record, already in
    ``run.history``.
    """

    def on_fit_start(self, run: Run) -> None: ...

    def on_step_end(self, run: Run, step: int, loss: torch.Tensor) -> None: ...

    def on_epoch_end(self, run: Run, record: dict) -> None: ...

    def on_fit_end(self, run: Run) -> None: ...


def _all_finite(model: nn.Module) -> bool:
    """Whether every weight is finite, with one host sync (not one per tensor)."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


class DivergenceCheck(Callback):
    """Raise :class:`TrainingDiverged` when the loss or the weights become NaN or infinite.

    The losses are checked every :data:`DIVERGENCE_CHECK_STEPS` steps and at the end of
    each epoch (the message names the epoch, the step and the learning rate of the first
    bad loss); the weights at the end of each epoch, before any later callback (such as
    :class:`Checkpoint`) sees them. A loss that grows by orders of magnitude
    (:data:`LOSS_EXPLOSION_FACTOR` times the first step's) without becoming NaN gives a
    :class:`LossExplosionWarning`, once. ``checkpoint``: the file a :class:`Checkpoint`
    writes, named in the message as still holding the last good epoch.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None):
        self.checkpoint = checkpoint

    def on_fit_start(self, run: Run) -> None:
        self.pending: list[tuple[int, torch.Tensor, float]] = []  # (step, loss, learning rate) not yet checked
        self.last_step, self.warned = 0, False

    def on_step_end(self, run: Run, step: int, loss: torch.Tensor) -> None:
        self.pending.append((step, loss, run.optimizer.param_groups[0]["lr"]))
        self.last_step = step
        if step % DIVERGENCE_CHECK_STEPS == 0:
            self._check_losses(run)

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self._check_losses(run)
        # A finite loss can still come with an infinite gradient (the last step's update
        # is only seen by the next step's loss): such weights must never be saved.
        if not _all_finite(run.model):
            lr = run.optimizer.param_groups[0]["lr"]
            raise self._diverged("the weights became NaN or infinite (every loss was finite)", run, self.last_step, lr)
        first = run.history.step_loss[0]
        if not self.warned and first > 0 and record["train_loss"] > LOSS_EXPLOSION_FACTOR * first:
            self.warned = True
            warnings.warn(f"the training loss exploded: from {first:.4g} at the first step to a mean of "
                          f"{record['train_loss']:.4g} in epoch {run.epoch} (learning rate "
                          f"{float(run.optimizer.param_groups[0]['lr']):g}); the learning rate is probably too high",
                          LossExplosionWarning, stacklevel=3)  # at the caller of fit

    def _check_losses(self, run: Run) -> None:
        if self.pending and not torch.stack([loss for _, loss, _ in self.pending]).isfinite().all():
            step, loss, lr = next(entry for entry in self.pending if not math.isfinite(entry[1].item()))
            raise self._diverged(f"loss became {loss.item()}", run, step, lr)
        self.pending.clear()

    def _diverged(self, what: str, run: Run, step: int, lr) -> TrainingDiverged:
        kept = (f" The checkpoint {self.checkpoint} still holds epoch {run.epoch - 1}."
                if self.checkpoint is not None and run.epoch > 1 else "")
        return TrainingDiverged(f"{what} at epoch {run.epoch}, step {step} (learning rate {float(lr)}). "
                                f"Hint: lower the learning rate, or check the inputs for NaN.{kept}")


def run_settings(run: Run) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint."""
    opt = run.optimizer
    hyper = {k: v for k, v in opt.defaults.items()
             if k not in IMPLEMENTATION_FLAGS and isinstance(v, (bool, int, float, str, tuple, type(None)))}
    loader = run.loader
    return {
        "epochs": run.epochs,
        "batch_size": loader.batch_size,
        "seed": loader.generator.initial_seed(),
        "schedule": type(run.scheduler).__name__,
        "optimizer": type(opt).__name__,
        "hyperparameters": hyper,
        "train": f"{len(loader.y)} images, SHA-256 {ckpt.fingerprint(loader.x, loader.y)}",
    }


class Checkpoint(Callback):
    """Write the whole state of the run to ``path`` after every epoch; with ``resume``, first continue from it.

    The file is replaced atomically (a crash never leaves a half-written file), see
    :mod:`mnist_lib.checkpoint`. Without ``resume`` an existing file is replaced; with it,
    the run continues from the file if it exists (else starts afresh). The run must have
    the same model and settings; on the CPU the result is bitwise the one of an
    uninterrupted run, and a finished run is not trained again (its weights and History
    are restored). Put it before callbacks that depend on where the run starts.
    """

    def __init__(self, path: str | os.PathLike, resume: bool = False):
        self.path, self.resume = Path(path), resume

    def on_fit_start(self, run: Run) -> None:
        self.parts = dict(model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                          generator=run.loader.generator, run=run_settings(run))
        if self.resume and self.path.exists():
            done, restored = ckpt.resume_checkpoint(self.path, **self.parts)
            run.history.step_loss[:], run.history.epochs[:] = restored["step_loss"], restored["epochs"]
            run.start_epoch = done + 1

    def on_epoch_end(self, run: Run, record: dict) -> None:
        ckpt.save_checkpoint(self.path, epoch=run.epoch, history=asdict(run.history), **self.parts)


class ProgressBar(Callback):
    """A progress bar over all the steps of the run, with the last epoch's losses and accuracies."""

    def on_fit_start(self, run: Run) -> None:
        steps = len(run.loader)
        self.bar = tqdm(total=run.epochs * steps, initial=(run.start_epoch - 1) * steps, unit="batch", desc="training")

    def on_step_end(self, run: Run, step: int, loss: torch.Tensor) -> None:
        self.bar.update()

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.bar.set_postfix({k: round(v, 4) for k, v in record.items() if k.endswith(("_loss", "_acc"))})

    def on_fit_end(self, run: Run) -> None:
        self.bar.close()


class StopAt(Callback):
    """End the training after the first epoch whose ``metric`` (a key of its record) reaches ``value``.

    Losses (``metric`` ending in ``_loss``) must fall to ``value``, anything else rise to it.
    """

    def __init__(self, metric: str = "test_acc", value: float = 0.99):
        self.metric, self.value = metric, value

    def on_epoch_end(self, run: Run, record: dict) -> None:
        if self.metric not in record:
            raise KeyError(f"StopAt: the epoch records have no {self.metric!r}; they have {', '.join(record)} "
                           "(evaluation sets give <name>_loss and <name>_acc: pass evals={'test': ...} to fit)")
        found = record[self.metric]
        run.stop = run.stop or (found <= self.value if self.metric.endswith("_loss") else found >= self.value)


class OnEpoch(Callback):
    """Call ``fn(record)`` with each epoch's record (e.g. to print it)."""

    def __init__(self, fn: Callable[[dict], None]):
        self.fn = fn

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.fn(record)
