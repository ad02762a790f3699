"""MNIST's four IDX files: where they are looked for, their checks, and fetching them.

The files are looked for in ``root=``, else ``$MNIST_DATA``, else the project's
``data/mnist`` (in a checkout, which ships the four original files), else the user cache
(``$XDG_CACHE_HOME/mnist_lib/mnist`` or ``~/.cache/mnist_lib/mnist``), which
``load_mnist(download=True)`` fills through torchvision. Each file is parsed byte by byte
(:mod:`mnist_lib.idx`) and verified against the SHA-256 of its uncompressed bytes (known
to the library itself, so files anywhere can be checked), then checked to hold MNIST's
layout (28x28 uint8 images, one label 0-9 per image). When no place holds them, one
:class:`MNISTDataError` lists the places looked in. :mod:`mnist_lib.data` turns the
arrays into splits and re-exports the public names of this module.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .idx import FIX_SHIPPED, MNISTDataError, parse_idx, read_idx_bytes, unreadable
from .paths import CHECKOUT_DATA

DATA_ENV_VAR = "MNIST_DATA"
DEFAULT_ROOT = CHECKOUT_DATA  # the project's copy: there when the library runs from a checkout, not pip-installed

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of each file's *uncompressed* IDX bytes: the identity of the data, whatever
# compressor was used (the same values as data/mnist/SHA256SUMS.raw).
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

FIX_LAYOUT = (
    FIX_SHIPPED + "; for another dataset, store it in MNIST's layout: 28x28 uint8 images and uint8 "
    "labels 0-9, one per image, under MNIST's file names"
)


def _read_idx(path: Path) -> tuple[np.ndarray, str]:
    """Parse one IDX file, and hash its uncompressed bytes: (array, SHA-256 in hex)."""
    raw = read_idx_bytes(path)
    return parse_idx(raw, str(path)), hashlib.sha256(raw).hexdigest()


def _verify(path: Path, digest: str) -> None:
    """Refuse a file that has one of MNIST's names but not MNIST's bytes."""
    expected = RAW_SHA256.get(path.name.removesuffix(".gz"))
    if expected is not None and digest != expected:
        raise MNISTDataError(
            path,
            f"uncompressed SHA-256 {expected[:16]}...",
            f"{digest[:16]}... (the bytes differ from the original MNIST)",
            FIX_SHIPPED + "; to use other files under MNIST's names on purpose, pass verify=False "
            "(command line: --no-verify)",
        )


def read_idx_file(path: str | os.PathLike, verify: bool = True) -> np.ndarray:
    """Read one IDX file (``name`` or ``name.gz``), check its structure, then its SHA-256 (``verify``)."""
    path = Path(path)
    array, digest = _read_idx(path)
    if verify:
        _verify(path, digest)
    return array


# ------------------------------------------------------------------- finding the files


def cache_root() -> Path:
    """The user cache: ``$XDG_CACHE_HOME/mnist_lib/mnist``, else ``~/.cache/mnist_lib/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "mnist_lib" / "mnist"


def _usual_places() -> list[tuple[str, Path]]:
    """Where the files are looked for when neither ``root=`` nor ``$MNIST_DATA`` names a folder."""
    checkout = [("the project's copy, in a checkout", DEFAULT_ROOT)] if DEFAULT_ROOT.is_dir() else []  # not when pip-installed
    return checkout + [("the user cache", cache_root())]


def _find(root: Path, name: str) -> Path:
    """``root/name.gz`` or ``root/name``, whichever exists (the first, reported missing, if neither)."""
    for candidate in (root / f"{name}.gz", root / name):
        try:
            if candidate.exists():
                return candidate
        except OSError as e:  # e.g. a folder without permission
            raise unreadable(candidate, e) from None
    return root / f"{name}.gz"


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` holds any of the four files (then it is the folder meant, even if incomplete)."""
    return any(_find(folder, name).exists() for name in RAW_SHA256)


def _choose(root: str | os.PathLike | None) -> tuple[Path | None, bool]:
    """(the data folder, whether ``$MNIST_DATA`` named it); the folder is None when nothing was found."""
    if root is not None:
        if os.fspath(root) == "":
            raise MNISTDataError("root", "a folder", "an empty path",
                                 "name the folder that holds the four MNIST files, or pass no folder at all "
                                 "(root=None, no --data) to look in the usual places")
        return Path(root).expanduser().resolve(), False
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser().resolve(), True
    return next((folder for _, folder in _usual_places() if _holds_files(folder)), None), False


def _nothing_found() -> MNISTDataError:
    looked = "; ".join([f"${DATA_ENV_VAR} (not set)"] + [f"{folder} ({what})" for what, folder in _usual_places()])
    return MNISTDataError(
        "MNIST files",
        f"the four files ({', '.join(RAW_SHA256)}, each optionally .gz) in one of the places looked in: {looked}",
        "none of them there",
        f"set ${DATA_ENV_VAR} to the folder that holds them, pass root= that folder (command line: --data FOLDER), "
        f"or fetch them into {cache_root()} with load_mnist(download=True)",
    )


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the IDX files are: ``root``, else ``$MNIST_DATA``, else the first of the project's
    ``data/mnist`` (in a checkout) and the user cache (:func:`cache_root`) that holds them.

    Raises :class:`MNISTDataError`, listing the places looked in, when none does.
    """
    folder, _ = _choose(root)
    if folder is None:
        raise _nothing_found()
    return folder


def _check_folder(folder: Path, named_by_env: bool) -> None:
    try:
        if folder.is_dir():
            return
        exists = folder.exists()
    except OSError as e:
        raise unreadable(folder, e) from None
    usual = " and ".join(str(place) for _, place in _usual_places())
    if named_by_env:
        expected = f"a folder holding the four MNIST files (named by ${DATA_ENV_VAR})"
        fix = f"set ${DATA_ENV_VAR} to an existing folder, or unset it to look in the usual places ({usual})"
    else:
        expected = "a folder holding the four MNIST files"
        fix = (f"pass an existing folder (root=, or --data on the command line), or none to look in the usual "
               f"places ({usual}); load_mnist(root, download=True) fetches the files into root")
    raise MNISTDataError(folder, expected, "a file, not a folder" if exists else "no such folder", fix)


def _data_folder(root: str | os.PathLike | None) -> Path:
    """:func:`data_root`, checked to be an existing folder."""
    folder, named_by_env = _choose(root)
    if folder is None:
        raise _nothing_found()
    _check_folder(folder, named_by_env)
    return folder


# ------------------------------------------------------------------- reading the files


def _signature(path: Path) -> tuple[int, ...]:
    """What changes when the file on disk does: its identity, size and times."""
    try:
        st = path.stat()
    except OSError as e:
        raise unreadable(path, e) from None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@lru_cache(maxsize=8)
def _read_idx_cached(path: Path, signature: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """:func:`_read_idx` as a read-only array, remembered while the file's ``signature`` is unchanged."""
    array, digest = _read_idx(path)
    array.setflags(write=False)
    return array, digest


def _read_checked(path: Path, verify: bool) -> np.ndarray:
    array, digest = _read_idx_cached(path, _signature(path))
    if verify:
        _verify(path, digest)
    return array


def _load_split(root: Path, split: str, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = (_find(root, name) for name in FILES[split])
    images = _read_checked(image_path, verify)
    labels = _read_checked(label_path, verify)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MNISTDataError(image_path, "uint8 images of shape (N, 28, 28)", f"{images.dtype} {images.shape}",
                             FIX_LAYOUT)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MNISTDataError(label_path, "uint8 labels of shape (N,)", f"{labels.dtype} {labels.shape}", FIX_LAYOUT)
    if len(images) != len(labels):
        raise MNISTDataError(label_path, f"{len(images)} labels, one per image in {image_path.name}",
                             f"{len(labels)}", FIX_LAYOUT)
    if labels.size and labels.max() > 9:
        raise MNISTDataError(label_path, "labels 0-9", f"label {int(labels.max())}", FIX_LAYOUT)
    return images, labels


def is_original_mnist(root: str | os.PathLike | None = None) -> bool:
    """Whether the four files in the data folder (see :func:`data_root`) are MNIST's own.

    Compares the SHA-256 of each file's uncompressed bytes with the original's (cheap after
    :func:`load_mnist`, which has read them). Returns False for files that differ; raises
    :class:`MNISTDataError` only when the folder or a file cannot be read as IDX at all.
    """
    folder = _data_folder(root)
    paths = {name: _find(folder, name) for name in RAW_SHA256}
    return all(_read_idx_cached(path, _signature(path))[1] == RAW_SHA256[name] for name, path in paths.items())


# ------------------------------------------------------------------- fetching the files


def _download(root: str | os.PathLike | None) -> None:
    """Fetch, with torchvision, the files the data folder lacks (into the user cache when none is named).

    Downloads are always verified against MNIST's SHA-256, and only verified files are
    moved into the folder; files already there are never replaced.
    """
    from torchvision import datasets

    folder = _choose(root)[0] or cache_root()
    missing = [name for name in RAW_SHA256 if not _find(folder, name).exists()]
    if not missing:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
            datasets.MNIST(tmp, train=True, download=True)  # fetches all four files
            fetched = {name: _find(Path(tmp) / "MNIST" / "raw", name) for name in missing}
            for path in fetched.values():
                read_idx_file(path, verify=True)
            for path in fetched.values():
                os.replace(path, folder / path.name)
    except (RuntimeError, OSError) as e:  # torchvision reports network failures as RuntimeError
        reason = " ".join(str(e).split())  # torchvision's message spans several lines
        raise MNISTDataError(
            folder, "the MNIST files fetched by torchvision", f"the download failed ({type(e).__name__}: {reason})",
            f"check the network connection and retry, or fetch the four files ({', '.join(RAW_SHA256)}, "
            f".gz or not) by hand and put them in {folder}, or in any folder named by ${DATA_ENV_VAR} or root=",
        ) from None


def torchvision_root(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Lay out the shipped files the way ``torchvision.datasets.MNIST`` expects them.

    torchvision reads uncompressed files from ``<folder>/MNIST/raw``; this writes them
    there (once) from the project's copy, so the conventional pipeline runs offline.
    Returns ``folder``, ready for ``datasets.MNIST(folder, download=False)``.
    """
    raw_dir = Path(folder) / "MNIST" / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    source = _data_folder(root)
    for name in RAW_SHA256:
        target = raw_dir / name
        if not target.exists():
            src = _find(source, name)
            read_idx_file(src)  # verify before copying
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(read_idx_bytes(src))
            tmp.replace(target)
    return Path(folder)
