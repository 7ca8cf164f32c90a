"""The CNN family, transforms, checkpoints and the two CNN scripts on tiny data."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from digitlab.data.noise import corrupt
from digitlab.data.sources import load_mnist, write_mnist_folder
from digitlab.data.transforms import (
    BACKGROUND,
    MNIST_MEAN,
    MNIST_STD,
    FreshCorruption,
    RandomAffine,
    as_tensors,
    flatten_tensor,
    from_tensor,
    random_affine,
    to_tensor,
)
from digitlab.engine import NetworkSpec, count_parameters
from digitlab.engine.checkpoint import load_checkpoint, save_checkpoint
from digitlab.engine.recipe import batch_transform
from digitlab.errors import UserError
from digitlab.mnist.networks import ARCHITECTURES, build_cnn
from digitlab.mnist.recipes import BEST, REFERENCE
from digitlab.mnist.training import train_and_score
from digitlab.paths import PROJECT_ROOT

VARIANTS = [("cnn2", {}), ("cnn2", {"dropout": 0.5, "batchnorm": True}), ("cnn3", {}),
            ("cnn3", {"dropout": 0.25, "batchnorm": True}), ("reference", {}), ("best", {})]


def script_main(name: str):
    """The ``main`` of ``scripts/<name>.py`` (scripts are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def digits(n: int, seed: int = 0):
    """Tiny learnable 'digits': class k is a bright square in cell k of a 4x4 grid
    of 7-pixel cells (far enough apart that small shifts keep the class)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        row, col = 7 * (k // 4), 7 * (k % 4)
        images[i, row + 1:row + 6, col + 1:col + 6] = 255
    return images, labels


@pytest.mark.parametrize(("arch", "kwargs"), VARIANTS)
def test_every_network_maps_a_batch_to_ten_logits(arch, kwargs):
    model = build_cnn(arch, **kwargs)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    names = {type(m).__name__ for m in model.modules()}
    assert ("BatchNorm2d" in names) == (kwargs.get("batchnorm", False) or arch == "best")


def test_reference_network_matches_the_pytorch_example():
    # pytorch/examples mnist: conv(1,32,3), conv(32,64,3), fc(9216,128), fc(128,10)
    assert count_parameters(build_cnn("reference")) == (
        (9 * 32 + 32) + (9 * 32 * 64 + 64) + (9216 * 128 + 128) + (128 * 10 + 10))
    dropouts = [m.p for m in build_cnn("reference").modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.25, 0.5]
    assert set(ARCHITECTURES) >= {"cnn2", "cnn3", "reference", "best"}


def test_unknown_architecture_and_bad_options_are_user_errors():
    with pytest.raises(UserError, match="choose one of"):
        build_cnn("resnet")
    with pytest.raises(UserError, match="bad options"):
        build_cnn("reference", dropout=0.1)


def test_normalisation_matches_the_mnist_constants():
    images = np.array([[[0, 255]]], dtype=np.uint8).repeat(28, 1).repeat(14, 2)
    x = to_tensor(images)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == pytest.approx(-MNIST_MEAN / MNIST_STD)
    assert x.max().item() == pytest.approx((1 - MNIST_MEAN) / MNIST_STD)
    assert flatten_tensor(images).shape == (1, 784)
    assert np.array_equal(from_tensor(x), images)


def test_affine_augmentation_is_seeded_and_keeps_the_background():
    x = to_tensor(digits(8)[0])
    first = random_affine(x, torch.Generator().manual_seed(1), degrees=15, shear=5)
    again = random_affine(x, torch.Generator().manual_seed(1), degrees=15, shear=5)
    assert torch.equal(first, again) and not torch.allclose(first, x)
    blank = torch.full((2, 1, 28, 28), BACKGROUND)
    assert torch.allclose(random_affine(blank, torch.Generator()), blank, atol=1e-5)
    identity = random_affine(x, torch.Generator(), degrees=0, translate=0, scale=(1, 1))
    assert torch.allclose(identity, x, atol=1e-4)


def test_fresh_corruption_draws_new_seeded_noise_after_the_augmentation():
    x = to_tensor(digits(8)[0])
    generator = torch.Generator().manual_seed(1)
    first, second = FreshCorruption("awgn")(x, generator), FreshCorruption("awgn")(x, generator)
    assert not torch.equal(first, second)  # every batch gets its own noise
    assert torch.equal(first, FreshCorruption("awgn")(x, torch.Generator().manual_seed(1)))
    assert first.shape == x.shape and first.dtype == x.dtype

    def erase(batch, generator):
        return torch.full_like(batch, BACKGROUND)

    # Augmenting first: the erased digits come back as noise on black, about half of the
    # pixels lit (clipping removes the negative half), not as a blank image.
    lit = (from_tensor(FreshCorruption("awgn", erase)(x, generator)) > 0).mean()
    assert 0.4 < lit < 0.55
    # Deterministic corruptions give exactly the saved sets' images.
    blurred = FreshCorruption("motion-blur")(x, generator)
    assert np.array_equal(from_tensor(blurred), corrupt(from_tensor(x), "motion-blur", 0))
    with pytest.raises(UserError, match="unknown noise type"):
        FreshCorruption("snow")


def test_a_fresh_noise_recipe_corrupts_every_training_batch_after_the_affine():
    transform = batch_transform(BEST.replace(fresh_noise="awgn"))
    assert isinstance(transform, FreshCorruption) and transform.kind == "awgn"
    assert isinstance(transform.augment, RandomAffine)
    assert transform.augment.params == RandomAffine(**BEST.augment_params).params
    assert batch_transform(REFERENCE) is None
    splits = load_mnist("embedded").head(40, 20, 20)
    with pytest.raises(UserError, match="needs the clean digits"):
        train_and_score(NetworkSpec("cnn2"), BEST.replace(fresh_noise="awgn", epochs=1), splits,
                        progress=False)


@pytest.mark.parametrize("arch", ["cnn2", "best"])
def test_one_batch_can_be_overfitted(arch):
    torch.manual_seed(0)
    x, y = as_tensors(*digits(20, seed=1))
    x += torch.randn_like(x)  # noise: the labels can only be memorised
    model = build_cnn(arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.05 and (model(x).argmax(1) == y).all()


def test_checkpoint_round_trip_gives_the_same_predictions(tmp_path):
    model = build_cnn("cnn2", dropout=0.3, batchnorm=True)
    model(torch.randn(16, 1, 28, 28))  # move the batch-norm running statistics
    model.eval()
    network = NetworkSpec("cnn2", {"dropout": 0.3, "batchnorm": True})
    path = save_checkpoint(tmp_path / "m.pt", model, network,
                           data={"source": "embedded"}, metrics={"test_accuracy": 0.5})
    loaded, info = load_checkpoint(path)
    x = torch.randn(5, 1, 28, 28)
    assert not loaded.training and torch.equal(loaded(x), model(x))
    assert info["arch"] == "cnn2" and info["data"] == {"source": "embedded"}
    assert info["metrics"] == {"test_accuracy": 0.5}


def test_missing_or_corrupt_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="bad.pt is not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="foreign.pt is a PyTorch file but not a digitlab"):
        load_checkpoint(tmp_path / "foreign.pt")
    model = build_cnn("cnn2")
    save_checkpoint(tmp_path / "wrong.pt", model, NetworkSpec("cnn3"), data={}, metrics={})
    with pytest.raises(UserError, match="wrong.pt does not fit the network it names .cnn3"):
        load_checkpoint(tmp_path / "wrong.pt")


@pytest.fixture
def tiny_mnist(project_root):
    """A local MNIST-format folder of learnable digits, as IDX files."""
    return write_mnist_folder(project_root / "data" / "raw" / "mnist", digits(240, 5),
                              digits(60, 6))


def test_train_then_evaluate_scripts_on_idx_files(project_root, tiny_mnist, capsys):
    train_main, evaluate_main = script_main("train_cnn"), script_main("evaluate_model")
    train_main(["--arch", "cnn2", "--epochs", "3", "--batch-size", "20", "--lr", "0.01",
                "--no-progress",
                "--threads", "1"])
    checkpoint = project_root / "models" / "mnist_cnn.pt"
    metrics = json.loads((project_root / "results/mnist/mnist_cnn/metrics.json").read_text())
    assert metrics["data"]["source"] == "local" and metrics["data"]["n_test"] == 60
    assert metrics["metrics"]["test_accuracy"] > 0.8
    assert (project_root / "results/mnist/mnist_cnn/training_curves.png").stat().st_size > 0
    # The default folds the validation digits into training and then reports no validation score.
    data = metrics["data"]
    assert metrics["metrics"]["n_train"] == data["n_train"] + data["n_val"]
    assert metrics["metrics"]["val_accuracy"] is None

    evaluate_main(["--checkpoint", str(checkpoint),
                   "--images", str(tiny_mnist / "t10k-images-idx3-ubyte.gz"),
                   "--labels", str(tiny_mnist / "t10k-labels-idx1-ubyte.gz")])
    out = project_root / "results/mnist/evaluation/mnist_cnn__t10k-images"
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["accuracy"] == pytest.approx(metrics["metrics"]["test_accuracy"])
    assert np.array(report["metrics"]["confusion_matrix"]).sum() == 60
    assert (out / "confusion_matrix.png").exists()
    assert "precision" in capsys.readouterr().out

    evaluate_main(["--checkpoint", str(checkpoint), "--noise", "awgn", "--seed", "1"])
    noisy = json.loads((project_root / "results/mnist/evaluation/mnist_cnn__test-local_awgn"
                        / "metrics.json").read_text())
    assert noisy["test_set"]["noise"] == "awgn" and noisy["metrics"]["n"] == 60

    train_main(["--arch", "cnn2", "--epochs", "1", "--no-train-on-val", "--name", "held_out",
                "--no-progress", "--threads", "1"])
    held = json.loads((project_root / "results/mnist/held_out/metrics.json").read_text())
    assert held["metrics"]["n_train"] == held["data"]["n_train"]
    assert 0 <= held["metrics"]["val_accuracy"] <= 1


def test_noisy_training_scores_the_same_fixed_noisy_test_digits_as_evaluate(
        project_root, tiny_mnist):
    train_main, evaluate_main = script_main("train_cnn"), script_main("evaluate_model")
    for fresh in ("--fresh-noise", "--no-fresh-noise"):
        name = f"noisy{fresh}"
        train_main(["--arch", "cnn2", "--epochs", "4", "--batch-size", "20", "--lr", "0.01",
                    "--noise", "awgn", "--seed", "2", fresh, "--name", name, "--no-progress",
                    "--threads", "1"])
        trained = json.loads((project_root / f"results/mnist/{name}/metrics.json").read_text())
        assert trained["data"]["noise"] == "awgn"
        assert trained["run"]["config"]["fresh_noise"] == ("awgn" if fresh == "--fresh-noise"
                                                           else None)
        assert trained["metrics"]["test_accuracy"] > 0.8
        evaluate_main(["--checkpoint", str(project_root / "models" / f"{name}.pt"),
                       "--noise", "awgn", "--seed", "2", "--output-dir", str(project_root / name)])
        scored = json.loads((project_root / name / "metrics.json").read_text())
        assert scored["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["test_accuracy"])


def test_evaluate_script_errors_are_one_sentence(project_root, tiny_mnist, capsys):
    evaluate_main = script_main("evaluate_model")
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--checkpoint", str(project_root / "models" / "missing.pt")])
    assert exit_info.value.code == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_main(["--images", str(tiny_mnist / "t10k-images-idx3-ubyte.gz")])
    assert "pass both --images and --labels" in capsys.readouterr().err
