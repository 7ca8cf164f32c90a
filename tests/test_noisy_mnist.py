"""Noisy MNIST: the .npy sets on disk, the dense networks, cross-validation, the notebook."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import torch

from digitlab import paths
from digitlab.data import noise
from digitlab.data.sources import load_mnist
from digitlab.data.splits import Splits
from digitlab.data.transforms import MNIST_MEAN, MNIST_STD
from digitlab.engine import History, predict_proba
from digitlab.engine import cv as engine_cv
from digitlab.errors import UserError
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


def notebook_networks() -> dict:
    """The networks the noisy_mnist notebook defines in its cells, by the keys of study.MODELS."""
    import jupytext

    namespace = {"nn": torch.nn}
    for cell in jupytext.read(paths.PROJECT_ROOT / "notebooks" / "noisy_mnist.py").cells:
        if cell.cell_type == "code" and cell.source.startswith("def ") \
                and "nn.Sequential(" in cell.source:
            exec(cell.source, namespace)
    return {key: namespace[key] for key in study.MODELS}


@pytest.mark.parametrize("key", list(study.MODELS))
def test_the_notebook_defines_the_networks_its_studies_train(key):
    # The notebook trains its own networks, in its cells and in its studies; the benchmark
    # trains the package's copies. Same weight shapes in the same order, and with the
    # notebook's weights copied in, the same outputs: the same layers doing the same thing.
    torch.manual_seed(0)
    ours, theirs = notebook_networks()[key]().eval(), study.MODELS[key].network.build().eval()
    mine, package = ours.state_dict(), theirs.state_dict()
    assert [tuple(v.shape) for v in mine.values()] == [tuple(v.shape) for v in package.values()]
    for module in ours.modules():  # batch-norm statistics other than the defaults
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    theirs.load_state_dict(dict(zip(package, ours.state_dict().values(), strict=True)))
    x = torch.randn(6, 1, 28, 28)
    torch.testing.assert_close(ours(x), theirs(x))
    assert [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)] == \
        [m.p for m in theirs.modules() if isinstance(m, torch.nn.Dropout)]


def tiny_set(n=120, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Separable toy digits: class k lights up row band k."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n // 10)
    images = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 3: 2 * k + 5, 4:24] = 255
    return images, labels


def indexed_images(n: int) -> np.ndarray:
    """Blank images whose first two pixels spell their own row number."""
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return images


def row_numbers(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0].astype(int) + 256 * images[:, 0, 1].astype(int)


def rows_of(x: torch.Tensor) -> np.ndarray:
    """Undo the normalisation of the first two pixels of flattened inputs: the row numbers."""
    pixels = torch.round((x[:, :2] * MNIST_STD + MNIST_MEAN) * 255).long().numpy()
    return pixels[:, 0] + 256 * pixels[:, 1]


def test_cross_validation_is_stratified_leak_free_and_summarised(monkeypatch):
    # Imbalanced classes (60, 30, 15, 15 rows): a stratified 5-fold split holds out exactly
    # 12, 6, 3 and 3 of them in every fold; an unstratified one does not on these labels.
    labels = np.repeat([0, 1, 2, 3], [60, 30, 15, 15])
    images = indexed_images(len(labels))
    wrong = np.arange(len(labels)) % 7 == 0  # rows the stand-in model gets wrong
    fits = []

    def fake_train(network, recipe, train_data, val, **kwargs):
        fits.append((rows_of(train_data[0]), rows_of(val[0])))
        np.testing.assert_array_equal(train_data[1].numpy(), labels[rows_of(train_data[0])])
        np.testing.assert_array_equal(val[1].numpy(), labels[rows_of(val[0])])
        return torch.nn.Identity(), History()

    def fake_logits(model, x):
        rows = rows_of(x)
        predicted = np.where(wrong[rows], (labels[rows] + 1) % 4, labels[rows])
        return torch.nn.functional.one_hot(torch.as_tensor(predicted), 10).float()

    monkeypatch.setattr(engine_cv, "train", fake_train)
    monkeypatch.setattr(engine_cv, "predict_logits", fake_logits)
    cv = study.cross_validate(study.MODELS["dnn"], images, labels, folds=5, seed=0,
                              progress=False)
    everything = set(range(len(labels)))
    held_out, expected = [], []
    for train_rows, val_rows in fits:
        assert not set(train_rows) & set(val_rows)
        held = np.array(sorted(everything - set(train_rows) - set(val_rows)))
        held_out.append(held)
        assert np.bincount(labels[held], minlength=4).tolist() == [12, 6, 3, 3]
        expected.append(1 - wrong[held].mean())
    assert len(fits) == 5
    assert sorted(np.concatenate(held_out).tolist()) == sorted(everything)  # each row once
    assert [f.n_test for f in cv.folds] == [24] * 5
    assert cv.fold_accuracy == pytest.approx(expected, abs=1e-6)
    assert cv.mean == pytest.approx(np.mean(expected), abs=1e-6)
    assert cv.std == pytest.approx(np.std(expected), abs=1e-6)
    assert cv.accuracy == pytest.approx(1 - wrong.mean(), abs=1e-6)  # pooled out of fold
    first = [tuple(h) for h in held_out]
    fits.clear()
    study.cross_validate(study.MODELS["dnn"], images, labels, folds=5, seed=0, progress=False)
    assert [tuple(np.array(sorted(everything - set(t) - set(v)))) for t, v in fits] == first


def test_cross_validation_trains_every_fold_and_repeats_with_its_seed():
    images, labels = tiny_set()
    config = study.MODELS["dnn"].replace(epochs=3)
    cv = study.cross_validate(config, images, labels, folds=5, seed=0, progress=False)
    assert all(len(f.history["val_acc"]) == 3 for f in cv.folds)
    assert cv.mean > 0.8  # the toy classes are easy: the folds really train
    again = study.cross_validate(config, images, labels, folds=5, seed=0, progress=False)
    assert again.fold_accuracy == cv.fold_accuracy


class Constant(torch.nn.Module):
    """A stand-in network that always answers ``digit``."""

    def __init__(self, digit: int):
        super().__init__()
        self.digit = digit

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, self.digit] = 1.0
        return logits


def test_robustness_matrix_reuses_trained_models_and_scores_every_pair(monkeypatch):
    # The clean model (supplied) always says 3; the model trained on "dark" always says 7.
    # Each cell is then the share of 3s or 7s in that column's test labels.
    blank = np.zeros((1, 28, 28), np.uint8)
    clean_test, dark_test = np.array([3, 3, 3, 7]), np.array([3, 7, 7, 7, 7])
    clean = Splits(blank, [3], blank, [3], np.repeat(blank, 4, 0), clean_test, "toy", "toy")
    dark = Splits(blank + 1, [7], blank, [7], np.repeat(blank, 5, 0), dark_test, "toy",
                  "toy, dark", noise="dark")
    config = study.MODELS["dnn"]
    trained_on = []

    def fake_train(config, train_x, train_y, *args, **kwargs):
        trained_on.append(int(train_x.max()))
        return study.Trained(config, Constant(7), None)

    monkeypatch.setattr(study, "train", fake_train)
    out = study.robustness_matrix(config, {"clean": clean, "dark": dark},
                                  trained={"clean": study.Trained(config, Constant(3), None)},
                                  progress=False)
    assert trained_on == [1]  # only the dark set was trained on; the clean model was reused
    assert out["train_sets"] == ["clean", "dark"] and out["test_sets"] == ["clean", "dark"]
    np.testing.assert_allclose(out["accuracy"], [[3 / 4, 1 / 5], [1 / 4, 4 / 5]], atol=1e-12)


@pytest.mark.slow
def test_notebook_numbers_agree_with_each_other_where_they_must(project_root):
    from digitlab.pipeline.notebooks import execute_notebook

    make_sets()
    executed = execute_notebook("noisy_mnist", {"quick": True}, output_dir=project_root / "nb",
                                progress=False)
    assert executed.exists()
    metrics = json.loads((project_root / "results/noisy_mnist/metrics.json").read_text())
    m = metrics["metrics"]
    assert metrics["run"]["config"]["quick"] is True and m["noise"] == "awgn"
    # Every model is scored on the same 60 awgn test digits: same row sums, and each
    # accuracy is its confusion matrix's trace over 60.
    matrices = {k: np.array(v) for k, v in m["confusion_matrix"].items()}
    assert set(matrices) == set(m["test_accuracy"]) == {"dnn", "dnn_improved", "cnn",
                                                         "cnn_improved"}
    rows = {tuple(c.sum(axis=1)) for c in matrices.values()}
    assert len(rows) == 1 and sum(rows.pop()) == 60
    for key, confusion in matrices.items():
        assert m["test_accuracy"][key] == pytest.approx(np.trace(confusion) / 60), key
        history = m["history"][key]
        # The kept weights are those of the lowest validation loss, recomputed here.
        kept = int(np.argmin(history["val_loss"]))
        assert history["best_epoch"] == kept + 1, key
        assert m["val_accuracy"][key] == history["val_acc"][kept], key
    # Robustness: the CNN trained on awgn is the one scored above, reused; rows are training
    # sets and columns test sets, in the order SETS names them.
    robust = m["robustness"]
    matrix = np.array(robust["accuracy"])
    assert robust["model"] == "cnn" and robust["train_sets"] == list(SETS)
    awgn = list(SETS).index("awgn")
    assert matrix[awgn, awgn] == pytest.approx(m["test_accuracy"]["cnn"])
    off_diagonal = matrix[~np.eye(len(SETS), dtype=bool)]
    assert robust["diagonal_mean"] == pytest.approx(np.diag(matrix).mean())
    assert robust["off_diagonal_mean"] == pytest.approx(off_diagonal.mean())
    # Cross-validation pools the 200 training and 60 validation digits into 5 folds.
    cv = m["cross_validation"]
    assert [f["n_test"] for f in cv["folds"]] == [52] * 5
    assert cv["fold_accuracy"] == [f["accuracy"] for f in cv["folds"]]
    assert cv["mean"] == pytest.approx(np.mean(cv["fold_accuracy"]))
    assert cv["std"] == pytest.approx(np.std(cv["fold_accuracy"]))
    for name in ("robustness.png", "cv_curves.png", "confusion_cnn.png", "curves_dnn.png"):
        assert (project_root / "results/noisy_mnist" / name).exists()
    # A second run reads the stored folds and robustness runs back and gives the same numbers.
    again = execute_notebook("noisy_mnist", {"quick": True}, output_dir=project_root / "nb",
                             progress=False)
    printed = "".join(out.get("text", "") for cell in nbformat.read(again, as_version=4).cells
                      if cell.cell_type == "code" for out in cell.get("outputs", []))
    assert "reused 5 of 5 stored runs" in printed
    second = json.loads((project_root / "results/noisy_mnist/metrics.json").read_text())
    assert second["metrics"]["cross_validation"] == cv
    assert second["metrics"]["robustness"] == robust


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
