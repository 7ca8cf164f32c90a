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
# # MNIST 2: a first convolutional network
#
# Two small CNNs built from the same block, convolution -> ReLU -> 2x2 max-pool:
#
# * `cnn2`: two blocks (28 -> 14 -> 7 pixels), flatten, one linear layer;
# * `cnn3`: three blocks (28 -> 14 -> 7 -> 3), flatten, one linear layer.
#
# Both return logits; training minimises their cross-entropy with Adam using the
# project's one training loop, `digitlab.engine.fit`. Accuracy is measured with
# the network in `eval()` mode and gradients off (`torch.no_grad()`), and the
# better network is saved as a checkpoint: weights, architecture, data source and
# metrics in one file, reloaded at the end to check that it predicts the same.
#
# Default mode trains each network for 2 epochs on all training images (on one
# thread for the embedded subset, every core for the full MNIST); `quick=True` uses 300 images and one epoch. Outputs
# go to `results/mnist/first_cnn/` and `models/mnist_first_cnn.pt`.

# %% tags=["parameters"]
quick = False  # the smoke preset (digitlab.pipeline.smoke): runs in seconds (used by the tests)
seed = 0
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
epochs = 2
batch_size = 64
lr = 1e-3
threads = None  # CPU threads, 0: one per core; None: 1 on the embedded digits (faster on a
# shared 2-core machine), one per core at full scale (digitlab.pipeline.scale)
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU

# %% [markdown]
# ## Setup

# %%
import torch

import digitlab.architectures  # noqa: F401  (every track's networks, by name)
from digitlab import devices, paths, plots
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import as_tensors
from digitlab.engine import NetworkSpec, Recipe, count_parameters, fit, load_checkpoint
from digitlab.engine.checkpoint import save_checkpoint_and_metrics
from digitlab.pipeline.published import PUBLISHED
from digitlab.pipeline.scale import scale_name, sized
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import metrics_document, save_figure, set_seed

set_seed(seed)
device = devices.resolve(device)
out = paths.mnist_results() / "first_cnn"
checkpoint_path = paths.models_dir() / "mnist_first_cnn.pt"
if quick:
    epochs = SMOKE.epochs

# %% [markdown]
# ## Prepare the data
#
# `as_tensors` turns uint8 images into float tensors of shape `(N, 1, 28, 28)`
# (one channel), normalised with the MNIST mean and standard deviation.
# `cross_entropy` takes integer labels directly, so no one-hot encoding is needed.

# %%
splits = load_mnist(source, data_dir, seed=seed)
if quick:
    splits = SMOKE.splits(splits)
train = as_tensors(splits.train_images, splits.train_labels)
val = as_tensors(splits.val_images, splits.val_labels)
n_digits = len(splits.train_labels) + len(splits.val_labels)
threads = devices.set_threads(sized(threads, 1, 0, n_digits) or None, device)
print(splits.description)
print(f"train {tuple(train[0].shape)}, validation {tuple(val[0].shape)}; {scale_name(n_digits)}: "
      f"{epochs} epoch(s), {threads or 'GPU'} thread(s)")

# %% [markdown]
# ## Build the networks

# %%
# Each network starts from the same seed, whichever is built first.
networks = {name: NetworkSpec(name).build(seed) for name in ("cnn2", "cnn3")}
for name, net in networks.items():
    print(f"{name}: {count_parameters(net):,} parameters\n{net}\n")

# %% [markdown]
# ## Train
#
# A `Recipe` says how to train: here Adam at a constant learning rate, mini-batches
# of 64, a few epochs. Each epoch visits every training image once in shuffled
# mini-batches: forward pass, cross-entropy loss, `loss.backward()`,
# `optimizer.step()`. `fit` also scores the validation set after every epoch and
# keeps the weights of the epoch with the lowest validation loss.

# %%
recipe = Recipe(optimizer="adam", lr=lr, epochs=epochs, batch_size=batch_size)
histories = {}
for name, net in networks.items():
    set_seed(seed)
    histories[name] = fit(net, recipe, train, val, seed=seed, device=device, desc=name)
    print(f"{name}: {histories[name].train_seconds:.1f} s, "
          f"validation accuracy per epoch {[round(a, 4) for a in histories[name].val_acc]}")

# %%
save_figure(plots.learning_curves(histories, title="First CNNs: 2 and 3 conv blocks"),
            out / "learning_curves.png")

# %% [markdown]
# ## Accuracy, the explicit way
#
# `eval()` switches layers such as dropout and batch-norm to inference
# behaviour; `torch.no_grad()` skips building the autograd graph, which saves
# memory and time when only predictions are needed.

# %%
accuracy = {}
for name, net in networks.items():
    net.eval()
    with torch.no_grad():
        predicted = net(val[0].to(device)).argmax(dim=1).cpu()
    accuracy[name] = (predicted == val[1]).float().mean().item()
    print(f"{name}: validation accuracy {accuracy[name]:.4f}")

# %% [markdown]
# ## Save a checkpoint, then load it back
#
# The better network on the validation set is saved with everything needed to
# rebuild it, together with this notebook's `metrics.json` (written as a pair:
# an interrupted run never leaves a new model beside old metrics);
# `load_checkpoint` then rebuilds it from the file alone, in eval mode.

# %%
chosen = max(accuracy, key=accuracy.get)
report = {name: {"val_acc": accuracy[name], "parameters": count_parameters(networks[name]),
                 "train_seconds": histories[name].train_seconds}
          for name in networks} | {"chosen": chosen, "checkpoint": str(checkpoint_path)}
save_checkpoint_and_metrics(
    checkpoint_path, networks[chosen], NetworkSpec(chosen), data=splits.summary(),
    metrics={"val_acc": accuracy[chosen]}, extra={"recipe": recipe.as_dict(), "seed": seed},
    metrics_path=out / "metrics.json",
    document=metrics_document(report, seed=seed, data=splits.summary(),
                              config={"source": source, "data_dir": data_dir, "quick": quick,
                                      **recipe.as_dict(), **devices.describe(device)},
                              histories={k: h.as_dict() for k, h in histories.items()}))
restored, info = load_checkpoint(checkpoint_path, device)
with torch.no_grad():  # the very same logits, not only the same top digit
    same = torch.equal(restored(val[0].to(device)), networks[chosen](val[0].to(device)))
print(f"saved {chosen} to {checkpoint_path}; reloaded arch {info['arch']!r}, "
      f"data source {info['data']['source']!r}, identical logits: {same}")

# %% [markdown]
# ## Conclusion

# %%
print(f"Data: {splits.description}.")
for name in networks:
    print(f"{name}: {count_parameters(networks[name]):,} parameters, validation accuracy "
          f"{accuracy[name]:.4f} after {epochs} epoch(s) "
          f"({histories[name].train_seconds:.1f} s of training).")
# The learning journal's 2- and 3-conv CNNs on the full MNIST (their test accuracy, after more
# epochs); ours are validation accuracies after the epochs above, comparable in kind only when
# the data above is the full MNIST.
print("Journal, full MNIST test set: " + ", ".join(f"{name} {PUBLISHED[name]:.2%}"
                                                   for name in networks) + ".")
print(f"{chosen} was saved to {checkpoint_path} and reloads with identical logits: {same}.")
