"""``python -m mnist_lib doctor``: what a student pastes into a question.

A plain-text report of the environment (versions, device, threads), whether the data
check out, and whether the book is built and up to date (or, with ``build=True``,
whether it builds at all). Every check is independent and reports its own failure:
the doctor never crashes because something is missing.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import torch

from . import __version__
from . import data as data_mod
from .paths import CHECKOUT, PACKAGE
from .profiles import ENV_VAR as PROFILE_ENV_VAR
from .profiles import profile
from .train import DEVICE_ENV_VAR, choose_device, describe_device

PROJECT_ROOT = CHECKOUT  # the book's folder, when mnist_lib runs from a checkout
PACKAGES = ("torchvision", "numpy", "pillow", "jupyter-book")
OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"


@dataclass
class Check:
    """One line of the report: ``status`` is OK, NOTE or PROBLEM (or "" for plain facts)."""

    name: str
    text: str
    status: str = ""


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; whatever it raises becomes a PROBLEM line, not a crash."""
    try:
        return check()
    except Exception as e:  # the doctor reports, it never fails
        return Check(name, f"{type(e).__name__}: {e}", PROBLEM)


def environment_checks() -> list[Check]:
    """Python, the packages, the device, CUDA and MPS, threads and the MNIST_* settings."""
    checks = [
        Check("python", f"{platform.python_version()} ({sys.executable})"),
        Check("platform", platform.platform()),
        Check("mnist_lib", f"{__version__} ({PACKAGE})"),
        Check("torch", torch.__version__),  # with its build tag, e.g. +cu130 or +cpu
    ]
    for package in PACKAGES:
        version = _version(package)
        checks.append(Check(package, version, PROBLEM if version == "not installed" else ""))
    checks.append(_guarded("device", _device))
    checks.append(_guarded("CUDA", _cuda))
    checks.append(_guarded("MPS", lambda: Check("MPS", (
        "available" if torch.backends.mps.is_available()
        else "not available" + (" (torch was built with it)" if torch.backends.mps.is_built() else "")))))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    checks.append(Check("threads", f"torch uses {torch.get_num_threads()}; {cores} CPU cores available"))
    settings = ", ".join(f"{var}={os.environ[var]!r}" if os.environ.get(var) else f"{var} unset"
                         for var in (PROFILE_ENV_VAR, DEVICE_ENV_VAR, data_mod.DATA_ENV_VAR, "MNIST_PROGRESS"))
    checks.append(_guarded("settings", lambda: Check("settings", f"profile {profile().name} ({settings})")))
    return checks


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _device() -> Check:
    try:
        return Check("device", describe_device(choose_device()), OK)
    except ValueError as e:  # only $MNIST_DEVICE can make the default choice fail
        return Check("device", f"${DEVICE_ENV_VAR}={os.environ.get(DEVICE_ENV_VAR)!r}: {e}", PROBLEM)


def _cuda() -> Check:
    built = f"torch built for CUDA {torch.version.cuda}" if torch.version.cuda else "torch built without CUDA"
    if not torch.cuda.is_available():
        return Check("CUDA", f"not available ({built})")
    names = ", ".join(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count()))
    return Check("CUDA", f"available: {names} ({built})")


def data_check(root: str | os.PathLike | None = None) -> Check:
    """Load and verify the MNIST files (the SHA-256 of each)."""
    def check() -> Check:
        try:
            folder = data_mod.data_root(root)  # raises, listing where it looked, when no folder holds the files
            data = data_mod.load_mnist(root)  # not `folder`: its errors name $MNIST_DATA when that is the source
        except data_mod.MNISTDataError as e:
            return Check("data", str(e), PROBLEM)
        return Check("data", f"{folder}: {len(data.train):,} training and {len(data.test):,} test images, "
                             "SHA-256 verified", OK)

    return _guarded("data", check)


def book_sources(root: Path) -> list[Path]:
    """The files a build reads: the chapters, the table of contents and the configuration."""
    candidates = [root / "_config.yml", root / "_toc.yml", root / "intro.md", *sorted((root / "chapters").glob("*"))]
    return [p for p in candidates if p.is_file()]


def built_check(root: Path = PROJECT_ROOT) -> Check:
    """Whether ``_build/html/index.html`` exists and is newer than every chapter."""
    def check() -> Check:
        index = root / "_build" / "html" / "index.html"
        chapters = sorted((root / "chapters").glob("*.ipynb"))
        if not chapters:
            return Check("book", f"no chapters found in {root / 'chapters'} (is this the book's folder?)", NOTE)
        if not index.exists():
            return Check("book", f"not built yet: {index} does not exist (make book builds it)", NOTE)
        built = index.stat().st_mtime
        stale = [p.relative_to(root).as_posix() for p in book_sources(root) if p.stat().st_mtime > built]
        when = datetime.datetime.fromtimestamp(built).strftime("%Y-%m-%d %H:%M")
        if stale:
            shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
            return Check("book", f"out of date: built {when}, then {shown} changed (make book rebuilds it)", NOTE)
        return Check("book", f"built {when}, newer than all {len(chapters)} chapters ({index})", OK)

    return _guarded("book", check)


def jupyter_book_command() -> list[str] | None:
    """The ``jupyter-book`` of this environment (next to this Python), else the one on PATH."""
    found = shutil.which("jupyter-book", path=sysconfig.get_path("scripts")) or shutil.which("jupyter-book")
    return [found] if found else None


def build_check(root: Path = PROJECT_ROOT, timeout: float = 900) -> Check:
    """Build the book into a temporary folder with ``jupyter-book build`` and report the outcome."""
    def check() -> Check:
        command = jupyter_book_command()
        if command is None:
            return Check("build", "jupyter-book is not installed in this environment (make install)", PROBLEM)
        with tempfile.TemporaryDirectory(prefix="mnist-book-build-") as out:
            start = time.perf_counter()
            try:
                proc = subprocess.run([*command, "build", str(root), "--path-output", out],
                                      capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return Check("build", f"jupyter-book build did not finish in {timeout:.0f} s", PROBLEM)
            seconds = time.perf_counter() - start
            log = proc.stdout + proc.stderr
            warnings = sum("WARNING" in line for line in log.splitlines())
            if proc.returncode == 0 and (Path(out) / "_build" / "html" / "index.html").exists():
                return Check("build", f"jupyter-book build succeeded in {seconds:.0f} s, {warnings} warning(s)", OK)
            tail = "\n".join("    " + line for line in log.strip().splitlines()[-15:])
            failed = f"jupyter-book build failed (exit code {proc.returncode}); the end of its log:\n{tail}"
            return Check("build", failed, PROBLEM)

    return _guarded("build", check)


def report(root: Path = PROJECT_ROOT, *, data: str | os.PathLike | None = None, build: bool = False) -> tuple[str, int]:
    """The doctor's report as text, and the number of problems found."""
    checks = environment_checks() + [data_check(data), built_check(root)]
    not_tried = Check("build", "not tried (add --build to build the book into a temporary folder)")
    checks.append(build_check(root) if build else not_tried)
    width = max(len(c.name) for c in checks)
    lines = ["MNIST Book doctor: paste this whole report into your question", "-" * 64]
    for c in checks:
        prefix = f"{c.status}: " if c.status in (PROBLEM, NOTE) else ""
        lines.append(f"{c.name:<{width}}  {prefix}{c.text}")
    problems = [c.name for c in checks if c.status == PROBLEM]
    lines += ["-" * 64, f"{len(problems)} problem(s): {', '.join(problems)}" if problems else "no problems found"]
    return "\n".join(lines), len(problems)
