"""What a checkpoint is checked for before anything in it is restored, and its digests.

:mod:`mnist_lib.checkpoint` writes and reads checkpoints; this module holds its checks:
the SHA-256 digest of the contents (:func:`content_digest`), the entries and their types,
the epochs and the History (:func:`_check_contents`), weights that fit the model
(:func:`check_model`), optimizer state that fits the optimizer, and generator states the
generators accept. Each failed check raises one :class:`CheckpointError` that says what
is wrong and what to do; :mod:`mnist_lib.checkpoint` re-exports the public names.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .device import DEVICE_TYPES

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


# ----------------------------------------------------------------------- digests


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


# ----------------------------------------------------------------------- checks


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
    expected = {"torch": torch.get_rng_state(), "loader": generator.get_state()}  # the CPU generators' form
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
