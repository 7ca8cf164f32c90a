"""Stratified k-fold cross-validation of a (network, recipe) pair.

Every row is predicted once, by a network that never trained on it, so the
pooled out-of-fold accuracy and log-loss rest on all the rows: a steadier basis
for choosing a recipe than one small validation split. Each fold is an
independent cell of a study (:mod:`digitlab.engine.parallel`), so folds can run
on several workers and an interrupted cross-validation resumes; a comparison of
several recipes puts all their folds in one study (:func:`fold_cells`,
:func:`pool_folds`). The test split is not an argument: cross-validation never
sees it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold

from digitlab.data.splits import stratified_indices
from digitlab.engine.networks import NetworkSpec
from digitlab.engine.parallel import Cell, Execution, fingerprint_arrays, run_study
from digitlab.engine.predict import loss_and_accuracy, predict_logits
from digitlab.engine.recipe import Recipe
from digitlab.engine.runner import train
from digitlab.errors import UserError


@dataclass(frozen=True)
class FoldScore:
    """One fold: scored on its ``n_test`` held-out rows by a network trained on ``n_train``
    rows (``n_val`` more held out inside the fold for early stopping)."""

    fold: int  # 1-based
    accuracy: float
    log_loss: float
    n_train: int
    n_val: int
    n_test: int
    seconds: float
    history: dict = field(repr=False)


@dataclass(frozen=True)
class CVResult:
    """A cross-validation: every row predicted once by a network that never trained on it.

    ``accuracy`` and ``log_loss`` pool the out-of-fold predictions of all the rows
    (``oof_logits``, one row per input row); ``fold_accuracy``, ``mean`` and ``std``
    (population) describe the folds one by one.
    """

    accuracy: float
    log_loss: float
    folds: list[FoldScore]
    n_images: int
    oof_logits: torch.Tensor = field(repr=False)

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    @property
    def fold_accuracy(self) -> list[float]:
        return [f.accuracy for f in self.folds]

    @property
    def fold_log_loss(self) -> list[float]:
        return [f.log_loss for f in self.folds]

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracy))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_accuracy))

    @property
    def oof_predictions(self) -> list[int]:
        return self.oof_logits.argmax(1).tolist()

    def to_dict(self) -> dict:
        """What a ``metrics.json`` records: the scores, the folds with their histories and
        the out-of-fold predicted classes (not the logits)."""
        return {"accuracy": self.accuracy, "log_loss": self.log_loss,
                "fold_accuracy": self.fold_accuracy, "fold_log_loss": self.fold_log_loss,
                "mean": self.mean, "std": self.std, "n_images": self.n_images,
                "n_folds": self.n_folds, "folds": [vars(f) for f in self.folds],
                "oof_predictions": self.oof_predictions}


def check_folds(labels: np.ndarray, folds: int) -> None:
    """Every fold must hold every class: 2 <= folds <= the rarest class's count."""
    smallest = int(np.unique(labels, return_counts=True)[1].min()) if len(labels) else 0
    if not 2 <= folds <= smallest:
        raise UserError(f"cross-validation needs 2 to {smallest} folds for these "
                        f"{len(labels)} rows (each fold holds every class), got {folds}.")


def cv_data(x: torch.Tensor, y: torch.Tensor, x_fit: torch.Tensor | None = None) -> dict:
    """The rows every fold of a study shares, with a fingerprint of their content (a
    stored fold is reused only for the same rows)."""
    if x_fit is not None and len(x_fit) != len(x):
        raise UserError(f"{len(x_fit)} rows to train on for {len(x)} rows to score; "
                        "pass index-aligned arrays.")
    rows = fingerprint_arrays(*((x, y) if x_fit is None else (x, y, x_fit)))
    return {"x": x, "y": y, "x_fit": x_fit, "id": rows}


def fold_indices(labels: np.ndarray, folds: int, seed: int, fold: int,
                 inner_val: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(training rows, held-out rows, inner validation rows or None) of fold ``fold``."""
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    fit_idx, held_idx = list(splitter.split(np.zeros(len(labels)), labels))[fold]
    if inner_val is None:
        return fit_idx, held_idx, None
    kept, inner = stratified_indices(labels[fit_idx], inner_val, seed + fold,
                                     what="a cross-validation fold")
    return fit_idx[kept], held_idx, fit_idx[inner]


def fit_fold(data: dict, *, network: NetworkSpec, recipe: Recipe, fold: int, folds: int,
             seed: int, inner_val: float | None, device: torch.device, fit_clean: bool,
             rows: str) -> dict:
    """One fold (0-based ``fold``): train from seed ``seed + fold`` (on the rows of
    ``data["x_fit"]`` with ``fit_clean``), predict the held-out rows of ``data["x"]``.
    ``rows`` is the data's fingerprint (it makes the cell's)."""
    x, y = data["x"], data["y"]
    x_fit = data["x_fit"] if fit_clean else x
    fit_idx, held_idx, val_idx = fold_indices(y.cpu().numpy(), folds, seed, fold, inner_val)
    val = None if val_idx is None else (x[val_idx], y[val_idx])
    start = time.perf_counter()
    model, history = train(network, recipe.replace(train_on_val=False),
                           (x_fit[fit_idx], y[fit_idx]), val, seed=seed + fold, device=device,
                           progress=False, desc=f"fold {fold + 1}")
    held = predict_logits(model, x[held_idx])
    loss, accuracy = loss_and_accuracy(held, y[held_idx])
    return {"fold": fold + 1, "accuracy": accuracy, "log_loss": loss,
            "n_train": len(fit_idx), "n_val": 0 if val is None else len(val[1]),
            "n_test": len(held_idx), "seconds": time.perf_counter() - start,
            "history": history.as_dict(), "held_index": torch.as_tensor(held_idx),
            "logits": held}


def fold_cells(network: NetworkSpec, recipe: Recipe, data: dict, *, folds: int = 4, seed: int = 0,
               inner_val: float | None = None, device: str | torch.device = "cpu",
               fit_clean: bool = False, name: str = "") -> list[Cell]:
    """The ``folds`` cells of one cross-validation, named ``"<name> fold k"``;
    ``fit_clean``: train on ``data["x_fit"]`` (see :func:`cross_validate`)."""
    check_folds(data["y"].cpu().numpy(), folds)
    if fit_clean and data["x_fit"] is None:
        raise UserError("training on other rows than the scored ones needs x_fit.")
    device = torch.device(device)
    prefix = f"{name} " if name else ""
    return [Cell(f"{prefix}fold {k + 1}", fit_fold,
                 {"network": network, "recipe": recipe, "fold": k, "folds": folds,
                  "seed": seed, "inner_val": inner_val, "device": device, "fit_clean": fit_clean,
                  "rows": data["id"]})
            for k in range(folds)]


def pool_folds(fold_results: list[dict], y: torch.Tensor) -> CVResult:
    """The cross-validation's scores from its folds' results (:func:`fit_fold`)."""
    logits = torch.zeros(len(y), fold_results[0]["logits"].shape[1])
    for result in fold_results:
        logits[result["held_index"]] = result["logits"]
    folds = [FoldScore(**{k: v for k, v in r.items() if k not in ("held_index", "logits")})
             for r in fold_results]
    return CVResult(accuracy=float((logits.argmax(1) == y).float().mean()),
                    log_loss=float(F.cross_entropy(logits, y)), folds=folds,
                    n_images=len(y), oof_logits=logits)


def cross_validate(network: NetworkSpec, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, *,
                   folds: int = 4, seed: int = 0, inner_val: float | None = None,
                   x_fit: torch.Tensor | None = None, device: str | torch.device = "cpu",
                   progress: bool = False, execution: Execution | None = None,
                   folder=None) -> CVResult:
    """Cross-validate ``network`` trained with ``recipe`` on ``(x, y)``.

    Fold ``k`` trains from seed ``seed + k``. ``inner_val``: a stratified share of each
    fold's training rows held out for its learning curves and early stopping (the
    recipe's one rule); None trains on all of them for the recipe's epochs.
    ``x_fit``: rows to train on in place of ``x`` (index-aligned; e.g. the clean
    digits a fresh-noise recipe corrupts anew), while the held-out fold is always
    scored on ``x``. ``execution`` spreads the folds over workers; ``folder`` stores
    each finished fold (see :func:`digitlab.engine.parallel.run_study`).
    Returns the folds' scores and the pooled out-of-fold ones (:class:`CVResult`).
    """
    data = cv_data(x, y, x_fit)
    cells = fold_cells(network, recipe, data, folds=folds, seed=seed, inner_val=inner_val,
                       device=device, fit_clean=x_fit is not None)
    results = run_study(cells, shared=data, folder=folder, execution=execution,
                        device=torch.device(device), desc="cross-validation",
                        progress=progress)
    return pool_folds(results, y)
