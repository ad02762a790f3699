"""The results store: the tidy tables behind the book's figures, one CSV file per result.

A chapter saves each experiment's table as it computes it (:func:`save`) and draws its
figures from the store (:mod:`mnist_lib.book.figures`), so that any figure can be redrawn
later in seconds, without training, from the committed results of the full profile::

    python -m mnist_lib figure --list
    python -m mnist_lib figure lenet5-epochs --out lenet5.png

Where results go (:func:`root`): ``$MNIST_RESULTS`` if set; else, in a checkout, the
committed ``results/`` folder for the ``full`` profile and ``_build/results/<profile>/``
for the others, so a quick run never overwrites the book's results. Next to each
``NAME.csv`` a ``NAME.json`` says how it was made: the chapter, the profile, the code
version (git commit), the machine and the date.

An experiment too slow for class goes through :func:`measured`: the ``lecture`` profile
then shows the full run's stored table instead of measuring it again, and says so.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pandas as pd

from ..files import write_text
from ..paths import CHECKOUT, in_checkout
from ..profiles import profile

ENV_VAR = "MNIST_RESULTS"  # a folder to read and write results in, instead of the default


class ResultNotFound(FileNotFoundError):
    """A result that the store does not hold (yet)."""


def root(profile_name: str | None = None) -> Path:
    """The folder results are read from and written to under ``profile_name`` (default: the active one)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    name = profile(profile_name).name
    base = CHECKOUT if in_checkout() else Path.cwd()
    return base / "results" if name == "full" else base / "_build" / "results" / name


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def code_version() -> str:
    """The checkout's commit (with ``+changes`` if files differ from it), else the package version."""
    try:
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "mnist_lib")  # the code, not the outputs
        return _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from .. import __version__

        return f"mnist_lib {__version__}"


def machine() -> str:
    """The CPU model, architecture, core count and vector instructions torch uses, and the GPU if torch sees
    one, e.g. ``AMD EPYC (x86_64, 2 cores, AVX2)``: two machines with one model name can differ in speed
    several times over (bfloat16 arithmetic, AVX-512)."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu} ({platform.machine()}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}){gpu}"


# The code a chapter runs is the code it imported: its version is read once, when the store is imported.
CODE_AT_IMPORT = code_version()


def save(name: str, frame: pd.DataFrame, chapter: str) -> pd.DataFrame:
    """Store ``frame`` as result ``name`` of ``chapter`` (e.g. ``"04_lenet5"``); returns it unchanged."""
    folder = root()
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{name}.csv", frame.to_csv(index=False))
    meta = {"name": name, "chapter": chapter, "profile": profile().name, "code": CODE_AT_IMPORT,
            "machine": machine(), "date": datetime.date.today().isoformat(), "rows": len(frame)}
    write_text(folder / f"{name}.json", json.dumps(meta, indent=1) + "\n")
    return frame


def measured(names: str | tuple[str, ...], chapter: str, measure: Callable) -> pd.DataFrame | tuple:
    """Result(s) ``names`` of ``chapter``: what ``measure()`` returns, saved, or the full run's, replayed.

    For an experiment too slow to re-measure in class; ``measure`` returns one table, or one
    per name when ``names`` is a tuple. Under a profile that replays (``lecture``), the full
    run's stored tables are used instead of ``measure()``: they are copied, with their
    provenance, into the active store (where the chapter's figures read them) and a printed
    line says so. Where the full run's tables are not stored, they are measured as usual.
    """
    single = isinstance(names, str)
    names = (names,) if single else tuple(names)
    source, active = root("full"), root()
    if profile().replay and all((source / f"{name}.csv").is_file() for name in names):
        for name in names:
            if source != active:
                active.mkdir(parents=True, exist_ok=True)
                for suffix in (".csv", ".json"):
                    if (source / f"{name}{suffix}").is_file():
                        shutil.copyfile(source / f"{name}{suffix}", active / f"{name}{suffix}")
            made = about(name, source)
            print(f"{profile().name} profile: {name} is the stored result of a {made.get('profile', '?')} run (code "
                  f"{made.get('code', '?')}, {made.get('date', '?')}), not measured again here; "
                  "the full profile re-measures it")
        frames = tuple(load(name, active) for name in names)
    else:
        if profile().replay:
            print(f"{profile().name} profile: no stored full-run result {', '.join(names)} in {source}: "
                  "measuring it now")
        frames = measure()
        frames = (frames,) if single else tuple(frames)
        if len(frames) != len(names):
            raise ValueError(f"measure() returned {len(frames)} tables for the {len(names)} names {names}")
        for name, frame in zip(names, frames):
            save(name, frame, chapter)
    return frames[0] if single else frames


def load(name: str, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Result ``name`` from ``folder`` (default: :func:`root`); :class:`ResultNotFound` if absent."""
    path = Path(folder or root()) / f"{name}.csv"
    if not path.is_file():
        raise ResultNotFound(f"no result {name!r} in {path.parent}: run the chapter that computes it "
                             "(make chapter CH=..), or redraw under a profile (figure NAME --profile lecture)")
    return pd.read_csv(path)


def about(name: str, folder: str | os.PathLike | None = None) -> dict:
    """How result ``name`` was made (chapter, profile, code, machine, date), or ``{}``."""
    path = Path(folder or root()) / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}
