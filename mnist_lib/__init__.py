"""mnist_lib: the library behind the MNIST Book.

The modules, one concern each:

* :mod:`mnist_lib.idx`: the IDX file format, read no further than a file declares
* :mod:`mnist_lib.data`: finding the files, checksums, ``load_mnist``, splits, device-resident batching
* :mod:`mnist_lib.device`: device choice, seeding, device settings (bfloat16, determinism, syncs)
* :mod:`mnist_lib.models`: the networks
* :mod:`mnist_lib.backprop`: backpropagation by hand (chapter 2)
* :mod:`mnist_lib.train`: ``fit`` / ``evaluate`` / ``predict``, schedules, ``History``
* :mod:`mnist_lib.checkpoint`: a run's whole state in one file, written atomically; resuming
* :mod:`mnist_lib.preprocess`: any picture of a digit made into MNIST's 28x28 format
* :mod:`mnist_lib.experiments`: the reports' setups, their published numbers, runs over seeds
* :mod:`mnist_lib.profiles`: ``full`` / ``smoke`` sizes, from ``$MNIST_PROFILE``
* :mod:`mnist_lib.plots`: the figure helpers
* :mod:`mnist_lib.book`: what the chapters share (glue, showing source, provenance)
* :mod:`mnist_lib.doctor`: the environment report of ``python -m mnist_lib doctor``
* :mod:`mnist_lib.files`: safe writes (atomic, never over a device or a link's surprise, errors in one line)
* :mod:`mnist_lib.web`: the shipped networks (``load_model``), their export for the browser, the draw widget
* :mod:`mnist_lib.gpu_check`: ``make gpu-check``, the one-command proof on a CUDA machine
"""

from .checkpoint import CheckpointError, load_weights
from .data import MNIST, DeviceLoader, MNISTDataError, Split, load_mnist, normalize
from .experiments import REPORTS, Config, run_seeds
from .models import MLP, count_parameters
from .preprocess import to_mnist
from .profiles import profile
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
from .web import load_model  # the shipped networks (package data), by name or sidecar path

__version__ = "0.1.0"
__all__ = [
    "MNIST", "DeviceLoader", "MNISTDataError", "Split", "load_mnist", "normalize",
    "REPORTS", "Config", "run_seeds", "MLP", "count_parameters", "profile",
    "History", "TrainingDiverged", "choose_device", "evaluate", "fit", "predict", "predict_proba",
    "seed_everything", "CheckpointError", "load_weights", "to_mnist", "load_model",
]
