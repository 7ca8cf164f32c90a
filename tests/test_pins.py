"""Values pinned against references written out by hand: the published MNIST checksums
and mirrors, the parameter count of each architecture the project ships from its documented
layers, and the results table's "over seeds" cell."""

from __future__ import annotations

import json

import pytest
from torch import nn

import digitlab.architectures  # noqa: F401  (every track registers its networks)
from digitlab.data import sources
from digitlab.engine import NetworkSpec
from digitlab.engine.networks import architectures
from digitlab.pipeline.summary import ROWS, Row, render

# --- the MNIST download -------------------------------------------------------------------

# The md5 of the four official .gz files as published with the data set (the same
# values torchvision's MNIST.resources lists).
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def test_the_md5_table_is_the_published_one_for_the_four_standard_files():
    assert sources.MD5 == PUBLISHED_MD5
    assert sorted(sources.MD5) == sorted(f"{name}.gz" for name in sources.FILES.values())


def test_the_mirrors_are_tried_s3_first_then_google_then_the_original_site():
    assert tuple(sources.MIRRORS) == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )


def test_the_download_uses_the_published_table_and_mirrors_by_default(tmp_path, monkeypatch):
    asked = []

    def retrieve(url, name, expected_md5, dest, timeout, progress):
        asked.append((url, name, expected_md5))

    monkeypatch.setattr(sources, "_retrieve", retrieve)
    sources.download_mnist(tmp_path, progress=False)
    s3 = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert asked == [(s3 + name, name, md5) for name, md5 in PUBLISHED_MD5.items()]


# --- parameter counts by name -------------------------------------------------------------

def conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return c_out * c_in * k * k + (c_out if bias else 0)


def linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_out * n_in + (n_out if bias else 0)


def batchnorm(channels: int) -> int:
    return 2 * channels  # weight and bias; the running statistics are buffers


def best_count(w: int) -> int:
    """best_single: conv-BN stages w, w (pool), 2w, 2w (pool), 4w, average pool, linear."""
    stages = [(1, w), (w, w), (w, 2 * w), (2 * w, 2 * w), (2 * w, 4 * w)]
    return sum(conv(a, b, bias=False) + batchnorm(b) for a, b in stages) + linear(4 * w, 10)


# (architecture, options, hand-computed count). Mini MNIST images are 9 x 8 (72 pixels);
# MNIST ones 28 x 28, halved by each 2x2 pool (28 -> 14 -> 7 -> 3).
COUNTS = [
    ("mini-mlp", {}, linear(72, 20) + linear(20, 10) + linear(10, 10)),
    ("mini-cnn", {"channels": 4, "hidden": 8},
     conv(1, 4) + conv(4, 8) + linear(8 * 4 * 4, 8) + linear(8, 10)),
    ("cnn2", {}, conv(1, 32) + conv(32, 64) + linear(64 * 7 * 7, 10)),
    ("cnn2", {"channels": (4, 8), "batchnorm": True, "hidden": 16},
     conv(1, 4, bias=False) + batchnorm(4) + conv(4, 8, bias=False) + batchnorm(8)
     + linear(8 * 7 * 7, 16) + linear(16, 10)),
    ("cnn3", {}, conv(1, 32) + conv(32, 64) + conv(64, 128) + linear(128 * 3 * 3, 10)),
    ("reference", {},
     conv(1, 32) + conv(32, 64) + linear(64 * 12 * 12, 128) + linear(128, 10)),
    ("best", {"width": 4}, best_count(4)),
    ("best", {"width": 4, "members": 2}, 2 * best_count(4)),
    ("dnn", {"hidden": (16, 8)}, linear(784, 16) + linear(16, 8) + linear(8, 10)),
    ("dnn-bn", {"hidden": (16, 8)},
     linear(784, 16, bias=False) + batchnorm(16) + linear(16, 8, bias=False) + batchnorm(8)
     + linear(8, 10)),
]


def test_every_name_with_a_hand_count_is_registered():
    # A name added the README's way needs no count here; a known one renamed or gone does.
    assert {arch for arch, _, _ in COUNTS} <= set(architectures())


@pytest.mark.parametrize("arch, options, expected", COUNTS,
                         ids=[f"{a}-{'-'.join(map(str, o)) or 'default'}" for a, o, _ in COUNTS])
def test_each_name_builds_its_own_network(arch, options, expected):
    model = NetworkSpec(arch, options).build(seed=0)
    assert isinstance(model, nn.Module)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_the_hand_formulas_give_the_well_known_totals():
    # The classic PyTorch MNIST example has 1,199,882 parameters; the plain cnn2 50,186.
    assert conv(1, 32) + conv(32, 64) + linear(9216, 128) + linear(128, 10) == 1_199_882
    assert conv(1, 32) + conv(32, 64) + linear(3136, 10) == 50_186


# --- the results table's "over seeds" cell ------------------------------------------------

def headline(mean: float, std: float, minimum: float, maximum: float, n: int) -> dict:
    """A benchmark's number over seeds, as benchmarks write it."""
    return {"mean": mean, "std": std, "min": minimum, "max": maximum, "n_seeds": n,
            "per_seed": {}}


def test_an_over_seeds_cell_shows_mean_spread_minimum_and_seed_count(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "benchmark.json").write_text(json.dumps({"metrics": {
        "best": {"test_accuracy": headline(0.9913, 0.0009, 0.9900, 0.9924, 3)},
        "reference": {"test_accuracy": headline(0.9871, 0.0015, 0.9852, 0.9889, 5)},
    }}))
    rows = [row for row in ROWS if row.file == "mnist/benchmark.json" and row.fmt == "seeds"]
    assert {row.key for row in rows} >= {"metrics.best.test_accuracy",
                                         "metrics.reference.test_accuracy"}
    table = render(rows, tmp_path)
    assert "| 99.13% ± 0.09% (min 99.00%, 3 seeds) |" in table
    assert "| 98.71% ± 0.15% (min 98.52%, 5 seeds) |" in table
    own = render([Row("T", "over seeds", "mnist/benchmark.json",
                      "metrics.reference.test_accuracy", "seeds", "make t")], tmp_path)
    assert "| T | over seeds | 98.71% ± 0.15% (min 98.52%, 5 seeds) |" in own
