"""The book's networks, as plain ``nn.Module``s.

Every model takes a normalised batch of shape (N, 1, 28, 28) and returns logits (N, 10)
(autoencoders return images). Named setups that use them live in
:mod:`mnist_lib.experiments`.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

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


class MLP(nn.Module):
    """A fully connected network, e.g. ``MLP((784, 300, 10), "sigmoid")``.

    The images are flattened to 784 inputs; every hidden layer is followed by the
    activation; the last layer gives the logits (softmax lives in the loss).
    ``init="glorot"`` uses Keras's default initialisation (Glorot-uniform weights, zero
    biases) instead of PyTorch's, as the Keras-based reports did.
    """

    def __init__(self, sizes: tuple[int, ...] = (784, 300, 10), act: str = "sigmoid", init: str = "pytorch"):
        super().__init__()
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
        return self.net(x)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
