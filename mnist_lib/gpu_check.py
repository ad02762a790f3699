"""The GPU check: one command that proves the library on a CUDA machine (``make gpu-check``).

    python -m mnist_lib.gpu_check                # on a CUDA machine, about ten minutes
    python -m mnist_lib.gpu_check --budget 2400  # with the full benchmark and chapters
    python -m mnist_lib.gpu_check --dry-run      # anywhere: the plan rehearsed on the CPU

The check is a list of stages (:data:`STAGES`), run in order. Each has a time budget,
and the whole run has one (``--budget``): a stage that no longer fits is skipped with a
note. Each prints one line: PASS, FAIL, INFO; SKIP when it did not fit, TIME when it did
not finish in its budget; DRY for a command that a dry run only lists. At the end come
PASS / FAIL against the GPU targets, read from the benchmark's JSON (``bench/cuda.json``)
and the chapters' times, "not measured" where a number is missing. A JSON summary goes
to ``bench/gpu_check.json``.

``--dry-run`` runs the in-process stages on the CPU at tiny sizes and lists the commands
of the others (the test suite, the benchmark, the chapters, the command-line resumes):
the unit tests run it. Exit status: 0 if no stage failed, 1 otherwise, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent  # the book's folder (tests/, chapters/, bench/)
BENCH_JSON = ROOT / "bench" / "cuda.json"
SUMMARY_JSON = ROOT / "bench" / "gpu_check.json"
DEFAULT_BUDGET = 600.0
BOOK_MINUTES_TARGET = 10.0


@dataclass
class Check:
    """What every stage needs: where to compute, how big, and the time left."""

    dry: bool
    device: torch.device
    deadline: float
    workdir: Path
    bench_json: Path
    python: str = sys.executable
    chapter_seconds: dict[str, float] = field(default_factory=dict)
    _data: object = None

    @property
    def gpu(self) -> str:
        """The device the commands run on (what a dry run lists, too)."""
        return "cuda" if self.dry else str(self.device)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def size(self, gpu: int, dry: int) -> int:
        """``gpu`` on a GPU, ``dry`` in a dry run."""
        return dry if self.dry else gpu

    def data(self):
        """A slice of MNIST: 10,000 training and 2,000 test images (64 and 64 in a dry run)."""
        if self._data is None:
            from .data import MNIST, load_mnist

            mnist = load_mnist()
            self._data = MNIST(train=mnist.train.head(self.size(10_000, 64)),
                               test=mnist.test.head(self.size(2_000, 64)))
        return self._data


@dataclass(frozen=True)
class Stage:
    name: str
    what: str
    run: Callable[[Check, float], dict]  # (check, seconds allowed) -> {"result": ..., "detail": ..., ...}
    seconds: float  # its budget
    needs: float = 0.0  # skip it when less than this is left (default: its budget)


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
    from .committee import TTA_VIEWS, member_probabilities
    from .models import MLP
    from .robustness import robustness
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
    table = robustness({"mlp": (members[0], (0.1307, 0.3081))}, data.test.head(64), shifts=[0, 2], angles=[0, 10],
                       device=check.device)
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


STAGES: list[Stage] = [
    Stage("environment", "device, torch and CUDA versions", environment, 5),
    Stage("unit", "the unit suite on the GPU host", unit_suite, 150, needs=60),
    Stage("gpu-tests", "GPU-marked end-to-end tests", gpu_tests, 60),
    Stage("syncs", "host syncs per epoch, each named setup", syncs_per_epoch, 40, needs=15),
    Stage("device-mixing", "rotation, committee views, robustness across devices", device_mixing, 20),
    Stage("checkpoints", "kill -9 and --resume on CUDA, CPU<->CUDA", checkpoints, 90, needs=45),
    Stage("shared-gpu", "run_jobs with 2 processes on one GPU", shared_gpu_workers, 45),
    Stage("bench-quick", "python -m mnist_lib bench --quick", bench_quick, 60),
    Stage("chapters-smoke", "every chapter, smoke profile, nbval, MNIST_DEVICE=cuda", chapters_smoke, 120, needs=60),
    Stage("bench-full", "the full benchmark -> bench/cuda.json", bench_full, 700, needs=540),
    Stage("chapters-full", "every chapter, full profile, timed", chapters_full, 900, needs=300),
]


# ---------------------------------------------------------------------------- targets


def targets(bench_json: Path, chapter_seconds: dict[str, float], chapters: int) -> list[dict]:
    """PASS / FAIL against the GPU targets, from the benchmark's headline and the chapters' times.

    Reads ``headline`` keys of the benchmark JSON: ``seconds_to_99``, and
    ``speedup_to_99_vs_canonical`` (or ``canonical_seconds_to_99``, the canonical PyTorch
    MNIST example's recipe on the same GPU); a missing key is "not measured".
    """
    headline, source = {}, f"{bench_json} (missing)"
    if bench_json.exists():
        bench = json.loads(bench_json.read_text())
        device = str(bench.get("environment", {}).get("device", ""))
        source = f"{bench_json}, measured on {device or 'an unnamed device'}"
        headline = bench.get("headline", {}) if device.startswith("cuda") else {}
    speedup = headline.get("speedup_to_99_vs_canonical")
    if speedup is None and headline.get("canonical_seconds_to_99") and headline.get("seconds_to_99"):
        speedup = headline["canonical_seconds_to_99"] / headline["seconds_to_99"]
    book = sum(chapter_seconds.values()) / 60 if chapters and len(chapter_seconds) == chapters else None
    rows = [
        ("99% test accuracy in <= 0.5 s of training (moonshot 0.25 s)", headline.get("seconds_to_99"), 0.5, "<=", "s"),
        ("time to 99% >= 100x faster than the canonical PyTorch MNIST example's recipe", speedup, 100.0, ">=", "x"),
        (f"the whole book's full profile in <= {BOOK_MINUTES_TARGET:g} min", book, BOOK_MINUTES_TARGET, "<=", "min"),
    ]
    results = []
    for target, value, threshold, better, unit in rows:
        if value is None:
            result = "not measured"
        else:
            result = "PASS" if (value <= threshold if better == "<=" else value >= threshold) else "FAIL"
        results.append({"target": target, "value": value, "unit": unit, "threshold": threshold, "result": result})
    per_epoch = headline.get("speedup_vs_baseline")
    results.append({"target": "per-epoch speed-up over the conventional pipeline (measured, not targeted)",
                    "value": per_epoch, "unit": "x", "threshold": None,
                    "result": "INFO" if per_epoch is not None else "not measured"})
    for row in results:
        row["source"] = source if row["unit"] != "min" else "the chapters-full stage"
    return results


# ------------------------------------------------------------------------------- main


def run_check(check: Check, stages: list[Stage], budget: float) -> dict:
    """Run ``stages`` in order within ``budget`` seconds; print a line each; the summary."""
    summary = {"schema": 1, "dry_run": check.dry, "device": str(check.device), "budget_seconds": budget,
               "stages": []}
    start = time.monotonic()
    for stage in stages:
        left = check.left()
        if left < (stage.needs or stage.seconds):
            row = {"result": "SKIP", "detail": f"needs {stage.needs or stage.seconds:.0f} s, {max(left, 0):.0f} s "
                                              "of the budget left (raise --budget)"}
        else:
            began = time.monotonic()
            try:
                row = stage.run(check, min(stage.seconds, left))
            except Exception as error:  # a stage that breaks is a FAIL, and the check goes on
                row = {"result": "FAIL", "detail": f"{type(error).__name__}: {error}"[:300]}
            row.setdefault("seconds", round(time.monotonic() - began, 1))
        summary["stages"].append({"name": stage.name, "what": stage.what} | row)
        print(f"{row['result']:5} {stage.name:15} {row.get('seconds', 0):6.1f} s  {row['detail']}", flush=True)
    chapters = len(list((ROOT / "chapters").glob("*.ipynb")))
    summary["targets"] = targets(check.bench_json, check.chapter_seconds, chapters)
    print("\nGPU targets:")
    for row in summary["targets"]:
        value = "" if row["value"] is None else f" ({row['value']:.3g} {row['unit']})"
        print(f"  {row['result']:12} {row['target']}{value}")
    summary["wall_seconds"] = round(time.monotonic() - start, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_lib.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="rehearse on the CPU: in-process stages at tiny sizes, commands only listed")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"seconds for the whole check (default {DEFAULT_BUDGET:g}); later stages that do not "
                             "fit are skipped")
    parser.add_argument("--stages", help=f"comma-separated stages to run (default all: "
                                         f"{','.join(s.name for s in STAGES)})")
    parser.add_argument("--out", type=Path, help=f"the JSON summary (default {SUMMARY_JSON.relative_to(ROOT)}; "
                                                 "none in a dry run)")
    parser.add_argument("--bench-json", type=Path, default=BENCH_JSON, help="the benchmark's JSON to judge targets by")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        print(f"gpu-check needs a CUDA GPU and this machine has none (torch {torch.__version__}, {built}); run it on "
              "a CUDA machine, or add --dry-run to rehearse the plan on the CPU", file=sys.stderr)
        return 2
    names = [s.name for s in STAGES]
    wanted = args.stages.split(",") if args.stages else names
    if unknown := [n for n in wanted if n not in names]:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; expected some of: {', '.join(names)}")
    out = args.out or (None if args.dry_run else SUMMARY_JSON)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as workdir:
        check = Check(dry=args.dry_run, device=torch.device("cpu" if args.dry_run else "cuda"),
                      deadline=time.monotonic() + args.budget, workdir=Path(workdir), bench_json=args.bench_json)
        summary = run_check(check, [s for s in STAGES if s.name in wanted], args.budget)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1, default=str) + "\n")
        print(f"\nsummary: {out}")
    return 1 if any(s["result"] == "FAIL" for s in summary["stages"]) else 0


if __name__ == "__main__":
    sys.exit(main())
