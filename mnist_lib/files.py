"""Writing files safely: every file mnist_lib writes goes through :func:`write_bytes`.

Weights (``train --save``, :func:`~mnist_lib.saved.save_shipped`), checkpoints and JSON
results are written the same way:

* The target must be a regular file or not exist yet. A folder, a device (``/dev/null``),
  a FIFO or a socket is refused: renaming a new file over it would destroy it.
* A symbolic link is written *through*: the file it points to gets the new content and
  the link stays a link (a dangling link gets its target created).
* The bytes go to a temporary file ``.NAME.PID-XXXXXXXX.tmp`` in the same folder, are
  flushed to the disk, then renamed over the target: a crash or ``kill -9`` leaves the
  old file or the new one, never half of one. Temporary files that a killed writer left
  behind (its process is gone) are removed by the next write of the same target.
* A new file gets the permissions the umask allows (0644 under umask 022); a replaced
  file keeps its own.
* Any failure of the system (no space left, a folder that vanished, no permission) ends
  in one :class:`WriteError` naming the cause, and the old file is left as it was.

:func:`check_writable` and :func:`check_room` check the same things before a long run
(the command line calls them before training), so that a full disk is found before the
work is done rather than after.
"""

from __future__ import annotations

import copy
import io
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

import torch

# What a file that is not a regular one is, for the messages.
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


class WriteError(OSError):
    """A file cannot be written: the target is not a regular file, or the system refused."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"cannot write {str(path)!r}: {problem}")

    def __reduce__(self):  # picklable, e.g. back from a worker process of run_jobs
        return type(self), (self.path, self.problem)


def _cause(e: OSError) -> str:
    """The reason an OSError gives, in words ("no space left on device")."""
    text = os.strerror(e.errno) if e.errno else (e.strerror or str(e) or type(e).__name__)
    return text[:1].lower() + text[1:]


def _target(path: str | os.PathLike) -> Path:
    """The file a write of ``path`` replaces: ``path`` itself, or the file its symbolic link names.

    Raises :class:`WriteError` unless that is a regular file or does not exist yet.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return target  # not there yet (a missing or wrong folder is reported by the caller)
    except OSError as e:
        raise WriteError(path, _cause(e)) from None
    if stat.S_ISREG(mode):
        return target
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    via = f" (the symbolic link points to {str(target)!r})" if target != path else ""
    fix = "name a file" if stat.S_ISDIR(mode) else "only regular files are written; name another file"
    raise WriteError(path, f"it is {kind}{via}; {fix}")


def check_writable(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be written (see the module's rules) with a real test write; return it.

    Raises :class:`WriteError` saying why not: a folder, a device, a missing or read-only folder.
    """
    path = Path(path)
    target = _target(path)
    folder = target.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise WriteError(path, f"{str(folder)!r} {problem}")
    try:  # a real write: os.access says yes to root, also on read-only file systems
        fd, tmp = _create_temp(target)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise WriteError(path, f"the folder {str(folder)!r} is not writable ({_cause(e)})") from None
    return path


def check_room(sizes: dict[str | os.PathLike, int]) -> None:
    """Check that each file of ``sizes`` (path: bytes it will take) can be written and fits on its disk.

    Files on the same file system share its free space. Raises :class:`WriteError`.
    """
    by_disk: dict[int, list[tuple[Path, int]]] = {}
    for path, size in sizes.items():
        check_writable(path)
        folder = _target(path).parent
        by_disk.setdefault(folder.stat().st_dev, []).append((Path(path), size))
    for files in by_disk.values():
        free = shutil.disk_usage(_target(files[0][0]).parent).free
        needed = sum(size for _, size in files)
        if needed > free:
            names = " and ".join(repr(str(p)) for p, _ in files)
            raise WriteError(files[0][0], f"no space left on device: {names} need about {_mib(needed)}, "
                                          f"{_mib(free)} is free there; free some space or write elsewhere")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def nbytes(obj: Any) -> int:
    """The bytes of all tensors in ``obj`` (nested dicts, lists and tuples), e.g. of a ``state_dict``."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    return 0


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty temporary file next to ``target``: (descriptor, path). The umask applies."""
    while True:
        tmp = _temp_name(target)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell cheaply: keep the file
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``target`` whose writer was killed; return them.

    A writer names its temporary file after its process id, so a file whose process is
    gone is stale. Temporary files named the older way (``.NAME.XXXXXXXX.tmp``, no
    process id) are stale too.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-[0-9a-f]{{8}}|[A-Za-z0-9_]{{8}})\.tmp")
    removed = []
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return removed
    for p in candidates:
        match = pattern.fullmatch(p.name)
        if match and not (match[1] and _alive(int(match[1]))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass  # another writer's clean-up got there first, or no permission: harmless
    return removed


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` safely (see the module): atomically, through symlinks, with the umask.

    Returns ``path``. Raises :class:`WriteError` if ``path`` is not a regular file, or the
    system refuses (no space left, no such folder, no permission); the old file is then
    left as it was.
    """
    path = Path(path)
    target = _target(path)
    remove_stale_temps(target)
    try:
        fd, tmp = _create_temp(target)
    except OSError as e:
        folder = target.parent
        problem = f"the folder {str(folder)!r} does not exist" if not folder.is_dir() else _cause(e)
        raise WriteError(path, problem) from None
    try:
        try:
            old = os.stat(target)
        except FileNotFoundError:
            pass
        else:
            os.fchmod(fd, stat.S_IMODE(old.st_mode))  # a replaced file keeps its permissions
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)  # the bytes are on disk before the name points at them
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException as e:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise WriteError(path, _cause(e)) from None
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_bytes` for text (UTF-8)."""
    return write_bytes(path, text.encode("utf-8"))


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor (in nested dicts, lists and tuples) detached and on the CPU.

    Tensors already there are not copied.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        moved = copy.copy(obj)  # the same kind of dict, with its attributes (a state_dict's _metadata)
        for k, v in obj.items():
            moved[k] = to_cpu(v)
        return moved
    if type(obj) in (list, tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` of ``obj`` with CPU tensors (:func:`to_cpu`), written by :func:`write_bytes`.

    The one way mnist_lib writes weights and checkpoints: the file loads with a plain
    ``torch.load`` on a machine without a GPU, whatever device trained it.
    """
    buffer = io.BytesIO()  # serialised first: a full disk then fails with its own errno
    torch.save(to_cpu(obj), buffer)
    return write_bytes(path, buffer.getbuffer())

