"""Execute chapters in place under a profile and record how long each took.

    python tests/run_chapters.py [--profile full|lecture|smoke] [--out DIR] [01 02 ...]
    (make chapter / make reproduce / make lecture)

Each chapter runs in its own kernel (``jupyter execute --inplace``); a chapter whose run
fails keeps its previous file (the run writes to a temporary copy first). With ``--out``
the executed copies go to ``DIR`` and the committed chapters stay as they are (``make
lecture`` does this: the book keeps its full-profile outputs). The seconds
are merged into ``bench/<profile>.json``: a ``chapters`` object mapping each chapter's
file name to its wall time, with the machine, the commit and the date of each run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import filelock

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"


def machine() -> str:
    """The machine, as the results store records it (e.g. ``AMD EPYC (x86_64, 2 cores, AVX2)``)."""
    from mnist_lib.book.store import machine as described

    return described()


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_chapter(path: Path, profile: str, out: Path | None = None) -> float:
    """Execute ``path`` under ``profile``, in place or into folder ``out``; returns the seconds.

    In place, a failed cell puts the old file back."""
    env = os.environ | {"MNIST_PROFILE": profile, "MNIST_PROGRESS": "0"}
    where = ["--inplace"] if out is None else [f"--output={out.resolve() / path.name}"]
    with tempfile.TemporaryDirectory() as tmp:
        backup = Path(tmp) / path.name
        shutil.copy2(path, backup)
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "jupyter", "execute", *where, "--timeout=-1", str(path)],
                                 env=env, start_new_session=True)  # its own group: the kernel goes with it
        try:
            if child.wait() != 0:
                raise subprocess.CalledProcessError(child.returncode, child.args)
        except BaseException:  # a failed cell, Ctrl-C or kill: stop the run, never leave a half-run chapter behind
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            shutil.copy2(backup, path)
            raise
    return time.perf_counter() - start


def record(profile: str, name: str, seconds: float) -> Path:
    """Merge one chapter's time into bench/<profile>.json.

    A run that resumed an earlier, stopped one from its kept trainings (``MNIST_KEEP_RUNS``)
    counts that one's wall time too: ``MNIST_EARLIER_SECONDS``, the seconds of the earlier parts.
    """
    earlier = float(os.environ.get("MNIST_EARLIER_SECONDS") or 0)
    out = ROOT / "bench" / f"{profile}.json"
    out.parent.mkdir(exist_ok=True)
    with filelock.FileLock(out.parent / f".{out.name}.lock"):  # chapters may run side by side
        data = json.loads(out.read_text()) if out.exists() else {"profile": profile, "chapters": {}, "runs": {}}
        data["chapters"][name] = round(earlier + seconds, 1)
        data["runs"][name] = {
            "seconds": round(earlier + seconds, 1), "machine": machine(), "commit": commit(),
            "threads": int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()),
            "alongside": os.environ.get("MNIST_ALONGSIDE", ""),  # other work sharing the CPU during the run
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if earlier:
            data["runs"][name]["parts"] = [round(earlier, 1), round(seconds, 1)]  # a stopped run, then its resumption
        data["total_seconds"] = round(sum(data["chapters"].values()), 1)
        out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` restores the chapter like Ctrl-C does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("MNIST_PROFILE", "full"))
    parser.add_argument("--out", type=Path, help="write the executed chapters here, not in place")
    parser.add_argument("chapters", nargs="*", help="chapter numbers, e.g. 02 07 (default: all)")
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    paths = sorted(CHAPTERS.glob("*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in {c.zfill(2) for c in args.chapters}]
    if not paths:
        print(f"no chapter matches {args.chapters}", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        try:
            seconds = run_chapter(path, args.profile, args.out)
        except subprocess.CalledProcessError:
            failed.append(path.name)
            print(f"{path.name}: FAILED" + ("" if args.out else " (file left as it was)"), flush=True)
            continue
        record(args.profile, path.name, seconds)
        print(f"{path.name}: {seconds:.0f} s ({args.profile})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
