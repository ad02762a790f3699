"""The device: choosing it, describing it, and the settings a run on it needs.

Chosen once (``$MNIST_DEVICE``, else CUDA, then Apple MPS, then the CPU); training and
evaluation take the device as an argument and never read one back from the host mid-run.
"""

from __future__ import annotations

import os
import platform
import random
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

DEVICE_ENV_VAR = "MNIST_DEVICE"
DEVICE_TYPES = ("cpu", "cuda", "mps")  # what the book runs on; torch knows more (meta, xpu, ...)
# cuBLAS is deterministic only with one of these workspace settings (read when CUDA starts).
CUBLAS_WORKSPACE_VAR, CUBLAS_DETERMINISTIC = "CUBLAS_WORKSPACE_CONFIG", (":4096:8", ":16:8")


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device``, else ``$MNIST_DEVICE``, else CUDA, MPS, CPU.

    Asking for a device this machine does not have, or for something that is not
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, raises ``ValueError``.
    """
    wanted = device or os.environ.get(DEVICE_ENV_VAR)
    if not wanted:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(wanted)
    except (RuntimeError, TypeError, ValueError):
        chosen = None
    if chosen is None or chosen.type not in DEVICE_TYPES:
        raise ValueError(f"unknown device {str(wanted)!r}; expected cpu, cuda, cuda:N or mps")
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(wanted)!r} was asked for but no CUDA GPU is available; use 'cpu' instead")
        if (chosen.index or 0) >= count:
            raise ValueError(f"device {str(wanted)!r} was asked for but this machine has {count} CUDA GPU(s): "
                             f"cuda:0 to cuda:{count - 1}")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(wanted)!r} was asked for but Apple's MPS is not available; use 'cpu' instead")
    return chosen


def describe_device(device: torch.device) -> str:
    """``device`` with its hardware's name and torch's thread count, e.g. ``cpu (x86_64, 2 threads)``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU"
    else:
        name = platform.processor() or platform.machine()
    return f"{device} ({name}, {torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 itself (AVX512-BF16 or AMX).

    Elsewhere autocast emulates bfloat16, and it is slower than float32, not faster: on an
    AVX2-only CPU one training step of chapter 7's BN-CNN took 1.0-1.1 s under autocast
    against 0.12-0.14 s in float32. Where torch cannot tell, the answer is True.
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [check for check in checks if check is not None]
    return not checks or any(check() for check in checks)


def has_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 itself, so that ``amp=True`` trains in bfloat16 there."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return cpu_has_bfloat16() if device.type == "cpu" else True


def amp_supported(amp: bool, device: torch.device) -> bool:
    """``amp``, unless the device cannot compute in bfloat16 (then warn and train in float32)."""
    if not amp or has_bfloat16(device):
        return amp
    if device.type == "cuda":
        warnings.warn(f"amp=True: {torch.cuda.get_device_name(device)} has no bfloat16 support, "
                      "so training runs in float32 (amp is ignored)", stacklevel=3)
    else:
        warnings.warn("amp=True: this CPU has no bfloat16 arithmetic (no AVX512-BF16 or AMX), where bfloat16 is "
                      "emulated several times slower than float32, so training runs in float32 (amp is ignored)",
                      stacklevel=3)
    return False


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has finished the work queued so far (CUDA and MPS run ahead of Python)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextmanager
def deterministic_algorithms(enabled: bool, device: torch.device):
    """Within the block, only deterministic algorithms (if ``enabled``); the settings are restored after.

    Sets ``torch.use_deterministic_algorithms``, turns cuDNN's benchmark off and, for
    CUDA, sets ``$CUBLAS_WORKSPACE_CONFIG``, which cuBLAS reads only when CUDA starts:
    if CUDA is already running without it, raises ``RuntimeError`` saying how to set it.
    An operation that has no deterministic version raises ``RuntimeError`` naming it.
    """
    if not enabled:
        yield
        return
    if device.type == "cuda" and os.environ.get(CUBLAS_WORKSPACE_VAR) not in CUBLAS_DETERMINISTIC:
        if torch.cuda.is_initialized():
            raise RuntimeError(
                f"deterministic=True on CUDA needs {CUBLAS_WORKSPACE_VAR}={CUBLAS_DETERMINISTIC[0]} set before CUDA "
                f"starts, and CUDA is already running in this process without it. Set it first (shell: export "
                f"{CUBLAS_WORKSPACE_VAR}={CUBLAS_DETERMINISTIC[0]}; notebook: os.environ[{CUBLAS_WORKSPACE_VAR!r}] = "
                f"{CUBLAS_DETERMINISTIC[0]!r} in the first cell) and restart, or train with deterministic=False")
        os.environ[CUBLAS_WORKSPACE_VAR] = CUBLAS_DETERMINISTIC[0]
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    except RuntimeError as error:
        if "does not have a deterministic implementation" not in str(error):
            raise
        operation = str(error).split(" does not have")[0]
        raise RuntimeError(f"deterministic=True: {operation} has no deterministic implementation on {device.type}; "
                           "train with deterministic=False (or use a model without it)") from error
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


@contextmanager
def borrowed(model: nn.Module, device: torch.device):
    """``model`` on ``device`` in eval mode within the block; then back on its device, in its modes."""
    modes = [(module, module.training) for module in model.modules()]
    first = next(iter(model.parameters()), next(iter(model.buffers()), None))
    home = first.device if first is not None else None
    model.to(device).eval()
    try:
        yield model
    finally:
        for module, training in modes:  # set each flag (not .train()): some modules override train()
            module.training = training
        if home is not None and home != device:
            model.to(home)
