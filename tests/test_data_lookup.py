"""mnist_lib.data and mnist_lib.data_files: where the files are looked for, downloads, and telling MNIST from other IDX data."""

from __future__ import annotations

import gzip
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import numpy as np
import pytest
from torchvision.datasets import mnist as tv_mnist

from conftest import SHIPPED, idx_bytes, small_mnist, write_mnist_folder
from mnist_lib import data as data_mod
from mnist_lib import data_files
from mnist_lib.data import MNISTDataError, is_original_mnist



@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """These tests never download: any attempt to connect fails (as it does offline)."""
    def refuse(*args, **kwargs):
        raise OSError("network access blocked in the tests")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# ------------------------------------------------------------------ is_original_mnist


def test_is_original_mnist_true_for_the_shipped_files():
    assert is_original_mnist(SHIPPED) is True


def test_is_original_mnist_false_for_another_idx_dataset(tmp_path):
    write_mnist_folder(tmp_path, small_mnist())
    assert is_original_mnist(tmp_path) is False


def test_is_original_mnist_false_when_one_file_differs(tmp_path):
    for path in SHIPPED.glob("*.gz"):
        shutil.copy(path, tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert is_original_mnist(tmp_path) is False


def test_is_original_mnist_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(MNISTDataError, match="no such folder"):
        is_original_mnist(tmp_path / "nowhere")


# ------------------------------------------------------------- where the files are found


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A home with an empty cache, no $XDG_CACHE_HOME, and a checkout copy at a folder of our choosing."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    checkout = tmp_path / "checkout" / "data" / "mnist"
    monkeypatch.setattr(data_files, "DEFAULT_ROOT", checkout)  # read where the lookup is
    return SimpleNamespace(home=home, checkout=checkout, cache=home / ".cache" / "mnist_lib" / "mnist")


def _folder_of(n_train: int, folder):
    return write_mnist_folder(folder, small_mnist(n_train=n_train, n_test=2))


def _n_train(**kwargs) -> int:
    return len(data_mod.load_mnist(verify=False, **kwargs).train)


def test_lookup_order_root_then_env_then_checkout_then_cache(tmp_path, monkeypatch, places):
    _folder_of(3, places.cache)
    assert _n_train() == 3 and data_mod.data_root() == places.cache  # only the user cache holds files
    _folder_of(4, places.checkout)
    assert _n_train() == 4 and data_mod.data_root() == places.checkout  # a checkout's copy comes first
    monkeypatch.setenv("MNIST_DATA", str(_folder_of(5, tmp_path / "env")))
    assert _n_train() == 5 and data_mod.data_root() == tmp_path / "env"
    assert _n_train(root=_folder_of(6, tmp_path / "given")) == 6


def test_cache_follows_xdg_cache_home(tmp_path, monkeypatch, places):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _folder_of(3, tmp_path / "xdg" / "mnist_lib" / "mnist")
    _folder_of(4, places.cache)  # ignored: $XDG_CACHE_HOME names the cache
    assert _n_train() == 3


def test_nothing_found_lists_every_place_and_the_fixes(places):
    places.checkout.mkdir(parents=True)  # a checkout whose files were moved away
    with pytest.raises(MNISTDataError) as info:
        data_mod.load_mnist()
    message = str(info.value)
    for word in ["$MNIST_DATA (not set)", str(places.checkout), str(places.cache),  # where it looked
                 "set $MNIST_DATA", "root=", "--data", "download=True"]:  # how to fix it
        assert word in message, message
    assert message.count("\n") == 0


def test_pip_installed_the_error_does_not_name_a_checkout(places):
    """Installed as a package there is no checkout: the error names only the places that exist to look in."""
    with pytest.raises(MNISTDataError) as info:
        data_mod.load_mnist()
    message = str(info.value)
    assert str(places.checkout) not in message and "checkout" not in message, message
    assert str(places.cache) in message


def test_a_partial_folder_is_used_and_its_missing_file_named(places):
    arrays = small_mnist()
    del arrays["t10k-images-idx3-ubyte"]
    write_mnist_folder(places.checkout, arrays)
    _folder_of(3, places.cache)  # not silently used instead
    with pytest.raises(MNISTDataError, match="no such file") as info:
        data_mod.load_mnist(verify=False)
    assert info.value.file.startswith(str(places.checkout / "t10k-images-idx3-ubyte"))


def test_an_empty_root_is_refused(places):
    with pytest.raises(MNISTDataError) as info:
        data_mod.load_mnist("")
    assert "empty" in info.value.found


# ------------------------------------------------------------------------ download=True


def _fake_download(files: dict[str, bytes]):
    """Stands in for torchvision's fetch: writes ``files`` (name -> gzip bytes) and unpacks them."""
    def download_and_extract_archive(url, download_root, filename=None, md5=None, **kwargs):
        name = filename or url.rsplit("/", 1)[-1]
        (Path(download_root) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(download_root) / name).write_bytes(files[name])
        (Path(download_root) / name.removesuffix(".gz")).write_bytes(gzip.decompress(files[name]))
    return download_and_extract_archive


def _offline(error: Exception):
    def download_and_extract_archive(*args, **kwargs):
        raise error
    return download_and_extract_archive


@pytest.mark.parametrize("error, reason", [
    (URLError(OSError(-3, "Temporary failure in name resolution")), "Temporary failure in name resolution"),
    (OSError(28, "No space left on device"), "No space left on device"),
], ids=["no-network", "disk-full"])
def test_download_failure_is_one_clear_error(places, monkeypatch, error, reason):
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _offline(error))
    with pytest.raises(MNISTDataError) as info:
        data_mod.load_mnist(download=True)
    e = info.value
    assert "download failed" in e.found and reason in e.found and "\n" not in str(e)
    assert str(places.cache) in str(e) and "MNIST_DATA" in e.fix  # where to put the files instead
    assert not any(places.cache.glob("*idx*")), "nothing half-downloaded is left in the cache"


def test_download_fills_the_cache_and_verifies(places, monkeypatch):
    files = {path.name: path.read_bytes() for path in SHIPPED.glob("*-ubyte.gz")}
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _fake_download(files))
    data = data_mod.load_mnist(download=True)
    assert len(data.train) == 60_000 and len(data.test) == 10_000
    assert sorted(p.name for p in places.cache.iterdir()) == sorted(files)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _offline(AssertionError("downloaded twice")))
    assert len(data_mod.load_mnist(download=True).test) == 10_000  # already there: no second download
    assert data_mod.is_original_mnist() is True


def test_download_of_wrong_files_is_refused_and_not_kept(places, monkeypatch):
    files = {f"{name}.gz": gzip.compress(idx_bytes(array)) for name, array in small_mnist().items()}
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _fake_download(files))
    with pytest.raises(MNISTDataError, match="SHA-256"):
        data_mod.load_mnist(download=True, verify=False)  # downloads are always verified
    assert not any(places.cache.glob("*idx*"))


def test_download_into_a_given_root_fills_in_missing_files_only(tmp_path, places, monkeypatch):
    files = {path.name: path.read_bytes() for path in SHIPPED.glob("*-ubyte.gz")}
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _fake_download(files))
    root = _folder_of(3, tmp_path / "mine")
    (root / "t10k-images-idx3-ubyte.gz").unlink()
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    data = data_mod.load_mnist(root, download=True, verify=False)
    assert len(data.train) == 3 and len(data.test) == 10_000  # the user's own training files are kept
    assert sorted(p.name for p in root.iterdir()) == sorted(files)


# ------------------------------------------------- another IDX dataset with MNIST's names


def test_another_idx_dataset_loads_with_verify_false(tmp_path):
    arrays = small_mnist(n_train=8, n_test=3, seed=5)
    write_mnist_folder(tmp_path, arrays)
    data = data_mod.load_mnist(tmp_path, verify=False)
    assert len(data.train) == 8 and len(data.test) == 3
    assert data.train.labels.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert is_original_mnist(tmp_path) is False


@pytest.mark.parametrize("name, array, words", [
    ("train-images-idx3-ubyte", np.zeros((3, 32, 32), np.uint8), ["28, 28", "(3, 32, 32)"]),
    ("train-images-idx3-ubyte", np.zeros((3, 28, 28, 3), np.uint8), ["28, 28", "(3, 28, 28, 3)"]),
    ("train-images-idx3-ubyte", np.zeros((3, 28, 28), np.float32), ["uint8", "float32"]),
    ("train-labels-idx1-ubyte", np.array([0, 1, 26], np.uint8), ["labels 0-9", "label 26"]),
    ("train-labels-idx1-ubyte", np.zeros((3, 2), np.uint8), ["labels of shape (N,)", "(3, 2)"]),
], ids=["32x32", "colour", "float", "26-classes", "2d-labels"])
def test_another_idx_dataset_of_another_layout_is_refused_clearly(tmp_path, name, array, words):
    arrays = small_mnist(n_train=3)
    arrays[name] = array
    write_mnist_folder(tmp_path, arrays)
    with pytest.raises(MNISTDataError) as info:
        data_mod.load_mnist(tmp_path, verify=False)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert "another dataset" in info.value.fix and "28x28" in info.value.fix
