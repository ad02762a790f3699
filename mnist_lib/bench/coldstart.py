"""torch.compile's cold start: the first compiled training step in a fresh process.

The warm-up the benchmark reports elsewhere is paid inside its own long-running process,
where Inductor's on-disk caches (kernels compiled by earlier runs, under the user's
temporary folder) may already hold the code. What a user pays the first time is measured
here: a new Python process, with Inductor's and Triton's caches pointed at an empty
temporary folder and the FX-graph and autograd caches off, builds the benchmarked
network, compiles it and times its first training step (compilation included) and its
second (the step alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import torch

# Run with ``python -c``; argv: config name, device, batch size, backend, threads.
SCRIPT = """
import json, sys, time
start = time.perf_counter()
import torch
from mnist_lib.bench.baseline import sync
from mnist_lib.experiments import CONFIGS, LOSSES
from mnist_lib.train import make_optimizer
name, device, batch, backend, threads = sys.argv[1], torch.device(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6]
torch.set_num_threads(int(threads))
config = CONFIGS[name]
torch.manual_seed(0)
model = config.model().to(device)
optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, device=device, **config.optimizer_kwargs)
net = torch.compile(model, backend=backend)
x, y = torch.rand(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
imported = time.perf_counter() - start

def step():
    sync(device)
    t = time.perf_counter()
    loss = LOSSES[config.loss](net(x).float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sync(device)
    return time.perf_counter() - t

first, second = step(), step()
print(json.dumps({"first_step_seconds": first, "second_step_seconds": second, "startup_seconds": imported}))
"""


def cold_env(cache: str) -> dict:
    """The environment of a process whose compiler caches are empty: ``cache`` is a fresh folder."""
    return os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": os.path.join(cache, "triton"),
                         "TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCHINDUCTOR_AUTOGRAD_CACHE": "0"}


def compile_cold(config_name: str, device: torch.device, *, batch_size: int, backend: str = "inductor",
                 threads: int | None = None, timeout: float = 900) -> dict:
    """Seconds of the first compiled training step of ``CONFIGS[config_name]`` in a fresh process.

    Returns ``compile_cold_seconds`` (the first step: tracing, compiling and running it),
    ``step_seconds`` (the second step, compiled already), ``startup_seconds`` (the process
    importing torch and the library and building the model), the backend, and ``note``
    (why nothing was measured, if so: the values are then None).
    """
    args = [config_name, str(device), str(batch_size), backend, str(threads or torch.get_num_threads())]
    row = {"config": config_name, "device": str(device), "batch_size": batch_size, "backend": backend,
           "cache": "fresh temporary TORCHINDUCTOR_CACHE_DIR, FX-graph and autograd caches off",
           "compile_cold_seconds": None, "step_seconds": None, "startup_seconds": None, "note": ""}
    with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cache:
        try:
            out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=cold_env(cache), capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return row | {"note": f"failed: no result within {timeout:.0f} s"}
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["(no message)"]
        return row | {"note": f"failed: {lines[-1]}"[:300]}
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return row | {"compile_cold_seconds": times["first_step_seconds"], "step_seconds": times["second_step_seconds"],
                  "startup_seconds": times["startup_seconds"]}
