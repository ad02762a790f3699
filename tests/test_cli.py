"""The command line, ``python -m mnist_lib``.

The main cases run as real subprocesses (``sys.executable -m mnist_lib``): training, the
doctor, and one of each kind of usage error the issue lists (unknown model, zero
epochs or batch size, unknown or absent device, unwritable output). Starting Python and
importing torch takes a second or two each, so they are started together by one
module-scoped fixture (a few at a time) and the tests read the results. Every other
check calls ``main(argv)`` in-process, which is much cheaper.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pathlib import Path

import pytest
import torch

from conftest import HAS_CUDA, PROJECT_ROOT
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


def _run(argv, env) -> Result:
    proc = subprocess.run([sys.executable, "-m", "mnist_lib", *argv], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict:
    save_to = tmp_path_factory.mktemp("cli") / "w.pt"
    checkpoint = save_to.with_name("run.pt")
    commands = {"train": TRAIN_OK + ["--save", str(save_to), "--checkpoint", str(checkpoint)]}
    commands |= {name: argv for name, (argv, _) in BAD.items()} | OTHER
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    env["OMP_NUM_THREADS"] = "1"  # several commands run side by side on few cores
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run, argv, env) for name, argv in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    results["saved_to"], results["checkpoint"] = save_to, checkpoint
    return results


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


def test_train_saves_a_loadable_state_dict(cli):
    path = cli["saved_to"]
    assert cli["train"].returncode == 0, cli["train"].stderr
    assert f"weights written to {path}" in cli["train"].stdout
    state = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "net.1.weight": (300, 784), "net.1.bias": (300,), "net.3.weight": (10, 300), "net.3.bias": (10,),
    }
    from mnist_lib.experiments import CONFIGS

    model = CONFIGS["mlp"].model()
    model.load_state_dict(state)
    assert not path.with_name(path.name + ".tmp").exists()


def _check_usage_error(returncode, stdout, stderr, expected):
    assert returncode == 2, (returncode, stderr)
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1, stderr
    assert expected in errors[0], errors[0]
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
    """Resuming the finished subprocess run trains nothing and ends with the same weights and numbers."""
    assert cli["train"].returncode == 0, cli["train"].stderr
    assert f"checkpoint after every epoch: {cli['checkpoint']}" in cli["train"].stdout
    again = tmp_path / "again.pt"
    argv = TRAIN_OK + ["--checkpoint", str(cli["checkpoint"]), "--resume", "--save", str(again), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"resuming from {cli['checkpoint']}" in out
    first = [ln for ln in cli["train"].stdout.splitlines() if ln.startswith(("epoch", "test accuracy"))]
    assert [ln.split("(")[0] for ln in first] == [ln.split("(")[0] for ln in out.splitlines() if ln.startswith(("epoch", "test accuracy"))]
    a, b = torch.load(cli["saved_to"], weights_only=True), torch.load(again, weights_only=True)
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


def test_interrupt_says_how_to_resume(monkeypatch, tmp_path, capsys):
    import mnist_lib.__main__ as cli_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "fit", interrupted)
    checkpoint = tmp_path / "run.pt"
    assert main(TRAIN_OK + ["--checkpoint", str(checkpoint), "--device", "cpu"]) == 130
    assert capsys.readouterr().err.strip() == f"interrupted; add --resume to continue from the last checkpoint, {checkpoint}"


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

    real_normalize = data_mod.normalize
    monkeypatch.setattr(data_mod, "normalize", lambda images, *a: real_normalize(images, *a) * float("nan"))
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
    assert seen["augment"] == DISTORTIONS and seen["amp"] and seen["channels_last"]
    main(["train", "mlp", "--limit", "64", "--device", "cpu"])
    assert seen["augment"] is None
