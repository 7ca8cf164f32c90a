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
# Day 4 of the learning journal: no framework, every step written out.
#
# * logits `z = W x + b`, with `W` of shape (10, 784): one row per digit;
# * probabilities `p = softmax(z)`, computed stably by subtracting `max(z)`;
# * loss: the cross-entropy `-log p[target]`;
# * gradient: `dz = p` with `dz[target] -= 1`, so `dW` is the outer product
#   `dz x^T` and `db = dz`;
# * mini-batch stochastic gradient descent, keeping the weights of the epoch
#   with the lowest validation loss and stopping when it no longer falls.
#
# Each row of `W` is a 28 x 28 template that the model matches digits against,
# so it can be drawn as an image. Then the same recipe with one hidden ReLU layer
# (a small MLP, backpropagation by hand). Outputs go to `results/mnist/numpy/`.
#
# Default mode trains on all training images (seconds per model); `quick=True`
# uses 300 of them and a few epochs.

# %% tags=["parameters"]
quick = False  # the smoke preset (digitlab.pipeline.smoke): runs in seconds (used by the tests)
seed = 0  # fixes the initial weights and the order of the mini-batches
epochs = 50  # passes over the training set for softmax regression (at most)
lr = 0.1  # the SGD step size of softmax regression
batch_size = 64  # images per gradient step
patience = 10  # early stopping: epochs without a lower validation loss
mlp_hidden = 128  # ReLU units in the MLP's hidden layer
mlp_epochs = 60  # passes over the training set for the MLP (at most)
mlp_lr = 0.1  # the MLP's SGD step size
mlp_batch_size = 64  # images per gradient step of the MLP
# where and how it runs (make passes these)
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)

# %% [markdown]
# ## Setup

# %%
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from digitlab import paths, plots
from digitlab.data.sources import load_mnist
from digitlab.metrics import classification_summary
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import atomic_target, save_figure, save_metrics, set_seed

set_seed(seed)
rng = np.random.default_rng(seed)
threadpool_limits(1, "blas")  # these matrix products are small: a second BLAS thread only
# waits, and on a busy machine makes them many times slower
out = paths.mnist_results() / "numpy"
if quick:  # a few more epochs than the torch notebooks: 300 digits are 5 mini-batches
    epochs, mlp_epochs = 20, SMOKE.curve_epochs

# %% [markdown]
# ## Prepare the data
#
# Each image becomes a row of 784 pixel values scaled to [0, 1]; labels stay
# integers (the one-hot vectors appear only inside the gradient).

# %%
def features(images):
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


splits = load_mnist(source, data_dir, seed=seed)
if quick:
    splits = SMOKE.splits(splits)
x_train, y_train = features(splits.train_images), splits.train_labels
x_val, y_val = features(splits.val_images), splits.val_labels
x_test, y_test = features(splits.test_images), splits.test_labels
print(splits.description)
print(f"x_train {x_train.shape}, x_val {x_val.shape}, x_test {x_test.shape}")

# %% [markdown]
# ## The model and its loss, for one image
#
# `softmax` subtracts the largest logit before `np.exp`: the result is the same
# (the factor cancels in the ratio) and `exp` cannot overflow. With `W` near
# zero every class gets probability about 0.1, so the first loss is close to
# `log 10 = 2.303`.

# %%
def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


W = rng.normal(0.0, 0.01, (10, 784))
b = np.zeros(10)

x, target = x_train[0], y_train[0]
z = W @ x + b
p = softmax(z)
print("logits:       ", np.round(z, 3))
print("probabilities:", np.round(p, 3))
print(f"target {target}: loss -log p[target] = {-np.log(p[target]):.4f} "
      f"(log 10 = {np.log(10):.4f})")

# %% [markdown]
# ## The gradient by hand
#
# For softmax followed by cross-entropy, the derivative of the loss with respect
# to the logits is `p - onehot(target)`: copy `p` and subtract 1 at the target.
# The loss pushes the target's logit up and every other logit down, each in
# proportion to the probability it wrongly received. Since `z = W x + b`, the
# gradient of `W` is the outer product `dz[:, np.newaxis] * x[np.newaxis, :]`:
# row `k` of `dW` is `x` scaled by `dz[k]`, so only the pixels with ink in this
# image change the weights.

# %%
dz = p.copy()
dz[target] -= 1
dW = dz[:, np.newaxis] * x[np.newaxis, :]  # (10, 1) * (1, 784) -> (10, 784)
db = dz
print("dz:", np.round(dz, 3))
print(f"dW {dW.shape}: non-zero columns {np.count_nonzero(dW.any(axis=0))} "
      f"(the image has {np.count_nonzero(x)} inked pixels)")

# %% [markdown]
# A mini-batch does the same for `n` rows at once and averages: stacking the
# `dz` of each image as the rows of `dZ`, the sum of the outer products is one
# matrix product, `dZ.T @ X`.

# %%
def softmax_regression(params, x):
    return x @ params["W"].T + params["b"]


def cross_entropy(p, y):
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def softmax_regression_gradients(params, x, y):
    """Mean cross-entropy and its gradients for a mini-batch (rows of x)."""
    p = softmax(softmax_regression(params, x))
    dz = p.copy()
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    return cross_entropy(p, y), {"W": dz.T @ x, "b": dz.sum(axis=0)}


params = {"W": W, "b": b}
loss, grads = softmax_regression_gradients(params, x_train[:1], y_train[:1])
assert np.allclose(grads["W"], dW) and np.allclose(grads["b"], db)  # one image: as above
loss, grads = softmax_regression_gradients(params, x_train[:256], y_train[:256])
print(f"loss on 256 images {loss:.4f}")

# %% [markdown]
# ## Check the gradient before trusting it
#
# A central finite difference, `(L(w + eps) - L(w - eps)) / 2 eps`, estimates
# each derivative from the loss alone; the hand gradient must agree to many
# digits, or `check_gradients` stops the notebook here, before any training on
# a wrong gradient.
#
# These functions live here and nowhere else: this notebook is where the NumPy
# models are defined and trained. `tests/test_mnist_notebook_definitions.py`
# checks the unedited cells against PyTorch autograd.

# %%
def finite_difference(gradients, params, x, y, name, index, eps=1e-6):
    shifted = {k: v.copy() for k, v in params.items()}
    shifted[name][index] += eps
    up, _ = gradients(shifted, x, y)
    shifted[name][index] -= 2 * eps
    down, _ = gradients(shifted, x, y)
    return (up - down) / (2 * eps)


def check_gradients(gradients, params, x, y, entries):
    _, grads = gradients(params, x, y)
    for name, index in entries:
        estimate = finite_difference(gradients, params, x, y, name, index)
        print(f"d loss / d {name}{list(index)}: by hand {grads[name][index]:+.8f}, "
              f"finite difference {estimate:+.8f}")
        assert np.isclose(grads[name][index], estimate, rtol=1e-4, atol=1e-8)


check_gradients(softmax_regression_gradients, params, x_train[:256], y_train[:256],
                [("W", (3, 300)), ("W", (7, 400)), ("W", (0, 350)), ("b", (5,))])


# %% [markdown]
# ## Mini-batch stochastic gradient descent
#
# Each epoch shuffles the training rows and walks through them in mini-batches:
# compute the gradient on the batch, move every parameter a step `lr` against
# it. After each epoch the loss and accuracy are measured on the training and
# validation sets. The parameters of the epoch with the lowest validation loss
# are kept, and training stops after `patience` epochs without a lower one.
# The same loop trains the MLP further down: it only needs the model's forward
# pass and its gradient function.

# %%
def loss_and_accuracy(forward, params, x, y):
    p = softmax(forward(params, x))
    return cross_entropy(p, y), float((p.argmax(axis=1) == y).mean())


def sgd(forward, gradients, params, lr, epochs, batch_size, desc):
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [],
               "epoch_seconds": [], "best_epoch": 0, "stopped_early": False}
    order_rng = np.random.default_rng(seed)
    best_loss, best_params, waited = np.inf, None, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", leave=False)
    for epoch in bar:
        start = time.perf_counter()
        order = order_rng.permutation(len(y_train))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            _, grads = gradients(params, x_train[batch], y_train[batch])
            for name in params:
                params[name] -= lr * grads[name]
        history["epoch_seconds"].append(time.perf_counter() - start)
        for split, (x, y) in (("train", (x_train, y_train)), ("val", (x_val, y_val))):
            loss, acc = loss_and_accuracy(forward, params, x, y)
            history[f"{split}_loss"].append(loss)
            history[f"{split}_acc"].append(acc)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                        val_acc=f"{history['val_acc'][-1]:.3f}")
        if history["val_loss"][-1] < best_loss:
            best_loss, waited, history["best_epoch"] = history["val_loss"][-1], 0, epoch
            best_params = {k: v.copy() for k, v in params.items()}
        else:
            waited += 1
            if waited >= patience:
                history["stopped_early"] = True
                break
    params.update(best_params)
    history["val_accuracy"] = history["val_acc"][history["best_epoch"] - 1]
    return history


# %%
softmax_params = {"W": rng.normal(0.0, 0.01, (10, 784)), "b": np.zeros(10)}
history = sgd(softmax_regression, softmax_regression_gradients, softmax_params, lr, epochs,
              batch_size, desc="softmax regression")
print(f"{len(history['val_loss'])} epochs run, best epoch {history['best_epoch']}, "
      f"stopped early: {history['stopped_early']}")
print(f"validation accuracy at the best epoch: {history['val_accuracy']:.4f}")

# %%
save_figure(plots.learning_curves({"softmax regression": history},
                                  title="NumPy softmax regression, mini-batch SGD"),
            out / "softmax_learning_curves.png")

# %% [markdown]
# ## The rows of W as images
#
# Row `d` of `W` holds one weight per pixel: reshaped to 28 x 28, it shows which
# pixels raise the score of digit `d` (red) and which lower it (blue). The
# templates look like blurred digits, with blue where other digits put ink.

# %%
templates = [softmax_params["W"][d].reshape(28, 28) for d in range(10)]
save_figure(plots.signed_image_grid(np.stack(templates), titles=[f"W[{d}]" for d in range(10)],
                                    ncols=5, cell=1.4,
                                    suptitle="Softmax regression weights, one row per digit"),
            out / "softmax_weights.png")

# %% [markdown]
# ## A small MLP with hand-written backpropagation
#
# One hidden layer of ReLU units: `h = relu(W1 x + b1)`, `z = W2 h + b2`. The
# backward pass starts from the same `dz = p - onehot(y)`, gives `W2` the outer
# products with `h`, sends `dz` back through `W2` to get `dh`, and keeps it only
# where the ReLU was active (its slope is 1 there, 0 elsewhere). He
# initialisation (standard deviation `sqrt(2 / inputs)`) keeps the ReLU
# activations in range. The same finite-difference check as above, on a few
# entries of each parameter.

# %%
def mlp(params, x):
    h = np.maximum(x @ params["W1"].T + params["b1"], 0.0)
    return h @ params["W2"].T + params["b2"]


def mlp_gradients(params, x, y):
    pre = x @ params["W1"].T + params["b1"]
    h = np.maximum(pre, 0.0)
    p = softmax(h @ params["W2"].T + params["b2"])
    dz = p.copy()
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dh = dz @ params["W2"]
    dpre = dh * (pre > 0)
    grads = {"W1": dpre.T @ x, "b1": dpre.sum(axis=0), "W2": dz.T @ h, "b2": dz.sum(axis=0)}
    return cross_entropy(p, y), grads


mlp_params = {"W1": rng.normal(0.0, np.sqrt(2 / 784), (mlp_hidden, 784)),
              "b1": np.zeros(mlp_hidden),
              "W2": rng.normal(0.0, np.sqrt(1 / mlp_hidden), (10, mlp_hidden)),
              "b2": np.zeros(10)}
check_gradients(mlp_gradients, mlp_params, x_train[:64], y_train[:64],
                [("W1", (0, 350)), ("b1", (1,)), ("W2", (4, 2)), ("b2", (7,))])

# %%
mlp_history = sgd(mlp, mlp_gradients, mlp_params, mlp_lr, mlp_epochs, mlp_batch_size,
                  desc="numpy MLP")
print(f"{len(mlp_history['val_loss'])} epochs run, best epoch {mlp_history['best_epoch']}, "
      f"stopped early: {mlp_history['stopped_early']}")

# %%
save_figure(plots.learning_curves({"softmax regression": history,
                                   f"MLP ({mlp_hidden} ReLU)": mlp_history},
                                  title="NumPy models: training (dashed) and validation (solid)"),
            out / "numpy_learning_curves.png")

# %% [markdown]
# ## Test set
#
# Both models were chosen (best epoch) on the validation set; the test set is
# used here once. The predicted digit is the one with the largest logit.

# %%
scores = {}
for name, forward, fitted, hist in (("softmax regression", softmax_regression, softmax_params,
                                     history),
                                    ("MLP", mlp, mlp_params, mlp_history)):
    predicted = forward(fitted, x_test).argmax(axis=1)
    summary = classification_summary(y_test, predicted)
    scores[name] = {"test_accuracy": float((predicted == y_test).mean()),
                    "test_macro_f1": summary["macro_f1"], "val_accuracy": hist["val_accuracy"]}
table = pd.DataFrame(scores).T
table

# %%
def record(hist):
    return {"epochs_run": len(hist["val_loss"]), "best_epoch": hist["best_epoch"],
            "stopped_early": hist["stopped_early"]}


metrics_path = save_metrics(out / "metrics.json", {
    "softmax_regression": {**scores["softmax regression"], **record(history)},
    "mlp": {**scores["MLP"], **record(mlp_history)},
}, seed=seed, config={"source": source, "data_dir": data_dir, "quick": quick, "epochs": epochs,
                      "lr": lr, "batch_size": batch_size, "patience": patience,
                      "mlp_hidden": mlp_hidden, "mlp_epochs": mlp_epochs, "mlp_lr": mlp_lr,
                      "mlp_batch_size": mlp_batch_size},
   data=splits.summary(), histories={"softmax_regression": history, "mlp": mlp_history})
with atomic_target(out / "weights.npz") as tmp:  # the kept parameters, to check or reuse
    np.savez(tmp, **{f"softmax_{k}": v for k, v in softmax_params.items()},
             **{f"mlp_{k}": v for k, v in mlp_params.items()})

# %% [markdown]
# ## Conclusion

# %%
soft, deep = scores["softmax regression"], scores["MLP"]
print(f"Data: {splits.description}.")
for name, hist in (("Softmax regression", history), ("The MLP", mlp_history)):
    how = ("stopped early" if hist["stopped_early"]
           else "reached the epoch cap with the validation loss still falling"
           if hist["best_epoch"] == len(hist["val_loss"]) else "reached the epoch cap")
    print(f"{name} ran {len(hist['val_loss'])} epochs and {how}; best epoch {hist['best_epoch']}.")
print(f"Softmax regression (784 x 10 weights, mini-batch SGD): test accuracy "
      f"{soft['test_accuracy']:.4f}.")
print(f"NumPy MLP (one hidden layer of {mlp_hidden} ReLUs): test accuracy "
      f"{deep['test_accuracy']:.4f}, {deep['test_accuracy'] - soft['test_accuracy']:+.4f} "
      "against the linear model.")
print("The journal published no accuracy for its NumPy models; it stopped training by hand "
      "once the loss was low enough.")
