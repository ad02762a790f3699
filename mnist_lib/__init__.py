"""mnist_lib: the library behind the MNIST Book.

The core, one concern per module:

* :mod:`mnist_lib.idx`: the IDX file format, read no further than a file declares
* :mod:`mnist_lib.data`: ``load_mnist``, splits, device-resident batching of [0, 1] pixels
* :mod:`mnist_lib.data_files`: finding the files (lookup order), checksums, the not-found error
* :mod:`mnist_lib.device`: device choice, seeding, device settings (bfloat16, determinism, syncs)
* :mod:`mnist_lib.models`: the networks, each starting with its own input scale (``Standardize``); ``Committee``
* :mod:`mnist_lib.train`: ``fit`` (one short loop) / ``evaluate`` / ``predict``, schedules, ``History``
* :mod:`mnist_lib.callbacks`: what ``fit`` can be told to do besides training: progress bar, checkpoints,
  the divergence check, stopping at a target accuracy
* :mod:`mnist_lib.augment`: distortions of whole batches on the device
* :mod:`mnist_lib.checkpoint` (+ ``checkpoint_checks``): a run's whole state in one file; exact resume
* :mod:`mnist_lib.saved`: ``load_model`` for any saved model (shipped name, ``train --save`` file, checkpoint); ``ship``
* :mod:`mnist_lib.preprocess`: any picture of a digit made into MNIST's 28x28 format
* :mod:`mnist_lib.experiments`: the one registry of named setups (``CONFIGS``), runs over seeds
* :mod:`mnist_lib.profiles`: ``full`` / ``smoke`` sizes, from ``$MNIST_PROFILE``
* :mod:`mnist_lib.files`: the one safe-write helper (atomic, errors in one line)
* :mod:`mnist_lib.paths`: where things are (package, weights, the checkout's folders)
* :mod:`mnist_lib.doctor`, :mod:`mnist_lib.gpu_check` (+ ``gpu_stages``): the environment report; the GPU check

Subpackages:

* :mod:`mnist_lib.book`: what the chapters share: glue and provenance, figures (``plots``), the reports' numbers
  (``reports``), and chapter helpers (``backprop``, ``autoencoders``, ``tables``, ``committee``, ``robustness``,
  ``drawing``)
* :mod:`mnist_lib.web`: the draw-a-digit page: the export for the browser, the widget, strokes
* :mod:`mnist_lib.bench`: the speed benchmark (``python -m mnist_lib bench``)
"""

from .callbacks import Callback, Checkpoint, StopAt
from .checkpoint import CheckpointError, load_weights
from .data import MNIST, DeviceLoader, MNISTDataError, Split, load_mnist, scale_pixels
from .experiments import CONFIGS, Config, run_seeds
from .models import MLP, Committee, Standardize, count_parameters
from .preprocess import to_mnist
from .profiles import profile
from .saved import load_model  # any saved model: a shipped name, a `train --save` file, a checkpoint
from .train import (
    History,
    TrainingDiverged,
    choose_device,
    evaluate,
    fit,
    predict,
    predict_proba,
    seed_everything,
)

__version__ = "0.2.0"  # the only place the version is written (pyproject.toml reads it from here)
__all__ = [
    "MNIST", "DeviceLoader", "MNISTDataError", "Split", "load_mnist", "scale_pixels",
    "CONFIGS", "Config", "run_seeds", "MLP", "Committee", "Standardize", "count_parameters", "profile",
    "History", "TrainingDiverged", "choose_device", "evaluate", "fit", "predict", "predict_proba",
    "seed_everything", "Callback", "Checkpoint", "StopAt", "CheckpointError", "load_weights", "to_mnist",
    "load_model",
]
