"""What every chapter notebook shares: showing the library's source and the provenance cell."""

from __future__ import annotations

import datetime
import inspect
import platform
import time

import torch

from .profiles import profile
from .train import choose_device

_STARTED = time.perf_counter()  # the chapter's kernel imports mnist_lib in its first cell


def show_source(obj) -> "IPython.display.Code":  # noqa: F821
    """The library's real source of ``obj``, highlighted (never a retyped copy)."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def environment() -> dict[str, str]:
    """Device, versions and profile of this run."""
    device = choose_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "device": f"{device.type} ({name}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "profile": profile().name,
        "date": datetime.date.today().isoformat(),
    }


def provenance() -> None:
    """Print how this chapter's outputs were made: environment and wall time."""
    info = environment() | {"wall time": f"{time.perf_counter() - _STARTED:.0f} s since mnist_lib was imported"}
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}}: {value}")
