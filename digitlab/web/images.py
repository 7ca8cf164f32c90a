"""PNG images in and out of the app, as ``data:image/png;base64,...`` URIs (Pillow).

:func:`png_data_uris` encodes the digits the app shows;
:func:`png_bytes_from_data_uri` and :func:`read_png` check and decode the image
a client sends, returning its luminance and alpha as arrays for
:mod:`digitlab.web.recognise`. Everything a client can get wrong
raises :class:`BadImage` with one sentence saying what to send instead.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

PREFIX = "data:image/png;base64,"
MAX_SIDE = 1024
# Stored, not deflated: for a 28x28 digit, setting up the compressor costs
# more time than the few hundred bytes it saves are worth to a local app.
COMPRESS_LEVEL = 0


class BadImage(ValueError):
    """An image the client must fix; the message is returned as the error."""


def encode_png(image: np.ndarray, level: int = COMPRESS_LEVEL) -> bytes:
    """One uint8 greyscale image (H, W) -> PNG file bytes (deflate ``level`` 0-9)."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (H, W), got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def png_data_uri(image: np.ndarray, level: int = COMPRESS_LEVEL) -> str:
    """One uint8 image (H, W) -> a ``data:image/png;base64,...`` string for <img src>."""
    return PREFIX + base64.b64encode(encode_png(image, level)).decode("ascii")


def png_data_uris(images: np.ndarray) -> list[str]:
    """uint8 images (N, H, W) -> one data URI each."""
    return [png_data_uri(image) for image in images]


def drawing_data_uri(digit: np.ndarray, size: int = 280, invert: bool = False) -> str:
    """A 28x28 MNIST digit as a client would send it: enlarged to ``size`` x ``size``
    (bilinear, smooth like a drawn stroke), white ink on black or, ``invert``, black on
    white, compressed as a browser compresses a canvas."""
    drawing = np.asarray(Image.fromarray(np.asarray(digit, np.uint8)).resize(
        (size, size), Image.Resampling.BILINEAR))
    return png_data_uri(255 - drawing if invert else drawing, level=6)


def png_bytes_from_data_uri(uri) -> bytes:
    """The PNG file inside a ``data:image/png;base64,...`` URI."""
    if not isinstance(uri, str) or not uri.startswith(PREFIX):
        raise BadImage(f"'image' must be a PNG data URI starting with {PREFIX}, "
                       "as canvas.toDataURL('image/png') gives.")
    try:
        return base64.b64decode(uri[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise BadImage(f"'image' is not valid base64 after {PREFIX}.") from None


def read_png(data: bytes, max_side: int = MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Decode a PNG of any mode into (luminance, alpha), float arrays (H, W) in [0, 1].

    The size is checked from the header, before any pixel is decompressed.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise BadImage(f"'image' has far more pixels than the largest accepted, "
                       f"{max_side}x{max_side}; scale it down first.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadImage("'image' is not a PNG file; send the canvas as "
                       "canvas.toDataURL('image/png').") from None
    width, height = image.size
    if width > max_side or height > max_side:
        raise BadImage(f"'image' is {width}x{height} pixels, more than the largest accepted, "
                       f"{max_side}x{max_side}; scale it down first.")
    try:
        image.load()
        return _luminance_alpha(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadImage("'image' is a damaged or truncated PNG file; send it again.") from None


def _luminance_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    if image.mode.startswith("I"):
        # 16-bit greyscale: Pillow's conversion to 8 bits clips instead of scaling.
        luminance = np.asarray(image, dtype=np.float64) / 65535.0
        return np.clip(luminance, 0.0, 1.0), np.ones_like(luminance)
    pixels = np.asarray(image.convert("LA"), dtype=np.float64) / 255.0
    return pixels[..., 0], pixels[..., 1]
