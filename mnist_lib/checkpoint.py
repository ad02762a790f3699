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
:class:`CheckpointError` that says what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import math
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
from .device import DEVICE_TYPES

FORMAT = "mnist_lib checkpoint 2"
OLD_FORMATS = ("mnist_lib checkpoint 1",)
# The per-parameter state of torch.optim's SGD, Adam, AdamW and RMSprop: tensors of the parameter's shape.
PARAMETER_SHAPED = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg"}
FIX_DAMAGED = "restore a good copy, or train afresh (resume=False; on the command line, --overwrite)"


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to this model or run."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}. Fix: {fix}.")

    def __reduce__(self):  # picklable, e.g. back from a worker process of run_jobs
        return type(self), (self.path, self.problem, self.fix)


class InexactResume(UserWarning):
    """A run is resumed on another kind of device than the one that wrote its checkpoint."""


def _update(digest: "hashlib._Hash", t: torch.Tensor) -> None:
    """Feed a tensor's bytes to ``digest`` (any dtype, no copy when it is already a contiguous CPU tensor)."""
    digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short SHA-256 of some tensors' bytes: identifies the training data of a run."""
    digest = hashlib.sha256()
    for t in tensors:
        _update(digest, t)
    return digest.hexdigest()[:16]


def content_digest(state: dict[str, Any]) -> str:
    """The SHA-256 of a checkpoint's contents, its ``"digest"`` entry excepted.

    Every tensor counts with its dtype, shape and bytes, every other value by its
    ``repr`` (exact for the numbers, strings and containers a checkpoint holds), in order.
    """
    digest = hashlib.sha256()

    def walk(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            digest.update(f"<tensor {obj.dtype} {tuple(obj.shape)}>".encode())
            _update(digest, obj)
        elif isinstance(obj, dict):
            digest.update(b"{")
            for key, value in obj.items():
                walk(key)
                walk(value)
            digest.update(b"}")
        elif isinstance(obj, (list, tuple)):
            digest.update(b"[" if isinstance(obj, list) else b"(")
            for value in obj:
                walk(value)
            digest.update(b"]")
        else:
            digest.update(f"{type(obj).__name__}:{obj!r};".encode())

    walk({k: v for k, v in state.items() if k != "digest"})
    return digest.hexdigest()


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


def _damaged(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(path, problem, FIX_DAMAGED)


def _kind(value: Any) -> str:
    return "a number" if isinstance(value, (int, float)) and not isinstance(value, bool) else f"a {type(value).__name__}"


def _form_difference(found: Any, expected: Any, where: str) -> str | None:
    """Where ``found`` differs in form from ``expected`` (keys, types, lengths, tensor dtypes and shapes,
    finite numbers), or None. Numbers match numbers, whatever their values."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(found, torch.Tensor):
            return f"{where}: a tensor expected, {_kind(found)} found"
        if found.dtype != expected.dtype or found.shape != expected.shape:
            return (f"{where}: a {expected.dtype} tensor of shape {tuple(expected.shape)} expected, "
                    f"a {found.dtype} one of shape {tuple(found.shape)} found")
        return None
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return f"{where}: a dict expected, {_kind(found)} found"
        if set(found) != set(expected):
            missing, extra = [k for k in expected if k not in found], [k for k in found if k not in expected]
            return f"{where}: " + "; ".join(
                f"{label} {', '.join(map(repr, keys))}" for label, keys in (("missing", missing), ("unexpected", extra)) if keys)
        return next((d for k in expected if (d := _form_difference(found[k], expected[k], f"{where}[{k!r}]"))), None)
    if isinstance(expected, (list, tuple)):
        if type(found) is not type(expected) or len(found) != len(expected):
            length = f" of {len(found)}" if isinstance(found, (list, tuple)) else ""
            return f"{where}: a {type(expected).__name__} of {len(expected)} expected, {_kind(found)}{length} found"
        return next((d for i, (f, e) in enumerate(zip(found, expected))
                     if (d := _form_difference(f, e, f"{where}[{i}]"))), None)
    if _kind(found) != _kind(expected):
        return f"{where}: {_kind(expected)} expected, {_kind(found)} found"
    if isinstance(found, float) and not math.isfinite(found):
        return f"{where}: a finite number expected, {found} found"
    return None


def _check_contents(state: dict[str, Any], path: Path) -> None:
    """The checks that need no model: the digest, the entries and their types, the epochs, the History."""
    if not isinstance(state.get("digest"), str) or state["digest"] != content_digest(state):
        raise _damaged(path, "damaged: its contents do not match the SHA-256 digest recorded when it was written "
                             "(a changed byte, or an edit)")
    expected = {"epoch": int, "device": str, "model_class": str, "structure": str, "model": dict, "optimizer": dict,
                "scheduler": dict, "rng": dict, "history": dict, "run": dict}
    for key, kind in expected.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            found = "nothing" if key not in state else _kind(state[key])
            raise _damaged(path, f"expected {key!r} to be {_kind(kind())}, found {found}")
    total, epoch = state["run"].get("epochs"), state["epoch"]
    if not (isinstance(total, int) and 1 <= epoch <= total):
        raise _damaged(path, f"expected 1 to {total} epochs done, found {epoch}")
    if state["device"] not in DEVICE_TYPES:
        raise _damaged(path, f"expected the device type cpu, cuda or mps, found {state['device']!r}")
    history = state["history"]
    records = history.get("epochs")
    if (not isinstance(records, list) or not isinstance(history.get("step_loss"), list)
            or [r.get("epoch") if isinstance(r, dict) else None for r in records] != list(range(1, epoch + 1))):
        raise _damaged(path, f"expected a History with 'step_loss' and one record for each of the {epoch} epochs done")
    for value in [*history["step_loss"], *(v for r in records for v in r.values())]:
        if _kind(value) != "a number":
            raise _damaged(path, f"expected numbers in the History, found {_kind(value)}")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors on the CPU), checking its digest and form."""
    path = Path(path)
    state = _load(path)
    if isinstance(state, dict) and state.get("format") in OLD_FORMATS:
        raise CheckpointError(path, f"expected a checkpoint of format {FORMAT!r}, found the older "
                                    f"{state['format']!r}, which has no integrity check",
                              "train afresh (resume=False; on the command line, --overwrite)")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            path,
            "expected a training checkpoint written by mnist_lib's fit(checkpoint=...), found another kind of file",
            "pass the checkpoint file that fit wrote, or resume=False to start afresh",
        )
    _check_contents(state, path)
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


def _listed(keys: list[str]) -> str:
    return f"{', '.join(keys[:4])}{f' and {len(keys) - 4} more' if len(keys) > 4 else ''}"


def check_model(model: nn.Module, state: Any, path: str | os.PathLike, saved_class: str | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``state`` holds exactly the tensors ``model`` has: the same
    names, shapes and dtypes, and finite values."""
    own = model.state_dict()
    expected = {k: tuple(v.shape) for k, v in own.items()}
    tensors = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    found = {k: tuple(v.shape) for k, v in state.items()} if tensors else {}
    if expected != found:
        differences = [f"{k} {expected[k]} here, {found[k]} in the file"
                       for k in expected if k in found and expected[k] != found[k]]
        for label, keys in (("missing from the file", [k for k in expected if k not in found]),
                            ("not in this model", [k for k in found if k not in expected])):
            if keys:
                differences.append(f"{label}: {_listed(keys)}")
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise CheckpointError(
            path,
            f"expected the weights of this {type(model).__name__} ({len(expected)} tensors), found "
            + (f"weights for another {saved_class or 'model'} ({len(found)} tensors): {shown}"
               if tensors else f"no weights (a {type(state).__name__})"),
            "build the same model that wrote the file, or load another file",
        )
    other_dtypes = [f"{k} {state[k].dtype} (not {v.dtype})" for k, v in own.items() if state[k].dtype != v.dtype]
    if other_dtypes:
        raise CheckpointError(path, f"expected weights of this model's dtypes, found {_listed(other_dtypes)}",
                              "convert the model to the file's dtype first, or load another file")
    not_finite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if not_finite:
        raise CheckpointError(path, f"expected finite weights, found NaN or infinite values in {_listed(not_finite)}",
                              "the run that wrote it diverged, or the file was edited: use another file or train afresh")


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights into ``model`` from a checkpoint or a saved ``state_dict`` (``--save``); return it."""
    state = _load(Path(path))
    saved_class = None
    if isinstance(state, dict) and state.get("format") in (FORMAT, *OLD_FORMATS):
        if state["format"] == FORMAT:
            _check_contents(state, Path(path))
        state, saved_class = state.get("model"), state.get("model_class")
    check_model(model, state, path, saved_class)
    model.load_state_dict(state)
    return model


def _check_optimizer(found: dict[str, Any], optimizer: torch.optim.Optimizer, path: Path) -> None:
    """The optimizer state must fit this optimizer: its groups, and one state per parameter of its shape."""
    difference = _form_difference(found.get("param_groups"), optimizer.state_dict()["param_groups"], "param_groups")
    states = found.get("state")
    if difference is None and not isinstance(states, dict):
        difference = f"state: a dict expected, {_kind(states)} found"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entry in (states.items() if difference is None else ()):
        if not (isinstance(index, int) and 0 <= index < len(params) and isinstance(entry, dict)):
            difference = f"state[{index!r}]: the state of one of the {len(params)} parameters expected"
            break
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                if name in PARAMETER_SHAPED and value.shape != params[index].shape:
                    difference = (f"state[{index}][{name!r}]: shape {tuple(params[index].shape)} expected, "
                                  f"{tuple(value.shape)} found")
                elif value.is_floating_point() and not torch.isfinite(value).all():
                    difference = f"state[{index}][{name!r}]: finite values expected, NaN or infinite found"
            elif value is not None and (d := _form_difference(value, 0.0, f"state[{index}][{name!r}]")) is not None:
                difference = d
    if difference is not None:
        raise CheckpointError(path, f"expected optimizer state for this model's parameter groups, found another "
                                    f"({difference})", "build the optimizer the way the run that wrote it did, or "
                                                       "resume=False")


def _check_rng(found: dict[str, Any], generator: torch.Generator, device: torch.device, saved_device: str,
               path: Path) -> None:
    """The generator states must be ones the generators accept; tried on throwaway generators."""
    expected = {k: v for k, v in _rng_states(generator, torch.device("cpu")).items() if k in ("torch", "loader")}
    difference = _form_difference({k: found.get(k) for k in expected}, expected, "rng")
    if difference is None:
        try:
            random.Random().setstate(found["python"])
            numpy_state = dict(found["numpy"], state=dict(found["numpy"]["state"]))
            numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
            np.random.RandomState().set_state(numpy_state)
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            difference = f"rng: Python's or NumPy's state is not one they accept ({type(e).__name__})"
    if difference is None and saved_device == device.type != "cpu":
        state = found.get("device")
        if not (isinstance(state, torch.Tensor) and state.dtype == torch.uint8):
            difference = f"rng['device']: the {device.type} generator's state expected"
    if difference is not None:
        raise _damaged(path, f"expected the random number generators' states, found something else ({difference})")


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
