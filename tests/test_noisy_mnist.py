"""Noisy MNIST: the .npy sets on disk, the dense networks, cross-validation, the notebook."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digitlab import paths
from digitlab.cli import UserError
from digitlab.data import noise
from digitlab.data.sources import load_mnist
from digitlab.data.splits import Splits
from digitlab.engine import predict_proba
from digitlab.noisy import study
from digitlab.noisy.dense import build_dense
from digitlab.noisy.sets import SETS, corrupt_splits, load_manifest, load_set

SCRIPT = paths.PROJECT_ROOT / "scripts" / "make_noisy_mnist.py"


def make_sets(*extra):
    from importlib import util

    spec = util.spec_from_file_location("make_noisy_mnist", SCRIPT)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--source", "embedded", *extra])


def test_npy_round_trip_matches_the_corruption_of_the_source(project_root):
    make_sets("--noise", "awgn", "--seed", "1")
    folder = project_root / "data" / "noisy_mnist"
    assert sorted(p.name for p in (folder / "awgn").iterdir()) == sorted(
        f"{s}_{p}.npy" for s in ("train", "val", "test") for p in ("images", "labels"))
    source = load_mnist("embedded", seed=1)
    saved, clean = load_set("awgn"), load_set("clean")
    for split, index in (("train", 0), ("val", 1), ("test", 2)):
        images, labels = saved.split(split)
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        np.testing.assert_array_equal(labels, getattr(source, f"{split}_labels"))
        expected = noise.corrupt(getattr(source, f"{split}_images"), "awgn", (1, index))
        np.testing.assert_array_equal(images, expected)
        np.testing.assert_array_equal(clean.split(split)[0], getattr(source, f"{split}_images"))
    # train_cnn.py / evaluate_model.py --noise see exactly the saved test digits.
    via_scripts = corrupt_splits(load_mnist("embedded", seed=1), "awgn", 1)
    np.testing.assert_array_equal(via_scripts.test_images, saved.test_images)
    assert load_manifest()["source"]["source"] == "embedded"
    metrics = json.loads((project_root / "results/noisy_mnist/data_metrics.json").read_text())
    snr = metrics["metrics"]["measured_snr"]["awgn"]["test"]["snr_db"]
    assert snr > noise.AWGN_SNR_DB  # clipping only removes noise
    assert metrics["data"]["n_test"] == len(saved.test_labels)
    assert (project_root / "results/noisy_mnist/samples_awgn.png").stat().st_size > 0


def test_missing_or_broken_set_names_the_command_that_makes_it(project_root):
    with pytest.raises(UserError, match="make_noisy_mnist.py"):
        load_set("awgn")
    folder = project_root / "data" / "noisy_mnist" / "awgn"
    folder.mkdir(parents=True)
    for split in ("train", "val", "test"):
        np.save(folder / f"{split}_images.npy", np.zeros((3, 28, 28), np.uint8))
        np.save(folder / f"{split}_labels.npy", np.zeros(3, np.int64))
    assert len(load_set("awgn").train_labels) == 3
    (folder / "test_labels.npy").write_bytes(b"not a numpy file")
    with pytest.raises(UserError, match="test_labels.npy.*make_noisy_mnist.py"):
        load_set("awgn")
    np.save(folder / "test_labels.npy", np.zeros(2, np.int64))
    with pytest.raises(UserError, match="one digit label per image"):
        load_set("awgn")


def test_script_rejects_a_bad_option_and_writes_nothing(project_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_sets("--noise", "snow")
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (project_root / "data" / "noisy_mnist").exists()


@pytest.mark.parametrize("arch", ["dnn", "dnn-bn"])
def test_dense_networks_map_784_pixels_to_ten_class_probabilities(arch):
    torch.manual_seed(0)
    model = build_dense(arch).eval()
    flat, grid = torch.randn(5, 784), None
    grid = flat.reshape(5, 1, 28, 28)
    assert model(flat).shape == (5, 10)
    torch.testing.assert_close(model(flat), model(grid))
    probs = predict_proba(model, flat)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    assert has_bn == (arch == "dnn-bn")
    with pytest.raises(UserError, match="unknown dense architecture"):
        build_dense("mlp")


def tiny_set(n=120, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Separable toy digits: class k lights up row band k."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n // 10)
    images = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 3: 2 * k + 5, 4:24] = 255
    return images, labels


def test_cross_validation_is_stratified_seeded_and_summarised():
    images, labels = tiny_set()
    config = study.MODELS["dnn"].replace(epochs=3)
    cv = study.cross_validate(config, images, labels, n_splits=5, seed=0, progress=False)
    assert [f["n_test"] for f in cv["folds"]] == [24] * 5
    assert sum(f["n_test"] for f in cv["folds"]) == len(labels)
    assert all(len(f["history"]["val_acc"]) == 3 for f in cv["folds"])
    assert cv["mean"] == pytest.approx(np.mean(cv["accuracies"]))
    assert cv["std"] == pytest.approx(np.std(cv["accuracies"]))
    assert cv["mean"] > 0.8  # the toy classes are easy: the folds really train
    again = study.cross_validate(config, images, labels, n_splits=5, seed=0, progress=False)
    assert again["accuracies"] == cv["accuracies"]


def test_robustness_matrix_reuses_trained_models_and_scores_every_pair():
    images, labels = tiny_set()
    clean = Splits(images, labels, images[:20], labels[:20], images, labels, "toy", "toy")
    dark = Splits(images // 4, labels, images[:20] // 4, labels[:20], images // 4, labels,
                  "toy", "toy, darker", noise="dark")
    config = study.MODELS["dnn"].replace(epochs=3)
    model = study.train(config, images, labels, seed=0, progress=False)
    out = study.robustness_matrix(config, {"clean": clean, "dark": dark},
                                  trained={"clean": model}, progress=False)
    matrix = np.array(out["accuracy"])
    assert matrix.shape == (2, 2) and out["train_sets"] == ["clean", "dark"]
    assert matrix[0, 0] == pytest.approx(np.mean(study.predict(model, images) == labels))


@pytest.mark.slow
def test_notebook_runs_in_quick_mode(project_root):
    from digitlab.pipeline.notebooks import execute_notebook

    make_sets()
    executed = execute_notebook("noisy_mnist", {"quick": True}, output_dir=project_root / "nb",
                                progress=False)
    assert executed.exists()
    metrics = json.loads((project_root / "results/noisy_mnist/metrics.json").read_text())
    m = metrics["metrics"]
    assert set(m["test_accuracy"]) == {"dnn", "dnn_improved", "cnn", "cnn_improved"}
    assert len(m["cross_validation"]["folds"]) == 5
    assert np.array(m["robustness"]["accuracy"]).shape == (len(SETS), len(SETS))
    assert metrics["run"]["config"]["quick"] is True
    for name in ("robustness.png", "cv_curves.png", "confusion_cnn.png", "curves_dnn.png"):
        assert (project_root / "results/noisy_mnist" / name).exists()


def test_a_damaged_manifest_names_the_command_that_recreates_it(tmp_path):
    (tmp_path / "manifest.json").write_text('{"sets": [')
    with pytest.raises(UserError, match="manifest.json is not a readable manifest.*make noisy"):
        load_manifest(tmp_path)


def test_sets_the_last_build_did_not_write_are_refused_not_mixed_in(project_root):
    from digitlab.noisy.sets import load_sets

    make_sets("--noise", "awgn", "--seed", "1")
    manifest, sets = load_sets(("clean", "awgn"))
    assert manifest["seed"] == 1 and sets["awgn"].noise == "awgn"
    with pytest.raises(UserError, match="motion-blur.*not built by the last run.*--noise all"):
        load_sets(("clean", "awgn", "motion-blur"))
