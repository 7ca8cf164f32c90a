"""A run: (network, recipe, data, seed, device) -> (model, history, metrics).

Nothing here reads a global or the command line, so a cross-validation fold or
a cell of a study grid is just another call, which a caller could send to
another process or machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from digitlab import devices
from digitlab.engine.fit import Data, History, fit
from digitlab.engine.networks import Ensemble, NetworkSpec, count_parameters
from digitlab.engine.predict import evaluate, loss_and_accuracy, predict_logits
from digitlab.engine.recipe import Recipe

# Ensemble member k trains from seed + MEMBER_SEED_STEP * k (initialisation, batches, noise).
MEMBER_SEED_STEP = 1000


def fit_data(recipe: Recipe, train_data: Data,
             val_data: Data | None) -> tuple[Data, Data | None]:
    """The (train, validation) pair a run of ``recipe`` actually fits on: with
    ``recipe.train_on_val`` the validation rows join the training rows."""
    if not recipe.train_on_val or val_data is None:
        return train_data, val_data
    return (torch.cat([train_data[0], val_data[0]]),
            torch.cat([train_data[1], val_data[1]])), None


def train(network: NetworkSpec, recipe: Recipe, train_data: Data, val_data: Data | None = None, *,
          seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
          desc: str | None = None) -> tuple[nn.Module, History]:
    """Build ``network`` from ``seed`` and fit it with ``recipe``; an ensemble's members
    are fitted one after the other, each from its own seed."""
    device = devices.resolve(device)
    fit_on, val = fit_data(recipe, train_data, val_data)
    model = network.build(seed)
    desc = desc or network.arch
    if not isinstance(model, Ensemble):
        return model, fit(model, recipe, fit_on, val, seed=seed, device=device,
                          progress=progress, desc=desc)
    histories = [fit(member, recipe, fit_on, val, seed=seed + MEMBER_SEED_STEP * k,
                     device=device, progress=progress,
                     desc=f"{desc} {k + 1}/{len(model.members)}")
                 for k, member in enumerate(model.members)]
    model.eval()
    return model, merge_histories(histories)


def merge_histories(histories: list[History]) -> History:
    """One history for an ensemble: per epoch, the mean of the curves of the members that
    trained that long (with early stopping they may stop at different epochs) and the sum
    of their seconds. Each member kept its own epoch, so the ensemble has no single kept
    epoch (``best_epoch`` 0); its validation accuracy is that of the averaged prediction,
    which :func:`run` measures."""
    n = max(len(h.train_loss) for h in histories)

    def per_epoch(key, combine):
        curves = [getattr(h, key) for h in histories]
        return [combine([c[i] for c in curves if i < len(c)]) for i in range(n)]

    def mean(values):
        return sum(values) / len(values)

    merged = History(train_loss=per_epoch("train_loss", mean),
                     train_acc=per_epoch("train_acc", mean), lr=per_epoch("lr", mean),
                     epoch_seconds=per_epoch("epoch_seconds", sum))
    if all(h.val_loss for h in histories):
        merged.val_loss, merged.val_acc = per_epoch("val_loss", mean), per_epoch("val_acc", mean)
    merged.stopped_early = any(h.stopped_early for h in histories)
    return merged


@dataclass
class RunResult:
    """What one run leaves: the trained model, its history and its scores.

    ``test`` is the test report (:func:`digitlab.engine.predict.evaluate`: accuracy,
    loss, per-class report, confusion matrix); ``val_accuracy`` is the accuracy of the
    kept weights on the validation split (None when validation was trained on);
    ``device`` is :func:`digitlab.devices.describe` of where it trained.
    """

    model: nn.Module = field(repr=False)
    history: History = field(repr=False)
    test: dict = field(repr=False)
    val_accuracy: float | None
    n_train: int
    n_parameters: int
    precision: str
    device: dict

    @property
    def test_accuracy(self) -> float:
        return self.test["accuracy"]

    @property
    def test_loss(self) -> float:
        return self.test["loss"]

    @property
    def epochs_run(self) -> int:
        return len(self.history.train_loss)

    @property
    def best_epoch(self) -> int:
        return self.history.best_epoch

    @property
    def train_seconds(self) -> float:
        return self.history.train_seconds

    @property
    def images_per_second(self) -> float:
        """Training images per second (an image counts once however many ensemble
        members it goes through)."""
        return self.epochs_run * self.n_train / max(self.train_seconds, 1e-9)

    def to_dict(self) -> dict:
        """The run's numbers for a ``metrics.json`` (the model and history are not)."""
        return {"test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                "val_accuracy": self.val_accuracy, "n_train": self.n_train,
                "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "train_seconds": self.train_seconds,
                "images_per_second": self.images_per_second,
                "n_parameters": self.n_parameters, **self.device,
                "precision": self.precision, "test_report": self.test}


def run(network: NetworkSpec, recipe: Recipe, train_data: Data, val_data: Data | None,
        test_data: Data, *, seed: int = 0, device: str | torch.device = "cpu",
        progress: bool = True) -> RunResult:
    """Train on ``train_data`` (and ``val_data``, per the recipe), score once on
    ``test_data``; see :class:`RunResult`."""
    device = devices.resolve(device)
    model, history = train(network, recipe, train_data, val_data, seed=seed, device=device,
                           progress=progress)
    n_train = len(train_data[1]) + (len(val_data[1]) if recipe.train_on_val and val_data else 0)
    # The kept weights' validation accuracy (for an ensemble: the averaged prediction's).
    held_out = val_data is not None and not recipe.train_on_val
    val_accuracy = (loss_and_accuracy(predict_logits(model, val_data[0]), val_data[1])[1]
                    if held_out else None)
    precision = "bf16" if devices.autocast_dtype(device, recipe.precision) else "fp32"
    return RunResult(model=model, history=history, test=evaluate(model, *test_data),
                     val_accuracy=val_accuracy, n_train=n_train,
                     n_parameters=count_parameters(model), precision=precision,
                     device=devices.describe(device))
