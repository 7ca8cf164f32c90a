"""Shared fixtures: every test that writes files gets its own project root."""

from __future__ import annotations

import matplotlib
import pytest
import torch

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
