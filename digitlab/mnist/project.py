"""The CNN project's reusable steps: model selection on validation, looking inside a
trained network, and the Markdown report.

Model selection never looks at the test set: :func:`compare` trains candidates
and :func:`choose` picks one by validation accuracy; the test set is used once,
afterwards, by the caller. :func:`feature_maps` records what each layer of a
network computes for one digit through forward hooks, and :func:`render_report`
turns the numbers and figure paths of a run into ``results/mnist/report.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.predict import model_device
from digitlab.mnist.networks import single_view
from digitlab.mnist.variants import Data, Run, results_table, train_run


def compare(candidates: Mapping[str, NetworkSpec], recipe: Recipe, train: Data, val: Data, *,
            seed: int = 0, device="cpu", progress: bool = True) -> tuple[pd.DataFrame,
                                                                         dict[str, Run]]:
    """Train every candidate network with ``recipe``; return the validation table and the
    runs."""
    runs = {name: train_run(name, network, recipe, train, val, seed=seed, device=device,
                            progress=progress)
            for name, network in candidates.items()}
    return results_table(list(runs.values())), runs


def choose(table: pd.DataFrame, column: str = "val_accuracy") -> str:
    """The run with the highest ``column``; ties go to the one with fewer parameters."""
    ranked = table.sort_values([column, "parameters"], ascending=[False, True], kind="stable")
    return str(ranked.index[0])


def misclassified(probabilities: np.ndarray, labels: np.ndarray, k: int = 10) -> np.ndarray:
    """Indices of up to ``k`` wrong predictions, the most confident mistakes first."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k]


def first_conv_filters(model: nn.Module) -> np.ndarray:
    """Weights of the first convolution as images ``(out_channels, kh, kw)``
    (summed over input channels; MNIST has one)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("the model has no Conv2d layer")
    return conv.weight.detach().sum(dim=1).cpu().numpy()


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor,
                 layer_types: tuple[type[nn.Module], ...] = (nn.ReLU,)) -> dict[str, np.ndarray]:
    """What every layer of type ``layer_types`` outputs for one image ``(1, 28, 28)``.

    Returns ``{"relu 1": (channels, height, width), ...}`` for the layers with
    image-shaped outputs, numbered in forward order. Forward hooks record the
    outputs; they are copied because ReLUs run in place and would overwrite them.
    """
    maps: dict[str, np.ndarray] = {}

    def hook(module, inputs, output):
        if output.ndim == 4:
            name = f"{type(module).__name__.lower()} {len(maps) + 1}"
            maps[name] = output[0].detach().clone().cpu().numpy()

    handles = [module.register_forward_hook(hook)
               for module in model.modules() if isinstance(module, layer_types)]
    was_training = model.training
    model.eval()
    try:
        with single_view(model):  # one pass: shifted copies would run every hook nine times
            model(image.reshape(1, *image.shape[-3:]).to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return maps


def markdown_table(table: pd.DataFrame | Sequence[Mapping[str, Any]], floatfmt: str = "{:.4f}",
                   index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    df = pd.DataFrame(table) if not isinstance(table, pd.DataFrame) else table
    if index:
        df = df.reset_index()

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return floatfmt.format(value)
        return str(value)

    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _seconds_as_text(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(train_seconds=[f"{s:.1f}" for s in table["train_seconds"]])


def _figure(title: str, path: str | Path, base: Path) -> str:
    return f"![{title}]({Path(path).resolve().relative_to(base.resolve()).as_posix()})"


def render_report(report_path: str | Path, *, data: Mapping[str, Any],
                  comparison: pd.DataFrame, chosen: str, augmentation: pd.DataFrame,
                  final_name: str, test: Mapping[str, Any], figures: Mapping[str, str | Path],
                  settings: Mapping[str, Any]) -> str:
    """The Markdown of ``results/mnist/report.md``, built only from computed values.

    ``test`` is a :func:`digitlab.metrics.classification_summary`; ``figures`` maps a
    caption to a PNG path (linked relative to the report's folder).
    """
    base = Path(report_path).parent
    comparison, augmentation = _seconds_as_text(comparison), _seconds_as_text(augmentation)
    per_class = pd.DataFrame(test["per_class"]).T.rename_axis("digit")
    columns = ["val_accuracy", "epochs_to_converge", "parameters", "train_seconds"]
    lines = [
        "# MNIST CNN project report",
        "",
        f"Data: {data['description']} (source `{data['source']}`): {data['n_train']} training, "
        f"{data['n_val']} validation and {data['n_test']} test images. Pixels are scaled "
        "to [0, 1] and normalised with the MNIST mean and standard deviation.",
        "",
        "Training budget for every candidate: "
        + ", ".join(f"{k} {v}" for k, v in settings.items()) + ".",
        "",
        "## Architecture comparison (validation set only)",
        "",
        markdown_table(comparison[columns]),
        "",
        f"Chosen on validation accuracy: **{chosen}**.",
        "",
        "## Augmentation on / off (validation set only)",
        "",
        markdown_table(augmentation[columns]),
        "",
        f"Final model: **{final_name}**.",
        "",
        "## Test set (used once, for the final model)",
        "",
        f"Test accuracy: **{test['accuracy']:.4f}** on {test['n']} images; macro precision "
        f"{test['macro_precision']:.4f}, macro recall {test['macro_recall']:.4f}, "
        f"macro F1 {test['macro_f1']:.4f}.",
        "",
        markdown_table(per_class[["precision", "recall", "f1", "support"]].astype(
            {"support": int})),
        "",
    ]
    for title, path in figures.items():
        lines += [f"### {title}", "", _figure(title, path, base), ""]
    return "\n".join(lines)
