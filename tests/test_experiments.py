"""Experiment helpers: the reports' configurations, the size sweep, convergence, figures."""

from functools import partial

import matplotlib
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from mnist_lib import experiments  # noqa: E402
from mnist_lib.book import plots  # noqa: E402
from mnist_lib.book.reports import PUBLISHED, REPORTS  # noqa: E402
from mnist_lib.experiments import (AUTOENCODER, CONFIGS, JETIR_CONFIGS, UNIT, Config, epochs_to,  # noqa: E402
                                   run_jobs, run_seeds, train_size_sweep)
from mnist_lib.models import MLP, LeNet5  # noqa: E402

TINY = Config("tiny", partial(MLP, (784, 16, 10), "relu"), lr=0.01, batch_size=64, epochs=2)


@pytest.fixture
def small(mnist):
    return experiments.MNIST(train=mnist.train.head(600), test=mnist.test.head(300))


def test_named_configs_build_models():
    for name, config in CONFIGS.items():
        assert isinstance(config.model(), torch.nn.Module), name
    assert len(JETIR_CONFIGS) == 6 and len({c.name for c in JETIR_CONFIGS}) == 6


def test_report_numbers_are_fractions():
    for report, numbers in REPORTS.items():
        for key, value in numbers.items():
            if key.endswith(("acc", "error")):
                assert 0 < value < 1, (report, key)
    assert all(0 < row["test_error"] < 0.01 for row in PUBLISHED)


def test_setups_on_unit_pixels_build_models_that_keep_them():
    """The input scale is the model's (its Standardize layer), not a setting of the setup."""
    assert "normalization" not in Config.__dataclass_fields__
    for name in ("mlp", "mlp100"):
        scale = CONFIGS[name].model().standardize
        assert (scale.mean.item(), scale.std.item()) == UNIT, name
        assert "pixels in [0, 1]" in str(CONFIGS[name])
    for config in (AUTOENCODER, experiments.CONV_AUTOENCODER):
        assert config.model().standardize.std.item() == 1.0, config.name
    lenet = CONFIGS["lenet5"].model().standardize
    assert lenet.mean.item() == pytest.approx(0.1307) and "pixels standardised" in str(CONFIGS["lenet5"])


def test_autoencoder_config_trains_on_reconstruction(small):
    runs = run_seeds(AUTOENCODER.with_(epochs=1), seeds=[0], data=small, progress=False)
    row = runs.final().iloc[0]
    assert "test_acc" not in runs.epochs.columns
    assert 0 < row["test_loss"] < 0.7  # binary cross-entropy per pixel, below chance (ln 2)


def test_train_size_sweep_gives_every_size_the_same_steps(small):
    sweep = train_size_sweep(TINY, [100, 300, 600], seeds=[0], data=small, progress=False)
    assert sweep["train_size"].tolist() == [100, 300, 600]
    steps = [e * -(-n // TINY.batch_size) for e, n in zip(sweep["epochs"], sweep["train_size"])]
    assert min(steps) >= 2 * -(-600 // 64)  # at least what the full set gets
    assert sweep["test_acc"].between(0, 1).all()


def test_epochs_to_threshold():
    epochs = pd.DataFrame({"config": ["a"] * 3 + ["b"] * 3, "seed": [0] * 6, "epoch": [1, 2, 3] * 2,
                           "test_acc": [0.90, 0.981, 0.99, 0.9, 0.95, 0.97]})
    out = epochs_to(epochs, 0.98).set_index("config")["epochs_to_0.98"]
    assert out["a"] == 2 and pd.isna(out["b"])


def test_figures_draw_from_real_runs(small):
    runs = run_seeds([TINY, TINY.with_(name="tiny sgd", optimizer="sgd")], seeds=[0, 1], data=small, progress=False)
    for fig in (plots.epoch_curves(runs.epochs), plots.step_losses(runs.steps),
                plots.compare_configs(runs.final(), reports={"tiny": 0.5}), plots.runs_vs_report(runs.final(), 0.5, "r"),
                plots.confusion(small.test.labels, small.test.labels.roll(1)), plots.class_balance(small.train.labels),
                plots.code_scatter(torch.randn(50, 6), small.test.labels[:50]),
                plots.metric_vs(runs.final(), "seed", "test_acc", reference={"r": 0.5})):
        assert fig.axes and fig.axes[0].get_xlabel()
        matplotlib.pyplot.close(fig)


def test_fit_kwargs_carry_every_setting_to_fit():
    import inspect

    from mnist_lib.train import fit

    config = Config("sgd", TINY.model, optimizer="sgd", lr=0.05, schedule="cosine", batch_size=32, epochs=3,
                    amp=True, channels_last=True, optimizer_kwargs={"momentum": 0.9})
    kwargs = config.fit_kwargs(epochs=1)
    assert kwargs["epochs"] == 1 and kwargs["momentum"] == 0.9 and kwargs["amp"] and kwargs["channels_last"]
    assert kwargs["loss_fn"] is experiments.LOSSES["cross_entropy"]
    fit_params = set(inspect.signature(fit).parameters)
    assert set(kwargs) - {"momentum"} <= fit_params
    # every Config field that is a training setting reaches fit
    # (short_epochs is how a quick profile shortens the run, not a setting of fit)
    settings = set(Config.__dataclass_fields__) - {"name", "model", "loss", "optimizer_kwargs", "short_epochs"}
    assert settings <= set(kwargs)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_workers_train_the_same_networks_as_one_process(small, one_thread):
    jobs = [(TINY, 0), (TINY.with_(name="tiny sgd", optimizer="sgd"), 1), (TINY, 2)]
    # pinned to the CPU: on a GPU machine the default device would be CUDA, whose results differ
    alone = run_jobs(jobs, small, device="cpu", progress=False)
    side_by_side = run_jobs(jobs, small, device="cpu", progress=False, workers=2)
    assert side_by_side.workers == 2 and alone.workers == 1
    assert side_by_side.epochs[["config", "seed"]].equals(alone.epochs[["config", "seed"]])  # the jobs' order
    pd.testing.assert_frame_equal(side_by_side.final()[["test_loss", "test_acc"]], alone.final()[["test_loss", "test_acc"]])
    for key, model in alone.models.items():
        for a, b in zip(model.state_dict().values(), side_by_side.models[key].state_dict().values()):
            assert torch.equal(a, b), key


def test_workers_refuse_what_cannot_reach_them(small):
    lambda_config = TINY.with_(model=lambda: MLP((784, 16, 10), "relu"))
    with pytest.raises(TypeError, match="functools.partial"):
        run_seeds(lambda_config, seeds=[0, 1], data=small, device="cpu", progress=False, workers=2)
    with pytest.raises(ValueError, match="workers"):
        run_seeds(TINY, seeds=[0], data=small, device="cpu", progress=False, workers=0)
    with pytest.raises(ValueError, match="workers"):
        run_seeds(TINY, seeds=[0], data=small, device="cpu", progress=False, workers=True)


@pytest.fixture
def workers_called(monkeypatch):
    """Record the calls to _run_in_workers instead of starting processes."""
    calls = []

    def fake(jobs, data, workers, progress, device, done, threads):
        calls.append((workers, device))
        results = [(TINY.model(), experiments.History(epochs=[{"epoch": 1}]), 0.0) for _ in jobs]
        for i, result in enumerate(results):
            done(i, result)
        return results

    monkeypatch.setattr(experiments, "_run_in_workers", fake)
    return calls


def test_workers_on_a_gpu_share_it_with_a_warning(small, fake_cuda, workers_called):
    """Asked for two processes on a GPU, run_jobs does so and says it rarely pays; it never silently runs one."""
    with pytest.warns(UserWarning, match="workers=2 on cuda: 2 processes share one device"):
        runs = run_jobs([(TINY, 0), (TINY, 1), (TINY, 2)], small, device="cuda", progress=False, workers=2)
    assert runs.workers == 2 and workers_called == [(2, torch.device("cuda"))]


def test_workers_auto_on_a_gpu_is_one_process(small, fake_cuda, workers_called, monkeypatch):
    monkeypatch.setattr(experiments, "_timed_run", lambda config, seed, data, device, progress:
                        (TINY.model(), experiments.History(epochs=[{"epoch": 1, "device": str(device)}]), 0.0))
    runs = run_jobs([(TINY, 0), (TINY, 1)], small, device="cuda", progress=False, workers="auto")
    assert runs.workers == 1 and not workers_called and set(runs.epochs["device"]) == {"cuda"}


def test_workers_check_picklability_on_any_device(small, fake_cuda, workers_called):
    lambda_config = TINY.with_(model=lambda: MLP((784, 16, 10), "relu"))
    with pytest.raises(TypeError, match="cannot be sent to a worker process.*functools.partial"):
        run_jobs([(lambda_config, 0), (lambda_config, 1)], small, device="cuda", progress=False, workers=2)
    assert not workers_called


def test_every_named_config_can_go_to_a_worker():
    import pickle

    named = list(CONFIGS.values()) + JETIR_CONFIGS + experiments.ROBUSTNESS_CONFIGS + [experiments.ELASTIC_SINGLE]
    for config in named:
        assert pickle.loads(pickle.dumps(config)).name == config.name


def test_runs_record_training_accuracy_in_eval_mode(small, monkeypatch):
    # fit's train_acc is a running mean in train mode (dropout on); train_eval_acc evaluates the
    # finished epoch's network in eval mode on the first TRAIN_EVAL_SIZE training images.
    monkeypatch.setattr(experiments, "TRAIN_EVAL_SIZE", 200)
    dropout = TINY.with_(name="LeNet-5, dropout", model=partial(LeNet5, "relu", "max", 0.5), epochs=1)
    runs = run_seeds(dropout, seeds=[0], data=small, progress=False)
    model = runs.models[dropout.name, 0]
    expected = experiments.evaluate(model, small.train.head(200))["acc"]
    row = runs.final().iloc[0]
    assert row["train_eval_acc"] == pytest.approx(expected)
    assert row["train_eval_acc"] != row["train_acc"]
