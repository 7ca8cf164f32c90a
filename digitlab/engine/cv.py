"""Stratified k-fold cross-validation of a (network, recipe) pair.

Every row is predicted once, by a network that never trained on it, so the
pooled out-of-fold accuracy and log-loss rest on all the rows: a steadier basis
for choosing a recipe than one small validation split. Each fold is an
independent :func:`digitlab.engine.runner.train` call. The test split is not an
argument: cross-validation never sees it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from digitlab.data.splits import stratified_indices
from digitlab.engine.networks import Network
from digitlab.engine.predict import loss_and_accuracy, predict_logits
from digitlab.engine.recipe import Recipe
from digitlab.engine.runner import train
from digitlab.errors import UserError


def check_folds(labels: np.ndarray, folds: int) -> None:
    """Every fold must hold every class: 2 <= folds <= the rarest class's count."""
    smallest = int(np.unique(labels, return_counts=True)[1].min()) if len(labels) else 0
    if not 2 <= folds <= smallest:
        raise UserError(f"cross-validation needs 2 to {smallest} folds for these "
                        f"{len(labels)} rows (each fold holds every class), got {folds}.")


def cross_validate(network: Network, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, *,
                   folds: int = 4, seed: int = 0, inner_val: float | None = None,
                   x_fit: torch.Tensor | None = None, device: str | torch.device = "cpu",
                   progress: bool = False) -> dict:
    """Cross-validate ``network`` trained with ``recipe`` on ``(x, y)``.

    Fold ``k`` trains from seed ``seed + k``. ``inner_val``: a stratified share of each
    fold's training rows held out for its learning curves and early stopping (the
    recipe's one rule); None trains on all of them for the recipe's epochs.
    ``x_fit``: rows to train on in place of ``x`` (index-aligned; e.g. the clean
    digits a fresh-noise recipe corrupts anew), while the held-out fold is always
    scored on ``x``.

    Returns the pooled out-of-fold ``accuracy`` and ``log_loss``, their per-fold
    values, the mean and (population) standard deviation of the fold accuracies,
    per-fold details with histories, and ``oof_logits`` (one row per input row).
    """
    labels = y.cpu().numpy()
    check_folds(labels, folds)
    if x_fit is not None and len(x_fit) != len(x):
        raise UserError(f"{len(x_fit)} rows to train on for {len(x)} rows to score; "
                        "pass index-aligned arrays.")
    x_fit = x if x_fit is None else x_fit
    recipe = recipe.replace(train_on_val=False)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    logits, details = None, []
    splits = list(splitter.split(np.zeros(len(labels)), labels))
    for k, (fit_idx, held_idx) in enumerate(tqdm(splits, desc="cross-validation", unit="fold",
                                                 disable=not progress, leave=False)):
        val = None
        if inner_val is not None:
            kept, inner = stratified_indices(labels[fit_idx], inner_val, seed + k,
                                             what="a cross-validation fold")
            fit_idx, val_idx = fit_idx[kept], fit_idx[inner]
            val = (x[val_idx], y[val_idx])
        model, history = train(network, recipe, (x_fit[fit_idx], y[fit_idx]), val,
                               seed=seed + k, device=device, progress=False,
                               desc=f"fold {k + 1}")
        held = predict_logits(model, x[held_idx])
        logits = torch.zeros(len(y), held.shape[1]) if logits is None else logits
        logits[held_idx] = held
        loss, accuracy = loss_and_accuracy(held, y[held_idx])
        details.append({"fold": k + 1, "accuracy": accuracy, "log_loss": loss,
                        "n_train": len(fit_idx), "n_val": 0 if val is None else len(val[1]),
                        "n_test": len(held_idx), "history": history.as_dict()})
    fold_accuracy = np.array([d["accuracy"] for d in details])
    return {
        "accuracy": float((logits.argmax(1) == y).float().mean()),
        "log_loss": float(F.cross_entropy(logits, y)),
        "fold_accuracy": fold_accuracy.tolist(),
        "fold_log_loss": [d["log_loss"] for d in details],
        "mean": float(fold_accuracy.mean()), "std": float(fold_accuracy.std()),
        "folds": details, "n_images": len(y), "n_folds": folds, "oof_logits": logits,
    }
