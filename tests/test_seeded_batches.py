"""The run's seed reaches the augmentation and the fresh noise of every training batch:
what fit feeds the network is the same for the same seed and differs between seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from digitlab.data.transforms import to_tensor
from digitlab.engine import Recipe, fit


class Recorder(nn.Module):
    """A tiny classifier that keeps a copy of every batch it is trained on."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def one_digit_many_times(n: int = 16):
    """``n`` copies of one digit (a bright bar), so the order of the batch does not
    matter: whatever differs between rows or runs comes from the batch transform."""
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[6:22, 12:16] = 255
    return to_tensor(image.expand(n, 28, 28).numpy()), torch.full((n,), 1)


def batches_fed(recipe: Recipe, seed: int) -> torch.Tensor:
    model = Recorder()
    fit(model, recipe, one_digit_many_times(), None, seed=seed, progress=False)
    return torch.cat(model.seen)


@pytest.mark.parametrize("changes", [
    {"augment": True},
    {"fresh_noise": "awgn"},
    {"augment": True, "fresh_noise": "awgn"},
], ids=["augmentation", "fresh-noise", "both"])
def test_the_same_seed_feeds_the_same_batches_and_another_seed_others(changes):
    recipe = Recipe(optimizer="sgd", lr=0.01, epochs=2, batch_size=8, **changes)
    torch.manual_seed(123)  # the global generator must not matter: it is not the run's
    first = batches_fed(recipe, seed=3)
    torch.manual_seed(456)
    again = batches_fed(recipe, seed=3)
    other = batches_fed(recipe, seed=4)
    plain = batches_fed(Recipe(optimizer="sgd", lr=0.01, epochs=2, batch_size=8), seed=3)
    assert first.shape == (4 * 8, 1, 28, 28)
    assert not torch.equal(first, plain)  # the transform did something
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Every batch of every epoch gets draws of its own.
    assert len({row.numpy().tobytes() for row in first}) == len(first)
