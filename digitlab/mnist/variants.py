"""Runs of CNN configurations, and the variants of the learning journal's CNN.

A *run* is one network (architecture + options) trained with one recipe by the
engine (:func:`digitlab.engine.train`). :func:`train_run` trains one and
:func:`results_table` tabulates many (the CNN project's candidates). The variants
study itself, {plain, dropout, batch-norm, dropout + batch-norm} x {SGD, Adam,
RMSprop}, is written out in the notebook ``mnist_04_variants``; :data:`VARIANTS`
and :func:`variant_options` are the package's copy of its switches.

Two numbers summarise a run:

* **validation accuracy**: the accuracy of the weights the engine kept, those of
  the epoch with the lowest validation loss (the project's one meaning);
* **epochs to converge**: the first epoch whose validation accuracy is within
  :data:`CONVERGENCE_TOLERANCE` (0.5 percentage points) of that run's best,
  i.e. how long the run needed to get (almost) as good as it would get.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from digitlab import engine
from digitlab.engine import History, NetworkSpec, Recipe, count_parameters

CONVERGENCE_TOLERANCE = 0.005

# The learning journal's CNN: conv -> ReLU -> max-pool blocks, a fully connected
# ReLU layer of HIDDEN_UNITS, the output layer. Its dropout variant puts Dropout(0.3)
# after every convolution's ReLU and after the fully connected layer's ReLU; every
# variant has the hidden layer, so that only the named switches differ.
HIDDEN_UNITS = 128
DROPOUT = 0.3
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "dropout": {"conv_dropout": DROPOUT, "dropout": DROPOUT},
    "batch-norm": {"batchnorm": True},
    "dropout + batch-norm": {"conv_dropout": DROPOUT, "dropout": DROPOUT, "batchnorm": True},
}

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Run:
    """What one trained configuration left behind."""

    name: str
    network: NetworkSpec
    recipe: Recipe
    model: nn.Module
    history: History
    seconds: float

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy of the kept weights."""
        return self.history.val_accuracy

    @property
    def epochs_to_converge(self) -> int:
        return epochs_to_converge(self.history.val_acc)

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.name, "arch": self.network.arch, "optimizer": self.recipe.optimizer,
            "lr": self.recipe.learning_rate, "augment": self.recipe.augment,
            "parameters": count_parameters(self.model),
            "val_accuracy": self.val_accuracy, "epochs_to_converge": self.epochs_to_converge,
            "best_val_loss_epoch": self.history.best_epoch,
            "final_val_acc": self.history.val_acc[-1], "epochs_run": len(self.history.val_acc),
            "train_seconds": round(self.seconds, 2),
        }


def epochs_to_converge(val_acc: list[float], tolerance: float = CONVERGENCE_TOLERANCE) -> int:
    """First epoch (1-based) whose validation accuracy is within ``tolerance`` of the best."""
    acc = np.asarray(val_acc, dtype=float)
    if acc.size == 0:
        raise ValueError("no validation accuracies recorded")
    return int(np.argmax(acc >= acc.max() - tolerance)) + 1


def train_run(name: str, network: NetworkSpec, recipe: Recipe, train: Data, val: Data | None, *,
              seed: int = 0, device="cpu", progress: bool = True) -> Run:
    """Train one network with one recipe through the engine, timed."""
    start = time.perf_counter()
    model, history = engine.train(network, recipe, train, val, seed=seed, device=device,
                                  progress=progress, desc=name)
    return Run(name, network, recipe, model, history, time.perf_counter() - start)


def results_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run (see :meth:`Run.summary`), indexed by run name."""
    return pd.DataFrame([run.summary() for run in runs]).set_index("run")


def variant_options(variant: str, channels: tuple[int, ...] | None = None,
                    hidden: int = HIDDEN_UNITS) -> dict[str, Any]:
    """The ``cnn2``/``cnn3`` keyword arguments of one variant of the study."""
    extra = {"channels": tuple(channels)} if channels else {}
    return {**VARIANTS[variant], "hidden": hidden, **extra}
