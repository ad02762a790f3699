"""A trained network exported for the reader's browser, and a NumPy interpreter that checks the export.

The export is JSON: each member's layers in order (the first is the model's own
standardisation, ``{"type": "standardize", "mean", "std"}``), weights as base64 float32.
``draw.js`` runs the same layer list on the [0, 1] pixels of the drawing;
:func:`reference_logits` runs it in NumPy, so an export is checked against PyTorch before
it ever reaches a browser.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import files, paths, saved
from ..models import Committee, Standardize
from .strokes import MIN_DRAWING, MIN_PEN, PAD_SIZE, PEN_SHARE, PEN_WIDTH

DEFAULT_MODEL = "lenet5_improved"
FORMAT = "mnist_lib web model 2"  # 2: the input scale is the first layer (1 had a separate "normalization")
STATIC_DIR = paths.STATIC / "draw"


class WebModelError(saved.ModelError):
    """A model that cannot be exported, or an export that is missing, damaged or out of date."""


def _b64(t: torch.Tensor) -> str:
    """float32 little-endian bytes, base64: exact, and about a third larger than binary."""
    return base64.b64encode(t.detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()).decode()


def _unb64(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def _layer(module: nn.Module) -> dict | None:
    """One leaf module as data; None for modules that do nothing at inference (dropout)."""
    if isinstance(module, Standardize):
        return {"type": "standardize", "mean": module.mean.item(), "std": module.std.item()}
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
    raise WebModelError(f"cannot export a {type(module).__name__} layer: draw.js knows standardize, conv2d, linear, "
                        "batch norm, max/avg pooling, relu, elu, tanh, sigmoid, flatten and dropout")


def members(model: nn.Module) -> list[nn.Module]:
    """The networks whose probabilities the page averages: a committee's members, or the model itself."""
    return list(model.members) if isinstance(model, Committee) else [model]


@torch.no_grad()
def member_logits(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Each member's logits (N, 10) for uint8 images (N, 28, 28), on the CPU in float32 (what the export must give)."""
    x = torch.as_tensor(images).cpu().unsqueeze(1).float().div(255)
    return [m.cpu().eval()(x) for m in members(model)]


def export_model(model: nn.Module | str | os.PathLike = DEFAULT_MODEL, check_images: torch.Tensor | None = None,
                 *, name: str | None = None, title: str | None = None) -> dict:
    """The model as JSON-able data for draw.js: each member's layers in order, the standardisation first.

    ``model``: a network, a :class:`~mnist_lib.models.Committee`, or anything
    :func:`~mnist_lib.saved.load_model` takes (a shipped name's sidecar gives the title, the
    test accuracy and the weights' digests). The layers are the model's leaf modules in the
    order they were registered, which is the order a chain of ``nn.Sequential`` blocks
    (every model of the book) runs them. That assumption is checked: :func:`reference_logits`
    runs the exported data on ``check_images`` (default: a few synthetic digits) and must
    give PyTorch's logits.
    """
    sidecar, source = {}, None
    if not isinstance(model, nn.Module):
        path = saved.locate(model)
        name = name or path.stem
        if path.suffix == ".json":
            sidecar = saved.read_sidecar(path)
            source = {"sidecar": path.name, "weights_sha256": [m.get("weights_sha256") for m in sidecar["members"]]}
        model = saved.load_model(path)
    name = name or sidecar.get("name") or type(model).__name__
    layers = []
    for network in members(model):
        leaves = [m for m in network.modules() if not list(m.children())]
        layers.append({"class": type(network).__name__, "layers": [x for x in map(_layer, leaves) if x is not None]})
    spec = {
        "format": FORMAT,
        "name": name,
        "title": title or sidecar.get("title", name),
        "test_acc": sidecar.get("test_acc"),
        "input": [1, 28, 28],
        "classes": [str(d) for d in range(10)],
        "pad": {"size": PAD_SIZE, "pen": PEN_WIDTH, "pen_share": PEN_SHARE, "min_pen": MIN_PEN,
                "min_drawing": MIN_DRAWING},
        "source": source,
        "members": layers,
    }
    images = check_images if check_images is not None else _check_digits()
    worst = max_logit_difference(spec, model, images)
    if not worst < 1e-4:
        raise WebModelError(f"the exported layers do not reproduce {name}'s logits (max difference {worst:.3g}): "
                            "its forward() is not a plain chain of its layers; export it by hand")
    return spec


def _check_digits(n: int = 8) -> torch.Tensor:
    """A few rings of random centre and radius (uint8), enough to check an export without loading MNIST."""
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
    shapes = {"conv2d": {"weight": ("out", "in", "kernel"), "bias": ("out",)},
              "linear": {"weight": ("out", "in"), "bias": ("out",)},
              "affine": {"scale": ("channels",), "shift": ("channels",)}}
    out = []
    for member in spec["members"]:
        layers = []
        for layer in member["layers"]:
            layer = dict(layer)
            for key, dims in shapes.get(layer["type"], {}).items():
                shape = [d for dim in dims for d in (layer[dim] if isinstance(layer[dim], list) else [layer[dim]])]
                layer[key] = _unb64(layer[key], shape)
            layers.append(layer)
        out.append(layers)
    return out


def _pool(x: np.ndarray, kernel, stride, reduce) -> np.ndarray:
    (kh, kw), (sh, sw) = kernel, stride
    c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :oh, :ow]
    return reduce(windows, axis=(-2, -1))


def _run(layer: dict, x: np.ndarray) -> np.ndarray:
    """One exported layer on one image's activations, in float64."""
    kind = layer["type"]
    if kind == "standardize":
        return (x - layer["mean"]) / layer["std"]
    if kind == "conv2d":
        (ph, pw), (sh, sw), (kh, kw) = layer["padding"], layer["stride"], layer["kernel"]
        xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
        return np.einsum("chwij,ocij->ohw", win, layer["weight"].astype(np.float64)) + layer["bias"][:, None, None]
    if kind == "linear":
        return layer["weight"].astype(np.float64) @ x + layer["bias"]
    if kind == "affine":
        shape = (-1,) + (1,) * (x.ndim - 1)
        return x * layer["scale"].reshape(shape) + layer["shift"].reshape(shape)
    if kind in ("maxpool", "avgpool"):
        return _pool(x, layer["kernel"], layer["stride"], np.max if kind == "maxpool" else np.mean)
    if kind == "elu":
        return np.where(x > 0, x, layer["alpha"] * np.expm1(np.minimum(x, 0)))
    simple = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
              "flatten": lambda v: v.reshape(-1)}
    if kind in simple:
        return simple[kind](x)
    raise WebModelError(f"unknown layer type {kind!r} in the exported model")


def reference_logits(spec: dict, images: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """Run the exported layer list in NumPy (float64): each member's logits (N, 10) for uint8 (N, 28, 28).

    The same arithmetic as draw.js's ``forward``, written independently of PyTorch, so
    that the export is checked before it ever reaches a browser.
    """
    images = np.asarray(images, dtype=np.float64)
    outputs = []
    for layers in decode(spec):
        results = []
        for image in images:
            x = (image / 255)[None]  # [0, 1] pixels: the model standardises them itself
            for layer in layers:
                x = _run(layer, x)
            results.append(x.reshape(-1))
        outputs.append(np.stack(results))
    return outputs


def max_logit_difference(spec: dict, model: nn.Module, images: torch.Tensor) -> float:
    """The largest |exported - PyTorch| logit over ``images`` and members."""
    ours = reference_logits(spec, images)
    theirs = member_logits(model, torch.as_tensor(images))
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
    """Export ``model`` (a shipped name, or a path :func:`~mnist_lib.saved.load_model` takes) to JSON; return the path.

    Written atomically, compact (no spaces): the chapter's widget and the website read it.
    """
    spec = export_model(model)
    path = Path(out) if out else export_path(spec["name"])
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
    sidecar_path = saved.locate(name)
    if sidecar_path.suffix == ".json" and sidecar_path.exists():
        shipped = [member.get("weights_sha256") for member in saved.read_sidecar(sidecar_path)["members"]]
        if (spec.get("source") or {}).get("weights_sha256") != shipped:
            raise WebModelError(f"{path} was exported from other weights than {sidecar_path.name} names; {fix}")
    return spec
