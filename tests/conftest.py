"""Shared fixtures: every test that writes files gets its own project root."""

from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
# Tests are small; one thread per test process avoids oversubscribing 2 cores.
torch.set_num_threads(1)


@pytest.fixture
def project_root(tmp_path, monkeypatch):
    """A temporary ``DIGITLAB_ROOT``: data/, results/ and models/ live under it."""
    monkeypatch.setenv("DIGITLAB_ROOT", str(tmp_path))
    for name in ("data", "results", "models"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory):
    """A small CNN (``cnn2``, 3 epochs, no augmentation) trained on the 4,000 embedded
    train + validation digits, saved as a checkpoint: good enough to read digits drawn
    in a browser, quick enough for the suite. Shared by the web app's tests."""
    import numpy as np

    from digitlab.data.sources import load_mnist
    from digitlab.data.transforms import to_tensor
    from digitlab.engine.checkpoint import save_checkpoint
    from digitlab.engine.fit import evaluate, fit
    from digitlab.mnist.networks import build_cnn

    splits = load_mnist("embedded")
    x = to_tensor(np.concatenate([splits.train_images, splits.val_images]))
    y = torch.as_tensor(np.concatenate([splits.train_labels, splits.val_labels]))
    torch.manual_seed(0)
    model = build_cnn("cnn2")
    fit(model, (x, y), None, torch.optim.Adam(model.parameters(), lr=1e-3), epochs=3,
        progress=False)
    _, accuracy = evaluate(model, to_tensor(splits.test_images),
                           torch.as_tensor(splits.test_labels))
    path = tmp_path_factory.mktemp("classifier") / "small_cnn.pt"
    return save_checkpoint(path, model, arch="cnn2", model_kwargs={}, data=splits.summary(),
                           metrics={"test_accuracy": accuracy})
