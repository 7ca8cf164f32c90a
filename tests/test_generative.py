"""The PCA + KDE generator: fit, sampling (checked against scikit-learn), save/load."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import cumulative_trapezoid
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold
from sklearn.neighbors import KernelDensity, NearestNeighbors

from digitlab.data.sources import load_mnist
from digitlab.errors import UserError
from digitlab.generator import pca_kde as gen
from digitlab.generator import quality
from digitlab.paths import PROJECT_ROOT


def script_main(name: str):
    """The ``main`` of ``scripts/<name>.py`` (scripts are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def digits():
    splits = load_mnist("embedded")
    return splits.train_images[:400], splits.train_labels[:400], splits.test_images[:100]


@pytest.fixture(scope="module")
def model(digits):
    images, labels, _ = digits
    fitted, search = gen.fit_generator(images, labels, n_components=12, bandwidth=0.5,
                                       progress=False)
    assert search is None
    return fitted


def test_variance_explained_is_measured_and_matches_pca(digits, model):
    images, _, test = digits
    reference = PCA(n_components=12, random_state=0).fit(gen.to_unit(images))
    assert model.variance_explained == pytest.approx(reference.explained_variance_ratio_.sum())
    assert model.measured_variance_explained(images) == pytest.approx(model.variance_explained,
                                                                      rel=1e-6)
    assert gen.cumulative_variance(images)[11] == pytest.approx(model.variance_explained, rel=1e-6)
    assert 0 < model.measured_variance_explained(test) < 1


@pytest.mark.parametrize("kernel", ["gaussian", "tophat"])
def test_sampler_draws_exactly_what_sklearn_draws(kernel):
    points = np.random.default_rng(0).normal(size=(50, 4))
    reference = KernelDensity(bandwidth=0.3, kernel=kernel).fit(points)
    ours = gen.kde_sample(points, 0.3, kernel, 200, np.random.RandomState(7))
    np.testing.assert_array_equal(ours, reference.sample(200, random_state=7))


def test_sample_statistics_match_sklearn_with_a_numpy_generator():
    points = np.random.default_rng(1).normal(size=(30, 3)) * [1.0, 2.0, 0.5]
    ours = gen.kde_sample(points, 0.4, "gaussian", 40_000, np.random.default_rng(2))
    theirs = KernelDensity(bandwidth=0.4).fit(points).sample(40_000, random_state=3)
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.05)
    np.testing.assert_allclose(np.cov(ours.T), np.cov(theirs.T), atol=0.08)
    # A Gaussian KDE's variance is the data's (uniform weights) plus bandwidth squared.
    np.testing.assert_allclose(ours.var(0), points.var(0) + 0.16, rtol=0.05)


def test_tophat_samples_stay_within_one_bandwidth_of_a_training_point():
    points = np.random.default_rng(0).normal(size=(20, 5)) * 10
    draws = gen.kde_sample(points, 0.7, "tophat", 500, np.random.default_rng(1))
    nearest = NearestNeighbors(n_neighbors=1).fit(points).kneighbors(draws)[0]
    assert nearest.max() <= 0.7 + 1e-9


# The law of r = |draw - centre| for one kernel centre in d dimensions: density
# proportional to r^(d-1) K(r / h), derived by hand for each kernel (u = r / h).
RADIUS_LAWS = {
    "gaussian": lambda d, h: stats.chi(d, scale=h).cdf,                    # K = exp(-u^2/2)
    "tophat": lambda d, h: stats.beta(d, 1, scale=h).cdf,                  # u^(d-1) on [0, 1]
    "epanechnikov": lambda d, h: lambda r: stats.beta(d / 2, 2).cdf((r / h) ** 2),  # 1 - u^2
    "exponential": lambda d, h: stats.gamma(d, scale=h).cdf,               # K = exp(-u)
}


def radius_cdf_of_sklearn_kernel(kernel: str, dim: int, h: float):
    """The same law integrated numerically from scikit-learn's own kernel values."""
    kde = KernelDensity(kernel=kernel, bandwidth=h).fit(np.zeros((1, dim)))
    compact = kernel in ("tophat", "epanechnikov")  # zero from r = h on
    r = np.linspace(0.0, h * (1 - 1e-12 if compact else dim + 12 * np.sqrt(dim) + 12), 200_001)
    ray = np.zeros((len(r), dim))
    ray[:, 0] = r
    with np.errstate(divide="ignore"):
        density = r ** (dim - 1) * np.exp(kde.score_samples(ray))
    cdf = cumulative_trapezoid(density, r, initial=0.0)
    return lambda x: np.interp(x, r, cdf / cdf[-1])


@pytest.mark.parametrize("dim", [2, 9])
@pytest.mark.parametrize("kernel", gen.KERNELS)
def test_every_kernel_draws_its_own_radius_law_in_uniform_directions(kernel, dim):
    h, n = 0.7, 20_000
    centre = np.random.default_rng(dim).normal(size=(1, dim)) * 5
    offsets = gen.kde_sample(centre, h, kernel, n, np.random.default_rng(11)) - centre
    radius = np.linalg.norm(offsets, axis=1)
    # The hand-derived law is scikit-learn's kernel (which scores the bandwidths) ...
    law = RADIUS_LAWS[kernel](dim, h)
    grid = np.linspace(0.0, radius.max(), 500)
    np.testing.assert_allclose(law(grid), radius_cdf_of_sklearn_kernel(kernel, dim, h)(grid),
                               atol=2e-3)
    # ... the draws follow it, and a law off by one dimension is told apart.
    assert stats.kstest(radius, law).pvalue > 1e-3
    assert stats.kstest(radius, RADIUS_LAWS[kernel](dim - 1, h)).pvalue < 1e-6
    # Directions are uniform on the sphere: mean 0, covariance I / d.
    directions = offsets / radius[:, np.newaxis]
    np.testing.assert_allclose(directions.mean(0), 0.0, atol=4.5 / np.sqrt(n * dim))
    np.testing.assert_allclose(np.cov(directions.T), np.eye(dim) / dim, atol=0.015)


@pytest.mark.parametrize("n_images, n_components", [(400, 12), (600, 50)])
def test_default_grids_bracket_the_cross_validated_bandwidth_of_every_kernel(n_images,
                                                                          n_components):
    images = load_mnist("embedded").train_images[:n_images]
    latent = PCA(n_components, random_state=0).fit_transform(gen.to_unit(images))
    for kernel in gen.KERNELS:
        search = gen.select_bandwidth(latent, kernel, progress=False)
        chosen = int(np.flatnonzero(search.grid == search.best)[0])
        # Inside the grid, not on an edge: a wider grid would not choose another value.
        assert 0 < chosen < len(search.grid) - 1, (kernel, search.best)
        assert np.isfinite(search.mean_scores[chosen])


@pytest.mark.parametrize("kernel", gen.KERNELS)
def test_a_model_of_any_kernel_saves_loads_and_samples(model, tmp_path, kernel):
    fitted = dataclasses.replace(model, kernel=kernel, bandwidth=2.0)
    loaded = gen.load_generator(fitted.save(tmp_path / "generator.npz"))
    assert loaded.kernel == kernel and loaded.stats()["kernel"] == kernel
    np.testing.assert_array_equal(loaded.sample(6, digit=2, seed=1),
                                  fitted.sample(6, digit=2, seed=1))


def test_samples_are_seeded_images(model):
    images = model.sample(7, seed=3)
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.sample(7, seed=3))
    assert not np.array_equal(images, model.sample(7, seed=4))
    assert not np.array_equal(model.sample(7), model.sample(7))


def test_class_conditional_samples_come_from_that_digit(model):
    narrow = gen.DigitGenerator(model.components, model.mean, model.explained_variance,
                                model.explained_variance_ratio, model.points, model.labels,
                                bandwidth=1e-3)
    nn = NearestNeighbors(n_neighbors=1).fit(model.points)
    for digit in range(10):
        latent = narrow.sample_latent(20, digit, seed=digit)
        nearest = nn.kneighbors(latent, return_distance=False)[:, 0]
        assert (model.labels[nearest] == digit).all()
    with pytest.raises(UserError, match="digit 11"):
        model.sample(1, digit=11)


def test_background_level_blanks_reconstructions_as_often_as_real_images(digits, model):
    images, _, _ = digits
    x = gen.to_unit(images)
    assert 0 < model.background < 1
    reconstructed = model.decode(model.encode(images))
    assert (reconstructed == 0).mean() == pytest.approx((x == 0).mean(), abs=0.01)


def two_component_model(background: float) -> gen.DigitGenerator:
    """Two hand-made components that touch four pixels: (0, 0), (0, 27), (1, 0), (27, 27)."""
    components = np.zeros((2, 784))
    components[0, 0], components[0, 27] = 1.0, -1.0
    components[1, 28], components[1, 783] = 1.0, 0.5
    mean = np.zeros(784)
    mean[[0, 27, 783]] = 0.1, 0.9, 0.05
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    return gen.DigitGenerator(components, mean, np.ones(2), np.full(2, 0.1), points,
                              np.array([0, 1]), bandwidth=1.0, background=background)


@pytest.mark.parametrize("background, expected", [
    # pixel = latent @ components + mean; with a background level B, (pixel - B) / (1 - B);
    # then clipped to [0, 1] and scaled to 0-255. Latent (0.7, 0.4) gives raw pixels
    # 0.8, 0.2, 0.4 and 0.25; latent (2, -1) gives 2.1 (clipped to 1) and negatives (0).
    (0.2, [{(0, 0): 191, (0, 27): 0, (1, 0): 64, (27, 27): 16}, {(0, 0): 255}]),
    (0.0, [{(0, 0): 204, (0, 27): 51, (1, 0): 102, (27, 27): 64}, {(0, 0): 255}]),
])
def test_decode_maps_latent_points_to_the_pixels_worked_out_by_hand(background, expected):
    images = two_component_model(background).decode(np.array([[0.7, 0.4], [2.0, -1.0]]))
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    for image, lit in zip(images, expected, strict=True):
        want = np.zeros((28, 28), np.uint8)
        for (row, col), value in lit.items():
            want[row, col] = value
        np.testing.assert_array_equal(image, want)


def test_bandwidth_search_picks_the_best_held_out_likelihood(model):
    latent, grid = model.points[:200], np.array([0.3, 1.0, 3.0])
    search = gen.select_bandwidth(latent, grid=grid, folds=2, random_state=0, progress=False)
    manual = []
    for bandwidth in grid:
        folds = KFold(2, shuffle=True, random_state=0).split(latent)
        manual.append(np.mean([KernelDensity(bandwidth=bandwidth).fit(latent[tr])
                               .score(latent[te]) / len(te) for tr, te in folds]))
    np.testing.assert_allclose(search.mean_scores, manual)
    assert search.best == grid[int(np.argmax(manual))]


def test_save_and_load_give_identical_samples(model, tmp_path):
    model = dataclasses.replace(model, metadata={**model.metadata, "data": {"source": "embedded"}})
    path = model.save(tmp_path / "generator.npz")
    loaded = gen.load_generator(path)
    np.testing.assert_array_equal(loaded.sample(9, digit=4, seed=5), model.sample(9, 4, seed=5))
    assert loaded.stats() == model.stats()
    assert loaded.metadata == model.metadata


def test_loading_missing_corrupted_or_foreign_files_fails_clearly(model, tmp_path):
    with pytest.raises(UserError, match="no generator model at .*make generator"):
        gen.load_generator(tmp_path / "absent.npz")
    good = model.save(tmp_path / "good.npz").read_bytes()
    cases = {
        "truncated.npz": good[: len(good) // 2],
        "garbage.npz": b"not a model at all",
        "text.npz": json.dumps({"format": gen.FORMAT}).encode(),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UserError, match=f"{name} is not a"):
            gen.load_generator(tmp_path / name)
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(UserError, match="not a digitlab generator model"):
        gen.load_generator(tmp_path / "foreign.npz")
    # An object array would need unpickling: refused, never executed.
    np.savez(tmp_path / "pickled.npz", **{k: np.array([None], dtype=object) for k in gen._ARRAYS})
    with pytest.raises(UserError, match="pickled.npz is not a readable generator model"):
        gen.load_generator(tmp_path / "pickled.npz")
    # A plain .npy array saved under the model's name.
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(UserError, match="array.npy is not a readable generator model"):
        gen.load_generator(tmp_path / "array.npy")


@pytest.mark.parametrize("field, value, message", [
    ("version", np.array([1, 2]), "format version"),
    ("metadata", np.str_("[]"), "inconsistent generator model"),
    ("metadata", np.str_('{"data": null}'), "inconsistent generator model"),
    ("bandwidth", np.array(np.inf), "inconsistent generator model"),
])
def test_loading_a_model_with_an_unusable_field_fails_clearly(model, tmp_path, field, value,
                                                              message):
    path = model.save(tmp_path / "good.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[field] = value
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(UserError, match=message):
        gen.load_generator(tmp_path / "edited.npz")


def test_kernels_that_cannot_be_sampled_are_refused(digits):
    images, labels, _ = digits
    with pytest.raises(UserError, match="'cosine' cannot be sampled from.*exponential"):
        gen.fit_generator(images, labels, kernel="cosine", bandwidth=1.0)
    with pytest.raises(UserError,
                       match="^bandwidth must be a positive number or 'cv', got -1.0[.]$"):
        gen.fit_generator(images, labels, n_components=5, bandwidth=-1.0)


def test_novelty_distances_match_sklearn_nearest_neighbours(digits, model):
    images, _, test = digits
    samples = model.sample(30, seed=0)
    reference = NearestNeighbors(n_neighbors=1).fit(gen.to_unit(images))
    expected = reference.kneighbors(gen.to_unit(samples))[0][:, 0]
    np.testing.assert_allclose(quality.nearest_distances(samples, images), expected, atol=1e-6)
    report = quality.novelty(samples, images, test)
    assert report["test_to_train_median"] == pytest.approx(
        np.median(reference.kneighbors(gen.to_unit(test))[0]), abs=1e-6)
    copies = quality.novelty(images[:30], images, test)
    assert copies["near_copy_fraction"] == 1.0 and copies["sample_to_train_median"] < 1e-6


def test_recognisability_counts_agreement_and_confidence():
    class Constant(torch.nn.Module):  # always says "3" with probability e^2 / (e^2 + 9)
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 3] = 2.0
            return logits

    images = np.zeros((4, 28, 28), np.uint8)
    result = quality.recognisability(Constant(), images, np.array([3, 3, 5, 7]))
    top = np.exp(2) / (np.exp(2) + 9)
    assert result["agreement"] == 0.5
    assert result["mean_confidence"] == pytest.approx(top, rel=1e-6)
    assert result["mean_prob_requested"] == pytest.approx((2 * top + 2 * (1 - top) / 9) / 4,
                                                          rel=1e-6)
    assert result["per_digit_agreement"] == {"3": 1.0, "5": 0.0, "7": 0.0}


@pytest.mark.slow
def test_notebook_quality_numbers_match_an_independent_recomputation(project_root):
    from digitlab.pipeline.notebooks import execute_notebook

    executed = execute_notebook("train_kde_model", {"quick": True},
                                output_dir=project_root / "executed", progress=False)
    assert executed.exists()
    saved = json.loads(
        (project_root / "results/generator/notebook_quick/quality.json").read_text())["metrics"]
    assert "trained here" in saved["classifier"]
    # Quick mode fits 15 components on 600 training digits (seed 0) of the embedded subset.
    splits = load_mnist("embedded")
    train, labels = gen.select_training_images(splits.train_images, splits.train_labels, 600, 0)
    x = train.reshape(len(train), -1) / 255.0
    assert saved["components"] == 15 and saved["n_train"] == 600
    # The notebook fits the app's model in its own cells: the package's fit of the same
    # images with the same settings picks the same bandwidth and background level.
    app, _ = gen.fit_generator(train, labels, n_components=15, grid=gen.default_grid("gaussian", 4),
                               folds=2, kde_points=600, random_state=0, progress=False)
    assert saved["bandwidth"] == app.bandwidth
    assert saved["background"] == pytest.approx(app.background, abs=1e-9)
    cumulative = np.cumsum(PCA(random_state=0).fit(x).explained_variance_ratio_)
    # Measured from float32 reconstructions; one component more or less moves it by ~1%.
    assert saved["variance_explained_train"] == pytest.approx(cumulative[14], rel=1e-4)
    assert saved["components_for_95pct"] == int(np.argmax(cumulative >= 0.95)) + 1
    test = splits.test_images.reshape(len(splits.test_images), -1) / 255.0
    nearest = NearestNeighbors(n_neighbors=1).fit(x).kneighbors(test)[0][:, 0]
    novelty = saved["novelty"]
    assert novelty["test_to_train_median"] == pytest.approx(np.median(nearest), rel=1e-6)
    assert novelty["median_ratio"] == pytest.approx(
        novelty["sample_to_train_median"] / np.median(nearest), rel=1e-6)
    recog = saved["recognisability"]
    assert recog["n"] == 200 and sorted(recog["per_digit_agreement"]) == list("0123456789")
    # 20 samples per digit: the overall agreement is the mean of the per-digit ones.
    assert recog["agreement"] == pytest.approx(np.mean(list(recog["per_digit_agreement"].values())))
    assert saved["cnn_test_accuracy"] > 0.5  # chance is 0.1: the CNN did train
    assert recog["agreement"] > 0.3  # samples a working CNN reads far above chance
    # One sample grid per kernel, each with its own cross-validated bandwidth.
    assert set(saved["kernels"]) == set(gen.KERNELS)
    for kernel in gen.KERNELS:
        fit = saved["kernels"][kernel]
        assert np.isclose(gen.default_grid(kernel, 4), fit["bandwidth"]).any()
        assert np.isfinite(fit["mean_log_likelihood"])
        assert (project_root / f"results/generator/notebook_quick/kernel_{kernel}.png").is_file()


def test_fit_script_writes_model_metrics_and_figures(project_root):
    main = script_main("fit_generator")
    main(["--max-samples", "300", "--components", "10", "--cv-folds", "2",
          "--source", "embedded"])
    model = gen.load_generator(project_root / "models/generator/generator.npz")
    metrics = json.loads((project_root / "results/generator/metrics.json").read_text())
    assert metrics["metrics"]["bandwidth"] == model.bandwidth
    assert metrics["metrics"]["bandwidth_cv"]["best_bandwidth"] == model.bandwidth
    # The PCA sees every training digit (3,500 embedded); the KDE keeps the 300 asked for.
    assert metrics["data"]["n_fit"] == 3500 and metrics["data"]["source"] == "embedded"
    assert metrics["data"]["n_kde_points"] == 300 and len(model.points) == 300
    for figure in ("cumulative_variance", "bandwidth_cv", "samples", "per_digit"):
        assert (project_root / f"results/generator/{figure}.png").stat().st_size > 0


@pytest.mark.parametrize("kernel", ["epanechnikov", "exponential"])
def test_fit_script_fits_the_kernels_scikit_learn_cannot_sample(project_root, kernel):
    script_main("fit_generator")(["--max-samples", "300", "--components", "10", "--cv-folds",
                                  "2", "--source", "embedded", "--kernel", kernel])
    model = gen.load_generator(project_root / "models/generator/generator.npz")
    metrics = json.loads((project_root / "results/generator/metrics.json").read_text())
    assert model.kernel == metrics["metrics"]["kernel"] == kernel
    cv = metrics["metrics"]["bandwidth_cv"]
    assert cv["best_bandwidth"] == model.bandwidth == metrics["metrics"]["kde_bandwidth"]
    assert cv["grid"] == pytest.approx(gen.default_grid(kernel))
    assert model.sample(3, digit=5, seed=0).shape == (3, 28, 28)


def test_the_notebook_reuses_the_saved_fit_only_for_the_same_images_and_settings(project_root):
    script_main("fit_generator")(["--max-samples", "300", "--components", "10", "--cv-folds", "2",
                                  "--source", "embedded"])
    splits = load_mnist("embedded")
    images, labels = gen.select_training_images(splits.train_images, splits.train_labels, 300, 0)
    settings = {"n_components": 10, "kernel": "gaussian", "bandwidth": "cv", "folds": 2}
    model, search = gen.saved_fit(images, labels, **settings)
    assert model.bandwidth == search.best and search.folds == 2
    assert np.isfinite(search.mean_scores).all()
    assert gen.saved_fit(images, labels, **{**settings, "n_components": 12}) is None
    assert gen.saved_fit(images, labels, **{**settings, "bandwidth": 0.5}) is None
    assert gen.saved_fit(images, labels, **{**settings, "folds": 5}) is None
    other = images.copy()
    other[0] = 255 - other[0]
    assert gen.saved_fit(other, labels, **settings) is None
    (project_root / "results/generator/metrics.json").write_text("{broken")
    assert gen.saved_fit(images, labels, **settings) is None


def test_fit_script_refuses_bad_options_without_writing(project_root, capsys):
    main = script_main("fit_generator")
    for argv in (["--kernel", "cosine"], ["--cv-folds", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "'cosine' cannot be sampled from" in capsys.readouterr().err
    assert not any((project_root / "results").iterdir())
    assert not any((project_root / "models").iterdir())


def test_the_pca_sees_every_image_and_the_kde_keeps_a_seeded_subset():
    splits = load_mnist("embedded")
    images, labels = splits.train_images[:400], splits.train_labels[:400]
    model, _ = gen.fit_generator(images, labels, n_components=5, bandwidth=0.5, kde_points=100,
                                 random_state=3)
    # Components of all 400 images (independent PCA; a component's sign is arbitrary).
    reference = PCA(n_components=5, random_state=3).fit(images.reshape(400, -1) / 255.0)
    assert np.allclose(np.abs(model.components), np.abs(reference.components_), atol=1e-6)
    kept, kept_labels = gen.select_training_images(images, labels, 100, 3)
    assert len(model.points) == 100 and np.array_equal(model.labels, kept_labels)
    assert np.allclose(model.points, model.encode(kept), atol=1e-6)
