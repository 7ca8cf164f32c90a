"""Classification and clustering metrics: a thin layer over scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm
from sklearn.metrics.cluster import contingency_matrix

DIGITS = tuple(range(10))


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray,
                           labels: Sequence[int] = DIGITS) -> dict:
    """Accuracy, macro and per-class precision / recall / F1, and the confusion matrix."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(labels), zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            str(label): {"precision": float(p), "recall": float(r), "f1": float(f),
                         "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
        "n": int(len(y_true)),
    }


# --- clustering ----------------------------------------------------------------------
# Every score comes from scikit-learn; what is ours is the Hungarian matching of
# clusters to labels and the one summary the scripts report.

NMI_AVERAGING = "arithmetic"  # NMI = MI / mean(H(labels), H(clusters)); equals the V-measure


def contingency(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """Counts (n_clusters, n_labels) of each cluster/label pair, with the cluster and
    label values that index its rows and columns."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    table = contingency_matrix(clusters, labels)  # rows and columns in sorted value order
    return table.astype(np.int64), np.unique(clusters), np.unique(labels)


def adjusted_rand_index(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Pair-counting agreement corrected for chance (Hubert and Arabie, 1985)."""
    return float(skm.adjusted_rand_score(labels, clusters))


def homogeneity_completeness_v(labels: np.ndarray, clusters: np.ndarray) -> tuple[float, ...]:
    """Homogeneity (each cluster holds one label), completeness (each label in one
    cluster) and their harmonic mean, the V-measure (Rosenberg and Hirschberg, 2007)."""
    return tuple(float(v) for v in skm.homogeneity_completeness_v_measure(labels, clusters))


def hungarian_mapping(labels: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """The one-to-one cluster -> label map that maximises the matched count
    (``scipy.optimize.linear_sum_assignment``); clusters left over map to -1."""
    from scipy.optimize import linear_sum_assignment

    table, cluster_values, label_values = contingency(labels, clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {int(c): -1 for c in cluster_values}
    mapping.update({int(cluster_values[r]): int(label_values[c])
                    for r, c in zip(rows, cols, strict=True)})
    return mapping


def apply_mapping(clusters: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    return np.array([mapping.get(int(c), -1) for c in np.asarray(clusters)], dtype=np.int64)


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray,
                     mapping: dict[int, int] | None = None) -> float:
    """Accuracy after the best one-to-one matching of clusters to labels (``mapping``:
    that matching, when already computed)."""
    mapping = hungarian_mapping(labels, clusters) if mapping is None else mapping
    predicted = apply_mapping(clusters, mapping)
    return float((predicted == np.asarray(labels)).mean())


def clustering_summary(labels: np.ndarray, clusters: np.ndarray,
                       features: np.ndarray | None = None, seed: int = 0) -> dict:
    """Every clustering score the project reports, the Hungarian map and the contingency
    table; the silhouette (Euclidean, on ``features``) only when features are given."""
    homogeneity, completeness, v = homogeneity_completeness_v(labels, clusters)
    table, cluster_values, label_values = contingency(labels, clusters)
    mapping = hungarian_mapping(labels, clusters)
    summary = {
        "ari": adjusted_rand_index(labels, clusters),
        "ami": float(skm.adjusted_mutual_info_score(labels, clusters,
                                                    average_method=NMI_AVERAGING)),
        "nmi": v,
        "nmi_averaging": NMI_AVERAGING,
        "homogeneity": homogeneity,
        "completeness": completeness,
        "v_measure": v,
        "cluster_accuracy": cluster_accuracy(labels, clusters, mapping),
        "cluster_to_label": {str(k): lab for k, lab in mapping.items()},
        "contingency": {"rows_clusters": cluster_values.tolist(),
                        "cols_labels": label_values.tolist(), "counts": table.tolist()},
        "n": int(len(labels)),
    }
    if features is not None and 1 < len(cluster_values) < len(labels):
        summary["silhouette"] = float(skm.silhouette_score(features, clusters,
                                                           random_state=seed))
    return summary
