"""Full scale: how a pipeline step sizes itself for the full MNIST.

A step that trains on 60,000 digits cannot keep the budget it was given for
the 4,000 embedded ones (an epoch is 15 times as long), and it does not need
to: one pass over the full set shows every model more digits than several
passes over the subset. So each notebook states two sizes in its parameter
cell, for the embedded digits and at full scale, and :func:`sized` picks one
from the number of training digits; a value given explicitly (``-p epochs 10``)
always wins. Nothing is cut to a subset here: a step that does use a subset
says so in its own parameters.
"""

from __future__ import annotations

from typing import TypeVar

import torch

from digitlab import devices

# From this many training digits on (train + validation) a run is at full scale: the full
# MNIST has 60,000, the embedded subset 4,000.
FULL_SCALE_TRAIN = 50_000

T = TypeVar("T")


def is_full_scale(n_train: int) -> bool:
    """Whether ``n_train`` training (+ validation) digits are a full-size set."""
    return n_train >= FULL_SCALE_TRAIN


def sized(value: T | None, small: T, full: T, n_train: int) -> T:
    """``value`` if given, else ``full`` for a full-size training set, else ``small``."""
    if value is not None:
        return value
    return full if is_full_scale(n_train) else small


def scale_name(n_train: int) -> str:
    """"full scale" or "embedded scale": said by every notebook next to its sizes."""
    return "full scale" if is_full_scale(n_train) else "embedded scale"


def run_threads(n_train: int, device: torch.device, *, workers=1, scheduler: str | None = None,
                threads: int | None = None) -> int | None:
    """Set the torch threads each training run uses and return them (None on a GPU).

    ``threads`` if given (0: one per core). Otherwise one thread on a small set, where
    small networks leave a second thread mostly waiting; at full scale every core when
    the runs go one after the other in this process, one each when workers or a
    cluster run them side by side.
    """
    one_process = workers == 1 and scheduler is None
    return devices.set_threads(sized(threads, 1, 0 if one_process else 1, n_train) or None,
                               device)
