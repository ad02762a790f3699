"""Numbers published by the reports and papers the book reproduces (see the bibliography).

They are quoted, never measured here: chapters glue them labelled as the report's.
"""

from __future__ import annotations

# Each report's figures, by the bibliography key of the report.
REPORTS: dict[str, dict[str, float]] = {
    "anu_cnn": {  # "CNN-Based Recognition of Handwritten Digits in MNIST Database"
        "test_acc": 0.94,
        "misclassified_shown": 82,
        "shown_9_as_4": 8,  # its most frequent error among the 82 shown: a 9 read as a 4
    },
    "anu_nn": {  # "Classification of MNIST ... using Neural Network"
        "mlp300_test_acc": 0.9765,
        "ae_code_classifier_test_acc": 0.7438,
        "cnn_test_acc": 0.9884,
        "ae_recon_loss": 0.1398,
        "conv_ae_recon_loss": 0.1129,
        "runs": 10,
    },
    "iop2020": {  # "Improvement of MNIST Image Recognition Based on CNN"
        "lenet5_error": 0.02,
        "improved_error": 0.007,
        "relu_sigmoid_speedup": 6,  # "converge faster, about 6 times that of Sigmoid" (measure not stated)
    },
    "jetir2021": {  # "MNIST Handwritten Digits Recognition"
        # Its conclusion's cases (apparently from its reference [1], siddique2019): case 2 is two
        # convolutions, each followed by pooling, with two dropouts; case 6 the same with one dropout.
        "cnn_test_acc": 0.9921,  # case 2, 15 epochs, batch 100
        "case6_test_acc": 0.9707,
        "case2_test_loss": 0.026303,
        "case3_test_loss": 0.049449,  # case 3, "without dropout"
        "drawn_digits_acc": 0.96,
    },
    "cuhk": {  # "Handwritten digit recognition using CNN"
        "lenet_val_acc": 0.9836,
        "lenet_val_loss": 0.0552,
        "lenet_train_acc": 0.9879,  # after the 20th epoch, as its training loop reports it
        "lenet_train_loss": 0.0397,
        "train_seconds": 73,
    },
    "lecun1998": {  # "Gradient-Based Learning Applied to Document Recognition"
        "lenet5_error": 0.0095,
        "lenet5_distortions_error": 0.008,
    },
}

# Published MNIST test errors to compare with (chapter 7's table of records).
PUBLISHED: list[dict[str, object]] = [
    {"result": "LeNet-5", "test_error": 0.0095, "source": "lecun1998"},
    {"result": "LeNet-5, trained on distorted digits", "test_error": 0.008, "source": "lecun1998"},
    {"result": "committee of 7 CNNs, distorted digits", "test_error": 0.0027, "source": "ciresan2011"},
    {"result": "multi-column DNN (35 columns)", "test_error": 0.0023, "source": "ciresan2012"},
    {"result": "majority vote of 3 simple CNNs (3x3, 5x5, 7x7 kernels), best run", "test_error": 0.0013,
     "source": "an2020"},
    {"result": "two-level ensemble of simple CNNs (3 committees), best run", "test_error": 0.0009, "source": "an2020"},
]
