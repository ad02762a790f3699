"""The command line, ``python -m mnist_lib``.

The main cases run as real subprocesses (``sys.executable -m mnist_lib``): training, the
doctor, and one of each kind of usage error the issue lists (unknown model, zero
epochs or batch size, unknown or absent device, unwritable output). Starting Python and
importing torch takes a second or two each, so they are started together by one
module-scoped fixture (a few at a time) and the tests read the results. Every other
check calls ``main(argv)`` in-process, which is much cheaper. Training runs are pinned
to the CPU (``--device cpu``) where their results are compared bit for bit.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
import sys
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import HAS_CUDA, PROJECT_ROOT, write_mnist_folder
from mnist_lib.__main__ import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


TRAIN_OK = ["train", "mlp", "--epochs", "1", "--limit", "500", "--no-progress"]
BAD = {  # argv, and what the error line must mention
    "epochs-0": (["train", "mlp", "--epochs", "0"], "--epochs"),
    "batch-size-0": (["train", "mlp", "--batch-size", "0"], "--batch-size"),
    "unknown-model": (["train", "resnet"], "invalid choice: 'resnet'"),
    "save-folder-missing": (["train", "mlp", "--save", "/nonexistent/dir/w.pt"], "cannot write"),
    "device-not-a-name": (["train", "mlp", "--device", "foo"], "argument --device: unknown device 'foo'"),
}
if not HAS_CUDA:
    BAD["device-cuda"] = (["train", "mlp", "--epochs", "1", "--limit", "10", "--device", "cuda"], "CUDA")
OTHER = {"doctor": ["doctor"]}
CUSTOM_TRAIN, CUSTOM_TEST = 300, 100  # the size of the IDX dataset the tests write (inverted MNIST digits)


def _run(argv, env) -> Result:
    proc = subprocess.run([sys.executable, "-m", "mnist_lib", *argv], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_custom_dataset(folder: Path, mnist) -> Path:
    """Another dataset in MNIST's format and file names: the first MNIST digits, inverted (white on black)."""
    train, test = mnist.train.head(CUSTOM_TRAIN), mnist.test.head(CUSTOM_TEST)
    return write_mnist_folder(folder, {
        "train-images-idx3-ubyte": 255 - train.images.numpy(), "train-labels-idx1-ubyte": train.labels.numpy().astype(np.uint8),
        "t10k-images-idx3-ubyte": 255 - test.images.numpy(), "t10k-labels-idx1-ubyte": test.labels.numpy().astype(np.uint8),
    })


@pytest.fixture(scope="module")
def cli(tmp_path_factory, mnist) -> dict:
    folder = tmp_path_factory.mktemp("cli")
    save_to, checkpoint, custom_save = folder / "w.pt", folder / "run.pt", folder / "custom.pt"
    custom = write_custom_dataset(folder / "custom", mnist)
    on_custom = ["train", "lenet5", "--data", str(custom), "--epochs", "1", "--no-progress", "--device", "cpu"]
    commands = {
        # pinned to the CPU: test_resume_a_finished_run compares it bit for bit with a CPU run
        "train": TRAIN_OK + ["--save", str(save_to), "--checkpoint", str(checkpoint), "--device", "cpu"],
        "custom": on_custom + ["--no-verify", "--save", str(custom_save)],
        "custom-verified": on_custom,
        "custom-data": ["data", "--data", str(custom), "--no-verify"],
    }
    commands |= {name: argv for name, (argv, _) in BAD.items()} | OTHER
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    env["OMP_NUM_THREADS"] = "1"  # several commands run side by side on few cores
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run, argv, env) for name, argv in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    results |= {"saved_to": save_to, "checkpoint": checkpoint, "custom_dir": custom, "custom_saved_to": custom_save}
    return results


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_train_runs(cli):
    r = cli["train"]
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(r"\b500 training images\b", r.stdout), r.stdout
    assert re.search(r"^epoch +1 ", r.stdout, re.M), r.stdout
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("test accuracy:")]
    assert len(line) == 1
    accuracy = float(line[0].split(":")[1])
    assert 0.3 < accuracy <= 1.0  # 500 images, one epoch: well above chance (0.1)


def test_train_saves_a_self_describing_model(cli, mnist):
    """``train --save w.pt``, then ``evaluate(load_model("w.pt"), test)``: the accuracy the command printed."""
    from mnist_lib import evaluate, load_model
    from mnist_lib.models import MLP

    path = cli["saved_to"]
    assert cli["train"].returncode == 0, cli["train"].stderr
    assert f"model written to {path}" in cli["train"].stdout
    state = torch.load(path, weights_only=True)
    assert state["architecture"]["class"] == "MLP" and state["architecture"]["kwargs"]["input_scale"] == [0.0, 1.0]
    model = load_model(path)
    assert isinstance(model, MLP) and not model.training
    assert (model.standardize.mean.item(), model.standardize.std.item()) == (0.0, 1.0)  # the setup keeps [0, 1] pixels
    printed = float(re.search(r"^test accuracy: ([\d.]+)$", cli["train"].stdout, re.M)[1])
    assert round(evaluate(model, mnist.test, device="cpu")["acc"], 4) == printed
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask()  # not 0600 whatever the umask


def _check_usage_error(returncode, stdout, stderr, expected):
    assert returncode == 2, (returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr  # the error alone, not after argparse's usage block
    assert "error:" in lines[0] and expected in lines[0], lines[0]
    assert re.search(r"\(usage: python -m mnist_lib( [a-z-]+)? --help\)$", lines[0]), lines[0]
    assert "test accuracy" not in stdout


@pytest.mark.parametrize("name", BAD)
def test_bad_arguments_exit_2_with_one_error_line(cli, name):
    r = cli[name]
    _check_usage_error(r.returncode, r.stdout, r.stderr, BAD[name][1])


def test_doctor_command(cli):
    r = cli["doctor"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    labels = [line.split()[0] for line in r.stdout.splitlines()[2:-2]]
    for label in ("python", "torch", "torchvision", "numpy", "jupyter-book", "device", "CUDA", "MPS", "threads",
                  "data", "book", "build"):
        assert label in labels, r.stdout
    assert "SHA-256 verified" in r.stdout
    assert r.stdout.rstrip().endswith("no problems found")


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out, err = capsys.readouterr()
    assert info.value.code == 0
    assert out.startswith("usage: python -m mnist_lib")
    assert "train" in out and "data" in out and "doctor" in out
    assert err == ""


def test_data_command(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "checksums OK" in out
    assert "train: images (60000, 28, 28) torch.uint8, labels (60000,) torch.int64" in out
    assert "test: images (10000, 28, 28) torch.uint8, labels (10000,) torch.int64" in out


# ------------------------------------------------------------------ in-process checks


IN_PROCESS_BAD = {
    "epochs-negative": (["train", "mlp", "--epochs", "-1"], "--epochs"),
    "lr-not-a-number": (["train", "mlp", "--lr", "abc"], "--lr"),
    "lr-nan": (["train", "mlp", "--lr", "nan"], "--lr"),
    "lr-zero": (["train", "mlp", "--lr", "0"], "--lr"),
    "limit-0": (["train", "mlp", "--limit", "0"], "--limit"),
    "epochs-float": (["train", "mlp", "--epochs", "1.5"], "--epochs"),
    "unknown-optimizer": (["train", "mlp", "--optimizer", "lion"], "--optimizer"),
    "unknown-schedule": (["train", "mlp", "--schedule", "linear"], "--schedule"),
    "no-command": ([], "required"),
    "unknown-device": (["train", "mlp", "--device", "tpu9"], "unknown device 'tpu9'"),
    "device-torch-knows-but-not-the-book": (["train", "mlp", "--device", "meta"], "unknown device 'meta'"),
    "device-empty": (["train", "mlp", "--device", ""], "expected a device name"),
    "device-cuda-out-of-range": (["train", "mlp", "--device", "cuda:99"], "CUDA GPU"),
    "save-to-a-folder": (["train", "mlp", "--save", "/"], "cannot write '/': it is a folder"),
    "save-under-a-file": (["train", "mlp", "--save", f"{__file__}/w.pt"], "is not a folder"),
    "checkpoint-to-a-folder": (["train", "mlp", "--checkpoint", "/"], "--checkpoint: cannot write '/'"),
    "checkpoint-folder-missing": (["train", "mlp", "--checkpoint", "/nonexistent/dir/run.pt"], "'/nonexistent/dir' does not exist"),
    "resume-without-checkpoint": (["train", "mlp", "--resume"], "--resume needs --checkpoint FILE"),
    "save-is-the-checkpoint": (["train", "mlp", "--save", "a.pt", "--checkpoint", "./a.pt"], "name the same file"),
    "seed-negative": (["train", "mlp", "--seed", "-1"], "--seed: expected a seed from 0 to 2**63 - 1, got -1"),
    "seed-not-a-number": (["train", "mlp", "--seed", "x"], "--seed: expected a seed from 0 to 2**63 - 1"),
    "doctor-unknown-option": (["doctor", "--fast"], "unrecognized arguments: --fast"),
    "data-empty": (["train", "mlp", "--limit", "10", "--epochs", "1", "--data", ""], "--data: expected a folder name, got an empty one"),
    "data-blank": (["data", "--data", " "], "--data: expected a folder name, got an empty one"),
    "doctor-data-empty": (["doctor", "--data", ""], "--data: expected a folder name"),
    "overwrite-without-checkpoint": (["train", "mlp", "--overwrite"], "--overwrite needs --checkpoint FILE"),
    "resume-and-overwrite": (["train", "mlp", "--checkpoint", "x.pt", "--resume", "--overwrite"], "choose one"),
}
if Path("/sys").is_dir():  # not writable even for root
    IN_PROCESS_BAD["save-unwritable"] = (["train", "mlp", "--save", "/sys/w.pt"], "'/sys' is not writable")


@pytest.mark.parametrize("name", IN_PROCESS_BAD)
def test_bad_arguments_in_process(capsys, name):
    argv, expected = IN_PROCESS_BAD[name]
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    _check_usage_error(info.value.code, out, err, expected)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder(tmp_path, capsys):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SystemExit) as info:
            main(["train", "mlp", "--checkpoint", str(tmp_path / "run.pt")])
    finally:
        tmp_path.chmod(0o700)
    _check_usage_error(info.value.code, *capsys.readouterr(), "is not writable")


def test_resume_a_finished_run(cli, tmp_path, capsys):
    """Resuming the finished subprocess run (on the CPU, as here) trains nothing and ends with the same weights
    and numbers."""
    assert cli["train"].returncode == 0, cli["train"].stderr
    assert f"checkpoint after every epoch: {cli['checkpoint']}" in cli["train"].stdout
    again = tmp_path / "again.pt"
    argv = TRAIN_OK + ["--checkpoint", str(cli["checkpoint"]), "--resume", "--save", str(again), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"resuming from {cli['checkpoint']}: 1 of 1 epochs done" in out
    first = [ln for ln in cli["train"].stdout.splitlines() if ln.startswith(("epoch", "test accuracy"))]
    assert [ln.split("(")[0] for ln in first] == [ln.split("(")[0] for ln in out.splitlines() if ln.startswith(("epoch", "test accuracy"))]
    a, b = (torch.load(path, weights_only=True)["state_dict"] for path in (cli["saved_to"], again))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_settings_is_an_error_line(cli, capsys):
    argv = TRAIN_OK + ["--checkpoint", str(cli["checkpoint"]), "--resume", "--batch-size", "50", "--device", "cpu"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cli['checkpoint']}: expected a checkpoint of this run")
    assert "batch_size=100 in the file, 50 here" in err[0]


def test_bad_device_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("MNIST_DEVICE", "foo")
    with pytest.raises(SystemExit) as info:
        main(TRAIN_OK)
    _check_usage_error(info.value.code, *capsys.readouterr(), "$MNIST_DEVICE: unknown device 'foo'")


def interrupted_after(epochs: int):
    """A stand-in for fit: it reports ``epochs`` epochs (a checkpoint of each written), then Ctrl-C comes."""
    def fit(model, train, *, on_epoch, checkpoint=None, **kwargs):
        for epoch in range(1, epochs + 1):
            if checkpoint is not None:
                Path(checkpoint).write_bytes(b"epoch %d" % epoch)
            on_epoch({"epoch": epoch, "train_loss": 1 / epoch, "train_acc": 0.5, "seconds": 2.0})
        raise KeyboardInterrupt

    return fit


def test_interrupt_says_how_to_resume(monkeypatch, tmp_path, capsys):
    import mnist_lib.__main__ as cli_module

    monkeypatch.setattr(cli_module, "fit", interrupted_after(2))
    checkpoint = tmp_path / "run.pt"
    assert main(TRAIN_OK + ["--checkpoint", str(checkpoint), "--device", "cpu"]) == 130
    out, err = capsys.readouterr()
    assert err.strip() == f"interrupted; add --resume to continue from the last checkpoint, {checkpoint} (epoch 2)"
    # each epoch was printed as it ended, not at the end of the run (which never came)
    assert re.findall(r"^epoch +(\d) +train loss", out, re.M) == ["1", "2"]


@pytest.mark.parametrize("old_checkpoint", [False, True])
def test_interrupt_before_the_first_checkpoint_says_so(monkeypatch, tmp_path, capsys, old_checkpoint):
    import mnist_lib.__main__ as cli_module

    monkeypatch.setattr(cli_module, "fit", interrupted_after(0))
    checkpoint = tmp_path / "run.pt"
    extra = []
    if old_checkpoint:  # another run's checkpoint, being replaced: resuming would not continue this run
        checkpoint.write_bytes(b"an older run")
        extra = ["--overwrite"]
    assert main(TRAIN_OK + ["--checkpoint", str(checkpoint), "--device", "cpu", *extra]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted; nothing to resume: the first checkpoint is written at the end of epoch 1"
    assert main(TRAIN_OK + ["--device", "cpu"]) == 130  # no checkpoint asked for: no hint at all
    assert capsys.readouterr().err.strip() == "interrupted"


def test_epochs_are_printed_as_they_end(monkeypatch, capsys):
    """With the real fit: when epoch 1 ends, its line is already out (and epoch 2 has not started)."""
    import mnist_lib.__main__ as cli_module

    seen_at_epoch_end = []
    real_fit = cli_module.fit

    def watching_fit(*args, on_epoch, **kwargs):
        def spy(record):
            on_epoch(record)
            seen_at_epoch_end.append(capsys.readouterr().out)
        return real_fit(*args, on_epoch=spy, **kwargs)

    monkeypatch.setattr(cli_module, "fit", watching_fit)
    assert main(["train", "mlp100", "--limit", "200", "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    assert [re.findall(r"^epoch +(\d) ", out, re.M) for out in seen_at_epoch_end] == [["1"], ["2"]]


def test_train_help_lists_setups(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("mlp ", "mlp100", "--epochs", "--batch-size", "--lr", "--save", "--limit", "--device",
                 "--checkpoint", "--resume"):
        assert word in out


def test_data_command_missing_folder(capsys, tmp_path):
    assert main(["data", "--data", str(tmp_path / "nowhere")]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "no such folder" in err
    assert "checksums OK" not in out


def test_divergence_is_reported_as_an_error_line(capsys, monkeypatch):
    # A sigmoid MLP's loss cannot overflow, so make training diverge for real by feeding
    # NaN pixels: the loop must stop at the first step and the CLI print one error line.
    import mnist_lib.__main__ as cli
    from mnist_lib import data as data_mod

    real_scale = data_mod.scale_pixels
    monkeypatch.setattr(data_mod, "scale_pixels", lambda images: real_scale(images) * float("nan"))
    argv = ["train", "mlp100", "--limit", "300", "--epochs", "1", "--no-progress", "--device", "cpu"]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code not in (0, None)
    assert any(ln.startswith("error:") and "epoch 1, step 1" in ln for ln in err.splitlines()), err


def test_train_passes_the_setups_distortions_to_fit(monkeypatch, capsys):
    import mnist_lib.__main__ as cli_module
    from mnist_lib.experiments import DISTORTIONS

    seen = {}

    def recording_fit(model, train, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(cli_module, "fit", recording_fit)
    assert main(["train", "bncnn", "--limit", "64", "--device", "cpu"]) == 130
    # The model standardises its [0, 1] input itself, so the distortions see [0, 1] pixels (background 0).
    assert seen["augment"] == DISTORTIONS and seen["amp"] and seen["channels_last"]
    assert "normalization" not in seen
    main(["train", "mlp", "--limit", "64", "--device", "cpu"])
    assert seen["augment"] is None


# ------------------------------------------------- another IDX dataset (--no-verify)


def test_train_on_another_idx_dataset_standardises_with_its_own_statistics(cli):
    r = cli["custom"]
    assert r.returncode == 0, r.stderr
    from mnist_lib.data import load_mnist

    data = load_mnist(cli["custom_dir"], verify=False)
    pixels = data.train.images.double() / 255
    mean, std = pixels.mean().item(), pixels.std(correction=0).item()
    assert mean > 0.8  # white paper, dark ink: far from MNIST's 0.1307
    assert (f"{cli['custom_dir']} holds other data than MNIST: pixels standardised with their own mean {mean:.4f} "
            f"and std {std:.4f} (of its {CUSTOM_TRAIN} training images), not MNIST's") in r.stdout
    # The saved model carries the standardisation: loaded, it scores what the run printed.
    from mnist_lib import evaluate, load_model

    model = load_model(cli["custom_saved_to"])
    assert model.standardize.mean.item() == pytest.approx(mean) and model.standardize.std.item() == pytest.approx(std)
    printed = float(re.search(r"^test accuracy: ([\d.]+)$", r.stdout, re.M)[1])
    assert round(evaluate(model, data.test, device="cpu")["acc"], 4) == printed


def test_another_dataset_without_no_verify_is_one_error_line(cli):
    r = cli["custom-verified"]
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "SHA-256" in lines[0], r.stderr


def test_data_command_on_another_dataset(cli):
    r = cli["custom-data"]
    assert r.returncode == 0, r.stderr
    assert f"{cli['custom_dir']}: other data than MNIST (checksums differ); training pixels: mean 0.8" in r.stdout
    assert f"train: images ({CUSTOM_TRAIN}, 28, 28) torch.uint8" in r.stdout


def test_other_data_for_a_setup_in_unit_pixels_and_blank_images(tmp_path, mnist, monkeypatch, capsys):
    import mnist_lib.__main__ as cli_module

    seen = {}

    def recording_fit(model, train, **kwargs):
        seen.update(kwargs, model=model)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "fit", recording_fit)
    folder = write_custom_dataset(tmp_path / "custom", mnist)
    assert main(["train", "mlp", "--data", str(folder), "--no-verify", "--device", "cpu"]) == 130
    assert f"{folder} holds other data than MNIST; this setup keeps the pixels in [0, 1]" in capsys.readouterr().out
    assert (seen["model"].standardize.mean.item(), seen["model"].standardize.std.item()) == (0.0, 1.0)
    blank = np.full((3, 28, 28), 200, dtype=np.uint8)
    write_mnist_folder(tmp_path / "blank", {"train-images-idx3-ubyte": blank, "train-labels-idx1-ubyte": np.zeros(3, np.uint8),
                                            "t10k-images-idx3-ubyte": blank, "t10k-labels-idx1-ubyte": np.zeros(3, np.uint8)})
    assert main(["train", "lenet5", "--data", str(tmp_path / "blank"), "--no-verify", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected training images with more than one grey level, found every pixel 200" in err[0]


def test_data_command_no_verify_on_mnist(capsys):
    assert main(["data", "--no-verify"]) == 0
    assert ": the original MNIST (checksums match)" in capsys.readouterr().out


# ------------------------------------------------------------ output files (item 1, 3)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("argv", [TRAIN_OK + ["--save"], TRAIN_OK + ["--checkpoint"], ["export-web", "--out"],
                                  ["bench", "--quick", "--out"]])
def test_a_target_that_is_not_a_regular_file_is_refused(tmp_path, capsys, argv):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as info:
        main(argv + [str(fifo)])
    _check_usage_error(info.value.code, *capsys.readouterr(), f"{argv[-1]}: cannot write '{fifo}': it is a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


Usage = namedtuple("Usage", "total used free")


def test_no_room_for_the_output_fails_before_training(tmp_path, monkeypatch, capsys):
    import mnist_lib.__main__ as cli_module

    monkeypatch.setattr(cli_module, "fit", lambda *a, **k: pytest.fail("trained although the file cannot be written"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 2**20, 2**20))  # 1 MiB free
    with pytest.raises(SystemExit) as info:  # the MLP's weights take 0.9 MiB, its checkpoint about 3.7
        main(TRAIN_OK + ["--save", str(tmp_path / "w.pt"), "--checkpoint", str(tmp_path / "run.pt")])
    _check_usage_error(info.value.code, *capsys.readouterr(), "no space left on device")


def test_a_full_disk_at_save_time_is_one_error_line(tmp_path, monkeypatch, capsys):
    real_write = os.write

    def full(fd, data):
        if fd > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    path = tmp_path / "w.pt"
    assert main(["train", "mlp100", "--limit", "100", "--epochs", "1", "--no-progress", "--device", "cpu",
                 "--save", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write {str(path)!r}: no space left on device"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- checkpoints (items 4, 7)


def test_an_existing_checkpoint_needs_resume_or_overwrite(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"another run's checkpoint")
    with pytest.raises(SystemExit) as info:
        main(TRAIN_OK + ["--checkpoint", str(checkpoint), "--device", "cpu"])
    _check_usage_error(info.value.code, *capsys.readouterr(),
                       f"--checkpoint {checkpoint} exists: add --resume to continue its run, or --overwrite")
    assert checkpoint.read_bytes() == b"another run's checkpoint"
    small = ["train", "mlp100", "--limit", "100", "--epochs", "1", "--no-progress", "--device", "cpu"]
    assert main(small + ["--checkpoint", str(checkpoint), "--overwrite"]) == 0
    from mnist_lib.checkpoint import read_checkpoint

    assert read_checkpoint(checkpoint)["epoch"] == 1


def test_a_checkpoint_in_use_by_another_run_is_refused(tmp_path, monkeypatch, capsys):
    import mnist_lib.__main__ as cli_module
    from mnist_lib.checkpoint import locked

    monkeypatch.setattr(cli_module, "fit", lambda *a, **k: pytest.fail("trained on a checkpoint in use"))
    checkpoint = tmp_path / "run.pt"
    with locked(checkpoint):  # as the other run does (another open file description: the same as another process)
        assert main(TRAIN_OK + ["--checkpoint", str(checkpoint), "--resume", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {checkpoint}: another run is training with this checkpoint")


def test_a_finished_run_is_evaluated_not_its_stored_number(cli, tmp_path, capsys):
    """A finished checkpoint whose weights were replaced (validly: finite, digest renewed) prints their accuracy."""
    from mnist_lib.checkpoint import content_digest

    state = torch.load(cli["checkpoint"], weights_only=True)
    stored = state["history"]["epochs"][-1]["test_acc"]
    for key in state["model"]:
        if not key.startswith("standardize."):
            state["model"][key] = torch.zeros_like(state["model"][key])  # every logit 0: "always 0"
    state["digest"] = content_digest(state)
    edited = tmp_path / "zeros.pt"
    torch.save(state, edited)
    assert main(TRAIN_OK + ["--checkpoint", str(edited), "--resume", "--device", "cpu"]) == 0
    printed = float(re.search(r"^test accuracy: ([\d.]+)$", capsys.readouterr().out, re.M)[1])
    from mnist_lib.data import load_mnist

    zeros = (load_mnist().test.labels == 0).float().mean().item()
    assert printed == round(zeros, 4) and abs(printed - stored) > 0.1


def test_a_checkpoint_with_nan_weights_is_one_error_line(cli, tmp_path, capsys):
    from mnist_lib.checkpoint import content_digest

    state = torch.load(cli["checkpoint"], weights_only=True)
    state["model"]["net.1.weight"] = torch.full_like(state["model"]["net.1.weight"], float("nan"))
    state["digest"] = content_digest(state)
    torch.save(state, tmp_path / "nan.pt")
    save = tmp_path / "w.pt"
    assert main(TRAIN_OK + ["--checkpoint", str(tmp_path / "nan.pt"), "--resume", "--save", str(save),
                            "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected finite weights, found NaN or infinite values in net.1.weight" in err[0]
    assert not save.exists()


def test_warnings_are_one_line(monkeypatch, capsys):
    import warnings

    import mnist_lib.__main__ as cli_module

    def warning_fit(*args, **kwargs):
        warnings.warn("something to know", UserWarning)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "fit", warning_fit)
    assert main(TRAIN_OK + ["--device", "cpu"]) == 130
    assert capsys.readouterr().err.splitlines() == ["warning: something to know", "interrupted"]
