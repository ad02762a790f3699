"""fit's one extension point, callbacks (mnist_lib.callbacks), and what fit's short loop must keep doing."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mnist_lib.callbacks import Callback, Checkpoint, OnEpoch, Run, StopAt
from mnist_lib.models import Standardize
from mnist_lib.train import fit, seed_everything


def tiny(seed: int = 0) -> nn.Module:
    """A tiny classifier that standardises its [0, 1] input itself, whatever the library's models do."""
    seed_everything(seed)
    return nn.Sequential(Standardize(0.1307, 0.3081), nn.Flatten(), nn.Linear(784, 10))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_is_a_short_loop_without_normalization():
    """The book shows fit's source: it must stay short, and the input scale belongs to the model."""
    assert len(inspect.getsource(fit).splitlines()) <= 60
    assert "normalization" not in inspect.signature(fit).parameters
    assert "compile" in inspect.signature(fit).parameters and "callbacks" in inspect.signature(fit).parameters


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, run: Run) -> None:
        self.calls.append(("start", run.start_epoch, run.epochs))

    def on_step_end(self, run: Run, step: int, loss: torch.Tensor) -> None:
        assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and not loss.requires_grad
        self.calls.append(("step", run.epoch, step, loss))

    def on_epoch_end(self, run: Run, record: dict) -> None:
        assert run.history.epochs[-1] is record
        self.calls.append(("epoch", run.epoch, record))

    def on_fit_end(self, run: Run) -> None:
        self.calls.append(("end",))


def test_a_callback_sees_every_step_and_epoch(small_train):
    recorder = Recorder()
    history = fit(tiny(), small_train.head(96), batch_size=32, epochs=2, callbacks=[recorder], device="cpu",
                  progress=False)
    kinds = [c[0] for c in recorder.calls]
    assert kinds == ["start"] + (["step"] * 3 + ["epoch"]) * 2 + ["end"]
    assert recorder.calls[0] == ("start", 1, 2)
    steps = [(c[1], c[2]) for c in recorder.calls if c[0] == "step"]
    assert steps == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert [c[3].item() for c in recorder.calls if c[0] == "step"] == history.step_loss
    assert [c[2] for c in recorder.calls if c[0] == "epoch"] == history.epochs


def test_stop_at_ends_training_early(small_train, small_test):
    history = fit(tiny(), small_train, evals={"test": small_test}, epochs=10, lr=5e-3,
                  callbacks=[StopAt("test_acc", 0.5)], device="cpu", progress=False)
    assert 1 <= len(history.epochs) < 10
    assert history.final("test_acc") >= 0.5
    assert all(r["test_acc"] < 0.5 for r in history.epochs[:-1])


def test_stop_at_names_a_missing_metric(small_train):
    with pytest.raises(KeyError, match="no 'test_acc'.*evals="):
        fit(tiny(), small_train.head(64), callbacks=[StopAt()], device="cpu", progress=False)


def test_a_step_callback_can_stop_mid_epoch(small_train):
    class StopAfterTwo(Callback):
        def on_step_end(self, run, step, loss):
            run.stop = step == 2

    history = fit(tiny(), small_train.head(320), batch_size=32, epochs=3, callbacks=[StopAfterTwo()],
                  device="cpu", progress=False)
    assert len(history.step_loss) == 2 and len(history.epochs) == 1


def test_on_epoch_is_the_on_epoch_callback(small_train):
    seen = []
    history = fit(tiny(), small_train.head(64), epochs=2, callbacks=[OnEpoch(seen.append)], device="cpu",
                  progress=False)
    assert seen == history.epochs


def test_augment_is_applied_to_every_training_batch(small_train):
    """fit(augment=...) must change what is trained on: a batch of zeros gives other losses and weights."""
    calls = []

    def blank(x):
        calls.append(x.shape)
        return torch.zeros_like(x)

    split = small_train.head(128)
    plain_model, blank_model = tiny(), tiny()
    plain = fit(plain_model, split, batch_size=32, device="cpu", progress=False)
    blanked = fit(blank_model, split, batch_size=32, augment=blank, device="cpu", progress=False)
    assert len(calls) == 4 and all(shape == (32, 1, 28, 28) for shape in calls)
    assert plain.step_loss != blanked.step_loss and not same_weights(plain_model, blank_model)
    seen = []  # what the model was given in training: the blank batches
    model = tiny()
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].abs().sum().item()) if module.training
                                    else None)
    fit(model, split, batch_size=32, augment=blank, device="cpu", progress=False)
    assert seen == [0.0] * 4


def test_explicit_checkpoint_callback_resumes_bitwise(tmp_path, small_train):
    """Checkpoint(path, resume=True) as a callback: interrupted, then resumed = uninterrupted."""
    split = small_train.head(128)
    settings = dict(batch_size=32, epochs=3, schedule="cosine", device="cpu", progress=False)
    reference = tiny()
    ref_history = fit(reference, split, **settings)

    class Interrupt(Callback):
        def on_epoch_end(self, run, record):
            if run.epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), split, callbacks=[Checkpoint(tmp_path / "run.pt"), Interrupt()], **settings)
    torch.manual_seed(1234)  # another global RNG state: resuming restores it
    model = tiny()
    history = fit(model, split, callbacks=[Checkpoint(tmp_path / "run.pt", resume=True)], **settings)
    assert same_weights(model, reference) and history.step_loss == ref_history.step_loss


def test_divergence_check_names_the_step_with_a_user_checkpoint_callback(tmp_path, small_train):
    from mnist_lib.train import TrainingDiverged

    def loss_fn(out, y, calls=[0]):  # noqa: B006 (a counter)
        calls[0] += 1
        return F.cross_entropy(out, y) * (math.nan if calls[0] == 4 + 2 else 1)

    with pytest.raises(TrainingDiverged, match=rf"loss became nan at epoch 2, step 2 .*The checkpoint "
                                               rf"{tmp_path / 'run.pt'} still holds epoch 1\."):
        fit(tiny(), small_train.head(128), batch_size=32, epochs=2, loss_fn=loss_fn,
            callbacks=[Checkpoint(tmp_path / "run.pt")], device="cpu", progress=False)


def test_compile_trains_through_torch_compile(small_train, monkeypatch):
    """compile=True trains the caller's model through torch.compile (here its quick "aot_eager" backend, which
    traces forward and backward as inductor does, without a C++ compiler: the real one takes ~30 s on a CPU)."""
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available in this torch")
    compiled = []
    real_compile = torch.compile

    def quick_compile(model, **kwargs):
        compiled.append(model)
        return real_compile(model, backend="aot_eager")

    split = small_train.head(64)
    plain_model, compiled_model = tiny(), tiny()
    plain = fit(plain_model, split, batch_size=32, device="cpu", progress=False)
    monkeypatch.setattr(torch, "compile", quick_compile)
    history = fit(compiled_model, split, batch_size=32, compile=True, evals={"test": split}, device="cpu",
                  progress=False)
    assert compiled == [compiled_model] and type(compiled_model) is nn.Sequential  # trained, not replaced
    assert history.step_loss == pytest.approx(plain.step_loss, rel=1e-5)
    for name, value in plain_model.state_dict().items():
        torch.testing.assert_close(compiled_model.state_dict()[name], value, rtol=1e-5, atol=1e-6)
