"""Every benchmark runs in its quick mode, writes beside (never over) its canonical results
file, carries the keys the results table reads, and judges its target correctly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from digitlab.data.sources import load_mnist, write_mnist_folder
from digitlab.data.transforms import BACKGROUND
from digitlab.errors import UserError
from digitlab.mnist.networks import ShiftAveraged
from digitlab.mnist.recipes import BEST, BEST_NETWORK
from digitlab.paths import PROJECT_ROOT
from digitlab.pipeline.benchmarks import full_mnist_naming, output_path, over_seeds
from digitlab.pipeline.smoke import SMOKE
from digitlab.pipeline.summary import ROWS, lookup


def benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (benchmarks are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_keys_hold(document: dict, canonical: str) -> None:
    """Every results-table row that reads ``canonical`` finds its key in ``document``."""
    rows = [row for row in ROWS if row.file == canonical]
    assert rows, canonical
    for row in rows:
        lookup(document, row.key)  # KeyError if the benchmark stopped writing it


def check_over_seeds(block: dict, seeds: list[int], low: float = -np.inf,
                     high: float = np.inf) -> None:
    """A number over seeds agrees with its own per-seed values: the mean lies between the
    minimum and the maximum and is their average, each value within [low, high]."""
    values = [block["per_seed"][str(seed)] for seed in seeds]
    assert block["n_seeds"] == len(seeds) == len(block["per_seed"])
    assert all(low <= value <= high for value in values), values
    assert block["min"] == min(values) and block["max"] == max(values)
    assert block["min"] <= block["mean"] <= block["max"]
    assert block["mean"] == pytest.approx(sum(values) / len(values))
    spread = (sum((v - block["mean"]) ** 2 for v in values) / len(values)) ** 0.5
    assert block["std"] == pytest.approx(spread, abs=1e-12)


def check_accuracy_counts(block: dict, n_test: int) -> None:
    """Each accuracy is a whole number of digits out of ``n_test``."""
    for value in block["per_seed"].values():
        assert value * n_test == pytest.approx(round(value * n_test), abs=1e-6)


def run_quick(name: str, project_root, *args) -> tuple[dict, str]:
    benchmark(name).main(["--quick", *args])
    written = sorted(p.relative_to(project_root / "results").as_posix()
                     for p in (project_root / "results").rglob("*_quick*.json"))
    assert len(written) == 1, written
    return json.loads((project_root / "results" / written[0]).read_text()), written[0]


def test_a_run_with_other_options_is_written_beside_the_canonical_file(tmp_path):
    defaults = {"quick": False, "seeds": [0, 1, 2], "noise": "awgn", "data_dir": None}
    canonical = tmp_path / "benchmark.json"
    assert output_path(canonical, dict(defaults), defaults) == canonical
    assert output_path(canonical, {**defaults, "quick": True}, defaults).name == \
        "benchmark_quick.json"
    changed = {**defaults, "seeds": [0], "noise": "motion-blur"}
    assert output_path(canonical, changed, defaults).name == \
        "benchmark_seeds-0_noise-motion-blur.json"
    assert output_path(canonical, changed, defaults, tmp_path / "x.json") == tmp_path / "x.json"


def test_a_full_mnist_run_writes_the_canonical_file_from_whichever_folder():
    defaults = {"quick": False, "source": "embedded", "data_dir": None}
    canonical = Path("results/generator/benchmark.json")
    options = {"quick": False, "source": "local", "data_dir": "../shared/mnist"}
    full = {"n_train": 55_000, "n_val": 5_000, "n_test": 10_000}
    assert output_path(canonical, full_mnist_naming(options, defaults, full),
                       defaults) == canonical
    # Any other folder is another experiment: its file goes beside, named by the folder.
    small = {"n_train": 440, "n_val": 40, "n_test": 120}
    assert output_path(canonical, full_mnist_naming(options, defaults, small), defaults).name \
        == "benchmark_source-local_data-dir-..-shared-mnist.json"
    # The other options still count: a quick run on the full MNIST is not the measured one.
    quick = full_mnist_naming({**options, "quick": True}, defaults, full)
    assert output_path(canonical, quick, defaults).name == "benchmark_quick.json"


def test_headline_numbers_over_seeds_are_mean_spread_and_minimum():
    summary = over_seeds([0.99, 0.98, 0.995], [0, 1, 2])
    assert summary["mean"] == pytest.approx(0.988333333)
    assert summary["std"] == pytest.approx(np.sqrt(((0.99 - 0.988333333) ** 2 + (
        0.98 - 0.988333333) ** 2 + (0.995 - 0.988333333) ** 2) / 3))
    assert summary["min"] == 0.98 and summary["per_seed"] == {"0": 0.99, "1": 0.98, "2": 0.995}
    assert summary["max"] == 0.995 and summary["n_seeds"] == 3


def test_the_mnist_target_is_judged_on_the_mean_and_fails_when_it_misses():
    target = benchmark("mnist_cnn").target

    def summary(accuracies, seconds):
        return {"best": {"test_accuracy": over_seeds(accuracies, [0, 1, 2]),
                         "train_seconds": over_seeds(seconds, [0, 1, 2])}}

    # the target: a mean of at least 99.2 % in at most 60 s
    assert target(summary([0.993, 0.990, 0.993], [50, 55, 58]), 2, "best")["met"]  # 0.9920
    assert not target(summary([0.993, 0.989, 0.993], [50, 55, 58]), 2, "best")["met"]  # 0.9917
    assert not target(summary([0.995, 0.995, 0.995], [50, 65, 70]), 2, "best")["met"]  # slow
    assert target(summary([0.993, 0.990, 0.993], [50, 55, 58]), 2, "best")["min_accuracy"] == 0.990
    # The full-MNIST recipe: a mean of 99.75% within 10 minutes; 99.74% (one digit short) is not.
    assert target(summary([0.9977, 0.9975, 0.9974], [590, 595, 600]), 2, "full")["met"]
    assert not target(summary([0.9975, 0.9974, 0.9973], [500, 500, 500]), 2, "full")["met"]
    # a mean of 633 s:
    assert not target(summary([0.998, 0.998, 0.998], [550, 650, 700]), 2, "full")["met"]


def test_the_full_mnist_choice_is_the_most_accurate_within_the_budget():
    bench = benchmark("mnist_full_recipe")

    def score(accuracy, seconds):  # seconds on 55,000 digits
        return {"val_accuracy": accuracy, "train_seconds": seconds,
                "full_set_seconds": bench.full_set_seconds(seconds, 55_000, 5_000)}

    # 560 s on 55,000 digits is 610.9 s on the 60,000 the chosen recipe trains on at the end.
    assert bench.full_set_seconds(560.0, 55_000, 5_000) == 560.0 * 12 / 11
    scores = {"slow": score(0.999, 560.0), "fast": score(0.997, 300.0),
              "tied": score(0.997, 200.0), "worse": score(0.996, 100.0)}
    assert bench.choose(scores) == "tied"  # "slow" is more accurate but over the 600 s
    assert bench.choose(scores, budget=1e9) == "slow"
    assert bench.choose({"slow": scores["slow"]}) is None
    assert bench.choose({"just in": score(0.99, 550.0)}) == "just in"  # exactly 600 s


def test_the_full_mnist_selection_counts_validation_errors_at_each_shift():
    """A hand-made network that reads every digit as 0 unless its centre pixel is lit:
    shifted copies that move the lit pixel off the centre vote for 0, so the errors at
    each shift are known by counting the copies."""
    bench = benchmark("mnist_full_recipe")

    class CentrePixel(nn.Module):
        def forward(self, x):
            lit = (x[:, 0, 14, 14] > 0.5).float()
            return torch.stack([1 - lit, lit], dim=1) * 10  # class 1 when the centre is lit

    x = torch.full((2, 1, 28, 28), BACKGROUND)
    x[:, 0, 14, 14] = 1.0  # both digits: one lit pixel in the centre, labelled 1
    data = (x, torch.tensor([1, 1]))
    averaged = ShiftAveraged(CentrePixel(), shift=0)
    # Shift 0 and 1 copies: 1 of 1 and 1 of 9 read 1; softmax(10) ~ 1, so the mean picks
    # 1 at shift 0 (both right) and 0 at shifts 1-3 (8/9, 24/25, 48/49 of the copies).
    assert bench.errors_by_shift(averaged, data) == {0: 0, 1: 2, 2: 2, 3: 2}
    assert averaged.shift == 0
    assert bench.errors_by_shift(CentrePixel(), data) is None  # no shifts to average


def test_the_results_table_states_the_mnist_targets_the_benchmark_judges():
    TARGETS = benchmark("mnist_cnn").TARGETS
    (label,) = [row.label for row in ROWS
                if row.file == "mnist/benchmark.json" and row.key == "metrics.target.met"]
    for accuracy, seconds in TARGETS.values():
        assert f">= {accuracy * 100:g}%" in label
        assert f"<= {seconds:.0f} s" in label


def test_the_noisy_target_is_judged_on_the_mean_and_fails_when_it_misses():
    summarise = benchmark("noisy_mnist").summarise

    def per_seed(cnn_accuracies):
        return {s: {key: {"test_accuracy": a if key == "cnn" else 0.9, "train_seconds": 1.0}
                    for key in ("cnn", "cnn_fixed_noise", "dnn", "dnn_improved")}
                for s, a in enumerate(cnn_accuracies)}

    assert summarise(per_seed([0.98, 0.97, 0.98]), [0, 1, 2])["target"]["met"]  # mean 0.9767
    missed = summarise(per_seed([0.98, 0.96, 0.98]), [0, 1, 2])["target"]  # mean 0.9733
    assert not missed["met"] and missed["min_accuracy"] == 0.96


def test_the_recipe_choice_is_the_most_accurate_within_the_budget_near_ties_by_log_loss():
    module = benchmark("mnist_cnn_recipe")

    def scored(compute, errors, log_loss):
        return {"compute": compute, "accuracy": 1 - errors / 4000, "n_images": 4000,
                "log_loss": log_loss}

    results = {"better but too costly": scored(module.BUDGET + 1, 10, 0.01),
               "fewest errors, worse log-loss": scored(40, 30, 0.09),
               "five errors more, best log-loss": scored(40, 35, 0.02)}
    assert module.choose(results) == "fewest errors, worse log-loss"
    # 0.1 point of 4,000 digits is 4 digits: within it, the lower log-loss wins
    results["four errors more, better log-loss"] = scored(45, 34, 0.05)
    assert module.choose(results) == "four errors more, better log-loss"
    network, recipe = module.candidate(module.CANDIDATES["25 epochs, width 24"], quick=False)
    assert module.compute(network, recipe) == pytest.approx(25 * (24 / 16) ** 2)


def test_the_recipe_candidates_do_not_move_with_the_best_recipe_and_one_of_them_is_it():
    """BEST was chosen by this comparison: rerunning it must give the recorded candidates."""
    module = benchmark("mnist_cnn_recipe")
    network, recipe = module.candidate(module.CANDIDATES["40 epochs"], quick=False)
    assert (recipe.epochs, recipe.batch_size, network.options.get("tta_shift", 0)) == (40, 128, 0)
    built = [module.candidate(changes, quick=False) for changes in module.CANDIDATES.values()]
    assert (BEST_NETWORK, BEST.replace(train_on_val=False)) in \
        [(network, recipe.replace(train_on_val=False)) for network, recipe in built]


def test_nothing_within_the_budget_is_no_choice_rather_than_a_crash():
    module = benchmark("mnist_cnn_recipe")
    too_costly = {"compute": module.BUDGET + 1, "accuracy": 0.99, "n_images": 4000,
                  "log_loss": 0.03}
    assert module.choose({"60 epochs": too_costly}) is None


def test_the_recipe_comparison_runs_named_candidates_and_refuses_unknown_ones():
    module = benchmark("mnist_cnn_recipe")
    chosen = module.select(["40 epochs", "15 epochs"], module.CANDIDATES)
    assert list(chosen) == ["40 epochs", "15 epochs"]
    with pytest.raises(UserError, match=r"unknown candidate\(s\) \['40 epoch'\]"):
        module.select(["40 epoch"], module.CANDIDATES)


@pytest.mark.slow
def test_mnist_benchmark_quick(project_root):
    document, written = run_quick("mnist_cnn", project_root, "--source", "embedded",
                                  "--no-progress")
    assert written == "mnist/benchmark_quick_source-embedded.json"
    table_keys_hold(document, "mnist/benchmark.json")
    metrics = document["metrics"]
    assert metrics["best"]["test_accuracy"]["n_seeds"] == 1
    for name in ("best", "reference"):
        network = metrics[name]
        assert network["n_test"] == 1000  # the embedded test split
        check_over_seeds(network["test_accuracy"], [0], 0.0, 1.0)
        check_accuracy_counts(network["test_accuracy"], network["n_test"])
        check_over_seeds(network["train_seconds"], [0], 0.0)
        check_over_seeds(network["images_per_second"], [0], 0.0)
        assert network["test_accuracy"]["mean"] > 0.3  # one epoch: well above chance (0.1)
    best, reference, target = metrics["best"], metrics["reference"], metrics["target"]
    assert (target["accuracy"], target["seconds"]) == (0.992, 60.0)  # as the README states
    assert target["min_accuracy"] == best["test_accuracy"]["min"]
    assert target["met"] == (best["test_accuracy"]["mean"] >= 0.992
                             and best["train_seconds"]["mean"] <= 60.0)
    assert metrics["ratios"]["test_accuracy_best_minus_reference"] == pytest.approx(
        best["test_accuracy"]["mean"] - reference["test_accuracy"]["mean"])
    assert metrics["ratios"]["images_per_second_best_over_reference"] == pytest.approx(
        best["images_per_second"]["mean"] / reference["images_per_second"]["mean"])


@pytest.mark.slow
def test_noisy_benchmark_quick(project_root):
    document, written = run_quick("noisy_mnist", project_root)
    assert written == "noisy_mnist/benchmark_quick.json"
    table_keys_hold(document, "noisy_mnist/benchmark.json")
    metrics = document["metrics"]
    for model in ("cnn", "cnn_fixed_noise", "dnn", "dnn_improved"):
        check_over_seeds(metrics[model]["test_accuracy"], [0], 0.0, 1.0)
        check_over_seeds(metrics[model]["train_seconds"], [0], 0.0)
    target, cnn = metrics["target"], metrics["cnn"]["test_accuracy"]
    assert target["accuracy"] == 0.975  # as the README states
    assert target["met"] == (cnn["mean"] >= 0.975) and target["min_accuracy"] == cnn["min"]
    assert (project_root / "models" / "benchmarks" / "benchmark_quick" /
            "mnist_cnn_awgn_seed0.pt").is_file()
    assert not (project_root / "models" / "mnist_cnn_awgn.pt").exists()  # train_cnn.py's


@pytest.mark.slow
def test_recipe_benchmark_quick(project_root):
    document, written = run_quick("mnist_cnn_recipe", project_root)
    assert written == "mnist/recipe_selection_quick.json"
    table_keys_hold(document, "mnist/recipe_selection.json")
    candidates = document["metrics"]["candidates"]
    assert set(candidates) == set(benchmark("mnist_cnn_recipe").CANDIDATES)
    chosen = candidates[document["metrics"]["chosen"]]
    # the stored out-of-fold predictions are the ones the accuracy was computed from
    labels = load_mnist("embedded", seed=0).pooled()[1][:SMOKE.n_train + SMOKE.n_val]
    assert np.mean(np.array(chosen["oof_predictions"]) == labels) == \
        pytest.approx(chosen["accuracy"])
    if chosen["accuracy"] < 1:
        assert (project_root / "results/mnist/recipe_selection_quick_errors.png").is_file()


def test_the_misread_digits_figure_shows_each_wrong_digit_once(tmp_path, monkeypatch):
    module = benchmark("mnist_cnn_recipe")
    drawn = {}

    def spy(images, titles, **options):
        drawn.update(images=images, titles=titles)
        return plt.figure()

    monkeypatch.setattr(module, "image_grid", spy)
    images = np.arange(5)[:, None, None] * np.ones((5, 28, 28), np.uint8)
    labels, predicted = np.array([1, 2, 3, 4, 5]), np.array([1, 7, 3, 9, 5])
    module.plot_errors(images, labels, predicted, "x", tmp_path / "errors.png")
    assert drawn["titles"] == ["2 -> 7", "4 -> 9"]
    assert [int(image[0, 0]) for image in drawn["images"]] == [1, 3]
    assert (tmp_path / "errors.png").is_file()
    module.plot_errors(images, labels, labels, "x", tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()  # nothing misread, no empty figure


@pytest.mark.slow
def test_generator_benchmark_quick(project_root):
    document, written = run_quick("generator_quality", project_root)
    assert written == "generator/benchmark_quick.json"
    table_keys_hold(document, "generator/benchmark.json")
    metrics = document["metrics"]
    check_over_seeds(metrics["recognisability"], [0], 0.0, 1.0)
    check_over_seeds(metrics["cnn_test_accuracy"], [0], 0.0, 1.0)
    check_over_seeds(metrics["novelty_median_ratio"], [0], 0.0)


def test_ladder_benchmark_quick_and_its_checks(project_root):
    document, written = run_quick("minimnist_ladder", project_root)
    assert written == "mini_mnist/benchmark_quick.json"
    table_keys_hold(document, "mini_mnist/benchmark.json")
    metrics = document["metrics"]
    digits, random = metrics["default"], metrics["random"]
    for mode, mean in (("digits", digits), ("random", random)):
        [run] = document["per_seed"][mode].values()  # quick: the first seed only
        for key in ("ari", "mlp_accuracy", "cnn_accuracy"):
            assert mean[key] == pytest.approx(run[key])
        for key in ("mlp_accuracy", "cnn_accuracy"):
            assert 0 <= mean[key] <= 1
        assert -1 <= mean["ari"] <= 1
    # The PASS/FAIL flags agree with the numbers against the stated targets.
    expected = {
        "default: 0.2 <= ARI <= 0.7": 0.2 <= digits["ari"] <= 0.7,
        "default: MLP >= 0.90": digits["mlp_accuracy"] >= 0.9,
        "default: CNN >= MLP": digits["cnn_accuracy"] >= digits["mlp_accuracy"],
        "default: ladder ordered (every seed)": digits["ordered_all_seeds"],
        "random: |ARI| <= 0.02": abs(random["ari"]) <= 0.02,
        "random: MLP <= 0.20": random["mlp_accuracy"] <= 0.2,
    }
    assert metrics["checks"] == expected
    assert metrics["all_passed"] == all(expected.values())
    checks = benchmark("minimnist_ladder").checks
    good = {"digits": {"ari": 0.5, "mlp_accuracy": 0.95, "cnn_accuracy": 0.97,
                       "ordered_all_seeds": True},
            "random": {"ari": 0.001, "mlp_accuracy": 0.1}}
    assert all(checks(good).values())
    bad = {**good, "random": {"ari": 0.05, "mlp_accuracy": 0.1}}
    assert not checks(bad)["random: |ARI| <= 0.02"]


def test_full_scale_benchmark_quick_on_an_mnist_format_folder(project_root):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (240, 28, 28), dtype=np.uint8)
    labels = np.arange(240) % 10
    folder = write_mnist_folder(project_root / "fmt", (images[:200], labels[:200]),
                                (images[200:], labels[200:]))
    document, written = run_quick("full_scale", project_root, "--data-dir", str(folder),
                                  "--no-progress")
    assert written.startswith("full_scale/benchmark_") and written.endswith("_quick.json")
    table_keys_hold(document, "full_scale/benchmark.json")
    metrics = document["metrics"]
    assert metrics["n_test"] == 40 and metrics["epochs"] == 1
    assert metrics["seconds_per_epoch"] == pytest.approx(metrics["train_seconds"])
    assert metrics["peak_rss_mib"] > 0
    accuracy = metrics["test_accuracy"]
    assert 0 <= accuracy <= 1 and accuracy * 40 == pytest.approx(round(accuracy * 40))
    assert metrics["images_per_second"] > 0


def test_full_scale_benchmark_defaults_to_the_full_mnist_in_data_raw_mnist(project_root,
                                                                           monkeypatch, capsys):
    full_scale = benchmark("full_scale")
    monkeypatch.setattr("digitlab.paths.FASHION_MNIST_DIR", project_root / "no-fashion")
    with pytest.raises(SystemExit) as exit_info:  # neither the full MNIST nor a folder
        full_scale.main(["--quick", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(".") and "Traceback" not in err
    assert "data/raw/mnist" in err and "--data-dir" in err and "--dataset fashion" in err
    with pytest.raises(SystemExit):
        full_scale.main(["--quick", "--dataset", "fashion"])
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err

    # Found in data/raw/mnist (here a small stand-in), it is the default data set.
    splits = load_mnist("embedded")
    write_mnist_folder(project_root / "data" / "raw" / "mnist",
                       (splits.train_images[:240], splits.train_labels[:240]),
                       (splits.test_images[:60], splits.test_labels[:60]))
    document, written = run_quick("full_scale", project_root, "--no-progress")
    assert document["data"]["source"] == "local"
    assert str(project_root / "data" / "raw" / "mnist") in document["metrics"]["data_source"]
    assert document["metrics"]["n_test"] == 60
    # A set smaller than 60,000 + 10,000 is named in the file, never the canonical run.
    assert written.startswith("full_scale/benchmark_data-dir-") and "quick" in written
