"""Behaviour that the rest of the suite let slip: each test here fails on a plausible bug
that every other test passes with (named in its docstring)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.engine import Recipe, fit
from digitlab.generator.pca_kde import DigitGenerator, fit_generator, load_generator
from digitlab.pipeline.summary import ROWS, render


def test_fit_returns_the_best_validation_epoch_not_the_last():
    """Bug: ``fit`` keeps the last epoch's weights. The validation labels are the training
    labels flipped, so every epoch that fits the training set better does worse on
    validation: the best epoch is the first, long before the last."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen)
    y = (x[:, 0] > 0).long()
    val = x, 1 - y
    recipe = Recipe(optimizer="sgd", lr=0.5, momentum=0.0, epochs=4, batch_size=16)

    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    history = fit(model, recipe, (x, y), val, seed=3, progress=False)
    assert history.best_epoch == 1 and len(history.val_loss) == 4
    assert history.val_loss == sorted(history.val_loss)  # each epoch worse than the one before
    kept_loss = F.cross_entropy(model(val[0]), val[1]).item()
    assert kept_loss == pytest.approx(history.val_loss[0], rel=1e-5)
    assert kept_loss < history.val_loss[-1] - 0.1
    # The reference: the same run stopped after its first epoch.
    torch.manual_seed(0)
    one_epoch = nn.Linear(2, 2)
    fit(one_epoch, recipe.replace(epochs=1), (x, y), val, seed=3, progress=False)
    for kept, reference in zip(model.parameters(), one_epoch.parameters(), strict=True):
        torch.testing.assert_close(kept, reference)


def seeds(mean: float, std: float, low: float) -> dict:
    return {"mean": mean, "std": std, "min": low, "n_seeds": 3}


def test_the_best_cnn_benchmark_row_shows_the_best_networks_accuracy(tmp_path):
    """Bug: the "best CNN test accuracy over seeds" row reads the reference network's key;
    here the two networks' numbers differ, so each row must show its own."""
    benchmark = {"metrics": {
        "best": {"test_accuracy": seeds(0.9912, 0.0011, 0.9899),
                 "train_seconds": {"mean": 55.0}},
        "reference": {"test_accuracy": seeds(0.9876, 0.0020, 0.9851),
                      "train_seconds": {"mean": 120.0}},
    }}
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "benchmark.json").write_text(json.dumps(benchmark))
    table = render(ROWS, tmp_path)
    assert ("| MNIST CNNs | benchmark: best CNN test accuracy over seeds | "
            "99.12% ± 0.11% (min 98.99%, 3 seeds) |") in table
    assert ("| MNIST CNNs | benchmark: reference network test accuracy over seeds | "
            "98.76% ± 0.20% (min 98.51%, 3 seeds) |") in table
    assert "| MNIST CNNs | benchmark: best CNN training time (mean) | 55.0 s |" in table


BANDWIDTH = 0.4  # its square, 0.16, would be a spread 2.5 times too small


def one_point_generator(bandwidth: float = BANDWIDTH) -> DigitGenerator:
    """A generator by hand: 4 PCA axes, one training point for digit 3, two for digit 5."""
    points = np.array([[1.0, -2.0, 0.5, 3.0], [9.0, 9.0, 9.0, 9.0], [-9.0, 9.0, -9.0, 9.0]])
    return DigitGenerator(components=np.eye(4, 784), mean=np.full(784, 0.5),
                          explained_variance=np.ones(4), explained_variance_ratio=np.full(4, 0.1),
                          points=points, labels=np.array([3, 5, 5]), bandwidth=bandwidth)


def assert_spread_is_the_bandwidth(latent: np.ndarray, centre: np.ndarray) -> None:
    """A Gaussian kernel around one point: every PCA coordinate has standard deviation h."""
    offsets = latent - centre
    np.testing.assert_allclose(offsets.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(offsets.std(0), BANDWIDTH, rtol=0.03)


def test_generated_digits_spread_one_bandwidth_around_their_training_point(tmp_path):
    """Bug: the generator samples with the bandwidth squared (or another function of it);
    a KDE over one point spreads its samples exactly one bandwidth around it."""
    model = one_point_generator()
    centre = model.points[0]
    assert_spread_is_the_bandwidth(model.sample_latent(20_000, digit=3, seed=0), centre)
    loaded = load_generator(model.save(tmp_path / "generator.npz"))
    assert_spread_is_the_bandwidth(loaded.sample_latent(20_000, digit=3, seed=1), centre)


def test_a_fitted_generator_samples_with_the_bandwidth_it_was_given():
    """The same through ``fit_generator``: digit 7 is one image, so its samples spread one
    bandwidth around that image's PCA point."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.array([0] * 29 + [7])
    model, _ = fit_generator(images, labels, n_components=5, bandwidth=BANDWIDTH, background=0,
                             progress=False)
    assert_spread_is_the_bandwidth(model.sample_latent(20_000, digit=7, seed=2), model.points[-1])
