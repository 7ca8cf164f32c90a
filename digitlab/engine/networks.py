"""Networks by name: the registry every track fills with its architectures, and ensembles.

Each track keeps its own builders in an ``ARCHITECTURES`` table (the Mini MNIST
networks, the MNIST CNN family, the dense networks of the noisy track) and
registers it here, under its family name, when its networks module is imported
(:func:`register_family`). The engine imports no track: code that builds a
network or loads a checkpoint whose name may be any track's imports
:mod:`digitlab.architectures` first, which imports every track's networks module.
A :class:`NetworkSpec` names one architecture with its options; it is what a run, a
checkpoint and a results file record, so any saved model can be rebuilt from its
file alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from digitlab.errors import UserError

Builder = Callable[..., nn.Module]

# name -> (family, builder), filled by register() as the track modules are imported.
_REGISTRY: dict[str, tuple[str, Builder]] = {}


def register(name: str, builder: Builder | None = None, *, family: str):
    """Register ``builder`` as the architecture ``name`` of ``family``; without a
    builder, a decorator that registers the function it decorates.

    Registering a name again with the same builder is harmless (a module imported
    twice); another builder under a taken name is a programming error."""

    def add(fn: Builder) -> Builder:
        taken = _REGISTRY.get(name)
        if taken is not None and _origin(taken[1]) != _origin(fn):
            raise ValueError(f"architecture {name!r} is already registered by family "
                             f"{taken[0]!r}")
        _REGISTRY[name] = (family, fn)
        return fn

    return add if builder is None else add(builder)


def _origin(builder: Builder) -> tuple[str | None, str | None]:
    """Where a builder is defined: the same after its module is imported again."""
    return getattr(builder, "__module__", None), getattr(builder, "__qualname__", None)


def register_family(family: str, table: Mapping[str, Builder]) -> None:
    """Register every architecture of a track's ``ARCHITECTURES`` table under ``family``."""
    for name, builder in table.items():
        register(name, builder, family=family)


def families() -> list[str]:
    """The family names registered so far, in registration order."""
    return list(dict.fromkeys(family for family, _ in _REGISTRY.values()))


def architectures(family: str | None = None) -> dict[str, Builder]:
    """Every registered architecture name (of ``family``, or of every family) with its
    builder."""
    return {name: builder for name, (fam, builder) in _REGISTRY.items()
            if family is None or fam == family}


def build(arch: str, family: str | None = None, **options) -> nn.Module:
    """Build ``arch`` (of ``family``, or of any); unknown names or options are a
    :class:`UserError` listing what exists."""
    table = architectures(family)
    what = f"{family} architecture" if family else "architecture"
    if arch not in table:
        if not table:
            raise UserError(f"unknown {what} {arch!r}: none is registered yet; import "
                            "digitlab.architectures (every track's networks) first.")
        raise UserError(f"unknown {what} {arch!r}; choose one of {', '.join(sorted(table))}.")
    try:
        return table[arch](**options)
    except TypeError as err:
        raise UserError(f"bad options {options} for {what} {arch!r}: {err}.") from None


@dataclass(frozen=True)
class NetworkSpec:
    """A network by name with its options, e.g. ``NetworkSpec("best", {"width": 16})``."""

    arch: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int | None = None) -> nn.Module:
        """The untrained network; with ``seed``, its initial weights come from that seed."""
        if seed is not None:
            torch.manual_seed(seed)
        return build(self.arch, **self.options)

    def replace(self, **options) -> NetworkSpec:
        """The same architecture with some options changed."""
        return NetworkSpec(self.arch, {**self.options, **options})

    def as_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "options": dict(self.options)}

    def __reduce__(self):
        # Sent to a worker process or a Dask worker, a spec carries the module that
        # registered its architecture, so that the worker can build it too.
        registered = _REGISTRY.get(self.arch)
        module = getattr(registered[1], "__module__", None) if registered else None
        return _unpickle_network, (self.arch, dict(self.options), module)


def _unpickle_network(arch: str, options: dict[str, Any], module: str | None) -> NetworkSpec:
    if module is not None and arch not in _REGISTRY:
        importlib.import_module(module)
    return NetworkSpec(arch, options)


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
