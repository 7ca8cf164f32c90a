"""The README's "A new architecture", followed as written: a function added to
digitlab/mnist/networks.py's ARCHITECTURES table as "mine" trains with
``scripts/train_cnn.py --arch mine``, its checkpoint loads by name, and the suite's
checks over every registered architecture still pass with it."""

from __future__ import annotations

import json

import pytest
import test_engine
import test_pins
from test_cnn import digits, script_main
from torch import nn

from digitlab.data.sources import write_mnist_folder
from digitlab.engine import networks as registry
from digitlab.engine.checkpoint import load_checkpoint
from digitlab.mnist import networks as mnist_networks


def mine(hidden: int = 16) -> nn.Module:
    """A network a student might add: one hidden layer on the 784 pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@pytest.fixture
def with_mine(monkeypatch):
    """"mine" in the MNIST table and registered as importing the edited file registers it;
    the registry and the table are restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setitem(mnist_networks.ARCHITECTURES, "mine", mine)
    registry.register_family(mnist_networks.FAMILY, mnist_networks.ARCHITECTURES)


def test_train_cnn_trains_the_new_architecture_and_its_checkpoint_loads_by_name(
        with_mine, project_root):
    write_mnist_folder(project_root / "data" / "raw" / "mnist", digits(120, 5), digits(40, 6))
    script_main("train_cnn")(["--arch", "mine", "--option", "hidden=8", "--epochs", "1",
                              "--batch-size", "20", "--no-progress", "--threads", "1"])
    model, info = load_checkpoint(project_root / "models" / "mnist_cnn.pt")
    assert info["network"].arch == "mine" and info["network"].options == {"hidden": 8}
    # hidden=8: 784*8 + 8 weights and biases in, 8*10 + 10 out.
    assert sum(p.numel() for p in model.parameters()) == 784 * 8 + 8 + 8 * 10 + 10
    saved = json.loads((project_root / "results/mnist/mnist_cnn/metrics.json").read_text())
    assert saved["run"]["config"]["network"]["arch"] == "mine"


def test_the_checks_over_every_architecture_pass_with_the_new_one(with_mine):
    assert "mine" in registry.architectures()
    test_pins.test_every_name_with_a_hand_count_is_registered()
    test_engine.test_every_architecture_of_every_track_builds_by_name()
