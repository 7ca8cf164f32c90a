"""Turn a picture of one digit into the 28x28 image an MNIST network expects.

MNIST's digits were prepared in a fixed way, and a network trained on them
reads a drawing well only if the drawing is prepared the same way:

1. :func:`ink_from_pixels`: which pixels are ink. The background is read from
   the image border: a transparent border (a canvas) makes the alpha channel
   the ink, whatever the stroke colour; an opaque dark border makes light
   pixels ink (chalk on a blackboard), an opaque light border dark ones (a
   photo of ink on paper). Ink is 0 on the background and 1 at full contrast.
2. :func:`crop_to_ink`: a picture whose strongest ink is below
   :data:`INK_LEVEL` (a tenth of full contrast) is empty; otherwise the ink is
   stretched so its strongest pixel is 1, and cropped to the bounding box of the
   pixels with at least :data:`INK_LEVEL` of it (so faint noise, or the faint
   edge of a pale stroke, does not widen the box).
3. :func:`scale_to_box`: scale so the longer side is 20 pixels, aspect kept,
   anti-aliased: shrinking averages the pixels each output pixel covers (the
   grey levels of MNIST's anti-aliased edges are such coverages), enlarging a
   digit drawn smaller than 20 pixels interpolates bilinearly. The result is
   stretched again so its strongest pixel is 255: MNIST digits reach full
   intensity, however faint the pen was.
4. :func:`place_by_centre_of_mass`: paste into a 28x28 field, shifted by whole
   pixels so the centre of mass lands on :data:`CENTRE`.

Coordinates are (row, column) pixel indices, pixel ``i`` centred on ``i``. In
this convention every embedded MNIST digit has its centre of mass within half
a pixel of (14, 14), the mark of a whole-pixel shift onto that point, so this
module shifts the same way (``tests/test_web_recognise.py`` checks the digits).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FIELD = 28
BOX = 20
CENTRE = (14.0, 14.0)
# Ink below this (a tenth of full contrast) neither counts as a drawing nor
# widens the bounding box; MNIST digits keep their 20-pixel box at this level.
INK_LEVEL = 0.1


class EmptyImage(ValueError):
    """The picture has no ink to read."""


def border(values: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of a 2-D array, flattened."""
    if min(values.shape) <= 2:
        return values.ravel()
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def ink_from_pixels(luminance: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] per pixel from luminance and alpha in [0, 1], background from the border."""
    luminance, alpha = np.asarray(luminance, float), np.asarray(alpha, float)
    if np.median(border(alpha)) < 0.5:
        return np.clip(alpha, 0.0, 1.0)
    background = float(np.median(border(luminance)))
    # A partly transparent pixel on an opaque picture shows the background through it.
    seen = alpha * luminance + (1.0 - alpha) * background
    if background < 0.5:
        ink = (seen - background) / (1.0 - background)
    else:
        ink = (background - seen) / background
    return np.clip(ink, 0.0, 1.0)


def ink_bounds(ink: np.ndarray, level: float = INK_LEVEL) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of the pixels with ink >= ``level``."""
    rows = np.flatnonzero((ink >= level).any(axis=1))
    cols = np.flatnonzero((ink >= level).any(axis=0))
    if rows.size == 0:
        raise EmptyImage("the image has no ink: draw a digit first.")
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def crop_to_ink(ink: np.ndarray, level: float = INK_LEVEL) -> np.ndarray:
    """The ink, stretched so its maximum is 1, inside its bounding box at ``level``."""
    strongest = float(ink.max(initial=0.0))
    if strongest < level:
        raise EmptyImage("the image has no ink: draw a digit first.")
    ink = ink / strongest
    rows, cols = ink_bounds(ink, level)
    return ink[rows, cols]


def scale_to_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels (aspect kept); the strongest ink becomes 1."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # Pillow: (w, h)
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, method), float)
    scaled = np.clip(scaled, 0.0, None)
    return scaled / scaled.max() if scaled.max() > 0 else scaled


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted mean (row, column) index."""
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def place_by_centre_of_mass(digit: np.ndarray, field: int = FIELD,
                            centre: tuple[float, float] = CENTRE) -> np.ndarray:
    """Paste ``digit`` into a ``field`` x ``field`` array, shifted by whole pixels so
    its centre of mass is as near ``centre`` as possible with all of it inside."""
    out = np.zeros((field, field), dtype=digit.dtype)
    com = centre_of_mass(digit)
    top, left = (int(np.clip(np.floor(c - m + 0.5), 0, field - n))
                 for c, m, n in zip(centre, com, digit.shape, strict=True))
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return out


def prepare_digit(luminance: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A picture of one digit -> the uint8 28x28 MNIST-style image (white ink on black).

    Raises :class:`EmptyImage` when nothing in the picture stands out from its border.
    """
    ink = ink_from_pixels(luminance, alpha)
    digit = scale_to_box(crop_to_ink(ink))
    return np.round(place_by_centre_of_mass(digit) * 255).astype(np.uint8)
