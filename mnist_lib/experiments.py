"""The book's training setups, by name, and runs over seeds.

A :class:`Config` says what to train and how; :data:`CONFIGS` names the setups that the
command line (``python -m mnist_lib train NAME``), the chapters and the benchmark share.
:func:`run_seeds` trains configs once per seed and returns tidy tables (one row per
config, seed and epoch) that the plots consume. A run is seeded entirely by its seed
(weights, shuffling, dropout, distortions: see :func:`run`), so a (config, seed) pair
trains the same network in one process or in a worker. Sizes (epochs, seeds, images)
come from the active :mod:`~mnist_lib.profiles` profile. The reports' published numbers
live in :mod:`mnist_lib.book.reports`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from . import kept
from .augment import ElasticAffine, RandomAffine
from .data import MNIST, load_mnist
from .models import MLP, Autoencoder, BNCNN, ConvAutoencoder, DeepCNN, LeNet5, SpeedNet
from .profiles import profile
from .train import History, choose_device, evaluate, fit, seed_everything
from .workers import check_picklable, run_in_workers, threads_per_worker

UNIT = (0.0, 1.0)  # a model's input_scale that keeps pixels in [0, 1], as Keras tutorials do
TRAIN_EVAL_SIZE = 10_000  # training images evaluated in eval mode after each epoch (train_eval_acc)

# Losses by name: classification, and reconstruction of [0, 1] pixels.
LOSSES: dict[str, Callable] = {
    "cross_entropy": F.cross_entropy,
    "bce": F.binary_cross_entropy,
    "mse": F.mse_loss,
}


@dataclass(frozen=True)
class Config:
    """One training setup: a model factory and its hyperparameters.

    ``epochs`` is what the setup asks for; the profile may run fewer (``short_epochs``: enough
    for numbers close to the full run's, which the lecture profile runs). The model scales
    its own input (its ``input_scale``: :data:`UNIT` keeps pixels in [0, 1]).
    ``loss`` names a loss in :data:`LOSSES`; ``target="input"`` trains an autoencoder;
    ``augment`` distorts each training batch on the device (:mod:`mnist_lib.augment`);
    ``channels_last`` only changes the speed; ``amp`` (bfloat16 mixed precision) changes the
    speed and rounds the forward pass, so results differ slightly (see :func:`~mnist_lib.train.fit`). To train in worker processes (``workers`` of
    :func:`run_seeds`), ``model`` must be picklable: a class or a ``functools.partial``,
    not a lambda.
    """

    name: str
    model: Callable[[], nn.Module]
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    batch_size: int = 64
    epochs: int = 1
    loss: str = "cross_entropy"
    target: str = "label"
    augment: Callable | None = None
    amp: bool = False
    channels_last: bool = False
    optimizer_kwargs: dict = field(default_factory=dict)
    short_epochs: int | None = None

    def __str__(self) -> str:
        # A model built with input_scale=UNIT sees [0, 1] pixels; every other one standardised pixels.
        unit = getattr(self.model, "keywords", {}).get("input_scale") == UNIT
        scale = "pixels in [0, 1]" if unit else "pixels standardised"
        extra = f", augmented ({self.augment})" if self.augment else ""
        return (f"{self.name}: {self.optimizer} lr {self.lr} ({self.schedule}), batch {self.batch_size}, "
                f"{self.epochs} epochs, {scale}{extra}")

    def fit_kwargs(self, **changes) -> dict:
        """This setup as keyword arguments of :func:`~mnist_lib.train.fit`, some of them changed."""
        kwargs = dict(optimizer=self.optimizer, lr=self.lr, schedule=self.schedule, batch_size=self.batch_size,
                      epochs=self.epochs, loss_fn=LOSSES[self.loss],
                      target=self.target, augment=self.augment, amp=self.amp, channels_last=self.channels_last)
        return kwargs | self.optimizer_kwargs | changes

    def epochs_to_run(self) -> int:
        """The epochs this setup trains for under the active profile (its ``short_epochs`` where that applies)."""
        return profile().epochs(self.epochs, self.short_epochs)

    def with_(self, **changes) -> "Config":
        """A copy with some fields changed, e.g. ``cfg.with_(name="sgd", optimizer="sgd")``."""
        return replace(self, **changes)


# The ANU NN report's MLP: 784-300-10 sigmoid, PyTorch's cross-entropy and Adam lr 0.005, batch 100,
# 6 epochs. It names no pixel scale or initialisation: [0, 1] pixels and Glorot's are the book's choice.
MLP300_ADAM = Config(
    "MLP 784-300-10, Adam",
    partial(MLP, (784, 300, 10), "sigmoid", init="glorot", input_scale=UNIT),
    optimizer="adam",
    lr=0.005,
    batch_size=100,
    epochs=6,
    short_epochs=6,  # cheap: a lecture trains it fully (three epochs fall 0.9 points short)
)
# The ANU CNN report's MLP: 784-100-10 sigmoid trained with plain mini-batch SGD.
MLP100_SGD = Config("MLP 784-100-10, SGD", partial(MLP, (784, 100, 10), "sigmoid", input_scale=UNIT),
                    optimizer="sgd", lr=0.5, batch_size=32, epochs=10, short_epochs=10)

# The ANU neural-network report's autoencoders: a 6-unit code, batch 128, lr 0.005,
# 20 epochs (Adam); pixels in [0, 1] compared by binary cross-entropy.
AUTOENCODER = Config("Dense autoencoder, code 6", partial(Autoencoder, 6, input_scale=UNIT), lr=0.005,
                     batch_size=128, epochs=20, loss="bce", target="input")
CONV_AUTOENCODER = AUTOENCODER.with_(name="Convolutional autoencoder, code 6",
                                     model=partial(ConvAutoencoder, 6, input_scale=UNIT))

# LeNet-5 as the ANU CNN report describes it (32x32 input, 6/16/120/84, max pooling) with
# the paper's tanh, trained with Adam on all 60,000 training images.
# A cosine decay of the learning rate (as in chapter 2) settles the last epochs.
LENET5 = Config("LeNet-5 (tanh, max pooling)", partial(LeNet5, "tanh", "max"), lr=1e-3, schedule="cosine",
                batch_size=64, epochs=10)
# The CUHK report's recipe (sigmoid, Adam 1e-3, batch 64, 20 epochs, on the 4:1
# train/validation split) with max pooling instead of the report's mean pooling: a variant.
LENET5_CUHK = Config("LeNet-5, CUHK variant (sigmoid)", partial(LeNet5, "sigmoid", "max"), lr=1e-3, batch_size=64, epochs=20)
# Its twin: the report's own network pools by the mean ("2 mean pooling layers"; d2l's LeNet).
LENET5_CUHK_AVG = LENET5_CUHK.with_(name="LeNet-5, CUHK twin (sigmoid, average pooling)",
                                   model=partial(LeNet5, "sigmoid", "avg"))


def lenet5_variant(act: str = "relu", lr: float = 1e-3, dropout: float = 0.0, epochs: int = 6,
                   schedule: str = "constant", batch_size: int = 128) -> Config:
    """LeNet-5 (max pooling, Adam) with the IOP report's knobs: activation, learning rate, dropout."""
    name = f"{act}, lr {lr:g}" + (f", dropout {dropout:g}" if dropout else "") + (f", {schedule} lr" if schedule != "constant" else "")
    return Config(name, partial(LeNet5, act, "max", dropout), lr=lr, schedule=schedule, batch_size=batch_size, epochs=epochs)


# The IOP report's improvements together (ReLU, dropout before the output layer) with a
# decaying learning rate over more epochs, and LeCun et al.'s distortions of the
# training images, done on the device.
LENET5_IMPROVED = lenet5_variant("relu", lr=0.002, dropout=0.5, epochs=15, schedule="cosine").with_(
    name="LeNet-5 improved", augment=RandomAffine(degrees=10, scale=0.1, shift=2)
)

def deepcnn_variant(block2_convs: int = 2, dropout: tuple[float, float] = (0.0, 0.0), schedule: str = "constant") -> Config:
    """The JETIR report's CNN with its layer options; 15 epochs, batch 100, Adam 1e-3 (Keras's default)."""
    blocks = {2: "conv32-pool-conv64-conv64-pool", 1: "conv32-pool-conv64-pool", 0: "conv32-pool"}[block2_convs]
    drops = " + ".join(f"dropout {p:g} {where}" for p, where in zip(dropout, ("after flatten", "before output")) if p)
    name = f"{blocks}-dense100" + (f", {drops}" if drops else "") + (f", {schedule} lr" if schedule != "constant" else "")
    return Config(name, partial(DeepCNN, block2_convs, dropout), lr=1e-3, schedule=schedule, batch_size=100, epochs=15)


# The JETIR report's six layer configurations (second block or not, one or two dropouts).
JETIR_CONFIGS = [
    deepcnn_variant(2),
    deepcnn_variant(2, (0.0, 0.5)),
    deepcnn_variant(2, (0.25, 0.5)),
    deepcnn_variant(1, (0.25, 0.5)),
    deepcnn_variant(0),
    deepcnn_variant(0, (0.25, 0.5)),
]
# The book's deeper CNN: the report's layers with both dropouts.
DEEPCNN = JETIR_CONFIGS[2]
# The twins of the report's conclusion: case 2 (two convolutions, each followed by pooling, two dropouts);
# case 6, the same with one dropout (the report's at the first dense layer; here the one before the output).
JETIR_CASE2 = JETIR_CONFIGS[3]
JETIR_CASE6 = deepcnn_variant(1, (0.0, 0.5))

# Chapter 7: the deeper CNN with batch normalisation, trained on distorted digits (random
# affine maps) with a one-cycle learning rate; the channels-last layout makes it faster, and
# bfloat16 mixed precision faster on hardware with bfloat16 (it rounds the forward pass).
# Independently seeded copies form the committee.
DISTORTIONS = RandomAffine(degrees=10, scale=0.1, shift=2)
# The same maps plus Simard et al.'s elastic field, as Ciresan et al. trained (does it help a network this size?).
ELASTIC_DISTORTIONS = ElasticAffine(degrees=10, scale=0.1, shift=2, alpha=34.0, sigma=5.0)
FAST = dict(amp=True, channels_last=True)
BEST_SINGLE = Config("BN-CNN, distorted digits", BNCNN, lr=3e-3, schedule="onecycle", batch_size=128,
                     epochs=15, augment=DISTORTIONS, **FAST)
COMMITTEE_SEEDS = 7
ELASTIC_SINGLE = BEST_SINGLE.with_(name="BN-CNN, affine + elastic distortions", augment=ELASTIC_DISTORTIONS)
# The contenders of chapter 7's shift and rotation test: the perceptron of chapter 2 and
# LeNet-5 of chapter 4, each trained with and without the distortions.
ROBUSTNESS_CONFIGS = [
    MLP300_ADAM.with_(name="MLP 784-300-10", schedule="cosine", epochs=12, **FAST),
    MLP300_ADAM.with_(name="MLP 784-300-10, distorted digits", schedule="cosine", epochs=12,
                      augment=DISTORTIONS, **FAST),
    LENET5.with_(name="LeNet-5", **FAST),
    LENET5.with_(name="LeNet-5, distorted digits", augment=DISTORTIONS, **FAST),
]

# The improved LeNet-5 (the same network) with a recipe tuned for time to accuracy (chapter 9's first sprint):
# 2x larger batches, a one-cycle schedule to a higher peak over a short budget of epochs, and
# no distortions (they pay off in long runs, not in a sprint).
LENET5_SPEED = LENET5_IMPROVED.with_(name="LeNet-5 improved, speed-tuned", batch_size=256, lr=0.005,
                                     schedule="onecycle", epochs=4, augment=None)

# Chapter 9's sprint to 99%: a small batch-normalised CNN, a one-cycle schedule to a high peak
# over a single epoch, batches of 256, the channels-last layout and bfloat16 autocast (used only
# where the device computes in bfloat16: see mnist_lib.device.amp_supported); each ingredient's
# effect is measured in the benchmark's recipe ablation (mnist_lib.bench.recipe).
SPEEDNET = Config("SpeedNet, one epoch", SpeedNet, lr=0.02, schedule="onecycle", batch_size=256, epochs=1,
                  channels_last=True, amp=True)

# The named setups: one name, one setup, for the command line (python -m mnist_lib train
# NAME), the chapters and the benchmark (python -m mnist_lib bench --model NAME).
CONFIGS: dict[str, Config] = {
    "mlp": MLP300_ADAM,
    "mlp100": MLP100_SGD,
    "lenet5": LENET5,
    "lenet5-cuhk": LENET5_CUHK_AVG,  # the report's own network (mean pooling)
    "lenet5-cuhk-max": LENET5_CUHK,
    "lenet5-improved": LENET5_IMPROVED,
    "lenet5-speed": LENET5_SPEED,
    "speednet": SPEEDNET,
    "deepcnn": DEEPCNN,
    "bncnn": BEST_SINGLE,
}


def book_data(val_fraction: float = 0.0) -> MNIST:
    """MNIST cut to the active profile's sizes (all of it under ``full``)."""
    data = load_mnist(val_fraction=val_fraction)
    p = profile()
    data.train = data.train.head(p.train_size(len(data.train)))
    data.test = data.test.head(p.test_size(len(data.test)))
    if data.val is not None:
        data.val = data.val.head(p.test_size(len(data.val)))
    return data


def run(config: Config, seed: int, data: MNIST, *, device=None, progress: bool | None = None) -> tuple[nn.Module, History]:
    """Train ``config`` once with ``seed``; the test set (and val, if any) is evaluated each epoch."""
    seed_everything(seed)
    model = config.model()
    # train_eval: accuracy in eval mode on fixed training images (fit's train_acc: a train-mode running mean)
    evals = {"test": data.test} | ({"val": data.val} if data.val is not None else {}) \
        | {"train_eval": data.train.head(TRAIN_EVAL_SIZE)}
    history = fit(model, data.train, evals=evals, seed=seed, device=device, progress=progress,
                  **config.fit_kwargs(epochs=config.epochs_to_run()))
    return model, history


@dataclass
class Runs:
    """Results of :func:`run_seeds`.

    ``epochs``: one row per config, seed and epoch (``train_acc``: a running mean in train
    mode; ``train_eval_acc``: eval mode, epoch's end; ``test_acc``, ...). ``steps``: one row
    per config, seed and training step (``loss``). ``models``: the trained models, by (config, seed).
    ``workers``: how many runs trained at a time.
    """

    epochs: pd.DataFrame
    steps: pd.DataFrame
    models: dict[tuple[str, int], nn.Module]
    workers: int = 1

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
    progress: bool | None = None,
    workers: int | str = 1,
) -> Runs:
    """Train every config once per seed; ``seeds=10`` means the profile's share of 10 seeds.

    ``workers`` as in :func:`run_jobs`.
    """
    configs = [configs] if isinstance(configs, Config) else configs
    seeds = profile().seeds(seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    return run_jobs([(config, seed) for config in configs for seed in seeds], data, device=device,
                    progress=progress, workers=workers)


def run_jobs(
    jobs: Sequence[tuple[Config, int]],
    data: MNIST | None = None,
    *,
    device=None,
    progress: bool | None = None,
    workers: int | str = 1,
) -> Runs:
    """Train each ``(config, seed)`` of ``jobs`` once; the tables keep the order of ``jobs``.

    ``workers > 1`` trains that many runs at once, each in its own process with an equal
    share of the CPU threads (at most one process per job). On a CPU, small networks use
    one core better than two, so two of them side by side finish sooner than one after
    the other (chapter 9 measures it). On a GPU the processes share it, which rarely pays
    (one process keeps a GPU busy, and each holds its own CUDA context): it is done as
    asked, with a warning. ``workers="auto"``: on a CPU, one per CPU thread torch uses;
    on a GPU, 1. Results match a run in one process with the same number of threads per
    run. Configs must be picklable whenever ``workers > 1``, whatever the device. Models
    trained in worker processes come back on the CPU.

    With ``$MNIST_KEEP_RUNS`` set to a folder, each finished training is kept there, and
    jobs kept before are loaded instead of trained (:mod:`mnist_lib.kept`): a long run
    that stops loses only the trainings it was in the middle of.
    """
    data = data or book_data()
    jobs = [(config, int(seed)) for config, seed in jobs]
    device = choose_device(device)
    if workers == "auto":
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int or 'auto', got {workers!r}")
    if workers > 1:
        check_picklable(jobs)  # on any device, so that what runs here runs on every machine
    workers = min(workers, len(jobs))
    if workers > 1 and device.type != "cpu":
        warnings.warn(f"workers={workers} on {device}: {workers} processes share one device, which is rarely "
                      "faster than one (use workers=1, or device='cpu' for runs side by side on the CPU)", stacklevel=2)
    threads = threads_per_worker(workers) if workers > 1 else torch.get_num_threads()
    files = [kept.path(config, seed, kept.run_key(config, seed, data, device, threads)) if kept.folder() else None
             for config, seed in jobs]
    results = [kept.load(file, config, device) if file else None for file, (config, _) in zip(files, jobs)]
    todo = [i for i, result in enumerate(results) if result is None]

    def finished(i: int, result: tuple) -> None:  # job todo[i] is done: keep it at once
        results[todo[i]] = result
        if files[todo[i]]:
            kept.keep(files[todo[i]], *jobs[todo[i]], *result)

    if workers > 1 and todo:  # each job with the threads its key names, however many are left
        _run_in_workers([jobs[i] for i in todo], data, min(workers, len(todo)), progress, device, finished, threads)
    else:
        for i, j in enumerate(todo):
            finished(i, _timed_run(*jobs[j], data, device, progress))
    epoch_rows, step_rows, models = [], [], {}
    for (config, seed), (model, history, seconds) in zip(jobs, results):
        for record in history.epochs:
            epoch_rows.append({"config": config.name, "seed": seed} | record)
        epoch_rows[-1]["run_seconds"] = seconds
        step_rows += [{"config": config.name, "seed": seed, "step": i, "loss": v} for i, v in enumerate(history.step_loss, 1)]
        models[config.name, seed] = model
    return Runs(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows), models, workers)


def _timed_run(config: Config, seed: int, data: MNIST, device=None, progress: bool | None = None):
    start = time.perf_counter()
    model, history = run(config, seed, data, device=device, progress=progress)
    return model, history, time.perf_counter() - start


def _run_in_workers(jobs: list[tuple[Config, int]], data: MNIST, workers: int, progress: bool | None,
                    device: torch.device, done: Callable[[int, tuple], None], threads: int) -> list:
    return run_in_workers(_timed_run, jobs, data, workers, progress, device, done, threads)


def train_size_sweep(config: Config, sizes: list[int], seeds: int | list[int], data: MNIST | None = None,
                     *, device=None, progress: bool | None = None) -> pd.DataFrame:
    """Test accuracy after training ``config`` on the first ``n`` training images, for each ``n``.

    Every size gets the same number of gradient steps (what the whole training set gets
    in ``config.epochs``), so small sets are not also under-trained. Returns one row per
    size and seed: ``train_size``, ``seed``, ``epochs``, ``test_acc``, ``test_loss``.
    """
    data = data or book_data()
    seeds = profile().seeds(seeds) if isinstance(seeds, int) else seeds
    steps = config.epochs_to_run() * -(-len(data.train) // config.batch_size)
    rows = []
    for n in sizes:
        subset = data.train.head(n)
        epochs = -(-steps // -(-len(subset) // config.batch_size))
        for seed in seeds:
            seed_everything(seed)
            model = config.model()
            fit(model, subset, seed=seed, device=device, progress=progress, **config.fit_kwargs(epochs=epochs))
            scores = evaluate(model, data.test, device=device)
            rows.append({"config": config.name, "train_size": len(subset), "seed": seed, "epochs": epochs,
                         "test_acc": scores["acc"], "test_loss": scores["loss"]})
    return pd.DataFrame(rows)


def epochs_to(epochs: pd.DataFrame, threshold: float, metric: str = "test_acc") -> pd.DataFrame:
    """The first epoch at which each run's ``metric`` reached ``threshold`` (NaN: never)."""
    reached = epochs[epochs[metric] >= threshold].groupby(["config", "seed"], sort=False)["epoch"].min()
    runs = epochs[["config", "seed"]].drop_duplicates().set_index(["config", "seed"])
    return runs.join(reached.rename(f"epochs_to_{threshold:g}")).reset_index()
