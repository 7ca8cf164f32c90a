"""How good a generator's samples are: recognisable as the requested digit, and new.

Two measures for :mod:`digitlab.generator.pca_kde` samples (the notebook
``train_kde_model`` reports both): :func:`recognisability`, how often a trained
CNN reads a sample as the digit that was asked for, and :func:`novelty`, how
close samples lie to their nearest training image compared with real digits
the generator never saw (a generator that copies its training set fails it).
"""

from __future__ import annotations

import numpy as np

from digitlab.generator.pca_kde import to_unit


def recognisability(classifier, images: np.ndarray, requested: np.ndarray) -> dict:
    """How often a trained digit classifier (a torch CNN) agrees with the requested digit."""
    from digitlab.data.transforms import to_tensor
    from digitlab.engine import predict_proba

    proba = predict_proba(classifier, to_tensor(images)).numpy()
    predicted = proba.argmax(1)
    requested = np.asarray(requested)
    agree = predicted == requested
    return {
        "agreement": float(agree.mean()),
        "mean_confidence": float(proba.max(1).mean()),
        "mean_prob_requested": float(proba[np.arange(len(requested)), requested].mean()),
        "per_digit_agreement": {str(d): float(agree[requested == d].mean())
                                for d in np.unique(requested)},
        "n": int(len(requested)),
    }


def nearest_distances(queries: np.ndarray, reference: np.ndarray,
                      batch_size: int = 512) -> np.ndarray:
    """Euclidean distance (pixels in [0, 1]) from each query image to its nearest reference."""
    q, r = to_unit(queries), to_unit(reference)
    r_sq = np.einsum("ij,ij->i", r, r)
    out = np.empty(len(q))
    for start in range(0, len(q), batch_size):
        block = q[start:start + batch_size]
        d_sq = np.einsum("ij,ij->i", block, block)[:, None] + r_sq[None, :] - 2 * block @ r.T
        out[start:start + batch_size] = np.sqrt(np.clip(d_sq.min(1), 0, None))
    return out


def novelty(samples: np.ndarray, train_images: np.ndarray, test_images: np.ndarray) -> dict:
    """Nearest-training-image distances of samples next to those of real unseen test images.

    A KDE that only copies its training set puts its samples much closer to
    training images than real new digits are; ``near_copy_fraction`` counts
    samples closer than the closest 5% of test images.
    """
    sample_d = nearest_distances(samples, train_images)
    test_d = nearest_distances(test_images, train_images)
    threshold = float(np.percentile(test_d, 5))
    return {
        "sample_to_train_median": float(np.median(sample_d)),
        "sample_to_train_mean": float(sample_d.mean()),
        "test_to_train_median": float(np.median(test_d)),
        "test_to_train_mean": float(test_d.mean()),
        "median_ratio": float(np.median(sample_d) / np.median(test_d)),
        "near_copy_threshold": threshold,
        "near_copy_fraction": float((sample_d < threshold).mean()),
        "sample_distances": sample_d,
        "test_distances": test_d,
    }
