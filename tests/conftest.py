"""Shared fixtures: every test that writes files gets its own project root."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from shown_figures import every_saved_figure_is_shown  # noqa: F401  (autouse, every test)

matplotlib.use("Agg")
# Tests are small; one thread per test process avoids oversubscribing 2 cores.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
    import digitlab.architectures  # noqa: F401  (cnn2 by name)
    from digitlab import engine
    from digitlab.data.sources import load_mnist
    from digitlab.data.transforms import as_tensors
    from digitlab.engine import NetworkSpec, Recipe

    splits = load_mnist("embedded")
    network = NetworkSpec("cnn2")
    model, _ = engine.train(network, Recipe(optimizer="adam", lr=1e-3, epochs=3),
                            as_tensors(*splits.pooled()), progress=False)
    accuracy = engine.evaluate(model, *as_tensors(*splits.split("test")))["accuracy"]
    path = tmp_path_factory.mktemp("classifier") / "small_cnn.pt"
    return engine.save_checkpoint(path, model, network, data=splits.summary(),
                                  metrics={"test_accuracy": accuracy})
