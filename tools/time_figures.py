"""Time ``python -m mnist_lib figure NAME`` for every figure, each in a fresh process (start-up included).

    python tools/time_figures.py [--out bench/figures.json] [NAME ...]

The issue's target: any figure redraws in at most 5 s from ``results/``. Writes the seconds
per figure, the slowest, the machine and the commit to a JSON file and prints a table.
Run it on an otherwise idle machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from run_chapters import commit, machine  # noqa: E402

TARGET_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "figures.json")
    parser.add_argument("names", nargs="*", help="figures to time (default: all)")
    args = parser.parse_args()
    listed = subprocess.run([sys.executable, "-m", "mnist_lib", "figure", "--list"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\n")
    names = args.names or [line.split()[0] for line in listed if line.strip()]
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "mnist_lib", "figure", name, "--out", f"{tmp}/{name}.png"],
                                 cwd=ROOT, capture_output=True, text=True)
            seconds[name] = round(time.perf_counter() - start, 2) if run.returncode == 0 else None
            print(f"{name:32s} {seconds[name] if seconds[name] is not None else 'FAILED: ' + run.stderr.strip()}",
                  flush=True)
    timed = [s for s in seconds.values() if s is not None]
    result = {"figures": seconds, "slowest_seconds": max(timed, default=None), "target_seconds": TARGET_SECONDS,
              "failed": [n for n, s in seconds.items() if s is None], "machine": machine(), "commit": commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "protocol": "wall time of `python -m mnist_lib figure NAME --out FILE.png`, one fresh process per figure, "
                          "Python start-up and imports included, results from results/"}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    verdict = "PASS" if timed and max(timed) <= TARGET_SECONDS and not result["failed"] else "FAIL"
    print(f"slowest {result['slowest_seconds']} s over {len(timed)} figures (target {TARGET_SECONDS} s): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
