"""Scoring a saved CNN checkpoint on any MNIST-format test set.

What ``scripts/evaluate_model.py`` does: load the checkpoint on a device,
check that the test set fits it (28 x 28 images, labels among the classes the
network has), score it, and write ``metrics.json``, the confusion matrix as
JSON and as a figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import digitlab.architectures  # noqa: F401  (checkpoints of any track's network)
from digitlab import devices
from digitlab.data.transforms import as_tensors
from digitlab.engine import evaluate, load_checkpoint, predict_logits
from digitlab.errors import UserError
from digitlab.plots import confusion_matrix
from digitlab.repro import save_figure, save_json, save_metrics


def check_test_set(images: np.ndarray, labels: np.ndarray, model, where: str) -> None:
    """One sentence naming ``where`` when the images or labels do not fit ``model``."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        shape = "x".join(map(str, images.shape[1:]))
        raise UserError(f"the test images of {where} are {shape} pixels but the CNNs take "
                        "28x28; pass an MNIST-format image file.")
    n_classes = int(predict_logits(model, torch.zeros(1, 1, 28, 28)).shape[1])
    outside = labels[(labels < 0) | (labels >= n_classes)]
    if len(outside):
        raise UserError(f"the labels of {where} include {int(outside[0])}, but the checkpoint "
                        f"knows only classes 0 to {n_classes - 1}; pass the label file of "
                        "this data set.")


def evaluate_checkpoint(checkpoint: Path, images: np.ndarray, labels: np.ndarray, *,
                        title_name: str, test_set: dict, out: Path, seed: int,
                        device="cpu") -> dict:
    """Score ``checkpoint`` on ``(images, labels)``; write the results under ``out``."""
    device = devices.resolve(device)
    model, info = load_checkpoint(checkpoint, device)
    check_test_set(images, labels, model, test_set.get("images") or title_name)
    report = evaluate(model, *as_tensors(images, labels))
    title = (f"{checkpoint.name} on {title_name} ({len(labels)} images): "
             f"accuracy {report['accuracy']:.4f}")
    save_figure(confusion_matrix(report["confusion_matrix"], title=title),
                out / "confusion_matrix.png")
    save_json({"confusion_matrix": report["confusion_matrix"]}, out / "confusion_matrix.json")
    save_metrics(out / "metrics.json", report, seed=seed,
                 config={"checkpoint": checkpoint, "noise": test_set.get("noise"),
                         **devices.describe(device)},
                 test_set=test_set, data=test_set,  # "data": what every metrics.json names
                 model={"arch": info["arch"], "model_kwargs": info["model_kwargs"],
                        "data": info["data"], "run_id": info["extra"].get("run_id")})
    return {**report, "title": title, "trained_on": info["data"]}
