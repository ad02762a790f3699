"""mnist_lib.files: the one safe writer of files (weights, checkpoints, JSON).

Faults of the system (a full disk, a vanished folder, no permission) are simulated by
making the system calls fail the way the kernel would, with the errno it would give.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from collections import namedtuple

import pytest
import torch
from torch import nn

from mnist_lib import files
from mnist_lib.files import WriteError, check_room, check_writable, nbytes, save_torch, to_cpu, write_bytes


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def dead_pid() -> int:
    """The process id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ------------------------------------------------------------- what may be written


def test_writes_a_new_file_and_replaces_an_old_one(tmp_path):
    path = tmp_path / "w.bin"
    assert write_bytes(path, b"one") == path
    write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]  # no temporary file left


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_refuses_a_fifo_and_leaves_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for write in (lambda: write_bytes(fifo, b"x"), lambda: check_writable(fifo)):
        with pytest.raises(WriteError, match=r"cannot write '.*pipe': it is a FIFO \(named pipe\); only regular files"):
            write()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


@pytest.mark.skipif(not os.path.exists(os.devnull) or os.name != "posix", reason="no /dev/null")
def test_refuses_a_character_device():
    # Only the check: nothing is written near /dev/null, even if the check were wrong.
    with pytest.raises(WriteError, match="it is a character device"):
        check_writable(os.devnull)


def test_refuses_a_folder_even_behind_a_symlink(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    with pytest.raises(WriteError, match="it is a folder; name a file"):
        write_bytes(tmp_path / "folder", b"x")
    with pytest.raises(WriteError, match=r"it is a folder \(the symbolic link points to .*folder'\)"):
        write_bytes(tmp_path / "link", b"x")


def test_writes_through_a_symlink(tmp_path):
    (tmp_path / "real.pt").write_bytes(b"old")
    link = tmp_path / "latest.pt"
    link.symlink_to("real.pt")
    write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == "real.pt"
    assert (tmp_path / "real.pt").read_bytes() == b"new"
    dangling = tmp_path / "dangling.pt"
    dangling.symlink_to(tmp_path / "to-be.pt")
    write_bytes(dangling, b"created")
    assert dangling.is_symlink() and (tmp_path / "to-be.pt").read_bytes() == b"created"


def test_check_writable_names_the_problem(tmp_path):
    assert check_writable(tmp_path / "new.pt") == tmp_path / "new.pt"
    with pytest.raises(WriteError, match="does not exist"):
        check_writable(tmp_path / "missing" / "w.pt")
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match="is not a folder"):
        check_writable(tmp_path / "file" / "w.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # the test write left nothing


# ----------------------------------------------------------- permissions, umask


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        write_bytes(tmp_path / "w.pt", b"x")
        save_torch({"w": torch.ones(2)}, tmp_path / "s.pt")
    finally:
        os.umask(old)
    assert mode(tmp_path / "w.pt") == mode(tmp_path / "s.pt") == 0o666 & ~mask


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "secret.pt"
    path.write_bytes(b"old")
    path.chmod(0o600)
    write_bytes(path, b"new")
    assert mode(path) == 0o600 and path.read_bytes() == b"new"


# ------------------------------------------------------------ stale temporary files


def test_stale_temporary_files_of_the_target_are_removed(tmp_path):
    target = tmp_path / "run.pt"
    stale = [tmp_path / f".run.pt.{dead_pid()}-0123abcd.tmp",  # its writer was killed
             tmp_path / ".run.pt.k3j_9xq2.tmp"]  # named the older way, by tempfile
    alive = tmp_path / f".run.pt.{os.getpid()}-89abcdef.tmp"  # a writer still at work
    others = [tmp_path / ".other.pt.k3j_9xq2.tmp", tmp_path / "run.pt.notes", tmp_path / ".run.pt.backup"]
    for p in [*stale, alive, *others]:
        p.write_bytes(b"")
    write_bytes(target, b"x")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(p.name for p in [target, alive, *others])


def test_sigkill_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "run.pt"
    write_bytes(target, b"old")
    # A writer that dies (SIGKILL) between writing its temporary file and renaming it.
    code = ("import os, signal, sys; from mnist_lib import files; "
            "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
            f"files.write_bytes({str(target)!r}, b'new')")
    child = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert child.returncode == -9
    assert target.read_bytes() == b"old"
    assert len(list(tmp_path.glob(".run.pt.*.tmp"))) == 1
    write_bytes(target, b"newer")
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"] and target.read_bytes() == b"newer"


# ------------------------------------------------------------ faults of the system


def failing(error_number: int, after: int = 0):
    """An ``os.write`` that writes ``after`` bytes, then fails with ``error_number``."""
    real_write = os.write

    def write(fd, data):
        if fd > 2:  # never the test's own stdout and stderr
            if after:
                return real_write(fd, bytes(data[:after]))
            raise OSError(error_number, os.strerror(error_number))
        return real_write(fd, data)

    return write


def test_a_full_disk_is_named_and_the_old_file_kept(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    save_torch({"w": torch.zeros(3)}, path)
    monkeypatch.setattr(os, "write", failing(errno.ENOSPC))
    with pytest.raises(WriteError) as info:
        save_torch({"w": torch.ones(1000)}, path)
    monkeypatch.undo()
    assert str(info.value) == f"cannot write {str(path)!r}: no space left on device"
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


@pytest.mark.parametrize("error_number, cause", [(errno.EDQUOT, "disk quota exceeded"), (errno.EIO, "input/output error"),
                                                 (errno.EROFS, "read-only file system")])
def test_other_io_errors_are_named(tmp_path, monkeypatch, error_number, cause):
    monkeypatch.setattr(os, "write", failing(error_number))
    with pytest.raises(WriteError, match=f": {cause}$"):
        write_bytes(tmp_path / "w.pt", b"x" * 100)


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "write", failing(0, after=7))  # the kernel may write less than asked
    write_bytes(tmp_path / "w.pt", bytes(range(100)))
    monkeypatch.undo()
    assert (tmp_path / "w.pt").read_bytes() == bytes(range(100))


def test_a_vanished_folder_is_named(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    check_writable(folder / "w.pt")
    folder.rmdir()  # e.g. removed during the training
    with pytest.raises(WriteError, match=f"the folder {str(folder)!r} does not exist"):
        save_torch({"w": torch.zeros(1)}, folder / "w.pt")


def test_no_permission_is_named(tmp_path, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(WriteError, match="permission denied"):
        write_bytes(tmp_path / "w.pt", b"x")


# --------------------------------------------------------------- room on the disk


Usage = namedtuple("Usage", "total used free")


def test_check_room(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 3 * 2**20, 3 * 2**20))
    check_room({tmp_path / "a.pt": 2 * 2**20})
    with pytest.raises(WriteError, match=r"no space left on device: '.*a.pt' and '.*b.pt' need about 4.0 MiB, "
                                         r"3.0 MiB is free there"):
        check_room({tmp_path / "a.pt": 2 * 2**20, tmp_path / "b.pt": 2 * 2**20})  # one disk: they add up
    with pytest.raises(WriteError, match="does not exist"):
        check_room({tmp_path / "missing" / "a.pt": 1})


def test_nbytes():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    expected = 4 * (12 + 4 + 4 + 4 + 4 + 4) + 8  # float32 weights, biases, BN stats; int64 counter
    assert nbytes(model.state_dict()) == expected
    assert nbytes({"a": [torch.zeros(2, dtype=torch.float64), (torch.zeros(1, dtype=torch.uint8), 3)]}) == 17


# ----------------------------------------------------------------- torch files


def test_save_torch_writes_plain_cpu_tensors(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    state = model.state_dict()
    save_torch({"model": state, "list": [torch.ones(2, requires_grad=True)], "n": 3}, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)  # no map_location: as it was written
    assert all(v.device.type == "cpu" for v in loaded["model"].values())
    assert loaded["n"] == 3 and not loaded["list"][0].requires_grad
    assert loaded["model"]._metadata == state._metadata  # load_state_dict's version information kept
    nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).load_state_dict(loaded["model"])


def test_to_cpu_keeps_cpu_tensors_and_structure():
    t = torch.arange(3.0)
    moved = to_cpu({"a": (t, [t]), "b": "text"})
    assert moved["a"][0].data_ptr() == t.data_ptr()  # no copy of what is already on the CPU
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list) and moved["b"] == "text"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_save_torch_moves_gpu_tensors_to_the_cpu(tmp_path):
    save_torch(nn.Linear(3, 4).cuda().state_dict(), tmp_path / "w.pt")
    assert all(v.device.type == "cpu" for v in torch.load(tmp_path / "w.pt", weights_only=True).values())


# ------------------------------------------------------ every writer uses the helper


def test_every_writer_of_weights_and_results_goes_through_the_helper(tmp_path, monkeypatch):
    """Checkpoints, saved.save_shipped and bench_report.write_json all refuse a FIFO: they use mnist_lib.files."""
    from mnist_lib import checkpoint, saved
    from mnist_lib.bench import report as bench_report

    written = []
    real = files.write_bytes
    monkeypatch.setattr(files, "write_bytes", lambda path, data: written.append(path.name) or real(path, data))
    model = nn.Linear(784, 10)
    opt = torch.optim.Adam(model.parameters())
    checkpoint.save_checkpoint(tmp_path / "run.pt", epoch=1, model=model, optimizer=opt,
                               scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
                               generator=torch.Generator(), history={"step_loss": [], "epochs": []}, run={})
    saved.save_shipped("tiny", [nn.Sequential(nn.Flatten(), model)], {"class": "MLP", "kwargs": {}},
                       {"acc": 0.5, "loss": None, "images": 10}, {"how": "test"}, title="tiny", folder=tmp_path)
    bench_report.write_json({"a": 1}, tmp_path / "bench.json")
    assert written == ["run.pt", "tiny.pt", "tiny.json", "bench.json"]
    assert json.loads((tmp_path / "bench.json").read_text()) == {"a": 1}


def test_errors_survive_pickling():
    """Errors come back from worker processes (run_jobs) pickled."""
    import pickle

    from mnist_lib.checkpoint import CheckpointError

    for error in (WriteError("/x/w.pt", "no space left on device"), CheckpointError("run.pt", "damaged", "retrain")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
