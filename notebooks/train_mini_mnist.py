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
# The original project's third assignment: define a multilayer perceptron with
# 72 inputs, two ReLU hidden layers of 20 and 10 units and 10 softmax outputs,
# train it with stochastic gradient descent, plot its loss, score it on the test
# set and look at a few random test digits. This notebook does exactly that, in
# its own cells, on the stratified split written by `scripts/split_data.py`; it
# then places the MLP on a ladder of models scored on the same test images:
# chance, K-Means with Hungarian matching, logistic regression, the MLP and a
# small CNN. Figures and `ladder.json` go to `results/mini_mnist/`.
#
# Run it with `python scripts/run_notebook.py train_mini_mnist` (after the
# scripts; `make minimnist` does both), or open it with `make lab`.

# %% tags=["parameters"]
quick = False  # 8 epochs, no early stopping: seconds (used by the tests)
seed = 0  # fixes the split of the training file, the initial weights and the batch order
epochs = 300  # at most; training stops earlier when the validation loss stops improving
patience = 40  # epochs without a better validation loss before stopping (None: never)
learning_rate = 0.1  # the SGD step size
momentum = 0.9  # how much of the previous step each SGD step keeps
weight_decay = 1e-3  # a little L2 penalty keeps the weights of so small a network tame
batch_size = 32  # rows per SGD step
# where and how it runs (make passes these)
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU

# %% [markdown]
# ## Setup
#
# Paths, the seed, the device and one CPU thread (networks this small train
# fastest on one) are set here; every figure is saved under `results/mini_mnist/`
# by `save_figure`, which also shows it below the cell that made it.

# %%
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitlab import devices, paths, plots
from digitlab.engine import History
from digitlab.metrics import classification_summary
from digitlab.minimnist import dataset
from digitlab.minimnist.ladder import RUNGS, Part, run_ladder, stratified_split
from digitlab.minimnist.networks import RECIPE
from digitlab.repro import save_figure, save_metrics, set_seed

if quick:
    epochs, patience = 8, None
rng = set_seed(seed)
device = devices.resolve(device)
devices.set_threads(1, device)
out = paths.mini_mnist_results()

# %% [markdown]
# ## Prepare the data
#
# Pixels go from 0-255 to [0, 1] (`dataset.scale`, the one scaling every Mini
# MNIST model uses) and each 9 x 8 image becomes a row of 72 numbers. The
# training file is split once more: a stratified 20% validation part picks the
# epoch whose weights are kept; the test file is touched only for the final
# scores.

# %%
split = dataset.read_split(paths.data_dir())
x_all = dataset.scale(split["x_train"]).reshape(-1, dataset.N_PIXELS)
y_all = split["y_train"]
x_test = dataset.scale(split["x_test"]).reshape(-1, dataset.N_PIXELS)
y_test = split["y_test"]
fit_rows, val_rows = stratified_split(y_all, test_size=0.2, seed=seed)
x_fit, y_fit = x_all[fit_rows], y_all[fit_rows]
x_val, y_val = x_all[val_rows], y_all[val_rows]
print(f"fit {len(y_fit)}, validation {len(y_val)}, test {len(y_test)} rows of "
      f"{x_fit.shape[1]} pixels; scaling: {dataset.SCALING}")
print("test images per digit:", np.bincount(y_test, minlength=10).tolist())


def tensors(x, y):
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


fit_data, val_data = tensors(x_fit, y_fit), tensors(x_val, y_val)
test_data = tensors(x_test, y_test)

# %% [markdown]
# ## Build the model
#
# 72 -> 20 -> 10 -> 10, ReLU after each hidden layer. The network returns
# logits: the softmax of the original's output layer is applied by the loss
# (`F.cross_entropy` is log-softmax followed by the negative log-likelihood, which
# is numerically stable) and, for the reported probabilities, by `torch.softmax`
# in the evaluation.
#
# This class is the definition a student edits. The ladder benchmark
# (`benchmarks/minimnist_ladder.py`) trains the package's copy,
# `digitlab.minimnist.networks.MiniMLP`; `tests/test_minimnist_notebook_model.py`
# checks that both compute the same function with the same layer shapes, so
# change both together.

# %%
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Linear(72, 20)
        self.hidden2 = nn.Linear(20, 10)
        self.output = nn.Linear(10, 10)

    def forward(self, x):
        x = F.relu(self.hidden1(x))
        x = F.relu(self.hidden2(x))
        return self.output(x)  # logits


torch.manual_seed(seed)
model = MLP().to(device)
print(model)
print("parameters:", sum(p.numel() for p in model.parameters()))

# %% [markdown]
# ## Train
#
# One epoch shuffles the fit rows, then takes one SGD step per mini-batch:
# forward, loss, `backward()` for the gradients, `optimizer.step()` to move the
# weights. After each epoch the validation loss decides whether these weights
# are the best so far; training stops after `patience` epochs without a better
# one, and the best weights are put back.

# %%
def train(model, optimizer, data, generator):
    """One epoch of mini-batch SGD; returns the mean training loss and accuracy."""
    model.train()
    x, y = data
    order = torch.randperm(len(y), generator=generator).to(device)
    total_loss, correct = 0.0, 0
    for batch in order.split(batch_size):
        optimizer.zero_grad()
        logits = model(x[batch])
        loss = F.cross_entropy(logits, y[batch])
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(batch)
        correct += (logits.argmax(1) == y[batch]).sum().item()
    return total_loss / len(y), correct / len(y)


def test(model, data):
    """Mean loss and accuracy on ``data``, without gradients."""
    model.eval()
    x, y = data
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()


# %%
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum,
                            weight_decay=weight_decay)
generator = torch.Generator().manual_seed(seed)  # the batch order, reproducible
history = History()
best_loss, best_weights = float("inf"), None
for epoch in range(1, epochs + 1):
    train_loss, train_acc = train(model, optimizer, fit_data, generator)
    val_loss, val_acc = test(model, val_data)
    for key, value in (("train_loss", train_loss), ("train_acc", train_acc),
                       ("val_loss", val_loss), ("val_acc", val_acc), ("lr", learning_rate)):
        getattr(history, key).append(value)
    if val_loss < best_loss:  # the weights to keep so far
        best_loss, history.best_epoch = val_loss, epoch
        best_weights = copy.deepcopy(model.state_dict())
    if epoch % 20 == 0 or epoch == epochs:
        print(f"epoch {epoch:3d}: train loss {train_loss:.3f}, validation loss {val_loss:.3f}, "
              f"validation accuracy {val_acc:.3f}")
    if patience is not None and epoch - history.best_epoch >= patience:
        history.stopped_early = True
        break
model.load_state_dict(best_weights)
print(f"{epoch} epochs, best validation loss {best_loss:.3f} at epoch {history.best_epoch} "
      f"(validation accuracy {history.val_accuracy:.3f}): those weights are kept")

# %% [markdown]
# The loss per epoch (the original's loss curve), with the accuracy beside it;
# dashed: the fit rows, solid: the validation rows.

# %%
save_figure(plots.learning_curves({"MLP 72-20-10-10": history}, title="MLP learning curves"),
            out / "mlp_learning_curves.png")

# %% [markdown]
# ## Evaluate on the test set
#
# The test images are seen here for the first time. Rows of the confusion
# matrix are the true digits, columns the predicted ones.

# %%
model.eval()
with torch.no_grad():
    probabilities = torch.softmax(model(test_data[0]), dim=1).cpu().numpy()
predicted = probabilities.argmax(1)
print(f"MLP test accuracy: {(predicted == y_test).mean():.3f} on {len(y_test)} images")
mlp_summary = classification_summary(y_test, predicted)
save_figure(plots.confusion_matrix(np.array(mlp_summary["confusion_matrix"]),
                                   title="MLP confusion matrix (test)"),
            out / "mlp_confusion_matrix.png")

# %% [markdown]
# Ten random test images with the probability the MLP gives each digit
# (green: the true digit; red: a wrong top guess).

# %%
picked = rng.choice(len(y_test), size=min(10, len(y_test)), replace=False)
save_figure(plots.probability_examples(split["x_test"][picked], probabilities[picked],
                                       y_test[picked],
                                       title="MLP predictions on random test images"),
            out / "mlp_test_examples.png")

# %% [markdown]
# ## The ladder
#
# Every rung is scored on the same test images, and the learned ones fit the
# same rows: chance (always the most frequent training digit), K-Means (its
# clusters named by Hungarian matching on the fit rows), logistic regression,
# the MLP trained above, and a small CNN (two 3x3 convolutions,
# `digitlab.minimnist.networks.MiniCNN`). The CNN is the one model not trained
# in this notebook: `run_ladder` hands it to the project's training engine with
# the same SGD settings and early stopping as the loop above.

# %%
recipe = RECIPE.replace(lr=learning_rate, momentum=momentum, weight_decay=weight_decay,
                        batch_size=batch_size, epochs=epochs, patience=patience)
ladder = run_ladder(Part(x_fit, y_fit), Part(x_val, y_val), Part(x_test, y_test), seed, recipe,
                    trained={"MLP 72-20-10-10": (model, history)}, device=device, progress=True)
save_figure(plots.bar_chart(ladder.accuracy, "Mini MNIST ladder (test accuracy)"),
            out / "ladder.png")

# %%
metrics = {**ladder.as_metrics(), "mlp": mlp_summary, "mlp_history": history.as_dict(),
           "cnn_history": ladder.histories["CNN"].as_dict()}
save_metrics(out / "ladder.json", metrics, seed=seed,
             config={"quick": quick, "train": recipe.as_dict(), "validation_fraction": 0.2,
                     **devices.describe(device)},
             data={"train_rows": len(y_all), "test_rows": len(y_test), "folder": paths.data_dir()})
print("written:", out / "ladder.json")

# %% [markdown]
# ## Conclusion
#
# The original project published no accuracy for its MLP, so the numbers below
# stand on their own: each is this run's test accuracy.

# %%
a = ladder.accuracy
print(" | ".join(f"{rung} {a[rung]:.3f}" for rung in RUNGS))
print(f"The 72-20-10-10 MLP reaches {a['MLP 72-20-10-10']:.1%} test accuracy on "
      f"{len(y_test)} test images after {len(history.train_loss)} epochs of SGD, against "
      f"{a['chance']:.1%} for chance, {a['K-Means (Hungarian)']:.1%} for K-Means and "
      f"{a['logistic regression']:.1%} for logistic regression; the small CNN reaches "
      f"{a['CNN']:.1%}.")
print("Ladder ordered chance < K-Means < logistic <= MLP <= CNN:", ladder.ordered)
