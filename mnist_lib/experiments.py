"""The reports' setups as named configurations, the numbers they published, and runs over seeds.

A :class:`Config` says what to train and how; :func:`run_seeds` trains it once per seed
and returns tidy tables (one row per config, seed and epoch) that the plots consume. No
chapter loops over seeds itself. Sizes (epochs, seeds, images) come from the active
:mod:`~mnist_lib.profiles` profile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import pandas as pd
from torch import nn

from .data import MEAN, MNIST, STD, load_mnist
from .models import MLP
from .profiles import profile
from .train import History, fit, seed_everything

# Numbers published by the reports the book reproduces (see the bibliography). They are
# quoted, never measured here: chapters glue them labelled as the report's.
REPORTS: dict[str, dict[str, float]] = {
    "anu_cnn": {  # "CNN-Based Recognition of Handwritten Digits in MNIST Database"
        "test_acc": 0.94,
        "misclassified_shown": 82,
    },
    "anu_nn": {  # "Classification of MNIST ... using Neural Network"
        "mlp300_test_acc": 0.9765,
        "ae_code_classifier_test_acc": 0.7438,
        "cnn_test_acc": 0.9884,
        "ae_recon_loss": 0.1398,
        "conv_ae_recon_loss": 0.1129,
        "runs": 10,
    },
    "iop2020": {  # "Improvement of MNIST Image Recognition Based on CNN"
        "lenet5_error": 0.02,
        "improved_error": 0.007,
    },
    "jetir2021": {  # "MNIST Handwritten Digits Recognition"
        "cnn_test_acc": 0.9921,
        "drawn_digits_acc": 0.96,
    },
    "cuhk": {  # "Handwritten digit recognition using CNN"
        "lenet_val_acc": 0.9836,
        "train_seconds": 73,
    },
}


@dataclass(frozen=True)
class Config:
    """One training setup: a model factory and its hyperparameters.

    ``epochs`` is what the setup asks for; the profile may run fewer.
    ``normalization`` is the (mean, std) applied to [0, 1] pixels; ``UNIT`` keeps them.
    """

    name: str
    model: Callable[[], nn.Module]
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    batch_size: int = 64
    epochs: int = 1
    normalization: tuple[float, float] = (MEAN, STD)
    optimizer_kwargs: dict = field(default_factory=dict)

    def with_(self, **changes) -> "Config":
        """A copy with some fields changed, e.g. ``cfg.with_(name="sgd", optimizer="sgd")``."""
        return replace(self, **changes)


UNIT = (0.0, 1.0)  # pixels scaled to [0, 1] and left there, as Keras tutorials do

# The ANU neural-network report's MLP: 784-300-10 sigmoid, cross-entropy, Adam lr 0.005,
# batch 100, 6 epochs; Keras defaults (pixels in [0, 1], Glorot initialisation).
MLP300_ADAM = Config(
    "MLP 784-300-10, Adam",
    lambda: MLP((784, 300, 10), "sigmoid", init="glorot"),
    optimizer="adam",
    lr=0.005,
    batch_size=100,
    epochs=6,
    normalization=UNIT,
)
# The ANU CNN report's MLP: 784-100-10 sigmoid trained with plain mini-batch SGD.
MLP100_SGD = Config(
    "MLP 784-100-10, SGD",
    lambda: MLP((784, 100, 10), "sigmoid"),
    optimizer="sgd",
    lr=0.5,
    batch_size=32,
    epochs=10,
    normalization=UNIT,
)

# Setups by name, for the command line (python -m mnist_lib train NAME).
CONFIGS: dict[str, Config] = {"mlp": MLP300_ADAM, "mlp100": MLP100_SGD}


def book_data(val_fraction: float = 0.0) -> MNIST:
    """MNIST cut to the active profile's sizes (all of it under ``full``)."""
    data = load_mnist(val_fraction=val_fraction)
    p = profile()
    data.train = data.train.head(p.train_size(len(data.train)))
    data.test = data.test.head(p.test_size(len(data.test)))
    if data.val is not None:
        data.val = data.val.head(p.test_size(len(data.val)))
    return data


def run(config: Config, seed: int, data: MNIST, *, device=None, progress: bool = True) -> tuple[nn.Module, History]:
    """Train ``config`` once with ``seed``; the test set (and val, if any) is evaluated each epoch."""
    seed_everything(seed)
    model = config.model()
    evals = {"test": data.test} | ({"val": data.val} if data.val is not None else {})
    history = fit(
        model,
        data.train,
        evals=evals,
        optimizer=config.optimizer,
        lr=config.lr,
        schedule=config.schedule,
        batch_size=config.batch_size,
        epochs=profile().epochs(config.epochs),
        seed=seed,
        device=device,
        normalization=config.normalization,
        progress=progress,
        **config.optimizer_kwargs,
    )
    return model, history


@dataclass
class Runs:
    """Results of :func:`run_seeds`.

    ``epochs``: one row per config, seed and epoch (``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc``, ``seconds``, ...). ``steps``: one row per config, seed
    and training step (``loss``). ``models``: the trained models, by (config, seed).
    """

    epochs: pd.DataFrame
    steps: pd.DataFrame
    models: dict[tuple[str, int], nn.Module]

    def final(self) -> pd.DataFrame:
        """The last epoch of every run: one row per config and seed."""
        last = self.epochs.groupby(["config", "seed"])["epoch"].transform("max")
        return self.epochs[self.epochs["epoch"] == last].reset_index(drop=True)

    def summary(self, metric: str = "test_acc") -> pd.DataFrame:
        """Mean, std and number of runs of ``metric`` at the last epoch, per config."""
        return self.final().groupby("config", sort=False)[metric].agg(["mean", "std", "count"])


def run_seeds(
    configs: Config | list[Config],
    seeds: int | list[int],
    data: MNIST | None = None,
    *,
    device=None,
    progress: bool = True,
) -> Runs:
    """Train every config once per seed; ``seeds=10`` means the profile's share of 10 seeds."""
    configs = [configs] if isinstance(configs, Config) else configs
    seeds = profile().seeds(seeds) if isinstance(seeds, int) else seeds
    data = data or book_data()
    epoch_rows, step_rows, models = [], [], {}
    for config in configs:
        for seed in seeds:
            start = time.perf_counter()
            model, history = run(config, seed, data, device=device, progress=progress)
            for record in history.epochs:
                epoch_rows.append({"config": config.name, "seed": seed} | record)
            step_rows += [{"config": config.name, "seed": seed, "step": i, "loss": v} for i, v in enumerate(history.step_loss, 1)]
            models[config.name, seed] = model
            epoch_rows[-1]["run_seconds"] = time.perf_counter() - start
    return Runs(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows), models)
