"""Classifiers on autoencoder codes, and how large a code must be (chapter 3).

An autoencoder learns a short code for each digit without seeing a label. To measure
what the code keeps, a small classifier is trained on it while the encoder stays frozen
(:class:`~mnist_lib.models.CodeClassifier`). :func:`code_size_sweep` repeats this for
codes of several sizes, each from its own (wider) autoencoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pandas as pd
from torch import nn

from ..data import MNIST
from ..experiments import AUTOENCODER, UNIT, Config, Runs, run_seeds
from ..models import Autoencoder, CodeClassifier

# Hidden layers of the wider autoencoder of the sweep: the book's 784-256-64 one cannot
# carry a code wider than its last hidden layer.
WIDE = (512, 256)


def code_classifier(autoencoder: nn.Module, code: int, name: str, hidden: int = 64, epochs: int = 5,
                    schedule: str = "constant", lr: float = 1e-3, batch_size: int = 128) -> Config:
    """A setup that trains ``code -> hidden -> 10`` on the frozen encoder of a trained ``autoencoder``.

    Adam, by default with learning rate 0.001 and batches of 128 (the book's recipe). The
    classifier scales its input as the autoencoder does (its ``standardize`` layer); ``code``
    must be the autoencoder's code size.
    """
    scale = (autoencoder.standardize.mean.item(), autoencoder.standardize.std.item())
    model = partial(CodeClassifier, autoencoder.encoder, code, hidden, input_scale=scale)
    # cheap (a small head on frozen codes): a lecture trains it for all its epochs
    return Config(name, model, lr=lr, schedule=schedule, batch_size=batch_size, epochs=epochs, short_epochs=epochs)


def classify_codes(runs: Runs, config: str, code: int, data: MNIST, name: str, *,
                   progress: bool | None = None, **kwargs) -> pd.DataFrame:
    """One classifier per autoencoder of ``runs`` trained with setup ``config``, with that autoencoder's seed.

    ``kwargs`` go to :func:`code_classifier`. Returns the classifiers' last epochs, one row
    per seed, as :meth:`~mnist_lib.experiments.Runs.final` gives them.
    """
    seeds = runs.final().query("config == @config")["seed"].unique()
    if not len(seeds):
        raise ValueError(f"no runs of {config!r} to take encoders from; runs has {sorted(runs.epochs['config'].unique())}")
    finals = [run_seeds(code_classifier(runs.models[config, seed], code, name, **kwargs), seeds=[int(seed)], data=data,
                        progress=progress).final() for seed in seeds]
    return pd.concat(finals, ignore_index=True)


def code_size_sweep(sizes: Sequence[int], data: MNIST, *, hidden: tuple[int, ...] = WIDE, epochs: int = 10,
                    head: int = 256, seed: int = 0, progress: bool | None = None) -> pd.DataFrame:
    """For each code size, train an autoencoder ``784-hidden-code``, then a classifier on its frozen codes.

    Both train for ``epochs`` (the profile may run fewer) with one ``seed``; the classifier
    is ``code -> head -> 10`` with a cosine-decayed learning rate. Returns one row per size:
    "code size", "reconstruction loss" (test, binary cross-entropy per pixel) and "test_acc"
    (the classifier's).
    """
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive code sizes, e.g. (2, 4, 8), got {tuple(sizes)}")
    rows = []
    for code in sizes:
        name = f"code {code}"
        autoencoder = AUTOENCODER.with_(name=name, model=partial(Autoencoder, code, hidden, input_scale=UNIT),
                                        epochs=epochs)
        trained = run_seeds(autoencoder, seeds=[seed], data=data, progress=progress)
        classifier = code_classifier(trained.models[name, seed], code, f"classifier, code {code}", hidden=head,
                                     epochs=epochs, schedule="cosine")
        scored = run_seeds(classifier, seeds=[seed], data=data, progress=progress).final()
        rows.append({"code size": code, "reconstruction loss": float(trained.final()["test_loss"].iloc[0]),
                     "test_acc": float(scored["test_acc"].iloc[0])})
    return pd.DataFrame(rows)
