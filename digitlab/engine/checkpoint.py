"""Saving and loading trained networks with everything needed to rebuild them.

A checkpoint is one ``torch.save`` file holding the state dict (on the CPU),
the network's name and options (:class:`~digitlab.engine.networks.NetworkSpec`),
the data it was trained on, its metrics and a run id shared with the run's
``metrics.json``. :func:`load_checkpoint` rebuilds the network from the file
alone, on any device, so a model trained on a GPU evaluates on a laptop.
Loading uses ``weights_only=True``: a checkpoint never runs code.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab import devices
from digitlab.engine.networks import NetworkSpec
from digitlab.errors import UserError
from digitlab.repro import _jsonable, atomic_target, atomic_targets

FORMAT = "digitlab-checkpoint"
VERSION = 2
TRAIN_COMMAND = "scripts/train_cnn.py (make mnist)"


def checkpoint_payload(model: nn.Module, network: NetworkSpec, *, data: dict[str, Any],
                       metrics: dict[str, Any], extra: dict[str, Any] | None = None) -> dict:
    """What a checkpoint file holds; the weights are copied to the CPU."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT, "version": VERSION, "arch": network.arch,
        "model_kwargs": _jsonable(dict(network.options)), "data": _jsonable(dict(data)),
        "metrics": _jsonable(dict(metrics)), "extra": _jsonable(dict(extra or {})),
        "state_dict": state,
    }


def save_checkpoint(path: str | os.PathLike, model: nn.Module, network: NetworkSpec, *,
                    data: dict[str, Any], metrics: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + network + data source + metrics) atomically."""
    with atomic_target(path) as tmp:
        torch.save(checkpoint_payload(model, network, data=data, metrics=metrics, extra=extra),
                   tmp)
    return Path(path)


def save_checkpoint_and_metrics(path: str | os.PathLike, model: nn.Module, network: NetworkSpec, *,
                                data: dict[str, Any], metrics: dict[str, Any],
                                metrics_path: str | os.PathLike, document: dict[str, Any],
                                extra: dict[str, Any] | None = None) -> str:
    """Write a checkpoint and its run's ``metrics.json`` (``document``) as a pair: both
    are complete before either replaces an old file, and both carry one new run id,
    so an interrupted run never leaves a new model beside old metrics. Returns the id."""
    run_id = uuid.uuid4().hex
    payload = checkpoint_payload(model, network, data=data, metrics=metrics,
                                 extra={**(extra or {}), "run_id": run_id})
    with atomic_targets(path, metrics_path) as (model_tmp, metrics_tmp):
        torch.save(payload, model_tmp)
        metrics_tmp.write_text(json.dumps({**document, "run_id": run_id}, indent=2) + "\n")
    return run_id


def read_payload(path: str | os.PathLike) -> dict:
    """The checkpoint's contents (weights on the CPU); a :class:`UserError` naming what
    the file is not when it is missing, damaged, or not written by digitlab."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train one with {TRAIN_COMMAND} "
                        "or give the path of one that does.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(path):
            # Refused by the safe loader: a whole pickled model or other objects, not weights.
            raise UserError(f"{path} is not a digitlab checkpoint (it holds pickled Python "
                            f"objects, which are not loaded because loading them can run "
                            f"code); create one with {TRAIN_COMMAND}.") from None
        raise UserError(f"{path} is not a readable PyTorch checkpoint (damaged or another "
                        f"format); create one with {TRAIN_COMMAND}.") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({reason}); "
                        f"create one with {TRAIN_COMMAND}.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT \
            or not isinstance(payload.get("arch"), str) or "state_dict" not in payload:
        raise UserError(f"{path} is a PyTorch file but not a digitlab checkpoint (no network "
                        f"name and options in it); create one with {TRAIN_COMMAND}.")
    return payload


def load_checkpoint(path: str | os.PathLike,
                    device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the saved network on ``device``, in eval mode; return it and the
    checkpoint's info (network, data, metrics, extra, path)."""
    payload = read_payload(path)
    network = NetworkSpec(payload["arch"], dict(payload.get("model_kwargs") or {}))
    model = network.build()
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path} does not fit the network it names "
                        f"({network.arch} {network.options}: {first}); re-create it with "
                        f"{TRAIN_COMMAND}.") from None
    model.to(devices.resolve(device)).eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    info.update(path=str(path), network=network)
    return model, info
