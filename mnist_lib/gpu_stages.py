"""The stages of the GPU check (:mod:`mnist_lib.gpu_check`): each ``(check, seconds allowed) -> dict``.

A stage returns at least ``result`` (PASS, FAIL, INFO, TIME or DRY) and ``detail`` (one
line). In-process stages compute at tiny sizes in a dry run; the others run a command
(:func:`_run`) that a dry run only lists.
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .paths import CHECKOUT as ROOT

if TYPE_CHECKING:
    from .gpu_check import Check


# ---------------------------------------------------------------------------- helpers


def _run(check: Check, command: list[str], seconds: float, env: dict | None = None) -> dict:
    """Run ``command`` in the book's folder within ``seconds``; in a dry run, only list it."""
    shown = " ".join(command)
    if check.dry:
        return {"result": "DRY", "detail": f"would run: {shown}", "command": shown}
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=os.environ | (env or {}), capture_output=True, text=True,
                              timeout=max(1.0, seconds))
    except subprocess.TimeoutExpired:
        return {"result": "TIME", "detail": f"unfinished after its {seconds:.0f} s (raise --budget)", "command": shown}
    # The last line says it: pytest's and the benchmark's summary, or the error of a failed command.
    said = (done.stderr if done.returncode and done.stderr.strip() else done.stdout).strip().splitlines()
    return {"result": "PASS" if done.returncode == 0 else "FAIL", "detail": said[-1][:200] if said else "",
            "command": shown, "returncode": done.returncode, "seconds": round(time.monotonic() - start, 1),
            "tail": done.stdout[-1500:] + "\n" + done.stderr[-1500:]}


def kill_after_checkpoint(command: list[str], checkpoint: Path, seconds: float, log: Path) -> str:
    """Start ``command``, ``kill -9`` it as soon as ``checkpoint`` exists; say what happened."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < end:
            if checkpoint.exists():  # written atomically: complete once it exists
                process.kill()
                process.wait()
                return "killed"
            time.sleep(0.005)
        if process.poll() is None:
            process.kill()
            process.wait()
            return "timed out"
    return "finished" if process.returncode == 0 else f"failed (exit {process.returncode})"


def _accuracy(output: str) -> float | None:
    lines = [line for line in output.splitlines() if line.startswith("test accuracy:")]
    return float(lines[-1].split(":")[1]) if lines else None


# ----------------------------------------------------------------------------- stages


def environment(check: Check, seconds: float) -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(check.device)}
    if check.device.type == "cuda":
        info |= {"name": torch.cuda.get_device_name(check.device),
                 "bfloat16": torch.cuda.is_bf16_supported(including_emulation=False),
                 "memory_gb": round(torch.cuda.get_device_properties(check.device).total_memory / 2**30, 1)}
    return {"result": "INFO", "detail": ", ".join(f"{k} {v}" for k, v in info.items()), "environment": info}


def unit_suite(check: Check, seconds: float) -> dict:
    """The whole unit suite on the GPU host: tests that assume the CPU fail here."""
    return _run(check, [check.python, "-m", "pytest", "tests", "-q", "--ignore=tests/browser", "-m", "not gpu"],
                seconds)


def gpu_tests(check: Check, seconds: float) -> dict:
    """tests/test_gpu.py: every named setup on CUDA with amp, channels-last and augmentation."""
    return _run(check, [check.python, "-m", "pytest", "tests/test_gpu.py", "-q", "-m", "gpu"], seconds)


def syncs_per_epoch(check: Check, seconds: float) -> dict:
    """One epoch of each named setup under CUDA's sync-debug mode: how often the host waited."""
    from .experiments import CONFIGS
    from .train import fit, seed_everything

    data, counts, end = check.data(), {}, time.monotonic() + seconds
    for name, config in CONFIGS.items():
        if time.monotonic() > end:
            counts[name] = "skipped: the stage's time ran out"
            continue
        seed_everything(0)
        model = config.model()
        kwargs = config.fit_kwargs(epochs=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if check.device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                history = fit(model, data.train, evals={"test": data.test}, device=check.device, progress=False,
                              **kwargs)
            finally:
                if check.device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
        syncs = sum("synchroniz" in str(w.message) for w in caught)
        steps = len(history.step_loss)
        counts[name] = {"steps": steps, "syncs": syncs if check.device.type == "cuda" else None}
    measured = {k: v for k, v in counts.items() if isinstance(v, dict)}
    detail = ", ".join(f"{k} {v['syncs']} syncs / {v['steps']} steps" for k, v in measured.items())
    if check.device.type != "cuda":
        detail = "trained one epoch of each (syncs are counted on CUDA only): " + ", ".join(measured)
    return {"result": "INFO" if len(measured) == len(counts) else "FAIL", "detail": detail, "setups": counts}


def device_mixing(check: Check, seconds: float) -> dict:
    """Rotation, committee views and robustness with the images on one device and the models on another."""
    from .augment import rotate_images
    from .book.committee import TTA_VIEWS, member_probabilities
    from .models import MLP
    from .book.robustness import robustness
    from .train import seed_everything

    data = check.data()
    images = data.test.images[:64]
    turned_here = rotate_images(images.to(check.device), 15.0).cpu()
    turned_cpu = rotate_images(images, 15.0)
    worst_grey = (turned_here.int() - turned_cpu.int()).abs().max().item()
    seed_everything(0)
    members = [MLP((784, 32, 10), "relu") for _ in range(2)]  # on the CPU, as a caller holds them
    here = member_probabilities(members, images, views=TTA_VIEWS, device=check.device)
    cpu = member_probabilities(members, images, views=TTA_VIEWS, device="cpu")
    worst_proba = (here - cpu).abs().max().item()
    home = all(p.device.type == "cpu" for m in members for p in m.parameters())
    table = robustness({"mlp": members[0]}, data.test.head(64), shifts=[0, 2], angles=[0, 10], device=check.device)
    ok = worst_grey <= 1 and worst_proba <= 1e-3 and home and len(table) == 4
    return {"result": "PASS" if ok else "FAIL",
            "detail": f"rotation differs by <= {worst_grey} grey level(s), committee views by {worst_proba:.1e}, "
                      f"members back on the CPU: {home}, robustness table {len(table)} rows",
            "rotation_max_grey_difference": worst_grey, "committee_max_difference": worst_proba}


def checkpoints(check: Check, seconds: float) -> dict:
    """``kill -9`` after the first checkpoint, then ``--resume``: on CUDA, CPU -> CUDA and CUDA -> CPU."""
    gpu = check.gpu
    cases = [("cuda", "bncnn", 20_000, gpu, gpu), ("cpu->cuda", "mlp", 20_000, "cpu", gpu),
             ("cuda->cpu", "mlp", 20_000, gpu, "cpu")]
    results, end = {}, time.monotonic() + seconds
    for name, model, limit, first, then in cases:
        path = check.workdir / f"{name.replace('>', '')}.pt"
        command = [check.python, "-m", "mnist_lib", "train", model, "--epochs", "2", "--limit", str(limit),
                   "--no-progress", "--checkpoint", str(path)]
        if check.dry:
            results[name] = f"{model} --device {first}, kill -9, --device {then} --resume"
            continue
        killed = kill_after_checkpoint(command + ["--device", first, "--overwrite"], path, end - time.monotonic(),
                                       check.workdir / f"{path.stem}.log")
        resumed = _run(check, command + ["--device", then, "--resume"], end - time.monotonic())
        accuracy = _accuracy(resumed.get("tail", ""))
        results[name] = {"first_run": killed, "resume": resumed["result"], "test_acc": accuracy}
    if check.dry:
        return {"result": "DRY", "detail": f"would run {' '.join(command[1:5])} ...: " + "; ".join(results.values()),
                "cases": results}
    ok = all(r["first_run"] == "killed" and r["resume"] == "PASS" and r["test_acc"] for r in results.values())
    return {"result": "PASS" if ok else "FAIL", "cases": results,
            "detail": ", ".join(f"{k}: {v['first_run']}, resume {v['resume']} ({v['test_acc']})"
                                for k, v in results.items())}


def shared_gpu_workers(check: Check, seconds: float) -> dict:
    """run_jobs with two processes sharing the GPU: the same networks as one process, up to TF32."""
    from .experiments import MLP300_ADAM, run_jobs

    data = check.data()
    jobs = [(MLP300_ADAM.with_(epochs=1), seed) for seed in range(3)]
    alone = run_jobs(jobs, data, device=check.device, progress=False)
    if check.dry:  # worker processes take longer to start than a dry run has
        return {"result": "DRY", "detail": "ran the jobs in one process; would run them in 2 processes on the GPU"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared = run_jobs(jobs, data, device=check.device, progress=False, workers=2)
    warned = any("processes share one device" in str(w.message) for w in caught)
    gap = (alone.final()["test_acc"] - shared.final()["test_acc"]).abs().max()
    ok = shared.workers == 2 and warned and gap <= 0.01
    return {"result": "PASS" if ok else "FAIL", "detail": f"{shared.workers} processes, warned: {warned}, "
            f"largest test-accuracy difference to one process {gap:.4f}"}


def bench_quick(check: Check, seconds: float) -> dict:
    """The benchmark on a small subset: every part, every CUDA switch, runs."""
    out = check.workdir / "bench_quick.json"
    return _run(check, [check.python, "-m", "mnist_lib", "bench", "--quick", "--device", check.gpu,
                        "--out", str(out)], seconds)


def bench_full(check: Check, seconds: float) -> dict:
    """The full benchmark; its JSON (bench/cuda.json) holds the headline numbers the targets read."""
    return _run(check, [check.python, "-m", "mnist_lib", "bench", "--device", check.gpu,
                        "--out", str(check.bench_json)], seconds)


def chapters_smoke(check: Check, seconds: float) -> dict:
    """Every chapter under the smoke profile on CUDA, checked cells compared (nbval)."""
    env = {"MNIST_PROFILE": "smoke", "MNIST_DEVICE": check.gpu, "MNIST_PROGRESS": "0"}
    return _run(check, [check.python, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q", "chapters"],
                seconds, env)


def chapters_full(check: Check, seconds: float) -> dict:
    """Every chapter under the full profile on CUDA, timed one by one (kernel start included; nothing is saved)."""
    env = {"MNIST_PROFILE": "full", "MNIST_DEVICE": check.gpu, "MNIST_PROGRESS": "0"}
    notebooks, end, failed = sorted((ROOT / "chapters").glob("*.ipynb")), time.monotonic() + seconds, []
    for notebook in notebooks:
        command = [check.python, "-m", "jupyter", "execute", "--timeout=-1", str(notebook)]
        if check.dry:
            return {"result": "DRY", "detail": f"would run, for each of {len(notebooks)} chapters: {' '.join(command)}"}
        if end - time.monotonic() < 30:
            break
        done = _run(check, command, end - time.monotonic(), env)
        if done["result"] == "TIME":
            break
        if done["result"] != "PASS":
            failed.append(notebook.stem)
        else:
            check.chapter_seconds[notebook.stem] = done["seconds"]
    missing = len(notebooks) - len(check.chapter_seconds) - len(failed)
    detail = ", ".join(f"{k[:2]} {v:.0f} s" for k, v in check.chapter_seconds.items())
    if missing:
        detail += f"; {missing} chapter(s) not run: the stage's time ran out"
    if failed:
        detail += f"; failed: {', '.join(failed)}"
    return {"result": "FAIL" if failed else "TIME" if missing else "PASS", "detail": detail,
            "chapter_seconds": check.chapter_seconds, "failed": failed}
