"""Stratified, seeded splits of labelled rows: the one place the project splits data."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from digitlab.cli import UserError


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
