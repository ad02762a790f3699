"""The networks: shapes, parameter counts the reports print, and the layer table."""

import pytest
import torch

from mnist_lib.models import (MLP, Autoencoder, CodeClassifier, ConvAutoencoder, DeepCNN, LeNet5, activation,
                              count_parameters, layer_table, pooling)

BATCH = torch.randn(3, 1, 28, 28)


@pytest.mark.parametrize("model", [MLP(), LeNet5(), LeNet5("relu", "avg", 0.5), DeepCNN(), DeepCNN(1), DeepCNN(0)])
def test_classifiers_give_ten_logits(model):
    assert model(BATCH).shape == (3, 10)


def test_lenet5_has_the_classic_parameter_count():
    # C1 156, C3 2,416, C5 48,120, F6 10,164, output 850 (LeCun et al. 1998, full C3)
    table = layer_table(LeNet5())
    assert table.loc[table["parameters"] > 0, "parameters"].tolist() == [156, 2416, 48120, 10164, 850]
    assert count_parameters(LeNet5()) == 61706
    assert table["output shape"].tolist()[:3] == ["6x28x28", "6x28x28", "6x14x14"]


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


@pytest.mark.parametrize("bad", [lambda: activation("swish"), lambda: pooling("median"), lambda: DeepCNN(3),
                                 lambda: MLP((100, 10)), lambda: MLP(init="he")])
def test_bad_options_raise_value_error(bad):
    with pytest.raises(ValueError):
        bad()
