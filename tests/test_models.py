"""The networks: shapes, parameter counts the reports print, and the layer table."""

import pytest
import torch
from torch import nn

from mnist_lib.models import (BNCNN, MLP, Autoencoder, CodeClassifier, Committee, ConvAutoencoder, DeepCNN, LeNet5,
                              Standardize, activation, count_parameters, layer_table, pooling)

BATCH = torch.randn(3, 1, 28, 28)


@pytest.mark.parametrize("model", [MLP(), LeNet5(), LeNet5("relu", "avg", 0.5), DeepCNN(), DeepCNN(1), DeepCNN(0)])
def test_classifiers_give_ten_logits(model):
    assert model(BATCH).shape == (3, 10)


def test_lenet5_has_the_classic_parameter_count():
    # C1 156, C3 2,416, C5 48,120, F6 10,164, output 850 (LeCun et al. 1998, full C3)
    table = layer_table(LeNet5())
    assert table.loc[table["parameters"] > 0, "parameters"].tolist() == [156, 2416, 48120, 10164, 850]
    assert count_parameters(LeNet5()) == 61706
    assert table["output shape"].tolist()[:4] == ["1x28x28", "6x28x28", "6x28x28", "6x14x14"]
    assert table.loc[0, ["layer", "type"]].tolist() == ["standardize", "Standardize"]  # the input scale comes first


def test_deepcnn_matches_the_jetir_parameter_table():
    table = layer_table(DeepCNN())
    assert table.loc[table["parameters"] > 0, "parameters"].tolist() == [320, 18496, 36928, 102500, 1010]
    assert "1024" in table["output shape"].tolist()  # the flatten


def test_layer_table_restores_training_mode():
    model = LeNet5(dropout=0.5).train()
    layer_table(model)
    assert model.training


@pytest.mark.parametrize("cls", [Autoencoder, ConvAutoencoder])
def test_autoencoders_reconstruct_images_in_unit_range(cls):
    model = cls(code=6)
    out = model(BATCH)
    assert out.shape == BATCH.shape
    assert out.min() >= 0 and out.max() <= 1
    assert model.encode(BATCH).shape == (3, 6)


def test_code_classifier_freezes_the_encoder():
    ae = Autoencoder(code=4)
    before = [p.clone() for p in ae.encoder.parameters()]
    clf = CodeClassifier(ae.encoder, code=4)
    opt = torch.optim.SGD([p for p in clf.parameters() if p.requires_grad], lr=1.0)
    clf.train()
    torch.nn.functional.cross_entropy(clf(BATCH), torch.tensor([1, 2, 3])).backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, ae.encoder.parameters()))
    assert not clf.encoder.training  # frozen means no dropout/batch-norm updates either
    assert count_parameters(clf) == 4 * 64 + 64 + 64 * 10 + 10


ALL_MODELS = [MLP, LeNet5, DeepCNN, BNCNN, Autoencoder, ConvAutoencoder,
              lambda **kw: CodeClassifier(Autoencoder(4).encoder, 4, **kw)]


@pytest.mark.parametrize("make", ALL_MODELS)
def test_every_model_standardises_its_own_input_first(make):
    torch.manual_seed(0)
    model = make(input_scale=(0.5, 0.25)).eval()
    first_name, first = next(iter(model.named_children()))
    assert (first_name, type(first)) == ("standardize", Standardize)
    assert model.state_dict()["standardize.mean"] == 0.5 and model.state_dict()["standardize.std"] == 0.25
    x = torch.rand(2, 1, 28, 28)
    seen = []
    hook = first.register_forward_hook(lambda mod, inputs, output: seen.append(output))
    with torch.no_grad():
        model(x)
    hook.remove()
    assert len(seen) == 1 and torch.equal(seen[0], (x - 0.5) / 0.25)  # applied, once, to the input
    assert make().standardize.mean.item() == pytest.approx(0.1307)  # MNIST's scale by default


def test_committee_returns_the_log_of_the_averaged_probabilities():
    torch.manual_seed(0)
    members = [LeNet5("relu").eval(), MLP((784, 16, 10), "relu").eval(), DeepCNN(0).eval()]
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        out = Committee(members)(x)
        expected = torch.stack([torch.softmax(m(x), 1) for m in members]).mean(0)
        assert torch.allclose(out.exp(), expected, atol=1e-6)
        # not the softmax of the averaged logits
        averaged_logits = torch.softmax(torch.stack([m(x) for m in members]).mean(0), 1)
    assert not torch.allclose(out.exp(), averaged_logits, atol=1e-3)
    with pytest.raises(ValueError, match="at least one member"):
        Committee([])


@pytest.mark.parametrize("bad", [lambda: activation("swish"), lambda: pooling("median"), lambda: DeepCNN(3),
                                 lambda: MLP((100, 10)), lambda: MLP(init="he"), lambda: LeNet5(input_scale=(0, 0))])
def test_bad_options_raise_value_error(bad):
    with pytest.raises(ValueError):
        bad()


def test_bncnn_ablations_undo_one_change_each():
    default, plain = BNCNN(), BNCNN(batch_norm=False)
    norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    assert sum(isinstance(m, norms) for m in default.modules()) == 4
    assert not any(isinstance(m, norms) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    head = BNCNN(100, 0.5, flatten_dropout=0.25).classifier
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    # The default keeps its layer indices, so that the shipped committee's weights still load.
    assert [k for k in default.state_dict() if "classifier" in k][0] == "classifier.1.weight"
    for model in (plain, BNCNN(flatten_dropout=0.25)):
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
