"""mnist_lib.train: devices, seeding, fit, evaluate and predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import HAS_CUDA
from mnist_lib.data import scale_pixels
from mnist_lib.models import MLP
from mnist_lib.train import (
    SCHEDULES,
    TrainingDiverged,
    choose_device,
    evaluate,
    fit,
    make_optimizer,
    predict,
    predict_proba,
    seed_everything,
)


def tiny_model(seed: int = 0, hidden: int = 32, act: str = "relu") -> MLP:
    seed_everything(seed)
    return MLP((784, hidden, 10), act)


# ------------------------------------------------------------------------------ fit


@pytest.fixture(scope="module")
def trained(small_train, small_test):
    """A small MLP trained for a few epochs on 512 images; shared by several tests."""
    model = tiny_model(0, hidden=64)
    history = fit(model, small_train, evals={"test": small_test}, epochs=5, batch_size=64,
                  lr=2e-3, device="cpu", progress=False)
    return model, history


def test_fit_lowers_the_loss_and_learns(trained):
    _, history = trained
    first, last = history.epochs[0]["train_loss"], history.epochs[-1]["train_loss"]
    assert last < 0.5 * first
    assert history.final("test_acc") > 0.6  # chance is 0.1
    assert history.epochs[-1]["train_acc"] > history.epochs[0]["train_acc"]


def test_history_records(trained, small_train):
    _, history = trained
    steps_per_epoch = math.ceil(len(small_train) / 64)
    assert len(history.step_loss) == 5 * steps_per_epoch
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4, 5]
    frame = history.frame()
    assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"} <= set(frame.columns)
    assert len(frame) == 5
    # the epoch's train_loss is the mean of its step losses
    for i, record in enumerate(history.epochs):
        chunk = history.step_loss[i * steps_per_epoch:(i + 1) * steps_per_epoch]
        assert record["train_loss"] == pytest.approx(np.mean(chunk))
    for r in history.epochs:
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1 and r["seconds"] >= 0


def test_evaluate_matches_predict(trained, small_test):
    model, history = trained
    result = evaluate(model, small_test, device="cpu")
    by_hand = (predict(model, small_test.images, device="cpu") == small_test.labels).float().mean().item()
    assert result["acc"] == pytest.approx(by_hand)
    assert result["acc"] == pytest.approx(history.final("test_acc"))
    with torch.no_grad():
        loss = F.cross_entropy(model(scale_pixels(small_test.images)), small_test.labels).item()
    assert result["loss"] == pytest.approx(loss, rel=1e-5)


def test_on_epoch_sees_each_record_once_its_checkpoint_is_written(small_train, tmp_path):
    import hashlib

    path = tmp_path / "run.pt"
    seen = []

    def on_epoch(record):  # the checkpoint of this epoch is already on disk, a new file each epoch
        seen.append((dict(record), hashlib.sha256(path.read_bytes()).hexdigest()))

    history = fit(tiny_model(), small_train.head(128), epochs=3, batch_size=64, device="cpu", progress=False,
                  checkpoint=path, on_epoch=on_epoch)
    assert [record for record, _ in seen] == history.epochs
    assert len({digest for _, digest in seen}) == 3
    assert seen[-1][1] == hashlib.sha256(path.read_bytes()).hexdigest()


def _train(small_train, seed: int, optimizer: str = "sgd"):
    model = tiny_model(seed)
    history = fit(model, small_train.head(256), epochs=2, batch_size=32, seed=seed, optimizer=optimizer,
                  lr=0.05 if optimizer == "sgd" else 1e-3, device="cpu", progress=False,
                  **({"momentum": 0.9} if optimizer == "sgd" else {}))
    return model.state_dict(), history


def _without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.epochs]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_same_seed_is_bitwise_reproducible(small_train, optimizer):
    w1, h1 = _train(small_train, 3, optimizer)
    w2, h2 = _train(small_train, 3, optimizer)
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    assert h1.step_loss == h2.step_loss
    assert _without_seconds(h1) == _without_seconds(h2)


def test_same_seed_with_dropout_evals_and_schedule_is_bitwise_reproducible(small_train, small_test):
    """The whole History (every field but wall time) and every weight, dropout drawing from torch's RNG."""
    from torch import nn

    def run():
        seed_everything(11)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        history = fit(model, small_train.head(256), evals={"test": small_test.head(200)}, epochs=2, batch_size=32,
                      seed=11, schedule="onecycle", lr=0.01, device="cpu", progress=False)
        return model.state_dict(), history

    (w1, h1), (w2, h2) = run(), run()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1.step_loss == h2.step_loss and _without_seconds(h1) == _without_seconds(h2)
    assert {"test_loss", "test_acc"} <= set(h1.epochs[0])


def test_other_seed_gives_other_weights(small_train):
    w1, h1 = _train(small_train, 3)
    w2, h2 = _train(small_train, 4)
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    assert h1.step_loss != h2.step_loss


def test_fit_seed_controls_shuffling(small_train):
    """Same initial weights, different fit seed: different batches, different result."""
    results = []
    for fit_seed in (0, 1):
        model = tiny_model(0)
        fit(model, small_train.head(256), epochs=1, batch_size=32, seed=fit_seed, optimizer="sgd",
            lr=0.05, device="cpu", progress=False)
        results.append(model.state_dict())
    assert any(not torch.equal(results[0][k], results[1][k]) for k in results[0])


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(small_train, schedule):
    model = tiny_model(0)
    history = fit(model, small_train.head(128), epochs=2, batch_size=32, schedule=schedule, optimizer="sgd",
                  lr=0.1, device="cpu", progress=False)
    assert len(history.step_loss) == 8
    assert all(math.isfinite(v) for v in history.step_loss)


def test_onecycle_and_cosine_change_the_result(small_train):
    def final_weights(schedule):
        model = tiny_model(0)
        fit(model, small_train.head(128), epochs=1, batch_size=32, schedule=schedule, optimizer="sgd",
            lr=0.1, device="cpu", progress=False)
        return model.net[1].weight.detach().clone()

    constant = final_weights("constant")
    assert not torch.equal(constant, final_weights("cosine"))
    assert not torch.equal(constant, final_weights("onecycle"))


def _small_cnn(seed: int = 0):
    from mnist_lib.models import LeNet5

    seed_everything(seed)
    return LeNet5(act="relu", pool="max")


def test_channels_last_changes_no_result_and_hands_back_an_ordinary_model(small_train):
    """NHWC is a memory layout, not a computation: same losses (up to summation order)."""
    runs = []
    for channels_last in (False, True):
        model = _small_cnn()
        history = fit(model, small_train.head(256), epochs=1, batch_size=64, channels_last=channels_last,
                      device="cpu", progress=False)
        runs.append((model, history))
    (plain, h_plain), (nhwc, h_nhwc) = runs
    np.testing.assert_allclose(h_plain.step_loss, h_nhwc.step_loss, rtol=1e-4)
    assert all(p.is_contiguous() for p in nhwc.parameters())  # back in the usual layout


def test_amp_trains_in_bfloat16_and_keeps_float32_weights(cpu_bf16, small_train, small_test):
    seen = []
    model = _small_cnn()
    model.features[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype) if m.training else None)
    history = fit(model, small_train, evals={"test": small_test}, epochs=3, batch_size=64, lr=2e-3, amp=True,
                  device="cpu", progress=False)
    assert set(seen) == {torch.bfloat16}  # the training forward pass ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.final("test_acc") > 0.6  # and it still learns (chance is 0.1)
    plain = _small_cnn()
    fit(plain, small_train.head(64), epochs=1, batch_size=64, device="cpu", progress=False)
    amp = _small_cnn()
    fit(amp, small_train.head(64), epochs=1, batch_size=64, amp=True, device="cpu", progress=False)
    # bfloat16 rounds: the same step gives slightly different weights
    assert not torch.equal(plain.features[0].weight, amp.features[0].weight)
    torch.testing.assert_close(plain.features[0].weight, amp.features[0].weight, atol=1e-2, rtol=0)


def test_unknown_optimizer(small_train):
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs2'.*sgd, adam"):
        fit(tiny_model(), small_train.head(64), optimizer="lbfgs2", device="cpu", progress=False)


def test_unknown_schedule(small_train):
    with pytest.raises(ValueError, match="unknown schedule 'linear'.*constant, cosine, onecycle"):
        fit(tiny_model(), small_train.head(64), schedule="linear", device="cpu", progress=False)


def test_make_optimizer_passes_an_optimizer_through():
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert make_optimizer(opt, model.parameters(), lr=1.0) is opt
    assert isinstance(make_optimizer("AdamW", model.parameters(), lr=1e-3), torch.optim.AdamW)


@pytest.mark.parametrize("epochs", [0, -1])
def test_fit_rejects_non_positive_epochs(small_train, epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(tiny_model(), small_train.head(64), epochs=epochs, device="cpu", progress=False)


def test_fit_rejects_bad_batch_size(small_train):
    with pytest.raises(ValueError, match="batch_size"):
        fit(tiny_model(), small_train.head(64), batch_size=0, device="cpu", progress=False)


# ------------------------------------------------------------------------ divergence


def test_huge_learning_rate_diverges(small_train):
    model = tiny_model(0, hidden=64)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step \d+ \(learning rate 1000000\.0\)") as info:
        fit(model, small_train, optimizer="sgd", lr=1e6, epochs=3, device="cpu", progress=False)
    assert isinstance(info.value, FloatingPointError)
    assert "lower the learning rate" in str(info.value)


def test_divergence_message_names_epoch_and_step(small_train):
    """A loss that turns infinite at a known step is reported at exactly that step."""
    calls = {"n": 0}
    steps_per_epoch = 256 // 32

    def loss_fn(logits, y):
        calls["n"] += 1
        loss = F.cross_entropy(logits, y)
        return loss * math.inf if calls["n"] == steps_per_epoch + 3 else loss

    with pytest.raises(TrainingDiverged, match=r"loss became inf at epoch 2, step 3 "):
        fit(tiny_model(), small_train.head(256), loss_fn=loss_fn, epochs=3, batch_size=32,
            device="cpu", progress=False)


def test_divergence_reports_the_scheduled_learning_rate(small_train):
    """With a schedule, the message gives the learning rate of the step that diverged, not the base one."""
    def loss_fn(logits, y, calls=[0]):  # noqa: B006 (a counter)
        calls[0] += 1
        return F.cross_entropy(logits, y) * (math.nan if calls[0] == 5 else 1)

    with pytest.raises(TrainingDiverged) as info:
        fit(tiny_model(), small_train.head(256), loss_fn=loss_fn, epochs=1, batch_size=32, schedule="cosine",
            lr=0.1, device="cpu", progress=False)
    expected = 0.1 * (1 + math.cos(math.pi * 4 / 8)) / 2  # cosine after 4 of 8 steps
    lr = float(str(info.value).split("(learning rate ")[1].split(")")[0])
    assert lr == pytest.approx(expected) and lr != 0.1


class _DivideByZero(torch.nn.Module):
    def forward(self, x):
        return x / 0  # inf, and NaN for the 0 pixels


def test_infinite_inputs_diverge_at_first_step(small_train):
    model = torch.nn.Sequential(_DivideByZero(), tiny_model())
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 1 "):
        fit(model, small_train.head(64), device="cpu", progress=False)


# -------------------------------------------------------------------------- devices


def test_choose_device_cpu():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")


def test_choose_device_default_without_env():
    expected = "cuda" if HAS_CUDA else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert choose_device().type == expected


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_choose_device_cuda_absent(name):
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        choose_device(name)


@pytest.mark.parametrize("name", ["gpu0", "foo", "meta", "xpu", "cuda:x", "cpu:0:1"])
def test_choose_device_unknown_name(name):
    with pytest.raises(ValueError, match=f"unknown device '{name}'; expected cpu, cuda, cuda:N or mps"):
        choose_device(name)


def test_choose_device_reads_env(monkeypatch):
    monkeypatch.setenv("MNIST_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    monkeypatch.setenv("MNIST_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="unknown device 'not-a-device'"):
        choose_device()
    # an explicit argument wins over the environment
    assert choose_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
def test_choose_device_env_cuda_absent(monkeypatch):
    monkeypatch.setenv("MNIST_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA"):
        choose_device()


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_choose_device_cuda_present():
    assert choose_device("cuda").type == "cuda"


# -------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def images(mnist):
    return mnist.test.images[:5]


@pytest.mark.parametrize(
    "convert, rows",
    [
        (lambda im: im[0], [0]),                                         # (28, 28) uint8
        (lambda im: im, [0, 1, 2, 3, 4]),                                # (N, 28, 28) uint8
        (lambda im: im[:, None], [0, 1, 2, 3, 4]),                       # (N, 1, 28, 28) uint8
        (lambda im: im.numpy(), [0, 1, 2, 3, 4]),                        # NumPy uint8
        (lambda im: im.float() / 255, [0, 1, 2, 3, 4]),                  # float32 in [0, 1]
        (lambda im: (im.double() / 255)[:, None].numpy(), [0, 1, 2, 3, 4]),  # NumPy float64 4-d
        (lambda im: im[2].float() / 255, [2]),                           # one float image
        (lambda im: im[3:4, None], [3]),                                 # (1, 1, 28, 28)
    ],
    ids=["2d", "3d", "4d", "numpy-uint8", "float32", "numpy-float64-4d", "float-2d", "one-4d"],
)
def test_predict_proba_accepts_formats(trained, images, convert, rows):
    model, _ = trained
    with torch.no_grad():
        expected = torch.softmax(model(scale_pixels(images)), 1)[rows]
    n = len(rows)
    proba = predict_proba(model, convert(images), device="cpu")
    assert proba.shape == (n, 10) and proba.dtype == torch.float32
    torch.testing.assert_close(proba.sum(1), torch.ones(n))
    assert (proba >= 0).all()
    torch.testing.assert_close(proba, expected, rtol=1e-4, atol=1e-5)
    labels = predict(model, convert(images), device="cpu")
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert torch.equal(labels, proba.argmax(1))


def test_predict_is_mostly_right(trained, mnist):
    model, _ = trained
    labels = mnist.test.labels[:200]
    assert (predict(model, mnist.test.images[:200], device="cpu") == labels).float().mean() > 0.6


def test_predict_handles_more_than_one_chunk(trained, mnist):
    model, _ = trained
    proba = predict_proba(model, mnist.test.images[:2500], device="cpu")
    assert proba.shape == (2500, 10)
    torch.testing.assert_close(proba[2400:], predict_proba(model, mnist.test.images[2400:2500], device="cpu"))


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(28, 27, dtype=torch.uint8),
        torch.zeros(784, dtype=torch.uint8),
        torch.zeros(2, 3, 28, 28, dtype=torch.uint8),
        torch.zeros(2, 1, 28, 28, 1, dtype=torch.uint8),
        torch.zeros(0, 28, 28, dtype=torch.uint8),
        torch.zeros(0, 1, 28, 28),
    ],
    ids=["28x27", "flat", "3-channels", "5d", "empty", "empty-4d"],
)
def test_predict_rejects_wrong_shapes(trained, bad):
    model, _ = trained
    with pytest.raises(ValueError, match="expected images of shape"):
        predict_proba(model, bad, device="cpu")
    with pytest.raises(ValueError, match="expected images of shape"):
        predict(model, bad, device="cpu")


def _with(value):
    x = torch.full((2, 28, 28), 0.5)
    x[1, 3, 4] = value
    return x


@pytest.mark.parametrize("bad", [_with(float("nan")), _with(float("inf")), _with(1.5), _with(-0.1),
                                 torch.full((28, 28), 255.0)],
                         ids=["nan", "inf", "above-1", "negative", "float-0-255"])
def test_predict_rejects_bad_float_values(trained, bad):
    model, _ = trained
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\]"):
        predict(model, bad, device="cpu")


# ------------------------------------------------------ fit, bitwise as a plain loop


def _plain_loop(make_model, split, *, epochs, batch_size, seed, lr, amp=False, augment=None):
    """The training loop written out by hand (shuffle, forward, loss, step), independent of fit."""
    seed_everything(seed)
    model = make_model()
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(split) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr], total_steps=steps)
    shuffle = torch.Generator().manual_seed(seed)
    images = split.images.float().unsqueeze(1) / 255  # [0, 1] pixels: the models standardise them
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(split), generator=shuffle)
        for batch in order.split(batch_size):
            x, y = images[batch], split.labels[batch]
            if augment is not None:
                x = augment(x)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "amp"])
@pytest.mark.parametrize("net", ["mlp", "lenet5-augmented"])
def test_fit_is_bitwise_the_plain_loop(cpu_bf16, small_train, net, amp):
    """The committed chapters' numbers rest on this: fit computes exactly what the plain loop does."""
    from mnist_lib.augment import RandomAffine
    from mnist_lib.models import LeNet5

    make_model = (lambda: MLP((784, 32, 10), "relu")) if net == "mlp" else (lambda: LeNet5("relu", "max"))
    augment = RandomAffine(degrees=10, scale=0.1, shift=2) if net != "mlp" else None
    split = small_train.head(160)
    expected, expected_losses = _plain_loop(make_model, split, epochs=2, batch_size=64, seed=5, lr=3e-3, amp=amp,
                                            augment=augment)
    seed_everything(5)
    model = make_model()
    history = fit(model, split, epochs=2, batch_size=64, seed=5, lr=3e-3, schedule="onecycle", amp=amp,
                  augment=augment, device="cpu", progress=False)
    assert history.step_loss == expected_losses
    for name, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


# ------------------------------------------------- fit: precision, syncs, time


def test_loss_runs_outside_autocast_in_float32(cpu_bf16, small_train):
    """Under amp the forward pass is bfloat16, but the loss (BCE is refused by CUDA autocast) is not."""
    seen = []

    def loss_fn(out, y):
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return F.cross_entropy(out, y)

    fit(_small_cnn(), small_train.head(64), batch_size=32, amp=True, loss_fn=loss_fn, device="cpu", progress=False)
    assert seen == [(False, torch.float32)] * 2


def test_autoencoder_with_amp_trains_on_bce(cpu_bf16, small_train):
    from mnist_lib.models import Autoencoder

    history = fit(Autoencoder(6), small_train.head(64), batch_size=32, amp=True,
                  loss_fn=F.binary_cross_entropy, target="input", device="cpu", progress=False)
    assert math.isfinite(history.final("train_loss"))


def test_divergence_is_checked_every_few_steps_and_names_the_first_bad_one(small_train, monkeypatch):
    import mnist_lib.callbacks as callbacks_mod

    monkeypatch.setattr(callbacks_mod, "DIVERGENCE_CHECK_STEPS", 4)
    calls = []

    def loss_fn(logits, y):
        calls.append(1)
        return F.cross_entropy(logits, y) * (math.inf if len(calls) == 6 else 1)

    with pytest.raises(TrainingDiverged, match=r"loss became inf at epoch 1, step 6 "):
        fit(tiny_model(), small_train.head(512), loss_fn=loss_fn, batch_size=32, device="cpu", progress=False)
    assert len(calls) == 8  # ran on to the check after step 8, not to the end of the epoch (16 steps)


def test_epoch_time_waits_for_the_device(small_train, monkeypatch):
    """The seconds of an epoch are taken after the device has finished its work."""
    import time

    import mnist_lib.train as train_mod

    monkeypatch.setattr(train_mod, "synchronize", lambda device: time.sleep(0.2))
    history = fit(tiny_model(), small_train.head(64), device="cpu", progress=False)
    assert history.epochs[0]["seconds"] >= 0.2


# -------------------------------------------------------------- fit: bad settings


def test_absurd_learning_rate_warns_that_the_loss_exploded(small_train):
    """`train mlp --lr 1e6`: the loss reaches ~1e8 without NaN; fit says so."""
    from mnist_lib.train import LossExplosionWarning

    seed_everything(0)
    model = MLP((784, 300, 10), "sigmoid", init="glorot", input_scale=(0.0, 1.0))  # [0, 1] pixels
    with pytest.warns(LossExplosionWarning, match="loss exploded.*learning rate is probably too high"):
        history = fit(model, small_train, lr=1e6, batch_size=100, epochs=2,
                      device="cpu", progress=False)
    assert history.final("train_loss") > 100 * history.step_loss[0]


def test_ordinary_training_does_not_warn(small_train, recwarn):
    fit(tiny_model(), small_train.head(256), epochs=2, device="cpu", progress=False)
    fit(tiny_model(), small_train.head(256), optimizer="sgd", lr=0.5, device="cpu", progress=False)
    assert not [w for w in recwarn if "exploded" in str(w.message)]


def test_fit_refuses_an_empty_split(small_train, small_test):
    with pytest.raises(ValueError, match="the training split is empty"):
        fit(tiny_model(), small_train.head(0), device="cpu", progress=False)
    with pytest.raises(ValueError, match="the test split is empty"):
        fit(tiny_model(), small_train.head(64), evals={"test": small_test.head(0)}, device="cpu", progress=False)


@pytest.mark.parametrize("bad", [11, 10, -1])
def test_fit_refuses_labels_outside_0_to_9_before_training(small_train, bad):
    split = small_train.head(64)
    split.labels = split.labels.clone()
    split.labels[7] = bad  # changed after the Split checked its labels
    model = tiny_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=rf"labels must be digits 0-9, but one is {bad} \(at index 7\)"):
        fit(model, split, device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained
    with pytest.raises(ValueError, match="the test split's labels must be digits 0-9"):
        fit(model, small_train.head(64), evals={"test": split}, device="cpu", progress=False)
    with pytest.raises(ValueError, match="labels must be digits 0-9"):
        evaluate(model, split, device="cpu")


def test_autoencoders_ignore_labels(small_train):
    split = small_train.head(64)
    split.labels = torch.full((64,), 99)
    fit(tiny_model(), split, loss_fn=lambda out, x: (out.mean() - x.mean()) ** 2, target="input", device="cpu",
        progress=False)


# --------------------------------------------------- the caller's model, handed back


def test_evaluate_and_predict_hand_the_model_back_in_its_modes(small_train):
    from mnist_lib.models import CodeClassifier

    model = CodeClassifier(MLP((784, 6), "relu"), 6)
    model.train()  # the head trains, the frozen encoder stays in eval mode (CodeClassifier.train)
    modes = [m.training for m in model.modules()]
    assert True in modes and False in modes
    predict(model, small_train.images[:8], device="cpu")
    assert [m.training for m in model.modules()] == modes
    predict_proba(model, small_train.images[:8], device="cpu")
    assert [m.training for m in model.modules()] == modes
    evaluate(model, small_train.head(8), device="cpu")
    assert [m.training for m in model.modules()] == modes
    model.eval()
    predict(model, small_train.images[:8], device="cpu")
    assert not any(m.training for m in model.modules())


def test_borrowed_model_goes_back_to_its_device(monkeypatch):
    """A model lent to another device comes back (the move itself is recorded, not done)."""
    from mnist_lib.device import borrowed as _borrowed

    model = tiny_model()
    moves = []
    monkeypatch.setattr(model, "to", lambda device: moves.append(torch.device(device)) or model)
    with _borrowed(model, torch.device("meta")):
        assert not model.training
    assert moves == [torch.device("meta"), torch.device("cpu")]
    assert model.training
    moves.clear()
    with _borrowed(model, torch.device("cpu")):
        pass
    assert moves == [torch.device("cpu")]  # already there: no move back


def test_fit_leaves_the_model_in_eval_mode(small_train):
    model = tiny_model()
    fit(model, small_train.head(64), device="cpu", progress=False)
    assert not model.training


# ------------------------------------------------ GPU defaults (on a pretended GPU)


def test_choose_device_on_a_pretended_gpu(fake_cuda):
    assert choose_device() == torch.device("cuda")
    assert choose_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"this machine has 1 CUDA GPU\(s\): cuda:0 to cuda:0"):
        choose_device("cuda:1")


def test_adam_is_fused_on_cuda():
    model = tiny_model()
    assert make_optimizer("adam", model.parameters(), lr=1e-3, device="cuda").defaults["fused"] is True
    assert make_optimizer("AdamW", model.parameters(), lr=1e-3, device=torch.device("cuda:0")).defaults["fused"]
    assert not make_optimizer("adam", model.parameters(), lr=1e-3, device="cpu").defaults["fused"]
    assert not make_optimizer("adam", model.parameters(), lr=1e-3).defaults["fused"]
    chosen = make_optimizer("adam", model.parameters(), lr=1e-3, device="cuda", foreach=True)
    assert chosen.defaults["foreach"] and not chosen.defaults["fused"]  # the caller's choice wins
    assert not make_optimizer("sgd", model.parameters(), lr=0.1, device="cuda").defaults.get("fused")


def test_amp_falls_back_to_float32_on_a_gpu_without_bfloat16(fake_cuda, cpu_bf16):
    from mnist_lib.device import amp_supported as _amp_supported

    assert _amp_supported(True, torch.device("cuda"))
    fake_cuda.bf16 = False
    with pytest.warns(UserWarning, match="Pretend GPU has no bfloat16 support, so training runs in float32"):
        assert not _amp_supported(True, torch.device("cuda"))
    assert not _amp_supported(False, torch.device("cuda"))
    assert _amp_supported(True, torch.device("cpu"))


def test_amp_falls_back_to_float32_on_a_cpu_that_only_emulates_bfloat16(cpu_bf16, small_train):
    from mnist_lib.device import amp_supported as _amp_supported

    from mnist_lib.device import has_bfloat16

    assert has_bfloat16(torch.device("cpu"))
    cpu_bf16.native = False
    assert not has_bfloat16(torch.device("cpu"))  # asked before training: no warning
    with pytest.warns(UserWarning, match="this CPU has no bfloat16 arithmetic .* training runs in float32"):
        assert not _amp_supported(True, torch.device("cpu"))
    assert not _amp_supported(False, torch.device("cpu"))
    seen = []
    model = _small_cnn()
    model.features[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    with pytest.warns(UserWarning, match="amp is ignored"):
        fit(model, small_train.head(64), epochs=1, batch_size=64, amp=True, device="cpu", progress=False)
    assert set(seen) == {torch.float32}


def test_the_cpu_bfloat16_check_reads_torch(monkeypatch):
    from mnist_lib.device import cpu_has_bfloat16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not cpu_has_bfloat16()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert cpu_has_bfloat16()


def test_deterministic_fit_on_cpu_is_the_same_run_and_restores_the_settings(small_train):
    flags = []

    def loss_fn(out, y):
        flags.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark))
        return F.cross_entropy(out, y)

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    torch.backends.cudnn.benchmark = True
    try:
        seed_everything(0)
        det = tiny_model()
        h1 = fit(det, small_train.head(128), deterministic=True, loss_fn=loss_fn, device="cpu", progress=False)
        assert set(flags) == {(True, False)}
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()  # restored
    finally:
        torch.backends.cudnn.benchmark = before[1]
    h2 = fit(tiny_model(), small_train.head(128), device="cpu", progress=False)
    assert h1.step_loss == h2.step_loss
    assert before == (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                      torch.backends.cudnn.deterministic)


def test_deterministic_on_cuda_sets_the_cublas_workspace(fake_cuda, monkeypatch):
    from mnist_lib.device import deterministic_algorithms

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with deterministic_algorithms(True, torch.device("cuda")):
        assert torch.are_deterministic_algorithms_enabled()
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_on_running_cuda_without_the_workspace_says_how_to_set_it(fake_cuda, monkeypatch, small_train):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    fake_cuda.initialized = True
    with pytest.raises(RuntimeError, match=r"needs CUBLAS_WORKSPACE_CONFIG=:4096:8 set before CUDA starts.*restart"):
        fit(tiny_model(), small_train.head(64), device="cuda", deterministic=True, progress=False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # set beforehand: fine
    from mnist_lib.device import deterministic_algorithms

    with deterministic_algorithms(True, torch.device("cuda")):
        pass


def test_deterministic_names_an_operation_without_a_deterministic_version():
    from mnist_lib.device import deterministic_algorithms

    with pytest.raises(RuntimeError, match="deterministic=True: scatter_add_ has no deterministic "
                                           "implementation on cpu; train with deterministic=False"):
        with deterministic_algorithms(True, torch.device("cpu")):
            raise RuntimeError("scatter_add_ does not have a deterministic implementation, but you set ...")
    assert not torch.are_deterministic_algorithms_enabled()
