#!/bin/bash
# Land chapter 7 after its full run: python tests/run_chapters.py --profile full 07 with
# chapters/07_beyond.ipynb = dev/pending/07_beyond.ipynb and MNIST_KEEP_RUNS=dev/kept_runs/07.
# Checks the executed chapter, wires its figures and headlines, removes the pending files, commits.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python - <<'PY'
import json
nb = json.load(open("chapters/07_beyond.ipynb"))
errors = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
          for o in c.get("outputs", []) if o["output_type"] == "error"]
assert not errors, f"error outputs in cells {errors}"
assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code" and c["source"].strip()), "unexecuted cells"
meta = json.load(open("results/ch7_ablation.json"))
assert meta["profile"] == "full", meta
print("chapter 7: executed, no error output; results from", meta["code"], meta["machine"], meta["date"])
PY
git apply dev/pending/ch07_wiring.patch
git rm -q dev/pending/07_beyond.ipynb dev/pending/ch07_wiring.patch dev/lecture_edits/ch07_prose.py dev/lecture_edits/ch07_bf16.py
git rm -rq --ignore-unmatch dev/kept_runs/07
git rm -q dev/pending/land_ch07.sh
git add chapters/07_beyond.ipynb bench/full.json results mnist_lib/book/figures/__init__.py mnist_lib/book/headlines.py tests/test_figures.py
git status --short
