"""The one ``Splits`` type of the MNIST family, and the one stratified split.

:class:`Splits` holds uint8 images ``(N, 28, 28)`` and int64 labels for train,
validation and test, the name of the source they came from (so that no number
can confuse the embedded subset with the full set) and, for the noisy track,
the corruption they carry. :func:`stratified_indices` is the only place the
project splits labelled rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from digitlab.errors import UserError

SPLITS = ("train", "val", "test")


def stratified_indices(labels: np.ndarray, test_size: float | int, seed: int, *,
                       what: str = "the data",
                       fix: str = "use more rows per digit") -> tuple[np.ndarray, np.ndarray]:
    """Row indices (kept, held out), each label kept in the same proportion.

    ``test_size`` is a fraction or a count, as in scikit-learn. A split that
    cannot be stratified (a digit with one row, or fewer rows held out than
    there are digits) is a :class:`UserError` naming ``what`` and the ``fix``.
    """
    rows = np.arange(len(labels))
    try:
        return tuple(train_test_split(rows, test_size=test_size, stratify=labels,
                                      random_state=seed))
    except ValueError as err:
        raise UserError(f"{what} has too few rows per digit for a stratified split "
                        f"({str(err).rstrip('.')}); {fix}.") from None


@dataclass(frozen=True)
class Splits:
    """Train / validation / test images and labels of one MNIST-family data set."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    description: str
    noise: str | None = None  # the corruption of every split (None: as loaded)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of ``"train"``, ``"val"`` or ``"test"``."""
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows together (what cross-validation splits)."""
        return (np.concatenate([self.train_images, self.val_images]),
                np.concatenate([self.train_labels, self.val_labels]))

    def summary(self) -> dict:
        """Source and sizes, for logs and every ``metrics.json``."""
        return {"source": self.source, "description": self.description, "noise": self.noise,
                "n_train": int(len(self.train_labels)), "n_val": int(len(self.val_labels)),
                "n_test": int(len(self.test_labels))}

    def replace(self, **changes) -> Splits:
        return dataclasses.replace(self, **changes)

    def head(self, n_train: int | None = None, n_val: int | None = None,
             n_test: int | None = None) -> Splits:
        """The first ``n_*`` images of each split (``None`` keeps a split whole). Every
        source's splits are shuffled, so the first images are a random sample."""
        changes, notes = {}, []
        for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            images, labels = self.split(split)
            if n is not None and n < len(labels):
                changes.update({f"{split}_images": images[:n], f"{split}_labels": labels[:n]})
                notes.append(f"{split} {n}")
        if not changes:
            return self
        return self.replace(description=f"{self.description}, first images only "
                                        f"({', '.join(notes)})", **changes)

    def sample(self, n_train: int, n_eval: int | None = None, seed: int = 0) -> Splits:
        """A seeded random copy with at most ``n_train`` training and ``n_eval`` validation
        and test images (``None``: all); the same seed keeps the same rows for every set
        of one source."""
        rng = np.random.default_rng(seed)
        changes = {}
        for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
            images, labels = self.split(split)
            idx = rng.permutation(len(labels))[:n]
            changes.update({f"{split}_images": images[idx], f"{split}_labels": labels[idx]})
        sizes = ", ".join(f"{split} {len(changes[f'{split}_labels'])}" for split in SPLITS)
        return self.replace(description=f"{self.description}, a random sample ({sizes})",
                            **changes)
