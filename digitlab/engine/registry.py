"""Build a network by name from a table of builders, with errors a user can read."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from digitlab.cli import UserError


def build(registry: Mapping[str, Callable[..., nn.Module]], family: str, arch: str,
          **kwargs) -> nn.Module:
    """Call ``registry[arch](**kwargs)``; unknown names or options raise :class:`UserError`."""
    try:
        builder = registry[arch]
    except KeyError:
        raise UserError(f"unknown {family} architecture {arch!r}; choose one of "
                        f"{', '.join(registry)}.") from None
    try:
        return builder(**kwargs)
    except TypeError as err:
        raise UserError(f"bad options {kwargs} for {family} architecture {arch!r}: "
                        f"{err}.") from None
