"""The MNIST CNN family; every network takes ``(N, 1, 28, 28)`` and returns logits.

``build_cnn(name, **kwargs)`` builds one by name (see :data:`ARCHITECTURES`):

- ``cnn2`` / ``cnn3``: two or three conv -> ReLU -> max-pool blocks, flatten,
  one linear layer; ``dropout`` (before the output layer) and ``batchnorm``
  switch on variants. Two options that are off unless asked for give the
  learning journal's layout, which the variants notebook compares: ``hidden``
  (a fully connected ReLU layer before the output layer) and ``conv_dropout``
  (dropout after every convolution's ReLU).
- ``reference``: the network of the classic PyTorch MNIST example
  (pytorch/examples ``mnist/main.py``): two 3x3 convolutions with 32 and 64
  channels, max-pool, dropout 0.25, a 128-unit layer, dropout 0.5.
- ``best``: the project's best CNN: small batch-normalised 3x3 conv stages and
  global average pooling (``members > 1``: an ensemble of such networks;
  ``tta_shift > 0``: test-time augmentation, :class:`ShiftAveraged`); compact
  enough to train in under a minute on two CPU cores (``benchmarks/mnist_cnn.py``
  measures it against ``reference``).
- ``speed``: the speedrun's plain network: a 5x5 then a 3x3 convolution without
  padding, each followed by ReLU and 2x2 max-pooling (28 -> 24 -> 12 -> 10 -> 5), a
  hidden ReLU layer, 10 outputs; with its defaults (24 and 32 channels, 256 hidden
  units) the network of the anchor recipe (``digitlab.mnist.speedrun``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from digitlab.data.transforms import BACKGROUND
from digitlab.engine.networks import Ensemble, build, register_family
from digitlab.errors import UserError


def conv_block(c_in: int, c_out: int, *, batchnorm: bool = False, pool: bool = True,
               kernel_size: int = 3, dropout: float = 0.0) -> nn.Sequential:
    """conv (same padding) -> [batch-norm] -> ReLU -> [dropout] -> [2x2 max-pool]."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2,
                                         bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    if dropout:
        layers.append(nn.Dropout(dropout))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _plain_cnn(channels: tuple[int, ...], dropout: float, batchnorm: bool, hidden: int,
               conv_dropout: float) -> nn.Sequential:
    blocks, c_in, size = [], 1, 28
    for c_out in channels:
        blocks.append(conv_block(c_in, c_out, batchnorm=batchnorm, dropout=conv_dropout))
        c_in, size = c_out, size // 2
    features = c_in * size * size
    classifier: list[nn.Module] = [nn.Flatten()]
    if hidden:
        classifier += [nn.Linear(features, hidden), nn.ReLU(inplace=True)]
        features = hidden
    # Identity rather than Dropout(0): the same computation, and the output layer keeps
    # its index, so checkpoints saved with Dropout(0) there still load.
    classifier += [nn.Dropout(dropout) if dropout else nn.Identity(), nn.Linear(features, 10)]
    return nn.Sequential(*blocks, *classifier)


def cnn2(dropout: float = 0.0, batchnorm: bool = False,
         channels: tuple[int, int] = (32, 64), hidden: int = 0,
         conv_dropout: float = 0.0) -> nn.Sequential:
    """Two conv -> ReLU -> max-pool blocks (28 -> 14 -> 7), flatten, [hidden], linear."""
    return _plain_cnn(tuple(channels), dropout, batchnorm, hidden, conv_dropout)


def cnn3(dropout: float = 0.0, batchnorm: bool = False,
         channels: tuple[int, int, int] = (32, 64, 128), hidden: int = 0,
         conv_dropout: float = 0.0) -> nn.Sequential:
    """Three conv -> ReLU -> max-pool blocks (28 -> 14 -> 7 -> 3), flatten, [hidden], linear."""
    return _plain_cnn(tuple(channels), dropout, batchnorm, hidden, conv_dropout)


def reference() -> nn.Sequential:
    """The classic PyTorch MNIST example network (logits instead of log-softmax)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def shifted_copies(x: torch.Tensor, shift: int):
    """Every copy of the ``(N, C, H, W)`` batch moved by up to ``shift`` pixels along each
    axis ((2 shift + 1)^2 copies, the unmoved one included); uncovered pixels get the
    background value, as in the training augmentation."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (shift, shift, shift, shift), value=BACKGROUND)
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            yield padded[..., dy:dy + height, dx:dx + width]


class ShiftAveraged(nn.Sequential):
    """A network that, in eval mode, averages its predicted probabilities over copies of
    the input shifted by up to ``shift`` pixels (test-time augmentation).

    Training is untouched (train mode is one plain forward pass). The output is the
    log of the mean probability, a valid logit vector as for an :class:`Ensemble`.
    A subclass of ``nn.Sequential`` so its weights keep the plain network's names:
    the same checkpoint loads with or without averaging.
    """

    def __init__(self, *layers: nn.Module, shift: int = 0):
        super().__init__(*layers)
        self.shift = shift

    # Up to this many images (copies included) go through in one pass: a web request's few
    # digits then cost one call rather than nine, while large batches keep memory bounded.
    one_pass_limit = 1024

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.shift == 0:
            return super().forward(x)
        copies = list(shifted_copies(x, self.shift))
        if len(x) * len(copies) <= self.one_pass_limit:
            probs = super().forward(torch.cat(copies)).float().softmax(dim=1)
            mean = probs.view(len(copies), len(x), -1).mean(0)
        else:
            mean = sum(super(ShiftAveraged, self).forward(copy).float().softmax(dim=1)
                       for copy in copies) / len(copies)
        return mean.clamp_min(1e-12).log()


def has_shift_averaging(model: nn.Module) -> bool:
    """Whether ``model`` (or a member of it) averages over shifted copies in eval mode."""
    return any(isinstance(m, ShiftAveraged) for m in model.modules())


@contextlib.contextmanager
def shift_view(model: nn.Module, shift: int) -> Iterator[nn.Module]:
    """Within this block every :class:`ShiftAveraged` inside ``model`` (e.g. each member of
    an ensemble) averages over shifts of up to ``shift`` pixels; its own shift is restored
    afterwards. The trained weights are untouched: only the predictions change."""
    if shift < 0:
        raise UserError(f"shift must be at least 0, got {shift}.")
    averaged = [m for m in model.modules() if isinstance(m, ShiftAveraged)]
    shifts = [m.shift for m in averaged]
    for m in averaged:
        m.shift = shift
    try:
        yield model
    finally:
        for m, own in zip(averaged, shifts, strict=True):
            m.shift = own


def single_view(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """Within this block ``model`` predicts from the input alone, without shifted copies."""
    return shift_view(model, 0)


def best_single(width: int = 16, dropout: float = 0.1, tta_shift: int = 0) -> nn.Sequential:
    """Three batch-normalised stages (28 -> 14 -> 7), global average pooling, linear.

    ``width`` channels in the first stage, doubled in each of the next two.
    ``tta_shift``: in eval mode, average over inputs shifted by up to that many pixels.
    """
    if tta_shift < 0:
        raise UserError(f"tta_shift must be at least 0, got {tta_shift}.")
    w1, w2, w3 = width, 2 * width, 4 * width
    return ShiftAveraged(
        conv_block(1, w1, batchnorm=True, pool=False),
        conv_block(w1, w1, batchnorm=True),
        conv_block(w1, w2, batchnorm=True, pool=False),
        conv_block(w2, w2, batchnorm=True),
        conv_block(w2, w3, batchnorm=True, pool=False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(w3, 10), shift=tta_shift,
    )


def best(width: int = 16, dropout: float = 0.1, members: int = 1,
         tta_shift: int = 0) -> nn.Module:
    """The best CNN: :func:`best_single`, or an :class:`Ensemble` of ``members`` of them."""
    if members == 1:
        return best_single(width, dropout, tta_shift)
    return Ensemble([best_single(width, dropout, tta_shift) for _ in range(members)])


def speed(channels: tuple[int, int] = (24, 32), hidden: int = 256) -> nn.Sequential:
    """conv 5x5 -> ReLU -> pool, conv 3x3 -> ReLU -> pool (no padding: 28 -> 12 -> 5),
    flatten, ``hidden`` ReLU units, 10 outputs."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 5 * 5, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, 10),
    )


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "cnn2": cnn2,
    "cnn3": cnn3,
    "reference": reference,
    "best": best,
    "speed": speed,
}
FAMILY = "CNN"
register_family(FAMILY, ARCHITECTURES)


def build_cnn(arch: str, **kwargs) -> nn.Module:
    """Build the CNN called ``arch`` (a key of :data:`ARCHITECTURES`)."""
    return build(arch, FAMILY, **kwargs)
