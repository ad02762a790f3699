"""mnist_lib.checkpoint and fit(checkpoint=..., resume=...): atomic saves, exact resumes, clear errors.

The central test kills a real training process with SIGKILL in the middle of an epoch,
resumes from its last checkpoint, and compares the result bit for bit with a run that
was never interrupted. The child process is this very module (``child_main``), so both
sides build the same model and data with the same code.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import PROJECT_ROOT, SHIPPED
from mnist_lib.checkpoint import CheckpointError, atomic_save, load_weights, read_checkpoint
from mnist_lib.data import load_mnist
from mnist_lib.models import MLP
from mnist_lib.train import TrainingDiverged, fit, seed_everything

SEED = 5
N_TRAIN, BATCH, EPOCHS = 2000, 50, 3  # 40 steps per epoch
KILL_AT = (2, 5)  # the child stops to be killed at epoch 2, step 5: epoch 1 is checkpointed, 2 is not


def dropout_mlp(hidden: int = 32) -> nn.Module:
    """A tiny MLP with dropout, so the global torch RNG matters as well as the shuffling one."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 10))


class CountingLoss:
    """Cross-entropy that counts training steps (calls with autograd on) and can act at one of them."""

    def __init__(self, steps_per_epoch: int, at: tuple[int, int] | None = None, action=None):
        self.steps, self.steps_per_epoch, self.at, self.action = 0, steps_per_epoch, at, action

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, target)
        if torch.is_grad_enabled():  # evaluation runs under no_grad
            self.steps += 1
            where = divmod(self.steps - 1, self.steps_per_epoch)
            where = (where[0] + 1, where[1] + 1)  # (epoch, step), counted from 1
            if where == self.at:
                loss = self.action(loss, *where)
        return loss


def train_run(train, checkpoint=None, resume=False, loss_fn=F.cross_entropy, **changes):
    """The run every test here trains: Adam with a cosine schedule and dropout, three epochs."""
    seed_everything(SEED)
    model = changes.pop("model", None) or dropout_mlp()
    settings = dict(epochs=EPOCHS, batch_size=BATCH, seed=SEED, optimizer="adam", lr=3e-3, schedule="cosine",
                    device="cpu", progress=False, checkpoint=checkpoint, resume=resume, loss_fn=loss_fn) | changes
    history = fit(model, train, **settings)
    return model, history


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def records(history) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.epochs]


@pytest.fixture(scope="module")
def train(mnist):
    return mnist.train.head(N_TRAIN)


@pytest.fixture(scope="module")
def small(mnist):
    return mnist.train.head(256)


@pytest.fixture(scope="module")
def reference(train):
    """The uninterrupted run, without any checkpoint."""
    return train_run(train)


# ------------------------------------------------------------------ the SIGKILL test


def child_main(checkpoint: str) -> None:
    """The child process: train with checkpoints, report every step, wait to be killed at KILL_AT."""
    def wait_for_the_kill(loss, epoch, step):
        print(f"epoch {epoch} step {step}: waiting", flush=True)
        sys.stdin.readline()  # blocks until the parent kills us (or exits, closing stdin)
        sys.exit(3)

    class Reporting(CountingLoss):
        def __call__(self, logits, target):
            loss = super().__call__(logits, target)
            if torch.is_grad_enabled():
                print(f"step {self.steps}", flush=True)
            return loss

    train = load_mnist(SHIPPED).train.head(N_TRAIN)
    train_run(train, checkpoint, loss_fn=Reporting(N_TRAIN // BATCH, KILL_AT, wait_for_the_kill))
    print("finished", flush=True)  # never reached


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path, train, reference):
    checkpoint = tmp_path / "run.pt"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_checkpoint; test_checkpoint.child_main({str(checkpoint)!r})")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")} | {"OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(120, child.kill)  # never hang the suite, whatever the child does
    watchdog.start()
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith(f"epoch {KILL_AT[0]} step {KILL_AT[1]}: waiting"):
                break
        assert lines and lines[-1].endswith("waiting"), (lines[-5:], child.stderr.read())
        # Mid-epoch: epoch 1 is on disk, and epoch 2 has run some steps that are not.
        assert read_checkpoint(checkpoint)["epoch"] == 1
        assert lines[-2] == f"step {N_TRAIN // BATCH + KILL_AT[1] - 1}"  # steps 41-44 ran, unsaved
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert read_checkpoint(checkpoint)["epoch"] == 1  # the kill left the checkpoint as it was
    assert not [p for p in tmp_path.iterdir() if p.name != "run.pt"]  # and no temporary files

    counter = CountingLoss(N_TRAIN // BATCH)
    model, history = train_run(train, checkpoint, resume=True, loss_fn=counter)
    assert counter.steps == (EPOCHS - 1) * N_TRAIN // BATCH  # it resumed after epoch 1
    ref_model, ref_history = reference
    assert same_weights(model, ref_model)
    assert history.step_loss == ref_history.step_loss
    assert records(history) == records(ref_history)
    assert read_checkpoint(checkpoint)["epoch"] == EPOCHS


# ------------------------------------------------------------- resuming in-process


@pytest.mark.parametrize("optimizer, schedule, extra", [
    ("adam", "constant", {}), ("adam", "onecycle", {}), ("sgd", "cosine", {"momentum": 0.9}),
    ("rmsprop", "constant", {}),
])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, small, optimizer, schedule, extra):
    settings = dict(optimizer=optimizer, schedule=schedule, lr=0.01, batch_size=32, **extra)
    ref_model, ref_history = train_run(small, **settings)

    def interrupt(loss, epoch, step):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(small, tmp_path / "run.pt", loss_fn=CountingLoss(8, (3, 2), interrupt), **settings)
    assert read_checkpoint(tmp_path / "run.pt")["epoch"] == 2
    torch.manual_seed(1234)  # a "new process": other global RNG state; resume must restore it
    model, history = train_run(small, tmp_path / "run.pt", resume=True, **settings)
    assert same_weights(model, ref_model)
    assert history.step_loss == ref_history.step_loss and records(history) == records(ref_history)
    # and the global RNG ends where the uninterrupted run left it
    state_after = torch.get_rng_state()
    train_run(small, **settings)
    assert torch.equal(state_after, torch.get_rng_state())


def test_checkpointing_does_not_change_the_run(tmp_path, train, reference):
    model, history = train_run(train, tmp_path / "run.pt")
    assert same_weights(model, reference[0])
    assert history.step_loss == reference[1].step_loss


def test_checkpoint_contents(tmp_path, small):
    model, history = train_run(small, tmp_path / "run.pt", epochs=2, evals={"test": small.head(64)})
    state = read_checkpoint(tmp_path / "run.pt")
    assert state["epoch"] == 2
    assert {"model", "optimizer", "scheduler", "rng", "history", "run", "model_class", "structure"} <= set(state)
    assert set(state["rng"]) >= {"torch", "loader", "python", "numpy"}
    assert state["history"]["step_loss"] == history.step_loss and state["history"]["epochs"] == history.epochs
    assert state["run"]["batch_size"] == BATCH and state["run"]["optimizer"] == "Adam"
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_resuming_a_finished_run_trains_nothing(tmp_path, small):
    model, history = train_run(small, tmp_path / "run.pt", epochs=2)

    def must_not_train(logits, target):
        raise AssertionError("a finished run was trained again")

    again, restored = train_run(small, tmp_path / "run.pt", resume=True, epochs=2, loss_fn=must_not_train)
    assert same_weights(again, model)
    assert restored.step_loss == history.step_loss and restored.epochs == history.epochs


def test_resume_without_a_checkpoint_file_starts_afresh(tmp_path, small):
    model, history = train_run(small, tmp_path / "new.pt", resume=True, epochs=1)
    plain, plain_history = train_run(small, epochs=1)
    assert same_weights(model, plain) and history.step_loss == plain_history.step_loss
    assert read_checkpoint(tmp_path / "new.pt")["epoch"] == 1


def test_resume_needs_a_checkpoint(small):
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        train_run(small, resume=True)


# ------------------------------------------------------ checkpoints that do not fit


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small):
    """A finished two-epoch checkpoint of the standard run (do not modify)."""
    path = tmp_path_factory.mktemp("saved") / "run.pt"
    train_run(small, path, epochs=2)
    return path


def _resume_error(path, small, **changes) -> str:
    seed_everything(99)
    model = changes.pop("model", None) or dropout_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        train_run(small, path, resume=True, model=model, **({"epochs": 2} | changes))
    # nothing was half-restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "Fix: " in message
    return message


def test_other_architecture(saved, small):
    message = _resume_error(saved, small, model=dropout_mlp(hidden=48))
    assert "expected the weights of this Sequential (4 tensors), found weights for another Sequential (4 tensors)" in message
    assert "1.weight (48, 784) here, (32, 784) in the file" in message
    message = _resume_error(saved, small, model=MLP((784, 32, 10), "relu"))
    assert "missing from the file: net.1.weight, net.1.bias, net.3.weight, net.3.bias" in message
    assert "not in this model: 1.weight, 1.bias, 4.weight, 4.bias" in message


def test_same_shapes_other_layers(saved, small):
    other = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 10))
    assert "same weight shapes but other layers" in _resume_error(saved, small, model=other)


@pytest.mark.parametrize("changes, expected", [
    ({"batch_size": 32}, "batch_size=50 in the file, 32 here"),
    ({"lr": 0.01}, "'lr': 0.003"),
    ({"seed": 6}, "seed=5 in the file, 6 here"),
    ({"optimizer": "sgd"}, "optimizer='Adam' in the file, 'SGD' here"),
    ({"schedule": "constant"}, "schedule='cosine' in the file, 'constant' here"),
    ({"epochs": 3}, "epochs=2 in the file, 3 here"),
])
def test_other_settings(saved, small, changes, expected):
    message = _resume_error(saved, small, **changes)
    assert "found one written with other settings" in message and expected in message


def test_other_training_data(saved, small):
    flipped = small[torch.arange(len(small) - 1, -1, -1)]
    message = _resume_error(saved, flipped)
    assert "train='256 images, SHA-256 " in message


def test_truncated_and_foreign_files(tmp_path, saved, small):
    blob = saved.read_bytes()
    cases = {
        "truncated.pt": blob[: len(blob) // 2],
        "empty.pt": b"",
        "text.pt": b"this is not a checkpoint\n" * 10,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        message = _resume_error(tmp_path / name, small)
        assert "not a readable checkpoint, the file is truncated or damaged" in message, message
    torch.save(dropout_mlp().state_dict(), tmp_path / "weights.pt")  # what --save writes
    assert "found another kind of file" in _resume_error(tmp_path / "weights.pt", small)


def test_load_weights(tmp_path, saved, small):
    reference = dropout_mlp()
    reference.load_state_dict(read_checkpoint(saved)["model"])
    assert same_weights(load_weights(dropout_mlp(), saved), reference)  # from a checkpoint
    torch.save(reference.state_dict(), tmp_path / "weights.pt")
    assert same_weights(load_weights(dropout_mlp(), tmp_path / "weights.pt"), reference)  # a state_dict
    with pytest.raises(CheckpointError, match="found weights for another Sequential"):
        load_weights(dropout_mlp(hidden=8), saved)
    with pytest.raises(CheckpointError, match="no such file"):
        load_weights(dropout_mlp(), tmp_path / "missing.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"found no weights \(a list\)"):
        load_weights(dropout_mlp(), tmp_path / "list.pt")


# ----------------------------------------------------------------------- atomicity


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    atomic_save({"version": 1}, path)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


# ---------------------------------------------------------------------- divergence


def test_nan_loss_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path, small):
    def poison(loss, epoch, step):
        return loss * math.nan

    with pytest.raises(TrainingDiverged) as info:
        train_run(small, tmp_path / "run.pt", loss_fn=CountingLoss(math.ceil(256 / BATCH), (2, 3), poison))
    message = str(info.value)
    assert message.startswith("loss became nan at epoch 2, step 3 (learning rate ")
    assert "Hint: lower the learning rate" in message
    assert f"The checkpoint {tmp_path / 'run.pt'} still holds epoch 1." in message
    state = read_checkpoint(tmp_path / "run.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_nan_weights_behind_a_finite_loss_are_never_saved(tmp_path, small):
    """The last step of an epoch can make the weights NaN while its own loss is finite."""
    def nan_gradient(loss, epoch, step):
        # sqrt'(0) is infinite: the added term is 0, its gradient 0 * inf = NaN
        return loss + 0 * (loss - loss.detach()).pow(2).sqrt()

    steps = math.ceil(256 / BATCH)
    with pytest.raises(TrainingDiverged) as info:
        train_run(small, tmp_path / "run.pt", loss_fn=CountingLoss(steps, (2, steps), nan_gradient))
    assert str(info.value).startswith(f"the weights became NaN or infinite (every loss was finite) at epoch 2, step {steps} ")
    state = read_checkpoint(tmp_path / "run.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())
