"""Training: device choice, seeding, the training loop, evaluation and prediction.

One short loop (:func:`fit`) trains every classifier in the book. Data come from a
:class:`~mnist_lib.data.DeviceLoader`, so a batch is an index slice of a tensor that
already lives on the device. Losses are collected as tensors and read once per epoch;
the only per-step read is the divergence check. Long runs checkpoint every epoch and
resume (:mod:`mnist_lib.checkpoint`); ``predict`` accepts what
:func:`~mnist_lib.preprocess.as_image_batch` does.
"""

from __future__ import annotations

import os
import platform
import random
import time
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
from .preprocess import as_image_batch

DEVICE_ENV_VAR = "MNIST_DEVICE"
PROGRESS_ENV_VAR = "MNIST_PROGRESS"  # "0" turns progress bars off (e.g. for committed outputs)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


class TrainingDiverged(FloatingPointError):
    """The loss (or the weights) became NaN or infinite."""


DEVICE_TYPES = ("cpu", "cuda", "mps")  # what the book runs on; torch knows more (meta, xpu, ...)


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device``, else ``$MNIST_DEVICE``, else CUDA, MPS, CPU.

    Asking for a device this machine does not have, or for something that is not
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, raises ``ValueError``.
    """
    wanted = device or os.environ.get(DEVICE_ENV_VAR)
    if not wanted:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(wanted)
    except (RuntimeError, TypeError, ValueError):
        chosen = None
    if chosen is None or chosen.type not in DEVICE_TYPES:
        raise ValueError(f"unknown device {str(wanted)!r}; expected cpu, cuda, cuda:N or mps")
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(wanted)!r} was asked for but no CUDA GPU is available; use 'cpu' instead")
        if (chosen.index or 0) >= count:
            raise ValueError(f"device {str(wanted)!r} was asked for but this machine has {count} CUDA GPU(s): "
                             f"cuda:0 to cuda:{count - 1}")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(wanted)!r} was asked for but Apple's MPS is not available; use 'cpu' instead")
    return chosen


def describe_device(device: torch.device) -> str:
    """``device`` with its hardware's name and torch's thread count, e.g. ``cpu (x86_64, 2 threads)``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU"
    else:
        name = platform.processor() or platform.machine()
    return f"{device} ({name}, {torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(optimizer: str | torch.optim.Optimizer, params, lr: float, **kwargs) -> torch.optim.Optimizer:
    """An optimizer by name (``sgd``, ``adam``, ``adamw``, ``rmsprop``), or pass one through."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    try:
        cls = OPTIMIZERS[optimizer.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of: {', '.join(OPTIMIZERS)}") from None
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
        amp: mixed precision: the training forward pass and loss run under bfloat16
            autocast, while the weights, the optimizer and the evaluations stay float32.
            About twice as fast on CPUs with native bfloat16 (AVX-512 BF16, AMX) and on
            GPUs with tensor cores; slower on CPUs without it. Rounds, so results differ
            slightly from float32 ones.
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
        optimizer_kwargs: passed to the optimizer, e.g. ``momentum=0.9``.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (at once, naming the epoch,
            step and learning rate), or the weights did by the end of an epoch. No
            checkpoint of such weights is written.
        CheckpointError: ``resume`` found a checkpoint of another model or run, or a
            damaged file.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= the file to resume from")
    classify = _is_classification(target)
    device = choose_device(device)
    torch.manual_seed(seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(optimizer, model.parameters(), lr, **optimizer_kwargs)
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

    def diverged(what: str, epoch: int, step: int) -> TrainingDiverged:
        kept = f" The checkpoint {checkpoint} still holds epoch {epoch - 1}." if checkpoint and epoch > 1 else ""
        return TrainingDiverged(
            f"{what} at epoch {epoch}, step {step} (learning rate {opt.param_groups[0]['lr']}). "
            f"Hint: lower the learning rate, or check the inputs for NaN.{kept}"
        )

    bar = tqdm(total=epochs * len(loader), initial=done * len(loader), unit="batch",
               disable=not show_progress(progress), desc="training")
    for epoch in range(done + 1, epochs + 1):
        model.train()
        start = time.perf_counter()
        losses, correct = [], torch.zeros((), device=device)
        for step, (x, y) in enumerate(loader, 1):
            if augment is not None:
                x = augment(x)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x.contiguous(memory_format=torch.channels_last) if channels_last else x).float()
                loss = loss_fn(out, y if classify else x)
            if not torch.isfinite(loss):
                raise diverged(f"loss became {loss.item()}", epoch, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            scheduler.step()
            losses.append(loss.detach())
            if classify:
                correct += (out.argmax(1) == y).sum()
            bar.update()
        # A finite loss can still come with an infinite gradient (the last step's update
        # is only seen by the next step's loss): never evaluate or save such weights.
        if not _all_finite(model):
            raise diverged("the weights became NaN or infinite (every loss was finite)", epoch, len(loader))
        step_loss = torch.stack(losses).tolist()
        record = {"epoch": epoch, "train_loss": float(np.mean(step_loss))}
        if classify:
            record["train_acc"] = correct.item() / len(loader.y)
        record["seconds"] = time.perf_counter() - start
        for name, eval_loader in eval_loaders.items():
            for key, value in evaluate(model, eval_loader, loss_fn=loss_fn, target=target).items():
                record[f"{name}_{key}"] = value
        history.step_loss += step_loss
        history.epochs.append(record)
        if checkpoint is not None:
            ckpt.save_checkpoint(checkpoint, epoch=epoch, history=asdict(history), **parts)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k.endswith(("_loss", "_acc"))})
    bar.close()
    if channels_last:
        model.to(memory_format=torch.contiguous_format)  # hand back an ordinary model
    return history


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
    """
    classify = _is_classification(target)
    if isinstance(data, Split):
        data = DeviceLoader(data, 1000, shuffle=False, device=choose_device(device), normalization=normalization)
    model.to(data.device).eval()
    total_loss, correct = torch.zeros((), device=data.device), torch.zeros((), device=data.device)
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
    """
    x = as_image_batch(images)  # checked before anything else happens
    device = choose_device(device)
    x = normalize(x.to(device), *normalization)
    model.to(device).eval()
    return torch.cat([torch.softmax(model(chunk), 1) for chunk in x.split(1000)]).cpu()


def predict(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
    normalization: tuple[float, float] = (MEAN, STD),
) -> torch.Tensor:
    """Predicted digits (N,) for the images :func:`predict_proba` accepts."""
    return predict_proba(model, images, device=device, normalization=normalization).argmax(1)
