"""Guards: each test here fails if one switch is silently ignored or one formula goes wrong.

They pin behaviour that other tests only touch in passing: ``fit`` applying ``augment``,
a committee averaging its members' probabilities, ``rotated`` turning each digit its own
way, ``RandomAffine`` scaling, and ``predict`` using the input scale the model was
trained with. (The batch norm of the browser export: tests/test_export.py.)
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_lib import load_model
from mnist_lib.augment import RandomAffine, rotate_images
from mnist_lib.book.committee import Committee, committee_proba, committee_sizes, member_probabilities
from mnist_lib.book.robustness import robustness, rotated
from mnist_lib.data import Split, scale_pixels
from mnist_lib.models import MLP, LeNet5
from mnist_lib.train import evaluate, fit, predict, predict_proba

# ---------------------------------------------------------------------------------------
# fit applies augment to every training batch, and to nothing else
# ---------------------------------------------------------------------------------------


class Recorder:
    """An augmentation that records the batches it is given and hands them back unchanged."""

    def __init__(self):
        self.batches: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.detach().clone())
        return x


def _train_mlp(train: Split, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    model = MLP((784, 16, 10), "relu")
    fit(model, train, batch_size=64, epochs=2, seed=seed, device="cpu", progress=False, **kwargs)
    return model


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances of every row of ``a`` to every row of ``b``, exactly 0 for equal rows."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def test_fit_augments_every_training_batch_and_no_evaluation_batch(mnist):
    train, val = mnist.train.head(256), mnist.test.head(100)
    recorder = Recorder()
    _train_mlp(train, augment=recorder, evals={"val": val})
    assert len(recorder.batches) == 2 * 256 // 64  # every step of both epochs
    seen = torch.cat(recorder.batches).flatten(1)
    assert len(seen) == 2 * len(train)
    # Each batch it saw is made of ([0, 1]) training images, never of the evaluation set's.
    distance = _distances(seen, scale_pixels(train.images).flatten(1))
    assert torch.all(distance.min(1).values == 0)
    assert torch.all(_distances(seen, scale_pixels(val.images).flatten(1)).min(1).values > 1)
    # Each epoch shows every training image once.
    for epoch in (distance[:256], distance[256:]):
        assert sorted(epoch.argmin(1).tolist()) == list(range(256))


def test_fit_trains_on_the_augmented_batches(mnist):
    train = mnist.train.head(256)
    plain = _train_mlp(train).state_dict()
    same = _train_mlp(train, augment=lambda x: x).state_dict()  # a no-op changes nothing: the runs are comparable
    assert all(torch.equal(plain[k], same[k]) for k in plain)
    flipped = _train_mlp(train, augment=lambda x: x.flip(-1)).state_dict()  # mirrored digits
    trained = [k for k in plain if not k.startswith("standardize.")]  # the input scale is not trained
    assert not any(torch.allclose(plain[k], flipped[k]) for k in trained)


# ---------------------------------------------------------------------------------------
# Committees average their members' probabilities
# ---------------------------------------------------------------------------------------


class FixedLogits(nn.Module):
    """A "network" that answers the same logits (N, 10) whatever images it is shown."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(x)]


def test_committee_proba_is_the_mean_of_the_members_softmax(mnist):
    images = mnist.test.images[:5]
    g = torch.Generator().manual_seed(0)
    for count in (2, 3):
        logits = [torch.randn(5, 10, generator=g) * 3 for _ in range(count)]
        members = [FixedLogits(z) for z in logits]
        expected = torch.stack([torch.softmax(z, 1) for z in logits]).mean(0)
        probabilities = member_probabilities(members, images)
        assert probabilities.shape == (count, 1, 5, 10)
        for z, p in zip(logits, probabilities[:, 0]):
            assert torch.allclose(p, torch.softmax(z, 1), atol=1e-7)
        assert torch.allclose(committee_proba(members, images), expected, atol=1e-7)
        # The check can fail: the softmax of the members' mean logits gives other numbers.
        assert not torch.allclose(expected, torch.softmax(torch.stack(logits).mean(0), 1), atol=1e-3)


def _probabilities(*rows: tuple[float, float]) -> torch.Tensor:
    """Probabilities over 10 classes (N, 10) whose mass is on classes 0 and 1 only."""
    p = torch.zeros(len(rows), 10)
    p[:, :2] = torch.tensor(rows)
    return p


def test_committee_sizes_scores_the_first_k_members_by_their_mean_probability():
    labels = torch.tensor([0, 1])
    probabilities = torch.stack([
        _probabilities((0.70, 0.30), (0.6, 0.4)),  # right on the first digit only
        _probabilities((0.70, 0.30), (0.0, 1.0)),
        # Wrong on both, yet the mean of all three is right on both: 0.517 for class 0 on
        # the first digit (where the mean log-probability, or a vote of the last member,
        # would say 1), 0.633 for class 1 on the second.
        _probabilities((0.15, 0.85), (0.5, 0.5)),
    ])
    table = committee_sizes(probabilities, labels)
    assert table["members"].tolist() == [1, 2, 3]
    assert table["test_acc"].tolist() == [0.5, 1.0, 1.0]
    assert table["errors"].tolist() == [1, 0, 0]


def test_the_shipped_committee_averages_its_members(mnist):
    model = load_model("bncnn_committee")
    assert isinstance(model, Committee) and len(model.members) >= 2
    images = mnist.test.images[:6]
    x = scale_pixels(images)
    with torch.no_grad():
        by_hand = sum(torch.softmax(m.eval()(x), 1) for m in model.members) / len(model.members)
    assert torch.allclose(predict_proba(model, images, device="cpu"), by_hand, atol=1e-6)
    expected = committee_proba(model.members, images, device="cpu")
    assert torch.allclose(expected, by_hand, atol=1e-6)


def test_a_committee_is_a_model_for_the_helpers(mnist):
    """predict, evaluate and robustness take a Committee: its output is the log of the averaged probabilities."""
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(20, 10, generator=g) * 3 for _ in range(3)]
    committee = Committee([FixedLogits(z) for z in logits])
    expected = torch.stack([torch.softmax(z, 1) for z in logits]).mean(0)
    test = mnist.test.head(20)
    assert torch.allclose(predict_proba(committee, test.images, device="cpu"), expected, atol=1e-6)
    scores = evaluate(committee, test, device="cpu")
    assert scores["acc"] == _accuracy(expected.argmax(1), test)
    assert abs(scores["loss"] - torch.nn.functional.nll_loss(expected.log(), test.labels).item()) < 1e-5
    table = robustness({"committee": committee}, test, shifts=[0], angles=[0])
    assert table["test_acc"].tolist() == pytest.approx([scores["acc"]] * 2)


# ---------------------------------------------------------------------------------------
# rotated: each digit turned its own way
# ---------------------------------------------------------------------------------------


def test_rotated_turns_each_digit_by_its_own_signed_angle(mnist):
    split = mnist.test.head(48)
    turned = rotated(split, 20, seed=0)
    assert torch.equal(turned.labels, split.labels)
    signs = []
    for before, after in zip(split.images, turned.images):
        plus, minus = rotate_images(before[None], 20.0)[0], rotate_images(before[None], -20.0)[0]
        assert not torch.equal(plus, minus)
        assert torch.equal(after, plus) or torch.equal(after, minus)
        signs.append(1 if torch.equal(after, plus) else -1)
    assert signs.count(1) >= 10 and signs.count(-1) >= 10  # both ways, about half each
    assert torch.equal(rotated(split, 20, seed=0).images, turned.images)  # the same turns for every model
    assert not torch.equal(rotated(split, 20, seed=1).images, turned.images)


# ---------------------------------------------------------------------------------------
# RandomAffine scales when asked
# ---------------------------------------------------------------------------------------


def _zoom(affine: RandomAffine, n: int = 2000) -> torch.Tensor:
    """The linear part of each map ``affine`` samples for n images: (n, 2, 2), in output-to-input coordinates."""
    x = torch.zeros(n, 1, 28, 28)
    grid = affine.grid(x)  # grid[n, i, j] = A @ (x_j, y_i) + offset, x_j one pixel (2 / 28) apart
    step = 2 / 28
    columns = (grid[:, 0, 1] - grid[:, 0, 0]) / step, (grid[:, 1, 0] - grid[:, 0, 0]) / step
    return torch.stack(columns, -1)


def test_random_affine_scales_within_the_requested_range():
    torch.manual_seed(0)
    linear = _zoom(RandomAffine(degrees=0, scale=0.2, shift=0))
    # No turn: diagonal, and the same scale along both axes.
    assert torch.allclose(linear[:, 0, 1], torch.zeros(2000), atol=1e-5)
    assert torch.allclose(linear[:, 1, 0], torch.zeros(2000), atol=1e-5)
    assert torch.allclose(linear[:, 0, 0], linear[:, 1, 1], atol=1e-5)
    zoom = 1 / linear[:, 0, 0]  # the grid samples the input at output / zoom
    assert zoom.min() >= 0.8 - 1e-4 and zoom.max() <= 1.2 + 1e-4
    assert zoom.min() < 0.82 and zoom.max() > 1.18  # spans 1 +- 0.2
    identity = _zoom(RandomAffine(degrees=0, scale=0, shift=0))
    assert torch.allclose(identity, torch.eye(2).expand(2000, 2, 2), atol=1e-5)


def test_random_affine_enlarges_and_shrinks_the_digits(mnist):
    x = scale_pixels(mnist.test.images[:64])  # [0, 1] pixels: ink is the pixel sum
    affine = RandomAffine(degrees=0, scale=0.2, shift=0)
    torch.manual_seed(3)
    zoom = 1 / _zoom(affine, 64)[:, 0, 0]
    torch.manual_seed(3)
    out = affine(x)
    # A digit zoomed by s covers s**2 times the area.
    ink = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert torch.allclose(ink, zoom**2, rtol=0.1)
    assert ink.min() < 0.8 and ink.max() > 1.25  # some digits shrank, some grew
    assert torch.allclose(RandomAffine(degrees=0, scale=0, shift=0)(x), x, atol=1e-5)


def test_random_affine_fills_with_the_background_of_unit_pixels(mnist):
    """The loaders yield [0, 1] pixels: what a shift brings in from outside the frame is 0 (no ink)."""
    x = scale_pixels(mnist.test.images[:16])
    torch.manual_seed(0)
    out = RandomAffine(degrees=0, scale=0, shift=6)(x)
    assert out.min() >= 0 and torch.equal(out[:, :, 0, 0], torch.zeros(16, 1))
    assert "normalization" not in RandomAffine.__dataclass_fields__


# ---------------------------------------------------------------------------------------
# predict uses the input scale it is given, which must be the model's
# ---------------------------------------------------------------------------------------


def _accuracy(predicted: torch.Tensor, split: Split) -> float:
    return predicted.eq(split.labels).sum().item() / len(split)  # as evaluate counts


def test_predict_uses_the_models_input_scale(mnist):
    """The same weights behind Standardize(0.5, 0.25) and Standardize(0, 1): predict must give other answers."""
    test = mnist.test.head(500)
    shipped = load_model("lenet5_improved")  # trained on (MEAN, STD) pixels
    rescaled = LeNet5("relu", "max", 0.5).eval()
    rescaled.load_state_dict(shipped.state_dict())
    for scale in ((0.5, 0.25), (0.0, 1.0)):
        rescaled.standardize.mean.fill_(scale[0])
        rescaled.standardize.std.fill_(scale[1])
        misread = predict(rescaled, test.images, device="cpu")
        right = predict(shipped, test.images, device="cpu")
        assert (misread != right).sum() >= 10, scale
        assert _accuracy(misread, test) < _accuracy(right, test)
    assert _accuracy(right, test) == evaluate(shipped, test, device="cpu")["acc"]


def test_predict_reads_the_first_digits_as_uint8_arrays_with_the_shipped_models(mnist):
    images, labels = mnist.test.images[:1000].numpy(), mnist.test.labels[:1000]
    assert images.dtype.name == "uint8"
    for name in ("lenet5_improved", "bncnn_committee"):
        assert (predict(load_model(name), images) == labels).float().mean().item() >= 0.98, name
