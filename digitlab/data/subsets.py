"""Smaller copies of an :class:`~digitlab.data.sources.MNISTSplits`, for quick runs.

Every source's splits are already shuffled, so the first ``n`` images of a
split are a random sample of it.
"""

from __future__ import annotations

import dataclasses

from digitlab.data.sources import MNISTSplits


def head(splits: MNISTSplits, n_train: int | None = None, n_val: int | None = None,
         n_test: int | None = None) -> MNISTSplits:
    """The first ``n_*`` images of each split (``None`` keeps a split whole)."""
    changes, notes = {}, []
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n is not None and n < len(getattr(splits, f"{split}_labels")):
            changes[f"{split}_images"] = getattr(splits, f"{split}_images")[:n]
            changes[f"{split}_labels"] = getattr(splits, f"{split}_labels")[:n]
            notes.append(f"{split} {n}")
    if not changes:
        return splits
    description = f"{splits.description}, first images only ({', '.join(notes)})"
    return dataclasses.replace(splits, description=description, **changes)
