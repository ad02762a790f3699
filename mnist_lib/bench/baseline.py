"""The benchmark's reference: the conventional PyTorch pipeline, and the clocks both pipelines use.

The baseline is what every tutorial teaches, written out deliberately plainly:
``torchvision.datasets.MNIST`` with ``ToTensor``, a ``DataLoader`` with ``shuffle=True``,
and a training loop that moves each batch to the device. It trains the same
:class:`~mnist_lib.experiments.Config` as the library (same model, optimizer, learning
rate and schedule, batch size, seed), so the only difference the benchmark sees is the
pipeline. The tutorials' per-image ``Normalize`` is the model's own first layer here,
as in the library (every model standardises its [0, 1] input itself). :mod:`mnist_lib.bench` times the library's side.

The measuring tools live here too, shared by both sides: a training clock that waits for
the device before it reads the time and can be paused for evaluations, and a sampler of
peak memory (host and device).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

EPOCH_IMAGES = 60_000  # one epoch of MNIST: the unit every time is quoted in


def sync(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class TrainClock:
    """Seconds of training only: ``start`` / ``stop`` around each stretch, device work included."""

    def __init__(self, device: torch.device):
        self.device, self.seconds, self._since = device, 0.0, None

    @property
    def running(self) -> bool:
        return self._since is not None

    def start(self) -> None:
        sync(self.device)
        self._since = time.perf_counter()

    def stop(self) -> float:
        if self._since is not None:
            sync(self.device)
            self.seconds += time.perf_counter() - self._since
            self._since = None
        return self.seconds


class AccuracyLog:
    """Test accuracy at fine intervals against the training seconds, for time-to-accuracy runs.

    ``check`` is called between steps: it pauses the clock, evaluates, records the point,
    and says whether the target is reached (then the clock stays stopped: training ends).
    """

    def __init__(self, clock: TrainClock, evaluate, target: float | None):
        self.clock, self.evaluate, self.target = clock, evaluate, target
        self.points: list[dict] = []
        self.eval_seconds = 0.0

    def check(self, step: int, images: int) -> bool:
        """Evaluate with the clock stopped; True (the clock left stopped) if the target is reached."""
        seconds = self.clock.stop()
        start = time.perf_counter()
        acc = self.evaluate()
        self.eval_seconds += time.perf_counter() - start
        self.points.append({"step": step, "images": images, "train_seconds": seconds, "test_acc": acc})
        if self.target is not None and acc >= self.target:
            return True
        self.clock.start()
        return False

    def seconds_to_target(self) -> float | None:
        """Training seconds at the first evaluation that reached the target (None: never)."""
        hits = [p["train_seconds"] for p in self.points if self.target is not None and p["test_acc"] >= self.target]
        return hits[0] if hits else None


def _rss_bytes(pid: str) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def host_memory_bytes() -> int | None:
    """Resident memory of this process and its children (DataLoader workers), from /proc (Linux)."""
    try:
        pids = ["self"]
        for children in Path("/proc/self/task").glob("*/children"):
            pids += children.read_text().split()
        total = 0
        for pid in pids:
            try:
                total += _rss_bytes(pid)
            except (FileNotFoundError, ProcessLookupError):  # a worker that just exited
                pass
        return total
    except OSError:
        return None


class PeakMemory:
    """Peak host memory (sampled every ``interval`` s) and peak CUDA memory inside a ``with`` block.

    Host memory is the resident set of this process plus its children; forked workers
    share pages with their parent, so it over-counts them. Without /proc, the process's
    lifetime peak (``getrusage``) is all there is: ``host_method`` says which was used.
    """

    def __init__(self, device: torch.device, interval: float = 0.01):
        self.device, self.interval = device, interval
        self.host_peak_mb = self.host_start_mb = self.device_peak_mb = None
        self.host_method = "sampled /proc RSS, process + workers"

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self._peak = max(self._peak, host_memory_bytes() or 0)

    def __enter__(self) -> "PeakMemory":
        start = host_memory_bytes()
        if start is None:
            self.host_method = "getrusage: lifetime peak of the process"
        self._peak = start or 0
        self.host_start_mb = start / 2**20 if start else None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        now = host_memory_bytes()
        if now is None:
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
            self.host_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
        else:
            self.host_peak_mb = max(self._peak, now) / 2**20
        if self.device.type == "cuda":
            self.device_peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20

    def as_dict(self) -> dict:
        return {"host_peak_mb": self.host_peak_mb, "host_start_mb": self.host_start_mb,
                "device_peak_mb": self.device_peak_mb}


def default_workers(device: torch.device) -> int:
    """A sensible ``num_workers``: 1 on a CPU with 2-3 cores (the rest compute), half the cores up
    to 4 on larger CPUs, and up to 4 feeding a GPU; 0 on a single core."""
    cores = os.cpu_count() or 1
    if device.type == "cpu":
        return min(4, cores // 2)
    return min(4, max(cores - 1, 0))


def conventional_augmentation(augment) -> list:
    """torchvision's per-image transforms that draw the same distortions as ``augment`` does per batch.

    :class:`mnist_lib.augment.RandomAffine` (rotation +- degrees, scale 1 +- scale, shift
    +- shift pixels) is ``transforms.RandomAffine`` on each PIL image, the way tutorials do
    it (torchvision rounds the shift to whole pixels); :class:`~mnist_lib.augment.ElasticAffine`
    adds ``transforms.ElasticTransform`` with the same alpha and sigma.
    """
    from torchvision import transforms

    from ..augment import ElasticAffine, RandomAffine

    if augment is None:
        return []
    if isinstance(augment, RandomAffine):
        scale = (1 - augment.scale, 1 + augment.scale) if augment.scale else None
        affine = transforms.RandomAffine(degrees=augment.degrees, translate=(augment.shift / 28,) * 2, scale=scale,
                                         fill=0)
        if isinstance(augment, ElasticAffine):  # torchvision's alpha and sigma are in pixels too
            return [affine, transforms.ElasticTransform(alpha=float(augment.alpha), sigma=float(augment.sigma), fill=0)]
        return [affine]
    raise ValueError(f"the baseline has no conventional equivalent of the augmentation {augment!r}")


def loaders(root: str | os.PathLike, config, device: torch.device, *, seed: int = 0, train_limit: int | None = None,
            test_limit: int | None = None, workers: int | None = None):
    """The tutorial's ``DataLoader``s: (train, test, their settings as a dict).

    ``root`` is a folder prepared by :func:`mnist_lib.data.torchvision_root`. ``train_limit``
    / ``test_limit`` keep the first images only (the same ones the library's side uses).
    """
    from torchvision import datasets, transforms

    to_input = [transforms.ToTensor()]  # [0, 1] pixels: the model standardises its input itself, as the library's do
    # Distortions for the training images only: the test digits are evaluated as they are.
    train_transform = transforms.Compose([*conventional_augmentation(config.augment), *to_input])
    train_set = datasets.MNIST(str(root), train=True, download=False, transform=train_transform)
    test_set = datasets.MNIST(str(root), train=False, download=False, transform=transforms.Compose(to_input))
    if train_limit is not None and train_limit < len(train_set):
        train_set = torch.utils.data.Subset(train_set, range(train_limit))
    if test_limit is not None and test_limit < len(test_set):
        test_set = torch.utils.data.Subset(test_set, range(test_limit))
    workers = default_workers(device) if workers is None else workers
    kwargs = {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0}
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                                               generator=torch.Generator().manual_seed(seed), **kwargs)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000, shuffle=False, **kwargs)
    return train_loader, test_loader, {"num_workers": workers, "pin_memory": kwargs["pin_memory"],
                                       "persistent_workers": kwargs["persistent_workers"]}


def baseline_accuracy(model: nn.Module, test_loader, device: torch.device) -> float:
    """The tutorial's test loop: accuracy on the whole test set."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            images, labels = images.to(device), labels.to(device)
            correct += (model(images).argmax(1) == labels).sum().item()
    return correct / len(test_loader.dataset)


def run_baseline(config, root: str | os.PathLike, *, device: torch.device, epochs: int, seed: int = 0,
                 train_limit: int | None = None, test_limit: int | None = None, workers: int | None = None,
                 eval_every: int | None = None, target: float | None = None, max_steps: int | None = None) -> dict:
    """Train ``config`` with the conventional pipeline; seconds, images and memory of each epoch.

    Every ``eval_every`` steps the clock stops and the test set is evaluated (time to
    accuracy); training ends early once the accuracy reaches ``target`` or after
    ``max_steps``. The learning-rate schedule always spans ``epochs`` epochs.
    """
    # Over 60 lines on purpose: the conventional tutorial pipeline written out in one piece, as a reader would write it.
    from ..experiments import LOSSES
    from ..train import make_optimizer, make_scheduler, seed_everything

    train_loader, test_loader, settings = loaders(root, config, device, seed=seed, train_limit=train_limit,
                                                  test_limit=test_limit, workers=workers)
    seed_everything(seed)
    model = config.model().to(device)
    torch.manual_seed(seed)  # as fit does: the same dropout stream
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, **config.optimizer_kwargs)
    scheduler = make_scheduler(config.schedule, optimizer, epochs * len(train_loader))
    loss_fn = LOSSES[config.loss]
    clock = TrainClock(device)
    log = AccuracyLog(clock, lambda: baseline_accuracy(model, test_loader, device), target)
    epoch_seconds, epoch_images, step, images_seen = [], [], 0, 0
    stop = False  # the target reached, or out of steps
    with PeakMemory(device) as memory:
        for _ in range(epochs):
            model.train()
            before, seen, running_loss = clock.seconds, 0, 0.0
            clock.start()
            for images, labels in train_loader:
                images, labels = images.to(device), labels.to(device)
                optimizer.zero_grad()
                output = model(images)
                loss = loss_fn(output, labels)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running_loss += loss.item()
                seen += len(labels)
                step, images_seen = step + 1, images_seen + len(labels)
                if eval_every and step % eval_every == 0:
                    stop = log.check(step, images_seen)
                    model.train()
                if stop or (max_steps is not None and step >= max_steps):
                    stop = True
                    break
            clock.stop()
            if stop:  # a stopped epoch is not a whole one: no epoch time
                break
            epoch_seconds.append(clock.seconds - before)
            epoch_images.append(seen)
    if eval_every and (not log.points or log.points[-1]["step"] != step) and log.seconds_to_target() is None:
        log.points.append({"step": step, "images": images_seen, "train_seconds": clock.seconds,
                           "test_acc": baseline_accuracy(model, test_loader, device)})
    final_acc = log.points[-1]["test_acc"] if log.points else baseline_accuracy(model, test_loader, device)
    return {
        "pipeline": "baseline", "epoch_seconds": epoch_seconds, "epoch_images": epoch_images,
        "train_seconds": clock.seconds, "steps": step, "images": images_seen, "test_acc": final_acc,
        "curve": log.points, "seconds_to_target": log.seconds_to_target(), "eval_seconds": log.eval_seconds,
        "warmup_seconds": 0.0, "loader": settings, **memory.as_dict(),
    }

