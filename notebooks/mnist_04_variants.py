# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MNIST 4: CNN variants x optimisers
#
# Day 5 of the learning journal: its CNN (two conv -> ReLU -> max-pool blocks,
# a fully connected ReLU layer of 128 units, the output layer) in four variants,
# each trained with three optimisers, from the same seed and for the same
# number of epochs:
#
# | variant | what changes |
# | --- | --- |
# | plain | nothing: the network above |
# | dropout | `nn.Dropout(p=0.3)` after every ReLU: each convolution's and the fully connected layer's, as in the journal |
# | batch-norm | `nn.BatchNorm2d` after every convolution, before its ReLU |
# | dropout + batch-norm | both |
#
# Optimisers: SGD (Nesterov momentum 0.9, lr 0.05), Adam (lr 0.001), RMSprop
# (lr 0.001), all at a constant learning rate; with `settings = "journal"`, the
# rates `make reproduce` chose on the validation digits (SGD 0.01 with classic
# momentum 0.9, Adam 0.001, RMSprop 0.0003; docs/fullscale.md). Two numbers summarise each run:
#
# * **validation accuracy**: the accuracy of the weights that were kept, those of
#   the epoch with the lowest validation loss (as everywhere in the project);
# * **epochs to converge**: the first epoch whose validation accuracy is within
#   0.5 percentage points of that run's best (`digitlab.mnist.variants.epochs_to_converge`).
#
# The notebook builds the networks and the optimisers, trains one run with an
# explicit loop, then hands the twelve runs, the same loop each, to the
# engine's study, which can spread them over worker processes. To keep the twelve
# runs to a few minutes on 2 cores, the network is narrow (`widths` 8 and 16
# channels instead of the journal's 32 and 64) and each run gets 10 epochs on
# all training images of the embedded subset, 4 on the full MNIST
# (docs/fullscale.md), where the journal trained for 15 (`settings = "journal"`
# sets its 15 epochs and widths 32 and 64); `quick=True` uses 300 images and 2
# epochs. Every run's metrics and history go to
# `results/mnist/variants/runs/`, the table and figures to `results/mnist/variants/`.

# %% tags=["parameters"]
quick = False  # the smoke preset (digitlab.pipeline.smoke): runs in seconds (used by the tests)
seed = 0
settings = "pipeline"  # "journal": its 15 epochs and widths 32 and 64 (slow on a CPU)
epochs = None  # per run; None: 10 on the embedded digits, 4 at full scale (the journal: 15)
widths = [8, 16]  # channels of the two convolutions (the journal: 32 and 64)
hidden = 128  # units of the fully connected layer every variant has
dropout = 0.3  # the dropout variants' probability
batch_size = 64
# where and how it runs (make passes these)
source = "auto"  # auto, local, download or embedded
data_dir = None  # an MNIST-format folder for source local or auto (None: data/raw/mnist)
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU
threads = None  # torch threads per run, 0: one per core; None: chosen from the data's size
workers = 1  # local worker processes for the twelve runs ("auto": one per core or GPU)
scheduler = None  # or a Dask scheduler's address, "tcp://host:8786", to run them on a cluster
fresh = False  # True: retrain every run, even those stored by an earlier run of the same code

# %% [markdown]
# ## Setup
#
# The MNIST source in use (quick mode: a few hundred digits); the epochs and the
# torch threads of each run follow from its size (`digitlab/pipeline/scale.py`).

# %%
import copy
import hashlib
import inspect
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from digitlab import devices, paths, plots
from digitlab.data.sources import load_mnist
from digitlab.data.transforms import MNIST_MEAN, MNIST_STD
from digitlab.engine.parallel import Cell, Execution, fingerprint_arrays, function_digest, run_study
from digitlab.mnist.variants import CONVERGENCE_TOLERANCE, epochs_to_converge
from digitlab.pipeline.published import PUBLISHED
from digitlab.pipeline.scale import run_threads, scale_name, sized
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_figure, save_metrics, set_seed

set_seed(seed)
device = devices.resolve(device)
devices.make_deterministic(device)
out = paths.mnist_results() / "variants"
splits = load_mnist(source, data_dir, seed=seed)
if quick:
    splits = SMOKE.splits(splits)
n_digits = len(splits.train_labels) + len(splits.val_labels)
if settings == "journal":
    epochs, widths = 15, [32, 64]
# 4 epochs of the full set are about 6 times the digits of 10 epochs of the embedded 3,500,
# and the journal's best run converged within 4.
epochs = SMOKE.curve_epochs if quick else sized(epochs, 10, 4, n_digits)  # a curve: 2 points
threads = run_threads(n_digits, device, workers=workers, scheduler=scheduler, threads=threads)

# %% [markdown]
# ## Prepare the data
#
# Pixels are scaled to [0, 1], then normalised with the MNIST mean and standard
# deviation, so that the inputs have about zero mean and unit variance; each
# image gets a channel axis, `(N, 1, 28, 28)`, the shape `nn.Conv2d` expects.
# Only the validation set is used here: the test set stays untouched for the
# CNN project (notebook 5).

# %%
def prepare(images, labels):
    """uint8 digits (N, 28, 28) -> normalised float32 (N, 1, 28, 28), and int64 labels."""
    x = torch.as_tensor(images, dtype=torch.float32) / 255.0
    x = (x - MNIST_MEAN) / MNIST_STD
    return x.unsqueeze(1), torch.as_tensor(labels, dtype=torch.int64)


train = prepare(splits.train_images, splits.train_labels)
val = prepare(splits.val_images, splits.val_labels)
print(f"{splits.description}; {scale_name(n_digits)}: {epochs} epochs per run, "
      f"{threads or 'GPU'} thread(s) per run")
print(f"training inputs {tuple(train[0].shape)}: mean {train[0].mean():.3f}, "
      f"std {train[0].std():.3f}; validation inputs {tuple(val[0].shape)}")

# %% [markdown]
# ## Build the four networks
#
# One function builds every variant: `batch_norm` puts `nn.BatchNorm2d` between
# each convolution and its ReLU (the convolution then needs no bias: batch norm
# adds its own shift), `dropout` puts `nn.Dropout` after every ReLU. Two 2 x 2
# max-pools take the 28 x 28 digit to 7 x 7 feature maps before the fully
# connected layers.
#
# *One definition.* This cell is the variants' network. The package's `cnn2`
# with the journal's options (`build_cnn("cnn2", **variant_options(variant))`
# in `digitlab/mnist/`) builds the same layers for scripts; a test
# (`tests/test_mnist_notebooks.py`) checks that this cell and the package give
# the same layers and weight shapes, so a change to one must go to the other.

# %%
def conv_block(c_in, c_out, batch_norm, dropout):
    """3 x 3 convolution (same padding) -> [BatchNorm2d] -> ReLU -> [Dropout] -> 2 x 2 max-pool."""
    layers = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def make_variant(batch_norm, dropout, widths=(32, 64), hidden=128):
    """The journal's CNN: two conv blocks (28 -> 14 -> 7), a fully connected ReLU layer, 10 logits."""
    c1, c2 = widths
    return nn.Sequential(
        conv_block(1, c1, batch_norm, dropout),
        conv_block(c1, c2, batch_norm, dropout),
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, hidden),
        nn.ReLU(),
        # Identity where no dropout goes keeps the output layer at the same index in every
        # variant, so one variant's saved weights name their layers as another's do.
        nn.Dropout(dropout) if dropout else nn.Identity(),
        nn.Linear(hidden, 10),
    )


VARIANTS = {
    "plain": {"batch_norm": False, "dropout": 0.0},
    "dropout": {"batch_norm": False, "dropout": dropout},
    "batch-norm": {"batch_norm": True, "dropout": 0.0},
    "dropout + batch-norm": {"batch_norm": True, "dropout": dropout},
}
for name, switches in VARIANTS.items():
    n_weights = sum(p.numel() for p in make_variant(**switches, widths=widths,
                                                    hidden=hidden).parameters())
    print(f"{name}: {n_weights:,} parameters")
print(make_variant(**VARIANTS["dropout + batch-norm"], widths=widths, hidden=hidden))

# %% [markdown]
# ## The three optimisers
#
# Each at its usual starting learning rate, kept constant, so that the
# optimisers, not learning-rate schedules, are compared.

# %%
LEARNING_RATES = {"SGD": 0.05, "Adam": 0.001, "RMSprop": 0.001}
NESTEROV = True
if settings == "journal":  # make reproduce's choice: runs/full-mnist/results/journal/reproduction.md
    LEARNING_RATES, NESTEROV = {"SGD": 0.01, "Adam": 0.001, "RMSprop": 0.0003}, False
OPTIMIZERS = list(LEARNING_RATES)


def make_optimizer(name, parameters):
    lr = LEARNING_RATES[name]
    if name == "SGD":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=NESTEROV)
    if name == "Adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "RMSprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    raise ValueError(f"unknown optimiser {name!r}; choose one of {OPTIMIZERS}")


for name in OPTIMIZERS:
    print(f"{name}: learning rate {LEARNING_RATES[name]:g}")

# %% [markdown]
# ## Train: the loop
#
# `train_epoch` is one pass over the training digits in a new random order:
# for each batch, the forward pass, the cross-entropy loss (log-softmax and
# negative log-likelihood in one call), `loss.backward()` for the gradients and
# `optimizer.step()` for the update. `evaluate` scores a set in `eval()` mode
# (dropout off, batch norm with its running statistics) under `torch.no_grad()`.

# %%
def train_epoch(model, optimizer, x, y, batch_size, generator):
    """One pass over (x, y) in a random order; the mean training loss and accuracy."""
    model.train()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        logits = model(x[batch])
        loss = F.cross_entropy(logits, y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(batch)
        correct += (logits.argmax(dim=1) == y[batch]).sum().item()
    return loss_sum / len(x), correct / len(x)


def evaluate(model, x, y, batch_size=1000):
    """The mean loss and the accuracy on (x, y)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size])
            labels = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
    return loss_sum / len(x), correct / len(x)


# %% [markdown]
# `fit` runs the epochs and keeps the weights of the epoch with the lowest
# validation loss.

# %%
def fit(model, optimizer, train, val, epochs, batch_size, seed, verbose=False):
    """Train for ``epochs``; keep the weights of the lowest validation loss; the history."""
    generator = torch.Generator().manual_seed(seed)  # the batch order, the same on any device
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [],
               "epoch_seconds": [], "best_epoch": 0}
    best_loss, best_weights = float("inf"), None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, *train, batch_size, generator)
        val_loss, val_acc = evaluate(model, *val)
        for key, value in (("train_loss", train_loss), ("train_acc", train_acc),
                           ("val_loss", val_loss), ("val_acc", val_acc),
                           ("epoch_seconds", time.perf_counter() - start)):
            history[key].append(value)
        if val_loss < best_loss:
            best_loss, history["best_epoch"] = val_loss, epoch
            best_weights = copy.deepcopy(model.state_dict())
        if verbose:
            print(f"epoch {epoch}: train loss {train_loss:.4f}, validation loss {val_loss:.4f}, "
                  f"validation accuracy {val_acc:.4f}")
    model.load_state_dict(best_weights)
    return history


# %% [markdown]
# ### One run, step by step: the journal's best, dropout + batch-norm with SGD

# %%
torch.manual_seed(seed)  # the initial weights and the dropout masks
model = make_variant(**VARIANTS["dropout + batch-norm"], widths=widths, hidden=hidden).to(device)
optimizer = make_optimizer("SGD", model.parameters())
on_device = [tuple(t.to(device) for t in split) for split in (train, val)]
history = fit(model, optimizer, *on_device, epochs, batch_size, seed, verbose=True)
kept = history["best_epoch"]
print(f"kept the weights of epoch {kept}: validation accuracy {history['val_acc'][kept - 1]:.4f}")

# %% [markdown]
# ## Train the twelve runs
#
# The grid goes to the engine's study (`digitlab.engine.parallel.run_study`):
# each run is a call of `variant_run` below, the loop above with one variant and
# one optimiser, in this process or on `workers` processes or a Dask cluster.
# Each finished run is stored in `results/mnist/variants/runs/study/` and reused
# by a later run of this notebook only for the same code and settings: edit a
# cell above (the block, an optimiser, the loop) and rerun, and the runs are
# trained again; `fresh=True` retrains them anyway.

# %%
def variant_run(data, *, variant, batch_norm, dropout, optimizer_name, widths, hidden, epochs,
                batch_size, seed, device, rows, code):
    """Train one variant with one optimiser; what a study stores (``rows`` and ``code`` name
    the data and the notebook's code the run was made from)."""
    torch.manual_seed(seed)
    model = make_variant(batch_norm, dropout, widths, hidden).to(device)
    optimizer = make_optimizer(optimizer_name, model.parameters())
    train, val = (tuple(t.to(device) for t in data[split]) for split in ("train", "val"))
    history = fit(model, optimizer, train, val, epochs, batch_size, seed)
    return {"state": {k: v.cpu() for k, v in model.state_dict().items()}, "history": history,
            "parameters": sum(p.numel() for p in model.parameters()),
            "finished_at": time.time()}


# The study names a stored run by variant_run's own code; `code` adds that of every function and
# class this notebook defines (a class by its methods), so that editing any of them, or adding a
# helper they call, trains the runs again.
defined = [v for v in list(globals().values())
           if (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == "__main__"]
functions = [f for v in defined for f in ([v] if inspect.isfunction(v) else vars(v).values())
             if inspect.isfunction(f)]
code = hashlib.sha256("".join(function_digest(f) for f in functions).encode()).hexdigest()
rows = fingerprint_arrays(*train, *val)
cells = [Cell(f"{variant} / {opt}", variant_run, {
    "variant": variant, **switches, "optimizer_name": opt, "widths": tuple(widths),
    "hidden": hidden, "epochs": epochs, "batch_size": batch_size, "seed": seed,
    "device": device, "rows": rows, "code": code})
    for variant, switches in VARIANTS.items() for opt in OPTIMIZERS]
started = time.time()
results = run_study(cells, shared={"train": train, "val": val}, folder=out / "runs" / "study",
                    execution=Execution(workers=workers, scheduler=scheduler, threads=threads,
                                        fresh=fresh),
                    device=device, desc="variants")
reused = sum(result["finished_at"] < started for result in results)
print(f"{reused} of {len(cells)} runs reused from an earlier run of this code, "
      f"{len(cells) - reused} trained now")

# %% [markdown]
# ## Evaluate: one row per run

# %%
def summarise(name, result):
    history = result["history"]
    return {"run": name, "variant": name.split(" / ")[0], "optimizer": name.split(" / ")[1],
            "arch": "cnn2", "lr": LEARNING_RATES[name.split(" / ")[1]], "augment": False,
            "parameters": result["parameters"],
            "val_accuracy": history["val_acc"][history["best_epoch"] - 1],
            "epochs_to_converge": epochs_to_converge(history["val_acc"]),
            "best_val_loss_epoch": history["best_epoch"], "final_val_acc": history["val_acc"][-1],
            "epochs_run": len(history["val_acc"]),
            "train_seconds": round(sum(history["epoch_seconds"]), 2)}


table = pd.DataFrame([summarise(cell.name, result)
                      for cell, result in zip(cells, results, strict=True)]).set_index("run")
histories = {cell.name: result["history"] for cell, result in zip(cells, results, strict=True)}


def slug(run):
    """A run's file name: "dropout + batch-norm / SGD" -> "dropout+batch-norm_sgd"."""
    return run.lower().replace(" + ", "+").replace(" / ", "_").replace(" ", "-")


for cell, result in zip(cells, results, strict=True):
    save_metrics(out / "runs" / f"{slug(cell.name)}.json",
                 {"run": cell.name, **table.loc[cell.name]}, seed=seed,
                 config={**cell.kwargs, "device": str(device)}, data=splits.summary(),
                 history=result["history"])
# A run renamed or removed since an earlier run of this notebook leaves no file behind.
written = {out / "runs" / f"{slug(cell.name)}.json" for cell in cells}
for stale in set((out / "runs").glob("*.json")) - written:
    stale.unlink()
table[["variant", "optimizer", "parameters", "val_accuracy", "epochs_to_converge",
       "final_val_acc", "train_seconds"]]

# %% [markdown]
# ## Validation accuracy and epochs to converge

# %%
grid = table.pivot_table(index="variant", columns="optimizer", values="val_accuracy",
                         sort=False)
converge = table.pivot_table(index="variant", columns="optimizer", values="epochs_to_converge",
                             sort=False)
save_figure(plots.heatmap(grid.to_numpy(), list(grid.index), list(grid.columns),
                          title="Validation accuracy (kept weights)", xlabel="optimiser"),
            out / "val_accuracy.png")
save_figure(plots.heatmap(converge.to_numpy(), list(converge.index), list(converge.columns),
                          title=f"Epochs to converge (within {100 * CONVERGENCE_TOLERANCE:.1f} "
                                "points of the best)", xlabel="optimiser", fmt="{:.0f}"),
            out / "epochs_to_converge.png")
grid

# %% [markdown]
# ## Learning curves, one figure per optimiser

# %%
for opt_name in OPTIMIZERS:
    runs = {variant: histories[f"{variant} / {opt_name}"] for variant in VARIANTS}
    save_figure(plots.learning_curves(runs, title=f"cnn2 variants with {opt_name}"),
                out / f"learning_curves_{opt_name.lower()}.png")

# %%
best_run = table["val_accuracy"].idxmax()
fastest = table.sort_values(["epochs_to_converge", "val_accuracy"],
                            ascending=[True, False]).index[0]
metrics_path = save_metrics(out / "summary.json", {
    "runs": table.reset_index().to_dict(orient="records"),
    "best_run": best_run, "val_accuracy": float(table.loc[best_run, "val_accuracy"]),
    "fastest_run": fastest,
    # Keyed by run name, so that one run's numbers can be read (and quoted) by name.
    "by_run": table[["val_accuracy", "epochs_to_converge"]].to_dict(orient="index"),
    "mean_val_accuracy_by_variant": table.groupby("variant", sort=False)["val_accuracy"]
    .mean().to_dict(),
    "mean_val_accuracy_by_optimizer": table.groupby("optimizer", sort=False)["val_accuracy"]
    .mean().to_dict(),
}, seed=seed, config={"source": source, "data_dir": data_dir, "quick": quick, "arch": "cnn2",
                      "channels": widths, "hidden": hidden, "dropout": dropout,
                      "epochs": epochs, "batch_size": batch_size,
                      "optimizers": {name: {"optimizer": name.lower(), "lr": lr}
                                     for name, lr in LEARNING_RATES.items()},
                      "variants": VARIANTS, "convergence_tolerance": CONVERGENCE_TOLERANCE,
                      **Execution(workers=workers, scheduler=scheduler,
                                  threads=threads).describe(device)},
    data=splits.summary())
print(f"wrote {metrics_path} and one file per run in {out / 'runs'}")

# %% [markdown]
# ## Conclusion, beside the journal
#
# The learning journal published the SGD row of each variant on the full MNIST
# (60,000 digits), tested on its 10,000 test digits; its best run is CNN +
# dropout + batch norm with SGD. Ours are validation accuracies on the held-out
# training digits counted below, after the epochs below: they compare with the
# journal's only when `Data` is the full MNIST too (`make mnist
# MNIST_DIR=FOLDER`) and `settings = "journal"`; otherwise our variants are
# narrower (`widths`) and train for fewer epochs. With a few epochs on a few
# thousand images, differences of a few tenths of a point are within run-to-run
# noise: the table ranks runs on one seed. `make reproduce MNIST_DIR=FOLDER` runs
# these variants at the journal's settings from three seeds each, reads the test
# digits after every epoch, and judges each published number against what a fixed
# final epoch, the validation-chosen epoch and the best epoch on test would have
# reported (docs/fullscale.md, "Beside the original projects").

# %%
by_variant = table.groupby("variant", sort=False)["val_accuracy"].mean()
by_optimizer = table.groupby("optimizer", sort=False)["val_accuracy"].mean()
print(f"Data: {splits.description}; {epochs} epochs per run, widths {widths}, "
      f"{hidden} hidden units; validated on {len(splits.val_labels):,} held-out digits.")
print("SGD runs, the journal's (test accuracy, epochs to converge) beside ours (validation):")
for variant, journal in PUBLISHED["variants_sgd"].items():
    ours = table.loc[f"{variant} / SGD"]
    print(f"  {variant:>22}: journal {journal['accuracy']:.2%} in about {journal['epochs']} "
          f"epochs; here {ours['val_accuracy']:.2%}, converged at epoch "
          f"{ours['epochs_to_converge']} of {epochs}")
print(f"Best run: {best_run}, validation accuracy {table.loc[best_run, 'val_accuracy']:.4f} "
      f"(converged at epoch {table.loc[best_run, 'epochs_to_converge']}).")
print(f"Fastest to converge: {fastest} (epoch {table.loc[fastest, 'epochs_to_converge']}).")
print("Mean validation accuracy by variant: "
      + ", ".join(f"{k} {v:.4f}" for k, v in by_variant.items()) + ".")
print("Mean validation accuracy by optimiser: "
      + ", ".join(f"{k} {v:.4f}" for k, v in by_optimizer.items()) + ".")
print(f"Spread between the best and the worst run: "
      f"{np.ptp(table['val_accuracy'].to_numpy()):.4f}.")
