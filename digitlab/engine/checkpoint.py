"""Saving and loading trained networks with everything needed to rebuild them.

A checkpoint is one ``torch.save`` file holding the state dict, the
architecture name and its keyword arguments, the data source the model was
trained on, and its metrics. :func:`load_checkpoint` rebuilds the network from
that config alone, so ``scripts/evaluate_model.py`` can evaluate any saved
model on any test set.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab.cli import UserError
from digitlab.repro import _jsonable, atomic_target

FORMAT = "digitlab-checkpoint"
VERSION = 1


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    arch: str,
    model_kwargs: dict[str, Any],
    data: dict[str, Any],
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (state dict + config + data source + metrics) atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "model_kwargs": _jsonable(dict(model_kwargs)),
        "data": _jsonable(dict(data)),
        "metrics": _jsonable(dict(metrics)),
        "extra": _jsonable(dict(extra or {})),
        "state_dict": state,
    }
    with atomic_target(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike, build: Callable[..., nn.Module] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the saved network in eval mode; return it and the checkpoint's info.

    ``build(arch, **model_kwargs)`` defaults to :func:`digitlab.mnist.networks.build_cnn`;
    other model families pass their own builder.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train one first with "
                        "scripts/train_cnn.py or pass --checkpoint PATH.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise UserError(f"checkpoint {path} is not a readable PyTorch file ({err}); "
                        "re-create it with scripts/train_cnn.py.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} was not written by digitlab.engine.checkpoint; "
                        "re-create it with scripts/train_cnn.py.")
    if build is None:
        from digitlab.mnist.networks import build_cnn as build
    model = build(payload["arch"], **payload["model_kwargs"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint {path} does not match architecture "
                        f"{payload['arch']!r} ({str(err).splitlines()[0]}).") from None
    model.eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    info["path"] = str(path)
    return model, info
