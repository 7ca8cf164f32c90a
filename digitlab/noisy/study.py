"""Noisy MNIST experiments: dense networks vs CNNs on corrupted digits.

The notebook ``notebooks/noisy_mnist.ipynb`` and ``benchmarks/noisy_mnist.py``
share this module: a :class:`Candidate` is a network and the recipe that trains it;
:func:`train` fits it with the engine (the validation split draws the curves and
picks the epoch whose weights are kept), :func:`score` evaluates it once on a test set,
:func:`cross_validate` runs the engine's stratified k-fold cross-validation
and :func:`robustness_matrix` trains on each noisy set and tests on every one.

Data comes from the ``.npy`` sets written by ``scripts/make_noisy_mnist.py``
(:mod:`digitlab.noisy.sets`). Labels stay integers: ``cross_entropy``
takes class indices, so no model here needs one-hot targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import digitlab.mnist.networks  # noqa: F401  (registers cnn2 and cnn3, which the study names)
from digitlab import engine
from digitlab.data.splits import Splits
from digitlab.data.transforms import flatten_tensor, to_tensor
from digitlab.engine import History, NetworkSpec, Recipe
from digitlab.engine.cv import CVResult
from digitlab.engine.parallel import Cell, Execution, fingerprint_arrays, function_digest, run_study
from digitlab.noisy.dense import ARCHITECTURES as DENSE
from digitlab.pipeline.scale import sized
from digitlab.pipeline.smoke import SMOKE


@dataclass(frozen=True, repr=False)
class BuiltNetwork:
    """A network built by a function of the caller's, such as a notebook cell's
    ``def cnn(): return nn.Sequential(...)``: the studies train what that function builds.

    Worker processes receive the function pickled by value (a notebook's functions live
    in ``__main__``); its ``repr`` names the function's code, so a stored run is reused
    only for the same code.
    """

    builder: Callable[[], nn.Module]
    dense: bool

    @property
    def arch(self) -> str:
        return self.builder.__name__

    @property
    def options(self) -> dict:
        return {}

    def build(self, seed: int | None = None) -> nn.Module:
        if seed is not None:
            torch.manual_seed(seed)
        return self.builder()

    def as_dict(self) -> dict:
        return {"arch": self.arch, "options": {}, "code": function_digest(self.builder)}

    def __repr__(self) -> str:
        code = function_digest(self.builder)
        return f"BuiltNetwork({self.arch}, dense={self.dense}, code={code})"


@dataclass(frozen=True)
class Candidate:
    """A network of the noisy study and the recipe it trains with."""

    network: NetworkSpec | BuiltNetwork
    recipe: Recipe

    @property
    def dense(self) -> bool:
        if isinstance(self.network, BuiltNetwork):
            return self.network.dense
        return self.network.arch in DENSE

    def built_by(self, builder: Callable[[], nn.Module]) -> Candidate:
        """The same recipe training the network ``builder()`` returns, in place of the
        package's copy (its input shape, flat or image, stays this candidate's)."""
        return dataclasses.replace(self, network=BuiltNetwork(builder, self.dense))

    def inputs(self, images_uint8: np.ndarray) -> torch.Tensor:
        """Flattened (N, 784) for dense networks, (N, 1, 28, 28) for CNNs; normalised."""
        return flatten_tensor(images_uint8) if self.dense else to_tensor(images_uint8)

    def data(self, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs(images), torch.as_tensor(labels, dtype=torch.int64)

    def replace(self, **recipe_changes) -> Candidate:
        """The same network with some recipe settings changed (e.g. fewer epochs)."""
        return dataclasses.replace(self, recipe=self.recipe.replace(**recipe_changes))


# The four models of the notebook, sized so that the whole noisy track stays
# within the pipeline's time budget on two CPU cores. Keys are the names used
# in metrics.json; LABELS are the names shown in tables and figures.
MODELS: dict[str, Candidate] = {
    "dnn": Candidate(NetworkSpec("dnn", {"hidden": (256, 128), "dropout": 0.2}),
                 Recipe(optimizer="adam", lr=1e-3, epochs=15)),
    "dnn_improved": Candidate(NetworkSpec("dnn-bn", {"hidden": (512, 256), "dropout": 0.5}),
                          Recipe(optimizer="adam", lr=3e-3, epochs=20, schedule="onecycle",
                                 weight_decay=1e-3)),
    "cnn": Candidate(NetworkSpec("cnn2", {"channels": (16, 32)}),
                 Recipe(optimizer="adam", lr=1e-3, epochs=10)),
    "cnn_improved": Candidate(NetworkSpec("cnn3", {"channels": (16, 32, 64), "dropout": 0.3,
                                           "batchnorm": True}),
                          Recipe(optimizer="adam", lr=3e-3, epochs=12, schedule="onecycle",
                                 weight_decay=1e-4)),
}
LABELS = {"dnn": "DNN", "dnn_improved": "improved DNN", "cnn": "CNN",
          "cnn_improved": "improved CNN"}


def sized_sets(sets: dict[str, Splits], *, quick: bool, max_train: int | None,
               seed: int) -> dict[str, Splits]:
    """The sets a notebook run uses: in quick mode a seeded 200 training and 60 validation
    and test digits of each; with ``max_train``, a seeded subset of each training split; else
    every digit. The same seed keeps the same rows in every set."""
    if quick:
        return {name: s.sample(200, 60, seed) for name, s in sets.items()}
    if max_train is not None and len(next(iter(sets.values())).train_labels) > max_train:
        return {name: s.sample(max_train, None, seed) for name, s in sets.items()}
    return sets


def sized_epochs(n_digits: int, *, quick: bool, full_scale: dict[str, int]) -> dict[str, int]:
    """Each model's epochs: its recipe's on a small set, ``full_scale``'s on a full-size one
    (:mod:`digitlab.pipeline.scale`), the smoke preset's few in quick mode."""
    if quick:
        return {k: min(m.recipe.epochs, SMOKE.curve_epochs) for k, m in MODELS.items()}
    return {k: sized(None, m.recipe.epochs, full_scale[k], n_digits) for k, m in MODELS.items()}


def describe(model: Candidate) -> str:
    """One line: architecture, options and training recipe."""
    options = ", ".join(f"{k}={v}" for k, v in model.network.options.items())
    r = model.recipe
    optimizer = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop",
                 "adadelta": "Adadelta"}[r.optimizer]
    return (f"{model.network.arch}({options}); {optimizer} lr {r.learning_rate:g} ({r.schedule}), "
            f"weight decay {r.weight_decay:g}, {r.epochs} epochs, batch {r.batch_size}")


@dataclass
class Trained:
    """A fitted network with its model description and training history."""

    candidate: Candidate
    model: nn.Module
    history: History


def train(candidate: Candidate, train_images: np.ndarray, train_labels: np.ndarray,
          val_images: np.ndarray | None = None, val_labels: np.ndarray | None = None, *,
          seed: int = 0, device="cpu", progress: bool = True, desc: str = "train") -> Trained:
    """Build and fit ``candidate``'s network; the weights with the lowest validation loss
    are kept."""
    val = None if val_images is None else candidate.data(val_images, val_labels)
    model, history = engine.train(candidate.network, candidate.recipe,
                                  candidate.data(train_images, train_labels), val, seed=seed,
                                  device=device, progress=progress, desc=desc)
    return Trained(candidate, model, history)


def predict(trained: Trained, images: np.ndarray) -> np.ndarray:
    """Predicted digit for each uint8 image."""
    return engine.predict(trained.model, trained.candidate.inputs(images))


def score(trained: Trained, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class report and confusion matrix on one test set."""
    return engine.evaluate(trained.model, *trained.candidate.data(images, labels))


def cross_validate(candidate: Candidate, images: np.ndarray, labels: np.ndarray, *,
                   folds: int = 5, seed: int = 0, inner_val: float = 0.1, device="cpu",
                   progress: bool = True, execution: Execution | None = None,
                   folder=None) -> CVResult:
    """Stratified k-fold cross-validation of ``candidate`` (:func:`digitlab.engine.cross_validate`).

    Each fold trains on the other folds, minus a stratified ``inner_val`` share used
    for its learning curves and for keeping the best epoch, and is scored once on the
    held-out fold. Returns the engine's :class:`~digitlab.engine.cv.CVResult`: per-fold
    accuracies and histories, their mean and (population) standard deviation, and the
    pooled out-of-fold accuracy. The folds
    are a study: ``execution`` spreads them over workers, ``folder`` keeps each one.
    """
    return engine.cross_validate(candidate.network, candidate.recipe,
                                 *candidate.data(images, labels), folds=folds, seed=seed,
                                 inner_val=inner_val, device=device, progress=progress,
                                 execution=execution, folder=folder)


def robustness_row(sets: dict[str, Splits], *, candidate: Candidate, train_name: str, seed: int,
                   device, rows: str) -> list[float]:
    """Train ``candidate`` on one set and return its accuracy on every set's test split."""
    s = sets[train_name]
    trained = train(candidate, *s.split("train"), *s.split("val"), seed=seed, device=device,
                    progress=False, desc=f"train on {train_name}")
    return test_row(trained, sets)


def test_row(trained: Trained, sets: dict[str, Splits]) -> list[float]:
    row = []
    for test_set in sets.values():
        images, labels = test_set.split("test")
        row.append(float(np.mean(predict(trained, images) == labels)))
    return row


def robustness_matrix(candidate: Candidate, sets: dict[str, Splits], *, seed: int = 0,
                      trained: dict[str, Trained] | None = None, device="cpu",
                      progress: bool = True, execution: Execution | None = None,
                      folder=None) -> dict:
    """Train ``candidate`` on each set's train split, test on every set's test split.

    ``trained`` supplies models already fitted with ``candidate`` on some sets
    (keyed by set name) so that they are not trained twice; the others are the
    cells of one study (``execution``, ``folder``: see :func:`run_study`). Returns
    the accuracy matrix (rows: training set, columns: test set) and its labels.
    """
    names = list(sets)
    trained = dict(trained or {})
    rows = fingerprint_arrays(*(array for s in sets.values()
                                for part in ("train", "val", "test") for array in s.split(part)))
    device = torch.device(device)
    cells = [Cell(f"train on {name}", robustness_row,
                  {"candidate": candidate, "train_name": name, "seed": seed, "device": device,
                   "rows": rows})
             for name in names if name not in trained]
    fitted = iter(run_study(cells, shared=sets, folder=folder, execution=execution,
                            device=device, desc="robustness", progress=progress))
    matrix = [test_row(trained[name], sets) if name in trained else next(fitted)
              for name in names]
    return {"train_sets": names, "test_sets": names, "accuracy": matrix}
