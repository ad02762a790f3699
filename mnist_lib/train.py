"""Training: device choice, seeding, the training loop, evaluation and prediction.

One short loop (:func:`fit`) trains every classifier in the book. Data come from a
:class:`~mnist_lib.data.DeviceLoader`, so a batch is an index slice of a tensor that
already lives on the device. Losses are collected as tensors and read once per epoch,
so the loop never waits for the GPU inside an epoch.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import MEAN, STD, DeviceLoader, Split, normalize

DEVICE_ENV_VAR = "MNIST_DEVICE"

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device``, else ``$MNIST_DEVICE``, else CUDA, MPS, CPU.

    Asking for a device this machine does not have raises ``ValueError``.
    """
    wanted = device or os.environ.get(DEVICE_ENV_VAR)
    if wanted:
        try:
            wanted = torch.device(wanted)
        except RuntimeError:
            raise ValueError(f"unknown device {str(device or os.environ.get(DEVICE_ENV_VAR))!r}; expected cpu, cuda, cuda:N or mps") from None
        if wanted.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
        if wanted.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple's MPS is not available; use --device cpu")
        return wanted
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
    progress: bool = True,
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
        optimizer_kwargs: passed to the optimizer, e.g. ``momentum=0.9``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    device = choose_device(device)
    torch.manual_seed(seed)
    model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr, **optimizer_kwargs)
    loader = DeviceLoader(train, batch_size, device=device, seed=seed, normalization=normalization)
    eval_loaders = {
        name: DeviceLoader(s, 1000, shuffle=False, device=device, normalization=normalization)
        for name, s in (evals or {}).items()
    }
    scheduler = make_scheduler(schedule, opt, epochs * len(loader))
    history = History()
    bar = tqdm(total=epochs * len(loader), unit="batch", disable=not progress, desc="training")
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        losses, correct = [], torch.zeros((), device=device)
        for step, (x, y) in enumerate(loader, 1):
            logits = model(x)
            loss = loss_fn(logits, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch}, step {step} (learning rate {lr}). "
                    "Hint: lower the learning rate, or check the inputs for NaN."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            scheduler.step()
            losses.append(loss.detach())
            correct += (logits.argmax(1) == y).sum()
            bar.update()
        step_loss = torch.stack(losses).tolist()
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(step_loss)),
            "train_acc": correct.item() / len(loader.y),
            "seconds": time.perf_counter() - start,
        }
        for name, eval_loader in eval_loaders.items():
            for key, value in evaluate(model, eval_loader, loss_fn=loss_fn).items():
                record[f"{name}_{key}"] = value
        history.step_loss += step_loss
        history.epochs.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k.endswith(("_loss", "_acc"))})
    bar.close()
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Split | DeviceLoader,
    *,
    device: str | torch.device | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    normalization: tuple[float, float] = (MEAN, STD),
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on a split: ``{"loss": ..., "acc": ...}``.

    ``normalization`` must be the one the model was trained with (ignored for a loader).
    """
    if isinstance(data, Split):
        data = DeviceLoader(data, 1000, shuffle=False, device=choose_device(device), normalization=normalization)
    model.to(data.device).eval()
    total_loss, correct = torch.zeros((), device=data.device), torch.zeros((), device=data.device)
    for x, y in data:
        logits = model(x)
        total_loss += loss_fn(logits, y) * len(y)
        correct += (logits.argmax(1) == y).sum()
    n = len(data.y)
    return {"loss": total_loss.item() / n, "acc": correct.item() / n}


def _as_batch(images) -> torch.Tensor:
    """Images as a uint8-scaled float tensor (N, 28, 28): accepts uint8 0-255 or float 0-1."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
        raise ValueError(f"expected images of shape (28, 28), (N, 28, 28) or (N, 1, 28, 28), got {tuple(x.shape)}")
    if x.is_floating_point():
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError("float images must hold finite values in [0, 1]")
        x = x * 255
    return x


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
    normalization: tuple[float, float] = (MEAN, STD),
) -> torch.Tensor:
    """Class probabilities (N, 10) for raw images (uint8 0-255 or float 0-1).

    ``normalization`` must be the one the model was trained with.
    """
    device = choose_device(device)
    x = normalize(_as_batch(images).to(device), *normalization)
    model.to(device).eval()
    return torch.cat([torch.softmax(model(chunk), 1) for chunk in x.split(1000)]).cpu()


def predict(
    model: nn.Module,
    images,
    *,
    device: str | torch.device | None = None,
    normalization: tuple[float, float] = (MEAN, STD),
) -> torch.Tensor:
    """Predicted digits (N,) for raw images (uint8 0-255 or float 0-1)."""
    return predict_proba(model, images, device=device, normalization=normalization).argmax(1)
