"""n-MNIST style corruptions (Basu et al., "the n-MNIST handwritten digit dataset").

Three corruptions, each a pure, seeded function on a batch of images scaled to
[0, 1] (float, shape ``(N, 28, 28)``), clipped back to [0, 1]:

- ``awgn``: additive white Gaussian noise at an SNR of 9.5 dB;
- ``motion-blur``: linear camera motion of 5 pixels at 15 degrees,
  counter-clockwise from the horizontal;
- ``contrast-awgn``: contrast range halved (``x -> 0.5 x``, ink dimmed, black
  background kept), then additive white Gaussian noise at an SNR of 12 dB.

How SNR maps to sigma
---------------------
The n-MNIST page states the SNRs without units. Its motion-blur sentence is
MATLAB's ``fspecial('motion', len, theta)`` word for word, so we read the SNR
the way MATLAB's ``awgn(x, snr)`` does by default: in decibels, relative to a
signal power of 0 dBW, i.e. the power of a full-intensity pixel (1.0 on the
[0, 1] scale)::

    SNR_dB = 10 * log10(P_signal / sigma**2),  P_signal = 1.0
    sigma  = 10 ** (-SNR_dB / 20)          # 0.335 at 9.5 dB, 0.251 at 12 dB

The noise is added before clipping; clipping to [0, 1] (and rounding to uint8
in :func:`corrupt`) then removes part of it, mostly the negative half on the
black background, so the noise left in a saved image is weaker than sigma says.
:func:`measured_snr_db` measures the SNR of a pair (clean, noisy) under this
definition; ``scripts/make_noisy_mnist.py`` records it for every noisy set,
after clipping, and beside it the SNR relative to the images' own mean squared
pixel value for comparison with that other common convention.

Seeds: ``seed`` is an int or a tuple of ints (e.g. ``(seed, split)`` so that
train and test images get independent noise); each kind mixes in its own id so
``awgn`` and ``contrast-awgn`` never share a noise field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from digitlab.errors import UserError

NOISE_TYPES = ("awgn", "motion-blur", "contrast-awgn")
AWGN_SNR_DB = 9.5
CONTRAST_AWGN_SNR_DB = 12.0
CONTRAST_FACTOR = 0.5
BLUR_LENGTH = 5
BLUR_ANGLE_DEG = 15.0
SIGNAL_POWER = 1.0  # 0 dBW: a full-intensity pixel on the [0, 1] scale

Seed = int | Sequence[int]


def sigma_for_snr(snr_db: float, signal_power: float = SIGNAL_POWER) -> float:
    """Noise standard deviation giving ``snr_db`` for the given signal power."""
    return float(np.sqrt(signal_power / 10 ** (snr_db / 10)))


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray,
                    signal_power: float | None = SIGNAL_POWER) -> float:
    """SNR in dB of ``noisy`` against ``clean`` (both on the [0, 1] scale).

    ``signal_power=None`` uses the mean squared pixel value of ``clean``
    instead of the fixed 0 dBW reference.
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noisy, dtype=np.float64) - clean
    power = float(np.mean(clean ** 2)) if signal_power is None else signal_power
    return float(10 * np.log10(power / np.mean(noise ** 2)))


def _rng(seed: Seed, kind: str) -> np.random.Generator:
    seeds = [int(s) for s in np.atleast_1d(seed)]
    if any(s < 0 for s in seeds):
        raise ValueError(f"noise seeds must be non-negative, got {seed!r}")
    return np.random.default_rng([*seeds, NOISE_TYPES.index(kind)])


def _check_float(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected a batch of images (N, H, W), got shape {images.shape}")
    return images.astype(np.float32, copy=False)


def awgn(images: np.ndarray, seed: Seed, snr_db: float = AWGN_SNR_DB,
         clip: bool = True) -> np.ndarray:
    """Add white Gaussian noise of ``sigma_for_snr(snr_db)`` to [0, 1] images."""
    images = _check_float(images)
    noise = _rng(seed, "awgn").standard_normal(images.shape, dtype=np.float32)
    noisy = images + np.float32(sigma_for_snr(snr_db)) * noise
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def motion_kernel(length: float = BLUR_LENGTH, angle_deg: float = BLUR_ANGLE_DEG) -> np.ndarray:
    """Normalised line kernel of a camera moving ``length`` pixels at ``angle_deg``.

    Like MATLAB's ``fspecial('motion')``: every cell gets weight
    ``max(0, 1 - d)``, ``d`` its distance to the segment of length
    ``length - 1`` through the centre (anti-aliased line of width 1); the angle
    is counter-clockwise on screen, so rows (which grow downwards) go by -sin.
    """
    half = (length - 1) / 2
    radius = int(np.ceil(half)) + 1
    rows, cols = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    theta = np.deg2rad(angle_deg)
    ux, uy = np.cos(theta), -np.sin(theta)  # (column, row) direction of motion
    along = np.clip(cols * ux + rows * uy, -half, half)
    dist = np.hypot(cols - along * ux, rows - along * uy)
    kernel = np.clip(1.0 - dist, 0.0, None)
    kernel = kernel[np.any(kernel > 0, axis=1)][:, np.any(kernel > 0, axis=0)]
    return kernel / kernel.sum()


def motion_blur(images: np.ndarray, seed: Seed = 0, length: float = BLUR_LENGTH,
                angle_deg: float = BLUR_ANGLE_DEG) -> np.ndarray:
    """Convolve each image with :func:`motion_kernel` (zero padding outside).

    ``seed`` is accepted for a uniform signature; the blur is deterministic.
    """
    images = _check_float(images)
    kernel = motion_kernel(length, angle_deg).astype(np.float32)
    blurred = ndimage.convolve(images, kernel[None], mode="constant", cval=0.0)
    return np.clip(blurred, 0.0, 1.0)


def contrast_awgn(images: np.ndarray, seed: Seed, factor: float = CONTRAST_FACTOR,
                  snr_db: float = CONTRAST_AWGN_SNR_DB, clip: bool = True) -> np.ndarray:
    """Scale the contrast range by ``factor`` (0 stays 0, 1 becomes ``factor``), then AWGN."""
    images = _check_float(images) * np.float32(factor)
    noise = _rng(seed, "contrast-awgn").standard_normal(images.shape, dtype=np.float32)
    noisy = images + np.float32(sigma_for_snr(snr_db)) * noise
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


_CORRUPTIONS: dict[str, Callable[..., np.ndarray]] = {
    "awgn": awgn, "motion-blur": motion_blur, "contrast-awgn": contrast_awgn,
}


def check_kind(kind: str) -> str:
    if kind not in _CORRUPTIONS:
        raise UserError(f"unknown noise type {kind!r}; choose one of {', '.join(NOISE_TYPES)}.")
    return kind


def corrupt_float(images: np.ndarray, kind: str, seed: Seed) -> np.ndarray:
    """Apply corruption ``kind`` to float images in [0, 1]; float32 in [0, 1] back."""
    return _CORRUPTIONS[check_kind(kind)](images, seed)


def to_float(images_uint8: np.ndarray) -> np.ndarray:
    return np.asarray(images_uint8, dtype=np.float32) / np.float32(255.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def corrupt(images_uint8: np.ndarray, kind: str, seed: Seed) -> np.ndarray:
    """Corrupt uint8 images (N, H, W) with ``kind``; uint8 of the same shape back.

    Pure and seeded: the same images, kind and seed give the same output.
    """
    images_uint8 = np.asarray(images_uint8)
    if images_uint8.dtype != np.uint8:
        raise ValueError(f"corrupt expects uint8 images, got {images_uint8.dtype}")
    squeeze = images_uint8.ndim == 2
    batch = images_uint8[None] if squeeze else images_uint8
    out = to_uint8(corrupt_float(to_float(batch), kind, seed))
    return out[0] if squeeze else out
