"""Training: the loop (:func:`fit`), evaluation and prediction.

One short loop, :func:`fit`, trains every network in the book. Data come from a
:class:`~mnist_lib.data.DeviceLoader`, so a batch is an index slice of a tensor of [0, 1]
pixels that already lives on the device; the model standardises them itself (its first
layer, :class:`~mnist_lib.models.Standardize`). Everything else a run does (checking for
divergence, checkpoints, the progress bar, stopping early) is a callback
(:mod:`mnist_lib.callbacks`). Losses stay on the device and are read only at the end of an
epoch (and every :data:`~mnist_lib.callbacks.DIVERGENCE_CHECK_STEPS` steps), so a GPU is
never made to wait step by step. ``predict`` accepts what
:func:`~mnist_lib.preprocess.as_image_batch` does.

fit's arguments
---------------
model, train
    The network (any ``nn.Module`` taking [0, 1] pixels (N, 1, 28, 28)) and the
    :class:`~mnist_lib.data.Split` to train on.
evals
    Named sets evaluated after every epoch, e.g. ``{"val": data.val}`` (with the plain
    model, never augmented).
optimizer, lr, optimizer_kwargs
    A name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``) or a ready optimizer, its
    learning rate, and other settings such as ``momentum=0.9``; on CUDA, Adam and AdamW
    are fused unless these say otherwise (:func:`make_optimizer`).
schedule
    How the learning rate moves from step to step: ``constant``, ``cosine`` or
    ``onecycle`` (:func:`make_scheduler`).
batch_size, epochs
    The mini-batch size and the number of passes over ``train``.
seed
    Seeds the shuffling and any randomness in the model (dropout). Seed the weights
    yourself, before building the model (:func:`seed_everything`).
device
    Where to train (:func:`choose_device`: ``$MNIST_DEVICE``, else CUDA, MPS, CPU).
loss_fn, target
    The loss, and what it compares the output with: ``"label"`` to classify (loss and
    accuracy), or ``"input"`` to train an autoencoder on its own [0, 1] input.
augment
    Applied to every training batch on the device, e.g.
    :class:`mnist_lib.augment.RandomAffine` (never to the evaluation sets).
amp
    Mixed precision: the training forward pass runs under bfloat16 autocast, while the
    loss, the weights, the optimizer and the evaluations stay float32. About twice as fast
    on CPUs with native bfloat16 (AVX-512 BF16, AMX) and on GPUs with tensor cores;
    slower on CPUs without it. Rounds, so results differ slightly from float32 ones. On a
    CUDA GPU without bfloat16, warns and trains in float32.
channels_last
    Keep convolution inputs and weights in NHWC memory order, which oneDNN (CPU) and
    cuDNN (GPU) convolve faster. Changes no result.
compile
    Train through ``torch.compile(model)`` (the same weights; the first steps are slow
    while it compiles). Evaluation uses the plain model.
callbacks
    :class:`~mnist_lib.callbacks.Callback` objects called at the start, after every step,
    after every epoch and at the end (:mod:`mnist_lib.callbacks`).
progress
    Show a progress bar (:class:`~mnist_lib.callbacks.ProgressBar`); default: yes, unless
    ``$MNIST_PROGRESS`` is ``0``.
checkpoint, resume
    A file to write the whole state of the run to after every epoch, and whether to
    continue from it (:class:`~mnist_lib.callbacks.Checkpoint`).
deterministic
    Only deterministic algorithms (cuDNN and cuBLAS included), so that a GPU run repeats
    bitwise; slower. CPU runs are deterministic anyway (:func:`deterministic_algorithms`).
on_epoch
    Called with each epoch's record (a dict, as in :attr:`History.epochs`) as soon as the
    epoch is finished and its checkpoint written (:class:`~mnist_lib.callbacks.OnEpoch`).

fit returns the :class:`History`; the model is left on the device, in eval mode. It raises
``ValueError`` for bad settings, an empty split, or labels outside 0-9 (when classifying),
before any training; :class:`TrainingDiverged` when the loss or the weights become NaN or
infinite (:class:`~mnist_lib.callbacks.DivergenceCheck`: no checkpoint of such weights is
written); :class:`~mnist_lib.checkpoint.CheckpointError` when ``resume`` finds a
checkpoint of another model or run, or a damaged file.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer

from .callbacks import (  # noqa: F401 (TrainingDiverged, LossExplosionWarning: part of train's API)
    Callback, Checkpoint, DivergenceCheck, LossExplosionWarning, OnEpoch, ProgressBar, Run, TrainingDiverged)
from .data import DeviceLoader, Split, scale_pixels
from .device import (  # noqa: F401 (DEVICE_ENV_VAR, describe_device: part of train's API since 0.1)
    DEVICE_ENV_VAR, amp_supported, borrowed, choose_device, describe_device, deterministic_algorithms,
    seed_everything, synchronize)
from .preprocess import as_image_batch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output, target) -> the mean loss
Transform = Callable[[torch.Tensor], torch.Tensor]  # a batch -> a batch, e.g. an augmentation

PROGRESS_ENV_VAR = "MNIST_PROGRESS"  # "0" turns progress bars off (e.g. for committed outputs)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


NUM_CLASSES = 10  # digits 0-9


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


def _check_settings(train: Split, evals: dict[str, Split] | None, epochs: int, target: str,
                    checkpoint: str | os.PathLike | None, resume: bool) -> bool:
    """Refuse bad settings before any training; whether the run classifies (else it reconstructs)."""
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= the file to resume from")
    classify = _is_classification(target)
    for name, split in [("training", train), *(evals or {}).items()]:
        _check_split(name, split, classify)
    return classify


def _callbacks(callbacks: Sequence[Callback], progress: bool | None, checkpoint: str | os.PathLike | None,
               resume: bool, on_epoch: Callable[[dict], None] | None) -> list[Callback]:
    """The standard callbacks fit's shorthands ask for, and ``callbacks``, in the order they must run.

    The divergence check comes first, so that no later callback sees (or saves) diverged
    weights; a checkpoint next, so that the others start where a resumed run does.
    """
    saving = [Checkpoint(checkpoint, resume)] if checkpoint is not None else []
    path = next((c.path for c in [*saving, *callbacks] if isinstance(c, Checkpoint)), None)
    return [DivergenceCheck(path), *saving, *callbacks, *([ProgressBar()] if show_progress(progress) else []),
            *([OnEpoch(on_epoch)] if on_epoch is not None else [])]


def fit(model: nn.Module, train: Split, *, evals: dict[str, Split] | None = None, optimizer: str | Optimizer = "adam",
        lr: float = 1e-3, schedule: str = "constant", batch_size: int = 64, epochs: int = 1, seed: int = 0,
        device: str | torch.device | None = None, loss_fn: LossFn = F.cross_entropy, target: str = "label",
        augment: Transform | None = None, amp: bool = False, channels_last: bool = False, compile: bool = False,
        callbacks: Sequence[Callback] = (), progress: bool | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, deterministic: bool = False, on_epoch: Callable[[dict], None] | None = None,
        **optimizer_kwargs) -> History:
    """Train ``model`` on ``train``; return its :class:`History` (the arguments: see :mod:`mnist_lib.train`)."""
    classify = _check_settings(train, evals, epochs, target, checkpoint, resume)
    callbacks = _callbacks(callbacks, progress, checkpoint, resume, on_epoch)
    device = choose_device(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp_supported(amp, device) else nullcontext()
    with deterministic_algorithms(deterministic, device):
        torch.manual_seed(seed)
        model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        opt = make_optimizer(optimizer, model.parameters(), lr, device=device, **optimizer_kwargs)
        loader = DeviceLoader(train, batch_size, device=device, seed=seed)
        eval_loaders = {name: DeviceLoader(s, 1000, shuffle=False, device=device) for name, s in (evals or {}).items()}
        run = Run(model, opt, make_scheduler(schedule, opt, epochs * len(loader)), loader, History(), device, epochs)
        net = torch.compile(model) if compile else model
        for callback in callbacks:
            callback.on_fit_start(run)
        for run.epoch in range(run.start_epoch, epochs + 1):
            model.train()
            start, losses, correct = time.perf_counter(), [], torch.zeros((), device=device)
            for step, (x, y) in enumerate(loader, 1):
                x = augment(x) if augment is not None else x
                with autocast:
                    out = net(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
                out = out.float()  # the loss in float32 and outside autocast, which refuses some losses
                loss = loss_fn(out, y if classify else x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                correct += (out.argmax(1) == y).sum() if classify else 0
                for callback in callbacks:
                    callback.on_step_end(run, step, losses[-1])
                run.scheduler.step()
                if run.stop:
                    break
            synchronize(device)  # the epoch's time is the time its work took, not the time it took to queue
            seconds, step_loss = time.perf_counter() - start, torch.stack(losses).tolist()
            record = {"epoch": run.epoch, "train_loss": float(np.mean(step_loss))}
            record |= {"train_acc": correct.item() / len(loader.y)} if classify else {}
            record["seconds"] = seconds
            for name, eval_loader in eval_loaders.items():
                scores = evaluate(model, eval_loader, loss_fn=loss_fn, target=target)
                record |= {f"{name}_{key}": value for key, value in scores.items()}
            run.history.step_loss += step_loss
            run.history.epochs.append(record)
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if run.stop:
                break
        for callback in callbacks:
            callback.on_fit_end(run)
    model.eval()
    model.to(memory_format=torch.contiguous_format if channels_last else torch.preserve_format)  # an ordinary model
    return run.history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Split | DeviceLoader,
    *,
    device: str | torch.device | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    target: str = "label",
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on a split: ``{"loss": ..., "acc": ...}``.

    With ``target="input"`` (autoencoders) only the reconstruction loss is returned.
    The model runs in eval mode on the data's device; it is handed back where it was, in
    the mode it was in.
    """
    classify = _is_classification(target)
    if isinstance(data, Split):
        _check_split("evaluated", data, classify)
        data = DeviceLoader(data, 1000, shuffle=False, device=choose_device(device))
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
) -> torch.Tensor:
    """Class probabilities (N, 10) for images as :func:`~mnist_lib.preprocess.as_image_batch` accepts them.

    That is: one image (28, 28) or a batch (N, 28, 28) or (N, 1, 28, 28), uint8 0-255
    or float 0-1; or a PIL image or image file of any size (or a list of them),
    converted the MNIST way by :func:`~mnist_lib.preprocess.to_mnist`. Anything else
    raises ``ValueError``. The model takes the [0, 1] pixels and standardises them itself.
    It runs in eval mode on ``device`` and is handed back where it was, in the mode it was
    in. The probabilities are on the CPU.
    """
    x = as_image_batch(images)  # checked before anything else happens
    device = choose_device(device)
    x = scale_pixels(x.to(device))  # the model standardises its [0, 1] input itself
    with borrowed(model, device):
        return torch.cat([torch.softmax(model(chunk), 1) for chunk in x.split(1000)]).cpu()


def predict(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Predicted digits (N,) for the images :func:`predict_proba` accepts (the model is handed back as it was)."""
    return predict_proba(model, images, device=device).argmax(1)
