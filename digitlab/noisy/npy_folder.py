"""Noisy MNIST from four ``.npy`` files of your own, as the n-MNIST notebooks start.

A folder holding ``train_images.npy``, ``train_labels.npy``, ``test_images.npy``
and ``test_labels.npy`` is read as one noisy set:

- images ``(N, 28, 28)`` or flat ``(N, 784)``, either uint8 0-255 or float in
  [0, 1] (float pixels are rounded to uint8, the form every model here reads:
  at most half a grey level, 1/510, away from the file);
- labels integer digits 0-9 ``(N,)`` or one-hot rows ``(N, 10)``;
- the validation split (early stopping, model choice) is carved from the
  training files, stratified and seeded, with the size a local MNIST folder
  gets (:func:`digitlab.data.sources.validation_size`); the test files stay
  the test split.

Files are read with ``allow_pickle=False``, so an object array is refused, never
unpickled. Anything else (a missing file, another shape, NaN, a label outside
0-9, a float pixel outside [0, 1], lengths that disagree) is one sentence naming
the file. :func:`study_sets` is what the noisy notebook calls: this folder, or
the sets ``scripts/make_noisy_mnist.py`` writes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from digitlab.data.sources import validation_size
from digitlab.data.splits import Splits, stratified_indices
from digitlab.errors import UserError
from digitlab.noisy.sets import SETS, load_sets

FILES = ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy")
SOURCE = "npy-folder"
_FORMS = ("uint8 0-255 or float 0-1 images of shape (N, 28, 28) or (N, 784), "
          "and integer 0-9 or one-hot (N, 10) labels")


def _refuse(path: Path, problem: str, fix: str = f"save {_FORMS}") -> UserError:
    return UserError(f"{path} {problem}; {fix}.")


def read_array(path: str | os.PathLike) -> np.ndarray:
    """``np.load`` without pickles; one sentence naming the file if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, "does not exist", "a folder of your own needs "
                      + ", ".join(FILES) + " (or build the sets with "
                      "python scripts/make_noisy_mnist.py)")
    _check_header(path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if str(err).startswith("Object arrays"):
            raise _refuse(path, "holds a pickled object array, which is not loaded because "
                                "unpickling can run code",
                          "save a plain numeric array with np.save") from None
        # Anything that is neither .npy nor .npz numpy would only open as a pickle.
        raise _refuse(path, "is not a readable .npy file", "save it with np.save") from None
    except (OSError, EOFError) as err:
        raise _refuse(path, f"is not a readable .npy file ({str(err).rstrip('.')})",
                      "save it with np.save") from None
    if not isinstance(array, np.ndarray):  # an .npz archive saved under a .npy name
        array.close()
        raise _refuse(path, "is an .npz archive, not one array", "save one array with np.save")
    return array


def _check_header(path: Path) -> None:
    """Refuse, from its header alone, a ``.npy`` file whose data is not what the header
    announces: the array then never takes more memory than the file's size."""
    with open(path, "rb") as handle:
        prefix = handle.read(len(npy_format.MAGIC_PREFIX))
        if prefix.startswith(b"PK"):
            raise _refuse(path, "is an .npz archive, not one array", "save one array with np.save")
        if prefix != npy_format.MAGIC_PREFIX:
            return  # np.load refuses it below: it could only be a pickle
        handle.seek(0)
        try:
            version = npy_format.read_magic(handle)
            read_header = {(1, 0): npy_format.read_array_header_1_0,
                           (2, 0): npy_format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"format version {version[0]}.{version[1]}")
            shape, _, dtype = read_header(handle)
        except ValueError as err:
            raise _refuse(path, f"is not a readable .npy file ({str(err).rstrip('.')})",
                          "save it with np.save") from None
        data_start = handle.tell()
    if dtype.hasobject:
        raise _refuse(path, "holds a pickled object array, which is not loaded because "
                            "unpickling can run code", "save a plain numeric array with np.save")
    announced = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    held = path.stat().st_size - data_start
    if held != announced:
        raise _refuse(path, f"announces an array of shape {shape} ({dtype}, {announced:,} bytes) "
                            f"but holds {held:,} bytes of data, so it is truncated or damaged",
                      "save it again with np.save")


def read_images(path: str | os.PathLike) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` images from one file in any of the accepted forms."""
    path = Path(path)
    images = read_array(path)
    if images.ndim == 2 and images.shape[1] == 28 * 28:
        images = images.reshape(len(images), 28, 28)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
        raise _refuse(path, f"holds an array of shape {images.shape}, not N > 0 images of "
                            "shape (N, 28, 28) or (N, 784)")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise _refuse(path, f"holds {images.dtype} pixels, not uint8 (0-255) or float (0-1)",
                      "convert them with images.astype(np.uint8) or images / 255.0")
    if not np.isfinite(images).all():
        raise _refuse(path, "holds NaN or infinite pixels", "replace them before saving")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise _refuse(path, f"holds float pixels from {low:g} to {high:g}, outside [0, 1]",
                      "divide 0-255 pixels by 255, or save them as uint8")
    return np.rint(images * 255.0).astype(np.uint8)


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """int64 digits ``(N,)`` from integer labels or one-hot rows."""
    path = Path(path)
    labels = read_array(path)
    if labels.ndim == 2 and labels.shape[1] == 10 and len(labels):
        return _from_one_hot(path, labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise _refuse(path, f"holds an array of shape {labels.shape}, not N > 0 labels of "
                            "shape (N,) or one-hot rows of shape (N, 10)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise _refuse(path, f"holds {labels.dtype} labels, not integer digits 0-9",
                      "save them with labels.astype(np.int64)")
    if labels.min() < 0 or labels.max() > 9:
        raise _refuse(path, f"holds labels from {labels.min()} to {labels.max()}, "
                            "outside the digits 0-9")
    return labels.astype(np.int64)


def _from_one_hot(path: Path, rows: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(rows.dtype, np.integer) or np.issubdtype(rows.dtype, np.floating)
            or rows.dtype == np.bool_):
        raise _refuse(path, f"holds {rows.dtype} one-hot rows, not numbers")
    if np.issubdtype(rows.dtype, np.floating) and not np.isfinite(rows).all():
        raise _refuse(path, "holds NaN or infinite values in its one-hot rows")
    one_hot = ((rows == 0) | (rows == 1)).all() and (rows.sum(axis=1) == 1).all()
    if not one_hot:
        raise _refuse(path, "holds (N, 10) rows that are not one-hot (a single 1, nine 0s)")
    return rows.argmax(axis=1).astype(np.int64)


def load_npy_folder(folder: str | os.PathLike, *, seed: int = 0,
                    name: str | None = None) -> tuple[Splits, dict]:
    """The folder's four files as one :class:`~digitlab.data.splits.Splits` and a summary
    for metrics files.

    ``name`` (default: the folder's name) labels the set in tables and figures.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; pass a folder that holds "
                        f"{', '.join(FILES)}.")
    arrays = {}
    for split in ("train", "test"):
        images = read_images(folder / f"{split}_images.npy")
        labels = read_labels(folder / f"{split}_labels.npy")
        if len(images) != len(labels):
            raise UserError(f"{folder / f'{split}_images.npy'} holds {len(images)} images but "
                            f"{folder / f'{split}_labels.npy'} holds {len(labels)} labels; "
                            "save one label per image.")
        arrays[split] = images, labels
    train_images, train_labels = arrays["train"]
    n_val = validation_size(train_labels)
    kept, held = stratified_indices(train_labels, n_val, seed,
                                    what=str(folder / "train_labels.npy"),
                                    fix="use at least two training images of every digit")
    n_train, n_test = len(train_labels), len(arrays["test"][1])
    summary = {
        "source": SOURCE, "folder": str(folder.resolve()),
        "description": f"your .npy files in {folder.resolve()}: {n_train:,} training images "
                       f"({len(held):,} of them held out, stratified, for validation) and "
                       f"{n_test:,} test images",
        "n_train": int(len(kept)), "n_val": int(len(held)), "n_test": int(n_test),
        "validation": {"from": "train_images.npy", "stratified": True, "seed": seed,
                       "size": int(len(held))},
    }
    noisy = Splits(train_images[kept], train_labels[kept], train_images[held],
                   train_labels[held], *arrays["test"], source=SOURCE,
                   description=summary["description"], noise=name or folder.resolve().name)
    return noisy, summary


def study_sets(data_dir: str | os.PathLike | None = None, *,
               seed: int = 0) -> tuple[dict, dict | None, dict[str, Splits]]:
    """What the noisy notebook studies: (data summary, noise settings, sets by name).

    ``data_dir`` None: every set the last ``make_noisy_mnist.py`` run wrote (its
    manifest must list them all); a folder with ``manifest.json``: the same
    layout written elsewhere (``--output-dir``); any other folder: its four
    ``.npy`` files as the only set, whose noise is unknown (settings None).
    """
    if data_dir is None or (Path(data_dir) / "manifest.json").is_file():
        manifest, sets = load_sets(SETS, data_dir)
        return {**manifest["source"], "noise_seed": manifest["seed"]}, manifest["noise"], sets
    noisy, summary = load_npy_folder(data_dir, seed=seed)
    return summary, None, {noisy.noise: noisy}
