"""mnist_lib.profiles and mnist_lib.experiments: run sizes and runs over seeds."""

from __future__ import annotations

import pytest
import torch

from mnist_lib import experiments
from mnist_lib.data import MNIST
from mnist_lib.experiments import Config, book_data, run, run_seeds
from mnist_lib.models import MLP
from mnist_lib.profiles import PROFILES, profile


def test_default_profile_is_full():
    assert profile().name == "full"


@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("full", "full"), (" SMOKE ", "smoke"), ("", "full")])
def test_profile_reads_env(monkeypatch, value, expected):
    monkeypatch.setenv("MNIST_PROFILE", value)
    assert profile().name == expected


def test_profile_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    assert profile("full").name == "full"


@pytest.mark.parametrize("where", ["env", "argument"])
def test_unknown_profile(monkeypatch, where):
    if where == "env":
        monkeypatch.setenv("MNIST_PROFILE", "tiny")
        call = profile
    else:
        call = lambda: profile("tiny")  # noqa: E731
    with pytest.raises(ValueError, match="unknown profile 'tiny'") as info:
        call()
    assert "full, lecture, smoke" in str(info.value)
    assert "MNIST_PROFILE" in str(info.value)


def test_smoke_limits():
    smoke = PROFILES["smoke"]
    assert smoke.epochs(20) == 1 and smoke.epochs(1) == 1
    assert smoke.seeds(10) == [0, 1] and smoke.seeds(1) == [0]
    assert smoke.train_size(60_000) == 512 and smoke.train_size(100) == 100
    assert smoke.test_size(10_000) == 512


def test_full_has_no_limits():
    full = PROFILES["full"]
    assert full.epochs(20) == 20
    assert full.seeds(10) == list(range(10))
    assert full.train_size(60_000) == 60_000 and full.test_size(10_000) == 10_000


def test_book_data_under_smoke(monkeypatch, mnist):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    data = book_data()
    assert len(data.train) == 512 and len(data.test) == 512
    assert data.train.labels[:10].tolist() == mnist.train.labels[:10].tolist()
    with_val = book_data(val_fraction=0.2)
    assert len(with_val.train) == 512 and len(with_val.val) == 512


TINY = Config("tiny", lambda: MLP((784, 16, 10), "relu"), epochs=3, batch_size=64)


def test_run_seeds_under_smoke(monkeypatch):
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    runs = run_seeds(TINY, 10, device="cpu", progress=False)  # smoke: 2 seeds, 1 epoch, 512 images
    frame = runs.epochs
    assert {"config", "seed", "epoch", "train_loss", "test_acc"} <= set(frame.columns)
    assert sorted(zip(frame["seed"], frame["epoch"])) == [(0, 1), (1, 1)]
    assert set(frame["config"]) == {"tiny"}
    assert set(runs.models) == {("tiny", 0), ("tiny", 1)}
    assert len(runs.steps) == 2 * (512 // 64)
    summary = runs.summary()
    assert list(summary.columns) == ["mean", "std", "count"]
    assert list(summary.index) == ["tiny"]
    assert summary.loc["tiny", "count"] == 2
    assert summary.loc["tiny", "mean"] == pytest.approx(frame["test_acc"].mean())
    assert summary.loc["tiny", "std"] == pytest.approx(frame["test_acc"].std())
    assert (frame["test_acc"] > 0.2).all()  # chance is 0.1


def test_run_seeds_one_row_per_seed_and_epoch(small_train, small_test):
    data = MNIST(small_train.head(256), small_test.head(256))
    other = TINY.with_(name="tiny-sgd", optimizer="sgd", lr=0.1, epochs=2)
    runs = run_seeds([TINY.with_(epochs=2), other], [3, 5], data, device="cpu", progress=False)
    frame = runs.epochs
    rows = sorted(zip(frame["config"], frame["seed"], frame["epoch"]))
    assert rows == sorted((c, s, e) for c in ("tiny", "tiny-sgd") for s in (3, 5) for e in (1, 2))
    final = runs.final()
    assert len(final) == 4 and set(final["epoch"]) == {2}
    summary = runs.summary("train_loss")
    assert list(summary.index) == ["tiny", "tiny-sgd"]
    assert summary["count"].tolist() == [2, 2]
    # different seeds really are different runs
    tiny = frame[(frame["config"] == "tiny") & (frame["epoch"] == 2)]
    assert tiny["train_loss"].nunique() == 2


def test_run_is_reproducible(small_train, small_test):
    data = MNIST(small_train.head(128), small_test.head(128))
    _, a = run(TINY.with_(epochs=1), 7, data, device="cpu", progress=False)
    _, b = run(TINY.with_(epochs=1), 7, data, device="cpu", progress=False)
    assert a.step_loss == b.step_loss
    assert a.final("test_acc") == b.final("test_acc")


def test_cli_configs_are_well_formed():
    assert {"mlp", "mlp100", "lenet5", "lenet5-cuhk", "lenet5-cuhk-max", "lenet5-improved", "lenet5-speed", "speednet",
            "deepcnn", "bncnn"} <= set(experiments.CONFIGS)
    assert len({config.name for config in experiments.CONFIGS.values()}) == len(experiments.CONFIGS)
    for config in experiments.CONFIGS.values():
        assert isinstance(config.model(), torch.nn.Module)
        assert config.epochs >= 1 and config.batch_size >= 1 and config.lr > 0


def test_lecture_keeps_the_data_and_shortens_the_runs():
    lecture = PROFILES["lecture"]
    assert lecture.train_size(60_000) == 60_000 and lecture.test_size(10_000) == 10_000
    assert lecture.epochs(20) == 3 and lecture.epochs(2) == 2
    assert lecture.seeds(10) == [0]


def test_a_cheap_setup_keeps_its_own_short_length_under_lecture_only():
    """A setup's short_epochs replaces the lecture's cap of three; smoke stays at one, full runs them all."""
    assert PROFILES["lecture"].epochs(10, short=10) == 10 and PROFILES["lecture"].epochs(10, short=5) == 5
    assert PROFILES["lecture"].epochs(4, short=6) == 4  # never more than the setup asks for
    assert PROFILES["smoke"].epochs(10, short=10) == 1
    assert PROFILES["full"].epochs(10, short=2) == 10


def test_run_seeds_under_lecture_trains_a_setup_for_its_short_epochs(monkeypatch, small_train, small_test):
    monkeypatch.setenv("MNIST_PROFILE", "lecture")
    data = MNIST(small_train.head(128), small_test.head(128))
    runs = run_seeds([TINY.with_(epochs=5, short_epochs=4), TINY.with_(name="capped", epochs=5)], 3, data,
                     device="cpu", progress=False)
    assert runs.final().set_index("config")["epoch"].to_dict() == {"tiny": 4, "capped": 3}
    assert TINY.with_(epochs=5, short_epochs=4).epochs_to_run() == 4  # what the chapters ask for by hand
    assert set(runs.epochs["seed"]) == {0}
