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
# # MNIST 3: softmax regression from scratch in NumPy
#
# No framework: the model, its loss and its gradient are written out in
# `digitlab/mnist/numpy_models.py`, and this notebook walks through them.
#
# * logits `z = W x + b`, with `W` of shape (10, 784): one row per digit;
# * probabilities `p = softmax(z)`, computed stably by subtracting `max(z)`;
# * loss: the cross-entropy `-log p[y]`, averaged over the batch;
# * gradient: `dL/dz = p - onehot(y)`, so `dL/dW = (p - onehot(y)) x^T` (an outer
#   product per sample, summed) and `dL/db = p - onehot(y)`;
# * batch gradient descent, stopped early when the validation loss stops falling.
#
# Each row of `W` is a 28 x 28 template that the model matches digits against,
# so it can be drawn as an image. Then the same recipe with one hidden ReLU layer
# (a small MLP, backpropagation by hand). `tests/test_numpy_models.py` checks all
# these gradients against PyTorch autograd. Outputs go to `results/mnist/numpy/`.
#
# Default mode trains on all training images (a few seconds per model);
# `quick=True` uses 500 of them and a few epochs.

# %% tags=["parameters"]
quick = False  # the smoke preset (digitlab.pipeline.smoke): runs in seconds (used by the tests)
seed = 0
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
epochs = 300  # batch gradient descent steps for softmax regression (at most)
lr = 1.0
patience = 10  # early stopping: epochs without a lower validation loss
mlp_hidden = 128
mlp_epochs = 60
mlp_lr = 0.1
mlp_batch_size = 64

# %% [markdown]
# ## Setup

# %%
import numpy as np
import pandas as pd

from digitlab import paths, plots
from digitlab.data.sources import load_mnist
from digitlab.metrics import classification_summary
from digitlab.mnist import numpy_models as nm
from digitlab.pipeline.notebooks import figure_saver
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import atomic_target, save_metrics, set_seed

set_seed(seed)
out = paths.mnist_results() / "numpy"
if quick:  # the NumPy softmax is cheap: fewer epochs would not show it learning
    epochs, mlp_epochs = 15, SMOKE.curve_epochs

show = figure_saver(out)  # saves each figure under out/ and displays it


# %% [markdown]
# ## Prepare the data
#
# Each image becomes a row of 784 pixel values scaled to [0, 1]; labels stay
# integers (the one-hot vectors appear only inside the gradient).

# %%
splits = load_mnist(source, data_dir, seed=seed)
if quick:
    splits = SMOKE.splits(splits)
x_train, y_train = nm.pixels_to_features(splits.train_images), splits.train_labels
x_val, y_val = nm.pixels_to_features(splits.val_images), splits.val_labels
x_test, y_test = nm.pixels_to_features(splits.test_images), splits.test_labels
print(splits.description)
print(f"x_train {x_train.shape}, x_val {x_val.shape}, x_test {x_test.shape}")

# %% [markdown]
# ## One forward pass and its gradient, by hand
#
# With `W` near zero every class gets probability about 0.1, so the first loss
# is close to `log 10 = 2.303`. A finite-difference check on a few weights
# confirms the hand gradient before any training.

# %%
model = nm.SoftmaxRegression(n_features=x_train.shape[1], seed=seed)
z = model.logits(x_train[:1])
print("logits of the first image:", np.round(z[0], 3))
print("probabilities:", np.round(nm.softmax(z)[0], 3))
loss, grads = model.loss_and_gradients(x_train[:256], y_train[:256])
print(f"initial loss {loss:.4f} (log 10 = {np.log(10):.4f})")

eps, rows = 1e-6, [(3, 300), (7, 400), (0, 350)]
for row, col in rows:
    params = {k: v.copy() for k, v in model.params.items()}
    params["W"][row, col] += eps
    up, _ = nm.softmax_regression_gradients(params, x_train[:256], y_train[:256])
    params["W"][row, col] -= 2 * eps
    down, _ = nm.softmax_regression_gradients(params, x_train[:256], y_train[:256])
    print(f"dL/dW[{row},{col}]: hand {grads['W'][row, col]:+.6f}, "
          f"finite difference {(up - down) / (2 * eps):+.6f}")

# %% [markdown]
# ## Batch gradient descent with early stopping
#
# Every epoch is one step on the gradient of the whole training set. Training
# stops when the validation loss has not improved for `patience` epochs, and the
# weights of the best epoch are kept.

# %%
history = nm.fit(model, (x_train, y_train), (x_val, y_val), lr=lr, epochs=epochs,
                 patience=patience, seed=seed, desc="softmax regression")
print(f"{len(history.val_loss)} epochs run, best epoch {history.best_epoch}, "
      f"stopped early: {history.stopped_early}")
print(f"validation accuracy at the best epoch: {history.val_accuracy:.4f}")

# %%
show(plots.learning_curves({"softmax regression": history},
                           title="NumPy softmax regression, batch gradient descent"),
     "softmax_learning_curves.png")

# %% [markdown]
# ## The rows of W as images
#
# Red pixels raise the score of a digit, blue pixels lower it. The templates
# look like blurred digits, with blue where other digits put ink.

# %%
show(plots.signed_image_grid(model.params["W"].reshape(10, 28, 28),
                             titles=[f"W[{d}]" for d in range(10)], ncols=5, cell=1.4,
                             suptitle="Softmax regression weights, one row per digit"),
     "softmax_weights.png")

# %% [markdown]
# ## A small MLP with hand-written backpropagation
#
# One hidden layer of ReLU units: `h = relu(W1 x + b1)`, `z = W2 h + b2`. The
# backward pass reuses `dz = p - onehot(y)`, sends it back through `W2`, and
# keeps it only where the ReLU was active. Mini-batch gradient descent this time.

# %%
mlp = nm.NumpyMLP(n_features=x_train.shape[1], n_hidden=mlp_hidden, seed=seed)
mlp_history = nm.fit(mlp, (x_train, y_train), (x_val, y_val), lr=mlp_lr, epochs=mlp_epochs,
                     batch_size=mlp_batch_size, patience=patience, seed=seed, desc="numpy MLP")
print(f"{len(mlp_history.val_loss)} epochs run, best epoch {mlp_history.best_epoch}, "
      f"stopped early: {mlp_history.stopped_early}")

# %%
show(plots.learning_curves({"softmax regression": history, f"MLP ({mlp_hidden} ReLU)": mlp_history},
                           title="NumPy models: training (dashed) and validation (solid)"),
     "numpy_learning_curves.png")

# %% [markdown]
# ## Test set
#
# Both models were chosen (best epoch) on the validation set; the test set is
# used here once.

# %%
scores = {}
for name, fitted in (("softmax regression", model), ("MLP", mlp)):
    summary = classification_summary(y_test, fitted.predict(x_test))
    scores[name] = {"test_accuracy": summary["accuracy"], "test_macro_f1": summary["macro_f1"],
                    "val_accuracy": (history if fitted is model else mlp_history).val_accuracy}
table = pd.DataFrame(scores).T
table

# %%
metrics_path = save_metrics(out / "metrics.json", {
    "softmax_regression": {**scores["softmax regression"], "epochs_run": len(history.val_loss),
                           "best_epoch": history.best_epoch,
                           "stopped_early": history.stopped_early},
    "mlp": {**scores["MLP"], "epochs_run": len(mlp_history.val_loss),
            "best_epoch": mlp_history.best_epoch, "stopped_early": mlp_history.stopped_early},
}, seed=seed, config={"source": source, "data_dir": data_dir, "quick": quick, "epochs": epochs,
                      "lr": lr,
                      "patience": patience, "mlp_hidden": mlp_hidden, "mlp_epochs": mlp_epochs,
                      "mlp_lr": mlp_lr, "mlp_batch_size": mlp_batch_size},
   data=splits.summary(), histories={"softmax_regression": history.as_dict(),
                                     "mlp": mlp_history.as_dict()})
with atomic_target(out / "weights.npz") as tmp:  # the kept parameters, to check or reuse
    np.savez(tmp, **{f"softmax_{k}": v for k, v in model.params.items()},
             **{f"mlp_{k}": v for k, v in mlp.params.items()})

# %% [markdown]
# ## Conclusion

# %%
soft, deep = scores["softmax regression"], scores["MLP"]
print(f"Data: {splits.description}.")
for name, hist in (("Softmax regression", history), ("The MLP", mlp_history)):
    how = ("stopped early" if hist.stopped_early
           else "reached the epoch cap with the validation loss still falling")
    print(f"{name} ran {len(hist.val_loss)} epochs and {how}; best epoch {hist.best_epoch}.")
print(f"Softmax regression (784 x 10 weights, batch gradient descent): test accuracy "
      f"{soft['test_accuracy']:.4f}.")
print(f"NumPy MLP (one hidden layer of {mlp_hidden} ReLUs): test accuracy "
      f"{deep['test_accuracy']:.4f}, {deep['test_accuracy'] - soft['test_accuracy']:+.4f} "
      "against the linear model.")
