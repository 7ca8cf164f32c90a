"""scripts/evaluate_model.py on IDX files it cannot score: one sentence, exit status 2."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from digitlab.data.idx import write_idx
from digitlab.engine import NetworkSpec
from digitlab.engine.checkpoint import save_checkpoint
from digitlab.errors import UserError
from digitlab.mnist.evaluation import check_test_set
from digitlab.mnist.networks import build_cnn
from digitlab.paths import PROJECT_ROOT


def evaluate_main():
    spec = importlib.util.spec_from_file_location(
        "evaluate_model", PROJECT_ROOT / "scripts" / "evaluate_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def checkpoint(project_root):
    return save_checkpoint(project_root / "models" / "cnn.pt", build_cnn("cnn2"),
                           NetworkSpec("cnn2"), data={"source": "embedded"}, metrics={})


def run(checkpoint, images, labels, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main()(["--checkpoint", str(checkpoint), "--images", str(images),
                         "--labels", str(labels)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_a_label_outside_0_9_is_refused_naming_the_file(project_root, checkpoint, capsys):
    images = write_idx(project_root / "x-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    labels = write_idx(project_root / "y-idx1-ubyte", np.array([1, 2, 11, 3], np.uint8))
    err = run(checkpoint, images, labels, capsys)
    assert f"{labels} holds label 11 at item 2" in err and "0-9" in err
    assert not (project_root / "results" / "mnist").exists()


def test_images_that_are_not_28x28_are_refused(project_root, checkpoint, capsys):
    images = write_idx(project_root / "x-idx3-ubyte", np.zeros((4, 20, 20), np.uint8))
    labels = write_idx(project_root / "y-idx1-ubyte", np.array([1, 2, 3, 4], np.uint8))
    err = run(checkpoint, images, labels, capsys)
    assert "20x20 pixels" in err and "28x28" in err
    assert not (project_root / "results" / "mnist").exists()


def test_labels_beyond_the_classes_of_the_network_are_refused():
    five_classes = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 5))
    images = np.zeros((3, 28, 28), np.uint8)
    check_test_set(images, np.array([0, 4, 1]), five_classes, "t.idx")  # all known: fine
    with pytest.raises(UserError, match="labels of t.idx include 7, but the checkpoint knows "
                                        "only classes 0 to 4"):
        check_test_set(images, np.array([0, 7, 1]), five_classes, "t.idx")
