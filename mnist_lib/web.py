"""The draw-a-digit page (chapter 8): a trained network, exported for the reader's browser.

The browser side is plain JavaScript in ``_static/draw/draw.js`` (and its ``draw.css``):
the same preprocessing as :func:`mnist_lib.preprocess.to_mnist`, step for step, and a
forward pass that interprets a list of layers. This module provides everything else:

* the shipped weights: ``mnist_lib/weights/NAME.pt`` (a ``state_dict``) and ``mnist_lib/weights/NAME.json``
  (a sidecar: the architecture, the normalisation, how it was trained, its measured
  test accuracy). :func:`train_drawing_model` made ``lenet5_improved``; a later model
  (e.g. an ensemble: a sidecar with ``members``) replaces it by name, nothing else changes;
* :func:`load_model`: the network(s) and sidecar of a name or path;
* :func:`export_model` / :func:`export_web`: the layers and weights as JSON for the browser
  (``python -m mnist_lib export-web`` writes ``_static/draw/NAME.json``), checked against
  PyTorch by a NumPy interpreter of the same layer list (:func:`reference_logits`);
* :func:`widget_html` / :func:`widget`: the self-contained HTML of the page (script, style
  and model inlined), which works in Jupyter, on the built website and from ``file://``;
* :func:`digit_strokes` / :func:`render_strokes`: a test digit turned into pen strokes and
  drawn like a canvas would (with the page's pen, :func:`pen_width`, which narrows with a
  small drawing), for measuring "drawn digits" without a human.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import math
import os
import platform
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from . import models as models_mod
from . import files
from .checkpoint import CheckpointError, load_weights

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # package data: shipped inside the wheel too
STATIC_DIR = PROJECT_ROOT / "_static" / "draw"
DEFAULT_MODEL = "lenet5_improved"
FORMAT = "mnist_lib web model 1"

# The drawing pad: its size in canvas pixels (10x MNIST's 28) and the pen. These are read
# by draw.js from the model file's "pad" entry, so Python and JS cannot disagree. The pen
# is a share of the drawing's size (the larger side of its strokes' bounding box): a
# fixed pen would make a small drawing a blob once to_mnist scales it to 20x20.
PAD_SIZE = 280
PEN_WIDTH = 20  # the widest pen, for a drawing of 240 pixels (the 20x20 box, 12 pad pixels a digit pixel) or more
PEN_SHARE = PEN_WIDTH / 240
MIN_PEN = 3
MIN_DRAWING = 0.15  # share of the pad: a drawing smaller than this (a click, a short dash) is no digit yet


class WebModelError(ValueError):
    """The shipped weights or their export are missing, damaged or out of date."""


# ---------------------------------------------------------------------------------------
# The shipped weights: training them once, loading them by name
# ---------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_drawing_model(epochs: int = 8, seed: int = 0, name: str = DEFAULT_MODEL, folder: Path | None = None,
                        progress: bool | None = None) -> dict:
    """Train the improved LeNet-5 once on all 60,000 training images; write its weights and sidecar.

    This is how ``mnist_lib/weights/lenet5_improved.pt`` was made (see its ``.json``). The setup is
    :data:`~mnist_lib.experiments.LENET5_IMPROVED` (ReLU, max pooling, dropout 0.5, Adam
    0.002 with a cosine schedule, batches of 128) with random affine distortions of the
    training images, which make hand-drawn digits (slanted, off-size) more familiar,
    and ``epochs`` instead of the setup's 15 to keep it within minutes on a CPU.
    Returns the sidecar.
    """
    from . import __version__
    from .augment import RandomAffine
    from .data import load_mnist
    from .experiments import LENET5_IMPROVED
    from .train import choose_device, describe_device, evaluate, fit, seed_everything

    config = LENET5_IMPROVED
    augment = config.augment or RandomAffine(degrees=10, scale=0.1, shift=2)
    architecture = {"class": "LeNet5", "kwargs": {"act": "relu", "pool": "max", "dropout": 0.5}}
    data = load_mnist()
    device = choose_device()
    seed_everything(seed)
    model = config.model()
    if repr(model) != repr(build(architecture)):
        raise RuntimeError("LENET5_IMPROVED no longer builds LeNet5(relu, max, dropout 0.5): update the architecture here")
    start = time.perf_counter()
    history = fit(model, data.train, seed=seed, device=device, progress=progress,
                  **config.fit_kwargs(epochs=epochs, augment=augment))
    seconds = time.perf_counter() - start
    scores = evaluate(model.cpu(), data.test, device="cpu", normalization=config.normalization)
    training = {
        "setup": config.name,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "schedule": config.schedule,
        "batch_size": config.batch_size,
        "epochs": epochs,
        "setup_epochs": config.epochs,
        "augment": repr(augment),
        "seed": seed,
        "train_images": len(data.train),
        "train_acc_last_epoch": history.final("train_acc"),
        "device": describe_device(device),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "mnist_lib": __version__,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "how": f"python -c 'from mnist_lib import web; web.train_drawing_model(epochs={epochs}, seed={seed})'",
    }
    return save_model(name, [model], architecture, config.normalization, scores | {"images": len(data.test)},
                      training, title="LeNet-5 improved (ReLU, max pooling, dropout 0.5), trained on distorted digits",
                      folder=folder)


def save_model(name: str, networks: list[nn.Module], architecture: dict, normalization: tuple[float, float],
               scores: dict, training: dict, *, title: str, folder: str | os.PathLike | None = None) -> dict:
    """Write trained networks as a shipped model: weights and a JSON sidecar; return the sidecar.

    One network: ``NAME.pt``. Several (a committee): ``NAME-1.pt``, ``NAME-2.pt``, ... listed
    as the sidecar's ``members``; :func:`load_model` reads either. ``architecture`` is
    ``{"class": ..., "kwargs": ...}`` (a class of :mod:`mnist_lib.models`); ``scores`` the
    measured ``acc``, ``loss`` (or None) and ``images`` of the test set; ``training`` says how
    the networks were made.
    """
    folder = Path(folder or WEIGHTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for i, net in enumerate(networks, 1):
        weights = folder / (f"{name}.pt" if len(networks) == 1 else f"{name}-{i}.pt")
        files.save_torch(net.state_dict(), weights)
        members.append({"architecture": architecture, "weights": weights.name, "weights_sha256": _sha256(weights)})
    sidecar = {"name": name, "title": title, **(members[0] if len(members) == 1 else {"members": members}),
               "normalization": list(normalization), "test_acc": scores["acc"], "test_loss": scores.get("loss"),
               "test_images": scores["images"], "training": training}
    files.write_text(folder / f"{name}.json", json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def build(architecture: dict) -> nn.Module:
    """A fresh model from a sidecar's ``{"class": "LeNet5", "kwargs": {...}}`` (classes of :mod:`mnist_lib.models`)."""
    cls = getattr(models_mod, str(architecture.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise WebModelError(f"unknown architecture class {architecture.get('class')!r}; expected a model of mnist_lib.models")
    kwargs = architecture.get("kwargs", {})
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # the sidecar's kwargs, not a bug here: say which and why
        raise WebModelError(f"'kwargs' {_short(kwargs)} do not build a {cls.__name__} ({e}); expected keyword "
                            f"arguments of mnist_lib.models.{cls.__name__}") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_sidecar(sidecar, path: Path) -> list[tuple[str, dict]]:
    """The sidecar's members as (key, member), once every entry has its expected form; else a WebModelError naming it.

    A hand-edited sidecar must fail here, with the entry's name, not later as a raw
    ``TypeError`` somewhere in the export.
    """
    def bad(key: str, expected: str, value=None, missing: bool = False) -> WebModelError:
        return WebModelError(f"{path}: entry {key!r} {'is missing' if missing else 'is ' + _short(value)}; "
                             f"expected {expected}")

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(sidecar, dict):
        raise WebModelError(f"{path}: expected a JSON object with 'architecture', 'weights' and 'normalization' "
                            f"entries, found a {type(sidecar).__name__}")
    if "members" in sidecar:
        if not (isinstance(sidecar["members"], list) and sidecar["members"]):
            raise bad("members", "a non-empty list of objects, each with 'architecture' and 'weights'",
                      sidecar["members"])
        members = [(f"members[{i}]", m) for i, m in enumerate(sidecar["members"])]
    else:
        members = [("", sidecar)]
    for key, member in members:
        if not isinstance(member, dict):
            raise bad(key, "an object with 'architecture' and 'weights' entries", member)
        at = key + "." if key else ""
        architecture = member.get("architecture")
        if not isinstance(architecture, dict):
            raise bad(at + "architecture", 'an object {"class": "LeNet5", "kwargs": {...}}', architecture,
                      missing="architecture" not in member)
        if not isinstance(architecture.get("class"), str):
            raise bad(at + "architecture.class", 'the name of a model of mnist_lib.models, e.g. "LeNet5"',
                      architecture.get("class"), missing="class" not in architecture)
        if not isinstance(architecture.get("kwargs", {}), dict):
            raise bad(at + "architecture.kwargs", "an object of keyword arguments", architecture["kwargs"])
        if not (isinstance(member.get("weights"), str) and member["weights"]):
            raise bad(at + "weights", "the name of a .pt file next to the sidecar", member.get("weights"),
                      missing="weights" not in member)
        digest = member.get("weights_sha256")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
            raise bad(at + "weights_sha256", "the weights' SHA-256 as 64 hexadecimal digits (or no entry)", digest)
    normalization = sidecar.get("normalization")
    if not (isinstance(normalization, list) and len(normalization) == 2 and all(map(number, normalization))):
        raise bad("normalization", "[mean, std], two numbers", normalization, missing="normalization" not in sidecar)
    if normalization[1] <= 0:
        raise bad("normalization", "[mean, std] with std > 0", normalization)
    for key in ("name", "title"):
        if key in sidecar and not isinstance(sidecar[key], str):
            raise bad(key, "a string", sidecar[key])
    if sidecar.get("test_acc") is not None and not number(sidecar["test_acc"]):
        raise bad("test_acc", "a number (the test accuracy, 0 to 1) or null", sidecar["test_acc"])
    return members


@dataclass
class WebModel:
    """A shipped model: its networks (one, or the members of an ensemble) and its sidecar."""

    name: str
    members: list[nn.Module]
    sidecar: dict
    path: Path  # the sidecar file

    @property
    def normalization(self) -> tuple[float, float]:
        mean, std = self.sidecar["normalization"]
        return float(mean), float(std)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each member's logits (N, 10) for uint8 images (N, 28, 28), on the CPU in float32."""
        from .data import normalize

        x = normalize(images.cpu(), *self.normalization)
        return [m.eval()(x) for m in self.members]

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10): the members' softmax outputs, averaged (as draw.js does)."""
        return torch.stack([torch.softmax(z, 1) for z in self.logits(images)]).mean(0)


def _sidecar_path(model: str | os.PathLike) -> Path:
    text = str(model)
    path = Path(text)
    if path.suffix in (".pt", ".json") or os.sep in text or "/" in text:
        return path.with_suffix(".json")
    return WEIGHTS_DIR / f"{text}.json"


def load_model(model: str | os.PathLike = DEFAULT_MODEL) -> WebModel:
    """The shipped model ``model``: a name in ``mnist_lib/weights/`` or the path of its ``.json`` or ``.pt``.

    The sidecar names the architecture and the weights file (checked against its
    SHA-256). An ensemble's sidecar lists ``members``, each with its own
    ``architecture`` and ``weights``.
    """
    path = _sidecar_path(model)
    if not path.exists():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.json")) if WEIGHTS_DIR.is_dir() else []
        raise WebModelError(f"{path}: no such model sidecar; expected a model name in {WEIGHTS_DIR} "
                            f"({', '.join(shipped) or 'none there'}) or the path of a sidecar .json")
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise WebModelError(f"{path}: not a readable JSON sidecar ({e})") from None
    networks = []
    for key, member in _check_sidecar(sidecar, path):
        weights = path.parent / member["weights"]
        if not weights.exists():
            raise WebModelError(f"{weights}: the weights named by {path.name} are missing")
        if member.get("weights_sha256") and _sha256(weights) != member["weights_sha256"]:
            raise WebModelError(f"{weights}: its SHA-256 differs from the one recorded in {path.name}; "
                                "the weights were replaced without updating the sidecar (or the file is damaged)")
        try:
            network = build(member["architecture"])
        except WebModelError as e:
            raise WebModelError(f"{path}: entry {(key + '.' if key else '') + 'architecture'!r}: {e}") from None
        try:
            networks.append(load_weights(network, weights).eval())
        except CheckpointError as e:
            raise WebModelError(str(e)) from None
    return WebModel(sidecar.get("name", path.stem), networks, sidecar, path)


# ---------------------------------------------------------------------------------------
# Export: the layers as data, and a NumPy interpreter of that data
# ---------------------------------------------------------------------------------------

def _b64(t: torch.Tensor) -> str:
    """float32 little-endian bytes, base64: exact, and about a third larger than binary."""
    return base64.b64encode(t.detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()).decode()


def _unb64(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def _layer(module: nn.Module) -> dict | None:
    """One leaf module as data; None for modules that do nothing at inference (dropout)."""
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or _pair(module.dilation) != [1, 1] or not isinstance(module.padding, (int, tuple)) \
                or module.padding_mode != "zeros":
            raise WebModelError(f"cannot export {module}: only plain convolutions (groups 1, dilation 1, zero padding)")
        return {"type": "conv2d", "in": module.in_channels, "out": module.out_channels,
                "kernel": _pair(module.kernel_size), "stride": _pair(module.stride), "padding": _pair(module.padding),
                "weight": _b64(module.weight),
                "bias": _b64(module.bias if module.bias is not None else torch.zeros(module.out_channels))}
    if isinstance(module, nn.Linear):
        return {"type": "linear", "in": module.in_features, "out": module.out_features, "weight": _b64(module.weight),
                "bias": _b64(module.bias if module.bias is not None else torch.zeros(module.out_features))}
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):  # at inference: a per-channel affine map
        scale = module.weight.double() / torch.sqrt(module.running_var.double() + module.eps)
        shift = module.bias.double() - module.running_mean.double() * scale
        return {"type": "affine", "channels": module.num_features, "scale": _b64(scale), "shift": _b64(shift)}
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        if _pair(module.padding) != [0, 0] or module.ceil_mode:
            raise WebModelError(f"cannot export {module}: only pooling without padding or ceil_mode")
        return {"type": "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool",
                "kernel": _pair(module.kernel_size), "stride": _pair(module.stride or module.kernel_size)}
    if isinstance(module, nn.ELU):
        return {"type": "elu", "alpha": float(module.alpha)}
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Flatten: "flatten"}
    for cls, name in simple.items():
        if isinstance(module, cls):
            return {"type": name}
    if isinstance(module, (nn.Dropout, nn.Identity)):
        return None
    raise WebModelError(f"cannot export a {type(module).__name__} layer: draw.js knows conv2d, linear, batch norm, "
                        "max/avg pooling, relu, elu, tanh, sigmoid, flatten and dropout")


def export_model(model: WebModel | str | os.PathLike = DEFAULT_MODEL, check_images: torch.Tensor | None = None) -> dict:
    """The model as JSON-able data for draw.js: normalisation, and each member's layers in order.

    The layers are the model's leaf modules in the order they were registered, which is
    the order a chain of ``nn.Sequential`` blocks (every model of the book) runs them.
    That assumption is checked: :func:`reference_logits` runs the exported data on
    ``check_images`` (default: a few synthetic digits) and must give PyTorch's logits.
    """
    if not isinstance(model, WebModel):
        model = load_model(model)
    members = []
    for network in model.members:
        leaves = [m for m in network.modules() if not list(m.children())]
        members.append({"class": type(network).__name__,
                        "layers": [layer for layer in map(_layer, leaves) if layer is not None]})
    side = model.sidecar
    spec = {
        "format": FORMAT,
        "name": model.name,
        "title": side.get("title", model.name),
        "test_acc": side.get("test_acc"),
        "normalization": list(model.normalization),
        "input": [1, 28, 28],
        "classes": [str(d) for d in range(10)],
        "pad": {"size": PAD_SIZE, "pen": PEN_WIDTH, "pen_share": PEN_SHARE, "min_pen": MIN_PEN,
                "min_drawing": MIN_DRAWING},
        "source": {"sidecar": model.path.name, "weights_sha256": [m.get("weights_sha256") for m in side.get("members") or [side]]},
        "members": members,
    }
    images = check_images if check_images is not None else _check_digits()
    worst = max_logit_difference(spec, model, images)
    if not worst < 1e-4:
        raise WebModelError(f"the exported layers do not reproduce {model.name}'s logits (max difference {worst:.3g}): "
                            "its forward() is not a plain chain of its layers; export it by hand")
    return spec


def _check_digits(n: int = 8) -> torch.Tensor:
    """A few digit-like uint8 images (blobs and bars), enough to check an export without loading MNIST."""
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 28, 28)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    for i in range(n):
        cy, cx, r = (torch.rand(3, generator=g) * torch.tensor([8, 8, 4]) + torch.tensor([10, 10, 4])).tolist()
        ring = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        images[i] = (1 - (ring - r).abs() / 2).clamp(0, 1)
    return (images * 255).round().to(torch.uint8)


def decode(spec: dict) -> list[list[dict]]:
    """The members' layers with their weights as NumPy arrays (float32, as shipped)."""
    out = []
    for member in spec["members"]:
        layers = []
        for layer in member["layers"]:
            layer = dict(layer)
            if layer["type"] == "conv2d":
                layer["weight"] = _unb64(layer["weight"], (layer["out"], layer["in"], *layer["kernel"]))
                layer["bias"] = _unb64(layer["bias"], (layer["out"],))
            elif layer["type"] == "linear":
                layer["weight"] = _unb64(layer["weight"], (layer["out"], layer["in"]))
                layer["bias"] = _unb64(layer["bias"], (layer["out"],))
            elif layer["type"] == "affine":
                layer["scale"] = _unb64(layer["scale"], (layer["channels"],))
                layer["shift"] = _unb64(layer["shift"], (layer["channels"],))
            layers.append(layer)
        out.append(layers)
    return out


def _pool(x: np.ndarray, kernel, stride, reduce) -> np.ndarray:
    (kh, kw), (sh, sw) = kernel, stride
    c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :oh, :ow]
    return reduce(windows, axis=(-2, -1))


def reference_logits(spec: dict, images: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """Run the exported layer list in NumPy (float64): each member's logits (N, 10) for uint8 (N, 28, 28).

    The same arithmetic as draw.js's ``forward``, written independently of PyTorch, so
    that the export is checked before it ever reaches a browser.
    """
    images = np.asarray(images, dtype=np.float64)
    mean, std = spec["normalization"]
    outputs = []
    for layers in decode(spec):
        results = []
        for image in images:
            x = ((image / 255 - mean) / std)[None]
            for layer in layers:
                kind = layer["type"]
                if kind == "conv2d":
                    (ph, pw), (sh, sw), (kh, kw) = layer["padding"], layer["stride"], layer["kernel"]
                    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
                    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
                    x = np.einsum("chwij,ocij->ohw", win, layer["weight"].astype(np.float64)) + layer["bias"][:, None, None]
                elif kind == "linear":
                    x = layer["weight"].astype(np.float64) @ x + layer["bias"]
                elif kind == "affine":
                    shape = (-1,) + (1,) * (x.ndim - 1)
                    x = x * layer["scale"].reshape(shape) + layer["shift"].reshape(shape)
                elif kind == "maxpool":
                    x = _pool(x, layer["kernel"], layer["stride"], np.max)
                elif kind == "avgpool":
                    x = _pool(x, layer["kernel"], layer["stride"], np.mean)
                elif kind == "relu":
                    x = np.maximum(x, 0)
                elif kind == "elu":
                    x = np.where(x > 0, x, layer["alpha"] * np.expm1(np.minimum(x, 0)))
                elif kind == "tanh":
                    x = np.tanh(x)
                elif kind == "sigmoid":
                    x = 1 / (1 + np.exp(-x))
                elif kind == "flatten":
                    x = x.reshape(-1)
                else:
                    raise WebModelError(f"unknown layer type {kind!r} in the exported model")
            results.append(x.reshape(-1))
        outputs.append(np.stack(results))
    return outputs


def max_logit_difference(spec: dict, model: WebModel, images: torch.Tensor) -> float:
    """The largest |exported - PyTorch| logit over ``images`` and members."""
    ours = reference_logits(spec, images)
    theirs = model.logits(torch.as_tensor(images))
    return max(float(np.abs(a - b.double().numpy()).max()) for a, b in zip(ours, theirs))


def layer_summary(spec: dict) -> "pandas.DataFrame":  # noqa: F821
    """One row per exported layer: member, type, output shape, parameters and multiply-adds per image."""
    import pandas as pd

    rows = []
    for index, layers in enumerate(decode(spec)):
        shape = tuple(spec["input"])
        for layer in layers:
            kind, params, macs = layer["type"], 0, 0
            if kind == "conv2d":
                (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
                shape = (layer["out"], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
                params = layer["weight"].size + layer["bias"].size
                macs = layer["weight"].size * shape[1] * shape[2]
            elif kind in ("maxpool", "avgpool"):
                (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
                shape = (shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1)
            elif kind == "flatten":
                shape = (math.prod(shape),)
            elif kind == "linear":
                shape = (layer["out"],)
                params, macs = layer["weight"].size + layer["bias"].size, layer["weight"].size
            elif kind == "affine":
                params = layer["scale"].size + layer["shift"].size
            rows.append({"member": index, "layer": kind, "output": " x ".join(map(str, shape)),
                         "parameters": params, "multiply-adds": macs})
    return pd.DataFrame(rows)


def export_path(name: str = DEFAULT_MODEL) -> Path:
    """Where ``export-web`` writes the browser's copy of model ``name``."""
    return STATIC_DIR / f"{name}.json"


def export_web(model: str | os.PathLike = DEFAULT_MODEL, out: str | os.PathLike | None = None) -> Path:
    """Export ``model`` (a name in ``mnist_lib/weights/`` or a sidecar/weights path) to JSON for the browser; return the path.

    Written atomically, compact (no spaces): the chapter's widget and the website read it.
    """
    loaded = load_model(model)
    spec = export_model(loaded)
    path = Path(out) if out else export_path(loaded.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.write_text(path, json.dumps(spec, separators=(",", ":")) + "\n")


def read_export(name: str = DEFAULT_MODEL, path: str | os.PathLike | None = None) -> dict:
    """The exported model, checked to belong to the shipped weights (so the page never runs stale weights)."""
    path = Path(path) if path else export_path(name)
    fix = f"run: python -m mnist_lib export-web {name}"
    if not path.exists():
        raise WebModelError(f"{path}: no exported model; {fix}")
    try:
        spec = json.loads(path.read_text())
    except ValueError as e:
        raise WebModelError(f"{path}: not readable JSON ({e}); {fix}") from None
    found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
    if found != FORMAT:
        raise WebModelError(f"{path}: expected format {FORMAT!r}, found {found!r}; {fix}")
    sidecar_path = _sidecar_path(name) if not Path(str(name)).suffix else Path(name)
    if sidecar_path.exists():
        try:
            sidecar = json.loads(sidecar_path.read_text())
        except ValueError as e:
            raise WebModelError(f"{sidecar_path}: not a readable JSON sidecar ({e})") from None
        shipped = [member.get("weights_sha256") for _, member in _check_sidecar(sidecar, sidecar_path)]
        if (spec.get("source") or {}).get("weights_sha256") != shipped:
            raise WebModelError(f"{path} was exported from other weights than {sidecar_path.name} names; {fix}")
    return spec


# ---------------------------------------------------------------------------------------
# The page: one self-contained piece of HTML
# ---------------------------------------------------------------------------------------

def static_source(name: str) -> str:
    """The text of ``_static/draw/NAME`` (``draw.js``, ``draw.css``)."""
    path = STATIC_DIR / name
    if not path.exists():
        raise WebModelError(f"{path}: missing; it is part of the project (restore it: git checkout -- _static)")
    return path.read_text()


def _script_safe(text: str) -> str:
    """Text that can sit inside <script> or <style>: no "</" can end the element early."""
    return text.replace("</", "<\\/")


def _script_json(value) -> str:
    """``value`` as JSON that can sit inside <script>: every "<" escaped as \\u003c, which JSON reads back as "<".

    Escaping "</" alone is not enough: "<!--" followed by "<script" makes the HTML parser
    ignore the next "</script>", and the page's own scripts never run.
    """
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def widget_html(model: str = DEFAULT_MODEL, spec: dict | None = None) -> str:
    """The draw-a-digit widget as one piece of HTML, with the exported model inlined.

    On the built website, Jupyter Book loads ``_static/draw/draw.js`` and ``draw.css`` on
    every page, and the widget uses them. Anywhere else (a Jupyter notebook, a page
    without them) the inlined copies of both are used instead, so the HTML runs wherever
    it is shown with its scripts, ``file://`` included. No network either way.
    """
    spec = spec or read_export(model)
    uid = "mnist-draw-" + secrets.token_hex(4)
    model_json = _script_json(spec)
    css = _script_json(static_source("draw.css"))
    return (
        f'<div class="mnist-draw-widget" id="{uid}">\n'
        f'<div class="mnist-draw" aria-label="{html.escape(spec.get("title", "digit recogniser"))}">'
        '<noscript>This page draws with JavaScript; turn it on to try it.</noscript></div>\n'
        f'<script type="application/json" class="mnist-draw-model">{model_json}</script>\n'
        '<script>if (typeof MnistDraw === "undefined") {  // not on the website: bring draw.js and draw.css along\n'
        f'{_script_safe(static_source("draw.js"))}\n'
        '(function () {\n'
        '  var style = document.createElement("style");\n'
        f'  style.textContent = {css};\n'
        '  document.head.appendChild(style);\n'
        '})();\n'
        '}</script>\n'
        '<script>(function () {\n'
        '  var me = document.currentScript;\n'
        f'  var host = (me && me.closest && me.closest(".mnist-draw-widget")) || document.getElementById("{uid}");\n'
        '  var model = JSON.parse(host.querySelector("script.mnist-draw-model").textContent);\n'
        '  MnistDraw.mount(host.querySelector(".mnist-draw"), model);\n'
        '})();</script>\n'
        '</div>\n'
    )


def widget(model: str = DEFAULT_MODEL):
    """The widget for a notebook cell: ``IPython.display.HTML`` of :func:`widget_html`."""
    from IPython.display import HTML

    return HTML(widget_html(model))


# ---------------------------------------------------------------------------------------
# Drawing digits without a human: strokes from a test digit, rendered like a canvas
# ---------------------------------------------------------------------------------------

def digit_strokes(image: np.ndarray | torch.Tensor, scale: float | tuple[float, float] = 10.0, offset=(0.0, 0.0),
                  threshold: int = 128, step: float = 0.5) -> list[list[tuple[float, float]]]:
    """Pen strokes that trace a 28x28 digit's ink: one horizontal stroke per run of ink pixels in a row.

    Coordinates are (x, y) in pad pixels: pixel (row, col) of the digit is centred at
    ``offset + scale * (col + 0.5, row + 0.5)``; ``scale`` is one number or (x, y) scales.
    A pen about twice the vertical scale wide fills the rows between strokes, so the
    drawing is the digit's ink, enlarged. Along a stroke, points are ``step`` digit
    pixels apart (at most), like the positions a moving pointer reports.
    """
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    a = np.asarray(image) >= threshold
    strokes = []
    for row in range(a.shape[0]):
        cols = np.flatnonzero(a[row])
        if not len(cols):
            continue
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1):
            y = offset[1] + sy * (row + 0.5)
            x0, x1 = offset[0] + sx * (run[0] + 0.5), offset[0] + sx * (run[-1] + 0.5)
            n = max(2, int(math.ceil((run[-1] - run[0]) / step)) + 1)
            strokes.append([(x0 + (x1 - x0) * i / (n - 1), y) for i in range(n)])
    return strokes


def drawing_size(strokes) -> float:
    """The larger side of the bounding box of the strokes' points, in pad pixels (0 for a click)."""
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return max(max(xs) - min(xs), max(ys) - min(ys)) if xs else 0.0


def pen_width(strokes) -> float:
    """The page's pen for these strokes: a share of the drawing's size, between MIN_PEN and PEN_WIDTH (as draw.js)."""
    return min(max(PEN_SHARE * drawing_size(strokes), MIN_PEN), PEN_WIDTH)


def render_strokes(strokes, size: int = PAD_SIZE, pen: float | None = None, supersample: int = 4) -> Image.Image:
    """Strokes drawn with a round pen, dark on white, anti-aliased: what the page's canvas holds (``RGB``).

    The pen is the page's (:func:`pen_width`) unless ``pen`` gives another width.
    """
    pen = pen_width(strokes) if pen is None else pen
    big = Image.new("L", (size * supersample, size * supersample), 255)
    draw = ImageDraw.Draw(big)
    w, r = pen * supersample, pen * supersample / 2
    for stroke in strokes:
        points = [(x * supersample, y * supersample) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=0, width=round(w), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return big.resize((size, size), Image.Resampling.BOX).convert("RGB")
