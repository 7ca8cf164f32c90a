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
# # Training on Mini MNIST: the 72-20-10-10 MLP and a ladder of models
#
# Mini MNIST digits are 9 x 8 pixel drawings made by `scripts/generate_data.py`.
# This notebook trains the 72-20-10-10 multilayer perceptron (ReLU, ReLU, softmax
# output) with stochastic gradient descent on the stratified split written by
# `scripts/split_data.py`, then places it on a ladder of models scored on the
# same test set: chance, K-Means with Hungarian matching, logistic regression,
# the MLP and a small CNN. Figures and `ladder.json` go to `results/mini_mnist/`.
#
# Run it with `python scripts/run_notebook.py train_mini_mnist` (after the
# scripts; `make minimnist` does both). `quick=True` trains for a few epochs only.

# %% tags=["parameters"]
quick = False  # a few epochs only: runs in seconds (used by the tests)
seed = 0
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU

# %% [markdown]
# ## Setup

# %%
import numpy as np
import pandas as pd

from digitlab import devices, engine, paths, plots
from digitlab.metrics import classification_summary
from digitlab.minimnist import dataset
from digitlab.minimnist.ladder import RUNGS, Part, run_ladder, validation_split
from digitlab.minimnist.networks import MLP, RECIPE
from digitlab.pipeline.notebooks import figure_saver
from digitlab.repro import save_metrics, set_seed

rng = set_seed(seed)
device = devices.resolve(device)
devices.set_threads(1, device)  # networks this small train fastest on one thread
out = paths.mini_mnist_results()
recipe = RECIPE.replace(epochs=8, patience=None) if quick else RECIPE

show = figure_saver(out)  # saves each figure under out/ and displays it


# %% [markdown]
# ## Prepare the data
#
# The training file is split once more: a stratified 20% validation part picks
# the epoch to keep (early stopping); the test file is touched only for the
# final scores. Pixels are scaled by `dataset.scale` (pixel / 255), the one
# scaling every model here uses.

# %%
split = dataset.read_split(paths.data_dir())
train = Part.from_pixels(split["x_train"], split["y_train"])
test = Part.from_pixels(split["x_test"], split["y_test"])
fit_part, val_part = validation_split(train, 0.2, seed)
print(f"fit {len(fit_part)}, validation {len(val_part)}, test {len(test)} rows; "
      f"scaling: {dataset.SCALING}")

# %% [markdown]
# ## Build and train the MLP
#
# The network returns logits; training minimises the cross-entropy of their
# softmax, and `predict_proba` applies the softmax for the reported
# probabilities. Optimiser: SGD with momentum and a little weight decay, through
# the project's one training loop `digitlab.engine.fit`.

# %%
mlp, history = engine.train(MLP, recipe, fit_part.tensors(), val_part.tensors(), seed=seed,
                            device=device, desc="MLP")
print(mlp, "\nlayer sizes:", mlp.layer_sizes, "| parameters:", engine.count_parameters(mlp))
print(f"{len(history.train_loss)} epochs, best validation loss at epoch {history.best_epoch}")

# %%
show(plots.learning_curves({"MLP 72-20-10-10": history}, title="MLP learning curves"),
     "mlp_learning_curves.png")

# %% [markdown]
# ## Evaluate the MLP on the test set

# %%
probabilities = engine.predict_proba(mlp, test.tensors()[0]).numpy()
mlp_summary = classification_summary(test.y, probabilities.argmax(1))
print(f"MLP test accuracy: {mlp_summary['accuracy']:.3f} on {mlp_summary['n']} images")
show(plots.confusion_matrix(np.array(mlp_summary["confusion_matrix"]),
                            title="MLP confusion matrix (test)"), "mlp_confusion_matrix.png")

# %% [markdown]
# Ten random test images with the probability the MLP gives each digit
# (green: the true digit; red: a wrong top guess).

# %%
picked = rng.choice(len(test), size=min(10, len(test)), replace=False)
show(plots.probability_examples(split["x_test"][picked], probabilities[picked], test.y[picked],
                                title="MLP predictions on random test images"),
     "mlp_test_examples.png")

# %% [markdown]
# ## The ladder
#
# Every rung is scored on the same test images; the learned models fit the same
# rows (K-Means ignores their labels except to name its clusters by Hungarian
# matching). The MLP trained above is reused; the CNN trains with the same
# settings.

# %%
ladder = run_ladder(fit_part, val_part, test, seed, recipe,
                    trained={"MLP 72-20-10-10": (mlp, history)}, device=device, progress=True)
table = pd.DataFrame({"test accuracy": ladder.accuracy}).rename_axis("model")
table

# %%
show(plots.bar_chart(ladder.accuracy, "Mini MNIST ladder (test accuracy)"), "ladder.png")

# %%
metrics = {**ladder.as_metrics(), "mlp": mlp_summary, "mlp_history": history.as_dict(),
           "cnn_history": ladder.histories["CNN"].as_dict()}
save_metrics(out / "ladder.json", metrics, seed=seed,
             config={"quick": quick, "train": recipe.as_dict(), "validation_fraction": 0.2,
                     **devices.describe(device)},
             data={"train_rows": len(train), "test_rows": len(test), "folder": paths.data_dir()})
print("written:", out / "ladder.json")

# %% [markdown]
# ## Conclusion

# %%
a = ladder.accuracy
print(" | ".join(f"{rung} {a[rung]:.3f}" for rung in RUNGS))
print(f"The 72-20-10-10 MLP reaches {a['MLP 72-20-10-10']:.1%} test accuracy on "
      f"{len(test)} test images, against {a['chance']:.1%} for chance, "
      f"{a['K-Means (Hungarian)']:.1%} for K-Means and {a['logistic regression']:.1%} for "
      f"logistic regression; the small CNN reaches {a['CNN']:.1%}.")
print("Ladder ordered chance < K-Means < logistic <= MLP <= CNN:", ladder.ordered)
