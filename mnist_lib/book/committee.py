"""A committee (ensemble) of independently trained networks, and test-time augmentation (chapter 7).

Each member gives class probabilities; the committee averages them and picks the most
probable class (:class:`Committee` is that, as one ``nn.Module``). Members that err on *different* digits outvote each other's mistakes,
which is how Ciresan et al. (2011, 2012) went below 0.3% error on MNIST.

Test-time augmentation asks each member more than once: about the digit itself and about
a few slightly moved and turned copies of it (:data:`TTA_VIEWS`), and averages the answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from ..augment import rotate_images, shift_images
from ..models import Committee
from ..train import predict_proba

__all__ = ["AS_IS", "TTA_VIEWS", "Committee", "View", "committee_proba", "committee_sizes", "member_probabilities",
           "view"]

# A view of a digit: (dx, dy) whole pixels of shift, then a turn by degrees.
View = tuple[int, int, float]
AS_IS: tuple[View, ...] = ((0, 0, 0.0),)
# The digit, moved one pixel right, left, down and up, and turned 5 degrees each way: the
# small end of what the chapter's networks were trained on (DISTORTIONS), so each copy is
# a digit they read well.
TTA_VIEWS: tuple[View, ...] = AS_IS + ((1, 0, 0.0), (-1, 0, 0.0), (0, 1, 0.0), (0, -1, 0.0), (0, 0, 5.0), (0, 0, -5.0))


def view(images: torch.Tensor, dx: int, dy: int, degrees: float) -> torch.Tensor:
    """uint8 images (N, 28, 28) shifted by (dx, dy) pixels, then turned by ``degrees``."""
    moved = shift_images(images, dx, dy)
    return rotate_images(moved, degrees) if degrees else moved


def member_probabilities(members: Sequence[nn.Module] | Committee, images: torch.Tensor, *,
                         views: Sequence[View] = AS_IS, device=None) -> torch.Tensor:
    """Every member's softmax output for every view of uint8 ``images`` (N, 28, 28): (members, views, N, 10)."""
    members = list(members.members if isinstance(members, Committee) else members)
    if not members:
        raise ValueError("a committee needs at least one member")
    copies = [images if v == (0, 0, 0) else view(images, *v) for v in views]
    return torch.stack([torch.stack([predict_proba(m, x, device=device) for x in copies]) for m in members])


def committee_proba(members: Sequence[nn.Module] | Committee, images, *, views: Sequence[View] = AS_IS,
                    device=None) -> torch.Tensor:
    """The members' softmax outputs (N, 10), averaged (over the ``views`` too)."""
    return member_probabilities(members, images, views=views, device=device).mean((0, 1))


def committee_sizes(probabilities: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """Accuracy of the committee of the first k members, for k = 1 .. all.

    ``probabilities``: each member's class probabilities (members, N, 10), e.g. from
    :func:`member_probabilities` averaged over its views. One table row per k: members,
    test_acc, errors.
    """
    if not len(probabilities):
        raise ValueError("a committee needs at least one member")
    labels = labels.to(probabilities.device)
    correct = torch.stack([probabilities[:k].mean(0).argmax(1).eq(labels) for k in range(1, len(probabilities) + 1)])
    accuracy, errors = correct.float().mean(1).tolist(), (~correct).sum(1).tolist()  # one read of the device each
    return pd.DataFrame({"members": range(1, len(correct) + 1), "test_acc": accuracy, "errors": errors})
