"""Noisy MNIST from a folder of your own four .npy files: every accepted form, every bad one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.errors import UserError
from digitlab.noisy.npy_folder import load_npy_folder, study_sets

N_TRAIN, N_TEST = 240, 50


def reference_digits(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose first two pixels spell their row number, and balanced labels."""
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    rows = np.arange(n) + offset
    images[:, 0, 0], images[:, 0, 1] = rows % 256, rows // 256
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    return images, labels.astype(np.int64)


def row_numbers(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0].astype(int) + 256 * images[:, 0, 1].astype(int)


IMAGE_FORMS = {
    "uint8 (N, 28, 28)": lambda x: x,
    "uint8 (N, 784)": lambda x: x.reshape(len(x), -1),
    "float32 0-1 (N, 28, 28)": lambda x: (x / 255.0).astype(np.float32),
    "float64 0-1 (N, 784)": lambda x: (x / 255.0).reshape(len(x), -1),
}
LABEL_FORMS = {
    "int64 digits": lambda y: y,
    "uint8 digits": lambda y: y.astype(np.uint8),
    "one-hot float32 rows": lambda y: np.eye(10, dtype=np.float32)[y],
    "one-hot int rows": lambda y: np.eye(10, dtype=np.int64)[y],
}


def write_folder(folder, image_form=IMAGE_FORMS["uint8 (N, 28, 28)"],
                 label_form=LABEL_FORMS["int64 digits"]):
    folder.mkdir(exist_ok=True)
    train, test = reference_digits(N_TRAIN), reference_digits(N_TEST, offset=N_TRAIN)
    for split, (images, labels) in (("train", train), ("test", test)):
        np.save(folder / f"{split}_images.npy", image_form(images))
        np.save(folder / f"{split}_labels.npy", label_form(labels))
    return train, test


@pytest.mark.parametrize("label_form", LABEL_FORMS)
@pytest.mark.parametrize("image_form", IMAGE_FORMS)
def test_every_accepted_form_loads_as_the_same_digits(tmp_path, image_form, label_form):
    (train_x, train_y), (test_x, test_y) = write_folder(
        tmp_path / "mine", IMAGE_FORMS[image_form], LABEL_FORMS[label_form])
    noisy, summary = load_npy_folder(tmp_path / "mine", seed=3)
    assert noisy.noise == "mine" and noisy.train_images.dtype == np.uint8
    np.testing.assert_array_equal(noisy.test_images, test_x)
    np.testing.assert_array_equal(noisy.test_labels, test_y)
    # Train and validation split the training file: every row once, with its own label.
    rows = np.concatenate([row_numbers(noisy.train_images), row_numbers(noisy.val_images)])
    np.testing.assert_array_equal(np.sort(rows), np.arange(N_TRAIN))
    for images, labels in (noisy.split("train"), noisy.split("val")):
        np.testing.assert_array_equal(images, train_x[row_numbers(images)])
        np.testing.assert_array_equal(labels, train_y[row_numbers(images)])
    # 1/12 of 240 is 20 validation images: two of each of the ten balanced digits.
    assert summary["n_val"] == 20 and summary["n_train"] == 220
    np.testing.assert_array_equal(np.bincount(noisy.val_labels, minlength=10), [2] * 10)
    assert summary["source"] == "npy-folder" and str(tmp_path / "mine") in summary["folder"]


def test_the_validation_split_is_seeded(tmp_path):
    write_folder(tmp_path / "mine")
    first = load_npy_folder(tmp_path / "mine", seed=0)[0]
    again = load_npy_folder(tmp_path / "mine", seed=0)[0]
    other = load_npy_folder(tmp_path / "mine", seed=1)[0]
    np.testing.assert_array_equal(row_numbers(first.val_images), row_numbers(again.val_images))
    assert set(row_numbers(first.val_images)) != set(row_numbers(other.val_images))


def _images(form):
    images = reference_digits(N_TRAIN)[0]
    return {
        "float 0-255": images.astype(np.float32),
        "NaN pixel": np.where(images == images[0, 0, 0], np.nan, images / 255.0),
        "negative float": images / 255.0 - 0.5,
        "int64 pixels": images.astype(np.int64),
        "wrong grid": images[:, :, :27],
        "783 pixels": images.reshape(N_TRAIN, -1)[:, :783],
        "4-d": images[:, None],
        "empty": images[:0],
    }[form]


def _labels(form):
    labels = reference_digits(N_TRAIN)[1]
    one_hot = np.eye(10)[labels]
    return {
        "label 10": np.where(labels == 9, 10, labels),
        "label -1": np.where(labels == 0, -1, labels),
        "float digits": labels.astype(np.float64),
        "two ones in a row": np.where(np.arange(10) == 0, 1.0, one_hot),
        "NaN in one-hot": np.where(one_hot == 1, np.nan, one_hot),
        "nine columns": one_hot[:, :9],
        "one short": labels[:-1],
        "a column": labels[:, None],
    }[form]


BAD = [
    *[("train_images.npy", "images", form, pattern) for form, pattern in [
        ("float 0-255", r"float pixels from 0 to 255, outside \[0, 1\]; divide"),
        ("NaN pixel", "NaN"),
        ("negative float", r"outside \[0, 1\]"),
        ("int64 pixels", "int64 pixels, not uint8"),
        ("wrong grid", r"shape \(240, 28, 27\)"),
        ("783 pixels", r"shape \(240, 783\)"),
        ("4-d", r"shape \(240, 1, 28, 28\)"),
        ("empty", r"shape \(0, 28, 28\)"),
    ]],
    *[("train_labels.npy", "labels", form, pattern) for form, pattern in [
        ("label 10", "labels from 0 to 10, outside the digits 0-9"),
        ("label -1", "labels from -1 to 9"),
        ("float digits", "float64 labels, not integer digits"),
        ("two ones in a row", "not one-hot"),
        ("NaN in one-hot", "NaN"),
        ("nine columns", r"shape \(240, 9\)"),
        ("a column", r"shape \(240, 1\)"),
    ]],
    ("train_images.npy", "labels", "one short", "240 images but .*train_labels.npy holds 239"),
]


@pytest.mark.parametrize("name, kind, form, pattern", BAD,
                         ids=[f"{kind}: {form}" for _, kind, form, _ in BAD])
def test_a_bad_file_is_one_sentence_naming_it(tmp_path, name, kind, form, pattern):
    write_folder(tmp_path)
    array = _images(form) if kind == "images" else _labels(form)
    np.save(tmp_path / f"train_{kind}.npy", array)
    with pytest.raises(UserError, match=pattern) as caught:
        load_npy_folder(tmp_path)
    assert_one_sentence_naming(str(caught.value), tmp_path / name)


@pytest.mark.parametrize("problem, pattern", [
    ("missing", "test_labels.npy does not exist; a folder of your own needs"),
    ("pickled", "test_labels.npy holds a pickled object array"),
    ("not numpy", "test_labels.npy is not a readable .npy file"),
    ("npz", "test_labels.npy is an .npz archive"),
])
def test_a_missing_unreadable_or_pickled_file_is_refused(tmp_path, problem, pattern):
    write_folder(tmp_path)
    path = tmp_path / "test_labels.npy"
    if problem == "missing":
        path.unlink()
    elif problem == "pickled":  # an object array would need unpickling, which can run code
        np.save(path, np.array([3, "x", None] * 10, dtype=object), allow_pickle=True)
    elif problem == "not numpy":
        path.write_bytes(b"3,1,4,1,5\n")
    else:
        with path.open("wb") as handle:
            np.savez(handle, labels=np.zeros(N_TEST, np.int64))
    with pytest.raises(UserError, match=pattern) as caught:
        load_npy_folder(tmp_path)
    assert_one_sentence_naming(str(caught.value), path)


def assert_one_sentence_naming(message: str, path) -> None:
    assert str(path) in message
    assert "\n" not in message and message.endswith(".") and "Traceback" not in message


def test_too_few_training_digits_to_stratify_names_the_file(tmp_path):
    write_folder(tmp_path)
    np.save(tmp_path / "train_labels.npy", np.r_[np.zeros(N_TRAIN - 1, np.int64), 7])
    with pytest.raises(UserError, match="train_labels.npy has too few rows per digit"):
        load_npy_folder(tmp_path)


def test_study_sets_reads_a_folder_or_the_make_noisy_mnist_layout(tmp_path):
    write_folder(tmp_path / "mine")
    source, noise_settings, sets = study_sets(tmp_path / "mine")
    assert list(sets) == ["mine"] and noise_settings is None
    assert source["n_train"] + source["n_val"] == N_TRAIN
    # A folder with manifest.json is make_noisy_mnist.py's layout: its manifest decides.
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "manifest.json").write_text(json.dumps({"sets": ["clean"]}))
    with pytest.raises(UserError, match="not built by the last run"):
        study_sets(tmp_path / "built")


@pytest.mark.slow
def test_notebook_trains_and_tests_on_a_folder_of_own_files(project_root, capsys):
    from digitlab.data.sources import load_mnist
    from digitlab.pipeline.notebooks import execute_notebook

    splits = load_mnist("embedded")
    folder = project_root / "my_nmnist"
    folder.mkdir()
    # The n-MNIST form: flat float pixels in [0, 1] and one-hot labels.
    np.save(folder / "train_images.npy", splits.train_images.reshape(-1, 784) / 255.0)
    np.save(folder / "train_labels.npy", np.eye(10, dtype=np.float32)[splits.train_labels])
    np.save(folder / "test_images.npy", splits.test_images.reshape(-1, 784) / 255.0)
    np.save(folder / "test_labels.npy", np.eye(10, dtype=np.float32)[splits.test_labels])
    executed = execute_notebook("noisy_mnist", {"quick": True, "data_dir": str(folder)},
                                output_dir=project_root / "nb", progress=False)
    out = project_root / "results/noisy_mnist/npy_folders/my_nmnist"
    saved = json.loads((out / "metrics.json").read_text())
    m = saved["metrics"]
    assert set(m["test_accuracy"]) == {"dnn", "dnn_improved", "cnn", "cnn_improved"}
    assert m["set"] == "my_nmnist" and m["noise"] is None
    assert "skipped" in m["robustness"] and "accuracy" not in m["robustness"]
    assert saved["data"]["source"] == "npy-folder" and saved["run"]["config"]["data_dir"]
    assert not (out / "robustness.png").exists() and (out / "confusion_cnn.png").exists()
    # The canonical results file, which the README's table reads, is left alone.
    assert not (project_root / "results/noisy_mnist/metrics.json").exists()
    assert "Robustness matrix skipped" in executed.read_text()
