"""mnist_lib.data: IDX parsing, checksums, loading, splits, batching and normalisation."""

from __future__ import annotations

import builtins
import errno
import gzip
import hashlib
import io
import os
import struct
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHIPPED, idx_bytes, small_mnist, write_idx, write_mnist_folder
from mnist_lib import data as data_mod
from mnist_lib.data import DeviceLoader, MNISTDataError, Split, load_mnist, parse_idx, read_idx_file, scale_pixels

# --------------------------------------------------------------------------- parse_idx


def test_parse_idx_images_built_by_hand():
    values = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 7
    raw = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 3) + values.tobytes()
    out = parse_idx(raw)
    assert out.dtype == np.uint8
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, values)


def test_parse_idx_labels_built_by_hand():
    raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + bytes([3, 1, 4, 1, 5])
    out = parse_idx(raw)
    assert out.shape == (5,)
    assert out.tolist() == [3, 1, 4, 1, 5]


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_parse_idx_multibyte_types_are_big_endian(dtype):
    values = np.array([[-3, 0, 1], [2, 300 if dtype != "i1" else 100, -7]], dtype=dtype)
    out = parse_idx(idx_bytes(values))
    assert out.dtype == np.dtype(dtype)  # native byte order, same kind
    np.testing.assert_array_equal(out, values)


def _header(ndim_dims, code=0x08):
    return bytes([0, 0, code, len(ndim_dims)]) + struct.pack(f">{len(ndim_dims)}I", *ndim_dims)


CORRUPT = {
    "too-short": (b"\x00\x00\x08", ["4-byte", "3 bytes"]),
    "empty": (b"", ["4-byte", "0 bytes"]),
    "first-byte-not-zero": (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", ["magic", "01 00 08 01"]),
    "second-byte-not-zero": (b"\x00\x07\x08\x01" + struct.pack(">I", 1) + b"\x00", ["magic", "00 07 08 01"]),
    "unknown-type-code": (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", ["magic", "00 00 07 01"]),
    "header-cut-short": (b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 3), ["16-byte header", "12 bytes"]),
    "truncated-data": (_header((2, 3, 3)) + bytes(17), ["18 data bytes", "2x3x3", "truncated"]),
    "trailing-bytes": (_header((2, 3, 3)) + bytes(19), ["18 data bytes", "trailing bytes"]),
    "truncated-int32": (_header((2,), 0x0C) + bytes(7), ["8 data bytes", "truncated"]),
}


@pytest.mark.parametrize("raw, words", CORRUPT.values(), ids=CORRUPT.keys())
def test_parse_idx_rejects_corrupt_bytes(raw, words):
    with pytest.raises(MNISTDataError) as info:
        parse_idx(raw, "my-file-idx3-ubyte")
    message = str(info.value)
    assert message.startswith("my-file-idx3-ubyte: expected ")
    assert info.value.file == "my-file-idx3-ubyte"
    for word in words:
        assert word in message


def test_parse_idx_header_alone():
    dtype, dims, length = data_mod.parse_idx_header(_header((60_000, 28, 28)))
    assert (dtype, dims, length) == (np.dtype(">u1"), (60_000, 28, 28), 16)
    with pytest.raises(MNISTDataError, match="16-byte header"):
        data_mod.parse_idx_header(_header((60_000, 28, 28))[:12], "cut")


def test_parse_idx_huge_dimensions_raise_mnist_error():
    raw = _header((2**31, 2**31, 4))  # 2**64 elements: wraps to 0 in int64
    with pytest.raises(MNISTDataError, match="dimensions an array can have"):
        parse_idx(raw, "huge")


# ----------------------------------------------------------------------- read_idx_file


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_file_plain_and_gzip(tmp_path, suffix):
    values = np.arange(2 * 28 * 28, dtype=np.uint16).reshape(2, 28, 28).astype(np.uint8)
    path = write_idx(tmp_path / f"some-images{suffix}", values)
    np.testing.assert_array_equal(read_idx_file(path), values)


def test_read_idx_file_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MNISTDataError, match="complete gzip file") as info:
        read_idx_file(path)
    assert str(path) in str(info.value)


def test_read_idx_file_not_gzip_but_named_gz(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)))
    with pytest.raises(MNISTDataError, match="gzip") as info:
        read_idx_file(path)
    assert str(path) in str(info.value)


def test_read_idx_file_missing(tmp_path):
    path = tmp_path / "nowhere-idx1-ubyte.gz"
    with pytest.raises(MNISTDataError, match="no such file") as info:
        read_idx_file(path)
    assert str(path) in str(info.value)
    assert "the file to exist" in str(info.value)


def test_read_idx_file_corrupt_content_names_the_file(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"\x01\x02"))
    with pytest.raises(MNISTDataError, match="truncated") as info:
        read_idx_file(path)
    assert str(info.value).startswith(str(path))


def test_checksum_mismatch(tmp_path):
    real = gzip.decompress((SHIPPED / "t10k-labels-idx1-ubyte.gz").read_bytes())
    changed = bytearray(real)
    changed[-1] = (changed[-1] + 1) % 10  # one label differs; still a valid IDX file
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(changed)))
    with pytest.raises(MNISTDataError, match="SHA-256") as info:
        read_idx_file(path)
    assert str(path) in str(info.value)
    assert data_mod.RAW_SHA256["t10k-labels-idx1-ubyte"][:16] in str(info.value)
    labels = read_idx_file(path, verify=False)
    assert labels.shape == (10_000,)
    assert labels[-1] == changed[-1] and labels[-1] != real[-1]


def test_checksum_is_of_uncompressed_bytes(tmp_path):
    """Recompressing the original bytes differently still verifies."""
    real = gzip.decompress((SHIPPED / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(real, compresslevel=1, mtime=0))
    assert read_idx_file(path)[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


# -------------------------------------------------------------- load_mnist, small files


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_small_handmade_folder(tmp_path, gz):
    arrays = small_mnist()
    write_mnist_folder(tmp_path, arrays, gz=gz)
    data = load_mnist(tmp_path, verify=False)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    np.testing.assert_array_equal(data.train.images.numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train.labels.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test.images.numpy(), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert data.val is None


def test_load_mnist_handmade_files_fail_verification(tmp_path):
    write_mnist_folder(tmp_path, small_mnist())
    with pytest.raises(MNISTDataError, match="SHA-256"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("missing", list(small_mnist()))
def test_load_mnist_missing_file(tmp_path, missing):
    arrays = small_mnist()
    del arrays[missing]
    write_mnist_folder(tmp_path, arrays)
    with pytest.raises(MNISTDataError, match="no such file") as info:
        load_mnist(tmp_path, verify=False)
    assert missing in str(info.value)


def test_load_mnist_label_out_of_range(tmp_path):
    arrays = small_mnist()
    arrays["train-labels-idx1-ubyte"][2] = 12
    write_mnist_folder(tmp_path, arrays)
    with pytest.raises(MNISTDataError, match="labels 0-9") as info:
        load_mnist(tmp_path, verify=False)
    assert "label 12" in str(info.value)
    assert "train-labels-idx1-ubyte" in str(info.value)


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_load_mnist_count_mismatch(tmp_path, split):
    arrays = small_mnist(n_train=6, n_test=4)
    name = f"{split}-labels-idx1-ubyte"
    arrays[name] = arrays[name][:-1]
    write_mnist_folder(tmp_path, arrays)
    n_images = 6 if split == "train" else 4
    with pytest.raises(MNISTDataError) as info:
        load_mnist(tmp_path, verify=False)
    message = str(info.value)
    assert name in message
    assert f"{n_images} labels" in message and f"found {n_images - 1}" in message


@pytest.mark.parametrize(
    "images",
    [np.zeros((3, 28, 27), np.uint8), np.zeros((3, 784), np.uint8), np.zeros((3, 28, 28), np.int32)],
    ids=["28x27", "flat", "int32"],
)
def test_load_mnist_wrong_image_shape_or_type(tmp_path, images):
    arrays = small_mnist(n_train=3)
    arrays["train-images-idx3-ubyte"] = images
    write_mnist_folder(tmp_path, arrays)
    with pytest.raises(MNISTDataError, match=r"uint8 images of shape \(N, 28, 28\)"):
        load_mnist(tmp_path, verify=False)


# ------------------------------------------------------------------ the shipped data


def test_shipped_shapes_and_dtypes(mnist):
    assert tuple(mnist.train.images.shape) == (60_000, 28, 28)
    assert tuple(mnist.test.images.shape) == (10_000, 28, 28)
    assert tuple(mnist.train.labels.shape) == (60_000,)
    assert tuple(mnist.test.labels.shape) == (10_000,)
    for split in (mnist.train, mnist.test):
        assert split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64


def test_shipped_first_labels(mnist):
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_shipped_class_counts(mnist):
    counts = torch.bincount(mnist.train.labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_shipped_pixel_mean_and_std(mnist):
    # exact statistics from the histogram of pixel values (no 188 MB float copy)
    hist = torch.bincount(mnist.train.images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    n = hist.sum()
    mean = (hist * values).sum() / n
    std = ((hist * (values - mean) ** 2).sum() / n).sqrt()
    assert round(mean.item(), 4) == 0.1307 == data_mod.MEAN
    assert round(std.item(), 4) == 0.3081 == data_mod.STD


def test_sha256sums_file_matches_library():
    listed = {}
    for line in (SHIPPED / "SHA256SUMS.raw").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            listed[name.lstrip("*")] = digest
    assert listed == data_mod.RAW_SHA256


def test_shipped_files_hash_to_the_listed_digests():
    for name, digest in data_mod.RAW_SHA256.items():
        if "labels" in name:  # small files; the images are verified by load_mnist itself
            raw = gzip.decompress((SHIPPED / f"{name}.gz").read_bytes())
            assert hashlib.sha256(raw).hexdigest() == digest


def test_load_split_returns_fresh_copies():
    a = data_mod.load_split("test", SHIPPED)
    a.images[0] = 0
    a.labels[0] = 3
    b = data_mod.load_split("test", SHIPPED)
    assert b.labels[0].item() == 7
    assert b.images[0].sum().item() > 0


def test_load_split_unknown_name():
    with pytest.raises(ValueError, match="unknown split"):
        data_mod.load_split("validation", SHIPPED)


def test_mnist_data_env_var(tmp_path, monkeypatch):
    arrays = small_mnist(n_train=5, n_test=2, seed=3)
    write_mnist_folder(tmp_path, arrays)
    monkeypatch.setenv("MNIST_DATA", str(tmp_path))
    data = load_mnist(verify=False)
    assert len(data.train) == 5 and len(data.test) == 2


# ----------------------------------------------------------------------------- splits


def _image_keys(images: torch.Tensor) -> Counter:
    flat = images.reshape(len(images), -1).numpy()
    return Counter(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat)


def test_val_split_sizes_and_partition(mnist):
    data = load_mnist(SHIPPED, val_fraction=0.2)
    assert len(data.train) == 48_000 and len(data.val) == 12_000
    assert len(data.test) == 10_000
    # together, train and val hold exactly the 60,000 original images (as a multiset)
    assert _image_keys(data.train.images) + _image_keys(data.val.images) == _image_keys(mnist.train.images)
    assert torch.equal(
        torch.bincount(data.train.labels, minlength=10) + torch.bincount(data.val.labels, minlength=10),
        torch.bincount(mnist.train.labels, minlength=10),
    )


def test_split_train_val_indices_disjoint_and_complete():
    n = 60_000
    train, val = data_mod.split_train_val(_indexed_split(n), 0.2, seed=0)
    a, b = set(_ids(train.images).tolist()), set(_ids(val.images).tolist())
    assert len(a) == 48_000 and len(b) == 12_000
    assert a.isdisjoint(b)
    assert a | b == set(range(n))
    assert not torch.equal(_ids(val.images), torch.arange(12_000))  # shuffled, not the first 12,000
    assert torch.equal(train.labels, _ids(train.images) % 10)  # labels travel with their images


def test_val_split_is_deterministic_and_seeded():
    first = load_mnist(SHIPPED, val_fraction=0.2)
    again = load_mnist(SHIPPED, val_fraction=0.2)
    other = load_mnist(SHIPPED, val_fraction=0.2, split_seed=1)
    assert torch.equal(first.val.images, again.val.images)
    assert torch.equal(first.val.labels, again.val.labels)
    assert torch.equal(first.train.labels, again.train.labels)
    assert not torch.equal(first.val.images, other.val.images)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_val_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        load_mnist(SHIPPED, val_fraction=fraction)


# ----------------------------------------------------------------------- DeviceLoader


def _indexed_split(n: int) -> Split:
    """Image i holds i in base 256 in its first three pixels, and label i % 10."""
    i = torch.arange(n)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 0, 0], images[:, 0, 1], images[:, 0, 2] = i % 256, i // 256 % 256, i // 65536
    return Split(images, i % 10)


def _ids(images: torch.Tensor) -> torch.Tensor:
    """The index written into each image by _indexed_split (uint8, or on the [0, 1] scale)."""
    pixels = images.reshape(len(images), -1)[:, :3]
    if pixels.is_floating_point():
        pixels = (pixels * 255).round()
    pixels = pixels.long()
    return pixels[:, 0] + 256 * pixels[:, 1] + 65536 * pixels[:, 2]


def _loader(n: int, batch_size: int, **kwargs) -> DeviceLoader:
    """A loader over _indexed_split(n): it yields [0, 1] pixels, so the indices can be read back."""
    return DeviceLoader(_indexed_split(n), batch_size, **kwargs)


def _epoch(loader) -> list[torch.Tensor]:
    """The indices of the samples of one epoch, batch by batch (checking each label travels with its image)."""
    batches = []
    for x, y in loader:
        ids = _ids(x)
        assert torch.equal(y, ids % 10)
        batches.append(ids)
    return batches


def test_loader_visits_every_index_once_per_epoch():
    n, b = 103, 10
    loader = _loader(n, b, seed=0)
    assert len(loader) == 11
    orders = []
    for _ in range(3):
        batches = list(loader)
        assert [len(y) for _, y in batches] == [10] * 10 + [3]
        for x, y in batches:
            assert x.shape == (len(y), 1, 28, 28) and x.dtype == torch.float32
            assert torch.equal(y, _ids(x) % 10)  # images travel with their labels
        order = torch.cat([_ids(x) for x, _ in batches])
        assert sorted(order.tolist()) == list(range(n))
        orders.append(order)
    assert not torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[1], orders[2])
    assert not torch.equal(orders[0], torch.arange(n))


def test_loader_same_seed_same_order_other_seed_other_order():
    a, b, c = (_loader(103, 10, seed=s) for s in (7, 7, 8))
    for _ in range(2):
        ea, eb, ec = torch.cat(_epoch(a)), torch.cat(_epoch(b)), torch.cat(_epoch(c))
        assert torch.equal(ea, eb)
        assert not torch.equal(ea, ec)


def test_loader_without_shuffle_keeps_order():
    loader = _loader(25, 10, shuffle=False)
    assert [y.tolist() for y in _epoch(loader)] == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_loader_drop_last():
    loader = _loader(103, 10, drop_last=True, seed=1)
    assert len(loader) == 10
    batches = _epoch(loader)
    assert [len(y) for y in batches] == [10] * 10
    seen = torch.cat(batches).tolist()
    assert len(set(seen)) == 100 and set(seen) <= set(range(103))


@pytest.mark.parametrize("batch_size", [0, -5])
def test_loader_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(_indexed_split(10), batch_size)


def test_scale_pixels_dtype_shape_and_range(mnist):
    x = scale_pixels(mnist.train.images)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (60_000, 1, 28, 28)
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    assert round(x.mean().item(), 4) == data_mod.MEAN and round(x.std().item(), 4) == data_mod.STD


@pytest.fixture(scope="session")
def torchvision_folder(tmp_path_factory):
    return data_mod.torchvision_root(tmp_path_factory.mktemp("torchvision"))


def test_scale_pixels_then_standardize_bitwise_equals_torchvision(mnist, torchvision_folder):
    """[0, 1] pixels (ours: scale_pixels; torchvision: ToTensor) standardised by the model's first layer
    (Standardize; torchvision: Normalize) give bitwise the conventional pipeline's tensors."""
    from torchvision import datasets, transforms

    from mnist_lib.models import Standardize

    pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(str(torchvision_folder), train=False, download=False, transform=pipeline)
    assert len(ds) == 10_000
    reference = torch.stack([ds[i][0] for i in range(100)])
    labels = torch.tensor([ds[i][1] for i in range(100)])
    ours = Standardize(0.1307, 0.3081)(scale_pixels(mnist.test.images[:100]))
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    assert torch.equal(ours, reference)  # bitwise, not just close
    assert torch.equal(labels, mnist.test.labels[:100])
    # and the loader serves the same [0, 1] pixels
    x, y = next(iter(DeviceLoader(mnist.test.head(100), 100, shuffle=False)))
    assert torch.equal(Standardize(0.1307, 0.3081)(x), reference) and torch.equal(y, labels)


# ------------------------------------------- every way the data can be wrong: one error


def _break(root, case):
    """Make the folder ``root`` hold the four (small, hand-made) files, broken as ``case`` says."""
    arrays = small_mnist()
    labels = "train-labels-idx1-ubyte"
    if case == "missing-folder":
        return root / "nowhere", None
    if case == "count-mismatch":
        arrays[labels] = arrays[labels][:-1]
    if case == "label-out-of-range":
        arrays[labels][0] = 10
    write_mnist_folder(root, arrays)
    path = root / f"{labels}.gz"
    raw = gzip.decompress(path.read_bytes())
    if case == "missing-file":
        path.unlink()
    elif case == "truncated-gz":
        path.write_bytes(path.read_bytes()[:-9])
    elif case == "not-gzip":
        path.write_bytes(raw)
    elif case == "wrong-magic":
        path.write_bytes(gzip.compress(b"\x01\x08\x00\x00" + raw[4:]))  # byte-swapped: little-endian
    return root, path


FAILURES = {  # case: (verify, words the message must hold)
    "missing-folder": (False, ["expected a folder holding the four MNIST files", "found no such folder", "Fix: pass an existing folder"]),
    "missing-file": (False, ["expected the file to exist", "found no such file", "Fix: restore the original files"]),
    "truncated-gz": (False, ["expected a complete gzip file", "found a truncated or damaged one", "Fix: restore"]),
    "not-gzip": (False, ["expected gzip data", "found bytes starting 00 00 08 01", "Fix: if it is an uncompressed IDX file, remove .gz"]),
    "wrong-magic": (False, ["expected an IDX magic number 00 00 <type> <ndim>", "found 01 08 00 00", "Fix: restore"]),
    "count-mismatch": (False, ["expected 6 labels, one per image", "found 5", "Fix: restore"]),
    "label-out-of-range": (False, ["expected labels 0-9", "found label 10", "Fix: restore"]),
    "checksum": (True, ["expected uncompressed SHA-256 ", "the bytes differ from the original MNIST", "verify=False"]),
}


@pytest.mark.parametrize("case", FAILURES)
def test_every_data_failure_is_one_clear_error(tmp_path, case):
    verify, words = FAILURES[case]
    root, path = _break(tmp_path, case)
    with pytest.raises(MNISTDataError) as info:
        load_mnist(root, verify=verify)
    e = info.value
    assert e.file and e.expected and e.found and e.fix
    assert str(e) == f"{e.file}: expected {e.expected}, found {e.found}. Fix: {e.fix}."
    if path is not None:
        assert e.file.endswith(("-idx1-ubyte.gz", "-idx3-ubyte.gz"))
    for word in words:
        assert word in str(e), str(e)


def test_missing_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "gone"))
    with pytest.raises(MNISTDataError, match=r"\(named by \$MNIST_DATA\), found no such folder. Fix: set \$MNIST_DATA"):
        load_mnist()


def test_root_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MNISTDataError, match="found a file, not a folder"):
        load_mnist(tmp_path / "file")


@pytest.mark.parametrize("raw, words", [
    (b"\x00\x00\x08\x21" + bytes(4 * 33), ["at most 32 dimensions", "found 33"]),
    (_header((0, 2**32 - 1, 2**32 - 1, 2**32 - 1)), ["dimensions an array can have", "0x4294967295x"]),
], ids=["too-many-dimensions", "zero-size-but-absurd"])
def test_parse_idx_shapes_numpy_cannot_hold(raw, words):
    with pytest.raises(MNISTDataError) as info:
        parse_idx(raw, "f")
    for word in words:
        assert word in str(info.value)


def test_empty_gz_file(tmp_path):
    path = tmp_path / "empty.gz"
    path.write_bytes(b"")
    with pytest.raises(MNISTDataError, match="expected gzip data .* found an empty file"):
        read_idx_file(path)


# ------------------------------------------------ unreadable folders, bombs, stale caches


def _deny_access(monkeypatch, folder: Path) -> None:
    """Act as a folder of mode 000 does for a non-root user: its entries can be neither looked up nor opened.

    (Root reads such folders anyway, so the test patches the two system calls instead.)
    """
    real_stat, real_open = os.stat, io.open

    def denied(path) -> bool:
        return not isinstance(path, int) and Path(os.fsdecode(path)).parent == folder

    def stat(path, *args, **kwargs):
        if denied(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_stat(path, *args, **kwargs)

    def open_(file, *args, **kwargs):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)


def test_folder_without_permission_is_a_data_error(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path, small_mnist())
    _deny_access(monkeypatch, tmp_path)
    with pytest.raises(MNISTDataError) as info:
        load_mnist(tmp_path, verify=False)
    message = str(info.value)
    assert "permission" in message.lower() and str(tmp_path) in message and "chmod" in message


def test_file_without_permission_is_a_data_error(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path, small_mnist())
    real_open = io.open
    locked = tmp_path / "train-labels-idx1-ubyte.gz"

    def open_(file, *args, **kwargs):
        if not isinstance(file, int) and Path(os.fsdecode(file)) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)
    with pytest.raises(MNISTDataError) as info:
        load_mnist(tmp_path, verify=False)
    assert info.value.file == str(locked)
    assert "permission" in info.value.expected and "chmod" in info.value.fix


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may read a folder of mode 000")
def test_folder_of_mode_000(tmp_path):
    folder = write_mnist_folder(tmp_path / "locked", small_mnist())
    folder.chmod(0)
    try:
        with pytest.raises(MNISTDataError, match="permission"):
            load_mnist(folder, verify=False)
    finally:
        folder.chmod(0o755)


def _peak_bytes(function) -> tuple[int, BaseException | None]:
    """Peak memory traced while ``function()`` runs, and the exception it raised."""
    tracemalloc.start()
    try:
        function()
        error = None
    except BaseException as e:  # noqa: BLE001 - handed back to the test
        error = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error


BOMB_BYTES = 64 << 20  # 64 MiB of zeros: about 64 KB once gzipped


@pytest.mark.parametrize("header", [
    bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 10, 28, 28),  # a valid header for 10 images
    b"",  # zeros only, as in the 2 GB bomb: not even a valid header
], ids=["valid-header", "zeros-only"])
def test_gzip_bomb_is_refused_without_decompressing_it(tmp_path, header):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header + bytes(10 * 28 * 28))
        for _ in range(BOMB_BYTES >> 20):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < BOMB_BYTES // 100
    peak, error = _peak_bytes(lambda: read_idx_file(path, verify=False))
    assert isinstance(error, MNISTDataError), error
    assert str(error).startswith(str(path))
    assert ("trailing bytes" if header else "magic number") in str(error)
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB while reading a bomb"


def test_plain_file_is_read_no_further_than_its_header_declares(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8)) + bytes(BOMB_BYTES))
    peak, error = _peak_bytes(lambda: read_idx_file(path, verify=False))
    assert isinstance(error, MNISTDataError) and "trailing bytes" in str(error), error
    assert peak < 8 << 20


def test_load_mnist_sees_files_changed_on_disk(tmp_path):
    write_mnist_folder(tmp_path, small_mnist(seed=1))
    assert len(load_mnist(tmp_path, verify=False).train) == 6
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(b"garbage")  # written over the file: must not still "load"
    with pytest.raises(MNISTDataError, match="gzip"):
        load_mnist(tmp_path, verify=False)


def test_load_mnist_sees_same_size_changes(tmp_path):
    arrays = small_mnist(seed=2)
    write_mnist_folder(tmp_path, arrays, gz=False)
    first = load_mnist(tmp_path, verify=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    stamp = path.stat().st_mtime_ns
    arrays["t10k-labels-idx1-ubyte"] = (arrays["t10k-labels-idx1-ubyte"] + 1) % 10
    write_idx(path, arrays["t10k-labels-idx1-ubyte"])  # same size, maybe the same clock tick
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))  # as a later edit would
    again = load_mnist(tmp_path, verify=False)
    assert torch.equal(again.test.labels, (first.test.labels + 1) % 10)


def test_truncated_file_is_reported_as_truncated_even_with_checksums(tmp_path):
    raw = gzip.decompress((SHIPPED / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw[:-100]))  # a valid gzip of a file cut short
    with pytest.raises(MNISTDataError) as info:
        read_idx_file(path, verify=True)
    assert "truncated" in info.value.found and "differ" not in str(info.value)


def test_checksum_error_says_how_to_skip_the_check_from_the_command_line(tmp_path):
    write_mnist_folder(tmp_path, small_mnist())
    with pytest.raises(MNISTDataError) as info:
        load_mnist(tmp_path)
    assert "verify=False" in info.value.fix and "--no-verify" in info.value.fix


# ------------------------------------------------------------------- Split's contract


def test_split_accepts_uint8_images_and_makes_labels_int64():
    split = Split(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 9, 4], dtype=torch.uint8))
    assert split.labels.dtype == torch.int64 and split.labels.tolist() == [0, 9, 4]
    assert len(Split(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))) == 0


@pytest.mark.parametrize("images, labels, words", [
    (torch.rand(3, 28, 28), torch.zeros(3, dtype=torch.long), ["uint8", "float32", "255"]),
    (torch.zeros(3, 784, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["(N, 28, 28)", "(3, 784)"]),
    (torch.zeros(3, 32, 32, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["(N, 28, 28)", "(3, 32, 32)"]),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), ["one label per image", "3 images", "4 labels"]),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(3, 1, dtype=torch.long), ["labels of shape (N,)", "(3, 1)"]),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 11, 2]), ["labels 0-9", "11"]),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, -1, 2]), ["labels 0-9", "-1"]),
    (torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0.0, 1.0, 2.0]), ["integer labels", "float32"]),
], ids=["float-images", "flat-images", "32x32", "count-mismatch", "2d-labels", "label-11", "label-negative", "float-labels"])
def test_split_refuses_what_training_would_misread(images, labels, words):
    with pytest.raises(ValueError) as info:
        Split(images, labels)
    for word in words:
        assert word in str(info.value), str(info.value)
