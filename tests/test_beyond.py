"""Chapter 7's pieces: elastic distortion, the BN-CNN, moved test sets, committees, shipped weights."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from mnist_lib.augment import ElasticAffine, RandomAffine, gaussian_blur
from mnist_lib.book.committee import TTA_VIEWS, committee_proba, committee_sizes, member_probabilities, view
from mnist_lib.data import Split, scale_pixels
from mnist_lib.models import BNCNN, count_parameters
from mnist_lib.book.robustness import robustness, rotated, shifted
from mnist_lib.train import fit, predict_proba
from mnist_lib.saved import ModelError, load_model, read_sidecar, save_shipped


def test_gaussian_blur_keeps_a_constant_inside_and_smooths_noise():
    flat = gaussian_blur(torch.ones(1, 1, 28, 28), sigma=2.0)
    assert torch.allclose(flat[0, 0, 6:-6, 6:-6], torch.ones(16, 16), atol=1e-6)  # weights sum to 1
    noise = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    smooth = gaussian_blur(noise, sigma=4.0)
    assert smooth.std() < noise.std() / 4  # averaging ~ (2 sqrt(pi) sigma)^2 values shrinks the noise


def test_elastic_without_displacement_is_the_affine_map(mnist):
    x = scale_pixels(mnist.test.images[:8])
    torch.manual_seed(3)
    affine = RandomAffine(degrees=10, scale=0.1, shift=2)(x)
    torch.manual_seed(3)
    elastic = ElasticAffine(degrees=10, scale=0.1, shift=2, alpha=0.0)(x)
    assert torch.allclose(affine, elastic, atol=1e-5)


def test_elastic_displacements_are_smooth_and_a_few_pixels(mnist):
    x = scale_pixels(mnist.test.images[:16])
    torch.manual_seed(0)
    aug = ElasticAffine(degrees=0, scale=0, shift=0, alpha=34, sigma=4)
    identity = torch.nn.functional.affine_grid(torch.eye(2, 3).expand(16, 2, 3), list(x.shape), align_corners=False)
    pixels = (aug.grid(x) - identity) * 14  # [-1, 1] units -> pixels of a 28-pixel frame
    assert 0.3 < pixels.abs().mean() < 3 and pixels.abs().max() < 8
    # neighbours move almost together: the field is smooth, not per-pixel jitter
    assert (pixels[:, 1:] - pixels[:, :-1]).abs().mean() < pixels.abs().mean() / 3
    out = aug(x)
    assert out.shape == x.shape
    assert torch.allclose(out[:, :, 0, 0], x.min().expand(16, 1), atol=1e-5)  # background stays background


def test_elastic_field_is_smoothed_uniform_noise_in_pixels(mnist):
    """The displacement field built independently: the same draws, blurred with NumPy, scaled by alpha pixels."""
    n, sigma, alpha = 4, 4.0, 34.0
    x = scale_pixels(mnist.test.images[:n])
    torch.manual_seed(5)
    grid = ElasticAffine(degrees=0, scale=0, shift=0, alpha=alpha, sigma=sigma).grid(x).double().numpy()
    torch.manual_seed(5)
    torch.rand(n), torch.rand(n), torch.rand(n, 2)  # RandomAffine's angles, zooms and shifts come first
    noise = (torch.rand(2 * n, 28, 28) * 2 - 1).double().numpy()  # then one field per coordinate
    radius = math.ceil(3 * sigma)
    kernel = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    kernel /= kernel.sum()

    def blur_rows(a):  # zero padding: the full convolution, cut back to the middle
        return np.apply_along_axis(lambda row: np.convolve(row, kernel)[radius:radius + 28], -1, a)

    pixels = blur_rows(blur_rows(noise).swapaxes(1, 2)).swapaxes(1, 2).reshape(n, 2, 28, 28) * alpha
    centres = (2 * np.arange(28) + 1) / 28 - 1  # pixel centres in grid_sample's [-1, 1] units
    assert np.allclose(grid[..., 0], centres[None, None, :] + pixels[:, 0] * 2 / 28, atol=1e-5)  # x
    assert np.allclose(grid[..., 1], centres[None, :, None] + pixels[:, 1] * 2 / 28, atol=1e-5)  # y


def test_bncnn_shapes_and_parameter_count():
    for padding, size in ((0, 4), (1, 7)):
        model = BNCNN(dense=128, padding=padding)
        assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)
        convs = (9 * 32 + 2 * 32) + (9 * 32 * 64 + 2 * 64) + (9 * 64 * 64 + 2 * 64)  # weights + BN scale/shift
        dense = (64 * size * size * 128 + 2 * 128) + (128 * 10 + 10)
        assert count_parameters(model) == convs + dense


def test_bncnn_learns_a_small_set(mnist):
    torch.manual_seed(0)
    model = BNCNN()
    small = mnist.train.head(256)
    history = fit(model, small, batch_size=32, epochs=3, lr=3e-3, schedule="onecycle", progress=False)
    assert history.final("train_acc") > 0.5


def test_shifted_moves_every_digit_by_whole_pixels(mnist):
    split = mnist.test.head(64)
    assert torch.equal(shifted(split, 0).images, split.images)
    moved = shifted(split, 2, seed=1)
    assert torch.equal(moved.labels, split.labels)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    for before, after in zip(split.images.float(), moved.images.float()):
        if after.sum() < before.sum():  # ink pushed out of the frame: skip
            continue
        dx = (after * xs).sum() / after.sum() - (before * xs).sum() / before.sum()
        dy = (after * ys).sum() / after.sum() - (before * ys).sum() / before.sum()
        assert sorted([abs(round(dx.item())), abs(round(dy.item()))]) == [0, 2]  # one axis, two pixels
    assert torch.equal(shifted(split, 2, seed=1).images, moved.images)  # the same moves for every model


def test_rotated_turns_about_the_centre(mnist):
    split = mnist.test.head(32)
    assert torch.equal(rotated(split, 0).images, split.images)
    bar = torch.zeros(1, 28, 28, dtype=torch.uint8)
    bar[0, 4:24, 13:15] = 255  # a vertical stroke
    turned = rotated(Split(bar, torch.zeros(1, dtype=torch.long)), 90).images[0]
    assert turned[13:15, 4:24].float().mean() > 200 and turned[4:24, 13:15].float().mean() < 80


def test_robustness_table_has_one_row_per_model_and_case(mnist):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    frame = robustness({"linear": model}, mnist.test.head(50), shifts=(0, 3), angles=(0, 10))
    assert list(frame.columns) == ["model", "transform", "amount", "test_acc"]
    assert len(frame) == 4 and frame["test_acc"].between(0, 1).all()
    # shift 0 and rotation 0 are the unchanged test set
    assert frame.loc[0, "test_acc"] == frame.loc[2, "test_acc"]


def test_committee_averages_probabilities(mnist):
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Flatten(), nn.Linear(784, 10)) for _ in range(3)]
    images = mnist.test.images[:20]
    expected = sum(predict_proba(m, images) for m in members) / 3
    assert torch.allclose(committee_proba(members, images), expected, atol=1e-6)
    sizes = committee_sizes(member_probabilities(members, images)[:, 0], mnist.test.labels[:20])
    assert list(sizes["members"]) == [1, 2, 3]
    single = predict_proba(members[0], images).argmax(1).eq(mnist.test.labels[:20]).float().mean().item()
    assert math.isclose(sizes["test_acc"].iloc[0], single)
    assert (sizes["errors"] == ((1 - sizes["test_acc"]) * 20).round().astype(int)).all()
    with pytest.raises(ValueError, match="at least one member"):
        committee_proba([], images)


def test_test_time_augmentation_averages_over_moved_copies(mnist):
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Flatten(), nn.Linear(784, 10)) for _ in range(2)]
    images = mnist.test.images[:8]
    probs = member_probabilities(members, images, views=TTA_VIEWS)
    assert probs.shape == (2, len(TTA_VIEWS), 8, 10)
    assert torch.equal(view(images, 0, 0, 0), images)
    turned = view(images, 1, 0, 5.0)
    assert turned.dtype == torch.uint8 and not torch.equal(turned, images)
    expected = sum(predict_proba(members[1], view(images, *v)) for v in TTA_VIEWS) / len(TTA_VIEWS)
    assert torch.allclose(probs[1].mean(0), expected, atol=1e-6)
    assert torch.allclose(committee_proba(members, images, views=TTA_VIEWS), probs.mean((0, 1)), atol=1e-6)


def test_saved_committee_loads_back_with_the_same_answers(tmp_path, mnist):
    torch.manual_seed(0)
    members = [BNCNN().eval() for _ in range(2)]
    scores = {"acc": 0.5, "loss": None, "images": 10}
    sidecar = save_shipped("tiny", members, {"class": "BNCNN", "kwargs": {}}, scores, {"how": "test"},
                           title="two untrained BN-CNNs", folder=tmp_path)
    assert [m["weights"] for m in sidecar["members"]] == ["tiny-1.pt", "tiny-2.pt"]
    assert json.loads((tmp_path / "tiny.json").read_text()) == sidecar
    shipped = load_model(tmp_path / "tiny.json")
    images = mnist.test.images[:16]
    # The shipped model always runs on the CPU, so the reference does too: on a GPU machine
    # committee_proba would pick CUDA, whose TF32 convolutions differ by ~1e-3, not 1e-6.
    expected = committee_proba(members, images, device="cpu")
    assert torch.allclose(predict_proba(shipped, images, device="cpu"), expected, atol=1e-6)
    (tmp_path / "tiny-2.pt").write_bytes(b"damaged")
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(tmp_path / "tiny.json")


def test_the_tutorial_pipeline_gets_the_same_distortions():
    from torchvision import transforms

    from mnist_lib.bench.baseline import conventional_augmentation

    affine, elastic = conventional_augmentation(ElasticAffine(degrees=10, scale=0.1, shift=2, alpha=34.0, sigma=5.0))
    assert isinstance(affine, transforms.RandomAffine) and isinstance(elastic, transforms.ElasticTransform)
    assert elastic.alpha == [34.0, 34.0] and elastic.sigma == [5.0, 5.0]


def test_the_shipped_committee_loads_and_reads_digits(mnist):
    committee = load_model("bncnn_committee")  # checks every member's SHA-256 against the sidecar
    sidecar = read_sidecar("bncnn_committee")
    assert len(committee.members) == len(sidecar["members"]) >= 2
    assert sidecar["test_acc"] > 0.99  # what chapter 7 measured on all 10,000 test images
    images, labels = mnist.test.images[:300], mnist.test.labels[:300]
    accuracy = predict_proba(committee, images, device="cpu").argmax(1).eq(labels).float().mean().item()
    assert accuracy > 0.98


def test_the_tutorial_pipeline_distorts_training_digits_only(tmp_path):
    from mnist_lib.bench.baseline import loaders
    from mnist_lib.data import load_mnist, torchvision_root
    from mnist_lib.experiments import LENET5_IMPROVED

    root = torchvision_root(tmp_path)
    train, test, _ = loaders(root, LENET5_IMPROVED, torch.device("cpu"), workers=0)
    plain = scale_pixels(load_mnist().test.images[:5])
    torch.manual_seed(0)
    first, second = (torch.stack([test.dataset[i][0] for i in range(5)]) for _ in range(2))
    assert torch.allclose(first, plain, atol=1e-6) and torch.equal(first, second)  # the test digits as they are
    train_once, train_again = (torch.stack([train.dataset[i][0] for i in range(5)]) for _ in range(2))
    assert not torch.equal(train_once, train_again)  # training digits distorted afresh each time
