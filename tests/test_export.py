"""The shipped weights and their export for the browser, checked without a browser (unit suite).

The committed ``_static/draw/lenet5_improved.json`` must be exactly what
``python -m mnist_lib export-web`` makes of the committed ``mnist_lib/weights/lenet5_improved.pt``,
so the website never runs other weights than the book describes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mnist_lib import web
from mnist_lib.__main__ import main
from mnist_lib.data import MEAN, STD
from mnist_lib.models import BNCNN, LeNet5


def test_sidecar_describes_the_weights():
    model = web.load_model(web.DEFAULT_MODEL)
    side = model.sidecar
    assert side["architecture"]["class"] == "LeNet5"
    assert 0.98 < side["test_acc"] <= 1 and side["test_images"] == 10_000
    assert side["training"]["train_images"] == 60_000 and side["training"]["augment"]
    assert len(model.members) == 1 and isinstance(model.members[0], LeNet5)


def test_committed_export_is_up_to_date(tmp_path):
    fresh = tmp_path / "model.json"
    assert main(["export-web", web.DEFAULT_MODEL, "--out", str(fresh)]) == 0
    committed = web.export_path(web.DEFAULT_MODEL)
    assert committed.read_text() == fresh.read_text(), (
        f"{committed} is not the export of the shipped weights: run python -m mnist_lib export-web")
    web.read_export(web.DEFAULT_MODEL)  # and its own staleness check agrees


def test_export_reproduces_pytorch(mnist):
    model = web.load_model(web.DEFAULT_MODEL)
    spec = web.read_export(web.DEFAULT_MODEL)
    assert web.max_logit_difference(spec, model, mnist.test.images[:100]) < 1e-4


@pytest.mark.parametrize("architecture", [
    {"class": "LeNet5", "kwargs": {"act": "tanh", "pool": "avg"}},
    {"class": "LeNet5", "kwargs": {"act": "elu", "pool": "max", "dropout": 0.3}},
    {"class": "DeepCNN", "kwargs": {"block2_convs": 2, "dropout": [0.25, 0.5]}},
], ids=["lenet5-tanh-avg", "lenet5-elu", "deepcnn"])
def test_export_handles_the_books_networks(architecture, tmp_path, mnist):
    """Any of the book's networks exports, e.g. a later chapter's model replacing LeNet-5."""
    torch.manual_seed(0)
    network = web.build(architecture)
    for p in network.parameters():  # weights of a realistic size, not only the initialisation
        p.data.normal_(0, 0.1)
    torch.save(network.state_dict(), tmp_path / "other.pt")
    side = {"name": "other", "architecture": architecture, "weights": "other.pt", "normalization": [0.1307, 0.3081]}
    (tmp_path / "other.json").write_text(json.dumps(side))
    out = web.export_web(tmp_path / "other.json", tmp_path / "other.web.json")
    spec = json.loads(out.read_text())
    ours = web.reference_logits(spec, mnist.test.images[:20])[0]
    theirs = web.load_model(tmp_path / "other.json").logits(mnist.test.images[:20])[0].double().numpy()
    assert np.abs(ours - theirs).max() < 1e-4


def _bncnn_with_real_statistics(seed: int = 0) -> BNCNN:
    """A BN-CNN whose batch norms all change their input: running statistics and affine parameters far from 0 and 1."""
    torch.manual_seed(seed)
    network = BNCNN()
    for module in network.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n) * 0.5)
            module.running_var.copy_(torch.rand(n) * 2 + 0.25)
            module.weight.data.copy_(1 + torch.randn(n) * 0.3)
            module.bias.data.copy_(torch.randn(n) * 0.3)
    return network.eval()


def test_export_of_batch_norm_reproduces_pytorch(tmp_path, mnist):
    web.save_model("bn", [_bncnn_with_real_statistics()], {"class": "BNCNN", "kwargs": {}}, (MEAN, STD),
                   {"acc": 0.1, "images": 1}, {"how": "test"}, title="a BN-CNN", folder=tmp_path)
    model = web.load_model(tmp_path / "bn.json")
    images = mnist.test.images[:20]
    spec = web.export_model(model, check_images=images)
    assert [layer["type"] for layer in spec["members"][0]["layers"]].count("affine") == 4  # every batch norm
    ours = web.reference_logits(spec, images)[0]
    theirs = model.logits(images)[0].double().numpy()
    assert abs(ours - theirs).max() < 1e-4
    # The running means matter here: without them the logits move by far more than 1e-4.
    network = model.members[0]
    for module in network.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.zero_()
    assert abs(model.logits(images)[0].double().numpy() - theirs).max() > 1e-2


def test_ensembles_average_their_members(tmp_path, mnist):
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        torch.save(LeNet5("relu").state_dict(), tmp_path / f"m{seed}.pt")
        members.append({"architecture": {"class": "LeNet5", "kwargs": {"act": "relu"}}, "weights": f"m{seed}.pt"})
    (tmp_path / "ens.json").write_text(json.dumps({"name": "ens", "members": members, "normalization": [0.1307, 0.3081]}))
    model = web.load_model(tmp_path / "ens.json")
    spec = web.export_model(model)
    assert len(spec["members"]) == 2
    images = mnist.test.images[:5]
    expected = torch.stack([torch.softmax(z, 1) for z in model.logits(images)]).mean(0)
    assert torch.allclose(model.probabilities(images), expected)


def test_clear_errors(tmp_path, capsys):
    with pytest.raises(web.WebModelError, match="no such model sidecar"):
        web.load_model("no_such_model")
    assert main(["export-web", "no_such_model"]) == 1
    assert "no such model sidecar" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"architecture": {"class": "LeNet5"}, "weights": "bad.pt",
                                                   "normalization": [0, 1], "weights_sha256": "0" * 64}))
    torch.save(LeNet5().state_dict(), tmp_path / "bad.pt")
    with pytest.raises(web.WebModelError, match="SHA-256 differs"):
        web.load_model(tmp_path / "bad.json")
    with pytest.raises(web.WebModelError, match="no exported model"):
        web.read_export("lenet5_improved", tmp_path / "missing.json")


def test_strokes_trace_the_ink():
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[10, 5:9] = 255
    image[12, 3] = 255
    strokes = web.digit_strokes(image, scale=10, offset=(0, 0))
    assert [(s[0], s[-1]) for s in strokes] == [((55.0, 105.0), (85.0, 105.0)), ((35.0, 125.0), (35.0, 125.0))]
    pad = np.asarray(web.render_strokes(strokes).convert("L"))
    assert pad.shape == (web.PAD_SIZE, web.PAD_SIZE) and pad[105, 70] == 0 and pad[200, 200] == 255
