"""MNISTDataLoader: the learning journal's loader class over the project's sources and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.loader import MNISTDataLoader
from digitlab.data.splits import Splits
from digitlab.errors import UserError

N = 150  # not a multiple of the batch size: the last batch is short


def numbered_splits(n: int = N) -> Splits:
    """Images whose first two pixels spell their row number (row % 250, row // 250)."""
    images = np.zeros((n, 28, 28), np.uint8)
    rows = np.arange(n)
    images[:, 0, 0], images[:, 0, 1] = rows % 250, rows // 250
    images[:, 10:18, 12:16] = 255
    labels = rows % 10
    return Splits(images, labels, images[:20], labels[:20], images[:30], labels[:30],
                       source="numbered", description="numbered test digits")


def rows_of(batch: torch.Tensor) -> np.ndarray:
    """Undo the MNIST normalisation by hand: pixel = 255 (x * 0.3081 + 0.1307)."""
    pixels = np.rint(255 * (batch[:, 0, 0, :2].numpy().astype(np.float64) * 0.3081 + 0.1307))
    return (pixels[:, 0] + 250 * pixels[:, 1]).astype(int)


def epoch_rows(loader) -> list[int]:
    return [int(r) for images, _ in loader for r in rows_of(images)]


def test_batches_are_normalised_tensors_of_the_right_shape():
    loader = MNISTDataLoader(split="train", batch_size=64, shuffle=True, splits=numbered_splits())
    images, labels = next(iter(loader))
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    # Ink 255 and background 0 after (x / 255 - 0.1307) / 0.3081:
    assert images[0, 0, 12, 13].item() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-6)
    assert images[0, 0, 27, 27].item() == pytest.approx(-0.1307 / 0.3081, rel=1e-6)
    np.testing.assert_array_equal(labels.numpy(), rows_of(images) % 10)
    assert [len(y) for _, y in loader] == [64, 64, 22] and len(loader) == 3


def test_an_epoch_covers_the_split_exactly_once_and_shuffling_is_seeded():
    splits = numbered_splits()
    loader = MNISTDataLoader(split="train", batch_size=64, shuffle=True, seed=5, splits=splits)
    first, second = epoch_rows(loader), epoch_rows(loader)
    assert sorted(first) == sorted(second) == list(range(N))
    assert first != second  # a new order every epoch
    again = MNISTDataLoader(split="train", batch_size=64, shuffle=True, seed=5, splits=splits)
    assert epoch_rows(again) == first
    other = MNISTDataLoader(split="train", batch_size=64, shuffle=True, seed=6, splits=splits)
    assert epoch_rows(other) != first
    in_order = MNISTDataLoader(split="train", batch_size=64, shuffle=False, splits=splits)
    assert epoch_rows(in_order) == list(range(N))


@pytest.mark.parametrize("split, size", [("val", 20), ("test", 30)])
def test_each_split_serves_its_own_images(split, size):
    loader = MNISTDataLoader(split=split, batch_size=8, shuffle=False, splits=numbered_splits())
    assert epoch_rows(loader) == list(range(size))


def test_the_embedded_source_loads_by_name():
    loader = MNISTDataLoader("embedded", split="test", batch_size=100, shuffle=False)
    assert loader.source == "embedded" and len(loader) == 10 and len(loader.labels) == 1000
    assert "test split of the embedded subset" in loader.description
    images, labels = next(iter(loader))
    assert images.shape == (100, 1, 28, 28) and set(labels.tolist()) <= set(range(10))


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation"}, "unknown split 'validation'; choose one of train, val, test."),
    ({"batch_size": 0}, "batch_size must be a whole number of at least 1, got 0."),
    ({"batch_size": 2.5}, "batch_size must be a whole number of at least 1, got 2.5."),
])
def test_a_bad_argument_is_one_sentence(kwargs, message):
    with pytest.raises(UserError) as caught:
        MNISTDataLoader(splits=numbered_splits(), **kwargs)
    assert str(caught.value) == message
