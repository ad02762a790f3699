"""Chapter 1's classifiers without a network, against brute force on small data."""

import pytest
import torch

from mnist_lib.book import baselines


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)


def test_nearest_neighbours_match_brute_force_across_chunks():
    train, test = _images(200), _images(37, seed=1)
    found = baselines.nearest_neighbours(train, test, k=4, chunk=10)  # 4 chunks, the last one short
    brute = torch.cdist(test.reshape(37, -1).float() / 255, train.reshape(200, -1).float() / 255)
    assert torch.equal(found, brute.topk(4, dim=1, largest=False).indices)


def test_a_training_image_is_its_own_nearest_neighbour():
    train = _images(50)
    assert torch.equal(baselines.nearest_neighbours(train, train, k=1)[:, 0], torch.arange(50))


def test_knn_vote_takes_the_majority_and_breaks_ties_towards_the_nearer_neighbour():
    labels = torch.tensor([[3, 5, 5], [7, 2, 9], [4, 1, 4]])
    assert baselines.knn_vote(labels, 3).tolist() == [5, 7, 4]
    assert baselines.knn_vote(labels, 2).tolist() == [3, 7, 4]
    assert baselines.knn_vote(labels, 1).tolist() == [3, 7, 4]


def test_nearest_centroid_finds_the_digit_of_two_clear_clusters():
    dark, bright = torch.zeros(5, 28, 28, dtype=torch.uint8), torch.full((5, 28, 28), 250, dtype=torch.uint8)
    train = torch.cat([dark, bright])
    labels = torch.tensor([0] * 5 + [8] * 5)
    test = torch.stack([torch.full((28, 28), 30, dtype=torch.uint8), torch.full((28, 28), 200, dtype=torch.uint8)])
    assert baselines.nearest_centroid(train, labels, test).tolist() == [0, 8]
    means = baselines.centroids(train, labels)
    assert means[8].max().item() == pytest.approx(250 / 255) and means[3].abs().sum().item() == 0  # no 3s: zeros


def test_choose_k_scores_every_k_from_one_search():
    train, labels = _images(100), torch.arange(100) % 10
    scores = baselines.choose_k(train, labels, train[:20], labels[:20], ks=(1, 3))
    assert scores[1] == 1.0 and set(scores) == {1, 3}


@pytest.mark.parametrize("k", [0, 101])
def test_k_outside_the_training_set_is_refused(k):
    with pytest.raises(ValueError, match="k must be between 1 and the number of training images"):
        baselines.nearest_neighbours(_images(100), _images(3), k=k)
