"""The book's networks, as plain ``nn.Module``s.

Every model takes a batch of [0, 1] pixels of shape (N, 1, 28, 28) and returns logits
(N, 10) (autoencoders return images). Each one standardises its own input first: its first
layer is :class:`Standardize` (``input_scale=(mean, std)``, MNIST's by default), whose values
are saved with the weights, so a saved model says how to scale its inputs. Named setups
that use them live in :mod:`mnist_lib.experiments`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from .data import MEAN, STD

InputScale = tuple[float, float]  # (mean, std) of the pixels on the [0, 1] scale; (0, 1) keeps them

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``sigmoid``, ``tanh``, ``relu``, ``elu``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)}") from None


class Standardize(nn.Module):
    """``(x - mean) / std``: the standardisation of the pixels, as the first layer of every model.

    ``mean`` and ``std`` are buffers, so they are saved in the ``state_dict`` with the
    weights: a saved model says how its inputs were scaled, and
    :func:`~mnist_lib.saved.load_model` gives it back ready for [0, 1] pixels.
    ``Standardize(0, 1)`` keeps the pixels as they are.
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub(self.mean).div(self.std)

    def extra_repr(self) -> str:
        return f"mean={self.mean.item():.4g}, std={self.std.item():.4g}"


class MLP(nn.Module):
    """A fully connected network, e.g. ``MLP((784, 300, 10), "sigmoid")``.

    The images are flattened to 784 inputs; every hidden layer is followed by the
    activation; the last layer gives the logits (softmax lives in the loss).
    ``init="glorot"`` uses Keras's default initialisation (Glorot-uniform weights, zero
    biases) instead of PyTorch's, as the Keras-based reports did.
    """

    def __init__(self, sizes: tuple[int, ...] = (784, 300, 10), act: str = "sigmoid", init: str = "pytorch", *,
                 input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        if len(sizes) < 2 or sizes[0] != 784 or min(sizes) < 1:
            raise ValueError(f"sizes must start with 784 and hold positive widths, got {sizes}")
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(activation(act))
        self.net = nn.Sequential(*layers)
        if init == "glorot":
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
        elif init != "pytorch":
            raise ValueError(f"unknown init {init!r}; expected 'pytorch' or 'glorot'")

    def forward(self, x):
        return self.net(self.standardize(x))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pooling(kind: str) -> nn.Module:
    """A 2x2 pooling layer: ``"avg"`` (LeNet-5's subsampling) or ``"max"``."""
    if kind == "avg":
        return nn.AvgPool2d(2)
    if kind == "max":
        return nn.MaxPool2d(2)
    raise ValueError(f"unknown pooling {kind!r}; expected 'avg' or 'max'")


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) for 28x28 MNIST digits.

    Padding 2 on the first convolution gives the paper's 32x32 input. C1: 6 maps 5x5,
    S2: 2x2 pooling, C3: 16 maps 5x5, S4: 2x2 pooling, C5: 120 maps 5x5 (on a 5x5 input,
    so it is fully connected), F6: 84 units, output: 10. The paper's C3 connects each map
    to a subset of S2's maps and its output layer uses RBF units; like every modern
    reimplementation, this one connects all maps and uses a linear output.

    Args:
        act: the activation (``tanh`` as in the paper, ``sigmoid``, ``relu``, ``elu``).
        pool: ``"avg"`` (the paper's subsampling, and the CUHK report's) or ``"max"`` (the ANU reports').
        dropout: dropout probability before the output layer (0: none).
        input_scale: the (mean, std) that standardises the [0, 1] pixels (first layer).
    """

    def __init__(self, act: str = "tanh", pool: str = "max", dropout: float = 0.0, *,
                 input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), activation(act), pooling(pool),  # C1, S2: 6x14x14
            nn.Conv2d(6, 16, 5), activation(act), pooling(pool),  # C3, S4: 16x5x5
            nn.Conv2d(16, 120, 5), activation(act),  # C5: 120x1x1
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(120, 84), activation(act),  # F6
            nn.Dropout(dropout),
            nn.Linear(84, 10),  # output
        )

    def forward(self, x):
        return self.classifier(self.features(self.standardize(x)))


class DeepCNN(nn.Module):
    """The JETIR 2021 report's Keras CNN, rebuilt in PyTorch.

    conv 32@3x3 - maxpool - conv 64@3x3 - conv 64@3x3 - maxpool - flatten (1024) -
    dense 100 - dense 10, ReLU throughout.

    Args:
        block2_convs: how many 64-map convolutions the second block has (2 as in the
            report, 1, or 0 for no second block and no second pooling).
        dropout: probabilities of dropout after the flatten and before the output layer.
        input_scale: the (mean, std) that standardises the [0, 1] pixels (first layer).
    """

    def __init__(self, block2_convs: int = 2, dropout: tuple[float, float] = (0.0, 0.0), *,
                 input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        if block2_convs not in (0, 1, 2):
            raise ValueError(f"block2_convs must be 0, 1 or 2, got {block2_convs}")
        layers: list[nn.Module] = [nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2)]  # 32x13x13
        size, channels = 13, 32
        for _ in range(block2_convs):
            layers += [nn.Conv2d(channels, 64, 3), nn.ReLU()]
            size, channels = size - 2, 64
        if block2_convs:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout[0]),
            nn.Linear(channels * size * size, 100), nn.ReLU(),
            nn.Dropout(dropout[1]),
            nn.Linear(100, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(self.standardize(x)))


def batch_norms(kind: type[nn.Module], n: int, on: bool) -> list[nn.Module]:
    """``[kind(n)]``, or nothing when ``on`` is False: the layers around it then keep their biases
    (the batch norm's shift would have done their job), as in the ablations of chapters 7 and 9."""
    return [kind(n)] if on else []


class BNCNN(nn.Module):
    """Chapter 7's network: the deeper CNN of chapter 6 with batch normalisation.

    conv 32@3x3 - maxpool - conv 64@3x3 - conv 64@3x3 - maxpool - dense ``dense`` -
    dense 10. Every convolution and the hidden dense layer are followed by batch
    normalisation (which lets a higher learning rate train stably) and ReLU; dropout
    before the output layer. ``padding=1`` keeps each map's size through its
    convolution ("same"), at about twice the arithmetic of ``padding=0`` ("valid").
    ``batch_norm=False`` (with biases instead) and ``flatten_dropout`` undo two of chapter
    7's changes to chapter 6's network, for its ablation.
    """

    def __init__(self, dense: int = 128, dropout: float = 0.3, padding: int = 0, *, batch_norm: bool = True,
                 flatten_dropout: float = 0.0, input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)

        norm = partial(batch_norms, on=batch_norm)

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            # No conv bias: the batch norm's shift that follows does its job.
            return [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=not batch_norm), *norm(nn.BatchNorm2d, c_out),
                    nn.ReLU()]

        self.features = nn.Sequential(*conv(1, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2))
        size = 7 if padding else 4  # 28 -> 14 -> 7, or 26 -> 13 -> 11 -> 9 -> 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *([nn.Dropout(flatten_dropout)] if flatten_dropout else []),  # chapter 6's first dropout (ablation)
            nn.Linear(64 * size * size, dense, bias=not batch_norm), *norm(nn.BatchNorm1d, dense), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(self.standardize(x)))


class SpeedNet(nn.Module):
    """Chapter 9's sprinter: a small CNN designed for the training time to 99% test accuracy.

    conv 16@5x5 - maxpool - BN - ReLU - conv 32@3x3 - maxpool - BN - ReLU - dense 128 - BN -
    ReLU - dense 10. Pooling comes before the batch norm and the activation, so both run on
    a quarter of the pixels; batch normalisation lets a high learning rate train stably, so
    one epoch is enough. ``batch_norm=False`` (with biases instead) is for chapter 9's ablation.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), dense: int = 128, *, batch_norm: bool = True,
                 input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        c1, c2 = channels

        norm = partial(batch_norms, on=batch_norm)

        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, bias=not batch_norm), nn.MaxPool2d(2), *norm(nn.BatchNorm2d, c1), nn.ReLU(),  # 12x12
            nn.Conv2d(c1, c2, 3, bias=not batch_norm), nn.MaxPool2d(2), *norm(nn.BatchNorm2d, c2), nn.ReLU(),  # 5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, dense, bias=not batch_norm), *norm(nn.BatchNorm1d, dense), nn.ReLU(),
            nn.Linear(dense, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(self.standardize(x)))


class Autoencoder(nn.Module):
    """A dense autoencoder 784 - hidden... - code - ...hidden - 784 (default 784-256-64-code).

    The output is an image in [0, 1] (a sigmoid on the last layer), to be compared with
    the [0, 1] input by binary cross-entropy. ``encode`` gives the code. The input is
    standardised by ``input_scale`` (the reports fed [0, 1] pixels: ``input_scale=(0, 1)``);
    the output reconstructs the [0, 1] input itself.
    """

    def __init__(self, code: int = 6, hidden: tuple[int, ...] = (256, 64), *, input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        sizes = [784, *hidden, code]
        encoder, decoder = [nn.Flatten()], []
        for n_in, n_out in zip(sizes, sizes[1:]):
            encoder += [nn.Linear(n_in, n_out), nn.ReLU()]
        for n_in, n_out in zip(sizes[::-1], sizes[-2::-1]):
            decoder += [nn.Linear(n_in, n_out), nn.ReLU()]
        # No ReLU on the code (it may take any value); a sigmoid on the output (grey levels).
        self.encoder = nn.Sequential(*encoder[:-1])
        self.decoder = nn.Sequential(*decoder[:-1], nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))

    def encode(self, x):
        return self.encoder(self.standardize(x))

    def forward(self, x):
        return self.decoder(self.encode(x))


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder with the same ``code`` size as :class:`Autoencoder`.

    Encoder: two stride-2 convolutions (28 -> 14 -> 7) and a linear map to the code;
    decoder: the mirror image with transposed convolutions, then a sigmoid. ``input_scale``
    as in :class:`Autoencoder`.
    """

    def __init__(self, code: int = 6, *, input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),  # 16x14x14
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # 32x7x7
            nn.Flatten(), nn.Linear(32 * 7 * 7, code),
        )
        self.decoder = nn.Sequential(
            nn.Linear(code, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 16x14x14
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),  # 1x28x28
        )

    def encode(self, x):
        return self.encoder(self.standardize(x))

    def forward(self, x):
        return self.decoder(self.encode(x))


class CodeClassifier(nn.Module):
    """A classifier on the codes of a trained, frozen encoder: code -> hidden -> 10.

    ``encoder`` is an autoencoder's ``encoder`` (which takes standardised pixels);
    ``input_scale`` must be the one its autoencoder was built with.
    """

    def __init__(self, encoder: nn.Module, code: int, hidden: int = 64, *, input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        self.encoder = encoder.requires_grad_(False)
        self.head = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout or batch-norm updates either
        return self

    def forward(self, x):
        return self.head(self.encoder(self.standardize(x)))


class Committee(nn.Module):
    """Networks that vote by averaging their class probabilities, as one model.

    ``forward`` returns the LOG of the members' averaged softmax probabilities (N, 10):
    ``softmax`` of it gives the averaged probabilities back, its argmax is the
    committee's vote, and ``F.cross_entropy`` of it is the committee's loss (the negative
    log of the averaged probability of the right digit). So ``predict``, ``evaluate`` and
    the robustness helpers treat a committee like any network.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("a committee needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # log of the mean of softmaxes = logsumexp of the log-softmaxes - log(members): no underflow.
        logs = torch.stack([torch.log_softmax(member(x), 1) for member in self.members])
        return torch.logsumexp(logs, 0) - math.log(len(self.members))


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> "pd.DataFrame":  # noqa: F821
    """Each leaf layer with its output shape and parameter count, from a real forward pass."""
    import pandas as pd
    import torch

    rows, hooks = [], []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:  # a leaf: Conv2d, Linear, ReLU, ...
            def record(mod, inputs, output, name=name):
                params = sum(p.numel() for p in mod.parameters())
                rows.append({"layer": name, "type": type(mod).__name__,
                             "output shape": "x".join(map(str, output.shape[1:])), "parameters": params})
            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return pd.DataFrame(rows)
