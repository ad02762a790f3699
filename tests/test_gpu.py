"""End-to-end checks on a CUDA GPU (marked ``gpu``; skipped without one). ``make gpu-check`` runs them.

CPU and GPU results are compared with a tolerance, never bitwise: cuDNN convolutions use
TF32 (10 mantissa bits) by default, and a GPU sums in another order than a CPU.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

from conftest import HAS_CUDA
from mnist_lib.augment import RandomAffine
from mnist_lib.experiments import AUTOENCODER, CONFIGS
from mnist_lib.models import MLP
from mnist_lib.train import evaluate, fit, make_optimizer, predict, seed_everything

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")]

CUDA = "cuda"
TF32 = dict(rel=5e-3, abs=1e-3)  # TF32 keeps 10 mantissa bits: about 1e-3 relative per product


def _without_dropout(model: nn.Module) -> nn.Module:
    """Dropout masks come from each device's own generator: switch it off to compare devices."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_first_step_loss_on_cuda_matches_the_cpu(mnist, name):
    config = CONFIGS[name]
    batch = mnist.train.head(config.batch_size)
    first = {}
    for device in ("cpu", CUDA):
        seed_everything(0)
        model = _without_dropout(config.model())
        history = fit(model, batch, device=device, progress=False,
                      **config.fit_kwargs(epochs=1, amp=False, channels_last=False, augment=None))
        first[device] = history.step_loss[0]
    assert first[CUDA] == pytest.approx(first["cpu"], **TF32)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_setup_trains_on_cuda_with_amp_channels_last_and_augmentation(mnist, name):
    config = CONFIGS[name]
    augment = RandomAffine(degrees=10, scale=0.1, shift=2)  # on [0, 1] pixels, as every model takes
    seed_everything(0)
    model = config.model()
    history = fit(model, mnist.train.head(8192), evals={"test": mnist.test.head(1000)}, device=CUDA, progress=False,
                  **config.fit_kwargs(epochs=2, amp=True, channels_last=True, augment=augment))
    assert all(math.isfinite(v) for v in history.step_loss)
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in model.parameters())
    assert history.final("test_acc") > 0.3  # it learns (chance is 0.1; the slowest, sigmoid LeNet, ~0.6 on a CPU)


def test_autoencoder_trains_with_amp_on_cuda(mnist):
    """CUDA autocast refuses binary cross-entropy: the loss must run outside it."""
    seed_everything(0)
    history = fit(AUTOENCODER.model(), mnist.train.head(2048), device=CUDA, progress=False,
                  **AUTOENCODER.fit_kwargs(epochs=1, amp=True))
    assert math.isfinite(history.final("train_loss"))


def test_an_epoch_waits_for_the_gpu_only_a_few_times(mnist):
    """No host sync per step: the losses are read every DIVERGENCE_CHECK_STEPS steps and at the end."""
    config = CONFIGS["mlp"]
    seed_everything(0)
    model = config.model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            history = fit(model, mnist.train.head(4096), device=CUDA, progress=False,
                          **config.fit_kwargs(epochs=1, batch_size=32))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    steps = len(history.step_loss)
    assert steps == 128 and syncs < steps // 4, f"{syncs} syncs in {steps} steps"


def test_evaluate_and_predict_hand_a_cpu_model_back_on_the_cpu(mnist):
    seed_everything(0)
    model = MLP((784, 32, 10), "relu").train()
    evaluate(model, mnist.test.head(500), device=CUDA)
    assert all(p.device.type == "cpu" for p in model.parameters()) and model.training
    labels = predict(model, mnist.test.images[:10], device=CUDA)
    assert labels.device.type == "cpu"
    assert all(p.device.type == "cpu" for p in model.parameters()) and model.training


def test_adam_is_fused_on_cuda():
    weights = [torch.zeros(3, device=CUDA, requires_grad=True)]
    opt = make_optimizer("adam", weights, lr=1e-3, device=CUDA)
    assert opt.defaults["fused"]
    weights[0].sum().backward()
    opt.step()
    assert weights[0].device.type == "cuda"


def test_deterministic_fit_repeats_bitwise_on_cuda():
    """cuBLAS reads its workspace setting when CUDA starts, so this runs in a fresh process."""
    code = textwrap.dedent("""
        import torch
        from mnist_lib.data import load_mnist
        from mnist_lib.experiments import CONFIGS
        from mnist_lib.train import fit, seed_everything

        train, config = load_mnist().train.head(2048), CONFIGS["mlp"]

        def once():
            seed_everything(0)
            model = config.model()
            history = fit(model, train, device="cuda", deterministic=True, progress=False,
                          **config.fit_kwargs(epochs=1))
            return history.step_loss, model.state_dict()

        (l1, w1), (l2, w2) = once(), once()
        assert l1 == l2 and all(torch.equal(w1[k], w2[k]) for k in w1), "not bitwise"
        print("bitwise")
    """)
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "bitwise" in done.stdout, done.stderr[-2000:]
