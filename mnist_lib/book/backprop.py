"""Backpropagation written out by hand, for chapter 2.

A 784-100-10 network with a sigmoid hidden layer and a softmax output trained with
cross-entropy and plain SGD, using tensors but no autograd: every gradient below is
derived with the chain rule. The chapter checks these gradients against autograd and
against finite differences, then trains the network.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import trange

from ..data import DeviceLoader, Split
from ..train import show_progress


class ManualMLP:
    """A one-hidden-layer sigmoid network whose gradients are computed by hand.

    Parameters are plain tensors ``W1 (hidden, 784)``, ``b1``, ``W2 (10, hidden)``,
    ``b2``, laid out like ``nn.Linear`` so that they can be copied to and from the
    library's :class:`~mnist_lib.models.MLP`.
    """

    def __init__(self, hidden: int = 100, seed: int = 0, dtype: torch.dtype = torch.float32):
        g = torch.Generator().manual_seed(seed)

        def uniform(shape, fan_in):  # nn.Linear's default initialisation
            bound = fan_in**-0.5
            return (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) * bound

        self.W1, self.b1 = uniform((hidden, 784), 784), uniform((hidden,), 784)
        self.W2, self.b2 = uniform((10, hidden), hidden), uniform((10,), hidden)

    def params(self) -> dict[str, torch.Tensor]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 784) -> hidden activations h (N, hidden) and logits z (N, 10)."""
        h = torch.sigmoid(x @ self.W1.T + self.b1)
        return h, h @ self.W2.T + self.b2

    def loss_and_gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
        """Mean cross-entropy over the batch and its gradient for every parameter."""
        n = len(x)
        h, z = self.forward(x)
        p = torch.softmax(z, dim=1)
        loss = -torch.log(p[torch.arange(n), y]).mean()
        # dL/dz for softmax + cross-entropy: predicted probabilities minus one-hot target.
        dz = p.clone()
        dz[torch.arange(n), y] -= 1
        dz /= n
        # Output layer z = h W2^T + b2.
        dW2, db2 = dz.T @ h, dz.sum(0)
        # Back through W2, then through the sigmoid: sigma'(a) = h (1 - h).
        da = (dz @ self.W2) * h * (1 - h)
        dW1, db1 = da.T @ x, da.sum(0)
        return loss.item(), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def sgd_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        """One step of gradient descent on a batch; returns the batch loss."""
        loss, grads = self.loss_and_gradients(x, y)
        for name, param in self.params().items():
            param -= lr * grads[name]
        return loss

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1].argmax(1)

    def to_module(self) -> nn.Module:
        """The same network as the library's ``MLP((784, hidden, 10), "sigmoid")``, on [0, 1] pixels as this one."""
        from ..models import MLP

        mlp = MLP((784, self.W1.shape[0], 10), "sigmoid", input_scale=(0.0, 1.0)).to(self.W1.dtype)
        first, last = (m for m in mlp.modules() if isinstance(m, nn.Linear))
        with torch.no_grad():
            first.weight.copy_(self.W1), first.bias.copy_(self.b1)
            last.weight.copy_(self.W2), last.bias.copy_(self.b2)
        return mlp


def autograd_gradients(net: ManualMLP, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same gradients as :meth:`ManualMLP.loss_and_gradients`, by autograd."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in net.params().items()}
    h = torch.sigmoid(x @ params["W1"].T + params["b1"])
    loss = nn.functional.cross_entropy(h @ params["W2"].T + params["b2"], y)
    loss.backward()
    return {k: v.grad for k, v in params.items()}


def finite_difference(net: ManualMLP, x: torch.Tensor, y: torch.Tensor, name: str, index: tuple, eps: float = 1e-6) -> float:
    """Central difference (L(w+eps) - L(w-eps)) / 2 eps for one weight (use float64)."""
    param = net.params()[name]
    original = param[index].item()
    param[index] = original + eps
    plus, _ = net.loss_and_gradients(x, y)
    param[index] = original - eps
    minus, _ = net.loss_and_gradients(x, y)
    param[index] = original
    return (plus - minus) / (2 * eps)


def train_manual(
    net: ManualMLP,
    train: Split,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    progress: bool | None = None,
) -> list[float]:
    """Train ``net`` with hand-written SGD on ``train`` (pixels in [0, 1]); returns the loss of every step."""
    loader = DeviceLoader(train, batch_size, seed=seed)
    losses = []
    for _ in trange(epochs, desc="hand-written SGD", unit="epoch", disable=not show_progress(progress)):
        for x, y in loader:
            losses.append(net.sgd_step(x.flatten(1), y, lr))
    return losses
