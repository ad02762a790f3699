"""mnist_lib.book.backprop: hand-written gradients against autograd, finite differences and torch.optim."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mnist_lib.book.backprop import ManualMLP, autograd_gradients, finite_difference, train_manual
from mnist_lib.models import MLP

PARAMS = ("W1", "b1", "W2", "b2")


def linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    """The module's two linear layers, in order (wherever its input standardisation sits)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


@pytest.fixture(scope="module")
def batch(mnist):
    """64 real training images as (N, 784) floats in [0, 1], with their labels."""
    x = mnist.train.images[:64].flatten(1).float() / 255
    return x, mnist.train.labels[:64]


def test_parameter_shapes():
    net = ManualMLP(hidden=20)
    shapes = {k: tuple(v.shape) for k, v in net.params().items()}
    assert shapes == {"W1": (20, 784), "b1": (20,), "W2": (10, 20), "b2": (10,)}
    assert not torch.equal(ManualMLP(seed=0).W1, ManualMLP(seed=1).W1)
    assert torch.equal(ManualMLP(seed=5).W2, ManualMLP(seed=5).W2)


def test_hand_gradients_equal_autograd(batch):
    x, y = batch
    net = ManualMLP(hidden=100, seed=0)
    loss, grads = net.loss_and_gradients(x, y)
    reference = autograd_gradients(net, x, y)
    assert loss == pytest.approx(F.cross_entropy(net.forward(x)[1], y).item(), rel=1e-5)
    for name in PARAMS:
        assert grads[name].shape == net.params()[name].shape
        assert grads[name].abs().max() > 0, name  # a real gradient, not all zeros
        torch.testing.assert_close(grads[name], reference[name], rtol=1e-4, atol=1e-6)


def test_autograd_gradients_leave_the_net_unchanged(batch):
    x, y = batch
    net = ManualMLP(hidden=16)
    before = {k: v.clone() for k, v in net.params().items()}
    autograd_gradients(net, x, y)
    for k in PARAMS:
        assert torch.equal(net.params()[k], before[k])
        assert not net.params()[k].requires_grad


def test_hand_gradients_equal_finite_differences(batch):
    x, y = batch[0][:16].double(), batch[1][:16]
    net = ManualMLP(hidden=30, seed=1, dtype=torch.float64)
    _, grads = net.loss_and_gradients(x, y)
    g = torch.Generator().manual_seed(0)
    for name in PARAMS:
        grad = grads[name]
        # the three largest entries, and three at random (some W1 entries are exactly 0:
        # pixels that are blank in every image of the batch)
        largest = grad.abs().flatten().topk(3).indices
        chosen = torch.cat([largest, torch.randint(grad.numel(), (3,), generator=g)])
        for flat in chosen.tolist():
            index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), grad.shape))
            numeric = finite_difference(net, x, y, name, index)
            analytic = grad[index].item()
            assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-10), (name, index)
        assert abs(grad.flatten()[largest[0]].item()) > 1e-4  # the checks above were not trivial
    # finite_difference restores the weight it wiggled
    _, again = net.loss_and_gradients(x, y)
    for name in PARAMS:
        assert torch.equal(again[name], grads[name])


def test_to_module_gives_the_same_network(batch):
    x, _ = batch
    net = ManualMLP(hidden=40, seed=2)
    module = net.to_module()
    assert isinstance(module, MLP)
    assert [tuple(p.shape) for p in module.parameters()] == [(40, 784), (40,), (10, 40), (10,)]
    assert any(isinstance(m, torch.nn.Sigmoid) for m in module.modules())
    with torch.no_grad():
        logits = module(x.view(-1, 1, 28, 28))
    torch.testing.assert_close(logits, net.forward(x)[1], rtol=1e-5, atol=1e-5)
    # the module is a copy: changing it leaves the manual network alone
    with torch.no_grad():
        linears(module)[0].weight.zero_()
    assert net.W1.abs().sum() > 0


def test_to_module_float64():
    net = ManualMLP(hidden=8, dtype=torch.float64)
    module = net.to_module()
    assert all(p.dtype == torch.float64 for p in module.parameters())
    assert torch.equal(linears(module)[0].weight, net.W1)


def test_sgd_step_equals_torch_sgd(batch):
    x, y = batch
    lr = 0.5
    net = ManualMLP(hidden=50, seed=3)
    module = net.to_module()
    before = {k: v.clone() for k, v in net.params().items()}

    opt = torch.optim.SGD(module.parameters(), lr=lr)
    loss = F.cross_entropy(module(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()

    manual_loss = net.sgd_step(x, y, lr)
    assert manual_loss == pytest.approx(loss.item(), rel=1e-5)
    first, last = linears(module)
    after = dict(zip(PARAMS, (first.weight, first.bias, last.weight, last.bias)))
    for name in PARAMS:
        assert not torch.equal(net.params()[name], before[name]), name  # the step moved it
        torch.testing.assert_close(net.params()[name], after[name].detach(), rtol=1e-5, atol=1e-6)


def test_train_manual_lowers_the_loss(mnist):
    net = ManualMLP(hidden=30, seed=0)
    losses = train_manual(net, mnist.train.head(512), lr=0.5, batch_size=32, epochs=3, progress=False)
    assert len(losses) == 3 * 16
    assert sum(losses[-16:]) / 16 < 0.7 * sum(losses[:16]) / 16
    x = mnist.test.images[:500].flatten(1).float() / 255
    assert (net.predict(x) == mnist.test.labels[:500]).float().mean() > 0.5
