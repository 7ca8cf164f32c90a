"""The MLP has one definition a student edits, in notebooks/train_mini_mnist.py, and a copy
in the package (digitlab.minimnist.networks.MiniMLP) that the ladder benchmark trains: both
must compute the same function, the original project's 72-20-10-10 network."""

from __future__ import annotations

import jupytext
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab import paths
from digitlab.minimnist.networks import MiniMLP


def notebook_mlp() -> nn.Module:
    """The notebook's ``MLP``, built from the cell that defines it (nothing else runs)."""
    nb = jupytext.read(paths.notebooks_dir() / "train_mini_mnist.py")
    [cell] = [c for c in nb.cells if c.cell_type == "code" and "class MLP(" in c.source]
    definition = cell.source.split("\n\n\n")[0]  # the class, not the lines that build it
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(definition, namespace)
    return namespace["MLP"]()


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_the_notebook_mlp_has_the_original_projects_layers():
    assert linear_shapes(notebook_mlp()) == [(72, 20), (20, 10), (10, 10)]


def test_the_package_copy_computes_what_the_notebook_mlp_computes():
    ours, package = notebook_mlp(), MiniMLP()
    assert linear_shapes(package) == linear_shapes(ours)
    # Same weights in both, layer by layer: the same logits on any input only if the
    # ReLUs sit in the same places and no layer differs.
    torch.manual_seed(0)
    for mine, theirs in zip(ours.parameters(), package.parameters(), strict=True):
        with torch.no_grad():
            mine.copy_(torch.randn_like(mine))
            theirs.copy_(mine)
    x = torch.rand(16, 72)
    torch.testing.assert_close(package(x), ours(x))
    # A hand check of the first unit, so that both being wrong the same way still fails.
    h1 = torch.relu(x @ ours.hidden1.weight.T + ours.hidden1.bias)
    h2 = torch.relu(h1 @ ours.hidden2.weight.T + ours.hidden2.bias)
    torch.testing.assert_close(ours(x), h2 @ ours.output.weight.T + ours.output.bias)


@pytest.mark.parametrize("wrong", [(72, 20, 10), (72, 20, 20, 10)])
def test_a_package_copy_with_other_layers_would_be_told_apart(wrong):
    assert linear_shapes(MiniMLP(wrong)) != linear_shapes(notebook_mlp())
