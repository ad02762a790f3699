"""A committee (ensemble) of independently trained networks (chapter 7).

Each member gives class probabilities; the committee averages them and picks the most
probable class. Members that err on *different* digits outvote each other's mistakes,
which is how Ciresan et al. (2011, 2012) went below 0.3% error on MNIST.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from .data import MEAN, STD, Split
from .train import predict_proba


def committee_proba(members: Sequence[nn.Module], images, *, normalization: tuple[float, float] = (MEAN, STD),
                    device=None) -> torch.Tensor:
    """The members' softmax outputs (N, 10), averaged."""
    if not members:
        raise ValueError("a committee needs at least one member")
    return torch.stack([predict_proba(m, images, device=device, normalization=normalization) for m in members]).mean(0)


def committee_sizes(members: Sequence[nn.Module], split: Split, *, normalization: tuple[float, float] = (MEAN, STD),
                    device=None) -> pd.DataFrame:
    """Test accuracy of the committee of the first k members, for k = 1 .. len(members).

    One table row per k: members, test_acc, errors. Each member's probabilities are
    computed once.
    """
    probs = [predict_proba(m, split.images, device=device, normalization=normalization) for m in members]
    rows = []
    for k in range(1, len(probs) + 1):
        correct = torch.stack(probs[:k]).mean(0).argmax(1).eq(split.labels)
        rows.append({"members": k, "test_acc": correct.float().mean().item(), "errors": int((~correct).sum())})
    return pd.DataFrame(rows)
