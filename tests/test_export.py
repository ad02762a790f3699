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

from mnist_lib import load_model, predict_proba, saved, web
from mnist_lib.__main__ import main
from mnist_lib.models import BNCNN, Committee, LeNet5


def test_sidecar_describes_the_weights():
    side = saved.read_sidecar(web.DEFAULT_MODEL)
    assert [m["architecture"]["class"] for m in side["members"]] == ["LeNet5"]
    assert 0.98 < side["test_acc"] <= 1 and side["test_images"] == 10_000
    assert side["training"]["train_images"] == 60_000 and side["training"]["augment"]
    assert isinstance(load_model(web.DEFAULT_MODEL), LeNet5)


def test_the_export_starts_with_the_models_own_standardisation(mnist):
    torch.manual_seed(0)
    network = LeNet5("relu", input_scale=(0.5, 0.25)).eval()
    spec = web.export_model(network, check_images=mnist.test.images[:10])
    assert spec["members"][0]["layers"][0] == {"type": "standardize", "mean": 0.5, "std": 0.25}
    assert "normalization" not in spec
    shipped = web.read_export(web.DEFAULT_MODEL)["members"][0]["layers"][0]
    assert shipped["type"] == "standardize" and shipped["mean"] == pytest.approx(0.1307)
    # The interpreter applies it: without it, the logits differ.
    del spec["members"][0]["layers"][0]
    assert web.max_logit_difference(spec, network, mnist.test.images[:10]) > 1e-2


def test_committed_export_is_up_to_date(tmp_path):
    fresh = tmp_path / "model.json"
    assert main(["export-web", web.DEFAULT_MODEL, "--out", str(fresh)]) == 0
    committed = web.export_path(web.DEFAULT_MODEL)
    assert committed.read_text() == fresh.read_text(), (
        f"{committed} is not the export of the shipped weights: run python -m mnist_lib export-web")
    web.read_export(web.DEFAULT_MODEL)  # and its own staleness check agrees


def test_export_reproduces_pytorch(mnist):
    model = load_model(web.DEFAULT_MODEL)
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
    network = saved.build(architecture)
    for p in network.parameters():  # weights of a realistic size, not only the initialisation
        p.data.normal_(0, 0.1)
    saved.save_shipped("other", [network], architecture, {"acc": 0.1, "images": 1}, {}, title="t", folder=tmp_path)
    out = web.export_web(tmp_path / "other.json", tmp_path / "other.web.json")
    spec = json.loads(out.read_text())
    ours = web.reference_logits(spec, mnist.test.images[:20])[0]
    theirs = web.member_logits(load_model(tmp_path / "other.json"), mnist.test.images[:20])[0].double().numpy()
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
    saved.save_shipped("bn", [_bncnn_with_real_statistics()], {"class": "BNCNN", "kwargs": {}},
                       {"acc": 0.1, "images": 1}, {"how": "test"}, title="a BN-CNN", folder=tmp_path)
    model = load_model(tmp_path / "bn.json")
    images = mnist.test.images[:20]
    spec = web.export_model(model, check_images=images)
    assert [layer["type"] for layer in spec["members"][0]["layers"]].count("affine") == 4  # every batch norm
    ours = web.reference_logits(spec, images)[0]
    theirs = web.member_logits(model, images)[0].double().numpy()
    assert abs(ours - theirs).max() < 1e-4
    # The running means matter here: without them the logits move by far more than 1e-4.
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.zero_()
    assert abs(web.member_logits(model, images)[0].double().numpy() - theirs).max() > 1e-2


def test_ensembles_average_their_members(tmp_path, mnist):
    networks = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        networks.append(LeNet5("relu"))
    saved.save_shipped("ens", networks, {"class": "LeNet5", "kwargs": {"act": "relu"}}, {"acc": 0.1, "images": 1}, {},
                       title="two", folder=tmp_path)
    model = load_model(tmp_path / "ens.json")
    assert isinstance(model, Committee)
    spec = web.export_model(model)
    assert len(spec["members"]) == 2
    images = mnist.test.images[:5]
    expected = torch.stack([torch.softmax(z, 1) for z in web.member_logits(model, images)]).mean(0)
    assert torch.allclose(predict_proba(model, images, device="cpu"), expected, atol=1e-6)


def test_clear_errors(tmp_path, capsys):
    with pytest.raises(saved.ModelError, match="no such shipped model"):
        web.export_model("no_such_model")
    assert main(["export-web", "no_such_model"]) == 1
    assert "no such shipped model" in capsys.readouterr().err
    member = {"architecture": {"class": "LeNet5"}, "weights": "bad.pt", "weights_sha256": "0" * 64}
    (tmp_path / "bad.json").write_text(json.dumps({"members": [member]}))
    torch.save(LeNet5().state_dict(), tmp_path / "bad.pt")
    with pytest.raises(saved.ModelError, match="SHA-256 differs"):
        load_model(tmp_path / "bad.json")
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
