"""A run: (network, recipe, data, seed, device) -> (model, history, metrics).

Nothing here reads a global or the command line, so a cross-validation fold or
a cell of a study grid is just another call, which a caller could send to
another process or machine.
"""

from __future__ import annotations

import torch
from torch import nn

from digitlab import devices
from digitlab.engine.fit import Data, History, fit
from digitlab.engine.networks import Ensemble, Network, count_parameters
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


def train(network: Network, recipe: Recipe, train_data: Data, val_data: Data | None = None, *,
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


def run(network: Network, recipe: Recipe, train_data: Data, val_data: Data | None,
        test_data: Data, *, seed: int = 0, device: str | torch.device = "cpu",
        progress: bool = True) -> tuple[nn.Module, History, dict]:
    """Train on ``train_data`` (and ``val_data``, per the recipe), score once on
    ``test_data``.

    The metrics: the test report (:func:`digitlab.engine.predict.evaluate`), the
    validation accuracy of the kept weights (None when validation was trained on),
    training digits, epochs, seconds, images per second (an image counts once however
    many ensemble members it goes through), parameters and the device.
    """
    device = devices.resolve(device)
    model, history = train(network, recipe, train_data, val_data, seed=seed, device=device,
                           progress=progress)
    n_train = len(train_data[1]) + (len(val_data[1]) if recipe.train_on_val and val_data else 0)
    epochs = len(history.train_loss)
    # The kept weights' validation accuracy (for an ensemble: the averaged prediction's).
    held_out = val_data is not None and not recipe.train_on_val
    val_accuracy = (loss_and_accuracy(predict_logits(model, val_data[0]), val_data[1])[1]
                    if held_out else None)
    metrics = {
        "test": evaluate(model, *test_data), "val_accuracy": val_accuracy,
        "n_train": n_train, "best_epoch": history.best_epoch, "epochs_run": epochs,
        "train_seconds": history.train_seconds,
        "images_per_second": epochs * n_train / max(history.train_seconds, 1e-9),
        "n_parameters": count_parameters(model), **devices.describe(device),
        "precision": "bf16" if devices.autocast_dtype(device, recipe.precision) else "fp32",
    }
    return model, history, metrics
