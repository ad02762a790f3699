"""Saved models: one way to load any of them, and the files that hold them.

:func:`load_model` takes

* a shipped name (``"lenet5_improved"``, ``"bncnn_committee"``): ``mnist_lib/weights/NAME.json``;
* a sidecar ``.json``: ``{"name", "title", "members": [{"architecture", "weights",
  "weights_sha256"}, ...], "test_acc", ...}``, each member's weights a ``state_dict`` in a
  ``.pt`` file next to it (several members make a :class:`~mnist_lib.models.Committee`);
* a file written by ``python -m mnist_lib train --save`` (:func:`save`): the architecture and
  the ``state_dict`` in one ``.pt``;
* a checkpoint written by ``fit(checkpoint=...)``, whose model is one of the registry's
  setups (:data:`mnist_lib.experiments.CONFIGS`) or a library model with default options.

Every model carries its input standardisation (:class:`~mnist_lib.models.Standardize`) in
its weights, so the model that comes back takes [0, 1] pixels like any other.
:func:`ship` trains a shipped model's recorded recipe (``python -m mnist_lib ship NAME``).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import json
import math
import os
import platform
import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import files, models, paths
from .checkpoint import FORMAT as CHECKPOINT_FORMAT
from .checkpoint import CheckpointError, check_model, load_weights, read_checkpoint

MODEL_FORMAT = "mnist_lib model 1"
SHIPPED = ("lenet5_improved", "bncnn_committee")
KINDS = ("a shipped model name (" + ", ".join(SHIPPED) + "), a file written by `python -m mnist_lib train --save`, "
         "a sidecar .json or a checkpoint written by fit")


class ModelError(ValueError):
    """A saved model that is missing, damaged, or not one the library can rebuild. The message says how to fix it."""


# ----------------------------------------------------------------------- architectures


def describe(factory: Callable[[], nn.Module]) -> dict:
    """``{"class": ..., "kwargs": ...}`` of a model factory: a class of :mod:`mnist_lib.models` or a ``partial`` of one."""
    cls, args, kwargs = factory, (), {}
    if isinstance(factory, functools.partial):
        cls, args, kwargs = factory.func, factory.args, factory.keywords
    if not (isinstance(cls, type) and getattr(models, cls.__name__, None) is cls):
        raise ModelError(f"cannot describe {factory!r}: expected a class of mnist_lib.models or a functools.partial "
                         "of one")
    bound = inspect.signature(cls).bind(*args, **kwargs).arguments
    return {"class": cls.__name__, "kwargs": json.loads(json.dumps(bound))}  # tuples as lists: what JSON holds


def build(architecture: dict) -> nn.Module:
    """A fresh model from ``{"class": "LeNet5", "kwargs": {...}}`` (classes of :mod:`mnist_lib.models`)."""
    cls = getattr(models, str(architecture.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"unknown architecture class {architecture.get('class')!r}; expected a model of mnist_lib.models")
    kwargs = architecture.get("kwargs", {})
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # the file's kwargs, not a bug here: say which and why
        raise ModelError(f"'kwargs' {_short(kwargs)} do not build a {cls.__name__} ({e}); expected keyword "
                         f"arguments of mnist_lib.models.{cls.__name__}") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------- writing


def save(model: nn.Module, path: str | os.PathLike, architecture: dict) -> Path:
    """Write ``model`` as one self-describing file (``train --save``): its architecture and ``state_dict``."""
    return files.save_torch({"format": MODEL_FORMAT, "architecture": architecture, "state_dict": model.state_dict()},
                            path)


def save_shipped(name: str, networks: list[nn.Module], architecture: dict, scores: dict, training: dict, *,
                 title: str, folder: str | os.PathLike | None = None) -> dict:
    """Write trained networks as a shipped model: ``NAME-i.pt`` weights (``NAME.pt`` for one) and ``NAME.json``.

    ``scores``: the measured test ``acc``, ``loss`` (or None) and ``images``; ``training``:
    how the networks were made. Returns the sidecar.
    """
    folder = Path(folder or paths.WEIGHTS)
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for i, net in enumerate(networks, 1):
        weights = folder / (f"{name}.pt" if len(networks) == 1 else f"{name}-{i}.pt")
        files.save_torch(net.state_dict(), weights)
        members.append({"architecture": architecture, "weights": weights.name, "weights_sha256": sha256(weights)})
    sidecar = {"name": name, "title": title, "members": members, "test_acc": scores["acc"],
               "test_loss": scores.get("loss"), "test_images": scores["images"], "training": training}
    files.write_text(folder / f"{name}.json", json.dumps(sidecar, indent=2) + "\n")
    return sidecar


# ----------------------------------------------------------------------- reading


def locate(name_or_path: str | os.PathLike) -> Path:
    """The file a name or path stands for: a shipped name is ``mnist_lib/weights/NAME.json``."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix or os.sep in text or "/" in text or path.exists():
        return path
    return paths.WEIGHTS / f"{text}.json"


def _check_sidecar(sidecar: Any, path: Path) -> list[dict]:
    """The sidecar's members once every entry has its expected form; else a ModelError naming the entry."""
    def bad(key: str, expected: str, value=None, missing: bool = False) -> ModelError:
        return ModelError(f"{path}: entry {key!r} {'is missing' if missing else 'is ' + _short(value)}; "
                          f"expected {expected}")

    if not isinstance(sidecar, dict):
        raise ModelError(f"{path}: expected a JSON object with a 'members' list, found a {type(sidecar).__name__}")
    members = sidecar.get("members")
    if not (isinstance(members, list) and members):
        raise bad("members", "a non-empty list of objects, each with 'architecture' and 'weights'", members,
                  missing="members" not in sidecar)
    for i, member in enumerate(members):
        key = f"members[{i}]"
        if not isinstance(member, dict):
            raise bad(key, "an object with 'architecture' and 'weights' entries", member)
        architecture = member.get("architecture")
        if not isinstance(architecture, dict):
            raise bad(key + ".architecture", 'an object {"class": "LeNet5", "kwargs": {...}}', architecture,
                      missing="architecture" not in member)
        if not isinstance(architecture.get("class"), str):
            raise bad(key + ".architecture.class", 'the name of a model of mnist_lib.models, e.g. "LeNet5"',
                      architecture.get("class"), missing="class" not in architecture)
        if not isinstance(architecture.get("kwargs", {}), dict):
            raise bad(key + ".architecture.kwargs", "an object of keyword arguments", architecture["kwargs"])
        if not (isinstance(member.get("weights"), str) and member["weights"]):
            raise bad(key + ".weights", "the name of a .pt file next to the sidecar", member.get("weights"),
                      missing="weights" not in member)
        digest = member.get("weights_sha256")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
            raise bad(key + ".weights_sha256", "the weights' SHA-256 as 64 hexadecimal digits (or no entry)", digest)
    for key in ("name", "title"):
        if key in sidecar and not isinstance(sidecar[key], str):
            raise bad(key, "a string", sidecar[key])
    acc = sidecar.get("test_acc")
    if acc is not None and not (isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc)):
        raise bad("test_acc", "a number (the test accuracy, 0 to 1) or null", acc)
    return members


def _missing(path: Path) -> ModelError:
    if path.parent == paths.WEIGHTS and path.suffix == ".json":
        shipped = sorted(p.stem for p in paths.WEIGHTS.glob("*.json")) if paths.WEIGHTS.is_dir() else []
        return ModelError(f"{path.stem!r}: no such shipped model; expected one of {', '.join(shipped) or 'none'} "
                          f"(in {paths.WEIGHTS}) or the path of a saved model")
    return ModelError(f"{path}: no such file; expected {KINDS}")


def read_sidecar(name_or_path: str | os.PathLike) -> dict:
    """The checked sidecar of a shipped name or a ``.json`` path (what it holds: title, test accuracy, training)."""
    path = locate(name_or_path)
    if not path.exists():
        raise _missing(path)
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable JSON sidecar ({e}); restore it or save the model again") from None
    _check_sidecar(sidecar, path)
    return sidecar


def _from_sidecar(path: Path) -> nn.Module:
    networks = []
    for i, member in enumerate(_check_sidecar(read_sidecar(path), path)):
        weights = path.parent / member["weights"]
        if not weights.exists():
            raise ModelError(f"{weights}: the weights named by {path.name} are missing; restore them")
        if member.get("weights_sha256") and sha256(weights) != member["weights_sha256"]:
            raise ModelError(f"{weights}: its SHA-256 differs from the one recorded in {path.name}; the weights were "
                             "replaced without updating the sidecar (or the file is damaged)")
        try:
            network = build(member["architecture"])
        except ModelError as e:
            raise ModelError(f"{path}: entry 'members[{i}].architecture': {e}") from None
        networks.append(_load_state(network, weights))
    return networks[0] if len(networks) == 1 else models.Committee(networks)


def _load_state(network: nn.Module, weights: Path) -> nn.Module:
    try:
        return load_weights(network, weights)
    except CheckpointError as e:
        raise ModelError(str(e)) from None


def _from_checkpoint(path: Path) -> nn.Module:
    """A fit checkpoint's model, rebuilt as the registry's setup (or library class) whose layers it records."""
    from .experiments import CONFIGS

    state = read_checkpoint(path)
    factories = [c.model for c in CONFIGS.values()] + [getattr(models, state["model_class"], None)]
    for factory in factories:
        try:
            model = factory()
        except Exception:  # a class that needs arguments (CodeClassifier): not this one
            continue
        # The input scale is in the weights; the layers must be the same.
        if _layers(repr(model)) == _layers(state["structure"]):
            check_model(model, state["model"], path, state["model_class"])
            model.load_state_dict(state["model"])
            return model
    raise ModelError(f"{path}: a checkpoint of a {state['model_class']} that is none of the registry's setups "
                     "(mnist_lib.experiments.CONFIGS); build that model and use mnist_lib.load_weights(model, path)")


def _layers(structure: str) -> str:
    return re.sub(r"Standardize\(.*\)", "Standardize()", structure)


def load_model(name_or_path: str | os.PathLike = "lenet5_improved") -> nn.Module:
    """Any saved model, ready: on the CPU, in eval mode, taking [0, 1] pixels (see the module's docstring)."""
    path = locate(name_or_path)
    if not path.is_file():
        raise _missing(path)
    if path.suffix == ".json":
        return _from_sidecar(path).eval()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a damaged or foreign file
        raise ModelError(f"{path}: not a readable model file ({type(e).__name__}); expected {KINDS}") from None
    kind = state.get("format") if isinstance(state, dict) else None
    if kind == MODEL_FORMAT:
        if not isinstance(state.get("architecture"), dict) or not isinstance(state.get("state_dict"), dict):
            raise ModelError(f"{path}: a damaged model file (no architecture or weights); save the model again")
        try:
            model = build(state["architecture"])
            check_model(model, state["state_dict"], path, state["architecture"].get("class"))
        except (ModelError, CheckpointError) as e:
            raise ModelError(f"{path}: {e}") from None
        model.load_state_dict(state["state_dict"])
        return model.eval()
    if kind == CHECKPOINT_FORMAT:
        return _from_checkpoint(path).eval()
    if path.with_suffix(".json").is_file():  # a shipped model's weights: its sidecar says the rest
        return _from_sidecar(path.with_suffix(".json")).eval()
    raise ModelError(f"{path}: holds weights only (no architecture); expected {KINDS}. Train again with "
                     "`python -m mnist_lib train ... --save FILE`, or build the model and use "
                     "mnist_lib.load_weights(model, path)")


# ----------------------------------------------------------------------- shipping


def recipes() -> dict[str, dict]:
    """How each shipped model was made: the setup, its epochs and seeds (one seed per member)."""
    from .experiments import BEST_SINGLE, COMMITTEE_SEEDS, LENET5_IMPROVED

    return {
        "lenet5_improved": {"config": LENET5_IMPROVED, "epochs": 8, "seeds": [0],
                            "title": "LeNet-5 improved (ReLU, max pooling, dropout 0.5), trained on distorted digits"},
        "bncnn_committee": {"config": BEST_SINGLE, "epochs": BEST_SINGLE.epochs, "seeds": list(range(COMMITTEE_SEEDS)),
                            "title": f"Committee of {COMMITTEE_SEEDS} BN-CNNs trained on distorted digits (chapter 7)"},
    }


def ship(name: str, *, folder: str | os.PathLike | None = None, overwrite: bool = False, epochs: int | None = None,
         limit: int | None = None, device=None, progress: bool | None = None, log=print) -> dict:
    """Train shipped model ``name`` by its recipe on MNIST; write its weights and sidecar; return the sidecar.

    ``epochs`` and ``limit`` (the first N training images) shorten it for a try; the
    sidecar records them. Refuses to replace an existing model unless ``overwrite``.
    """
    from . import __version__
    from .data import load_mnist
    from .device import choose_device, describe_device, seed_everything
    from .train import evaluate, fit

    recipe = recipes().get(name)
    if recipe is None:
        raise ModelError(f"{name!r}: no recipe; expected one of {', '.join(recipes())}")
    folder = Path(folder or paths.WEIGHTS)
    if (folder / f"{name}.json").exists() and not overwrite:
        raise ModelError(f"{folder / (name + '.json')} exists; add --overwrite to replace it")
    config, epochs = recipe["config"], epochs or recipe["epochs"]
    data, device = load_mnist(), choose_device(device)
    train = data.train.head(limit) if limit else data.train
    networks, member_acc, seconds = [], [], 0.0
    for seed in recipe["seeds"]:
        log(f"{name}: member {len(networks) + 1} of {len(recipe['seeds'])} (seed {seed}), {epochs} epochs, "
            f"{len(train):,} images, on {device}")
        seed_everything(seed)
        model = config.model()
        history = fit(model, train, seed=seed, device=device, progress=progress, **config.fit_kwargs(epochs=epochs))
        seconds += sum(record["seconds"] for record in history.epochs)
        networks.append(model.cpu().eval())
        member_acc.append(evaluate(networks[-1], data.test, device="cpu")["acc"])
    scores = evaluate(networks[0] if len(networks) == 1 else models.Committee(networks), data.test, device="cpu")
    training = {"setup": str(config), "optimizer": config.optimizer, "lr": config.lr, "schedule": config.schedule,
                "batch_size": config.batch_size, "epochs": epochs, "setup_epochs": config.epochs,
                "augment": str(config.augment), "seeds": recipe["seeds"], "train_images": len(train),
                "seconds": round(seconds, 1),
                "test_acc_per_member": member_acc, "device": describe_device(device), "torch": torch.__version__,
                "mnist_lib": __version__, "python": platform.python_version(),
                "date": datetime.date.today().isoformat(), "how": f"python -m mnist_lib ship {name}"
                + (f" --epochs {epochs}" if epochs != recipe["epochs"] else "") + (f" --limit {limit}" if limit else "")}
    return save_shipped(name, networks, describe(config.model), scores | {"images": len(data.test)}, training,
                        title=recipe["title"], folder=folder)
