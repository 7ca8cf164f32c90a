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
# # MNIST 5: the CNN project
#
# A complete, honest evaluation of a CNN on MNIST:
#
# 1. prepare the data: normalisation, labels in the form each loss needs;
# 2. compare architectures on the **validation** set only and choose one;
# 3. train the chosen one with and without data augmentation, again judged on
#    validation only;
# 4. evaluate the final model **once** on the test set: accuracy, confusion
#    matrix, per-class precision / recall / F1, the most confident mistakes;
# 5. look inside it: the first-layer filters and the feature maps of one digit;
# 6. write `results/mnist/report.md` with the figures and every number above.
#
# Every candidate gets the same short recipe (AdamW with a OneCycle schedule,
# batch 128, 5 epochs on all training images of the embedded subset, one on the
# full MNIST: docs/fullscale.md), which keeps the notebook to minutes on 2 cores. With so short a budget the candidates end within a
# point or so of each other; the best CNN trained by `scripts/train_cnn.py` gets
# a much longer budget and a tuned recipe, so its accuracy is higher than here.
# `quick=True` uses 300 training images and one epoch.

# %% tags=["parameters"]
quick = False  # the smoke preset (digitlab.pipeline.smoke): runs in seconds (used by the tests)
seed = 0
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
epochs = None  # None: 5 on the embedded digits, 1 at full scale (digitlab.pipeline.scale)
batch_size = 128
candidates = ["cnn2", "cnn3", "reference", "best"]
n_misclassified = 12
threads = None  # CPU threads, 0: one per core; None: 1 on the embedded digits (faster on a
# shared 2-core machine), one per core at full scale
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU

# %% [markdown]
# ## Setup

# %%
import pandas as pd
import torch
import torch.nn.functional as F

from digitlab import devices, paths, plots
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import MNIST_MEAN, MNIST_STD, to_tensor
from digitlab.engine import NetworkSpec, Recipe, predict_proba
from digitlab.metrics import classification_summary
from digitlab.mnist.project import (
    choose,
    compare,
    feature_maps,
    first_conv_filters,
    misclassified,
    render_report,
)
from digitlab.mnist.variants import results_table, train_run
from digitlab.pipeline.notebooks import figure_saver
from digitlab.pipeline.scale import scale_name, sized
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import atomic_write, save_metrics, set_seed

set_seed(seed)
device = devices.resolve(device)
out = paths.mnist_results() / "project"
report_path = paths.mnist_results() / "report.md"
figures = {}
show = figure_saver(out, collect=figures)  # saves, lists for the report, displays


# %% [markdown]
# ## 1. Prepare the data
#
# Pixels are scaled to [0, 1], then normalised with the MNIST mean and standard
# deviation so that inputs have about zero mean and unit variance.

# %%
splits = load_mnist(source, data_dir, seed=seed)
if quick:
    splits = SMOKE.splits(splits)
train = (to_tensor(splits.train_images), torch.as_tensor(splits.train_labels))
val = (to_tensor(splits.val_images), torch.as_tensor(splits.val_labels))
test = (to_tensor(splits.test_images), torch.as_tensor(splits.test_labels))
n_digits = len(splits.train_labels) + len(splits.val_labels)
# Five candidates x 5 epochs of 55,000 digits would take most of an hour on 2 cores; one pass
# over the full set is 3 times the digits of 5 epochs over the embedded 3,500.
epochs = SMOKE.epochs if quick else sized(epochs, 5, 1, n_digits)
threads = devices.set_threads(sized(threads, 1, 0, n_digits) or None, device)
print(f"{splits.description}; {scale_name(n_digits)}: {epochs} epoch(s) per candidate, "
      f"{threads or 'GPU'} thread(s)")
print(f"normalised with mean {MNIST_MEAN} and std {MNIST_STD}: training inputs now have "
      f"mean {train[0].mean():.3f}, std {train[0].std():.3f}")

# %% [markdown]
# **One-hot labels only where a model needs them.** PyTorch's `cross_entropy`
# takes class indices, so the CNNs train on integer labels. One-hot vectors are
# needed by losses that compare whole probability vectors (mean squared error,
# soft targets, the hand gradient `p - onehot(y)` of notebook 3); given one-hot
# targets, `cross_entropy` returns the same loss, as checked here.

# %%
logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(seed))
labels = train[1][:5]
one_hot = F.one_hot(labels, num_classes=10).float()
print(one_hot)
print(f"cross-entropy with indices {F.cross_entropy(logits, labels):.6f}, "
      f"with one-hot targets {F.cross_entropy(logits, one_hot):.6f}")

# %% [markdown]
# ## 2. Architecture comparison (validation set only)

# %%
recipe = Recipe(optimizer="adamw", schedule="onecycle", epochs=epochs, batch_size=batch_size)
settings = {"optimizer": "AdamW", "schedule": "OneCycle", "peak lr": recipe.learning_rate,
            "batch size": batch_size, "epochs": epochs}
comparison, runs = compare({name: NetworkSpec(name) for name in candidates}, recipe, train, val,
                           seed=seed, device=device)
chosen = choose(comparison)
print(f"chosen on validation accuracy: {chosen}")
comparison[["parameters", "val_accuracy", "epochs_to_converge", "train_seconds"]]

# %%
show(plots.learning_curves({name: run.history for name, run in runs.items()},
                           title="Candidates: training (dashed) and validation (solid)"),
     "architectures_learning_curves.png", "Learning curves of the candidate architectures")

# %% [markdown]
# ## 3. Augmentation on / off (validation set only)
#
# Random small rotations, scalings and shifts of every training batch
# (`digitlab.data.transforms.RandomAffine`), same recipe otherwise.

# %%
augmented = train_run(f"{chosen} + augmentation", runs[chosen].network,
                      recipe.replace(augment=True), train, val, seed=seed, device=device)
augmentation = results_table([runs[chosen], augmented])
final_name = choose(augmentation)
final = augmented if final_name == augmented.name else runs[chosen]
print(f"final model: {final_name}")
augmentation[["augment", "val_accuracy", "epochs_to_converge", "train_seconds"]]

# %% [markdown]
# ## 4. The test set, once

# %%
probabilities = predict_proba(final.model, test[0]).numpy()
y_test = test[1].numpy()
test_summary = classification_summary(y_test, probabilities.argmax(axis=1))
print(f"test accuracy {test_summary['accuracy']:.4f}, macro F1 {test_summary['macro_f1']:.4f}")
pd.DataFrame(test_summary["per_class"]).T.rename_axis("digit")

# %%
show(plots.confusion_matrix(test_summary["confusion_matrix"],
                            title=f"{final_name}: test confusion matrix"),
     "confusion_matrix.png", "Confusion matrix (test set)")

# %%
wrong = misclassified(probabilities, y_test, k=n_misclassified)
print(f"{int((probabilities.argmax(1) != y_test).sum())} test images misclassified; "
      f"showing the {len(wrong)} most confident mistakes")
if len(wrong):
    show(plots.probability_examples(splits.test_images[wrong], probabilities[wrong],
                                    y_test[wrong], title="Most confident mistakes (test set)"),
         "misclassified.png", "Most confident mistakes on the test set")

# %% [markdown]
# ## 5. Inside the network
#
# The first convolution's 3 x 3 filters (red positive, blue negative weights),
# then what each ReLU layer outputs for one test digit, recorded with forward
# hooks: early layers respond to strokes and edges at full resolution, later
# ones to larger parts of the digit at lower resolution.

# %%
filters = first_conv_filters(final.model)
show(plots.signed_image_grid(filters, ncols=8, cell=0.8,
                             suptitle=f"{final_name}: first-layer filters"),
     "filters.png", "First-layer filters")

# %%
digit = 0
maps = feature_maps(final.model, test[0][digit])
print({name: fmap.shape for name, fmap in maps.items()})
show(plots.feature_maps_grid(splits.test_images[digit], maps,
                             title=f"Feature maps of a test digit (label {y_test[digit]})"),
     "feature_maps.png", "Feature maps of one test digit")

# %% [markdown]
# ## 6. Metrics and report

# %%
metrics_path = save_metrics(out / "metrics.json", {
    "comparison": comparison.reset_index().to_dict(orient="records"),
    "chosen_architecture": chosen,
    "augmentation": augmentation.reset_index().to_dict(orient="records"),
    "final_model": final_name,
    "test_accuracy": test_summary["accuracy"], "test_macro_f1": test_summary["macro_f1"],
    "test": test_summary,
}, seed=seed, config={"source": source, "data_dir": data_dir, "quick": quick,
                      "candidates": candidates,
                      "recipe": recipe.as_dict(), **devices.describe(device)},
    data=splits.summary())
report = render_report(report_path, data=splits.summary(), comparison=comparison, chosen=chosen,
                       augmentation=augmentation, final_name=final_name, test=test_summary,
                       figures=figures, settings=settings)
with atomic_write(report_path) as handle:
    handle.write(report)
print(f"wrote {report_path} and {metrics_path}")

# %% [markdown]
# ## Conclusion

# %%
print(f"Data: {splits.description}.")
print(f"On validation, {chosen} was the best of {', '.join(candidates)} "
      f"({comparison.loc[chosen, 'val_accuracy']:.4f}); augmentation "
      f"{'helped' if final is augmented else 'did not improve it'} within {epochs} epoch(s) "
      f"({augmented.val_accuracy:.4f} with, {runs[chosen].val_accuracy:.4f} without).")
print(f"The final model, {final_name}, scores {test_summary['accuracy']:.4f} accuracy and "
      f"{test_summary['macro_f1']:.4f} macro F1 on {test_summary['n']} test images.")
