"""The Mini MNIST track end to end: every script's main() in order, then the notebook."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from test_minimnist_bad_input import load_script

from digitlab.minimnist import dataset
from digitlab.pipeline.notebooks import execute_notebook

FIGURES = ("samples.png", "class_means.png", "intensity_histogram.png", "pca_scatter.png",
           "kmeans_centroids.png", "contingency.png", "split_counts.png")


def metrics_of(path):
    return json.loads(path.read_text())["metrics"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run the scripts in the order of `make minimnist` on 200 images, once per module,
    in a temporary project root (as the `project_root` fixture does)."""
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITLAB_ROOT", str(root))
        load_script("generate_data").main(["--n-per-class", "20", "--seed", "1"])
        load_script("preprocess").main([])
        load_script("clustering").main(["--n-init", "3"])
        load_script("evaluate").main([])
        load_script("split_data").main(["--seed", "1"])
        yield root


def test_scripts_write_their_figures_metrics_and_files(pipeline):
    results = pipeline / "results" / "mini_mnist"
    for name in FIGURES:
        assert (results / name).stat().st_size > 1000, name
    images, labels = dataset.read_csv(pipeline / "data" / "mini_mnist.csv")
    assert images.shape == (200, 9, 8)
    assert metrics_of(results / "preprocess_metrics.json")["scaling"] == dataset.SCALING

    clusters = np.loadtxt(results / "kmeans_assignments.csv", delimiter=",", skiprows=1,
                          dtype=int)[:, 1]
    assert len(np.unique(clusters)) == 10
    scores = metrics_of(results / "evaluate_metrics.json")
    assert scores["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    assert scores["nmi_averaging"] == "arithmetic"
    assert 0 < scores["ari"] < 1 and 0.1 < scores["cluster_accuracy"] <= 1
    assert sorted(scores["cluster_to_label"].values()) == list(range(10))
    assert len((results / "cluster_to_label.csv").read_text().splitlines()) == 11


def test_split_is_stratified_80_20_and_covers_every_row_once(pipeline):
    split = dataset.read_split(pipeline / "data")
    assert len(split["y_train"]) == 160 and len(split["y_test"]) == 40
    assert np.array_equal(np.bincount(split["y_test"]), [4] * 10)
    # Every (image, label) pair of the output is a pair of the input, each exactly once: a
    # split that shuffled images and labels separately would keep both sets but break pairs.
    images, labels = dataset.read_csv(pipeline / "data" / "mini_mnist.csv")
    pairs_in = np.column_stack([images.reshape(200, -1), labels])
    pairs_out = np.column_stack([
        np.concatenate([split["x_train"], split["x_test"]]).reshape(200, -1),
        np.concatenate([split["y_train"], split["y_test"]])])
    assert len(np.unique(pairs_in, axis=0)) == 200  # no duplicate rows to hide a mix-up
    np.testing.assert_array_equal(np.unique(pairs_out, axis=0), np.unique(pairs_in, axis=0))


def test_notebook_writes_a_ladder_whose_numbers_hold_together(pipeline):
    executed = execute_notebook("train_mini_mnist", {"quick": True},
                                output_dir=pipeline / "results" / "notebooks", progress=False)
    assert executed.exists()
    results = pipeline / "results" / "mini_mnist"
    ladder = metrics_of(results / "ladder.json")
    a = {k: ladder[f"{k}_accuracy"] for k in ("chance", "kmeans", "logistic", "mlp", "cnn")}
    # The test split holds 4 images of each digit: chance (always one digit) scores 1/10.
    y_test = dataset.read_split(pipeline / "data")["y_test"]
    assert np.bincount(y_test).tolist() == [4] * 10
    assert a["chance"] == pytest.approx(0.1)
    # On these separable digits the order of the classical rungs is not in doubt (seeded:
    # 0.1, then about one half, then about nine in ten), and even 8 epochs lift the MLP
    # above chance.
    assert a["chance"] < a["kmeans"] < a["logistic"]
    assert a["mlp"] > a["chance"]
    assert ladder["ordered"] == (a["chance"] < a["kmeans"] < a["logistic"] <= a["mlp"]
                                 <= a["cnn"])
    # The MLP's own report: rows of its confusion matrix are the true test digits, and it
    # scores what the ladder says (the ladder reuses the notebook's MLP).
    confusion = np.array(ladder["mlp"]["confusion_matrix"])
    assert confusion.sum(axis=1).tolist() == [4] * 10
    assert a["mlp"] == pytest.approx(np.trace(confusion) / 40)
    assert ladder["epochs_trained"]["mlp"] == len(ladder["mlp_history"]["train_loss"]) == 8
    for name in ("ladder.png", "mlp_learning_curves.png", "mlp_confusion_matrix.png",
                 "mlp_test_examples.png"):
        assert (results / name).exists(), name
    outputs = json.loads(executed.read_text())["cells"][-1]["outputs"]
    assert "MLP reaches" in "".join("".join(o.get("text", "")) for o in outputs)
