"""The pieces of the variants study and the CNN project that the notebooks rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from digitlab.mnist.networks import build_cnn
from digitlab.mnist.project import (
    choose,
    feature_maps,
    first_conv_filters,
    markdown_table,
    misclassified,
)
from digitlab.mnist.variants import VARIANTS, epochs_to_converge, variant_options
from digitlab.noisy.study import MODELS


def layers(model: nn.Module) -> list[str]:
    """The leaf modules in forward order, as short names (Dropout with its p)."""
    names = []
    for module in model.modules():
        if list(module.children()):
            continue
        name = type(module).__name__
        names.append(f"Dropout({module.p})" if isinstance(module, nn.Dropout) else name)
    return [name for name in names if name != "Identity"]


CONV = ["Conv2d", "ReLU", "MaxPool2d"]
CONV_BN = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_the_dropout_variant_is_the_journals_dropout_cnn():
    model = build_cnn("cnn2", **variant_options("dropout", channels=(8, 16)))
    assert layers(model) == [
        "Conv2d", "ReLU", "Dropout(0.3)", "MaxPool2d",
        "Conv2d", "ReLU", "Dropout(0.3)", "MaxPool2d",
        "Flatten", "Linear", "ReLU", "Dropout(0.3)", "Linear"]
    hidden, output = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (hidden.in_features, hidden.out_features) == (16 * 7 * 7, 128)
    assert (output.in_features, output.out_features) == (128, 10)
    both = build_cnn("cnn2", **variant_options("dropout + batch-norm"))
    assert layers(both)[:5] == ["Conv2d", "BatchNorm2d", "ReLU", "Dropout(0.3)", "MaxPool2d"]


def test_the_other_variants_have_no_dropout_and_share_the_hidden_layer():
    assert set(VARIANTS) == {"plain", "dropout", "batch-norm", "dropout + batch-norm"}
    head = ["Flatten", "Linear", "ReLU", "Linear"]
    assert layers(build_cnn("cnn2", **variant_options("plain"))) == CONV * 2 + head
    assert layers(build_cnn("cnn2", **variant_options("batch-norm"))) == CONV_BN * 2 + head


def test_cnn2_and_cnn3_without_the_new_options_keep_their_architecture():
    # What notebooks 02 and 05 and the noisy study build: no hidden layer, and dropout
    # (when asked for) only before the output layer, at the output layer's old index.
    plain = build_cnn("cnn2")
    assert layers(plain) == CONV * 2 + ["Flatten", "Linear"]
    assert sum(p.numel() for p in plain.parameters()) == (
        (9 + 1) * 32 + (32 * 9 + 1) * 64 + (64 * 7 * 7 + 1) * 10)
    assert "4.weight" in plain.state_dict()  # checkpoints saved with Dropout(0) there load
    improved = MODELS["cnn_improved"].network.build()
    assert layers(improved) == CONV_BN * 3 + ["Flatten", "Dropout(0.3)", "Linear"]
    assert layers(MODELS["cnn"].network.build()) == CONV * 2 + ["Flatten", "Linear"]
    assert layers(build_cnn("cnn3")) == CONV * 3 + ["Flatten", "Linear"]


def test_epochs_to_converge_is_the_first_epoch_within_half_a_point_of_the_best():
    assert epochs_to_converge([0.80, 0.951, 0.958, 0.960, 0.955]) == 3
    assert epochs_to_converge([0.80, 0.956, 0.940, 0.960]) == 2
    assert epochs_to_converge([0.90, 0.94, 0.96]) == 3
    assert epochs_to_converge([0.5]) == 1
    with pytest.raises(ValueError):
        epochs_to_converge([])


def test_choose_takes_the_best_validation_accuracy_and_breaks_ties_by_size():
    table = pd.DataFrame({"val_accuracy": [0.97, 0.98, 0.98], "parameters": [10, 300, 200]},
                         index=["a", "b", "c"])
    assert choose(table) == "c"


def test_misclassified_lists_the_most_confident_mistakes_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    assert misclassified(probs, labels).tolist() == [1, 2]
    assert misclassified(probs, labels, k=1).tolist() == [1]


def test_feature_maps_follow_the_forward_pass_and_leave_no_hooks():
    model = build_cnn("cnn2", channels=(4, 6))
    image = torch.randn(1, 28, 28)
    maps = feature_maps(model, image)
    assert [m.shape for m in maps.values()] == [(4, 28, 28), (6, 14, 14)]
    # ReLU outputs, recorded before the in-place ReLU of the next call could change them
    assert all((m >= 0).all() for m in maps.values())
    assert all(not module._forward_hooks for module in model.modules())
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv_filters(model).shape == (4, 3, 3)
    with torch.no_grad():
        expected = torch.relu(first(image.unsqueeze(0)))[0].numpy()
    np.testing.assert_allclose(maps["relu 1"], expected, rtol=1e-5, atol=1e-6)


def test_markdown_table_formats_floats_and_keeps_the_index():
    table = pd.DataFrame({"acc": [0.5, 0.25], "n": [1, 2]}, index=pd.Index(["x", "y"], name="run"))
    assert markdown_table(table).splitlines() == [
        "| run | acc | n |", "| --- | --- | --- |", "| x | 0.5000 | 1 |", "| y | 0.2500 | 2 |"]
