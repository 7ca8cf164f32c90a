"""Reading and writing IDX, the file format of MNIST and its relatives.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in
big-endian C order. Files may be gzip-compressed (recognised by content, not
by name). Every check that can fail names the file, so a truncated download or
a file that is not IDX at all gives one clear sentence instead of a traceback.

>>> images = read_idx("data/raw/mnist/t10k-images-idx3-ubyte.gz")   # (10000, 28, 28) uint8
>>> write_idx("digits-idx3-ubyte.gz", images[:100])
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from digitlab.errors import UserError
from digitlab.repro import atomic_write

# IDX type code -> big-endian NumPy dtype
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
# The largest payload read from one file: far above the MNIST family (EMNIST ByClass's
# 697,932 training images of 28 x 28 bytes), far below what a header can claim (255
# dimensions of up to 2^32 - 1 each), so a damaged header is refused before any allocation.
MAX_PAYLOAD_BYTES = 8 * 2**30
# Deflate cannot expand data by more than about 1032 to 1, so a gzip file announcing
# more than this many times its own size is truncated or not the file it claims to be.
_MAX_GZIP_RATIO = 1032
# Decompressed in pieces of at most this size, so memory stays the size of the payload.
_CHUNK = 2**22


def _open(path: Path) -> tuple[BinaryIO, int | None]:
    """The file as a stream of its IDX bytes, and its size on disk if it is not gzipped."""
    if not path.is_file():
        raise UserError(f"IDX file {path} does not exist; check the path "
                        "(MNIST files are named like train-images-idx3-ubyte.gz).")
    handle = open(path, "rb")
    if handle.read(2) == _GZIP_MAGIC:
        handle.close()
        return gzip.open(path, "rb"), None
    handle.seek(0)
    return handle, path.stat().st_size


def _read_header(stream: BinaryIO, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """The dtype, the dimensions and the header's length in bytes."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in DTYPES \
            or magic[3] == 0:
        raise UserError(f"{name} is not an IDX file (bad magic number "
                        f"{magic.hex() or 'empty'}); pass an MNIST-format file.")
    ndim = magic[3]
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise UserError(f"IDX file {name} is truncated inside its header; "
                        "download or copy it again.")
    dims = tuple(int.from_bytes(raw_dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    return DTYPES[magic[2]], dims, 4 + 4 * ndim


def _payload_size(dtype: np.dtype, dims: tuple[int, ...], name: str) -> int:
    """Bytes the header announces, refused above :data:`MAX_PAYLOAD_BYTES` (Python ints:
    255 dimensions of up to 2^32 - 1 cannot overflow)."""
    expected = math.prod(dims) * dtype.itemsize
    if expected > MAX_PAYLOAD_BYTES:
        raise UserError(f"IDX file {name} announces {dims[0]:,} items of shape {dims[1:]} "
                        f"({expected:,} bytes), more than the {MAX_PAYLOAD_BYTES // 2**30} GiB "
                        "digitlab reads from one file; its header is damaged or it is not an "
                        "MNIST-format file, so download or copy it again.")
    return expected


def _truncated(name: str, dims: tuple[int, ...], expected: int, actual: int) -> UserError:
    return UserError(f"IDX file {name} is truncated: its header announces "
                     f"{dims[0]} items of shape {dims[1:]} ({expected} bytes) but only "
                     f"{actual} bytes follow; download or copy it again.")


def _trailing(name: str, dims: tuple[int, ...], extra: str) -> UserError:
    return UserError(f"IDX file {name} has {extra} unexpected bytes after the {dims[0]} "
                     "items its header announces; it is not a valid IDX file.")


def _check_raw_size(size: int, header: int, dims: tuple[int, ...], expected: int,
                    name: str) -> None:
    """An uncompressed file's size must be exactly its header plus the payload."""
    actual = size - header
    if actual < expected:
        raise _truncated(name, dims, expected, actual)
    if actual > expected:
        raise _trailing(name, dims, str(actual - expected))


def _check_gzip_size(path: Path, header: int, dims: tuple[int, ...], expected: int) -> None:
    """Refuse, before decompressing, a payload no gzip file of this size can hold."""
    size = path.stat().st_size
    if header + expected > _MAX_GZIP_RATIO * size:
        raise UserError(f"IDX file {path} is truncated or its header is damaged: the header "
                        f"announces {dims[0]:,} items of shape {dims[1:]} ({expected:,} bytes), "
                        f"more than a gzip file of {size:,} bytes can hold; download or copy "
                        "it again.")


def _read_payload(stream: BinaryIO, dtype: np.dtype, dims: tuple[int, ...], expected: int,
                  name: str) -> np.ndarray:
    """Exactly ``expected`` bytes into an array of ``dims``, then nothing more."""
    data = np.empty(dims, dtype=dtype)
    view = memoryview(data.reshape(-1).view(np.uint8))
    filled = 0
    while filled < expected:
        piece = stream.read(min(_CHUNK, expected - filled))
        if not piece:
            raise _truncated(name, dims, expected, filled)
        view[filled:filled + len(piece)] = piece
        filled += len(piece)
    extra = len(stream.read(_CHUNK))
    if extra:
        # Only one piece is counted: a stream of trailing zeros could be endless.
        raise _trailing(name, dims, str(extra) if extra < _CHUNK else f"at least {_CHUNK:,}")
    return data.astype(dtype.newbyteorder("="), copy=False)  # native byte order


def _read_stream(stream: BinaryIO, name: str, raw_size: int | None,
                 gzip_path: Path | None = None) -> np.ndarray:
    dtype, dims, header = _read_header(stream, name)
    expected = _payload_size(dtype, dims, name)
    if raw_size is not None:
        _check_raw_size(raw_size, header, dims, expected, name)
    if gzip_path is not None:
        _check_gzip_size(gzip_path, header, dims, expected)
    return _read_payload(stream, dtype, dims, expected, name)


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes; ``name`` is used in error messages."""
    return _read_stream(io.BytesIO(raw), name, len(raw))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a native-endian array.

    The header is read first and the file checked against it, so memory stays the
    size of the array the header announces, whatever the file holds after it.
    """
    path = Path(path)
    stream, raw_size = _open(path)
    with stream:
        if raw_size is not None:
            return _read_stream(stream, str(path), raw_size)
        try:
            return _read_stream(stream, str(path), None, gzip_path=path)
        except (OSError, EOFError, zlib.error) as err:
            raise UserError(f"IDX file {path} is a damaged gzip file ({err}); "
                            "download or copy it again.") from None


def encode_idx(array: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of ``array`` (uint8, int8, int16, int32, float32/64)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError("IDX stores arrays with 1 to 255 dimensions")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX, atomically; gzip it if ``compress`` (default: name ends .gz)."""
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, mtime=0)  # mtime=0: same array, same bytes
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return path


def load_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                  n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """An image file and its label file -> uint8 ``(N, H, W)`` images, int64 ``(N,)`` labels.

    Labels must lie in ``0 .. n_classes - 1`` (the ten digits of MNIST and Fashion-MNIST);
    one outside would otherwise surface much later as an index error inside a loss.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"{images_path} does not hold uint8 images (N, height, width) but "
                        f"{images.dtype} data of shape {images.shape}; pass an idx3-ubyte file.")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise UserError(f"{labels_path} does not hold uint8 labels (N,) but {labels.dtype} "
                        f"data of shape {labels.shape}; pass an idx1-ubyte label file.")
    if len(images) != len(labels):
        raise UserError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; pass matching files.")
    outside = np.flatnonzero(labels >= n_classes)
    if outside.size:
        raise UserError(f"{labels_path} holds label {labels[outside[0]]} at item {outside[0]} "
                        f"but labels must be 0-{n_classes - 1}; pass the label file that "
                        "belongs to these images.")
    return images, labels.astype(np.int64)
