"""Mini MNIST baselines: K-Means clustering, the stratified split, and the ladder.

The ladder trains every model on the same rows and scores it on the same test
set: chance (always the most frequent training label), K-Means with 10 clusters
mapped to labels by Hungarian matching on the training rows, logistic
regression, the 72-20-10-10 MLP and the small CNN. The networks hold out a
validation part of the training rows for early stopping; the other models fit
on the same remaining rows so the comparison is fair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from digitlab import engine
from digitlab.data.splits import stratified_indices
from digitlab.engine import History, Recipe
from digitlab.metrics import apply_mapping, hungarian_mapping
from digitlab.minimnist.dataset import N_PIXELS, scale
from digitlab.minimnist.networks import CNN, MLP, RECIPE

RUNGS = ("chance", "K-Means (Hungarian)", "logistic regression", "MLP 72-20-10-10", "CNN")
KEYS = {"chance": "chance", "K-Means (Hungarian)": "kmeans", "logistic regression": "logistic",
        "MLP 72-20-10-10": "mlp", "CNN": "cnn"}


@dataclass
class Part:
    """Scaled pixel rows (float32, N x 72) and their int64 labels."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def from_pixels(cls, pixels: np.ndarray, labels: np.ndarray) -> Part:
        return cls(scale(pixels).reshape(len(pixels), N_PIXELS), np.asarray(labels, np.int64))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.x), torch.from_numpy(self.y)

    def __len__(self) -> int:
        return len(self.y)


def stratified_split(labels: np.ndarray, test_size: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (train, test), each label kept in the same proportion: the split
    ``scripts/split_data.py`` makes."""
    train, test = stratified_indices(labels, test_size, seed)
    return np.sort(train), np.sort(test)


def validation_split(part: Part, fraction: float = 0.2, seed: int = 0) -> tuple[Part, Part]:
    """Split a training part into (fit, validation), stratified and seeded."""
    fit_rows, val_rows = stratified_split(part.y, fraction, seed)
    return Part(part.x[fit_rows], part.y[fit_rows]), Part(part.x[val_rows], part.y[val_rows])


def fit_kmeans(x: np.ndarray, seed: int = 0, n_clusters: int = 10, n_init: int = 10) -> KMeans:
    """K-Means (k-means++ starts, best of ``n_init``), seeded.

    Runs single-threaded: on a thousand rows, extra threads only add
    synchronisation, which costs seconds on a busy machine.
    """
    with threadpool_limits(limits=1):
        return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(x)


@dataclass
class Ladder:
    """Test accuracy per rung (in :data:`RUNGS` order) and the trained networks."""

    accuracy: dict[str, float]
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    histories: dict[str, History] = field(default_factory=dict)

    @property
    def ordered(self) -> bool:
        """chance < K-Means < logistic <= MLP <= CNN."""
        a = [self.accuracy[r] for r in RUNGS]
        return a[0] < a[1] < a[2] <= a[3] <= a[4]

    def as_metrics(self) -> dict:
        """Flat JSON-friendly numbers: ``<key>_accuracy`` per rung and ``ordered``."""
        out = {f"{KEYS[r]}_accuracy": self.accuracy[r] for r in RUNGS}
        out["ordered"] = self.ordered
        out["epochs_trained"] = {KEYS[r]: len(h.train_loss) for r, h in self.histories.items()}
        return out


def run_ladder(fit: Part, val: Part, test: Part, seed: int = 0, recipe: Recipe = RECIPE,
               trained: dict[str, tuple[torch.nn.Module, History]] | None = None,
               device="cpu", progress: bool = False) -> Ladder:
    """Score every rung on ``test``. ``trained`` may pass networks already trained on
    ``fit``/``val`` (e.g. the notebook's MLP) under their rung names; the rest are trained
    with ``recipe`` by the engine."""
    trained = dict(trained or {})
    accuracy = {
        "chance": float((test.y == np.bincount(fit.y).argmax()).mean()),
        "K-Means (Hungarian)": kmeans_accuracy(fit, test, seed),
        "logistic regression": float(
            LogisticRegression(max_iter=2000, random_state=seed).fit(fit.x, fit.y)
            .score(test.x, test.y)),
    }
    for rung, network in (("MLP 72-20-10-10", MLP), ("CNN", CNN)):
        if rung not in trained:
            trained[rung] = engine.train(network, recipe, fit.tensors(), val.tensors(),
                                         seed=seed, device=device, progress=progress,
                                         desc=network.arch)
        accuracy[rung] = network_accuracy(trained[rung][0], test)
    return Ladder(accuracy={r: accuracy[r] for r in RUNGS},
                  models={r: m for r, (m, _) in trained.items()},
                  histories={r: h for r, (_, h) in trained.items()})


def network_accuracy(model: torch.nn.Module, test: Part) -> float:
    """Fraction of ``test`` classified correctly (exact count / n, as for sklearn)."""
    return float((engine.predict(model, torch.from_numpy(test.x)) == test.y).mean())


def kmeans_accuracy(fit: Part, test: Part, seed: int = 0) -> float:
    """Cluster the fit rows, name clusters by Hungarian matching there, score on test."""
    kmeans = fit_kmeans(fit.x, seed)
    mapping = hungarian_mapping(fit.y, kmeans.labels_)
    with threadpool_limits(limits=1):
        predicted = kmeans.predict(test.x)
    return float((apply_mapping(predicted, mapping) == test.y).mean())
