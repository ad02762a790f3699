"""How fast could the book's full profile be on this machine? A lower bound from the arithmetic.

    python tools/book_floor.py [--out bench/floor.json]

For every training run whose per-epoch table is in ``results/`` (chapters 4, 6 and 7) and
whose setup is one of the library's named setups, it counts the floating-point operations of
training (forward and backward, per image, counted by ``torch.utils.flop_counter`` on the
setup's own network) times the images of every epoch trained, and divides by the machine's
matrix-multiplication peak measured by the benchmark in ``bench/cpu.json`` (float32, or bfloat16
for setups that train under bfloat16 autocast): the floor is for the machine of that benchmark run. Chapter 7's ablation (only its final table is stored) counts
each run at the cheapest of its networks. Evaluation, data movement and everything else are
left out, so each "floor" is what that training would take if every operation ran at the
peak: no implementation of the same recipes can be faster. The measured seconds beside it are
the recorded seconds of those epochs in the committed full run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from functools import partial
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from run_chapters import commit, machine  # noqa: E402

from mnist_lib import experiments  # noqa: E402
from mnist_lib.bench import training_flops_per_image  # noqa: E402
from mnist_lib.models import BNCNN  # noqa: E402

# (chapter, stored table of per-epoch rows, training images per epoch)
EPOCH_TABLES = [("04_lenet5", "lenet5_epochs", 60_000), ("04_lenet5", "cuhk_epochs", 48_000),
                ("06_deeper_cnn", "deepcnn_epochs", 60_000), ("07_beyond", "ch7_bncnn_runs", 60_000)]


def named_setups() -> dict[str, experiments.Config]:
    """Every Config the library defines, by its name."""
    found = {}
    for value in vars(experiments).values():
        for item in (value if isinstance(value, (list, tuple)) else value.values() if isinstance(value, dict)
                     else [value]):
            if isinstance(item, experiments.Config):
                found[item.name] = item
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "floor.json")
    args = parser.parse_args()
    bench = json.loads((ROOT / "bench" / "cpu.json").read_text())
    peak = {row["format"]: row["gflops"] * 1e9 for row in bench["matmul"]}
    setups, results = named_setups(), ROOT / "results"
    rows = []
    for chapter, table, images in EPOCH_TABLES:
        if not (results / f"{table}.csv").is_file():
            continue
        epochs = pd.read_csv(results / f"{table}.csv")
        for name, runs in epochs.groupby("config", sort=False):
            if name not in setups:
                continue
            config = setups[name]
            flops = training_flops_per_image(config) * images * len(runs)
            rows.append({"chapter": chapter, "table": table, "setup": name, "runs": runs["seed"].nunique(),
                         "epochs": len(runs), "tflop": flops / 1e12,
                         "format": "bfloat16" if config.amp else "float32",
                         "floor_seconds": flops / peak["bfloat16" if config.amp else "float32"],
                         "measured_seconds": float(runs["seconds"].sum())})
    ablation = results / "ch7_ablation.csv"
    if ablation.is_file():  # only the final table is stored: each run trained BEST_SINGLE's epochs
        runs = pd.read_csv(ablation).query("variant != 'full recipe'")
        head = experiments.BEST_SINGLE.with_(model=partial(BNCNN, 100, 0.5, flatten_dropout=0.25))  # ch. 6's head
        cheapest = min(training_flops_per_image(experiments.BEST_SINGLE), training_flops_per_image(head))
        flops = cheapest * 60_000 * experiments.BEST_SINGLE.epochs * len(runs)
        rows.append({"chapter": "07_beyond", "table": "ch7_ablation", "setup": "ablation (cheapest variant)",
                     "runs": len(runs), "epochs": experiments.BEST_SINGLE.epochs * len(runs), "tflop": flops / 1e12,
                     "format": "float32 or bfloat16", "floor_seconds": flops / peak["bfloat16"],
                     "measured_seconds": None})
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    floor = frame.groupby("chapter")["floor_seconds"].sum() / 60
    print("\nfloor (minutes, counted runs only):", ", ".join(f"{c} {m:.1f}" for c, m in floor.items()),
          f"; total {floor.sum():.1f}")
    args.out.write_text(json.dumps({
        "about": __doc__.split("\n\n")[2].replace("\n", " "), "machine": machine(), "commit": commit(),
        "date": datetime.date.today().isoformat(), "peak_gflops": {k: v / 1e9 for k, v in peak.items()},
        "peak_measured": f"bench/cpu.json (its run of {bench['environment']['date'][:10]}, commit "
                         f"{bench['environment']['git_commit']}): the floor is for the machine of that run",
        "floor_minutes_by_chapter": floor.round(2).to_dict(), "floor_minutes_total": round(float(floor.sum()), 2),
        "runs": frame.to_dict("records")}, indent=1) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
