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
from mnist_lib.checkpoint import CheckpointError, load_weights, read_checkpoint
from mnist_lib.files import save_torch
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
    assert "missing from the file: standardize.mean, standardize.std, net.1.weight, net.1.bias and 2 more" in message
    assert "not in this model: 1.weight, 1.bias, 4.weight, 4.bias" in message


def test_same_shapes_other_layers(saved, small):
    other = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 10))
    assert "same weight shapes but other layers" in _resume_error(saved, small, model=other)


@pytest.mark.parametrize("changes, expected", [
    ({"batch_size": 32}, "batch_size=50 in the file, 32 here"),
    ({"lr": 0.01}, "'lr': 0.003"),
    ({"seed": 6}, "seed=5 in the file, 6 here"),
    ({"optimizer": "sgd"}, "optimizer='Adam' in the file, 'SGD' here"),
    ({"schedule": "constant"}, "schedule='CosineAnnealingLR' in the file, 'LambdaLR' here"),
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
    save_torch({"version": 1}, path)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_torch({"version": 2}, path)
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


# ------------------------------------------- damaged and edited files (issue 14, items 2, 4, 5)


def rewrite(source: Path, target: Path, edit, digest: bool = True) -> Path:
    """A copy of a checkpoint edited by ``edit(state)``; with ``digest``, as a careful hand would: digest renewed."""
    from mnist_lib.checkpoint import content_digest

    state = torch.load(source, weights_only=True)
    edit(state)
    if digest:
        state["digest"] = content_digest(state)
    torch.save(state, target)
    return target


def test_a_flipped_bit_in_a_weight_is_refused(tmp_path, saved, small):
    blob = bytearray(saved.read_bytes())
    weight = read_checkpoint(saved)["model"]["1.weight"]
    at = bytes(blob).find(weight.numpy().tobytes()[:64])
    assert at > 0
    blob[at + 41] ^= 0x40  # one bit of one float32 (its exponent, near the top)
    (tmp_path / "flipped.pt").write_bytes(bytes(blob))
    assert not torch.equal(torch.load(tmp_path / "flipped.pt", weights_only=True)["model"]["1.weight"], weight)
    message = _resume_error(tmp_path / "flipped.pt", small)
    assert "damaged: its contents do not match the SHA-256 digest recorded when it was written" in message


def test_an_edit_without_a_new_digest_is_refused(tmp_path, saved, small):
    path = rewrite(saved, tmp_path / "edited.pt", lambda s: s["history"]["step_loss"].append(0.5), digest=False)
    assert "damaged: its contents do not match the SHA-256 digest" in _resume_error(path, small)


def _set_weight(value):
    def edit(state):
        state["model"]["1.weight"] = torch.full_like(state["model"]["1.weight"], value)
    return edit


@pytest.mark.parametrize("name, edit, expected", [
    ("nan-weights", _set_weight(math.nan), "expected finite weights, found NaN or infinite values in 1.weight"),
    ("inf-weights", _set_weight(math.inf), "expected finite weights, found NaN or infinite values in 1.weight"),
    ("int32-weights", lambda s: s["model"].update({"1.weight": s["model"]["1.weight"].int()}),
     "expected weights of this model's dtypes, found 1.weight torch.int32 (not torch.float32)"),
    ("negative-epoch", lambda s: s.update(epoch=-4), "expected 1 to 2 epochs done, found -4"),
    ("too-many-epochs", lambda s: s.update(epoch=3), "expected 1 to 2 epochs done, found 3"),
    ("epoch-a-string", lambda s: s.update(epoch="2"), "expected 'epoch' to be a number, found a str"),
    ("no-optimizer", lambda s: s.pop("optimizer"), "expected 'optimizer' to be a dict, found nothing"),
    ("no-rng", lambda s: s.pop("rng"), "expected 'rng' to be a dict, found nothing"),
    ("rng-a-list", lambda s: s.update(rng=[]), "expected 'rng' to be a dict, found a list"),
    ("rng-torch-short", lambda s: s["rng"].update(torch=s["rng"]["torch"][:100]),
     "rng['torch']: a torch.uint8 tensor of shape (5056,) expected, a torch.uint8 one of shape (100,) found"),
    ("rng-python-garbage", lambda s: s["rng"].update(python=(3, (1, 2), None)), "Python's or NumPy's state"),
    ("rng-numpy-missing", lambda s: s["rng"].pop("numpy"), "Python's or NumPy's state"),
    ("history-short", lambda s: s["history"]["epochs"].pop(), "one record for each of the 2 epochs done"),
    ("history-text", lambda s: s["history"]["step_loss"].__setitem__(0, "x"), "expected numbers in the History"),
    ("scheduler-key-missing", lambda s: s["scheduler"].pop("last_epoch"), "scheduler: missing 'last_epoch'"),
    ("scheduler-lr-nan", lambda s: s["scheduler"].update(_last_lr=[math.nan]), "a finite number expected, nan found"),
    ("optimizer-groups", lambda s: s["optimizer"]["param_groups"].append(s["optimizer"]["param_groups"][0]),
     "param_groups: a list of 1 expected, a list of 2 found"),
    ("optimizer-state-shape", lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
     "state[0]['exp_avg']: shape (32, 784) expected, (3,) found"),
    ("optimizer-state-nan", lambda s: s["optimizer"]["state"][1].update(exp_avg_sq=torch.full((32,), math.nan)),
     "state[1]['exp_avg_sq']: finite values expected"),
    ("device-unknown", lambda s: s.update(device="tpu"), "expected the device type cpu, cuda or mps, found 'tpu'"),
])
def test_an_edited_checkpoint_is_refused_before_anything_is_restored(tmp_path, saved, small, name, edit, expected):
    """Each edit keeps the format tag and a valid digest; the message names the entry, the model stays as it was."""
    message = _resume_error(rewrite(saved, tmp_path / f"{name}.pt", edit), small)
    assert expected in message, message


def test_load_weights_refuses_nan_and_other_dtypes(tmp_path, saved):
    path = rewrite(saved, tmp_path / "nan.pt", _set_weight(math.nan))
    with pytest.raises(CheckpointError, match="expected finite weights"):
        load_weights(dropout_mlp(), path)
    state = read_checkpoint(saved)["model"]
    torch.save({k: v.double() for k, v in state.items()}, tmp_path / "double.pt")  # a --save file
    with pytest.raises(CheckpointError, match=r"found 1.weight torch.float64 \(not torch.float32\)"):
        load_weights(dropout_mlp(), tmp_path / "double.pt")


@pytest.mark.parametrize("version, why", [(1, "which has no integrity check"),
                                          (2, "written before models standardised their own inputs")])
def test_a_checkpoint_of_an_older_format_is_refused_clearly(tmp_path, saved, small, version, why):
    path = rewrite(saved, tmp_path / "old.pt", lambda s: s.update(format=f"mnist_lib checkpoint {version}"),
                   digest=False)
    assert f"found the older 'mnist_lib checkpoint {version}', {why}" in _resume_error(path, small)
    with pytest.raises(CheckpointError, match=f"found the older 'mnist_lib checkpoint {version}'"):
        load_weights(dropout_mlp(), path)  # no weights are taken from an older checkpoint either


def test_estimated_size_covers_a_real_checkpoint(saved):
    from mnist_lib.checkpoint import estimated_size

    size = saved.stat().st_size  # 2 epochs of Adam, with their History
    assert size <= estimated_size(dropout_mlp()) < 4 * size + 2**20


# ---------------------------------------------------------- devices (issue 19, item 6)


@pytest.fixture
def cuda_pretended(monkeypatch):
    """CUDA that says it is there, and fails the test if anything uses it."""
    def touched(*args, **kwargs):
        raise AssertionError("CUDA was used by a run on the CPU")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "init"):
        monkeypatch.setattr(torch.cuda, name, touched)


def run_parts() -> dict:
    """What fit hands to save_checkpoint and resume_checkpoint, for a fresh run on the CPU."""
    model = dropout_mlp()
    optimizer = torch.optim.Adam(model.parameters())
    return dict(model=model, optimizer=optimizer, scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
                generator=torch.Generator(), run={"epochs": 2})


def test_a_cpu_run_never_touches_cuda_and_records_its_device(tmp_path, cuda_pretended):
    from mnist_lib.checkpoint import resume_checkpoint, save_checkpoint

    history = {"step_loss": [0.5], "epochs": [{"epoch": 1, "train_loss": 0.5}]}
    save_checkpoint(tmp_path / "run.pt", epoch=1, history=history, **run_parts())
    state = read_checkpoint(tmp_path / "run.pt")
    assert state["device"] == "cpu"
    assert "device" not in state["rng"] and "cuda" not in state["rng"]
    assert resume_checkpoint(tmp_path / "run.pt", **run_parts()) == (1, history)


def test_a_gpu_run_saves_its_own_gpu_state_only(monkeypatch):
    from mnist_lib.checkpoint import _rng_states

    asked = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: asked.append(device) or torch.ones(8, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("saved every GPU's state"))
    states = _rng_states(torch.Generator(), torch.device("cuda", 1))
    assert asked == [torch.device("cuda", 1)] and torch.equal(states["device"], torch.ones(8, dtype=torch.uint8))


def test_resuming_on_another_kind_of_device_warns(tmp_path, saved, small):
    from mnist_lib.checkpoint import InexactResume

    def from_a_gpu(state):
        state["device"] = "cuda"
        state["rng"]["device"] = torch.zeros(16, dtype=torch.uint8)  # a GPU generator's state: not for the CPU

    path = rewrite(saved, tmp_path / "gpu.pt", from_a_gpu)
    with pytest.warns(InexactResume, match=r"written by a run on cuda; this one is on cpu. It carries on, but not "
                                           "exactly"):
        model, history = train_run(small, path, resume=True, epochs=2)
    assert same_weights(model, train_run(small, saved, resume=True, epochs=2)[0])
