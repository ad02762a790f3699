"""Each chapter's headline numbers, and how close a quicker profile must come to the full run.

The ``lecture`` profile (:mod:`mnist_lib.profiles`) runs every chapter in about two minutes
on a 2-core CPU; its numbers must still *mean* something. ``tests/test_lecture.py`` reads
the glued values of a lecture run (``make lecture``) and of the committed full run, and
checks each headline here against :func:`within`: accuracies within half a point, losses
within 10%. A headline is a number the lecture run measures itself: what a chapter replays
from the full run's stored results (:func:`mnist_lib.book.store.measured`) equals the full
run's by construction and is not listed. Chapter 6 replays all its trainings under lecture
(fourteen networks of fifteen epochs each) and so measures no headline itself. Chapter 9
reports measured speeds, which depend on the machine, not the profile: it has no headline to
compare.
"""

from __future__ import annotations

ACCURACY_POINTS = 0.005  # |lecture - full| for an accuracy (0.005 = half a percentage point)
LOSS_SHARE = 0.10  # |lecture - full| / full for a loss

# chapter file -> {glue name: "acc" or "loss"}
HEADLINES: dict[str, dict[str, str]] = {
    "01_mnist_database.ipynb": {"nonneural_test_acc": "acc", "nearest_centroid_test_acc": "acc"},
    "02_backpropagation.ipynb": {"mlp300_adam_test_acc_mean": "acc", "mlp100_sgd_test_acc": "acc"},
    # (its classifiers on the codes are replayed under lecture: their encoder trains 20 epochs)
    "03_autoencoders.ipynb": {"ae_recon_loss": "loss", "conv_ae_recon_loss": "loss"},
    # (its CUHK twin and training-set-size sweep are replayed under lecture)
    "04_lenet5.ipynb": {"lenet5_test_acc_mean": "acc", "anu_nn_cnn_test_acc_mean": "acc"},
    # (its activation and learning-rate sweep is replayed under lecture: only the improved LeNet-5 is re-measured)
    "05_improving_lenet5.ipynb": {"lenet5_improved_test_acc_mean": "acc"},
    # (its training, robustness, ablation and test-time views are replayed; the shipped committee is measured live)
    "07_beyond.ipynb": {"committee_test_acc": "acc", "best_member_test_acc": "acc"},
    "08_draw_a_digit.ipynb": {"draw_model_test_acc": "acc", "drawn_acc": "acc"},
}


def within(kind: str, lecture: float, full: float) -> bool:
    """Whether a lecture-profile value is close enough to the full run's (``kind``: "acc" or "loss")."""
    if kind == "acc":
        return abs(lecture - full) <= ACCURACY_POINTS
    if kind == "loss":
        return abs(lecture - full) <= LOSS_SHARE * abs(full)
    raise ValueError(f"kind must be 'acc' or 'loss', got {kind!r}")
