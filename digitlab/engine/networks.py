"""Networks by name: one table over every track's architectures, and ensembles.

Each track keeps its own builders in an ``ARCHITECTURES`` table (the Mini MNIST
networks, the MNIST CNN family, the dense networks of the noisy track). A
:class:`Network` names one of them with its options; it is what a run, a
checkpoint and a results file record, so any saved model can be rebuilt from
its file alone. Track modules are imported when a name is looked up, so the
engine does not depend on the tracks at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from digitlab.errors import UserError

# The modules whose ARCHITECTURES tables together name every network of the project.
FAMILIES = {
    "Mini MNIST": "digitlab.minimnist.networks",
    "CNN": "digitlab.mnist.networks",
    "dense": "digitlab.noisy.dense",
}


def architectures() -> dict[str, Callable[..., nn.Module]]:
    """Every architecture name of every track, with its builder."""
    table: dict[str, Callable[..., nn.Module]] = {}
    for module in FAMILIES.values():
        table.update(importlib.import_module(module).ARCHITECTURES)
    return table


def build(arch: str, family: str | None = None, **options) -> nn.Module:
    """Build ``arch`` (of ``family``, or of any); unknown names or options are a
    :class:`UserError` listing what exists."""
    table = (architectures() if family is None
             else importlib.import_module(FAMILIES[family]).ARCHITECTURES)
    what = f"{family} architecture" if family else "architecture"
    if arch not in table:
        raise UserError(f"unknown {what} {arch!r}; choose one of {', '.join(table)}.")
    try:
        return table[arch](**options)
    except TypeError as err:
        raise UserError(f"bad options {options} for {what} {arch!r}: {err}.") from None


@dataclass(frozen=True)
class Network:
    """A network by name with its options, e.g. ``Network("best", {"width": 16})``."""

    arch: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int | None = None) -> nn.Module:
        """The untrained network; with ``seed``, its initial weights come from that seed."""
        if seed is not None:
            torch.manual_seed(seed)
        return build(self.arch, **self.options)

    def replace(self, **options) -> Network:
        """The same architecture with some options changed."""
        return Network(self.arch, {**self.options, **options})

    def as_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "options": dict(self.options)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Ensemble(nn.Module):
    """Networks whose predicted probabilities are averaged.

    ``forward`` returns the log of the mean probability, which is a valid logit
    vector (its softmax is the mean probability), so an ensemble can be used
    wherever one network is. :func:`digitlab.engine.runner.train` trains the members
    one after the other, each from its own seed.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).float().softmax(dim=1) for m in self.members]).mean(0)
        return probs.clamp_min(1e-12).log()
