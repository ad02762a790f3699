"""mnist_lib.book.autoencoders: classifiers on frozen codes and the code-size sweep (chapter 3), on tiny data."""

from __future__ import annotations

import pytest
import torch

from mnist_lib import experiments
from mnist_lib.book.autoencoders import classify_codes, code_classifier, code_size_sweep
from mnist_lib.experiments import AUTOENCODER, run_seeds


@pytest.fixture(scope="module")
def small(mnist):
    return experiments.MNIST(train=mnist.train.head(512), test=mnist.test.head(256))


@pytest.fixture(scope="module")
def autoencoders(small):
    return run_seeds(AUTOENCODER.with_(epochs=1), seeds=[0, 1], data=small, progress=False)


def test_code_classifier_trains_only_its_head(autoencoders):
    autoencoder = autoencoders.models[AUTOENCODER.name, 0]
    config = code_classifier(autoencoder, 6, "head", hidden=8, epochs=2)
    model = config.model()
    assert (config.name, config.epochs, config.batch_size) == ("head", 2, 128)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == 6 * 8 + 8 + 8 * 10 + 10  # code -> 8 -> 10
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model.encoder(x), autoencoder.encoder(x))  # the autoencoder's own encoder, frozen


def test_classify_codes_one_classifier_per_autoencoder_seed(autoencoders, small):
    final = classify_codes(autoencoders, AUTOENCODER.name, 6, small, "codes", epochs=1, progress=False)
    assert sorted(final["seed"]) == [0, 1] and set(final["config"]) == {"codes"}
    assert final["test_acc"].between(0, 1).all()
    with pytest.raises(ValueError, match="no runs of 'missing'"):
        classify_codes(autoencoders, "missing", 6, small, "codes")


def test_code_size_sweep_one_row_per_size(small):
    sweep = code_size_sweep((2, 16), small, hidden=(32,), epochs=1, head=8, progress=False)
    assert list(sweep.columns) == ["code size", "reconstruction loss", "test_acc"]
    assert sweep["code size"].tolist() == [2, 16]
    assert (sweep["reconstruction loss"] < 0.7).all()  # below chance (ln 2 per pixel)
    assert sweep["test_acc"].between(0, 1).all()
    with pytest.raises(ValueError, match="positive code sizes"):
        code_size_sweep((), small)
