"""Device placement, checked without a GPU: the library's device-side helpers run on PyTorch's ``meta`` device.

A meta tensor has a shape and a dtype but no data. So on ``meta`` a tensor made on the
CPU by mistake and then mixed in raises (as it would on a GPU), and so does any read of
the values on the host (``.item()``, ``.tolist()``, NumPy) that a GPU would answer only
after a sync. Two more tools make the checks sharper:

- :class:`Traffic` records every tensor built from host data onto the device (a copy
  from the host: a sync on CUDA) and every host result computed from device tensors
  without an explicit ``.cpu()``, which ``meta`` would otherwise allow silently;
- the ``meta_as_gpu`` fixture lets meta data reach the host through an explicit
  ``.cpu()`` or ``.to("cpu")`` (as zeros, the stand-in for the GPU's values), the way
  GPU data does, for the functions that must return host values (tables, figures).
"""

from __future__ import annotations


import matplotlib
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from mnist_lib.book import committee, plots, robustness  # noqa: E402
from mnist_lib.augment import ElasticAffine, RandomAffine, gaussian_blur, rotate_images, shift_images  # noqa: E402
from mnist_lib.data import DeviceLoader, Split  # noqa: E402

META = torch.device("meta")
FROM_DATA = (torch.tensor, torch.as_tensor, torch.asarray)


def tensors(*objects) -> list[torch.Tensor]:
    """The tensors among ``objects``, looking inside lists, tuples and dicts."""
    found = []
    for o in objects:
        if isinstance(o, torch.Tensor):
            found.append(o)
        elif isinstance(o, (list, tuple, dict)):
            found += tensors(*(o.values() if isinstance(o, dict) else o))
    return found


class Traffic(TorchFunctionMode):
    """Records the calls that move data between the host and a device without saying so.

    ``uploads``: host data put on a device, i.e. a tensor made from Python or NumPy data
    with a ``device=`` (``torch.tensor``, ``as_tensor``, ``asarray``, ``new_tensor``) or a
    call that takes a CPU tensor and returns one on a device (``.to(device)``, indexing
    with a CPU index, ...): on CUDA, a copy the host waits for.
    ``downloads``: a host tensor computed from device tensors other than by ``.cpu()`` or
    ``.to()`` (e.g. a CPU tensor indexed by device indices): on a GPU, an error.
    """

    def __init__(self):
        super().__init__()
        self.uploads: list[str] = []
        self.downloads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t.device.type for t in tensors(args, kwargs)]
        outputs = [t.device.type for t in tensors(out)]
        name = getattr(func, "__name__", str(func))
        data = args[1] if func is torch.Tensor.new_tensor else args[0] if func in FROM_DATA else None
        if ((data is not None and not isinstance(data, torch.Tensor)) or "cpu" in inputs) and set(outputs) - {"cpu"}:
            self.uploads.append(name)
        if set(inputs) - {"cpu"} and "cpu" in outputs and func not in (torch.Tensor.cpu, torch.Tensor.to):
            self.downloads.append(name)
        return out


@pytest.fixture
def meta_as_gpu(monkeypatch):
    """Meta tensors behave like GPU tensors whose values reach the host only by ``.cpu()`` or ``.to``.

    The copy arrives as zeros of the same shape and dtype (meta holds no values). NumPy
    conversion, ``.item()``, ``.tolist()`` and mixing with CPU tensors still raise.
    """
    real_cpu, real_to = torch.Tensor.cpu, torch.Tensor.to

    def stand_in(t: torch.Tensor) -> torch.Tensor:
        return torch.zeros(t.shape, dtype=t.dtype)

    def cpu(self, *args, **kwargs):
        return stand_in(self) if self.is_meta else real_cpu(self, *args, **kwargs)

    def to(self, *args, **kwargs):
        try:
            return real_to(self, *args, **kwargs)
        except NotImplementedError:  # "Cannot copy out of meta tensor"
            if not self.is_meta:
                raise
            return real_to(stand_in(self), *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", cpu)
    monkeypatch.setattr(torch.Tensor, "to", to)


def meta_images(n: int = 8) -> torch.Tensor:
    return torch.empty(n, 28, 28, dtype=torch.uint8, device=META)


def meta_labels(n: int) -> torch.Tensor:
    return torch.empty(n, dtype=torch.long, device=META)


@pytest.fixture
def meta_split() -> Split:
    """A real Split on meta: its label check skips meta tensors, which hold no values."""
    return Split(meta_images(8), meta_labels(8))


# --- Augmentation: every batch stays on its device, and no batch waits for a copy from the host ---


@pytest.mark.parametrize("augment", [
    RandomAffine(degrees=10, scale=0.1, shift=2),
    ElasticAffine(degrees=10, scale=0.1, shift=2, alpha=34.0, sigma=5.0),
    ElasticAffine(alpha=8.0, sigma=1.5),
    lambda x: gaussian_blur(x, 4.0),
], ids=["affine", "elastic", "elastic-small", "blur"])
def test_training_augmentations_stay_on_the_device_without_host_copies(augment):
    x = torch.empty(16, 1, 28, 28, device=META)
    with Traffic() as traffic:
        out = augment(x)
    assert out.device == META and out.shape == x.shape and out.dtype == x.dtype
    assert traffic.uploads == []  # e.g. torch.tensor([w, h], device=...) would be a GPU sync every batch


def test_whole_pixel_shifts_and_rotations_stay_on_the_device():
    images = meta_images()
    with Traffic() as traffic:
        moved, turned = shift_images(images, 3, -2), rotate_images(images, 12.5)
    assert traffic.uploads == []  # one angle for all: filled on the device
    for out in (moved, turned, shift_images(images, 30, 0), rotate_images(images, torch.linspace(-30, 30, 8))):
        assert out.device == META and out.shape == images.shape and out.dtype == torch.uint8


def test_committee_views_stay_on_the_device():
    images = meta_images()
    for v in committee.TTA_VIEWS:
        out = committee.view(images, *v)
        assert out.device == META and out.shape == images.shape and out.dtype == torch.uint8


def test_device_loader_batches_stay_on_the_device():
    split = Split(torch.zeros(10, 28, 28, dtype=torch.uint8), torch.zeros(10, dtype=torch.long))
    loader = DeviceLoader(split, 4, device=META)
    with Traffic() as traffic:
        batches = list(loader)
    assert len(traffic.uploads) <= 1  # at most the epoch's shuffled order: nothing per batch
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert all(x.device == META and y.device == META and x.shape[1:] == (1, 28, 28) for x, y in batches)


# --- Robustness and committees: moved test sets on the device, tables read back once ---


def test_moved_test_sets_stay_on_the_device(meta_split):
    split = meta_split
    for moved in (robustness.shifted(split, 2), robustness.rotated(split, 10)):
        assert moved.images.device == META and moved.images.shape == split.images.shape
        assert moved.labels is split.labels


def test_robustness_measures_moved_sets_on_their_device(monkeypatch, meta_as_gpu, meta_split):
    """A test set on the GPU: each moved copy is made there, and the host predictions meet the labels."""
    seen = []

    def predict(model, images, *, device=None):  # like mnist_lib.train.predict: host output
        seen.append(images.device)
        return torch.zeros(len(images), dtype=torch.long)

    monkeypatch.setattr(robustness, "predict", predict)
    frame = robustness.robustness({"a": nn.Identity(), "b": nn.Identity()},
                                  meta_split, shifts=(0, 2), angles=(0, 10, 20))
    assert seen == [META] * 10
    assert len(frame) == 10 and (frame["test_acc"] == 1.0).all()  # zeros predicted, zeros arrived as labels


def test_committee_probabilities_stay_on_the_device(monkeypatch):
    """Every view is made on the images' device and handed to the members there; nothing is read back."""
    seen = []

    def predict_proba(model, images, *, device=None):  # a predict_proba that stays on the device
        seen.append((images.device, images.dtype))
        return torch.empty(len(images), 10, device=images.device)

    monkeypatch.setattr(committee, "predict_proba", predict_proba)
    members = [nn.Identity(), nn.Identity()]
    probs = committee.member_probabilities(members, meta_images(), views=committee.TTA_VIEWS)
    assert probs.device == META and probs.shape == (2, len(committee.TTA_VIEWS), 8, 10)
    assert seen == [(META, torch.uint8)] * 2 * len(committee.TTA_VIEWS)
    averaged = committee.committee_proba(members, meta_images(), views=committee.TTA_VIEWS)
    assert averaged.device == META and averaged.shape == (8, 10)


def test_committee_sizes_compares_host_probabilities_with_device_labels(meta_as_gpu):
    probabilities = torch.zeros(3, 8, 10)
    probabilities[..., 0] = 1  # every member says 0
    sizes = committee.committee_sizes(probabilities, meta_labels(8))
    assert sizes.to_dict("list") == {"members": [1, 2, 3], "test_acc": [1.0] * 3, "errors": [0] * 3}


def test_committee_sizes_reads_the_device_only_for_the_finished_table():
    """All on the device: every committee is scored there, then one read of the host fails on meta."""
    argmaxes = []

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            argmaxes.extend([func] if func is torch.Tensor.argmax else [])
            return func(*args, **(kwargs or {}))

    with Count(), pytest.raises(NotImplementedError, match="meta"):
        committee.committee_sizes(torch.empty(4, 8, 10, device=META), meta_labels(8))
    assert len(argmaxes) == 4


# --- Figures: every plot helper brings device tensors to the host itself ---


@pytest.mark.parametrize("draw", [
    lambda: plots.digit_grid(meta_images(4), ["a", "b", "c", "d"], ncols=4),
    lambda: plots.digit_grid(torch.empty(3, 28, 28, device=META)),
    lambda: plots.class_balance(meta_labels(50)),
    lambda: plots.confusion(meta_labels(30), meta_labels(30)),
    lambda: plots.reconstructions(meta_images(3), {"autoencoder": torch.empty(3, 28, 28, device=META)}),
    lambda: plots.code_scatter(torch.empty(40, 2, device=META), meta_labels(40)),
    lambda: plots.code_scatter(torch.empty(40, 8, device=META), meta_labels(40)),
], ids=["digit_grid", "digit_grid-float", "class_balance", "confusion",
        "reconstructions", "code_scatter", "code_scatter-pca"])
def test_plot_helpers_accept_device_tensors(draw, meta_as_gpu):
    with Traffic() as traffic:
        fig = draw()
    assert fig.axes and traffic.downloads == []  # e.g. device indices into a CPU matrix: an error on a GPU
    plt.close(fig)


def test_plot_helpers_accept_tensors_that_require_grad():
    codes = torch.rand(20, 3, requires_grad=True) * 2  # e.g. an encoder's output outside no_grad
    fig = plots.code_scatter(codes, torch.arange(20) % 10)
    plt.close(fig)
    decoded = torch.rand(2, 28, 28, requires_grad=True)
    fig = plots.reconstructions(torch.zeros(2, 28, 28, dtype=torch.uint8), {"net": decoded})
    plt.close(fig)


def test_meta_tools_catch_what_they_claim():
    """The checks above can fail: each tool flags the mistake it is meant to catch."""
    with Traffic() as traffic:
        torch.empty(3, device=META) / torch.tensor([28.0, 28.0, 28.0], device=META)
        torch.zeros(3).to(META)
        torch.zeros(3).index_put_((torch.zeros(2, dtype=torch.long, device=META),), torch.ones(2))
    assert traffic.uploads == ["tensor", "to"] and traffic.downloads == ["index_put_"]
    with pytest.raises(RuntimeError):
        torch.empty(3, device=META) + torch.zeros(3)  # a CPU tensor mixed in
    with pytest.raises(TypeError):
        torch.empty(3, device=META).numpy()  # a host read without .cpu()


def test_meta_as_gpu_lets_only_explicit_copies_reach_the_host(meta_as_gpu):
    x = torch.empty(2, 3, dtype=torch.uint8, device=META)
    assert torch.equal(x.cpu(), torch.zeros(2, 3, dtype=torch.uint8))
    assert torch.equal(x.to("cpu", torch.float32), torch.zeros(2, 3))
    with pytest.raises(TypeError):
        x.numpy()
    with pytest.raises(NotImplementedError):
        x.tolist()
