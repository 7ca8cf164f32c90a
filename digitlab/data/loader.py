"""``MNISTDataLoader``: one split of the MNIST source in use, served as tensor mini-batches.

The MNIST learning journal wraps its data in a loader class that knows its
source, split, batch size and shuffling, and serves batches with
``next(iter(loader))``. This is that class over the project's own pieces: the
source comes from :func:`digitlab.data.sources.load_mnist` (local, download or
the embedded subset), the images are normalised once by
:func:`digitlab.data.transforms.to_tensor`, and batches are taken by indexing
(:class:`digitlab.data.batching.TensorBatches`), so an epoch covers the split
exactly once and a seed fixes its order.

>>> loader = MNISTDataLoader("embedded", split="train", batch_size=64, shuffle=True)
>>> images, labels = next(iter(loader))   # (64, 1, 28, 28) float32, (64,) int64
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from digitlab.data.batching import TensorBatches
from digitlab.data.sources import load_mnist
from digitlab.data.splits import SPLITS, Splits
from digitlab.data.transforms import to_tensor
from digitlab.errors import UserError


class MNISTDataLoader:
    """Mini-batches ``(images, labels)`` of one split: normalised float32
    ``(B, 1, 28, 28)`` images and int64 ``(B,)`` labels; the last batch may be smaller.

    ``source`` is any of :data:`digitlab.data.sources.SOURCES`; ``splits`` an
    already loaded :class:`Splits` to reuse instead (then ``source`` is
    ignored). With ``shuffle``, every epoch (every ``iter``) has a new order,
    the same sequence of orders for the same ``seed``.
    """

    def __init__(self, source: str = "auto", split: str = "train", batch_size: int = 64,
                 shuffle: bool = True, *, seed: int = 0, root=None,
                 splits: Splits | None = None):
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch_size must be a whole number of at least 1, "
                            f"got {batch_size!r}.")
        self.splits = splits if splits is not None else load_mnist(source, root, seed=seed)
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.images = to_tensor(getattr(self.splits, f"{split}_images"))
        self.labels = torch.as_tensor(getattr(self.splits, f"{split}_labels"), dtype=torch.int64)
        self._batches = TensorBatches(self.images, self.labels, batch_size, shuffle, seed)

    @property
    def source(self) -> str:
        return self.splits.source

    @property
    def description(self) -> str:
        return f"{self.split} split of the {self.splits.description}"

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self._batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self._batches)

    def __repr__(self) -> str:
        return (f"MNISTDataLoader(source={self.source!r}, split={self.split!r}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}: "
                f"{len(self.labels)} images, {len(self)} batches)")
