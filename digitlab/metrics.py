"""Classification and clustering metrics: a thin layer over scikit-learn."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

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
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
        "n": int(len(y_true)),
    }
