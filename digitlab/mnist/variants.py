"""Training grids of CNN configurations and the variants study.

A *run* is one network (architecture + options) trained with one recipe by the
engine (:func:`digitlab.engine.train`). :func:`train_run` trains one and
:func:`results_table` tabulates many; the variants study crosses
{plain, dropout, batch-norm, dropout + batch-norm} with {SGD, Adam, RMSprop}.

Two numbers summarise a run:

* **validation accuracy**: the accuracy of the weights the engine kept, those of
  the epoch with the lowest validation loss (the project's one meaning);
* **epochs to converge**: the first epoch whose validation accuracy is within
  :data:`CONVERGENCE_TOLERANCE` (0.5 percentage points) of that run's best,
  i.e. how long the run needed to get (almost) as good as it would get.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from digitlab import engine
from digitlab.engine import History, NetworkSpec, Recipe, count_parameters
from digitlab.engine.parallel import Cell, Execution, fingerprint_arrays, run_study
from digitlab.repro import save_metrics

CONVERGENCE_TOLERANCE = 0.005

# The usual starting learning rate of each optimiser, kept constant so that the
# optimisers, not schedules, are compared (SGD uses Nesterov momentum 0.9, the
# Recipe's default).
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"optimizer": "sgd", "lr": 0.05},
    "Adam": {"optimizer": "adam", "lr": 1e-3},
    "RMSprop": {"optimizer": "rmsprop", "lr": 1e-3},
}

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


def train_cell(data: dict, *, name: str, network: NetworkSpec, recipe: Recipe, seed: int,
               device, rows: str) -> dict:
    """One run of a study, in a form a worker can send back and a store can keep: the
    kept weights (on the CPU), the history and the seconds. ``rows`` names the data."""
    run = train_run(name, network, recipe, data["train"], data["val"], seed=seed,
                    device=device, progress=False)
    return {"state": {k: v.cpu() for k, v in run.model.state_dict().items()},
            "history": run.history.as_dict(), "seconds": run.seconds}


def train_runs(configs: Mapping[str, tuple[NetworkSpec, Recipe]], train: Data, val: Data, *,
               seed: int = 0, device="cpu", execution: Execution | None = None,
               folder: str | Path | None = None, progress: bool = True,
               desc: str = "runs") -> list[Run]:
    """Train every named (network, recipe) as one study (:func:`run_study`): on several
    workers with ``execution``, each finished run stored in ``folder`` and reused."""
    rows = fingerprint_arrays(*train, *val)
    device = torch.device(device)
    cells = [Cell(name, train_cell, {"name": name, "network": network, "recipe": recipe,
                                     "seed": seed, "device": device, "rows": rows})
             for name, (network, recipe) in configs.items()]
    results = run_study(cells, shared={"train": train, "val": val}, folder=folder,
                        execution=execution, device=device, desc=desc, progress=progress)
    return [run_from_result(cell.name, *configs[cell.name], result)
            for cell, result in zip(cells, results, strict=True)]


def run_from_result(name: str, network: NetworkSpec, recipe: Recipe, result: dict) -> Run:
    model = network.build()
    model.load_state_dict(result["state"])
    model.eval()
    return Run(name, network, recipe, model, History.from_dict(result["history"]),
               result["seconds"])


def results_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run (see :meth:`Run.summary`), indexed by run name."""
    return pd.DataFrame([run.summary() for run in runs]).set_index("run")


def save_run(run: Run, out_dir: str | Path, *, seed: int, data: dict[str, Any],
             config: dict[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/<run name>.json``: the run's summary, history and config."""
    slug = run.name.lower().replace(" + ", "+").replace(" / ", "_").replace(" ", "-")
    return save_metrics(Path(out_dir) / f"{slug}.json", run.summary(), seed=seed,
                        config={"network": run.network.as_dict(), **run.recipe.as_dict(),
                                **(config or {})}, data=data,
                        history=run.history.as_dict())


def variant_options(variant: str, channels: tuple[int, ...] | None = None,
                    hidden: int = HIDDEN_UNITS) -> dict[str, Any]:
    """The ``cnn2``/``cnn3`` keyword arguments of one variant of the study."""
    extra = {"channels": tuple(channels)} if channels else {}
    return {**VARIANTS[variant], "hidden": hidden, **extra}


def variants_study(train: Data, val: Data, *, arch: str = "cnn2",
                   channels: tuple[int, ...] | None = None, hidden: int = HIDDEN_UNITS,
                   epochs: int = 8, batch_size: int = 64, seed: int = 0,
                   out_dir: str | Path | None = None, data: dict[str, Any] | None = None,
                   device="cpu", execution: Execution | None = None,
                   progress: bool = True) -> tuple[pd.DataFrame, dict[str, History]]:
    """Train every variant x optimiser pair (constant learning rate, no augmentation) as
    one study; return the results table and the histories by run name.

    With ``out_dir``, every run's metrics go to ``<out_dir>/<variant>_<optimizer>.json``
    and the finished runs are stored in ``<out_dir>/study`` (an interrupted study
    resumes); ``execution`` spreads the runs over workers.
    """
    configs = {f"{variant} / {opt_name}": (
        NetworkSpec(arch, variant_options(variant, channels, hidden)),
        Recipe(optimizer=opt["optimizer"], lr=opt["lr"], epochs=epochs, batch_size=batch_size))
        for variant in VARIANTS for opt_name, opt in OPTIMIZERS.items()}
    folder = None if out_dir is None else Path(out_dir) / "study"
    runs = train_runs(configs, train, val, seed=seed, device=device, execution=execution,
                      folder=folder, progress=progress, desc="variants")
    if out_dir is not None:
        for run in runs:
            save_run(run, out_dir, seed=seed, data=data or {},
                     config={"variant": run.name.split(" / ")[0]})
    table = results_table(runs)
    table.insert(0, "variant", [name.split(" / ")[0] for name in table.index])
    table["optimizer"] = [name.split(" / ")[1] for name in table.index]  # display names
    return table, {run.name: run.history for run in runs}
