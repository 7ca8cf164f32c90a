"""Saving and loading trained networks with everything needed to rebuild them.

A checkpoint is one ``torch.save`` file holding the state dict (on the CPU),
the network's name and options (:class:`~digitlab.engine.networks.NetworkSpec`),
the data it was trained on, its metrics and a run id shared with the run's
``metrics.json``. :func:`load_checkpoint` rebuilds the network from the file
alone, on any device, so a model trained on a GPU evaluates on a laptop.
Loading uses ``weights_only=True``: a checkpoint never runs code.
"""

from __future__ import annotations

import inspect
import math
import os
import pickle
import uuid
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab import devices
from digitlab.engine.networks import NetworkSpec, architectures
from digitlab.errors import UserError
from digitlab.repro import _jsonable, atomic_target, atomic_targets, json_text

FORMAT = "digitlab-checkpoint"
VERSION = 2
TRAIN_COMMAND = "scripts/train_cnn.py (make mnist)"
# A network option that is a whole number sizes something (a width, hidden units, members,
# a shift); one above this comes from a damaged or foreign file, and building it could
# exhaust memory before its weights are compared with the file's.
MAX_SIZE_OPTION = 4096
# An option that is a list (channels, hidden layers) holds at most this many entries.
MAX_LIST_OPTION = 64


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
        metrics_tmp.write_text(json_text({**document, "run_id": run_id}))
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
    network = checked_network(path, payload)
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


def checked_network(path: str | os.PathLike, payload: dict) -> NetworkSpec:
    """The network a checkpoint names, once its options are ones its architecture's builder
    takes, each in a sane range, and they build no more weights than the file holds; one
    sentence naming the file otherwise. A damaged or foreign file thus never makes
    :func:`load_checkpoint` allocate a network larger than the file's own weights."""
    options = payload.get("model_kwargs") or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise _bad_options(path, payload["arch"], f"options {options!r} are not named values")
    builder = architectures().get(payload["arch"])
    if builder is not None:  # an unknown name is refused by the build, listing the known ones
        _check_option_names(path, payload["arch"], builder, options)
    for name, value in options.items():
        _check_option_value(path, payload["arch"], name, value)
    network = NetworkSpec(payload["arch"], dict(options))
    _check_weight_shapes(path, network, payload["state_dict"])
    return network


def _bad_options(path: str | os.PathLike, arch: str, problem: str) -> UserError:
    return UserError(f"checkpoint {path} cannot rebuild its network {arch!r}: {problem}; "
                     f"re-create it with {TRAIN_COMMAND}.")


def _check_option_names(path, arch: str, builder, options: dict) -> None:
    parameters = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              inspect.Parameter.KEYWORD_ONLY)}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise _bad_options(path, arch, f"option {unknown[0]!r} is not one it takes (it takes "
                                       f"{', '.join(sorted(accepted)) or 'none'})")


def _check_option_value(path, arch: str, name: str, value, in_list: bool = False) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_SIZE_OPTION:
            raise _bad_options(path, arch, f"option {name}={value} is outside 0-{MAX_SIZE_OPTION}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _bad_options(path, arch, f"option {name}={value} is not a finite number")
    elif isinstance(value, (list, tuple)) and not in_list:
        if len(value) > MAX_LIST_OPTION:
            raise _bad_options(path, arch, f"option {name} lists {len(value)} values, more "
                                           f"than {MAX_LIST_OPTION}")
        for item in value:
            _check_option_value(path, arch, name, item, in_list=True)
    else:
        raise _bad_options(path, arch, f"option {name}={value!r} is not a number, a "
                                       "true/false, a name or a list of numbers")


def _check_weight_shapes(path, network: NetworkSpec, state: dict) -> None:
    """Build the network without memory (PyTorch's meta device) and compare the shapes
    of its weights with the file's before the real one is built."""
    try:
        with torch.device("meta"):
            skeleton = network.build()
    except (TypeError, ValueError) as err:  # the real build would fail the same way
        raise _bad_options(path, network.arch, f"its options {network.options} are refused "
                                               f"({str(err).strip().rstrip('.')})") from None
    except (RuntimeError, NotImplementedError):
        # A builder that computes with tensor values (a trial forward pass ending in .item())
        # cannot be built on the meta device; its options were still bounded one by one.
        return
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    held = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    differs = [k for k in wanted if k in held and wanted[k] != held[k]]
    if differs:
        raise _misfit(path, network, f"weight {differs[0]!r} is {held[differs[0]]} in the file "
                                     f"but {wanted[differs[0]]} in the network")
    # Missing or extra names are left to load_state_dict, whose loading hooks may accept them;
    # a network with more values than the file is refused here, before it takes memory.
    needed, stored = sum(map(math.prod, wanted.values())), sum(map(math.prod, held.values()))
    if needed > stored:
        raise _misfit(path, network, f"it has {needed:,} weights, the file {stored:,}")


def _misfit(path, network: NetworkSpec, problem: str) -> UserError:
    return UserError(f"checkpoint {path} does not fit the network it names ({network.arch} "
                     f"{network.options}: {problem}); re-create it with {TRAIN_COMMAND}.")
