"""The Mini MNIST generator and its CSV files: determinism, shape, balance, validation."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.errors import UserError
from digitlab.minimnist import dataset


@pytest.fixture(scope="module")
def small():
    return dataset.generate(n_per_class=12, seed=3)


def test_same_seed_gives_byte_identical_csv_and_other_seed_differs(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        dataset.write_csv(tmp_path / f"{name}.csv", *dataset.generate(10, seed=seed))
    a, b, c = ((tmp_path / f"{n}.csv").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_shape_range_dtype_and_balanced_labels(small):
    images, labels = small
    assert images.shape == (120, 9, 8) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.array_equal(np.bincount(labels), [12] * 10)
    assert images.max() > 200  # strokes reach near-full ink
    assert np.median(images) < 40  # most pixels are background


def test_rows_are_shuffled_not_grouped_by_digit(small):
    _, labels = small
    assert not np.array_equal(labels, np.sort(labels))


def test_digits_differ_from_each_other_more_than_within_a_class():
    images, labels = dataset.generate(30, seed=0, knobs=dataset.difficulty("easy"))
    x = dataset.scale(images).reshape(len(images), -1)
    means = np.stack([x[labels == d].mean(0) for d in range(10)])
    nearest = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(2), axis=1)
    # On easy data a nearest-class-mean rule is almost always right.
    assert (nearest == labels).mean() > 0.9


def test_harder_presets_vary_more():
    spread = {}
    for name in ("easy", "hard"):
        images, labels = dataset.generate(30, seed=1, knobs=dataset.difficulty(name))
        x = dataset.scale(images).reshape(len(images), -1)
        spread[name] = np.mean([x[labels == d].std(0).mean() for d in range(10)])
    assert spread["hard"] > spread["easy"]


def test_explicit_knobs_override_the_preset():
    knobs = dataset.difficulty("easy", noise=0.0, rotation=None)
    assert knobs.noise == 0.0 and knobs.rotation == dataset.PRESETS["easy"].rotation
    with pytest.raises(ValueError, match="unknown difficulty"):
        dataset.difficulty("impossible")


def test_random_mode_is_uniform_noise_with_balanced_labels():
    images, labels = dataset.generate(50, seed=0, mode="random")
    assert np.array_equal(np.bincount(labels), [50] * 10)
    assert abs(images.mean() - 127.5) < 3
    assert images.min() == 0 and images.max() == 255


def test_scale_maps_0_255_to_unit_interval():
    x = dataset.scale(np.array([0, 51, 255], dtype=np.uint8))
    assert x.dtype == np.float32 and np.allclose(x, [0.0, 0.2, 1.0])


def test_csv_round_trip(tmp_path, small):
    images, labels = small
    path = dataset.write_csv(tmp_path / "m.csv", images, labels)
    assert path.read_text().splitlines()[0] == ",".join(dataset.COLUMNS)
    back_images, back_labels = dataset.read_csv(path)
    assert np.array_equal(back_images, images) and np.array_equal(back_labels, labels)


def test_split_files_round_trip_and_mismatch_is_reported(tmp_path, small):
    images, labels = small
    dataset.write_split(tmp_path, (images[:100], labels[:100]), (images[100:], labels[100:]))
    split = dataset.read_split(tmp_path)
    assert np.array_equal(split["x_test"], images[100:])
    assert np.array_equal(split["y_train"], labels[:100])
    (tmp_path / "y_test.csv").write_text("label\n1\n2\n")
    with pytest.raises(UserError, match="X_test.csv has 20 rows but .*y_test.csv has 2"):
        dataset.read_split(tmp_path)
