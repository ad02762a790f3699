"""fit on PyTorch's ``meta`` device: no host sync and no copy from the host within an epoch.

On ``meta`` a tensor holds no values, so the first read of a result on the host
(``.item()``, ``.tolist()``, ``bool()``) raises, as a sync would cost on a GPU. ``fit``
reads nothing back until the epoch's last step (the divergence check comes every
``DIVERGENCE_CHECK_STEPS`` steps, more than an epoch here), so a whole epoch runs on
``meta`` and only the end-of-epoch read raises. :class:`test_meta.Traffic` records the
copies from the host to the device in between.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import mnist_lib.callbacks as callbacks_mod
import mnist_lib.train as train_mod
from mnist_lib.augment import RandomAffine
from mnist_lib.models import MLP, LeNet5
from mnist_lib.train import fit, seed_everything
from test_meta import Traffic

META = torch.device("meta")


@pytest.fixture
def on_meta(monkeypatch):
    """fit's device is ``meta`` (choose_device accepts only real devices)."""
    monkeypatch.setattr(train_mod, "choose_device", lambda device=None: META)


@pytest.mark.parametrize("net, settings", [
    ("mlp", dict(optimizer="sgd", lr=0.1, momentum=0.9)),
    ("lenet5", dict(schedule="onecycle", channels_last=True, augment=RandomAffine(degrees=10, scale=0.1, shift=2))),
    ("lenet5-evals", dict(schedule="cosine", optimizer="adamw")),
], ids=["mlp-sgd", "lenet5-onecycle-affine-nhwc", "lenet5-adamw-evals"])
def test_an_epoch_runs_on_meta_until_its_first_read_after_the_last_step(small_train, small_test, on_meta, net,
                                                                          settings):
    seed_everything(0)
    model = MLP((784, 32, 10), "relu") if net == "mlp" else LeNet5("relu", "max")
    split = small_train.head(96)  # 6 steps of 16, fewer than DIVERGENCE_CHECK_STEPS
    assert len(split) // 16 < callbacks_mod.DIVERGENCE_CHECK_STEPS
    uploads_at_step = []

    def loss_fn(out, y):
        assert out.device == META and out.dtype == torch.float32
        uploads_at_step.append(list(traffic.uploads))
        return F.cross_entropy(out, y)

    evals = {"test": small_test.head(32)} if net.endswith("evals") else None
    with Traffic() as traffic:
        with pytest.raises((RuntimeError, NotImplementedError), match="meta"):
            fit(model, split, evals=evals, batch_size=16, loss_fn=loss_fn, progress=False, **settings)
    assert len(uploads_at_step) == 6  # every step ran before the first read
    assert uploads_at_step[0] == uploads_at_step[-1], "a copy from the host during the epoch"
    assert not traffic.downloads
