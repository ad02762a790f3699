"""The canonical PyTorch MNIST example as the benchmark's second baseline.

Source: ``mnist/main.py`` of the pytorch/examples repository
(https://github.com/pytorch/examples/blob/main/mnist/main.py, read at commit 77f55b9 of
2025-08-25), rewritten here in the project's own code. Its recipe: the network of
:class:`CanonicalNet`, Adadelta with learning rate 1.0, ``StepLR(step_size=1, gamma=0.7)``
(the rate times 0.7 after every epoch), batch 64, test batch 1000, images through
``ToTensor()`` and ``Normalize((0.1307,), (0.3081,))`` in a ``DataLoader``, the negative
log-likelihood of the network's log-softmax, and one test pass after every epoch. On a
machine without an accelerator the example passes neither ``shuffle`` nor workers to its
loaders, so it trains on the images in file order in the main process; :func:`run_canonical`
does the same, to time it as a user who runs it gets it.

Two runs, each timed to :data:`~mnist_lib.bench.report.TARGET_ACC` test accuracy (training
seconds, the clock stopped while the test set is evaluated, once per epoch as the example
does): the example itself (:func:`run_canonical`), and the same network and recipe trained
through :func:`~mnist_lib.train.fit` on device-resident data (:func:`fit_canonical`). Set
beside the library's speed-tuned recipe, they separate what the pipeline gives from what
the recipe gives.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from .baseline import AccuracyLog, PeakMemory, TrainClock, baseline_accuracy
from .pipeline import Timer
from ..callbacks import Callback, Run
from ..data import MEAN, STD, Split
from ..models import InputScale, Standardize
from ..train import fit, seed_everything

BATCH_SIZE, TEST_BATCH_SIZE, LR, GAMMA = 64, 1000, 1.0, 0.7  # the example's defaults
EPOCHS = 14  # the example's default; the benchmark stops at the target or after max_epochs


class CanonicalNet(nn.Module):
    """The example's network: conv 1->32 3x3, conv 32->64 3x3, 2x2 max pooling, dropout 0.25,
    dense 9216->128, dropout 0.5, dense 128->10, log-softmax (ReLU after each hidden layer).

    Like every model of the library it standardises its [0, 1] input itself (``input_scale``);
    ``input_scale=(0, 1)`` keeps the input as it is, for the example's pipeline, whose
    ``Normalize`` transform has standardised it already.
    """

    def __init__(self, *, input_scale: InputScale = (MEAN, STD)):
        super().__init__()
        self.standardize = Standardize(*input_scale)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),  # 32x26x26
            nn.Conv2d(32, 64, 3), nn.ReLU(),  # 64x24x24
            nn.MaxPool2d(2), nn.Dropout(0.25),  # 64x12x12 = 9216
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.standardize(x)))


class StepPerEpoch(Callback):
    """``StepLR(step_size=1, gamma)`` inside :func:`~mnist_lib.train.fit`: the learning rate times
    ``gamma`` after every epoch. fit's named schedules move per step; this one replaces fit's
    ``"constant"`` schedule with the same per-epoch staircase, counted in steps."""

    def __init__(self, gamma: float = GAMMA):
        self.gamma = gamma

    def on_fit_start(self, run: Run) -> None:
        steps = len(run.loader)
        run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, lambda step: self.gamma ** (step // steps))


def canonical_loaders(root: str | os.PathLike, device: torch.device, *, train_limit: int | None = None,
                      test_limit: int | None = None):
    """The example's two ``DataLoader``s on a folder made by :func:`mnist_lib.data.torchvision_root`:
    shuffling, one persistent worker and pinned memory with an accelerator, none of them without."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train_set = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    test_set = datasets.MNIST(str(root), train=False, download=False, transform=transform)
    if train_limit is not None and train_limit < len(train_set):
        train_set = torch.utils.data.Subset(train_set, range(train_limit))
    if test_limit is not None and test_limit < len(test_set):
        test_set = torch.utils.data.Subset(test_set, range(test_limit))
    accel = {"num_workers": 1, "persistent_workers": True, "pin_memory": True, "shuffle": True}
    extra = accel if device.type != "cpu" else {}
    return (torch.utils.data.DataLoader(train_set, batch_size=BATCH_SIZE, **extra),
            torch.utils.data.DataLoader(test_set, batch_size=TEST_BATCH_SIZE, **extra))


def _row(pipeline: str, run: dict, n_train: int, target: float) -> dict:
    return {"run": pipeline, "target": target, "reached": run["seconds_to_target"] is not None,
            "seconds_to_target": run["seconds_to_target"], "epochs_trained": run["images"] / n_train,
            "train_seconds": run["train_seconds"], "final_test_acc": run["curve"][-1]["test_acc"],
            "eval_seconds": run["eval_seconds"], "host_peak_mb": run.get("host_peak_mb")}


def run_canonical(root: str | os.PathLike, device: torch.device, *, seed: int = 0, max_epochs: int = 3,
                  target: float = 0.99, train_limit: int | None = None, test_limit: int | None = None) -> dict:
    """The example as it is: train, test after every epoch (clock stopped), until ``target`` or ``max_epochs``."""
    train_loader, test_loader = canonical_loaders(root, device, train_limit=train_limit, test_limit=test_limit)
    seed_everything(seed)
    model = CanonicalNet(input_scale=(0.0, 1.0)).to(device)  # Normalize has standardised the input
    optimizer = torch.optim.Adadelta(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=GAMMA)
    clock = TrainClock(device)
    log = AccuracyLog(clock, lambda: baseline_accuracy(model, test_loader, device), target)  # the example's test
    images = 0
    with PeakMemory(device) as memory:
        clock.start()
        for epoch in range(1, max_epochs + 1):
            model.train()
            for batch, (data, labels) in enumerate(train_loader):
                data, labels = data.to(device), labels.to(device)
                optimizer.zero_grad()
                loss = F.nll_loss(model(data), labels)
                loss.backward()
                optimizer.step()
                images += len(labels)
                if batch % 10 == 0:  # the example logs the loss every 10 batches: a read of the device
                    loss.item()
            if log.check(epoch, images):  # its test pass, once per epoch
                break
            scheduler.step()
        clock.stop()
    return {"train_seconds": clock.seconds, "images": images, "curve": log.points,
            "seconds_to_target": log.seconds_to_target(), "eval_seconds": log.eval_seconds, **memory.as_dict()}


def fit_canonical(train: Split, test: Split, device: torch.device, *, seed: int = 0, max_epochs: int = 3,
                  target: float = 0.99) -> dict:
    """The same network and recipe through :func:`~mnist_lib.train.fit` on device-resident data
    (shuffled, the network standardising its input), evaluated after every epoch like the example."""
    seed_everything(seed)
    model = CanonicalNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=LR)
    timer = Timer(device, test, eval_every=-(-len(train) // BATCH_SIZE), target=target)
    with PeakMemory(device) as memory:
        fit(model, train, optimizer=optimizer, batch_size=BATCH_SIZE, epochs=max_epochs, seed=seed, device=device,
            loss_fn=F.nll_loss, callbacks=[StepPerEpoch(GAMMA), timer], progress=False)
    log = timer.log
    return {"train_seconds": timer.clock.seconds, "images": timer.images, "curve": log.points,
            "seconds_to_target": log.seconds_to_target(), "eval_seconds": log.eval_seconds, **memory.as_dict()}


def time_to_99_ratio(canonical_seconds: float | None, library_seconds: float | None) -> float | None:
    """How many times longer the canonical example trains to the target than the library (None if
    either never reached it)."""
    if not canonical_seconds or not library_seconds:
        return None
    return canonical_seconds / library_seconds


def canonical_comparison(train: Split, test: Split, root: str | os.PathLike, device: torch.device, *,
                         library_seconds: float | None, seed: int = 0, max_epochs: int = 3, target: float = 0.99,
                         log=print) -> tuple[list[dict], dict]:
    """Both canonical runs on ``train`` / ``test`` (one seed each) beside the library's time to ``target``
    (``library_seconds``): the table's rows, and the headline numbers (``canonical_time_to_99_ratio``:
    the example's seconds / the library's, and the seconds; None where a run did not reach the target)."""
    log(f"canonical example: its own pipeline, up to {max_epochs} epoch(s)")
    example = run_canonical(root, device, seed=seed, max_epochs=max_epochs, target=target, train_limit=len(train),
                            test_limit=len(test))
    log(f"canonical example: the same network and recipe through fit, up to {max_epochs} epoch(s)")
    through_fit = fit_canonical(train, test, device, seed=seed, max_epochs=max_epochs, target=target)
    rows = [_row("canonical example (DataLoader)", example, len(train), target),
            _row("canonical network and recipe, through fit", through_fit, len(train), target)]
    for row in rows:
        row["ratio_to_library"] = time_to_99_ratio(row["seconds_to_target"], library_seconds)
    # Not reached within the budget: the ratio is unknown, but at least that of the seconds trained.
    at_least = None if example["seconds_to_target"] else time_to_99_ratio(example["train_seconds"], library_seconds)
    headline = {"canonical_seconds_to_99": example["seconds_to_target"],
                "canonical_fit_seconds_to_99": through_fit["seconds_to_target"],
                "canonical_time_to_99_ratio": time_to_99_ratio(example["seconds_to_target"], library_seconds),
                "canonical_time_to_99_ratio_at_least": at_least,
                "canonical_fit_time_to_99_ratio": time_to_99_ratio(through_fit["seconds_to_target"], library_seconds)}
    return rows, headline
