"""Noisy MNIST experiments: dense networks vs CNNs on corrupted digits.

The notebook ``notebooks/noisy_mnist.ipynb`` and ``benchmarks/noisy_mnist.py``
share this module: a :class:`ModelConfig` names a network and how to train
it; :func:`train` fits it with :func:`digitlab.engine.fit.fit` (validation split
for curves and early stopping), :func:`score` evaluates it once on a test set,
:func:`cross_validate` runs stratified k-fold cross-validation and
:func:`robustness_matrix` trains on each noisy set and tests on every one.

Data comes from the ``.npy`` sets written by ``scripts/make_noisy_mnist.py``
(:mod:`digitlab.noisy.sets`). Labels stay integers: ``cross_entropy``
takes class indices, so no model here needs one-hot targets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import nn
from tqdm.auto import tqdm

from digitlab.data.transforms import flatten_tensor, to_tensor
from digitlab.engine.fit import History, fit, predict_logits
from digitlab.metrics import classification_summary
from digitlab.mnist.networks import build_cnn
from digitlab.noisy.dense import build_dense
from digitlab.noisy.sets import NoisySet
from digitlab.repro import set_seed


@dataclass(frozen=True)
class ModelConfig:
    """A network (``family`` dense or cnn, ``arch`` + kwargs) and its training recipe.

    ``schedule``: ``"constant"`` (Adam at ``lr``) or ``"onecycle"`` (Adam with
    a OneCycle schedule peaking at ``lr``, stepped per batch).
    """

    family: str
    arch: str
    model_kwargs: dict = field(default_factory=dict)
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 64
    schedule: str = "constant"
    weight_decay: float = 0.0
    patience: int | None = None

    def build(self) -> nn.Module:
        builder = build_dense if self.family == "dense" else build_cnn
        return builder(self.arch, **self.model_kwargs)

    def inputs(self, images_uint8: np.ndarray) -> torch.Tensor:
        """Flattened (N, 784) for dense networks, (N, 1, 28, 28) for CNNs; normalised."""
        return flatten_tensor(images_uint8) if self.family == "dense" else to_tensor(images_uint8)

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)


# The four models of the notebook, sized so that the whole noisy track stays
# within the pipeline's time budget on two CPU cores. Keys are the names used
# in metrics.json; LABELS are the names shown in tables and figures.
MODELS: dict[str, ModelConfig] = {
    "dnn": ModelConfig("dense", "dnn", {"hidden": (256, 128), "dropout": 0.2}, epochs=15),
    "dnn_improved": ModelConfig("dense", "dnn-bn", {"hidden": (512, 256), "dropout": 0.5},
                                epochs=20, lr=3e-3, schedule="onecycle", weight_decay=1e-3),
    "cnn": ModelConfig("cnn", "cnn2", {"channels": (16, 32)}, epochs=10),
    "cnn_improved": ModelConfig("cnn", "cnn3", {"channels": (16, 32, 64), "dropout": 0.3,
                                                "batchnorm": True},
                                epochs=12, lr=3e-3, schedule="onecycle", weight_decay=1e-4),
}
LABELS = {"dnn": "DNN", "dnn_improved": "improved DNN", "cnn": "CNN",
          "cnn_improved": "improved CNN"}


def describe(config: ModelConfig) -> str:
    """One line: architecture, options and training recipe."""
    options = ", ".join(f"{k}={v}" for k, v in config.model_kwargs.items())
    return (f"{config.arch}({options}); Adam lr {config.lr:g} ({config.schedule}), "
            f"weight decay {config.weight_decay:g}, {config.epochs} epochs, "
            f"batch {config.batch_size}")


@dataclass
class Trained:
    """A fitted network with its config and training history."""

    config: ModelConfig
    model: nn.Module
    history: History


def train(config: ModelConfig, train_images: np.ndarray, train_labels: np.ndarray,
          val_images: np.ndarray | None = None, val_labels: np.ndarray | None = None, *,
          seed: int = 0, progress: bool = True, desc: str = "train") -> Trained:
    """Build and fit ``config``'s network; the weights with the lowest validation loss are kept."""
    set_seed(seed)
    model = config.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    train_xy = (config.inputs(train_images), torch.as_tensor(train_labels, dtype=torch.int64))
    val_xy = None
    if val_images is not None:
        val_xy = (config.inputs(val_images), torch.as_tensor(val_labels, dtype=torch.int64))
    scheduler = None
    if config.schedule == "onecycle":
        steps = -(-len(train_labels) // config.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps)
    elif config.schedule != "constant":
        raise ValueError(f"unknown schedule {config.schedule!r}")
    history = fit(model, train_xy, val_xy, optimizer, epochs=config.epochs,
                  batch_size=config.batch_size, scheduler=scheduler,
                  step_scheduler_per_batch=scheduler is not None, patience=config.patience,
                  seed=seed, progress=progress, desc=desc)
    model.eval()
    return Trained(config, model, history)


def predict(trained: Trained, images: np.ndarray) -> np.ndarray:
    """Predicted digit for each uint8 image."""
    return predict_logits(trained.model, trained.config.inputs(images)).argmax(1).numpy()


def score(trained: Trained, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class report and confusion matrix on one test set."""
    return classification_summary(labels, predict(trained, images))


def cross_validate(config: ModelConfig, images: np.ndarray, labels: np.ndarray, *,
                   n_splits: int = 5, seed: int = 0, inner_val: float = 0.1,
                   progress: bool = True) -> dict:
    """Stratified k-fold cross-validation of ``config``.

    Each fold trains on the other folds, minus a stratified ``inner_val``
    share used for its learning curves and for keeping the best epoch, and is
    scored once on the held-out fold, which plays no part in training.
    Returns per-fold accuracies and histories and their mean and (population)
    standard deviation.
    """
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    results = []
    splits = list(folds.split(images, labels))
    for k, (fit_idx, held_idx) in enumerate(tqdm(splits, desc="cross-validation",
                                                 disable=not progress, unit="fold")):
        tr_idx, val_idx = train_test_split(fit_idx, test_size=inner_val,
                                           stratify=labels[fit_idx], random_state=seed + k)
        trained = train(config, images[tr_idx], labels[tr_idx], images[val_idx],
                        labels[val_idx], seed=seed + k, progress=False, desc=f"fold {k + 1}")
        accuracy = float(np.mean(predict(trained, images[held_idx]) == labels[held_idx]))
        results.append({"fold": k + 1, "accuracy": accuracy, "n_train": len(tr_idx),
                        "n_val": len(val_idx), "n_test": len(held_idx),
                        "history": trained.history.as_dict()})
    accuracies = np.array([r["accuracy"] for r in results])
    return {"folds": results, "accuracies": accuracies.tolist(),
            "mean": float(accuracies.mean()), "std": float(accuracies.std())}


def robustness_matrix(config: ModelConfig, sets: dict[str, NoisySet], *, seed: int = 0,
                      trained: dict[str, Trained] | None = None,
                      progress: bool = True) -> dict:
    """Train ``config`` on each set's train split, test on every set's test split.

    ``trained`` supplies models already fitted with ``config`` on some sets
    (keyed by set name) so that they are not trained twice. Returns the
    accuracy matrix (rows: training set, columns: test set) and its labels.
    """
    names = list(sets)
    trained = dict(trained or {})
    matrix = np.zeros((len(names), len(names)))
    for i, train_name in enumerate(tqdm(names, desc="robustness", disable=not progress,
                                        unit="model")):
        if train_name not in trained:
            s = sets[train_name]
            trained[train_name] = train(config, s.train_images, s.train_labels, s.val_images,
                                        s.val_labels, seed=seed, progress=False,
                                        desc=f"train on {train_name}")
        for j, test_name in enumerate(names):
            s = sets[test_name]
            matrix[i, j] = np.mean(predict(trained[train_name], s.test_images) == s.test_labels)
    return {"train_sets": names, "test_sets": names, "accuracy": matrix.tolist()}


def subsample(noisy: NoisySet, n_train: int, n_eval: int | None = None,
              seed: int = 0) -> NoisySet:
    """A random copy of ``noisy`` with at most ``n_train`` training and ``n_eval``
    validation and test digits (``None``: all). Seeded, so every set of one
    source keeps the same rows."""
    rng = np.random.default_rng(seed)

    def take(images, labels, n):
        idx = rng.permutation(len(labels))[:n]
        return images[idx], labels[idx]

    tr, va, te = (take(*noisy.split(s), n) for s, n in
                  (("train", n_train), ("val", n_eval), ("test", n_eval)))
    return NoisySet(noisy.name, *tr, *va, *te)
