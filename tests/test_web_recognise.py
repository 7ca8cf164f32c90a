"""Preparing a drawn digit the way MNIST's digits were, and decoding the PNG a client sends.

References are hand-computed shapes, SciPy's ``ndimage.center_of_mass``, and the
embedded MNIST digits themselves.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitlab.data.sources import load_mnist
from digitlab.web import recognise as rec
from digitlab.web.images import BadImage, read_png


def canvas(size: int = 280) -> np.ndarray:
    return np.zeros((size, size))


def prepare(ink: np.ndarray) -> np.ndarray:
    """White ink on an opaque black picture."""
    return rec.prepare_digit(ink, np.ones_like(ink))


def bounding_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(image)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def enlarge(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28x28 uint8 digit enlarged to ``size`` (bilinear), as floats in [0, 1]."""
    image = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, float) / 255


@pytest.fixture(scope="module")
def digits():
    splits = load_mnist("embedded")
    return splits.test_images, splits.test_labels


@pytest.mark.parametrize("height, width, box", [(100, 40, (20, 8)), (30, 150, (4, 20)),
                                                (17, 17, (20, 20)), (7, 3, (20, 9))])
def test_a_rectangle_is_scaled_to_20_pixels_on_its_longer_side(height, width, box):
    picture = canvas()
    picture[50:50 + height, 60:60 + width] = 1.0
    digit = prepare(picture)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert bounding_box(digit) == box  # 40 * 20/100 = 8; 30 * 20/150 = 4; 3 * 20/7 = 8.6 -> 9
    # A solid rectangle stays solid: every pixel of its box is full ink.
    assert digit.max() == 255 and (digit[digit > 0] == 255).all()


def test_the_centre_of_mass_lands_within_half_a_pixel_of_14_14():
    # An L: a tall bar with a foot; its centre of mass is far from its box's centre.
    picture = canvas()
    picture[40:240, 100:120] = 1.0
    picture[220:240, 100:220] = 1.0
    digit = prepare(picture).astype(float)
    row, col = ndimage.center_of_mass(digit)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    # Centring the box instead would put the column centre of mass more than a pixel off.
    rows, cols = np.nonzero(digit)
    box_centre_col = (cols.min() + cols.max()) / 2
    assert abs(box_centre_col - 14) > 1


def test_a_digit_that_would_leave_the_field_is_kept_whole():
    # Nearly all the mass in the top row: putting it on row 14 would push the tail,
    # 19 rows below, out of the 28-row field; the digit moves down only until its
    # last row is row 27, so its heavy top row lands on row 8.
    digit = np.zeros((20, 3))
    digit[0, :] = 1.0
    digit[1:, 1] = 0.01
    placed = rec.place_by_centre_of_mass(digit)
    assert placed.sum() == pytest.approx(digit.sum())
    assert placed[8].sum() == pytest.approx(3.0) and placed[27].sum() == pytest.approx(0.01)


def test_shrinking_averages_each_output_pixels_area_and_enlarging_interpolates():
    half = np.zeros((40, 40))
    half[:, :20] = 1.0
    np.testing.assert_allclose(rec.scale_to_box(half), np.repeat([[1.0] * 10 + [0.0] * 10],
                                                                 20, axis=0))
    stripes = np.zeros((40, 40))
    stripes[:, ::2] = 1.0  # alternate columns: each 2x2 block averages to a half
    np.testing.assert_allclose(rec.scale_to_box(stripes), 1.0)  # then stretched to full ink
    small = np.zeros((5, 10))
    small[:, 5:] = 1.0
    enlarged = rec.scale_to_box(small)
    assert enlarged.shape == (10, 20)
    assert enlarged[:, 0].max() == 0 and enlarged[:, -1].min() == 1
    assert 0 < enlarged[0, 10] < 1  # the edge is blended, not a hard step


def test_mnist_digits_have_the_convention_the_module_documents(digits):
    images, _ = digits
    for image in images:
        row, col = ndimage.center_of_mass(image.astype(float))
        assert abs(row - 14) <= 0.5 + 1e-9 and abs(col - 14) <= 0.5 + 1e-9
    assert (images.max(axis=(1, 2)) >= 254).all()
    longer_sides = [max(bounding_box(image >= 255 * rec.INK_LEVEL)) for image in images]
    assert np.mean(np.array(longer_sides) == 20) > 0.99


def test_preparing_an_mnist_digit_again_changes_it_little(digits):
    images, _ = digits
    prepared = np.stack([prepare(image / 255) for image in images])
    difference = np.abs(prepared.astype(int) - images.astype(int))
    # A wrong centre (13.5 instead of 14), box size or scaling moves most digits.
    assert (difference.max(axis=(1, 2)) <= 1).mean() > 0.7
    assert difference.mean() < 1.0


def test_a_digit_drawn_small_in_a_corner_matches_the_same_digit_drawn_large(digits):
    images, _ = digits
    gaps, shifted = [], []
    for digit in images[:20]:
        large = canvas()
        large[14:266, 14:266] = enlarge(digit, 252)
        small = canvas()
        small[:56, 224:] = enlarge(digit, 56)  # top right corner, 4.5 times smaller
        a, b = prepare(large).astype(float), prepare(small).astype(float)
        gaps.append(np.abs(a - b).mean())
        shifted.append(np.abs(a - np.roll(a, 2, axis=1)).mean())
    # Grey levels differ a little (two resamplings); the tolerance is meaningful:
    # the same digit moved by two pixels is further away than any pair.
    assert max(gaps) < 25 and np.mean(gaps) < 10
    assert np.mean(shifted) > 25


def test_every_polarity_gives_the_same_digit(digits):
    ink = enlarge(digits[0][3], 200)
    picture = canvas()
    picture[40:240, 40:240] = ink
    expected = prepare(picture)
    opaque = np.ones_like(picture)
    variants = {
        "black ink on white paper": (1 - picture, opaque),
        "grey ink on grey paper": (0.8 - 0.6 * picture, opaque),
        "white strokes on a transparent canvas": (np.ones_like(picture), picture),
        "black strokes on a transparent canvas": (np.zeros_like(picture), picture),
    }
    for name, (luminance, alpha) in variants.items():
        got = rec.prepare_digit(luminance, alpha)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, name


def test_noise_on_the_paper_does_not_widen_the_digit():
    rng = np.random.default_rng(0)
    paper = 0.85 + rng.uniform(-0.05, 0.05, (280, 280))
    paper[60:200, 130:150] = 0.1  # a dark bar 140 tall, 20 wide
    digit = rec.prepare_digit(paper, np.ones_like(paper))
    assert bounding_box(digit >= 255 * rec.INK_LEVEL) == (20, 3)


@pytest.mark.parametrize("luminance, alpha", [
    (np.zeros((280, 280)), np.ones((280, 280))),       # a black canvas
    (np.ones((280, 280)), np.ones((280, 280))),        # white paper
    (np.ones((280, 280)), np.zeros((280, 280))),       # a cleared transparent canvas
    (0.9 + np.random.default_rng(1).uniform(-0.05, 0.05, (280, 280)),
     np.ones((280, 280))),                             # paper with faint noise only
])
def test_a_picture_without_ink_is_refused(luminance, alpha):
    with pytest.raises(rec.EmptyImage, match="draw a digit first"):
        rec.prepare_digit(luminance, alpha)


# --- decoding -------------------------------------------------------------------------------

def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_modes_decode_to_luminance_and_alpha():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)
    rgba[1, 1] = (255, 0, 0, 128)
    luminance, alpha = read_png(png(Image.fromarray(rgba)))
    assert luminance[0, 0] == 1 and alpha[0, 0] == 1 and alpha[2, 2] == 0
    # ITU-R 601 luma of pure red is 0.299; alpha 128/255.
    assert luminance[1, 1] == pytest.approx(0.299, abs=0.005)
    assert alpha[1, 1] == pytest.approx(128 / 255)
    grey = np.array([[0, 51], [204, 255]], np.uint8)
    for mode in ("L", "RGB", "LA", "P"):
        luminance, alpha = read_png(png(Image.fromarray(grey).convert(mode)))
        np.testing.assert_allclose(luminance, grey / 255, atol=1 / 255, err_msg=mode)
        assert (alpha == 1).all(), mode
    deep = np.array([[0, 65535], [32768, 6553]], np.uint16)  # 16-bit greyscale
    luminance, _ = read_png(png(Image.fromarray(deep)))
    np.testing.assert_allclose(luminance, deep / 65535)


def test_the_size_limit_is_checked_before_decompressing():
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))

    # A header announcing 2.5 gigapixels, followed by a few bytes of pixel data only.
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(bytes(1000)))
    with pytest.raises(BadImage, match="far more pixels than the largest accepted, 1024x1024"):
        read_png(b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b""))
    with pytest.raises(BadImage, match="1025x1 pixels, more than the largest accepted, 1024x1024"):
        read_png(png(Image.new("L", (1025, 1))))
    assert read_png(png(Image.new("L", (1024, 1024))))[0].shape == (1024, 1024)


def test_files_that_are_not_whole_pngs_are_refused():
    jpeg = io.BytesIO()
    Image.new("L", (8, 8)).save(jpeg, format="JPEG")
    good = png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)))
    for data in (b"", b"hello", jpeg.getvalue()):
        with pytest.raises(BadImage, match="not a PNG file"):
            read_png(data)
    with pytest.raises(BadImage, match="damaged or truncated"):
        read_png(good[:len(good) // 2])
