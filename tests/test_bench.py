"""The speed benchmark (``python -m mnist_lib bench``), on the CPU and tiny sizes.

These tests check what the benchmark measures and writes, never how fast anything is:
performance is judged in the benchmark's own output (PASS / FAIL against the targets).
One ``--quick`` run of the command (in-process, so torch is imported once) feeds the
tests of the JSON, the printed tables and the figures; the rest call the measuring
functions directly on a few hundred images.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from conftest import HAS_CUDA  # noqa: E402
from mnist_lib.bench import pipeline as bench_lib  # noqa: E402
from mnist_lib.__main__ import main  # noqa: E402
from mnist_lib.augment import RandomAffine  # noqa: E402
from mnist_lib.bench import (CHAPTER7, DEFAULT_MODEL, FIRST_SPRINT, RESULTS_DIR, SPEED_TUNED, SWEEP_MODELS,  # noqa: E402
                             calibrate_workers, judge, matmul_throughput, run_bench, training_flops_per_image)
from mnist_lib.bench.baseline import (AccuracyLog, PeakMemory, TrainClock, conventional_augmentation,  # noqa: E402
                                      run_baseline)
import mnist_lib.device  # noqa: E402
from mnist_lib.bench.live import SWITCH_VARIANTS, switch_timings  # noqa: E402
from mnist_lib.bench.recipe import recipe_variants  # noqa: E402
from mnist_lib.bench.pipeline import (PLAIN, Switches, Timer, fast_switches, fit_switches, switch_problem,  # noqa: E402
                                      train_lib)
from mnist_lib.data import torchvision_root  # noqa: E402
from mnist_lib.experiments import CONFIGS, Config  # noqa: E402
from mnist_lib.models import MLP  # noqa: E402

CPU = torch.device("cpu")
TINY = Config("tiny", lambda: MLP((784, 16, 10), "relu"), lr=0.01, batch_size=64, epochs=2)
HEADLINE = ("lib_epoch_seconds", "baseline_epoch_seconds", "speedup_vs_baseline", "seconds_to_99")


def _reject_nan(text):
    raise ValueError(f"not strict JSON: {text}")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    """One ``bench --quick`` run: exit code, printed report, and the JSON it wrote."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    # bfloat16 measured as on a CPU that computes in it (emulated here if this one does not)
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        patch.setattr(mnist_lib.device, "cpu_has_bfloat16", lambda: True)
        code = main(["bench", "--quick", "--device", "cpu", "--out", str(out)])
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(),
            "seconds": time.perf_counter() - start, "json": json.loads(out.read_text(), parse_constant=_reject_nan)}


@pytest.fixture(scope="module")
def tv_root(tmp_path_factory):
    return torchvision_root(tmp_path_factory.mktemp("torchvision"))


def test_quick_run_writes_every_part(quick):
    assert quick["code"] == 0, quick["stderr"]
    result = quick["json"]
    for key in ("schema", "environment", "settings", "matmul", "peak", "baseline_workers", "ablation", "fast_switches",
                "skipped",
                "fast_switches_note", "comparison", "epochs", "batch_sweep", "model_sweep", "time_to_accuracy",
                "curves", "chapter7", "live", "headline", "targets", "wall_seconds"):
        assert key in result, key
    env = result["environment"]
    for key in ("device", "device_description", "cpu", "cpu_count", "torch_threads", "torch", "torchvision", "date"):
        assert env[key] not in (None, ""), key
    assert env["device"] == "cpu"
    settings = result["settings"]
    assert settings["quick"] is True and settings["epochs"] == 1 and settings["repeats"] == 1
    assert settings["model"] == DEFAULT_MODEL == "lenet5-improved" and settings["seed"] == 0
    assert settings["config"] == str(CONFIGS[DEFAULT_MODEL]) and settings["target_acc"] == 0.99
    assert set(HEADLINE) <= set(result["headline"])


def test_quick_run_values_are_sane(quick):
    result = quick["json"]
    assert all(row["gflops"] > 0 for row in result["matmul"])
    pipelines = {row["pipeline"]: row for row in result["comparison"]}
    assert {"baseline", "mnist_lib plain"} <= set(pipelines)
    assert pipelines["baseline"]["speedup_vs_baseline"] == pytest.approx(1.0)
    for row in pipelines.values():
        assert row["seconds_per_epoch"] > 0 and row["images_per_second"] > 0 and row["speedup_vs_baseline"] > 0
        assert 0 <= row["test_acc"] <= 1 and row["host_peak_mb"] > 0 and row["device_peak_mb"] is None
        assert row["images_per_epoch"] == result["settings"]["train_images"]
    head = result["headline"]
    assert head["lib_epoch_seconds"] > 0 and head["baseline_epoch_seconds"] > 0
    ratio = head["baseline_epoch_seconds"] / head["lib_epoch_seconds"]
    assert head["speedup_vs_baseline"] == pytest.approx(ratio, rel=1e-6)  # one repeat: the ratio of the two
    assert head["seconds_to_99"] is None or head["seconds_to_99"] > 0
    workers = result["baseline_workers"]
    assert workers["how"].startswith("default (quick") and workers["trials"] == []
    assert pipelines["baseline"]["how"].startswith(f"DataLoader, {workers['chosen']} worker(s)")
    assert result["wall_seconds"] > 0
    assert {row["pipeline"] for row in result["batch_sweep"]} == {"baseline", "mnist_lib"}
    assert all(row["seconds_per_epoch"] > 0 for row in result["batch_sweep"] + result["model_sweep"])
    assert {row["model"] for row in result["model_sweep"]} == set(SWEEP_MODELS)
    assert all(0 < row["fraction_of_matmul_peak"] for row in result["model_sweep"])
    for run in result["time_to_accuracy"]:
        assert run["reached"] == (run["seconds_to_target"] is not None) and 0 <= run["final_test_acc"] <= 1
    assert all(point["train_seconds"] >= 0 and 0 <= point["test_acc"] <= 1 for point in result["curves"])
    for target in result["targets"]:
        assert target["result"].startswith("not judged (quick"), target


def test_recipe_ablation_is_in_the_json(quick):
    result = quick["json"]
    table, runs = result["recipe_ablation"], result["recipe_runs"]
    assert table[0]["without"] == "(none: the recipe)" and len(table) == len(recipe_variants())
    assert len(runs) == len(table) * result["settings"]["repeats"]
    recipe_runs = [r for r in runs if r["ingredient"] == "(none: the recipe)"]
    tuned = [r for r in result["time_to_accuracy"] if r["run"].endswith(CONFIGS[SPEED_TUNED].name)]
    assert [r["seconds_to_target"] for r in recipe_runs] == [r["seconds_to_target"] for r in tuned]
    assert "recipe ablation" in quick["stdout"]
    first = [r for r in result["time_to_accuracy"] if r["run"].endswith("(first sprint)")]
    assert len(first) == 1 and first[0]["config"] == str(CONFIGS[FIRST_SPRINT])


def test_cuda_switches_are_reported_skipped_on_cpu(quick):
    rows = {row["change"]: row for row in quick["json"]["ablation"]}
    cuda_rows = [r for r in rows.values() if r["switches"].split("=")[0] in ("tf32", "cudnn_benchmark",
                                                                              "fused_adam", "cuda_graphs")]
    assert len(cuda_rows) == 4
    for row in cuda_rows:
        assert row["status"] == "skipped" and row["seconds_per_epoch"] is None
        assert "CUDA only" in row["note"], row
    assert rows["device-resident data (fit)"]["status"] == "measured"
    assert rows["bfloat16 autocast"]["status"] == "measured"  # CPUs autocast to bfloat16 too
    assert rows["device-resident data (fit)"]["speedup_vs_plain"] == pytest.approx(1.0)
    assert "cuda" not in quick["json"]["fast_switches"]
    not_measured = {r["change"] for r in rows.values() if r["status"] != "measured"}
    assert {r["change"] for r in quick["json"]["skipped"]} == not_measured


def test_chapter7_network_is_timed_to_its_target(quick):
    ch7 = quick["json"]["chapter7"]
    assert ch7["target"] == 0.995  # measured, within the quick run's budget of one epoch
    assert ch7["run"]["run"].endswith(CONFIGS[CHAPTER7].name) and CONFIGS[CHAPTER7].name == "BN-CNN, distorted digits"
    assert ch7["run"]["epochs_trained"] <= 1 and ch7["curve"]


def test_live_timings_are_in_the_json(quick):
    live = {(row["measurement"], row["variant"]): row for row in quick["json"]["live"]}
    assert {variant for measurement, variant in live if measurement == "switches"} == set(SWITCH_VARIANTS)
    assert live["switches", "plain fit"]["speedup"] == pytest.approx(1.0)
    workers = [row for (measurement, _), row in live.items() if measurement == "workers"]
    assert len(workers) == 2 and all(row["device"] == "cpu" for row in workers)
    assert workers[1]["speedup"] == pytest.approx(workers[0]["seconds_per_epoch"] / workers[1]["seconds_per_epoch"])
    for row in live.values():
        assert row["seconds_per_epoch"] > 0 and row["config"] == CONFIGS[CHAPTER7].name and row["images"] == 256


def test_live_switches_skip_bfloat16_on_a_cpu_without_it(cpu_bf16, small_train):
    cpu_bf16.native = False
    table = switch_timings(CONFIGS[CHAPTER7], small_train.head(128), CPU, repeats=1).set_index("variant")
    bf16 = [name for name, switches in SWITCH_VARIANTS.items() if switches.amp_bf16]
    assert bf16 and table.loc[bf16, "seconds_per_epoch"].isna().all()
    assert table.loc[bf16, "note"].str.contains("no bfloat16 arithmetic").all()
    measured = table.drop(index=bf16)
    assert (measured["seconds_per_epoch"] > 0).all() and (measured["note"] == "").all()


def test_report_is_printed(quick):
    out = quick["stdout"]
    for heading in ("Per epoch", "Ablation", "Batch size", "Model size", "Time to 99%", "Live timings", "Targets",
                    "QUICK"):
        assert heading in out, heading
    assert "written to" in out and "... ablation" in quick["stderr"]


def test_figures_draw_from_the_json(quick):
    # Chapter 9's figures, from the tables the chapter takes from the JSON (one device here)
    from mnist_lib.bench.report import stacked
    from mnist_lib.book.figures import ch09

    results = {"cpu": quick["json"]}
    curves = stacked(results, "curves").assign(target=0.99)
    models = stacked(results, "model_sweep").assign(peak_gflops=quick["json"]["peak"]["gflops"])
    for fig in (ch09.speed_pipelines(stacked(results, "comparison")),
                ch09.speed_ablation(stacked(results, "ablation").drop(columns="settings")),
                ch09.speed_batch(stacked(results, "batch_sweep")), ch09.speed_models(models), ch09.speed_tta(curves),
                ch09.speed_recipe(stacked(results, "recipe_ablation"))):
        assert fig.axes and fig.axes[0].get_xlabel()
        matplotlib.pyplot.close(fig)


def test_both_pipelines_see_the_same_images_per_epoch(mnist, tv_root):
    train, test = mnist.train.head(300), mnist.test.head(100)  # 300 = 4 batches of 64 + one of 44
    base = run_baseline(TINY, tv_root, device=CPU, epochs=2, train_limit=len(train), test_limit=len(test), workers=0)
    lib = train_lib(TINY, train, device=CPU, epochs=2, test=test)
    assert base["epoch_images"] == lib["epoch_images"] == [300, 300]
    assert base["steps"] == lib["steps"] == 10
    assert len(base["epoch_seconds"]) == len(lib["epoch_seconds"]) == 2
    assert 0 <= base["test_acc"] <= 1 and 0 <= lib["test_acc"] <= 1


def test_baseline_workers_are_chosen_by_measurement(mnist, tv_root):
    chosen, trials = calibrate_workers(TINY, mnist.train.head(256), tv_root, CPU, log=lambda message: None)
    assert list(trials["num_workers"]) == [n for n in (0, 1, 2) if n <= (os.cpu_count() or 1)]
    assert (trials["seconds_per_epoch"] > 0).all()
    assert chosen == trials.loc[trials["seconds_per_epoch"].idxmin(), "num_workers"]


def test_switches_are_fits_arguments():
    lenet = CONFIGS[DEFAULT_MODEL]
    assert fit_switches(PLAIN, CPU, lenet) == {"channels_last": False, "amp": False, "compile": False}
    assert fit_switches(Switches(channels_last=True, amp_bf16=True, compile=True), CPU, lenet) == {
        "channels_last": True, "amp": True, "compile": True}
    cuda = torch.device("cuda")  # Adam fused only when the switch says so; CUDA graphs are compiled
    assert fit_switches(PLAIN, cuda, lenet)["fused"] is False
    assert fit_switches(Switches(fused_adam=True, cuda_graphs=True), cuda, lenet) == {
        "channels_last": False, "amp": False, "compile": True, "fused": True}
    assert "fused" not in fit_switches(PLAIN, cuda, CONFIGS["mlp100"])  # SGD


def test_the_registry_has_one_meaning_per_name():
    from mnist_lib import __main__ as cli
    from mnist_lib import bench

    assert cli.CONFIGS is CONFIGS  # the command line's setups are the benchmark's
    assert set(SWEEP_MODELS) | {DEFAULT_MODEL, CHAPTER7, bench.SPEED_TUNED, bench.FIRST_SPRINT} <= set(CONFIGS)
    assert CONFIGS["lenet5-speed"].model == CONFIGS["lenet5-improved"].model  # the same network, another recipe
    assert not hasattr(bench, "chapter7_config")


def test_baseline_augments_like_the_library():
    (affine,) = conventional_augmentation(RandomAffine(degrees=10, scale=0.1, shift=2))
    assert affine.degrees == [-10.0, 10.0] and affine.scale == (0.9, 1.1)
    assert affine.translate == (2 / 28, 2 / 28)
    assert conventional_augmentation(None) == []
    with pytest.raises(ValueError, match="no conventional equivalent"):
        conventional_augmentation(lambda x: x)


@pytest.mark.parametrize("pipeline", ["baseline", "mnist_lib"])
def test_time_to_accuracy_stops_at_the_target_or_the_budget(pipeline, mnist, tv_root):
    train, test = mnist.train.head(640), mnist.test.head(200)

    def go(**timing):
        if pipeline == "baseline":
            return run_baseline(TINY, tv_root, device=CPU, epochs=TINY.epochs, train_limit=len(train),
                                test_limit=len(test), workers=0, **timing)
        return train_lib(TINY, train, device=CPU, epochs=TINY.epochs, test=test, **timing)

    reached = go(eval_every=3, target=0.0)  # every evaluation reaches 0%: stop at the first
    assert reached["steps"] == 3 and len(reached["curve"]) == 1
    assert reached["seconds_to_target"] == reached["curve"][0]["train_seconds"] > 0
    never = go(eval_every=3, target=1.01, max_steps=7)  # never reached: stop after the budget
    assert never["steps"] == 7 and never["seconds_to_target"] is None
    assert [p["step"] for p in never["curve"]] == [3, 6, 7]  # the last point: the final weights
    times = [p["train_seconds"] for p in never["curve"]]
    assert times == sorted(times)


def test_fit_stops_at_the_target_through_the_timer_callback(mnist):
    from mnist_lib.train import fit

    timer = Timer(CPU, mnist.test.head(100), eval_every=2, target=0.0)  # 0%: reached at the first evaluation
    history = fit(TINY.model(), mnist.train.head(640), epochs=3, batch_size=64, device=CPU, progress=False,
                  callbacks=[timer])
    assert len(history.step_loss) == timer.steps == 2 and timer.images == 128  # fit itself stopped, after step 2
    assert timer.stopped and not timer.clock.running and len(timer.log.points) == 1
    assert timer.log.seconds_to_target() == timer.log.points[0]["train_seconds"] > 0


def test_no_exception_or_wrapper_steers_training():
    from pathlib import Path

    import mnist_lib.bench

    for path in Path(mnist_lib.bench.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert "FastModel" not in source and "TargetReached" not in source, path.name


def test_the_clock_excludes_evaluation():
    clock = TrainClock(CPU)
    accuracies = iter([0.5, 0.95])
    log = AccuracyLog(clock, lambda: time.sleep(0.3) or next(accuracies), target=0.9)
    clock.start()
    assert log.check(step=1, images=64) is False  # 0.5 < 0.9: the clock runs on
    assert clock.running and log.eval_seconds >= 0.3
    assert log.points[0]["train_seconds"] < 0.3
    assert log.check(step=2, images=128) is True
    assert not clock.running and clock.seconds < 0.3 and log.eval_seconds >= 0.6
    assert log.seconds_to_target() == log.points[1]["train_seconds"] == clock.seconds


def test_switch_problems(cpu_bf16):
    lenet = CONFIGS[DEFAULT_MODEL]
    assert "CUDA only" in switch_problem(Switches(tf32=True), CPU, lenet)
    assert switch_problem(Switches(amp_bf16=True), CPU, lenet) is None
    cpu_bf16.native = False
    assert "no bfloat16 arithmetic" in switch_problem(Switches(amp_bf16=True), CPU, lenet)
    assert "no convolutions" in switch_problem(Switches(channels_last=True), CPU, CONFIGS["mlp"])
    assert switch_problem(Switches(channels_last=True, threads=1), CPU, lenet) is None
    assert switch_problem(PLAIN, CPU, TINY) is None
    assert Switches(compile=True, threads=2).label() == "compile + threads=2" and PLAIN.label() == "plain"
    assert Switches(compile=True, threads=2).changed() == {"compile": True, "threads": 2} and PLAIN.changed() == {}


def test_a_failing_switch_is_dropped_with_a_note(monkeypatch, mnist):
    def train_lib_without_compile(config, train, *, switches, **kwargs):
        if switches.compile or switches.cuda_graphs:
            raise RuntimeError("no compiler here")
        return {}

    monkeypatch.setattr(bench_lib, "train_lib", train_lib_without_compile)
    chosen, note = bench_lib.checked(TINY, Switches(compile=True, threads=1), mnist.train, mnist.test, CPU)
    assert chosen == Switches(threads=1) and "no compiler here" in note and "compile" in note
    assert bench_lib.checked(TINY, Switches(threads=1), mnist.train, mnist.test, CPU) == (Switches(threads=1), "")


def test_fast_preset_keeps_what_helped():
    import pandas as pd

    def row(switches: Switches, kind: str, speedup, status="measured"):
        # the label is for display only: the preset is built from "settings"
        return {"switches": "(a label)", "settings": switches.changed(), "kind": kind, "status": status,
                "speedup_vs_plain": speedup}

    frame = pd.DataFrame([
        row(PLAIN, "pipeline", 1.0),
        row(Switches(channels_last=True), "same training", 1.2),
        row(Switches(compile=True), "same training", 1.01),
        row(Switches(threads=1), "same training", 1.1),
        row(Switches(amp_bf16=True), "same training, bf16 rounding", 1.5),
        row(Switches(tf32=True), "same training", None, status="skipped"),
        row(PLAIN, "changes the training", 3.0),
    ])
    assert fast_switches(frame) == Switches(channels_last=True, threads=1, amp_bf16=True)
    frame.loc[len(frame)] = row(Switches(cuda_graphs=True), "same training", 2.0)
    frame.loc[2, "speedup_vs_plain"] = 1.5  # compile helps too, but CUDA graphs compile already
    assert fast_switches(frame) == Switches(channels_last=True, threads=1, amp_bf16=True, cuda_graphs=True)


def test_judge_against_the_targets():
    def result(speedup, seconds, device="cpu", model=DEFAULT_MODEL, quick=False):
        return {"environment": {"device": device}, "settings": {"quick": quick, "model": model},
                "headline": {"speedup_vs_baseline": speedup, "seconds_to_99": seconds}}

    def verdicts(*args, **kwargs):
        return [row["result"].split(" (targets")[0] for row in judge(result(*args, **kwargs))]

    absent = ["not judged (not measured in this result)"] * 2  # no-aug speedup, canonical ratio: not in these
    assert verdicts(4.5, 4.0) == ["PASS", "PASS", *absent]
    assert verdicts(3.5, 6.0) == ["FAIL", "FAIL", *absent]
    assert verdicts(4.5, None) == ["PASS", "FAIL (not reached)", *absent]
    assert verdicts(25.0, 0.4, device="cuda:0") == ["PASS", "PASS"] + ["not judged (no target for cuda)"] * 2
    both = result(5.0, 4.0) | {"headline": {"speedup_vs_baseline": 5.0, "seconds_to_99": 4.0,
                                            "speedup_vs_baseline_no_aug": 3.9, "canonical_time_to_99_ratio": 25.0}}
    assert [row["result"].split(" (targets")[0] for row in judge(both)] == ["PASS", "PASS", "FAIL", "PASS"]
    both["headline"] |= {"canonical_time_to_99_ratio": None, "canonical_time_to_99_ratio_at_least": 31.0}
    ratio = judge(both)[3]  # the canonical example never reached 99% in its budget: a lower bound
    assert ratio["value"] == 31.0 and ratio["result"].startswith("PASS (a lower bound")
    assert verdicts(3.5, 15.0, model="lenet5")[0] == "not judged (the target is for lenet5-improved)"
    assert all(v.startswith("not judged") for v in verdicts(3.5, 15.0, device="mps"))


def test_measuring_tools():
    frame = matmul_throughput(CPU, n=128, repeats=2)
    assert list(frame["format"]) == ["float32", "bfloat16"] and (frame["gflops"] > 0).all()
    # forward + backward of every layer, no gradient for the input image (worked out by hand)
    assert training_flops_per_image(CONFIGS[DEFAULT_MODEL]) == 2 * 416_520 + 2 * 2 * 416_520 - 2 * 117_600
    assert training_flops_per_image(CONFIGS["mlp"]) == 3 * 2 * (784 * 300 + 300 * 10) - 2 * 784 * 300
    with PeakMemory(CPU) as memory:
        block = torch.ones(2**24)  # 64 MiB, held while sampled
        time.sleep(0.05)
    del block
    assert memory.host_peak_mb > memory.host_start_mb > 0 and memory.device_peak_mb is None
    assert RESULTS_DIR.name == "bench"


def test_run_bench_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown model"):
        run_bench("cpu", model="resnet", quick=True)
    with pytest.raises(ValueError, match="positive"):
        run_bench("cpu", epochs=0)


BAD = {  # argv, and what the error line must mention
    "epochs-0": (["--epochs", "0"], "--epochs"),
    "repeats-word": (["--repeats", "many"], "--repeats"),
    "unknown-model": (["--model", "resnet"], "invalid choice: 'resnet'"),
    "device-not-a-name": (["--device", "foo"], "unknown device 'foo'"),
    "out-folder-missing": (["--out", "/nonexistent/dir/b.json"], "cannot write"),
    "workers-negative": (["--workers", "-1"], "--workers"),
    "threads-0": (["--threads", "0"], "--threads"),
}
if not HAS_CUDA:
    BAD["device-cuda"] = (["--device", "cuda"], "CUDA")


@pytest.mark.parametrize("name", sorted(BAD))
def test_cli_rejects_bad_values(name, capsys):
    argv, expected = BAD[name]
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert expected in err[-1] and err[-1].startswith("python -m mnist_lib bench: error:")



def test_results_read_back_as_tables(quick, tmp_path):
    import pandas as pd

    from mnist_lib.bench.report import TABLES, as_frames, read_result, stacked, verdicts, write_json

    result = read_result(write_json(quick["json"], tmp_path / "cpu.json"))
    for key in TABLES:
        assert isinstance(result[key], pd.DataFrame), key
        assert len(result[key]) == len(quick["json"][key]), key
    assert result["headline"] == quick["json"]["headline"] and result["settings"]["quick"] is True
    assert as_frames(result)["comparison"] is result["comparison"]  # already tables: left as they are
    assert isinstance(quick["json"]["comparison"], list)  # the input is not changed
    assert result["ablation"]["seconds_per_epoch"].isna().sum() == (result["ablation"]["status"] != "measured").sum()
    both = stacked({"cpu": result, "cuda": quick["json"]}, "comparison")
    assert list(both.columns[:2]) == ["device", "pipeline"] and len(both) == 2 * len(result["comparison"])
    assert list(both["device"].unique()) == ["cpu", "cuda"]
    judged = verdicts(result)
    assert set(judged) == {"speedup_vs_baseline", "seconds_to_99", "speedup_vs_baseline_no_aug",
                           "canonical_time_to_99_ratio"}
    assert all(row["result"].startswith("not judged (quick") for row in judged.values())
    assert judged["speedup_vs_baseline"]["threshold"] == 4.0 and judged["seconds_to_99"]["threshold"] == 5.0
    old = verdicts({"targets": [{"result": "PASS"}, {"result": "FAIL"}]})  # written before rows named their measure
    assert {measure: row["result"] for measure, row in old.items()} == {"speedup_vs_baseline": "PASS",
                                                                        "seconds_to_99": "FAIL"}
    with pytest.raises(FileNotFoundError, match="--device cuda --out .*cuda.json"):
        read_result(tmp_path / "cuda.json")


def test_git_commit_marks_a_dirty_tree(tmp_path):
    import subprocess

    from mnist_lib.bench.report import _git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("commit", "-qm", "first")
    clean = _git_commit(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "a.txt").write_text("two")
    assert _git_commit(tmp_path) == f"{clean}-dirty"
    assert _git_commit(tmp_path.parent / "no-such-folder") is None


def test_quick_run_compares_without_augmentation_too(quick):
    result = quick["json"]
    rows = {row["pipeline"]: row for row in result["comparison_no_aug"]}
    assert set(rows) in ({"baseline", "mnist_lib fast"}, {"baseline", "mnist_lib plain"})  # the headline's pipelines
    assert {row["pipeline"] for row in result["epochs_no_aug"]} == set(rows)
    settings = result["settings"]
    assert "augmented" in settings["config"] and settings["config_no_aug"] == settings["config"].split(", augmented")[0]
    head = result["headline"]
    lib = rows.get("mnist_lib fast") or rows["mnist_lib plain"]
    assert head["speedup_vs_baseline_no_aug"] == lib["speedup_vs_baseline"] > 0
    assert head["baseline_epoch_seconds_no_aug"] == rows["baseline"]["seconds_per_epoch"]
    for row in result["comparison"] + result["comparison_no_aug"]:  # min <= median <= max
        assert row["seconds_per_epoch_min"] <= row["seconds_per_epoch"] <= row["seconds_per_epoch_max"]
        assert row["speedup_vs_baseline_min"] <= row["speedup_vs_baseline"] <= row["speedup_vs_baseline_max"]
    for row in result["ablation"]:
        if row["status"] == "measured":
            assert row["seconds_per_epoch_min"] <= row["seconds_per_epoch"] <= row["seconds_per_epoch_max"]
        else:
            assert row["seconds_per_epoch_min"] is None
    assert set(result["protocols"]) >= {"comparison", "comparison_no_aug", "ablation", "canonical", "compile_cold"}
    assert "without augmentation" in quick["stdout"] and "canonical PyTorch MNIST example" in quick["stdout"]


def test_quick_run_times_the_canonical_example(quick):
    result = quick["json"]
    head, rows = result["headline"], {row["run"]: row for row in result["canonical"]}
    assert set(rows) == {"canonical example (DataLoader)", "canonical network and recipe, through fit"}
    assert head["canonical_seconds_to_99"] == rows["canonical example (DataLoader)"]["seconds_to_target"]
    assert all(row["target"] == 0.5 and row["epochs_trained"] <= 1 for row in rows.values())  # quick: a low target
    library, canonical = head["seconds_to_99"], head["canonical_seconds_to_99"]
    expected = canonical / library if library and canonical else None
    assert head["canonical_time_to_99_ratio"] == pytest.approx(expected)
    assert result["compile_cold"]["compile_cold_seconds"] is None and head["compile_cold_seconds"] is None
    assert "skipped" in result["compile_cold"]["note"]  # quick: no compilation


def test_canonical_network_is_the_examples():
    from mnist_lib.bench.canonical import CanonicalNet
    from mnist_lib.models import count_parameters

    net = CanonicalNet()
    # conv 1->32 3x3: 320; conv 32->64 3x3: 18,496; dense 9216->128: 1,179,776; dense 128->10: 1,290
    assert count_parameters(net) == 320 + 18_496 + 1_179_776 + 1_290 == 1_199_882
    x = torch.rand(5, 1, 28, 28)
    assert net.features(net.standardize(x)).shape == (5, 64, 12, 12)  # 9216 features
    net.eval()
    out = net(x)
    assert out.shape == (5, 10) and torch.allclose(out.exp().sum(1), torch.ones(5))  # log-probabilities
    assert net.standardize.mean.item() == pytest.approx(0.1307)
    unit = CanonicalNet(input_scale=(0.0, 1.0)).eval()  # the example's pipeline: Normalize did it
    assert torch.equal(unit.standardize(x), x)


def test_time_to_99_ratio_from_stored_numbers():
    from mnist_lib.bench.canonical import time_to_99_ratio

    stored = {"canonical_seconds_to_99": 118.0, "seconds_to_99": 4.72}  # as a result's headline stores them
    assert time_to_99_ratio(stored["canonical_seconds_to_99"], stored["seconds_to_99"]) == pytest.approx(25.0)
    assert time_to_99_ratio(None, 4.72) is None and time_to_99_ratio(118.0, None) is None


def test_canonical_runs_stop_at_the_target_or_the_budget(mnist, tv_root):
    from mnist_lib.bench.canonical import fit_canonical, run_canonical

    train, test = mnist.train.head(64), mnist.test.head(100)  # one step of 64 per epoch
    never = run_canonical(tv_root, CPU, max_epochs=2, target=1.01, train_limit=64, test_limit=100)
    assert never["seconds_to_target"] is None and never["images"] == 128
    assert [p["step"] for p in never["curve"]] == [1, 2]  # one evaluation per epoch
    assert never["train_seconds"] >= never["curve"][1]["train_seconds"] > never["curve"][0]["train_seconds"] > 0
    reached = fit_canonical(train, test, CPU, max_epochs=2, target=0.0)
    assert reached["images"] == 64 and reached["seconds_to_target"] == reached["curve"][0]["train_seconds"] > 0


def test_the_canonical_schedule_steps_once_per_epoch(mnist):
    from mnist_lib.bench.canonical import StepPerEpoch
    from mnist_lib.callbacks import Callback
    from mnist_lib.train import fit

    class Rates(Callback):
        rates: list[float] = []

        def on_step_end(self, run, step, loss):
            self.rates.append(run.optimizer.param_groups[0]["lr"])

    model = TINY.model()
    fit(model, mnist.train.head(128), optimizer=torch.optim.Adadelta(model.parameters(), lr=1.0), batch_size=64,
        epochs=3, device=CPU, progress=False, callbacks=[StepPerEpoch(0.7), Rates()])
    assert Rates.rates == pytest.approx([1.0, 1.0, 0.7, 0.7, 0.49, 0.49])  # StepLR(step_size=1, gamma=0.7)


def test_cold_compile_runs_in_a_fresh_process_with_empty_caches(monkeypatch):
    import subprocess

    from mnist_lib.bench import coldstart

    seen = {}

    def fake_run(argv, env, **kwargs):
        seen["argv"], seen["cache"] = argv, env["TORCHINDUCTOR_CACHE_DIR"]
        seen["empty"] = os.listdir(seen["cache"]) == []
        times = {"first_step_seconds": 30.0, "second_step_seconds": 0.05, "startup_seconds": 4.0}
        return subprocess.CompletedProcess(argv, 0, stdout=f"noise\n{json.dumps(times)}\n", stderr="")

    monkeypatch.setattr(coldstart.subprocess, "run", fake_run)
    row = coldstart.compile_cold(DEFAULT_MODEL, CPU, batch_size=128, threads=2)
    assert seen["argv"][1] == "-c" and seen["argv"][3:] == [DEFAULT_MODEL, "cpu", "128", "inductor", "2"]
    assert seen["empty"] and not os.path.exists(seen["cache"])  # a fresh folder, removed afterwards
    assert row["compile_cold_seconds"] == 30.0 and row["step_seconds"] == 0.05 and row["note"] == ""
    env = coldstart.cold_env("/tmp/x")
    assert env["TORCHINDUCTOR_FX_GRAPH_CACHE"] == "0" and env["TRITON_CACHE_DIR"].startswith("/tmp/x")
    monkeypatch.setattr(coldstart.subprocess, "run", lambda argv, **kwargs: subprocess.CompletedProcess(
        argv, 1, stdout="", stderr="Traceback ...\nRuntimeError: no compiler\n"))
    failed = coldstart.compile_cold(DEFAULT_MODEL, CPU, batch_size=128)
    assert failed["compile_cold_seconds"] is None and failed["note"] == "failed: RuntimeError: no compiler"
