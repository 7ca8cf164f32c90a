"""The app's digit classifier: a CNN checkpoint, loaded once, on one device.

:func:`load_classifier` reads a checkpoint written by ``scripts/train_cnn.py``
(default ``models/mnist_cnn.pt``, the one ``make mnist`` trains), readies the
network for inference (:func:`for_inference`) and moves it to the device given;
:meth:`Classifier.probabilities` reads a batch of 28x28 MNIST-style digits.
A missing or unreadable checkpoint is a :class:`~digitlab.errors.UserError` naming
the command that creates it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import digitlab.architectures  # noqa: F401  (checkpoints of any track's network)
from digitlab import devices, paths
from digitlab.data.transforms import to_tensor
from digitlab.engine import predict_proba
from digitlab.engine.checkpoint import TRAIN_COMMAND, load_checkpoint
from digitlab.errors import UserError
from digitlab.web.shown import without_absolute_paths


@dataclass
class Classifier:
    model: nn.Module
    device: torch.device
    info: dict

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 digits (N, 28, 28), white ink on black -> class probabilities (N, 10)."""
        x = to_tensor(images).to(self.device, memory_format=torch.channels_last)
        with torch.inference_mode():
            return predict_proba(self.model, x).cpu().numpy().astype(np.float64)

    def describe(self) -> dict:
        """What the app tells clients about the model: checkpoint, data, test accuracy."""
        data, metrics = self.info.get("data", {}), self.info.get("metrics", {})
        return {
            "checkpoint": Path(self.info["path"]).name,
            "arch": self.info.get("arch"),
            "data_source": data.get("source"),
            # A local folder's description names it; clients see it relative.
            "data_description": _public(data.get("description")),
            "noise": data.get("noise"),
            "test_accuracy": metrics.get("test_accuracy"),
        }


def _public(text: str | None) -> str | None:
    return without_absolute_paths(text) if isinstance(text, str) else text


def for_inference(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``model`` that computes the same thing faster: each batch
    norm folded into the convolution before it, weights in channels-last layout.

    Every /generate request reads its 16 digits, so this is on the app's hot path.
    """
    model = copy.deepcopy(model).eval()
    for block in model.modules():
        if not isinstance(block, nn.Sequential):
            continue
        for i in range(len(block) - 1):
            if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                block[i + 1] = nn.Identity()
    return model.to(memory_format=torch.channels_last)


def checkpoint_path(checkpoint: str | os.PathLike | None = None) -> Path:
    return Path(checkpoint) if checkpoint is not None else paths.cnn_checkpoint()


def load_classifier(checkpoint: str | os.PathLike | None = None,
                    device: str | torch.device = "cpu") -> Classifier:
    """The checkpoint's network in eval mode on ``device``; UserError if it cannot be read."""
    path = checkpoint_path(checkpoint)
    target = devices.resolve(device)
    if not path.is_file():
        raise UserError(f"no classifier checkpoint at {path}; train it with {TRAIN_COMMAND}, "
                        "or give the path of another checkpoint.")
    model, info = load_checkpoint(path)  # a damaged file: UserError naming train_cnn.py
    return Classifier(for_inference(model).to(target), target, info)
