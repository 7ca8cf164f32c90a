"""The web app's benchmarks in quick mode: their output keys and their target logic."""

from __future__ import annotations

import importlib.util
import json

import pytest

from digitlab import paths
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import to_tensor
from digitlab.engine import predict_proba
from digitlab.engine.checkpoint import load_checkpoint
from digitlab.generator import pca_kde as gen


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, paths.PROJECT_ROOT / "benchmarks"
                                                  / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def classify_api():
    return load_benchmark("classify_api")


@pytest.fixture(scope="module")
def app_load():
    return load_benchmark("app_load")


def test_accuracy_gap_counts_points_digits_and_disagreements(classify_api):
    labels = [0, 1, 2, 3, 4, 5, 6, 7]
    direct = [0, 1, 2, 3, 4, 5, 6, 0]   # 7 of 8 right
    api = [0, 1, 2, 3, 4, 9, 6, 1]      # 6 of 8 right; 2 read differently
    gap = classify_api.accuracy_gap(labels, direct, api)
    assert gap == {"direct_accuracy": 0.875, "api_accuracy": 0.75, "gap_points": -12.5,
                   "gap_digits": -1, "disagreements": 2}
    assert classify_api.within_tolerance(-1.0) and classify_api.within_tolerance(0.5)
    assert not classify_api.within_tolerance(-1.1) and not classify_api.within_tolerance(2.0)


def test_classify_api_quick_writes_its_own_file(classify_api, classifier_checkpoint,
                                                project_root, capsys):
    classify_api.main(["--quick", "--checkpoint", str(classifier_checkpoint)])
    folder = project_root / "results" / "web"
    assert not (folder / "classify_api.json").exists()  # a non-default run writes beside it
    [written] = folder.glob("classify_api_*quick*.json")
    result = json.loads(written.read_text())
    metrics = result["metrics"]
    for key in ("n", "direct_accuracy", "api_accuracy", "api_accuracy_inverted", "gap_points",
                "gap_digits", "gap_points_inverted", "gap_digits_inverted", "meets_target"):
        assert key in metrics
    assert metrics["n"] == 100 and result["data"]["source"] == "embedded"
    splits = load_mnist("embedded")
    model, _ = load_checkpoint(classifier_checkpoint)
    read = predict_proba(model, to_tensor(splits.test_images[:100])).argmax(1).numpy()
    assert metrics["direct_accuracy"] == pytest.approx((read == splits.test_labels[:100]).mean())
    assert metrics["gap_digits"] == round(100 * (metrics["api_accuracy"]
                                                 - metrics["direct_accuracy"]))
    for key in ("direct_accuracy", "api_accuracy", "api_accuracy_inverted"):
        assert 0 <= metrics[key] <= 1
        assert metrics[key] * 100 == pytest.approx(round(metrics[key] * 100))  # whole digits
    for suffix, api in (("", "api_accuracy"), ("_inverted", "api_accuracy_inverted")):
        gap = metrics[api] - metrics["direct_accuracy"]
        assert metrics[f"gap_points{suffix}"] == pytest.approx(100 * gap)  # points of 100 %
        assert metrics[f"gap_digits{suffix}"] == round(100 * gap)  # of the 100 digits
        # every digit gained or lost is one the two read differently
        assert metrics[f"disagreements{suffix}"] >= abs(metrics[f"gap_digits{suffix}"])
    assert metrics["meets_target"] == (abs(metrics["gap_points"]) <= 1
                                       and abs(metrics["gap_points_inverted"]) <= 1)
    # The app reads enlarged digits about as well as the network reads the originals.
    assert abs(metrics["gap_points"]) <= 5 and abs(metrics["gap_points_inverted"]) <= 5
    assert "28x28 originals" in capsys.readouterr().out


def test_classify_api_without_a_checkpoint_names_make_mnist(classify_api, project_root, capsys):
    with pytest.raises(SystemExit) as stop:
        classify_api.main(["--quick"])
    assert stop.value.code == 2
    assert "make mnist" in capsys.readouterr().err


def test_the_load_target_needs_no_errors_and_a_p99_within_it(app_load):
    assert app_load.meets_target(99.9, 0, 100.0)
    assert app_load.meets_target(100.0, 0, 100.0)
    assert not app_load.meets_target(100.1, 0, 100.0)
    assert not app_load.meets_target(5.0, 1, 100.0)


def test_app_load_quick_times_both_routes_under_waitress(app_load, classifier_checkpoint,
                                                         project_root, tmp_path):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:300], splits.train_labels[:300],
                                 n_components=10, bandwidth=0.4, progress=False)
    model.save(gen.model_path(tmp_path))
    app_load.main(["--quick", "--clients", "4", "--threads", "2", "--model-dir", str(tmp_path),
                   "--checkpoint", str(classifier_checkpoint)])
    results = project_root / "results" / "generator"
    assert not (results / "app_load.json").exists()  # a non-default run writes beside it
    [written] = results.glob("app_load_*quick*.json")
    metrics = json.loads(written.read_text())["metrics"]
    for block, target in ((metrics, 150.0), (metrics["classify"], 100.0)):
        assert block["requests"] == 48 and block["errors"] == 0, block["first_errors"]
        assert 0 < block["p50_ms"] <= block["p90_ms"] <= block["p99_ms"] <= block["max_ms"]
        assert block["throughput_rps"] == pytest.approx(48 / block["wall_seconds"])
        assert block["p99_target_ms"] == target
        assert block["meets_target"] == (block["p99_ms"] <= target)


def test_app_load_without_a_checkpoint_names_make_mnist(app_load, project_root, tmp_path,
                                                        capsys):
    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:100], splits.train_labels[:100],
                                 n_components=5, bandwidth=0.4, progress=False)
    model.save(gen.model_path(tmp_path))
    with pytest.raises(SystemExit) as stop:
        app_load.main(["--quick", "--model-dir", str(tmp_path)])
    assert stop.value.code == 2 and "make mnist" in capsys.readouterr().err
