"""mnist_lib.doctor (``python -m mnist_lib doctor``) and the chapters' provenance cell.

The real ``jupyter-book build`` takes minutes on a small machine, so ``--build`` runs
a stand-in command here that succeeds or fails like jupyter-book would; the command
line itself runs the real doctor as a subprocess in test_cli.py.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from conftest import SHIPPED
from mnist_lib import book, doctor
from mnist_lib.__main__ import main


def fake_book(root, built: bool = True, stale: bool = False):
    """A book folder with two chapters; built (index.html newer than both) or not, stale or not."""
    (root / "chapters").mkdir(parents=True)
    old = time.time() - 100
    for name in ("01_a.ipynb", "02_b.ipynb", "../_toc.yml", "../_config.yml"):
        path = root / "chapters" / name
        path.write_text("{}")
        os.utime(path, (old, old))
    if built:
        index = root / "_build" / "html" / "index.html"
        index.parent.mkdir(parents=True)
        index.write_text("<html></html>")
        os.utime(index, (old + 50, old + 50))
    if stale:
        (root / "chapters" / "02_b.ipynb").write_text('{"changed": true}')  # now: newer than the build
    return root


def run_doctor(capsys, *argv) -> tuple[int, str]:
    code = main(["doctor", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def line(report: str, label: str) -> str:
    found = [ln for ln in report.splitlines() if ln.split(" ", 1)[0] == label]
    assert len(found) == 1, report
    return found[0]


def test_report_lists_the_environment(tmp_path, capsys):
    code, out = run_doctor(capsys, "--root", str(fake_book(tmp_path)), "--data", str(SHIPPED))
    assert code == 0, out
    assert out.startswith("MNIST Book doctor: paste this whole report into your question\n")
    for label in ("python", "platform", "mnist_lib", "torch", "torchvision", "numpy", "pillow", "jupyter-book",
                  "device", "CUDA", "MPS", "threads", "settings", "data", "book", "build"):
        line(out, label)
    assert sys.executable in line(out, "python")
    assert "threads" in line(out, "device") and "CPU cores" in line(out, "threads")
    assert "SHA-256 verified" in line(out, "data")
    assert "newer than all 2 chapters" in line(out, "book")
    assert "not tried (add --build" in line(out, "build")
    assert out.rstrip().endswith("no problems found")


def test_missing_things_are_reported_not_raised(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_DEVICE", "tpu")
    code, out = run_doctor(capsys, "--root", str(tmp_path / "nowhere"), "--data", str(tmp_path / "no-data"))
    assert code == 1
    assert "PROBLEM: $MNIST_DEVICE='tpu': unknown device 'tpu'" in line(out, "device")
    assert "PROBLEM: " in line(out, "data") and "found no such folder" in line(out, "data")
    assert "note: no chapters found" in line(out, "book")
    assert out.rstrip().endswith("2 problem(s): device, data")


def test_a_broken_data_file_is_a_problem(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for f in SHIPPED.glob("*labels*.gz"):
        (data / f.name).write_bytes(f.read_bytes())
    code, out = run_doctor(capsys, "--root", str(fake_book(tmp_path / "book")), "--data", str(data))
    assert code == 1
    assert "train-images-idx3-ubyte.gz: expected the file to exist, found no such file" in line(out, "data")


def test_book_not_built_or_out_of_date(tmp_path):
    assert "not built yet" in doctor.built_check(fake_book(tmp_path / "a", built=False)).text
    stale = doctor.built_check(fake_book(tmp_path / "b", stale=True))
    assert stale.status == doctor.NOTE and "then chapters/02_b.ipynb changed (make book rebuilds it)" in stale.text
    assert doctor.built_check(fake_book(tmp_path / "c")).status == doctor.OK


FAKE_BUILD = """
import pathlib, sys
out = pathlib.Path(sys.argv[sys.argv.index("--path-output") + 1])
pathlib.Path({record!r}).write_text(str(out))
print("WARNING: a warning")
if sys.argv[1:3] == ["build", {root!r}] and {succeed}:
    (out / "_build" / "html").mkdir(parents=True)
    (out / "_build" / "html" / "index.html").write_text("ok")
else:
    print("Sphinx error: something broke", file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.parametrize("succeed", [True, False])
def test_build_reports_the_outcome(tmp_path, capsys, monkeypatch, succeed):
    root = fake_book(tmp_path / "book")
    script = tmp_path / "fake_jupyter_book.py"
    record = tmp_path / "output-folder.txt"
    script.write_text(FAKE_BUILD.format(root=str(root), succeed=succeed, record=str(record)))
    monkeypatch.setattr(doctor, "jupyter_book_command", lambda: [sys.executable, str(script)])
    code, out = run_doctor(capsys, "--root", str(root), "--data", str(SHIPPED), "--build")
    if succeed:
        assert code == 0
        assert "  jupyter-book build succeeded in " in line(out, "build") and "1 warning(s)" in out
    else:
        assert code == 1
        assert "PROBLEM: jupyter-book build failed (exit code 1); the end of its log:" in line(out, "build")
        assert "    Sphinx error: something broke" in out
    output = Path(record.read_text())
    assert output.name.startswith("mnist-book-build-") and not output.exists()  # built into a temporary folder, then removed


def test_build_without_jupyter_book(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "jupyter_book_command", lambda: None)
    code, out = run_doctor(capsys, "--root", str(fake_book(tmp_path)), "--data", str(SHIPPED), "--build")
    assert code == 1
    assert "PROBLEM: jupyter-book is not installed" in line(out, "build")


def test_a_crashing_check_becomes_a_problem_line(monkeypatch):
    def broken():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(doctor, "_cuda", broken)
    cuda = [c for c in doctor.environment_checks() if c.name == "CUDA"][0]
    assert (cuda.status, cuda.text) == (doctor.PROBLEM, "RuntimeError: driver exploded")


def test_jupyter_book_is_found_in_this_environment():
    command = doctor.jupyter_book_command()
    assert command is not None and os.path.basename(command[0]) == "jupyter-book"


# -------------------------------------------------------------------------- provenance


@pytest.mark.parametrize("seed, shown", [(None, "as listed in each experiment"), (7, "7")])
def test_provenance_names_device_torch_profile_and_seed(capsys, monkeypatch, seed, shown):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    book.provenance() if seed is None else book.provenance(seed)
    fields = dict(ln.strip().split(": ", 1) for ln in capsys.readouterr().out.splitlines())
    assert list(fields) == ["device", "torch", "python", "profile", "seed", "date", "wall time"]
    assert fields["device"].startswith(("cpu (", "cuda (", "mps (")) and "threads" in fields["device"]
    assert fields["profile"] == "smoke" and fields["seed"] == shown
    import torch

    assert fields["torch"] == torch.__version__


def test_real_build_of_a_tiny_book(tmp_path):
    """The real jupyter-book, on a one-page book (a couple of seconds): the command line fits."""
    (tmp_path / "_config.yml").write_text("title: Tiny\nexecute:\n  execute_notebooks: 'off'\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "intro.md").write_text("# Tiny\n\nOne page.\n")
    check = doctor.build_check(tmp_path)
    assert check.status == doctor.OK, check.text
    assert check.text.startswith("jupyter-book build succeeded in ")
    assert not (tmp_path / "_build").exists()  # built elsewhere, not into the book's folder
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: missing-page\n")
    broken = doctor.build_check(tmp_path)
    assert broken.status == doctor.PROBLEM and "jupyter-book build failed" in broken.text
