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
import os
import zlib
from pathlib import Path

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


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"IDX file {path} does not exist; check the path "
                        "(MNIST files are named like train-images-idx3-ubyte.gz).")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"IDX file {path} is a damaged gzip file ({err}); "
                        "download or copy it again.") from None


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes; ``name`` is used in error messages."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in DTYPES or raw[3] == 0:
        raise UserError(f"{name} is not an IDX file (bad magic number "
                        f"{raw[:4].hex() or 'empty'}); pass an MNIST-format file.")
    dtype, ndim = DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"IDX file {name} is truncated inside its header; "
                        "download or copy it again.")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise UserError(f"IDX file {name} is truncated: its header announces "
                        f"{dims[0]} items of shape {dims[1:]} ({expected} bytes) but only "
                        f"{actual} bytes follow; download or copy it again.")
    if actual > expected:
        raise UserError(f"IDX file {name} has {actual - expected} unexpected bytes after "
                        f"the {dims[0]} items its header announces; it is not a valid IDX file.")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a native-endian array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


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
