"""mnist_lib.load_model (any saved model, ready) and the commands around it: predict, ship."""

from __future__ import annotations

import json
import re
from functools import partial

import pytest
import torch
from PIL import Image

import mnist_lib.saved as saved
from mnist_lib import evaluate, fit, load_model, predict
from mnist_lib.__main__ import main
from mnist_lib.experiments import Config
from mnist_lib.models import MLP, Committee, LeNet5


@pytest.mark.parametrize("name", ["lenet5_improved", "bncnn_committee"])
def test_shipped_models_read_uint8_digits(name, mnist):
    model = load_model(name)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    images, labels = mnist.test.images[:1000].numpy(), mnist.test.labels[:1000]  # uint8 arrays, as a user has them
    assert (predict(model, images) == labels).float().mean().item() >= 0.98
    if name == "bncnn_committee":
        assert isinstance(model, Committee) and len(model.members) == 7


def test_a_fit_checkpoint_loads_as_its_setup(tmp_path, mnist):
    from mnist_lib.experiments import CONFIGS

    torch.manual_seed(0)
    model = CONFIGS["mlp"].model()
    fit(model, mnist.train.head(128), epochs=1, device="cpu", progress=False, checkpoint=tmp_path / "run.pt",
        **{k: v for k, v in CONFIGS["mlp"].fit_kwargs().items() if k in ("lr", "optimizer")})
    loaded = load_model(tmp_path / "run.pt")
    assert isinstance(loaded, MLP)
    x = mnist.test.images[:50]
    assert torch.equal(predict(loaded, x, device="cpu"), predict(model, x, device="cpu"))


def test_the_input_scale_travels_with_the_file(tmp_path, mnist):
    torch.manual_seed(0)
    model = LeNet5("relu", input_scale=(0.5, 0.25)).eval()
    saved.save(model, tmp_path / "m.pt", saved.describe(partial(LeNet5, "relu", input_scale=(0.5, 0.25))))
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.standardize.mean.item() == 0.5 and loaded.standardize.std.item() == 0.25
    x = mnist.test.images[:20]
    assert torch.equal(predict(loaded, x, device="cpu"), predict(model, x, device="cpu"))


@pytest.mark.parametrize("content, message", [
    (None, "no such file; expected a shipped model name"),
    (b"not a torch file", "not a readable model file"),
    ("state_dict", r"holds weights only \(no architecture\)"),
])
def test_bad_files_are_one_clear_error(tmp_path, content, message, capsys):
    path = tmp_path / "w.pt"
    if content == "state_dict":
        torch.save(MLP().state_dict(), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(saved.ModelError, match=message):
        load_model(path)
    assert main(["predict", str(path), "x.png"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.split(";")[0].replace("\\", "") in err


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(saved.ModelError, match="no such shipped model; expected one of bncnn_committee, lenet5_improved"):
        load_model("lenet6")


def test_predict_command_prints_digit_and_probability(tmp_path, mnist, capsys):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(255 - mnist.test.images[i].numpy()).resize((112, 112)).save(paths[-1])  # dark on light
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["predict", "lenet5_improved", *map(str, paths), str(tmp_path / "bad.png")]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    for path, line, label in zip(paths, lines, mnist.test.labels[:3].tolist()):
        assert re.fullmatch(rf"{re.escape(str(path))}: {label} \(probability [01]\.\d\d\)", line), line
    assert len(lines) == 3 and err.count("\n") == 1 and str(tmp_path / "bad.png") in err


def test_ship_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path, monkeypatch, capsys, mnist):
    tiny = Config("tiny", partial(MLP, (784, 16, 10), "relu"), lr=0.01, batch_size=64, epochs=1)
    monkeypatch.setattr(saved, "recipes", lambda: {"bncnn_committee": {"config": tiny, "epochs": 1, "seeds": [0, 1],
                                                                       "title": "two tiny MLPs"}})
    argv = ["ship", "bncnn_committee", "--out", str(tmp_path), "--limit", "256", "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    sidecar = json.loads((tmp_path / "bncnn_committee.json").read_text())
    assert [m["weights"] for m in sidecar["members"]] == ["bncnn_committee-1.pt", "bncnn_committee-2.pt"]
    assert sidecar["training"]["train_images"] == 256 and sidecar["training"]["seeds"] == [0, 1]
    committee = load_model(tmp_path / "bncnn_committee.json")
    assert isinstance(committee, Committee)
    assert evaluate(committee, mnist.test, device="cpu")["acc"] == pytest.approx(sidecar["test_acc"])
    capsys.readouterr()
    assert main(argv) == 1
    assert "exists; add --overwrite to replace it" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
