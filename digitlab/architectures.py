"""Every network of the project by name, whichever track it belongs to.

The engine imports no track; each track registers its ``ARCHITECTURES`` with
the engine's registry when its networks module is imported. Code that builds a
network or loads a checkpoint whose architecture may be any track's (a
checkpoint loader, the web app, a script that takes ``--arch``) imports this
module, which imports every track's networks module, so that every name is
registered. A new track adds its networks module to :data:`TRACKS`.
"""

from __future__ import annotations

from types import ModuleType

from digitlab.engine.networks import Builder, architectures, build
from digitlab.minimnist import networks as minimnist_networks
from digitlab.mnist import networks as mnist_networks
from digitlab.noisy import dense as noisy_networks

# family -> the track module that registers it.
TRACKS: dict[str, ModuleType] = {module.FAMILY: module for module in
                                 (minimnist_networks, mnist_networks, noisy_networks)}

__all__ = ["TRACKS", "Builder", "architectures", "build"]
