"""Finished trainings kept on disk, so that a long run that stops resumes where it stopped.

A chapter such as chapter 7 trains a few dozen networks, for hours on a laptop CPU. If
``$MNIST_KEEP_RUNS`` names a folder, :func:`~mnist_lib.experiments.run_jobs` writes each
training there as soon as it finishes (weights, history, seconds), and a later call with the
same job loads it instead of training it again. A kept training is only reused for the very
same job: the file's name holds a digest of everything that decides its outcome (:func:`run_key`),
so a changed setup, seed, profile, data set, device, thread count, torch version or training
code simply trains anew. Nothing is ever deleted here: remove the folder when the run is done.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .checkpoint_checks import fingerprint
from .data import MNIST
from .files import save_torch
from .train import History

if TYPE_CHECKING:
    from .experiments import Config

ENV_VAR = "MNIST_KEEP_RUNS"


def folder() -> Path | None:
    """The folder named by ``$MNIST_KEEP_RUNS``, or None (then nothing is kept)."""
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


@functools.cache
def code_digest() -> str:
    """A digest of the library's training code: its top-level modules (not ``book/`` or ``bench/``)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_key(config: Config, seed: int, data: MNIST, device: torch.device, threads: int) -> str:
    """A short digest of what decides the outcome of training ``config`` with ``seed`` on ``data``."""
    sets = [data.train, data.test] + ([data.val] if data.val is not None else [])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else torch.backends.cpu.get_cpu_capability()
    parts = [repr(config), seed, config.epochs_to_run(), fingerprint(*(t for s in sets for t in (s.images, s.labels))),
             str(device), where, threads, torch.__version__, code_digest()]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def path(config: Config, seed: int, key: str) -> Path | None:
    """Where the training of ``config`` with ``seed`` is kept (its name readable, its key exact), or None."""
    base = folder()
    if base is None:
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", config.name.lower()).strip("-")
    return base / f"{slug}-seed{seed}-{key}.pt"


def load(file: Path, config: Config, device: torch.device) -> tuple[nn.Module, History, float] | None:
    """The kept training in ``file`` as (model, history, seconds), or None if there is none (or it is unreadable)."""
    if not file.is_file():
        return None
    try:
        kept = torch.load(file, map_location="cpu", weights_only=True)
        model = config.model()
        model.load_state_dict(kept["state"])
    except Exception as error:  # a damaged file: train again rather than stop
        warnings.warn(f"{file}: a kept training that cannot be read ({type(error).__name__}: {str(error).splitlines()[0][:120]}); training it again", stacklevel=2)
        return None
    print(f"{config.name}, seed {kept['seed']}: kept training of {kept['date']} ({kept['machine']}, "
          f"{kept['seconds']:.0f} s) loaded from {file}, not trained again")
    return model.to(device).eval(), History(step_loss=kept["step_loss"], epochs=kept["epochs"]), kept["seconds"]


def keep(file: Path, config: Config, seed: int, model: nn.Module, history: History, seconds: float) -> None:
    """Write a finished training to ``file`` (atomically: a stopped write leaves no half file)."""
    from .book.store import machine  # the same machine string as the results store's

    file.parent.mkdir(parents=True, exist_ok=True)
    save_torch({"config": repr(config), "seed": seed, "state": model.state_dict(), "epochs": history.epochs,
                "step_loss": history.step_loss, "seconds": seconds, "machine": machine(),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}, file)
