"""The speedrun: how few seconds of training reach 99.0 %, 99.5 % and 99.7 % on the full MNIST.

A tier (:data:`TIERS`) is a test accuracy that the mean over seeds must reach and a
budget of training seconds; its recipe is one of the named recipes ``fast99``,
``fast995`` and ``fast997`` (:data:`digitlab.mnist.recipes.SPEED_RECIPES`), chosen on the
validation digits among the tier's candidates (:func:`choose`). The :data:`ANCHOR` is
the best known GPU speed recipe ported to plain PyTorch: the yardstick each tier's
seconds are divided into.

:func:`train_fast` is a lean loop rather than :func:`digitlab.engine.fit`: the whole
set is one tensor on the device, every batch is taken by indexing it with a seeded
permutation, and nothing in the loop waits for the device (no loss read back per
batch, no validation), so that the seconds measured are those of training. It honours
the recipe fields a speedrun uses (optimiser, rate, weight decay, Adam's betas, schedule,
epochs, batch, augmentation, fresh noise, label smoothing, precision, channels-last)
and refuses the ones it does not (a moving average, early stopping).

:func:`macs_per_image` counts a network's multiply-adds per image from its layer
shapes, so that a tier's distance from the machine's peak rate can be stated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from digitlab import devices
from digitlab.data.idx import load_idx_pair
from digitlab.data.sources import find_local_files, validation_size
from digitlab.data.splits import stratified_indices
from digitlab.data.transforms import to_tensor
from digitlab.engine import NetworkSpec, Recipe
from digitlab.engine.predict import predict
from digitlab.engine.recipe import batch_transform, make_optimizer, make_scheduler
from digitlab.errors import UserError
from digitlab.mnist.recipes import SPEED_NETWORK


@dataclass(frozen=True)
class Tier:
    """A test accuracy to reach (mean over seeds) and the time it must be reached in:
    within ``max_seconds`` of training, or ``min_ratio`` times faster than the anchor."""

    target: str  # as the command line and the last line write it, e.g. "99.0"
    recipe_name: str
    accuracy: float
    max_seconds: float | None = None
    min_ratio: float | None = None

    def time_met(self, seconds: float, ratio: float) -> bool:
        if self.max_seconds is not None:
            return seconds <= self.max_seconds
        return ratio >= self.min_ratio

    def time_goal(self) -> str:
        if self.max_seconds is not None:
            return f"within {self.max_seconds:.0f} s"
        return f"at least {self.min_ratio:g}x faster than the anchor"


TIERS = {
    "99.0": Tier("99.0", "fast99", 0.990, min_ratio=2.0),
    "99.5": Tier("99.5", "fast995", 0.995, max_seconds=30.0),
    "99.7": Tier("99.7", "fast997", 0.997, max_seconds=300.0),
}
# A candidate is chosen only if its validation accuracy clears the tier by this much
# (5 of the 5,000 validation digits): one split's validation score is noisy, and the
# test mean over seeds must still reach the tier.
MARGIN = 0.001

# The anchor: conv 1->24 5x5 and 24->32 3x3, each with ReLU and 2x2 max-pooling, a 256-unit
# layer; the whole set in one tensor, batches of 256, Adam at 0.01 with betas (0.7, 0.9) under
# a one-cycle schedule that leaves the betas alone, one epoch, no augmentation, float32.
ANCHOR_NETWORK = SPEED_NETWORK
ANCHOR = Recipe(optimizer="adam", lr=0.01, betas=(0.7, 0.9), schedule="onecycle", epochs=1,
                batch_size=256, precision="fp32")


# --- data: the four files of a local MNIST-format folder ------------------------------------

def local_files(folder: Path) -> dict[str, Path]:
    """The four IDX files of ``folder``; a UserError naming the fix when they are not there."""
    files = find_local_files(folder)
    if files is None:
        raise UserError(f"{folder} does not hold the four MNIST-format files "
                        "(train-images-idx3-ubyte[.gz] and the three others); pass --data-dir "
                        "FOLDER (make speedrun MNIST_DIR=FOLDER).")
    return files


def read_split(files: Mapping[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and int64 labels of the ``"train"`` or ``"test"`` files; only those two
    files are opened."""
    return load_idx_pair(files[f"{split}_images"], files[f"{split}_labels"])


def validation_split(images: np.ndarray, labels: np.ndarray, seed: int = 0
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, validation) of a training file, as digitlab splits every local folder
    (:func:`digitlab.data.sources.load_local`): a stratified, seeded 1/12, 5,000 of 60,000."""
    kept, held = stratified_indices(labels, validation_size(labels), seed,
                                    what="the training file",
                                    fix="use a folder with the full MNIST training set")
    return (images[kept], labels[kept]), (images[held], labels[held])


# --- training ---------------------------------------------------------------------------------

@dataclass
class FastRun:
    """A trained model, its training seconds and the precision its forward passes ran in."""

    model: nn.Module
    seconds: float
    precision: str


def check_supported(recipe: Recipe) -> None:
    """A UserError for a recipe field the lean loop cannot honour."""
    if recipe.ema_decay is not None or recipe.patience is not None:
        raise UserError("the speedrun loop keeps no moving average of the weights and stops "
                        "at no validation score; use a recipe without ema_decay and patience.")


def train_fast(network: NetworkSpec, recipe: Recipe, images: np.ndarray, labels: np.ndarray, *,
               seed: int, device: torch.device, progress: bool = True,
               desc: str = "train") -> FastRun:
    """Train ``network`` with ``recipe`` on uint8 ``images`` and their ``labels``.

    The seconds cover everything after the files were read: turning the digits into one
    normalised tensor on the device, building the network, every batch (augmentation
    included) and waiting for the device at the end.
    """
    check_supported(recipe)
    devices.make_deterministic(device)
    devices.synchronize(device)
    start = time.perf_counter()
    x = to_tensor(images).to(device)
    y = torch.as_tensor(labels, dtype=torch.int64).to(device)
    model = network.build(seed=seed).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = math.ceil(len(y) / recipe.batch_size)
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler, per_batch = make_scheduler(recipe, optimizer, steps)
    autocast = devices.autocast_dtype(device, recipe.precision)
    transform, transform_gen = batch_transform(recipe), torch.Generator().manual_seed(seed + 1)
    order_gen = torch.Generator().manual_seed(seed)
    model.train()
    with tqdm(total=recipe.epochs * steps, desc=desc, unit="batch", disable=not progress,
              leave=False, mininterval=0.5) as bar:
        for _ in range(recipe.epochs):
            order = torch.randperm(len(y), generator=order_gen).to(device)
            for index in order.split(recipe.batch_size):
                xb = x[index]
                if transform is not None:
                    xb = transform(xb, transform_gen)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=autocast or torch.bfloat16,
                                    enabled=autocast is not None):
                    logits = model(xb)
                F.cross_entropy(logits.float(), y[index],
                                label_smoothing=recipe.label_smoothing).backward()
                optimizer.step()
                if per_batch:
                    scheduler.step()
                bar.update()
            if scheduler is not None and not per_batch:
                scheduler.step()
    devices.synchronize(device)
    seconds = time.perf_counter() - start
    model.eval()
    return FastRun(model, seconds, "bf16" if autocast is not None else "fp32")


def warm_up(network: NetworkSpec, recipe: Recipe, images: np.ndarray, labels: np.ndarray, *,
            device: torch.device) -> None:
    """Two untimed batches through the same code as :func:`train_fast`, discarded: the
    first steps of a process (or of a new layer shape or precision) also pay for setting
    up its kernels, a one-off cost that would otherwise land on whichever run comes first."""
    n = min(len(labels), 2 * recipe.batch_size)
    train_fast(network, recipe.replace(epochs=1), images[:n], labels[:n], seed=0,
               device=device, progress=False)


def count_errors(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> int:
    """How many of the uint8 ``images`` ``model`` misreads (eval mode, float32)."""
    return int((predict(model, to_tensor(images)) != np.asarray(labels)).sum())


# --- choosing a tier's recipe on validation ---------------------------------------------------

def choose(scores: Mapping[str, Mapping[str, float]], accuracy: float,
           margin: float = MARGIN) -> tuple[str, str]:
    """The fastest candidate (``train_seconds``) whose ``val_accuracy`` is at least
    ``accuracy + margin``; if none is, the most accurate (ties: the faster). Returns the
    name and why it was chosen."""
    threshold = accuracy + margin
    cleared = [name for name, s in scores.items() if s["val_accuracy"] >= threshold - 1e-12]
    if cleared:
        return (min(cleared, key=lambda n: scores[n]["train_seconds"]),
                f"the fastest with a validation accuracy of at least {threshold:.2%}")
    best = max(scores, key=lambda n: (scores[n]["val_accuracy"], -scores[n]["train_seconds"]))
    return best, f"none reached {threshold:.2%} on validation: the most accurate"


# --- what a network costs ---------------------------------------------------------------------

def macs_per_image(model: nn.Module, image_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """Multiply-adds of one forward pass per image, counted over the convolutions and
    linear layers from their shapes (forward hooks on one image in eval mode): a
    convolution costs (in channels / groups) x kernel area per output value, a linear
    layer in x out. Activations, pooling, normalisation and biases are left out: they
    are additions or comparisons, a few per value."""
    counts: list[int] = []

    def conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        counts.append(output[0].numel() * per_output)

    def linear(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        counts.append(module.in_features * module.out_features * (output[0].numel()
                                                                  // module.out_features))

    hooks = [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in model.modules()
              if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=_device_of(model)))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return int(sum(counts))


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def training_macs(forward_macs: int, images: int, epochs: int) -> int:
    """Multiply-adds of training: a backward pass costs about twice the forward one (the
    gradients of the inputs and of the weights), so three forward passes per image seen."""
    return 3 * forward_macs * images * epochs


# --- what a speedrun prints last -------------------------------------------------------------

def last_line(tier: Tier, accuracies: list[float], seconds: list[float],
              anchor_seconds: float) -> str:
    """``target T %: mean M % (min m %) over N seeds, training S s (max X s); anchor A s,
    ratio R`` (R: the anchor's training seconds over the mean of ours)."""
    mean_seconds = float(np.mean(seconds))
    return (f"target {tier.target} %: mean {100 * float(np.mean(accuracies)):.2f} % "
            f"(min {100 * min(accuracies):.2f} %) over {len(accuracies)} seeds, training "
            f"{mean_seconds:.2f} s (max {max(seconds):.2f} s); anchor {anchor_seconds:.2f} s, "
            f"ratio {anchor_seconds / mean_seconds:.2f}")
