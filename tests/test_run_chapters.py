"""The chapter runner's record of chapter times (bench/<profile>.json)."""

import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("run_chapters", Path(__file__).with_name("run_chapters.py"))
run_chapters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_chapters)


@pytest.fixture
def bench_in(tmp_path, monkeypatch):
    monkeypatch.setattr(run_chapters, "ROOT", tmp_path)
    monkeypatch.setattr(run_chapters, "machine", lambda: "test machine")
    monkeypatch.delenv("MNIST_EARLIER_SECONDS", raising=False)
    return tmp_path / "bench"


def test_a_chapter_time_is_merged_with_its_machine(bench_in):
    run_chapters.record("full", "01_x.ipynb", 12.34)
    run_chapters.record("full", "02_y.ipynb", 20.0)
    data = json.loads((bench_in / "full.json").read_text())
    assert data["chapters"] == {"01_x.ipynb": 12.3, "02_y.ipynb": 20.0} and data["total_seconds"] == 32.3
    assert data["runs"]["01_x.ipynb"]["machine"] == "test machine" and "parts" not in data["runs"]["01_x.ipynb"]


def test_a_resumed_run_counts_its_stopped_part(bench_in, monkeypatch):
    monkeypatch.setenv("MNIST_EARLIER_SECONDS", "9000")
    run_chapters.record("full", "07_z.ipynb", 1500.0)
    run = json.loads((bench_in / "full.json").read_text())["runs"]["07_z.ipynb"]
    assert run["seconds"] == 10500.0 and run["parts"] == [9000.0, 1500.0]
