"""Checkpoints: the whole state of a training run in one file, written atomically.

:func:`~mnist_lib.train.fit` with ``checkpoint=path`` calls :func:`save_checkpoint` at
the end of every epoch, and with ``resume=True`` calls :func:`resume_checkpoint` before
the first one. A checkpoint holds everything the rest of the run depends on: the
weights, the optimizer's and the scheduler's state, the random number generators
(torch's global one drives dropout, the loader's own drives shuffling, and the training
device's own when it is a GPU), the History so far and the number of epochs done. So on
the CPU a run that is killed and resumed ends with exactly the weights of a run that was
never interrupted. Resuming on another kind of device works, with a warning
(:class:`InexactResume`): random numbers and arithmetic differ between devices.

The file is written by :func:`mnist_lib.files.save_torch` (CPU tensors, a temporary file
renamed over the old one: a crash or SIGKILL mid-write leaves the previous checkpoint
intact). It records a SHA-256 digest of its contents, and everything in it is checked
(the digest, the types, the epochs, finite weights of the model's dtypes, state that
fits the optimizer and the schedule) before anything is restored, so a damaged or
edited file is refused and never half-restored. Problems with a checkpoint raise one
:class:`CheckpointError` that says what is wrong and what to do. The checks and the
digests live in :mod:`mnist_lib.checkpoint_checks`.
"""

from __future__ import annotations

import os
import random
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import filelock
import numpy as np
import torch
from torch import nn

from . import files
from .checkpoint_checks import (  # noqa: F401 (part of checkpoint's API: the checks, the digests, the error)
    FIX_DAMAGED, PARAMETER_SHAPED, CheckpointError, _check_contents, _check_optimizer, _check_rng, _damaged,
    _form_difference, check_model, content_digest, fingerprint)

FORMAT = "mnist_lib checkpoint 3"  # 3: models take [0, 1] pixels and standardise them themselves (issue #12)
# What each older format lacks, for the message that refuses it.
OLD_FORMATS = {
    "mnist_lib checkpoint 1": "which has no integrity check",
    "mnist_lib checkpoint 2": "written before models standardised their own inputs (its model expects standardised "
                              "pixels and its run settings are recorded differently)",
}


class InexactResume(UserWarning):
    """A run is resumed on another kind of device than the one that wrote its checkpoint."""


def _device_of(model: nn.Module) -> torch.device:
    """The device a model trains on: that of its first parameter (or buffer); the CPU if it has none."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _rng_states(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The random number generators a run uses; for a GPU run, that GPU's own (CUDA is not touched otherwise)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()  # weights_only=True loads plain types only
    states = {
        "torch": torch.get_rng_state(),
        "loader": generator.get_state(),
        "python": random.getstate(),
        "numpy": numpy_state,
    }
    if device.type == "cuda":
        states["device"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        states["device"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if "device" in states:  # only when the checkpoint was written on this kind of device
        if device.type == "cuda":
            torch.cuda.set_rng_state(states["device"], device)
        elif device.type == "mps":
            torch.mps.set_rng_state(states["device"])
    generator.set_state(states["loader"])
    random.setstate(states["python"])
    numpy_state = states["numpy"]
    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)


def estimated_size(model: nn.Module) -> int:
    """About how many bytes a checkpoint of ``model`` takes: its weights and two optimizer slots (Adam's), plus room
    for the History."""
    return 3 * files.nbytes(model.state_dict()) + 2**20


@contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an advisory lock on the checkpoint ``path`` while in the block.

    The lock is a ``.NAME.lock`` file next to the checkpoint (next to the file a symbolic
    link points to), left there afterwards: deleting it could let two runs in. Raises
    :class:`CheckpointError` at once if another run holds it: two runs writing one
    checkpoint would overwrite each other's epochs.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    lock = filelock.FileLock(real.with_name(f".{real.name}.lock"))
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        raise CheckpointError(path, "another run is training with this checkpoint now (it holds the lock "
                                    f"{lock.lock_file})", "wait until it ends, or use another checkpoint file") from None
    try:
        yield
    finally:
        lock.release()


def save_checkpoint(
    path: str | os.PathLike,
    *,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    history: dict[str, Any],
    run: dict[str, Any],
) -> None:
    """Write the state of a run after ``epoch`` epochs to ``path``, atomically, with CPU tensors and a digest.

    ``generator`` is the training loader's shuffling generator; ``history`` the History
    as a dict; ``run`` the settings a resumed run must share (checked by
    :func:`resume_checkpoint`). The device is the model's. Raises
    :class:`~mnist_lib.files.WriteError` if the file cannot be written (it names the cause).
    """
    device = _device_of(model)
    state = files.to_cpu({
        "format": FORMAT,
        "epoch": epoch,
        "device": device.type,
        "model_class": type(model).__name__,
        "structure": repr(model),  # the layers, activations included
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_states(generator, device),
        "history": history,
        "run": run,
    })
    state["digest"] = content_digest(state)
    files.save_torch(state, path)


# ----------------------------------------------------------------------- reading


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors on the CPU), checking its digest and form."""
    path = Path(path)
    state = _load(path)
    _check_format(state, path)
    _check_contents(state, path)
    return state


def _check_format(state: Any, path: Path) -> None:
    """Refuse anything but a checkpoint of this format, an older one with its own message."""
    if isinstance(state, dict) and state.get("format") in OLD_FORMATS:
        raise CheckpointError(path, f"expected a checkpoint of format {FORMAT!r}, found the older "
                                    f"{state['format']!r}, {OLD_FORMATS[state['format']]}",
                              "train afresh (resume=False; on the command line, --overwrite)")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            path,
            "expected a training checkpoint written by mnist_lib's fit(checkpoint=...), found another kind of file",
            "pass the checkpoint file that fit wrote, or resume=False to start afresh",
        )


def _load(path: Path) -> Any:
    try:
        # weights_only: a checkpoint is data; unpickling arbitrary objects could run code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(path, "no such file", "check the path") from None
    except Exception as e:  # torch.load raises many types for a damaged file
        first_sentence = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else ""
        raise CheckpointError(
            path,
            f"not a readable checkpoint, the file is truncated or damaged ({type(e).__name__}: {first_sentence})",
            "delete it and train afresh (or resume=False), or restore a good copy",
        ) from None


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights into ``model`` from a checkpoint or a saved ``state_dict`` (``--save``); return it."""
    state = _load(Path(path))
    saved_class = None
    if isinstance(state, dict) and isinstance(state.get("format"), str):  # a checkpoint, not a state_dict
        _check_format(state, Path(path))
        _check_contents(state, Path(path))
        state, saved_class = state["model"], state["model_class"]
    check_model(model, state, path, saved_class)
    model.load_state_dict(state)
    return model


def resume_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    run: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Restore a run from ``path``; return (epochs done, History as a dict).

    Checks everything first (see the module), so nothing is restored from a file that is
    damaged, edited, or written for another model or run. On another kind of device than
    the one that wrote it, the run is resumed with an :class:`InexactResume` warning.
    """
    path = Path(path)
    state = read_checkpoint(path)
    check_model(model, state["model"], path, state["model_class"])
    if state["structure"] != repr(model):
        raise CheckpointError(
            path,
            f"expected a checkpoint of this model, found one of another {state['model_class']} with the same weight "
            "shapes but other layers (e.g. another activation)",
            "build the same model that wrote the checkpoint, or use another checkpoint file",
        )
    differences = [
        f"{key}={state['run'].get(key)!r} in the file, {value!r} here"
        for key, value in run.items() if state["run"].get(key) != value
    ]
    if differences:
        raise CheckpointError(
            path,
            "expected a checkpoint of this run, found one written with other settings: " + "; ".join(differences),
            "use the settings of the run that wrote it, another checkpoint file, or resume=False to start afresh",
        )
    _check_optimizer(state["optimizer"], optimizer, path)
    difference = _form_difference(state["scheduler"], scheduler.state_dict(), "scheduler")
    if difference is not None:
        raise _damaged(path, f"expected the learning-rate schedule's state, found another ({difference})")
    device = _device_of(model)
    _check_rng(state["rng"], generator, device, state["device"], path)
    if state["device"] != device.type:
        warnings.warn(f"{path} was written by a run on {state['device']}; this one is on {device.type}. It carries on, "
                      "but not exactly as the original run would have: random numbers and arithmetic differ between "
                      "devices", InexactResume, stacklevel=3)
        state["rng"].pop("device", None)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    model.load_state_dict(state["model"])
    _set_rng_states(state["rng"], generator, device)
    return state["epoch"], state["history"]
