"""Seeded mini-batches from in-memory tensors.

Whole datasets of small images fit in memory, so batches are taken by
indexing one tensor with a permutation: no per-sample Python work, unlike a
``torch.utils.data.DataLoader`` over a ``Dataset``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorBatches:
    """Iterate over ``(x, y)`` mini-batches; reshuffled (seeded) every epoch.

    >>> batches = TensorBatches(x, y, batch_size=64, shuffle=True, seed=0)
    >>> for xb, yb in batches: ...
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = torch.randperm(n, generator=self._generator) if self.shuffle else torch.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size].to(self.x.device)
            yield self.x[idx], self.y[idx]
