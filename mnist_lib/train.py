"""Training: device choice, seeding, the training loop, evaluation and prediction.

One short loop (:func:`fit`) trains every classifier in the book. Data come from a
:class:`~mnist_lib.data.DeviceLoader`, so a batch is an index slice of a tensor that
already lives on the device. Losses are collected as tensors and read from the device
only every :data:`DIVERGENCE_CHECK_STEPS` steps and at the end of an epoch, so a GPU is
never made to wait step by step. Long runs checkpoint every epoch and
resume (:mod:`mnist_lib.checkpoint`); ``predict`` accepts what
:func:`~mnist_lib.preprocess.as_image_batch` does.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .data import MEAN, STD, DeviceLoader, Split, normalize
from .device import (  # noqa: F401 (DEVICE_ENV_VAR, describe_device: part of train's API since 0.1)
    DEVICE_ENV_VAR, amp_supported, borrowed, choose_device, describe_device, deterministic_algorithms,
    seed_everything, synchronize)
from .preprocess import as_image_batch

PROGRESS_ENV_VAR = "MNIST_PROGRESS"  # "0" turns progress bars off (e.g. for committed outputs)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


class TrainingDiverged(FloatingPointError):
    """The loss (or the weights) became NaN or infinite."""


class LossExplosionWarning(UserWarning):
    """The training loss grew by orders of magnitude (yet stayed finite)."""


NUM_CLASSES = 10  # digits 0-9
# Training reads the device's losses (which makes the host wait for the device, a
# "sync") only this often and at the end of each epoch; a NaN is named by its step.
DIVERGENCE_CHECK_STEPS = 100
# An epoch whose mean loss is this many times the run's first loss is "exploding".
LOSS_EXPLOSION_FACTOR = 100.0



def make_optimizer(optimizer: str | torch.optim.Optimizer, params, lr: float, *,
                   device: str | torch.device | None = None, **kwargs) -> torch.optim.Optimizer:
    """An optimizer by name (``sgd``, ``adam``, ``adamw``, ``rmsprop``), or pass one through.

    For parameters on a CUDA ``device``, Adam and AdamW default to their fused kernels
    (one launch per step instead of several per tensor), unless ``kwargs`` choose an
    implementation (``fused``, ``foreach``, ``differentiable``).
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    try:
        cls = OPTIMIZERS[optimizer.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of: {', '.join(OPTIMIZERS)}") from None
    if (device is not None and torch.device(device).type == "cuda" and cls in (torch.optim.Adam, torch.optim.AdamW)
            and not kwargs.keys() & {"fused", "foreach", "differentiable"}):
        kwargs["fused"] = True
    return cls(params, lr=lr, **kwargs)


SCHEDULES = ("constant", "cosine", "onecycle")


def make_scheduler(schedule: str, opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step learning-rate schedule: ``constant``, ``cosine`` (decay to zero) or ``onecycle``."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if schedule == "onecycle":
        max_lr = [group["lr"] for group in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total_steps)
    raise ValueError(f"unknown schedule {schedule!r}; expected one of: {', '.join(SCHEDULES)}")


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw a progress bar: ``progress``, else ``$MNIST_PROGRESS != "0"``."""
    return os.environ.get(PROGRESS_ENV_VAR, "1") != "0" if progress is None else progress


@dataclass
class History:
    """What happened during :func:`fit`.

    ``step_loss`` holds the training loss of every step; ``epochs`` holds one dict per
    epoch with ``epoch``, ``train_loss``, ``train_acc`` (running means over the epoch),
    ``<name>_loss`` and ``<name>_acc`` for each evaluation set, and ``seconds`` (wall
    time of the epoch's training, evaluation excluded).
    """

    step_loss: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The per-epoch records as a DataFrame."""
        return pd.DataFrame(self.epochs)

    def final(self, key: str) -> float:
        """A metric of the last epoch, e.g. ``history.final("test_acc")``."""
        return self.epochs[-1][key]


def _is_classification(target: str) -> bool:
    if target not in ("label", "input"):
        raise ValueError(f"target must be 'label' (classify) or 'input' (reconstruct), got {target!r}")
    return target == "label"


# Optimizer settings that change how a step is computed, not what it computes.
IMPLEMENTATION_FLAGS = {"foreach", "fused", "capturable", "differentiable"}


def _run_settings(train: Split, opt: torch.optim.Optimizer, **settings) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    hyper = {k: v for k, v in opt.defaults.items()
             if k not in IMPLEMENTATION_FLAGS and isinstance(v, (bool, int, float, str, tuple, type(None)))}
    return settings | {
        "optimizer": type(opt).__name__,
        "hyperparameters": hyper,
        "train": f"{len(train)} images, SHA-256 {ckpt.fingerprint(train.images, train.labels)}",
    }


def _all_finite(model: nn.Module) -> bool:
    """Whether every weight is finite, with one host sync (not one per tensor)."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


def _check_split(name: str, split: Split, classify: bool) -> None:
    """Refuse, before any training, a split that is empty or (to classify) has labels outside 0-9.

    A :class:`Split` checks its labels when it is made; this catches labels changed since.
    """
    if len(split) == 0:
        raise ValueError(f"the {name} split is empty: fit needs at least one image (and label)")
    if not classify:
        return
    low, high = split.labels.aminmax()
    if low < 0 or high >= NUM_CLASSES:
        bad = low if low < 0 else high
        raise ValueError(f"the {name} split's labels must be digits 0-{NUM_CLASSES - 1}, but one is {int(bad)} "
                         f"(at index {int((split.labels == bad).nonzero()[0])}); fix or drop those samples")


def fit(
    model: nn.Module,
    train: Split,
    *,
    evals: dict[str, Split] | None = None,
    optimizer: str | torch.optim.Optimizer = "adam",
    lr: float = 1e-3,
    schedule: str = "constant",
    batch_size: int = 64,
    epochs: int = 1,
    seed: int = 0,
    device: str | torch.device | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    normalization: tuple[float, float] = (MEAN, STD),
    target: str = "label",
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    deterministic: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    **optimizer_kwargs,
) -> History:
    """Train ``model`` on ``train`` and return its :class:`History`.

    Args:
        evals: named sets evaluated after every epoch, e.g. ``{"val": data.val}``.
        optimizer: a name (``"sgd"``, ``"adam"``, ...) or a ready optimizer.
        schedule: how the learning rate moves from step to step (see :func:`make_scheduler`).
        seed: seeds the shuffling and any randomness in the model (dropout). Seed the
            weights yourself, before building the model (:func:`seed_everything`).
        normalization: (mean, std) applied to the [0, 1] pixels; ``(0, 1)`` keeps them.
        target: ``"label"`` to classify (loss and accuracy), or ``"input"`` to train an
            autoencoder: the loss compares the output with the (normalised) input itself.
        augment: applied to every training batch on the device, e.g.
            :class:`mnist_lib.augment.RandomAffine` (never to the evaluation sets).
        amp: mixed precision: the training forward pass runs under bfloat16 autocast,
            while the loss, the weights, the optimizer and the evaluations stay float32.
            About twice as fast on CPUs with native bfloat16 (AVX-512 BF16, AMX) and on
            GPUs with tensor cores; slower on CPUs without it. Rounds, so results differ
            slightly from float32 ones. On a CUDA GPU without bfloat16, warns and trains
            in float32.
        channels_last: keep convolution inputs and weights in NHWC memory order, which
            oneDNN (CPU) and cuDNN (GPU) convolve faster. Changes no result.
        progress: show a progress bar; default: yes, unless ``$MNIST_PROGRESS`` is ``0``.
        checkpoint: a file to write the whole state of the run to after every epoch
            (atomically: a crash never leaves a half-written file), see
            :mod:`mnist_lib.checkpoint`. Without ``resume``, an existing file is replaced.
        resume: continue from ``checkpoint`` if it exists (else start afresh). The run
            must have the same model and settings; on the CPU the result is bitwise the
            one of an uninterrupted run. A finished run is not trained again: its
            weights and History are restored.
        deterministic: only deterministic algorithms (cuDNN and cuBLAS included), so that
            a GPU run repeats bitwise; slower. CPU runs are deterministic anyway. See
            :func:`deterministic_algorithms`.
        on_epoch: called with each epoch's record (a dict, as in :attr:`History.epochs`)
            as soon as the epoch is finished and its checkpoint written, e.g. to print it.
        optimizer_kwargs: passed to the optimizer, e.g. ``momentum=0.9``; on CUDA, Adam
            and AdamW are fused unless these say otherwise (see :func:`make_optimizer`).

    Returns the History; the model is left on the device, in eval mode. A loss that grows
    by orders of magnitude (:data:`LOSS_EXPLOSION_FACTOR` times the first step's) without
    becoming NaN gives a :class:`LossExplosionWarning`.

    Raises:
        ValueError: bad settings, an empty split, or labels outside 0-9 (when classifying),
            before any training.
        TrainingDiverged: the loss became NaN or infinite (within
            :data:`DIVERGENCE_CHECK_STEPS` steps, naming the epoch, step and learning rate
            of the first bad loss), or the weights did by the end of an epoch. No
            checkpoint of such weights is written; the model's weights are then unusable.
        CheckpointError: ``resume`` found a checkpoint of another model or run, or a
            damaged file.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= the file to resume from")
    classify = _is_classification(target)
    for name, split in [("training", train), *(evals or {}).items()]:
        _check_split(name, split, classify)
    device = choose_device(device)
    amp = amp_supported(amp, device)
    with deterministic_algorithms(deterministic, device):
        torch.manual_seed(seed)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        opt = make_optimizer(optimizer, model.parameters(), lr, device=device, **optimizer_kwargs)
        loader = DeviceLoader(train, batch_size, device=device, seed=seed, normalization=normalization)
        eval_loaders = {
            name: DeviceLoader(s, 1000, shuffle=False, device=device, normalization=normalization)
            for name, s in (evals or {}).items()
        }
        scheduler = make_scheduler(schedule, opt, epochs * len(loader))
        history, done = History(), 0
        if checkpoint is not None:
            checkpoint = Path(checkpoint)
            run = _run_settings(train, opt, epochs=epochs, batch_size=batch_size, seed=seed, schedule=schedule,
                                target=target, normalization=tuple(map(float, normalization)))
            parts = dict(model=model, optimizer=opt, scheduler=scheduler, generator=loader.generator, run=run)
            if resume and checkpoint.exists():
                done, restored = ckpt.resume_checkpoint(checkpoint, **parts)
                history = History(**restored)

        def diverged(what: str, epoch: int, step: int, lr) -> TrainingDiverged:
            kept = f" The checkpoint {checkpoint} still holds epoch {epoch - 1}." if checkpoint and epoch > 1 else ""
            return TrainingDiverged(
                f"{what} at epoch {epoch}, step {step} (learning rate {float(lr)}). "
                f"Hint: lower the learning rate, or check the inputs for NaN.{kept}"
            )

        bar = tqdm(total=epochs * len(loader), initial=done * len(loader), unit="batch",
                   disable=not show_progress(progress), desc="training")
        explosion_warned = False
        for epoch in range(done + 1, epochs + 1):
            model.train()
            start = time.perf_counter()
            losses, lrs, correct = _train_epoch(model, loader, opt, scheduler, loss_fn=loss_fn, classify=classify,
                                                augment=augment, amp=amp, channels_last=channels_last, bar=bar)
            synchronize(device)  # the epoch's time is the time its work took, not the time it took to queue
            seconds = time.perf_counter() - start
            step_loss = torch.stack(losses).tolist()
            bad = next((i for i, value in enumerate(step_loss) if not math.isfinite(value)), None)
            if bad is not None:
                raise diverged(f"loss became {step_loss[bad]}", epoch, bad + 1, lrs[bad])
            # A finite loss can still come with an infinite gradient (the last step's update
            # is only seen by the next step's loss): never evaluate or save such weights.
            if not _all_finite(model):
                raise diverged("the weights became NaN or infinite (every loss was finite)", epoch, len(loader),
                               lrs[-1])
            record = {"epoch": epoch, "train_loss": float(np.mean(step_loss))}
            if classify:
                record["train_acc"] = correct.item() / len(loader.y)
            record["seconds"] = seconds
            for name, eval_loader in eval_loaders.items():
                for key, value in evaluate(model, eval_loader, loss_fn=loss_fn, target=target).items():
                    record[f"{name}_{key}"] = value
            history.step_loss += step_loss
            history.epochs.append(record)
            if checkpoint is not None:
                ckpt.save_checkpoint(checkpoint, epoch=epoch, history=asdict(history), **parts)
            if on_epoch is not None:
                on_epoch(record)
            if not explosion_warned and _exploded(history):
                explosion_warned = True
                warnings.warn(f"the training loss exploded: from {history.step_loss[0]:.4g} at the first step to "
                              f"a mean of {record['train_loss']:.4g} in epoch {epoch} (learning rate "
                              f"{float(lrs[-1]):g}); the learning rate is probably too high", LossExplosionWarning,
                              stacklevel=2)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k.endswith(("_loss", "_acc"))})
        bar.close()
    if channels_last:
        model.to(memory_format=torch.contiguous_format)  # hand back an ordinary model
    model.eval()
    return history


def _train_epoch(model: nn.Module, loader: DeviceLoader, opt: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, *, loss_fn: Callable, classify: bool,
                 augment: Callable | None, amp: bool, channels_last: bool,
                 bar: tqdm) -> tuple[list, list, torch.Tensor]:
    """One pass over ``loader``: each step's loss (a tensor) and learning rate, and the number of right answers.

    Nothing here waits for the device, except a check every :data:`DIVERGENCE_CHECK_STEPS`
    steps that the losses are still finite; it ends the pass early if one is not.
    """
    # Autocast only when asked: it refuses device types it does not know (e.g. "meta").
    autocast = torch.autocast(loader.device.type, dtype=torch.bfloat16) if amp else nullcontext()
    losses, lrs, correct, checked = [], [], torch.zeros((), device=loader.device), 0
    for step, (x, y) in enumerate(loader, 1):
        if augment is not None:
            x = augment(x)
        with autocast:
            out = model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        # The loss in float32 and outside autocast, which refuses some losses (BCE on CUDA).
        out = out.float()
        loss = loss_fn(out, y if classify else x)
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scheduler.step()
        losses.append(loss.detach())
        if classify:
            correct += (out.argmax(1) == y).sum()
        bar.update()
        if step % DIVERGENCE_CHECK_STEPS == 0:
            if not torch.stack(losses[checked:]).isfinite().all():
                break
            checked = step
    return losses, lrs, correct


def _exploded(history: History) -> bool:
    """Whether the last epoch's mean loss is orders of magnitude above the run's first loss."""
    first = history.step_loss[0]
    return first > 0 and history.epochs[-1]["train_loss"] > LOSS_EXPLOSION_FACTOR * first


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Split | DeviceLoader,
    *,
    device: str | torch.device | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    normalization: tuple[float, float] = (MEAN, STD),
    target: str = "label",
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on a split: ``{"loss": ..., "acc": ...}``.

    ``normalization`` must be the one the model was trained with (ignored for a loader).
    With ``target="input"`` (autoencoders) only the reconstruction loss is returned.
    The model runs in eval mode on the data's device; it is handed back where it was, in
    the mode it was in.
    """
    classify = _is_classification(target)
    if isinstance(data, Split):
        _check_split("evaluated", data, classify)
        data = DeviceLoader(data, 1000, shuffle=False, device=choose_device(device), normalization=normalization)
    total_loss, correct = torch.zeros((), device=data.device), torch.zeros((), device=data.device)
    with borrowed(model, data.device):
        for x, y in data:
            out = model(x)
            total_loss += loss_fn(out, y if classify else x) * len(y)
            if classify:
                correct += (out.argmax(1) == y).sum()
    n = len(data.y)
    return {"loss": total_loss.item() / n, "acc": correct.item() / n} if classify else {"loss": total_loss.item() / n}


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
    normalization: tuple[float, float] = (MEAN, STD),
) -> torch.Tensor:
    """Class probabilities (N, 10) for images as :func:`~mnist_lib.preprocess.as_image_batch` accepts them.

    That is: one image (28, 28) or a batch (N, 28, 28) or (N, 1, 28, 28), uint8 0-255
    or float 0-1; or a PIL image or image file of any size (or a list of them),
    converted the MNIST way by :func:`~mnist_lib.preprocess.to_mnist`. Anything else
    raises ``ValueError``. ``normalization`` must be the one the model was trained with.
    The model runs in eval mode on ``device``; it is handed back where it was, in the
    mode it was in. The probabilities are on the CPU.
    """
    x = as_image_batch(images)  # checked before anything else happens
    device = choose_device(device)
    x = normalize(x.to(device), *normalization)
    with borrowed(model, device):
        return torch.cat([torch.softmax(model(chunk), 1) for chunk in x.split(1000)]).cpu()


def predict(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
    normalization: tuple[float, float] = (MEAN, STD),
) -> torch.Tensor:
    """Predicted digits (N,) for the images :func:`predict_proba` accepts (the model is handed back as it was)."""
    return predict_proba(model, images, device=device, normalization=normalization).argmax(1)
