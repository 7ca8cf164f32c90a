"""How a network is trained: one :class:`Recipe` for every torch model of the project.

A recipe names the optimiser and its settings, the learning-rate schedule, the
epochs and batch size, the batch augmentation and training-time noise, label
smoothing, a moving average of the weights, the precision of the forward
passes, early stopping, and whether the validation digits are trained on.
Named recipes live with their track (``digitlab.mnist.recipes``,
``digitlab.noisy.study``, ``digitlab.minimnist.networks``); the engine turns a
recipe into an optimiser, a schedule and a batch transform here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from digitlab.errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adadelta")
SCHEDULES = ("constant", "onecycle", "step")
PRECISIONS = ("fp32", "bf16")
# Learning rates that work for each optimiser when none is given.
DEFAULT_LR = {"sgd": 0.1, "adam": 0.003, "adamw": 0.003, "rmsprop": 0.001, "adadelta": 1.0}
# RandomAffine ranges: degrees, translate (fraction of the size), scale range, shear degrees.
DEFAULT_AFFINE = {"degrees": 10.0, "translate": 0.1, "scale": (0.9, 1.1), "shear": 0.0}
# Every key augment_params may have: the arguments of digitlab.data.transforms.RandomAffine.
AFFINE_KEYS = ("degrees", "translate", "scale", "shear", "elastic_alpha", "elastic_sigma")

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _setting(default, help: str, choices: tuple[str, ...] | None = None):
    """A field with its help text (and allowed values) for scripts' ``--set`` tables."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": choices}
    if isinstance(default, Mapping):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Recipe:
    """Everything about training a network except the network and the data."""

    optimizer: str = _setting("adam", "the optimiser", choices=OPTIMIZERS)
    lr: float | None = _setting(None, "learning rate (the peak under onecycle); none: the "
                                "optimiser's default " + ", ".join(f"{k} {v}" for k, v in
                                                                  DEFAULT_LR.items()))
    weight_decay: float = _setting(0.0, "weight decay")
    momentum: float = _setting(0.9, "momentum; SGD only (other optimisers ignore it)")
    nesterov: bool = _setting(True, "Nesterov momentum; SGD only (other optimisers ignore it)")
    betas: tuple[float, float] | None = _setting(
        None, "Adam's (beta1, beta2), held fixed under onecycle; none: torch's (0.9, 0.999), "
        "beta1 cycled by onecycle; Adam and AdamW only")
    schedule: str = _setting("constant", "learning-rate schedule: constant; onecycle (per "
                             "batch); step (x step_gamma per epoch)", choices=SCHEDULES)
    step_gamma: float = _setting(0.7, "factor of the step schedule per epoch")
    epochs: int = _setting(10, "epochs")
    batch_size: int = _setting(64, "batch size")
    augment: bool = _setting(False, "random affine transform of every training batch")
    augment_params: Mapping[str, Any] = _setting(
        DEFAULT_AFFINE, "the affine ranges, a JSON object with keys " + ", ".join(AFFINE_KEYS))
    # A noise kind (digitlab.data.noise): every training batch is corrupted anew after the
    # augmentation; validation and test stay whatever fixed images they are.
    fresh_noise: str | None = _setting(None, "a noise kind (digitlab.data.noise) drawn anew "
                                       "for every training batch, or none")
    label_smoothing: float = _setting(0.0, "cross-entropy label smoothing, in [0, 1)")
    # Keep an exponential moving average of the weights (and batch-norm statistics), updated
    # after every step with this decay, and use it in place of the last weights.
    ema_decay: float | None = _setting(None, "decay of a moving average of the weights that "
                                       "replaces the last weights, in (0, 1), or none")
    precision: str = _setting("fp32", "bf16: autocast the training forward passes where the "
                              "device can", choices=PRECISIONS)
    channels_last: bool = _setting(False, "channels-last memory layout of the convolutions")
    patience: int | None = _setting(None, "stop after this many epochs without a lower "
                                    "validation loss, or none")
    # Fold the validation split into training (fixed epochs, nothing chosen on validation):
    # for a final model whose recipe was already chosen by validation or cross-validation.
    train_on_val: bool = _setting(False, "train on the validation digits too (final model)")

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError(f"epochs and batch size must be at least 1, got {self.epochs} "
                            f"and {self.batch_size}.")
        if (self.lr is not None and self.lr <= 0) or self.weight_decay < 0:
            raise UserError("the learning rate must be positive and the weight decay at least 0.")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label smoothing must be in [0, 1), got {self.label_smoothing}.")
        if self.betas is not None and (len(self.betas) != 2
                                       or not all(0 <= b < 1 for b in self.betas)):
            raise UserError(f"betas must be two numbers in [0, 1), got {self.betas}.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise UserError(f"the EMA decay must be in (0, 1), got {self.ema_decay}.")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"patience must be at least 1 epoch, got {self.patience}.")
        unknown = set(self.augment_params) - set(AFFINE_KEYS)
        if unknown:
            raise UserError(f"unknown augment_params key {sorted(unknown)[0]!r}; choose from "
                            f"{', '.join(AFFINE_KEYS)}.")
        if self.fresh_noise is not None:
            from digitlab.data.noise import check_kind

            check_kind(self.fresh_noise)

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "learning_rate": self.learning_rate}

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}.")


def make_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    lr, decay = recipe.learning_rate, recipe.weight_decay
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov and recipe.momentum > 0,
                               weight_decay=decay)
    if recipe.optimizer in ("adam", "adamw") and recipe.betas is not None:
        optimizer = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
        return optimizer(params, lr=lr, weight_decay=decay, betas=tuple(recipe.betas))
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                  "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta}
    return optimizers[recipe.optimizer](params, lr=lr, weight_decay=decay)


def make_scheduler(recipe: Recipe, optimizer, steps_per_epoch: int):
    """The schedule and whether it steps per batch (OneCycle) or per epoch (StepLR)."""
    if recipe.schedule == "onecycle":
        # Betas given are held: one-cycle would otherwise cycle beta1 as a momentum.
        fixed = recipe.betas is not None and recipe.optimizer in ("adam", "adamw")
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.learning_rate, epochs=recipe.epochs,
            steps_per_epoch=steps_per_epoch, cycle_momentum=not fixed), True
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1,
                                               gamma=recipe.step_gamma), False
    return None, False


def batch_transform(recipe: Recipe) -> BatchTransform | None:
    """What happens to every training batch: the random affine augmentation, then fresh
    noise; None when the recipe asks for neither."""
    from digitlab.data.transforms import FreshCorruption, RandomAffine

    transform = RandomAffine(**recipe.augment_params) if recipe.augment else None
    if recipe.fresh_noise is not None:
        transform = FreshCorruption(recipe.fresh_noise, transform)
    return transform
