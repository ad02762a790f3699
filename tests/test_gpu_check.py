"""mnist_lib.gpu_check: the GPU check's plan, rehearsed on the CPU (--dry-run), and its verdicts."""

from __future__ import annotations

import json
import sys
import time

import pytest

from conftest import HAS_CUDA
from mnist_lib import gpu_check, gpu_stages


def test_dry_run_rehearses_every_stage_and_writes_the_summary(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    start = time.monotonic()
    assert gpu_check.main(["--dry-run", "--out", str(out), "--bench-json", str(tmp_path / "none.json")]) == 0
    assert time.monotonic() - start < 60
    summary = json.loads(out.read_text())
    assert summary["dry_run"] and summary["device"] == "cpu"
    stages = {s["name"]: s for s in summary["stages"]}
    assert list(stages) == [s.name for s in gpu_check.STAGES]
    assert {s["result"] for s in stages.values()} <= {"INFO", "PASS", "DRY"}
    assert stages["device-mixing"]["result"] == "PASS"  # ran, on the CPU
    assert "--nbval-lax" in stages["chapters-smoke"]["command"] and "-m gpu" in stages["gpu-tests"]["command"]
    assert "bench --device cuda --out" in stages["bench-full"]["command"]
    assert [t["result"] for t in summary["targets"]] == ["not measured"] * 4
    printed = capsys.readouterr().out
    assert "GPU targets:" in printed and "DRY   chapters-full" in printed


def test_stages_that_do_not_fit_the_budget_are_skipped_with_a_note(tmp_path, capsys):
    assert gpu_check.main(["--dry-run", "--budget", "50", "--stages", "environment,bench-full,chapters-full"]) == 0
    printed = capsys.readouterr().out
    assert "INFO  environment" in printed
    assert "SKIP  bench-full" in printed and "needs 540 s" in printed and "raise --budget" in printed


def test_unknown_stage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--dry-run", "--stages", "unit,warp-drive"])
    assert info.value.code == 2
    assert "unknown stage(s) warp-drive" in capsys.readouterr().err


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
def test_without_cuda_it_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a CUDA GPU" in err and "--dry-run" in err
    assert not out.exists()


def _bench(tmp_path, device="cuda", **headline):
    path = tmp_path / "cuda.json"
    path.write_text(json.dumps({"environment": {"device": device}, "headline": headline}))
    return path


def test_targets_are_judged_from_the_bench_headline(tmp_path):
    bench = _bench(tmp_path, seconds_to_99=0.4, canonical_seconds_to_99=30.0, speedup_vs_baseline=7.5)
    rows = gpu_check.targets(bench, {"01": 100.0, "02": 200.0}, chapters=2)
    assert [r["result"] for r in rows] == ["PASS", "FAIL", "PASS", "INFO"]  # 0.4 s; 75x; 5 min; reported
    assert rows[1]["value"] == pytest.approx(75.0)
    slow = gpu_check.targets(_bench(tmp_path, seconds_to_99=0.6, speedup_to_99_vs_canonical=150.0), {}, chapters=2)
    assert [r["result"] for r in slow] == ["FAIL", "PASS", "not measured", "not measured"]


def test_targets_never_invent_numbers(tmp_path):
    partial_book = gpu_check.targets(_bench(tmp_path), {"01": 10.0}, chapters=9)  # no keys, one chapter of nine
    assert all(r["result"] == "not measured" and r["value"] is None for r in partial_book)
    on_cpu = gpu_check.targets(_bench(tmp_path, device="cpu", seconds_to_99=0.1), {}, chapters=9)
    assert on_cpu[0]["result"] == "not measured" and "measured on cpu" in on_cpu[0]["source"]


def test_kill_after_checkpoint(tmp_path):
    """The resume stage's first run is killed as soon as its checkpoint exists, not later."""
    ckpt = tmp_path / "run.pt"
    slow = [sys.executable, "-c", f"import pathlib, time; pathlib.Path({str(ckpt)!r}).write_text('x'); time.sleep(60)"]
    start = time.monotonic()
    assert gpu_stages.kill_after_checkpoint(slow, ckpt, 30, tmp_path / "log") == "killed"
    assert time.monotonic() - start < 20
    quick = [sys.executable, "-c", "pass"]
    assert gpu_stages.kill_after_checkpoint(quick, tmp_path / "never.pt", 30, tmp_path / "log") == "finished"
    broken = [sys.executable, "-c", "raise SystemExit(3)"]
    assert gpu_stages.kill_after_checkpoint(broken, tmp_path / "never.pt", 30, tmp_path / "log") == "failed (exit 3)"
