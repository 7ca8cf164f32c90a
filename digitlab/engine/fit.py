"""One training loop for every torch model in the project.

:func:`fit` trains on in-memory tensors with a progress bar, records a
per-epoch history (train/validation loss and accuracy, learning rate, time),
stops early when validation loss stops improving, keeps the best weights and
optionally writes them to a checkpoint after every improvement, so an
interrupted run keeps its best model so far.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from digitlab.data.batching import TensorBatches
from digitlab.repro import atomic_target

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class History:
    """Per-epoch training record; ``best_epoch`` is 1-based (0: none yet)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def train_seconds(self) -> float:
        return float(sum(self.epoch_seconds))

    def as_dict(self) -> dict:
        return {**self.__dict__, "train_seconds": self.train_seconds}


# PyTorch starts with one intra-op thread per physical core; remember that
# before anything changes it (hyper-threads rarely help convolutions).
_PHYSICAL_CORES = torch.get_num_threads()


def set_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads; by default one per physical core this process may use."""
    if n is None:
        has_affinity = hasattr(os, "sched_getaffinity")
        usable = len(os.sched_getaffinity(0)) if has_affinity else os.cpu_count() or 1
        n = min(_PHYSICAL_CORES, usable)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             loss_fn: Callable = nn.functional.cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in eval mode."""
    logits = predict_logits(model, x, batch_size)
    return float(loss_fn(logits, y)), float((logits.argmax(1) == y).float().mean())


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities (models return logits; softmax is applied here)."""
    return torch.softmax(predict_logits(model, x, batch_size), dim=1)


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int = 64,
    loss_fn: Callable = nn.functional.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    step_scheduler_per_batch: bool = False,
    patience: int | None = None,
    augment: Augment | None = None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
    autocast: torch.dtype | None = None,
) -> History:
    """Train ``model`` and return its :class:`History`; the best weights are restored.

    ``patience``: stop after this many epochs without a lower validation loss.
    ``step_scheduler_per_batch``: for schedules such as OneCycle defined in steps.
    ``augment``: a function of (batch, generator) applied to training batches only.
    ``autocast``: e.g. ``torch.bfloat16`` to run the training forward passes under CPU
    autocast (faster on CPUs with bf16 instructions); evaluation stays in float32.
    """
    batches = TensorBatches(*train, batch_size=batch_size, shuffle=True, seed=seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    history, best_loss, best_state, waited = History(), float("inf"), None, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, unit="epoch", leave=False)
    for epoch in bar:
        start = time.perf_counter()
        history.lr.append(optimizer.param_groups[0]["lr"])  # the rate this epoch starts with
        loss_sum, correct, seen = _train_epoch(model, batches, optimizer, loss_fn, augment, aug_gen,
                                               scheduler if step_scheduler_per_batch else None,
                                               autocast)
        if scheduler is not None and not step_scheduler_per_batch:
            scheduler.step()
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(loss_sum / seen)
        history.train_acc.append(correct / seen)
        monitored = history.train_loss[-1]
        if val is not None:
            val_loss, val_acc = evaluate(model, *val, loss_fn=loss_fn)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            monitored = val_loss
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}",
                        val_acc=f"{history.val_acc[-1]:.3f}" if val is not None else "-")
        if monitored < best_loss:
            best_loss, waited, history.best_epoch = monitored, 0, epoch
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint is not None:
                with atomic_target(checkpoint) as tmp:
                    torch.save(best_state, tmp)
        else:
            waited += 1
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _train_epoch(model, batches, optimizer, loss_fn, augment, aug_gen, batch_scheduler,
                 autocast=None):
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for xb, yb in batches:
        if augment is not None:
            xb = augment(xb, aug_gen)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        loss.backward()
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        loss_sum += float(loss.detach()) * len(yb)
        correct += int((logits.detach().argmax(1) == yb).sum())
        seen += len(yb)
    return loss_sum, correct, seen
