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
# # Noisy MNIST: dense networks vs CNNs on corrupted digits
#
# The n-MNIST corruptions (Basu et al.) make handwritten digits harder to read:
# additive white Gaussian noise (`awgn`, SNR 9.5 dB), a 5-pixel camera motion
# at 15° (`motion-blur`), and halved contrast plus noise (`contrast-awgn`, SNR
# 12 dB); `digitlab/data/noise.py` states how SNR maps to the noise's σ. This
# notebook trains dense networks (DNNs) and CNNs on one corrupted version of the
# MNIST source in use, improves both, cross-validates the CNN, and measures how
# a CNN trained on one corruption copes with the others.
#
# It reads the `.npy` sets written by `scripts/make_noisy_mnist.py` and writes
# its figures and `metrics.json` to `results/noisy_mnist/`. Run it with
# `python scripts/run_notebook.py noisy_mnist` (`make noisy` runs both);
# `quick=True` uses a few hundred digits and one or two epochs, for the tests.
#
# With files of your own, as the n-MNIST notebooks start from
# (`train_images.npy`, `train_labels.npy`, `test_images.npy`, `test_labels.npy`
# in one folder), run `python scripts/run_notebook.py noisy_mnist -p data_dir PATH`:
# the models train and test on that one set (validation carved from its
# training files), the robustness matrix is skipped, since it needs every
# corruption, and results go to `results/noisy_mnist/npy_folders/<folder name>/`.

# %% tags=["parameters"]
quick = False  # tiny subsets, the smoke preset's epochs (digitlab.pipeline.smoke): for tests
seed = 0
noise = "awgn"  # the corruption the four models are trained and tested on (not with data_dir)
cv_model = "cnn_improved"  # the CNN that is cross-validated
cv_folds = 5
robustness_model = "cnn"  # the CNN trained on every set for the robustness matrix
max_train = None  # training digits per set at most (a seeded subset); None: every one
# Epochs of each model at full scale (digitlab.pipeline.scale), in place of its recipe's (for the
# embedded 3,500 digits): 55,000 digits a pass, so a few passes show each model more digits.
full_scale_epochs = {"dnn": 4, "dnn_improved": 5, "cnn": 3, "cnn_improved": 4}
data_dir = None  # a folder with your own four .npy files; None: the make_noisy_mnist.py sets
device = "auto"  # auto: a CUDA GPU, else Apple MPS, else the CPU
workers = 1  # local worker processes for the folds and the robustness matrix ("auto": per core)
scheduler = None  # or a Dask scheduler's address, "tcp://host:8786", to run them on a cluster

# %% [markdown]
# ## Setup

# %%
import numpy as np
import pandas as pd
from IPython.display import display

import digitlab.architectures  # noqa: F401  (every track's networks, by name)
from digitlab import devices, paths, plots
from digitlab.engine.parallel import Execution
from digitlab.noisy import study
from digitlab.noisy.npy_folder import study_sets
from digitlab.pipeline.notebooks import figure_saver
from digitlab.pipeline.scale import is_full_scale, scale_name
from digitlab.pipeline.smoke import SMOKE
from digitlab.repro import save_metrics, set_seed

set_seed(seed)
device = devices.resolve(device)
# The make_noisy_mnist.py sets (only those its last run wrote), or your folder's one set.
source, noise_settings, sets = study_sets(data_dir, seed=seed)
own_files = noise_settings is None
if own_files:
    noise = next(iter(sets))  # the folder's name: what the digits are is up to its files
out = paths.noisy_folder_results(noise) if own_files else paths.noisy_results()
models = dict(study.MODELS)
if quick:
    sets = {name: s.sample(200, 60, seed) for name, s in sets.items()}
    models = {key: cfg.replace(epochs=min(cfg.recipe.epochs, SMOKE.curve_epochs))
              for key, cfg in models.items()}
elif max_train is not None and len(sets[noise].train_labels) > max_train:
    sets = {name: s.sample(max_train, None, seed) for name, s in sets.items()}
data = sets[noise]
n_digits = len(data.train_labels) + len(data.val_labels)
full_scale = is_full_scale(n_digits) and not quick
if full_scale:
    models = {key: cfg.replace(epochs=full_scale_epochs[key]) for key, cfg in models.items()}
# Small networks on a few thousand digits: a second thread mostly waits. At full scale, one
# process uses both cores; several workers get one thread each.
one_process = workers == 1 and scheduler is None
threads = devices.set_threads(None if full_scale and one_process else 1, device)
execution = Execution(workers=workers, scheduler=scheduler, threads=threads)
print(f"source: {source['description']}"
      + (f"; noise seed {source['noise_seed']}" if "noise_seed" in source else ""))
print(f"{noise}: train {len(data.train_labels)} ({scale_name(n_digits)}), "
      f"validation {len(data.val_labels)}, test {len(data.test_labels)} digits; "
      f"{devices.device_name(device)}, {threads or 'GPU'} thread(s)")
show = figure_saver(out)  # saves each figure under out/ and displays it


# %% [markdown]
# ## 1. The corrupted digits
#
# The same test digits, clean and under each corruption. AWGN sprinkles the
# black background with grey speckle; motion blur smears the strokes up and to
# the right; contrast-awgn dims the ink to half and adds noise on top. (With
# your own files: one row, the first test digit of each class.)

# %%
names = list(sets)
labels = next(iter(sets.values())).test_labels  # every set shares the clean set's digits
digits = [d for d in range(10) if np.any(labels == d)]
picks = [int(np.flatnonzero(labels == d)[0]) for d in digits]
grid = np.concatenate([sets[name].test_images[picks] for name in names])
titles = [f"{name} {d}" if i == 0 else str(d) for name in names for i, d in enumerate(digits)]
show(plots.image_grid(grid, titles, ncols=len(digits), cmap="gray", vmin=0, vmax=255,
                      suptitle="Rows: " + ", ".join(names)), "noisy_samples.png")

# %% [markdown]
# ## 2. Inputs for each model
#
# Dense networks see each digit as a flat vector of 784 pixels; CNNs keep the
# 28 × 28 grid with one channel. Both are normalised with the MNIST pixel mean
# and standard deviation. Labels stay integers: the cross-entropy loss takes
# class indices and applies the softmax itself, so no model here needs one-hot
# targets.

# %%
for key in ("dnn", "cnn"):
    x = models[key].inputs(data.train_images[:256])
    print(f"{study.LABELS[key]:>4} input: shape {tuple(x.shape)}, mean {x.mean():+.2f}, "
          f"std {x.std():.2f}; labels {data.train_labels[:8].tolist()} ...")

# %% [markdown]
# ## 3. A dense network
#
# Two hidden ReLU layers with dropout and a softmax output (logits + cross-entropy).
# The weights with the lowest validation loss are kept.

# %%
trained, reports = {}, {}


def train_and_report(key):
    """Train model ``key`` on the noisy set, score it on test, draw its figures."""
    cfg = models[key]
    print(f"{study.LABELS[key]}: {study.describe(cfg)}")
    trained[key] = study.train(cfg, data.train_images, data.train_labels, data.val_images,
                               data.val_labels, seed=seed, device=device,
                               desc=study.LABELS[key])
    reports[key] = study.score(trained[key], data.test_images, data.test_labels)
    hist = trained[key].history
    print(f"best epoch {hist.best_epoch}/{len(hist.train_loss)}, validation accuracy "
          f"{hist.val_accuracy:.4f}, test accuracy "
          f"{reports[key]['accuracy']:.4f}, {hist.train_seconds:.1f} s")
    curves = plots.learning_curves({study.LABELS[key]: hist},
                                   title=f"{study.LABELS[key]} on {noise} digits")
    matrix = plots.confusion_matrix(reports[key]["confusion_matrix"],
                                    title=f"{study.LABELS[key]}, {noise} test set")
    display(show(curves, f"curves_{key}.png"), show(matrix, f"confusion_{key}.png"))


train_and_report("dnn")

# %% [markdown]
# ## 4. An improved dense network
#
# Batch-norm before each ReLU, wider layers, more dropout and weight decay, and
# a OneCycle learning-rate schedule over more epochs. Whether that helps on
# this data is measured, not assumed:

# %%
train_and_report("dnn_improved")
gain = reports["dnn_improved"]["accuracy"] - reports["dnn"]["accuracy"]
verdict = "helps" if gain > 0.005 else ("makes no clear difference" if gain > -0.005
                                        else "hurts")
print(f"The improved DNN {verdict}: test accuracy {reports['dnn_improved']['accuracy']:.4f} "
      f"vs {reports['dnn']['accuracy']:.4f} ({gain:+.4f}, "
      f"{len(data.test_labels)} test digits).")

# %% [markdown]
# ## 5. CNNs
#
# A CNN with two conv → ReLU → max-pool blocks, then an improved one with three
# blocks, batch-norm, dropout before the classifier and a OneCycle schedule.
# Convolutions share weights across the image, which averages the pixel noise
# away much better than a dense layer can.

# %%
train_and_report("cnn")

# %%
train_and_report("cnn_improved")

# %% [markdown]
# ## 6. Five-fold cross-validation of the improved CNN
#
# The training and validation digits are pooled and split into stratified
# folds. Each fold is held out once: the model trains on the other folds (minus
# a 10 % inner validation split used for its curves and for keeping the best
# epoch) and is scored once on the held-out fold.

# %%
pool_images = np.concatenate([data.train_images, data.val_images])
pool_labels = np.concatenate([data.train_labels, data.val_labels])
cv = study.cross_validate(models[cv_model], pool_images, pool_labels, folds=cv_folds,
                          seed=seed, device=device, execution=execution,
                          folder=out / "study" / f"cv_{cv_model}")
for fold in cv.folds:
    print(f"fold {fold.fold}: accuracy {fold.accuracy:.4f} on {fold.n_test} digits")
print(f"{study.LABELS[cv_model]}: {cv.mean:.4f} ± {cv.std:.4f} "
      f"(mean ± std over {cv_folds} folds)")
show(plots.learning_curves({f"fold {f.fold}": f.history for f in cv.folds},
                           title=f"{study.LABELS[cv_model]}: {cv_folds}-fold cross-validation"),
     "cv_curves.png")

# %% [markdown]
# ## 7. Robustness: train on one corruption, test on each
#
# A CNN trained on each set (rows) is scored on every set's test split
# (columns). The diagonal is the matched case; off the diagonal, how far a
# model carries to a corruption it never saw. It needs the clean set and every
# corruption, so it is skipped for a folder of your own files.

# %%
robust = None
if len(sets) < 2:
    print(f"Robustness matrix skipped: it needs the clean set and every corruption, and only "
          f"one set ({noise}) was given; build them with python scripts/make_noisy_mnist.py.")
else:
    reuse = {noise: trained[robustness_model]} if robustness_model in trained else {}
    robust = study.robustness_matrix(models[robustness_model], sets, seed=seed, trained=reuse,
                                     device=device, execution=execution,
                                     folder=out / "study" / f"robustness_{robustness_model}")
    matrix = np.array(robust["accuracy"])
    diagonal, off = np.diag(matrix), matrix[~np.eye(len(names), dtype=bool)]
    robust.update(diagonal_mean=float(diagonal.mean()), off_diagonal_mean=float(off.mean()),
                  off_diagonal_min=float(off.min()))
    print(pd.DataFrame(matrix, index=[f"train {s}" for s in names],
                       columns=[f"test {s}" for s in names]).round(4).to_string())
    show(plots.heatmap(matrix, names, names, title=f"{study.LABELS[robustness_model]} accuracy",
                       xlabel="test set", ylabel="training set"), "robustness.png")

# %% [markdown]
# ## 8. Conclusion
#
# Every model here trains on the saved noisy sets, one fixed noise field per
# digit, as n-MNIST ships them. The project's best CNN
# (`benchmarks/noisy_mnist.py`, README "Noisy MNIST") trains longer and draws
# new noise for every batch from the clean digits; its test digits are the same
# fixed noisy ones.

# %%
table = pd.DataFrame({
    "model": [study.LABELS[k] for k in reports],
    "validation accuracy": [trained[k].history.val_accuracy for k in reports],
    "test accuracy": [reports[k]["accuracy"] for k in reports],
    "macro F1": [reports[k]["macro_f1"] for k in reports],
    "training seconds": [trained[k].history.train_seconds for k in reports],
})
print(f"Trained and tested on {noise} digits ({source['description']}):")
print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
best_dnn = max(("dnn", "dnn_improved"), key=lambda k: reports[k]["accuracy"])
best_cnn = max(("cnn", "cnn_improved"), key=lambda k: reports[k]["accuracy"])
margin = reports[best_cnn]["accuracy"] - reports[best_dnn]["accuracy"]
print(f"\nThe best CNN ({study.LABELS[best_cnn]}, {reports[best_cnn]['accuracy']:.4f}) "
      f"{'beats' if margin > 0 else 'does not beat'} the best DNN ({study.LABELS[best_dnn]}, "
      f"{reports[best_dnn]['accuracy']:.4f}): {margin:+.4f} on the {noise} "
      f"test set. Cross-validated, the {study.LABELS[cv_model]} scores {cv.mean:.4f} ± "
      f"{cv.std:.4f}.")
if robust is None:
    print("The robustness matrix was not run: only one set was given.")
else:
    print(f"Trained and tested on the same corruption, the {study.LABELS[robustness_model]} "
          f"averages {robust['diagonal_mean']:.4f}; across corruptions "
          f"{robust['off_diagonal_mean']:.4f} (worst {robust['off_diagonal_min']:.4f}).")

# %%
metrics = {
    "noise": None if own_files else noise,  # what corrupted your own files is unknown here
    "set": noise,
    "test_accuracy": {k: reports[k]["accuracy"] for k in reports},
    "val_accuracy": {k: trained[k].history.val_accuracy for k in reports},
    "macro_f1": {k: reports[k]["macro_f1"] for k in reports},
    "train_seconds": {k: trained[k].history.train_seconds for k in reports},
    "confusion_matrix": {k: reports[k]["confusion_matrix"] for k in reports},
    "history": {k: trained[k].history.as_dict() for k in reports},
    "cross_validation": {"model": cv_model, **cv.to_dict()},
    "robustness": ({"model": robustness_model, **robust} if robust is not None else
                   {"skipped": "only one set was given; the matrix needs every corruption"}),
}
config = {"quick": quick, "noise": noise, "data_dir": data_dir, "cv_model": cv_model,
          "robustness_model": robustness_model, **devices.describe(device),
          "models": {k: study.describe(models[k]) for k in models}}
print(save_metrics(out / "metrics.json", metrics, seed=seed, config=config, data=source,
                   noise=noise_settings))
