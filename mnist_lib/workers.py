"""Training runs side by side, each in its own process (``workers > 1`` of :func:`~mnist_lib.experiments.run_jobs`).

Each worker process receives the data once, when it starts, and an equal share of the
CPU threads; a job is a ``(config, seed)`` pair that the worker trains with ``train``
(the caller's function, e.g. ``experiments._timed_run``: it must be picklable, so a
module-level function).
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .data import MNIST
from .train import show_progress

# Each worker process gets the data once, when it starts, instead of once per job.
_worker_data: MNIST | None = None


def _start_worker(data: MNIST, threads: int) -> None:
    global _worker_data
    _worker_data = data
    torch.set_num_threads(threads)


def _run_in_worker(train: Callable, config, seed: int, device: str):
    model, history, seconds = train(config, seed, _worker_data, device=device, progress=False)
    # Send the weights back as CPU tensors: a GPU tensor would be shared with this process, which ends.
    return model.cpu(), history, seconds


def check_picklable(jobs: Sequence[tuple]) -> None:
    """Refuse configs that cannot be sent to a worker process, saying how to fix them."""
    for config, _ in jobs:
        try:
            pickle.dumps(config)
        except Exception as error:  # lambdas, local classes ...
            raise TypeError(f"config {config.name!r} cannot be sent to a worker process ({error}); "
                            "build its model with a class or functools.partial, or use workers=1") from None


def threads_per_worker(workers: int) -> int:
    """The CPU threads each of ``workers`` processes gets: an equal share of this process's."""
    return max(1, torch.get_num_threads() // workers)


def run_in_workers(train: Callable, jobs: Sequence[tuple], data: MNIST, workers: int, progress: bool | None,
                   device: torch.device, done: Callable[[int, tuple], None] | None = None,
                   threads: int | None = None) -> list:
    """``train(config, seed, data, ...)``'s (model, history, seconds) for each job, in ``workers`` processes.

    Each process gets ``threads`` CPU threads (default: :func:`threads_per_worker`).
    ``done(i, result)``, if given, is called here for each job as soon as it finishes (to keep
    finished work while others still run).
    """
    threads = threads or threads_per_worker(workers)
    # "spawn": a fresh interpreter per worker, safe where forking a threaded process (Jupyter) is not.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(data, threads)) as pool:
        futures = {pool.submit(_run_in_worker, train, config, seed, str(device)): i for i, (config, seed) in enumerate(jobs)}
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"runs ({workers} workers)",
                           disable=not show_progress(progress)):
            if done is not None:
                done(futures[future], future.result())
        return [future.result() for future in futures]
