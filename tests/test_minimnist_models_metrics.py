"""Clustering metrics against cases worked by hand, Hungarian matching, and the Mini MNIST
networks."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest
import torch

from digitlab import metrics
from digitlab.engine import NetworkSpec
from digitlab.minimnist import networks as mini

# Six images of two digits in three clusters. Contingency (rows clusters, columns labels):
#               label 0  label 1
#   cluster 0      2        0
#   cluster 1      1        1
#   cluster 2      0        2
LABELS = [0, 0, 0, 1, 1, 1]
CLUSTERS = [0, 0, 1, 1, 2, 2]
TABLE = [[2, 0], [1, 1], [0, 2]]
# Pair counting: pairs together in both = 1 + 1; pairs within a label = 3 + 3; within a
# cluster = 1 + 1 + 1; all pairs = 15. Expected index = 6 * 3 / 15, maximum = (6 + 3) / 2.
ARI = (F(2) - F(6 * 3, 15)) / (F(6 + 3, 2) - F(6 * 3, 15))  # = 8/33
# Entropies in nats: H(labels) = ln 2, H(clusters) = ln 3; the mutual information sums
# n_ij/n ln(n n_ij / (a_i b_j)) over the cells: 2 * (2/6) ln(6*2 / (3*2)) = (2/3) ln 2.
MI = 2 / 3 * math.log(2)
H_LABELS, H_CLUSTERS = math.log(2), math.log(3)


def expected_mutual_information(table) -> float:
    """E[MI] over all tables with the same margins (the hypergeometric model of Vinh,
    Epps and Bailey, 2010), summed cell by cell from its definition."""
    table = np.asarray(table)
    n = int(table.sum())
    total = 0.0
    for a in table.sum(axis=1):
        for b in table.sum(axis=0):
            for nij in range(max(1, a + b - n), min(a, b) + 1):
                p = math.comb(b, nij) * math.comb(n - b, a - nij) / math.comb(n, a)
                total += p * nij / n * math.log(n * nij / (a * b))
    return total


def test_scores_of_a_small_partition_match_the_hand_computation():
    summary = metrics.clustering_summary(LABELS, CLUSTERS)
    assert summary["ari"] == pytest.approx(float(ARI), abs=1e-12)
    assert summary["homogeneity"] == pytest.approx(MI / H_LABELS, abs=1e-12)  # 2/3
    assert summary["completeness"] == pytest.approx(MI / H_CLUSTERS, abs=1e-12)
    # NMI with arithmetic averaging: MI over the mean of the two entropies.
    nmi = MI / ((H_LABELS + H_CLUSTERS) / 2)
    assert summary["nmi"] == pytest.approx(nmi, abs=1e-12)
    assert summary["v_measure"] == pytest.approx(nmi, abs=1e-12)
    emi = expected_mutual_information(TABLE)
    ami = (MI - emi) / ((H_LABELS + H_CLUSTERS) / 2 - emi)
    assert summary["ami"] == pytest.approx(ami, abs=1e-12)
    assert summary["contingency"] == {"rows_clusters": [0, 1, 2], "cols_labels": [0, 1],
                                      "counts": TABLE}


@pytest.mark.parametrize("labels, clusters, expected", [
    ([0, 0, 1, 1], [5, 5, 5, 5], 0.0),  # one cluster: pairs agree exactly as often as chance
    ([0, 0, 1, 1], [0, 1, 0, 1], -0.5),  # index 0, expected 2/3, maximum 2: (0 - 2/3) / (4/3)
    ([0, 1, 0, 1], [1, 0, 1, 0], 1.0),  # the same partition under other names
    ([0, 1, 2], [0, 1, 2], 1.0),  # identical partitions score 1 by definition (0/0 otherwise)
    ([0, 0, 0], [0, 0, 0], 1.0),
])
def test_ari_edge_cases_match_the_pair_count(labels, clusters, expected):
    assert metrics.adjusted_rand_index(labels, clusters) == pytest.approx(expected, abs=1e-12)


def test_silhouette_of_four_points_on_a_line():
    # Points 0 and 1 in one cluster, 5 and 7 in the other. s = (b - a) / max(a, b) with a the
    # mean distance within the own cluster and b the mean distance to the other cluster:
    #   0: a 1, b 6 -> 5/6;  1: a 1, b 5 -> 4/5;  5: a 2, b 4.5 -> 5/9;  7: a 2, b 6.5 -> 9/13.
    x = np.array([[0.0], [1.0], [5.0], [7.0]])
    clusters = [0, 0, 1, 1]
    expected = (F(5, 6) + F(4, 5) + F(5, 9) + F(9, 13)) / 4
    summary = metrics.clustering_summary([0, 1, 0, 1], clusters, features=x)
    assert summary["silhouette"] == pytest.approx(float(expected), abs=1e-12)
    assert "silhouette" not in metrics.clustering_summary([0, 1, 0, 1], [0, 0, 0, 0], features=x)


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
    model = NetworkSpec(name).build(seed=0)
    assert model(torch.rand(5, 72)).shape == (5, 10)
    again = NetworkSpec(name).build(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                   again.state_dict().values(), strict=True))
