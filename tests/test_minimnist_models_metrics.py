"""Clustering metrics against scikit-learn, Hungarian matching, and the Mini MNIST networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.metrics.cluster import contingency_matrix

from digitlab import metrics
from digitlab.engine import Network
from digitlab.minimnist import networks as mini


def noisy_partition(seed: int, n: int = 400, n_clusters: int = 12):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    clusters = np.where(rng.random(n) < 0.6, (labels * 7 + 3) % 10,
                        rng.integers(0, n_clusters, n))
    return labels, clusters


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_our_clustering_scores_match_scikit_learn(seed):
    labels, clusters = noisy_partition(seed)
    assert metrics.adjusted_rand_index(labels, clusters) == pytest.approx(
        skm.adjusted_rand_score(labels, clusters), abs=1e-12)
    ours = metrics.homogeneity_completeness_v(labels, clusters)
    assert ours == pytest.approx(skm.homogeneity_completeness_v_measure(labels, clusters),
                                 abs=1e-12)
    summary = metrics.clustering_summary(labels, clusters)
    assert summary["nmi"] == pytest.approx(
        skm.normalized_mutual_info_score(labels, clusters, average_method="arithmetic"))
    assert summary["ami"] == pytest.approx(skm.adjusted_mutual_info_score(labels, clusters))
    table, _, _ = metrics.contingency(labels, clusters)
    assert np.array_equal(table, contingency_matrix(labels, clusters).T)


def test_ari_edge_cases_match_scikit_learn():
    for labels, clusters in (([0, 0, 1, 1], [5, 5, 5, 5]), ([0, 1, 2], [0, 1, 2]),
                             ([0, 0, 0], [0, 0, 0]), ([0, 1, 0, 1], [1, 0, 1, 0])):
        assert metrics.adjusted_rand_index(labels, clusters) == pytest.approx(
            skm.adjusted_rand_score(labels, clusters))


def test_silhouette_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (30, 3)), rng.normal(4, 1, (30, 3))])
    clusters = np.repeat([0, 1], 30)
    summary = metrics.clustering_summary(clusters, clusters, features=x)
    assert summary["silhouette"] == pytest.approx(skm.silhouette_score(x, clusters))


def test_hungarian_recovers_a_known_permutation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    permutation = rng.permutation(10)
    clusters = permutation[labels]
    mapping = metrics.hungarian_mapping(labels, clusters)
    assert mapping == {int(permutation[d]): d for d in range(10)}
    assert metrics.cluster_accuracy(labels, clusters) == 1.0
    assert metrics.adjusted_rand_index(labels, clusters) == 1.0
    # Corrupt 30 rows: accuracy drops by exactly that share, the map stays the same.
    clusters[:30] = permutation[(labels[:30] + 1) % 10]
    assert metrics.cluster_accuracy(labels, clusters) == pytest.approx(270 / 300)
    assert metrics.hungarian_mapping(labels, clusters) == mapping


def test_hungarian_is_one_to_one_even_when_a_greedy_map_is_not():
    # Clusters 0 and 1 both hold mostly label 0; the one-to-one optimum names cluster 1 as 1.
    labels = np.array([0] * 5 + [0] * 4 + [1] * 3)
    clusters = np.array([0] * 5 + [1] * 4 + [1] * 3)
    assert metrics.hungarian_mapping(labels, clusters) == {0: 0, 1: 1}
    assert metrics.cluster_accuracy(labels, clusters) == pytest.approx(8 / 12)


def test_surplus_clusters_map_to_minus_one():
    mapping = metrics.hungarian_mapping([0, 0, 1, 1, 1], [0, 0, 1, 1, 2])
    assert mapping == {0: 0, 1: 1, 2: -1}


def test_mlp_layer_sizes_are_exactly_72_20_10_10():
    model = mini.MiniMLP()
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(72, 20), (20, 10), (10, 10)]
    assert model.layer_sizes == (72, 20, 10, 10)
    activations = [type(m).__name__ for m in model if not isinstance(m, torch.nn.Linear)]
    assert activations == ["Flatten", "ReLU", "ReLU"]  # logits out: no softmax layer
    assert sum(p.numel() for p in model.parameters()) == 72 * 20 + 20 + 20 * 10 + 10 + 10 * 10 + 10


@pytest.mark.parametrize("name", ["mini-mlp", "mini-cnn"])
def test_networks_map_72_pixels_to_10_logits(name):
    model = Network(name).build(seed=0)
    assert model(torch.rand(5, 72)).shape == (5, 10)
    again = Network(name).build(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                   again.state_dict().values(), strict=True))
