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
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .gpu_stages import (  # the stages themselves
    bench_full, bench_quick, chapters_full, chapters_smoke, checkpoints, device_mixing, environment, gpu_tests,
    shared_gpu_workers, syncs_per_epoch, unit_suite)
from .paths import BENCH
from .paths import CHECKOUT as ROOT  # the book's folder (tests/, chapters/, bench/)

BENCH_JSON = BENCH / "cuda.json"
SUMMARY_JSON = BENCH / "gpu_check.json"
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
