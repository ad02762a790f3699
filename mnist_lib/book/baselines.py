"""Chapter 1's classifiers without a network: nearest centroid and k nearest neighbours on raw pixels.

Both compare a test image with training images pixel by pixel (Euclidean distance on
pixels in [0, 1]), on whatever device the tensors are on. They are the yardstick every
later network is read against: whatever a network adds must beat what plain distances do.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _flat(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 images as (N, 784) float pixels in [0, 1]."""
    return images.reshape(len(images), -1).float() / 255


def centroids(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean image of each digit, (10, 784), pixels in [0, 1]."""
    x = _flat(images)
    sums = torch.zeros(10, x.shape[1], device=x.device).index_add_(0, labels.to(x.device), x)
    return sums / torch.bincount(labels.to(x.device), minlength=10).clamp(min=1)[:, None]


def nearest_centroid(train_images: torch.Tensor, train_labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The digit whose mean training image is nearest to each of ``images``."""
    means = centroids(train_images, train_labels)
    return torch.cdist(_flat(images).to(means.device), means).argmin(1)


def nearest_neighbours(train_images: torch.Tensor, images: torch.Tensor, k: int,
                       chunk: int = 1000) -> torch.Tensor:
    """Indices (N, k) of the ``k`` training images nearest to each of ``images``, nearest first.

    The distances are computed ``chunk`` images at a time, so memory stays at
    ``chunk x len(train_images)`` numbers whatever the number of images.
    """
    if not 1 <= k <= len(train_images):
        raise ValueError(f"k must be between 1 and the number of training images ({len(train_images)}), got {k}")
    train = _flat(train_images)
    train_sq = (train * train).sum(1)
    found = []
    for start in range(0, len(images), chunk):
        x = _flat(images[start:start + chunk]).to(train.device)
        # |x - t|^2 = |x|^2 - 2 x.t + |t|^2; |x|^2 is the same for every t of a row, so it can be left out.
        distances = train_sq[None, :] - 2 * x @ train.T
        found.append(distances.topk(k, dim=1, largest=False).indices)
    return torch.cat(found)


def knn_vote(neighbour_labels: torch.Tensor, k: int) -> torch.Tensor:
    """The majority digit among the first ``k`` neighbours' labels (N, >= k); ties go to the nearer neighbour."""
    votes = F.one_hot(neighbour_labels[:, :k], 10).float()
    # A tiny bonus that shrinks with the rank breaks ties in favour of the nearer neighbour, never a real majority.
    bonus = torch.linspace(1e-3, 0, k, device=votes.device)[None, :, None]
    return (votes * (1 + bonus)).sum(1).argmax(1)


def choose_k(train_images: torch.Tensor, train_labels: torch.Tensor, val_images: torch.Tensor,
             val_labels: torch.Tensor, ks: Sequence[int] = (1, 3, 5, 7)) -> dict[int, float]:
    """Validation accuracy of k-nearest-neighbours for each ``k`` (one neighbour search for all of them)."""
    neighbours = nearest_neighbours(train_images, val_images, max(ks))
    labels = train_labels.to(neighbours.device)[neighbours]
    val_labels = val_labels.to(neighbours.device)
    return {k: (knn_vote(labels, k) == val_labels).float().mean().item() for k in ks}
