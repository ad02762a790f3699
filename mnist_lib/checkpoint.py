"""Checkpoints: the whole state of a training run in one file, written atomically.

:func:`~mnist_lib.train.fit` with ``checkpoint=path`` calls :func:`save_checkpoint` at
the end of every epoch, and with ``resume=True`` calls :func:`resume_checkpoint` before
the first one. A checkpoint holds everything the rest of the run depends on: the
weights, the optimizer's and the scheduler's state, every random number generator
(torch's global one drives dropout, the loader's own drives shuffling), the History so
far and the number of epochs done. So on the CPU a run that is killed and resumed ends
with exactly the weights of a run that was never interrupted.

The file is written to a temporary name in the same folder and then renamed over the
old one, so a crash (or SIGKILL) mid-write leaves the previous checkpoint intact.
Problems with a checkpoint (unreadable, truncated, another model, another run) raise
one :class:`CheckpointError` that says what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "mnist_lib checkpoint 1"


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to this model or run."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}. Fix: {fix}.")


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short SHA-256 of some tensors' bytes: identifies the training data of a run."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _rng_states(generator: torch.Generator) -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()  # weights_only=True loads plain types only
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mps": torch.mps.get_rng_state() if torch.backends.mps.is_available() else None,
        "loader": generator.get_state(),
        "python": random.getstate(),
        "numpy": numpy_state,
    }


def _set_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    if states["mps"] is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"])
    generator.set_state(states["loader"])
    random.setstate(states["python"])
    numpy_state = states["numpy"]
    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """Write the state of a run after ``epoch`` epochs to ``path``, atomically.

    ``generator`` is the training loader's shuffling generator; ``history`` the History
    as a dict; ``run`` the settings a resumed run must share (checked by
    :func:`resume_checkpoint`).
    """
    atomic_save(
        {
            "format": FORMAT,
            "epoch": epoch,
            "model_class": type(model).__name__,
            "structure": repr(model),  # the layers, activations included
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_states(generator),
            "history": history,
            "run": run,
        },
        path,
    )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors on the CPU)."""
    path = Path(path)
    state = _load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            path,
            "expected a training checkpoint written by mnist_lib's fit(checkpoint=...), found another kind of file",
            "pass the checkpoint file that fit wrote, or resume=False to start afresh",
        )
    return state


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


def check_model(model: nn.Module, state: Any, path: str | os.PathLike, saved_class: str | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``state`` holds exactly the tensors ``model`` has."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tensors = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    found = {k: tuple(v.shape) for k, v in state.items()} if tensors else {}
    if expected == found:
        return
    differences = [f"{k} {expected[k]} here, {found[k]} in the file"
                   for k in expected if k in found and expected[k] != found[k]]
    for label, keys in (("missing from the file", [k for k in expected if k not in found]),
                        ("not in this model", [k for k in found if k not in expected])):
        if keys:
            differences.append(f"{label}: {', '.join(keys[:4])}{f' and {len(keys) - 4} more' if len(keys) > 4 else ''}")
    shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
    raise CheckpointError(
        path,
        f"expected the weights of this {type(model).__name__} ({len(expected)} tensors), found "
        + (f"weights for another {saved_class or 'model'} ({len(found)} tensors): {shown}"
           if tensors else f"no weights (a {type(state).__name__})"),
        "build the same model that wrote the file, or load another file",
    )


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights into ``model`` from a checkpoint or a saved ``state_dict`` (``--save``); return it."""
    state = _load(Path(path))
    if isinstance(state, dict) and state.get("format") == FORMAT:
        state, saved_class = state["model"], state["model_class"]
    else:
        saved_class = None
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

    Checks first that the checkpoint was written for this model and by a run with the
    same settings (``run``), so nothing is half-restored when it does not fit.
    """
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
    try:  # before the model: if the optimizer's state does not fit, the model is left as it was
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(path, f"expected optimizer state for this model's parameter groups, found another ({e})",
                              "build the optimizer the way the run that wrote it did, or resume=False") from None
    model.load_state_dict(state["model"])
    _set_rng_states(state["rng"], generator)
    return state["epoch"], state["history"]
