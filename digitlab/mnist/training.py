"""Training the MNIST CNNs on a :class:`~digitlab.data.splits.Splits` of uint8 digits.

:func:`train_and_score` is one run of the engine on MNIST-family digits,
scored once on the test split; with a fresh-noise recipe it trains on the clean
digits, corrupted anew every batch, and is validated and scored on the fixed
noisy ones. :func:`train_and_save` is what ``scripts/train_cnn.py`` does: the
run, then its checkpoint and ``metrics.json`` written as a pair, and its
training curves.
"""

from __future__ import annotations

from pathlib import Path

import digitlab.architectures  # noqa: F401  (any track's network, by name)
from digitlab.data.splits import Splits
from digitlab.data.transforms import as_tensors
from digitlab.engine import NetworkSpec, Recipe, run
from digitlab.engine.checkpoint import save_checkpoint_and_metrics
from digitlab.engine.runner import RunResult
from digitlab.errors import UserError
from digitlab.plots import learning_curves
from digitlab.repro import metrics_document, save_figure


def fit_images(recipe: Recipe, splits: Splits, clean: Splits | None) -> Splits:
    """What a run trains on: the clean digits when it draws fresh noise, else ``splits``."""
    if recipe.fresh_noise is None:
        return splits
    if clean is None:
        raise UserError(f"fresh {recipe.fresh_noise} noise per batch needs the clean digits "
                        "to corrupt; pass them as clean=.")
    return clean


def train_and_score(network: NetworkSpec, recipe: Recipe, splits: Splits, *,
                    clean: Splits | None = None, seed: int = 0, device="cpu",
                    progress: bool = True) -> RunResult:
    """Train ``network`` with ``recipe`` on ``splits`` and score it once on the test split
    (:func:`digitlab.engine.runner.run`)."""
    fit_on = fit_images(recipe, splits, clean)
    train = as_tensors(*fit_on.split("train"))
    # Validation is trained on (clean, corrupted per batch) or monitored (as noisy as test).
    val = as_tensors(*(fit_on if recipe.train_on_val else splits).split("val"))
    test = as_tensors(*splits.split("test"))
    return run(network, recipe, train, val, test, seed=seed, device=device, progress=progress)


def train_and_save(network: NetworkSpec, recipe: Recipe, splits: Splits, *, checkpoint: Path,
                   results_dir: Path, name: str, clean: Splits | None = None, seed: int = 0,
                   device="cpu", progress: bool = True, config: dict | None = None) -> dict:
    """Train, then write the checkpoint and ``results_dir/metrics.json`` as a pair (one
    run id in both) and ``training_curves.png``; return the metrics."""
    result = train_and_score(network, recipe, splits, clean=clean, seed=seed, device=device,
                             progress=progress)
    model, history = result.model, result.history
    metrics = {**result.to_dict(), "history": history.as_dict()}
    data = splits.summary()
    config = {"network": network.as_dict(), **recipe.as_dict(), "checkpoint": checkpoint,
              **(config or {})}
    save_figure(learning_curves({network.arch: history},
                                title=f"{name}: {splits.source} data"),
                results_dir / "training_curves.png")
    kept = ("test_accuracy", "val_accuracy", "train_seconds", "epochs_run", "device",
            "device_name")
    save_checkpoint_and_metrics(
        checkpoint, model, network, data=data, metrics={k: metrics.get(k) for k in kept},
        extra={"recipe": recipe.as_dict(), "seed": seed}, metrics_path=results_dir /
        "metrics.json", document=metrics_document(metrics, seed=seed, config=config, data=data))
    return metrics
