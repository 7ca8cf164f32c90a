"""Predictions and scores of a trained network, in eval mode and float32.

Inputs may live on any device; each batch is moved to the model's device and the
logits come back to the CPU, so callers never manage devices for inference.
:func:`evaluate` is the one place a test or validation score is computed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.metrics import classification_summary


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Float32 logits on the CPU for every row of ``x``, computed in eval mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        out = [model(x[i:i + batch_size].to(device)).float().cpu()
               for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0)


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities (models return logits; softmax is applied here)."""
    return torch.softmax(predict_logits(model, x, batch_size), dim=1)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """The predicted class of every row of ``x``."""
    return predict_logits(model, x, batch_size).argmax(1).numpy()


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of CPU ``logits`` against labels ``y``."""
    y = y.cpu()
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Accuracy, loss, macro and per-class precision / recall / F1 and the confusion
    matrix of ``model`` on ``(x, y)``."""
    logits = predict_logits(model, x)
    y = y.cpu()
    summary = classification_summary(y.numpy(), logits.argmax(1).numpy())
    summary["loss"] = float(F.cross_entropy(logits, y))
    return summary
