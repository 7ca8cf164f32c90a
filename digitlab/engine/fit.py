"""The one training loop for every torch model of the project.

:func:`fit` trains a network on in-memory tensors with a :class:`Recipe`: the
data and the model move to the device once, every batch goes through the
recipe's augmentation and noise, the forward pass runs under autocast where the
recipe asks for bfloat16 and the device supports it, and a per-epoch
:class:`History` is recorded with a progress bar.

The one early-stopping rule: with validation data, the weights of the epoch
with the lowest validation loss are kept, and training stops after
``recipe.patience`` epochs without a lower one. Without validation data the
last epoch's weights are kept (the recipe fixes the epochs; a noisy training
loss says nothing reliable about which epoch was best). "Validation accuracy"
always means the accuracy of the kept weights (:attr:`History.val_accuracy`).
With ``recipe.ema_decay`` the weights validated and kept are the moving average's
(``torch.optim.swa_utils.AveragedModel``, batch-norm statistics included).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from digitlab import devices
from digitlab.data.batching import TensorBatches
from digitlab.engine.networks import NetworkSpec
from digitlab.engine.predict import loss_and_accuracy, model_device, predict_logits
from digitlab.engine.recipe import Recipe, batch_transform, make_optimizer, make_scheduler

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class History:
    """Per-epoch training record; ``best_epoch`` (1-based) is the epoch whose weights
    were kept (0: none yet)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    # Accuracy per epoch on data that neither trains nor chooses the kept weights (fit's
    # ``monitor``): what reading every epoch on, say, the test digits would have reported.
    monitor_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def train_seconds(self) -> float:
        return float(sum(self.epoch_seconds))

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy of the kept weights (None without validation data)."""
        return self.val_acc[self.best_epoch - 1] if self.val_acc and self.best_epoch else None

    def as_dict(self) -> dict:
        return {**self.__dict__, "train_seconds": self.train_seconds,
                "val_accuracy": self.val_accuracy}

    @classmethod
    def from_dict(cls, record: dict) -> History:
        """The history :meth:`as_dict` wrote (its derived keys are recomputed)."""
        # monitor_acc is newer than some stored histories: only it may be missing
        return cls(**{f.name: record[f.name] for f in fields(cls)
                      if f.name in record or f.name != "monitor_acc"})


def fit(model: nn.Module, recipe: Recipe, train_data: Data, val_data: Data | None = None, *,
        seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
        desc: str = "train", monitor: Data | None = None) -> History:
    """Train ``model`` in place with ``recipe`` on ``train_data`` (images, labels), keeping
    the weights that did best on ``val_data`` (when given); return its :class:`History`.

    ``device``: where to train (default: where the model is). ``seed`` fixes the
    batch order and the augmentation and noise draws; the initial weights are the
    caller's (:meth:`digitlab.engine.networks.NetworkSpec.build` seeds them).
    ``monitor``: data scored after every epoch into ``History.monitor_acc`` and used for
    nothing else (the journal reproduction reads the test digits this way, to show what
    choosing an epoch on them would have published).
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"fit(model, recipe, train_data, val_data): the second argument must be "
                        f"a Recipe, got {type(recipe).__name__}.")
    device = devices.resolve(device) if device is not None else model_device(model)
    devices.make_deterministic(device)
    model.to(device)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    train = tuple(t.to(device) for t in train_data)
    val = tuple(t.to(device) for t in val_data) if val_data is not None else None
    watched = tuple(t.to(device) for t in monitor) if monitor is not None else None
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler, per_batch = make_scheduler(recipe, optimizer,
                                          math.ceil(len(train[0]) / recipe.batch_size))
    averaged = moving_average(model, recipe)
    scored = model if averaged is None else averaged.module  # the weights validated and kept
    step = _TrainStep(model, optimizer, recipe, devices.autocast_dtype(device, recipe.precision),
                      scheduler if per_batch else None, averaged)
    batches = TensorBatches(*train, batch_size=recipe.batch_size, shuffle=True, seed=seed)
    transform, transform_gen = batch_transform(recipe), torch.Generator().manual_seed(seed + 1)
    history, best_loss, best_state, waited = History(), math.inf, None, 0
    bar = tqdm(range(1, recipe.epochs + 1), desc=desc, disable=not progress, unit="epoch",
               leave=False)
    for epoch in bar:
        start = time.perf_counter()
        history.lr.append(optimizer.param_groups[0]["lr"])  # the rate this epoch starts with
        loss, accuracy = step.epoch(batches, transform, transform_gen)
        if scheduler is not None and not per_batch:
            scheduler.step()
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(loss)
        history.train_acc.append(accuracy)
        if watched is not None:
            history.monitor_acc.append(loss_and_accuracy(predict_logits(scored, watched[0]),
                                                         watched[1])[1])
        if val is None:
            history.best_epoch = epoch
            bar.set_postfix(loss=f"{loss:.3f}")
            continue
        val_loss, val_acc = loss_and_accuracy(predict_logits(scored, val[0]), val[1])
        history.val_loss.append(val_loss)
        history.val_acc.append(val_acc)
        bar.set_postfix(loss=f"{loss:.3f}", val_acc=f"{val_acc:.3f}")
        if val_loss < best_loss:
            best_loss, waited, history.best_epoch = val_loss, 0, epoch
            best_state = copy.deepcopy(scored.state_dict())
        else:
            waited += 1
            if recipe.patience is not None and waited >= recipe.patience:
                history.stopped_early = True
                break
    if best_state is None and averaged is not None:
        best_state = averaged.module.state_dict()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def moving_average(model: nn.Module, recipe: Recipe) -> AveragedModel | None:
    """The exponential moving average of ``model``'s weights the recipe asks for, if any."""
    if recipe.ema_decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay),
                         use_buffers=True)


class _TrainStep:
    """Forward, loss, backward and update for one batch: the project's one training step."""

    def __init__(self, model, optimizer, recipe: Recipe, autocast: torch.dtype | None,
                 batch_scheduler=None, averaged: AveragedModel | None = None):
        self.model, self.optimizer, self.batch_scheduler = model, optimizer, batch_scheduler
        self.averaged = averaged
        self.smoothing, self.autocast = recipe.label_smoothing, autocast
        self.device_type = model_device(model).type

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, int]:
        """Train on one batch; its summed loss and the number it classified right."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device_type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            logits = self.model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=self.smoothing)
        loss.backward()
        self.optimizer.step()
        if self.batch_scheduler is not None:
            self.batch_scheduler.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)
        return float(loss.detach()) * len(yb), int((logits.detach().argmax(1) == yb).sum())

    def epoch(self, batches, transform, generator) -> tuple[float, float]:
        """One pass over the batches; the mean training loss and accuracy."""
        self.model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for xb, yb in batches:
            if transform is not None:
                xb = transform(xb, generator)
            batch_loss, batch_correct = self(xb, yb)
            loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + len(yb)
        return loss_sum / seen, correct / seen


def step_throughput(network: NetworkSpec, recipe: Recipe, x: torch.Tensor, y: torch.Tensor, *,
                    steps: int, device, autocast: torch.dtype | None) -> float:
    """Images per second of the training step of ``network`` with ``recipe`` (its batch
    transform included), the median of ``steps`` timed batches after a warm-up one.

    ``autocast`` is forced here, whatever the device computes natively, so that a
    benchmark can show what bfloat16 would cost or buy on this machine.
    """
    device = devices.resolve(device)
    model = network.build(seed=0).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    step = _TrainStep(model, make_optimizer(recipe, model.parameters()), recipe, autocast)
    transform, generator = batch_transform(recipe), torch.Generator().manual_seed(0)
    x, y = x.to(device), y.to(device)
    timings = []
    for i in range(steps + 1):  # the first step warms up the kernels and is not counted
        devices.synchronize(device)
        start = time.perf_counter()
        index = torch.randint(0, len(x), (recipe.batch_size,), generator=generator).to(device)
        xb = x[index] if transform is None else transform(x[index], generator)
        step(xb, y[index])
        devices.synchronize(device)
        if i:
            timings.append(time.perf_counter() - start)
    return recipe.batch_size / sorted(timings)[len(timings) // 2]  # median: robust to noise
