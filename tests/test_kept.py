"""Kept trainings ($MNIST_KEEP_RUNS): a long run that stops resumes where it stopped."""

from functools import partial

import pytest
import torch

from mnist_lib import experiments, kept
from mnist_lib.experiments import Config, run_jobs
from mnist_lib.models import MLP

TINY = Config("tiny net", partial(MLP, (784, 16, 10), "relu"), lr=0.01, batch_size=64, epochs=2)


@pytest.fixture
def small(mnist):
    return experiments.MNIST(train=mnist.train.head(600), test=mnist.test.head(300))


@pytest.fixture
def keep_in(tmp_path, monkeypatch):
    monkeypatch.setenv(kept.ENV_VAR, str(tmp_path / "kept"))
    return tmp_path / "kept"


@pytest.fixture
def trainings(monkeypatch):
    """Count the trainings that really run."""
    calls = []
    real = experiments._timed_run

    def counted(config, seed, *args, **kwargs):
        calls.append((config.name, seed))
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(experiments, "_timed_run", counted)
    return calls


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_nothing_is_kept_unless_asked(small, tmp_path, monkeypatch, trainings):
    monkeypatch.delenv(kept.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    run_jobs([(TINY, 0)], small, device="cpu", progress=False)
    run_jobs([(TINY, 0)], small, device="cpu", progress=False)
    assert trainings == [("tiny net", 0)] * 2 and not list(tmp_path.iterdir())


def test_a_kept_training_is_loaded_not_trained_again(small, keep_in, trainings, capsys):
    first = run_jobs([(TINY, 0), (TINY, 1)], small, device="cpu", progress=False)
    files = sorted(p.name for p in keep_in.iterdir())
    assert len(files) == 2 and all(name.startswith("tiny-net-seed") for name in files)
    again = run_jobs([(TINY, 0), (TINY, 1)], small, device="cpu", progress=False)
    assert trainings == [("tiny net", 0), ("tiny net", 1)]  # none in the second call
    assert "kept training of" in capsys.readouterr().out
    assert again.epochs.equals(first.epochs) and again.steps.equals(first.steps)
    for job in first.models:
        assert same_weights(first.models[job], again.models[job]) and not again.models[job].training


def test_only_the_very_same_job_is_reused(small, keep_in, trainings):
    run_jobs([(TINY, 0)], small, device="cpu", progress=False)
    run_jobs([(TINY.with_(lr=0.02), 0)], small, device="cpu", progress=False)  # another setup
    run_jobs([(TINY, 1)], small, device="cpu", progress=False)  # another seed
    other_data = experiments.MNIST(train=small.train.head(500), test=small.test)
    run_jobs([(TINY, 0)], other_data, device="cpu", progress=False)  # other training digits
    assert len(trainings) == 4 and len(list(keep_in.iterdir())) == 4


def test_a_stopped_run_loses_only_the_unfinished_training(small, keep_in, monkeypatch):
    real, calls = experiments._timed_run, []

    def stopped_at_seed_1(config, seed, *args, **kwargs):
        calls.append(seed)
        if seed == 1:
            raise KeyboardInterrupt  # the session ends in the middle of the second training
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(experiments, "_timed_run", stopped_at_seed_1)
    with pytest.raises(KeyboardInterrupt):
        run_jobs([(TINY, 0), (TINY, 1), (TINY, 2)], small, device="cpu", progress=False)
    assert len(list(keep_in.iterdir())) == 1
    monkeypatch.setattr(experiments, "_timed_run", lambda config, seed, *a, **k: (calls.append(seed), real(config, seed, *a, **k))[1])
    runs = run_jobs([(TINY, 0), (TINY, 1), (TINY, 2)], small, device="cpu", progress=False)
    assert calls == [0, 1, 1, 2] and len(runs.final()) == 3 and len(list(keep_in.iterdir())) == 3


def test_a_damaged_kept_file_is_trained_again_with_a_warning(small, keep_in, trainings):
    run_jobs([(TINY, 0)], small, device="cpu", progress=False)
    (file,) = keep_in.iterdir()
    file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        run_jobs([(TINY, 0)], small, device="cpu", progress=False)
    assert len(trainings) == 2 and file.stat().st_size > 100  # written anew


def test_workers_keep_each_training_as_it_finishes(small, keep_in, monkeypatch):
    seen = []
    monkeypatch.setattr(kept, "keep", lambda file, config, seed, *rest: seen.append(seed))
    run_jobs([(TINY, 0), (TINY, 1)], small, device="cpu", progress=False, workers=2)
    assert sorted(seen) == [0, 1]


def test_the_key_names_the_threads_and_the_training_code(small, monkeypatch):
    device = torch.device("cpu")
    key = kept.run_key(TINY, 0, small, device, 1)
    assert key == kept.run_key(TINY, 0, small, device, 1)
    assert key != kept.run_key(TINY, 0, small, device, 2)
    monkeypatch.setattr(kept, "code_digest", lambda: "changed code")
    assert key != kept.run_key(TINY, 0, small, device, 1)
