"""From uint8 digits to network inputs, and batched data augmentation.

Images are normalised with the mean and standard deviation of the MNIST
training pixels (the constants every MNIST example uses), so networks see
inputs of roughly zero mean and unit variance whatever the source.

:func:`random_affine` augments a whole batch at once with one
``affine_grid`` / ``grid_sample`` call: small random rotations, scalings and
shifts, and optionally elastic distortions, drawn from a seeded
``torch.Generator``; a recipe with ``augment=True``
uses it on every training batch (:func:`digitlab.engine.recipe.batch_transform`).
:class:`FreshCorruption` corrupts every training batch with new noise of one of
the :mod:`digitlab.data.noise` kinds, after any geometric augmentation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from digitlab.data import noise

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
# The value a blank (0) pixel has after normalisation; augmentation fills with it.
BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD


def _as_float_images(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (0..255), got {x.dtype}")
    if x.ndim == 2:
        x = x.unsqueeze(0)
    return x.float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)


def to_tensor(images) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` (NumPy or torch) -> normalised float32 ``(N, 1, 28, 28)``."""
    x = _as_float_images(images)
    return x if x.ndim == 4 else x.unsqueeze(1)


def as_tensors(images, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and integer labels -> normalised ``(N, 1, 28, 28)`` and int64 tensors."""
    return to_tensor(images), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def flatten_tensor(images) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> normalised float32 ``(N, 784)`` for dense models."""
    x = _as_float_images(images)
    return x.reshape(len(x), -1)


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """Undo :func:`to_tensor`: normalised ``(N, 1, 28, 28)`` -> uint8 ``(N, 28, 28)``."""
    pixels = (x.detach().float().cpu() * MNIST_STD + MNIST_MEAN).mul(255.0).round().clamp(0, 255)
    return pixels.reshape(len(x), *x.shape[-2:]).to(torch.uint8).numpy()


def random_affine(
    batch: torch.Tensor,
    generator: torch.Generator,
    *,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    shear: float = 0.0,
    elastic_alpha: float = 0.0,
    elastic_sigma: float = 4.0,
) -> torch.Tensor:
    """Random rotation (± ``degrees``), scaling, shear and shift (± ``translate``
    of the image size) of every image in a ``(N, C, H, W)`` batch, then, with
    ``elastic_alpha`` > 0, an elastic distortion (:func:`elastic_field`).

    Uncovered pixels get the normalised background value, so an augmented digit
    looks like a real one rather than sitting on a grey frame. The random draws
    come from ``generator`` on the CPU, so a run augments alike on every device.
    Both warps go into one sampling grid, so the digit is interpolated once.
    """
    n = batch.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-degrees, degrees) * (math.pi / 180.0)
    zoom = uniform(*scale)
    skew = uniform(-shear, shear) * (math.pi / 180.0)
    # affine_grid maps output coordinates to input ones in [-1, 1], so a shift of
    # `translate` of the width is 2 * translate in those units.
    tx, ty = uniform(-translate, translate) * 2.0, uniform(-translate, translate) * 2.0
    # rotation @ shear, divided by the zoom (the grid maps output to input pixels)
    cos, sin, tan = torch.cos(angle) / zoom, torch.sin(angle) / zoom, torch.tan(skew)
    theta = torch.stack([
        torch.stack([cos, cos * tan - sin, tx], dim=1),
        torch.stack([sin, sin * tan + cos, ty], dim=1),
    ], dim=1).to(device=batch.device, dtype=batch.dtype)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    if elastic_alpha > 0:
        height, width = batch.shape[-2:]
        field = elastic_field(n, height, width, elastic_alpha, elastic_sigma, generator)
        # pixels -> grid units ([-1, 1] spans the image), channels last as the grid wants
        pixel = torch.tensor([2.0 / width, 2.0 / height])
        grid = grid + (field.permute(0, 2, 3, 1) * pixel).to(grid)
    shifted = batch - BACKGROUND  # grid_sample pads with zeros; make zero the background
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out + BACKGROUND


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of standard deviation ``sigma``, out to 2 sigma each side."""
    radius = max(1, int(math.ceil(2 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def elastic_field(n: int, height: int, width: int, alpha: float, sigma: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Random smooth displacements in pixels, ``(n, 2, height, width)`` (x then y).

    Simard, Steinkraus & Platt (2003): uniform random displacements in [-1, 1]
    per pixel, smoothed by a Gaussian of standard deviation ``sigma`` pixels and
    scaled by ``alpha``. A small sigma gives noise-like warps, a large one
    near-rigid shifts; their 29-pixel digits used sigma 4 and alpha 34.
    """
    raw = torch.rand(n, 2, height, width, generator=generator) * 2 - 1
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    flat = raw.reshape(2 * n, 1, height, width)
    # Separable blur; zero padding, like displacements that fade out past the border.
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0)), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius)), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, 2, height, width) * alpha


class RandomAffine:
    """:func:`random_affine` with fixed ranges, as a batch transform for training."""

    def __init__(self, degrees: float = 10.0, translate: float = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.0,
                 elastic_alpha: float = 0.0, elastic_sigma: float = 4.0):
        self.params = {"degrees": degrees, "translate": translate, "scale": tuple(scale),
                       "shear": shear}
        if elastic_alpha > 0:  # only then, so older recipes keep their repr and records
            self.params.update(elastic_alpha=elastic_alpha, elastic_sigma=elastic_sigma)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_affine(batch, generator, **self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"RandomAffine({args})"


class FreshCorruption:
    """Corrupt each training batch with new noise of ``kind``, after ``augment``.

    The order matters: the digit moves, then the camera adds its noise. Shifting
    or rotating an already noisy image interpolates the noise, which smooths it
    and makes it unlike the noise of the test images. Each batch gets a noise seed
    drawn from the training generator, so a run is reproducible while no two
    batches (or epochs) share a noise field. The batch goes through uint8 and
    :func:`digitlab.data.noise.corrupt`, exactly as the saved noisy sets do.
    """

    def __init__(self, kind: str, augment=None):
        self.kind, self.augment = noise.check_kind(kind), augment

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.augment is not None:
            batch = self.augment(batch, generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        noisy = to_tensor(noise.corrupt(from_tensor(batch), self.kind, seed))  # on the CPU
        return noisy.to(device=batch.device, dtype=batch.dtype)

    def __repr__(self) -> str:
        return f"FreshCorruption({self.kind!r}, augment={self.augment!r})"
