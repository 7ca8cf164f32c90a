"""Noisy MNIST on disk: build the corrupted sets, save them as ``.npy``, load them back.

Layout under :func:`digitlab.paths.noisy_mnist_dir` (``data/noisy_mnist/``)::

    <set>/train_images.npy  train_labels.npy   # uint8 (N, 28, 28), int64 (N,)
    <set>/val_images.npy    val_labels.npy     # the source's validation split
    <set>/test_images.npy   test_labels.npy
    manifest.json                              # source summary, seed, sets

``<set>`` is ``clean`` (the MNIST source as loaded) or one of
:data:`digitlab.data.noise.NOISE_TYPES`. The validation split is kept as its
own pair of files (not folded into train) so that models stop early and are
tuned on validation while test stays untouched; cross-validation pools train
and validation. Each split of each set gets its own noise stream,
``seed`` mixed with the split's index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from digitlab import paths
from digitlab.data import noise
from digitlab.data.splits import SPLITS, Splits
from digitlab.errors import UserError
from digitlab.repro import atomic_target, save_json

SETS = ("clean", *noise.NOISE_TYPES)
MAKE_COMMAND = "python scripts/make_noisy_mnist.py (or make noisy)"


def split_seed(seed: int, split: str) -> tuple[int, int]:
    """The noise stream of one split: every split of a set gets its own."""
    return seed, SPLITS.index(split)


def corrupt_splits(splits: Splits, kind: str, seed: int) -> Splits:
    """A copy of ``splits`` with every split corrupted by ``kind`` (``"clean"``: as is),
    each split from its own noise stream, exactly as the saved noisy sets are."""
    arrays = {}
    for split in SPLITS:
        images, labels = splits.split(split)
        arrays[f"{split}_images"] = (images if kind == "clean"
                                     else noise.corrupt(images, kind, split_seed(seed, split)))
        arrays[f"{split}_labels"] = np.asarray(labels, np.int64)
    described = splits.description if kind == "clean" else \
        f"{splits.description}, corrupted with {kind} noise"
    return splits.replace(description=described, noise=kind, **arrays)


def snr_report(clean: np.ndarray, noisy: np.ndarray, kind: str) -> dict:
    """Measured SNRs (dB) of a saved uint8 set against its clean images.

    ``snr_db``: against the 0 dBW reference (signal power 1.0), the definition
    in :mod:`digitlab.data.noise`; ``snr_db_signal_power``: against the mean
    squared pixel value of the reference images instead. For contrast-awgn the
    reference is the contrast-reduced image, so only the added noise counts;
    for motion-blur the "noise" is what the blur changed, a distortion measure.
    """
    reference = noise.to_float(clean)
    if kind == "contrast-awgn":
        reference = reference * noise.CONTRAST_FACTOR
    noisy = noise.to_float(noisy)
    return {"snr_db": noise.measured_snr_db(reference, noisy),
            "snr_db_signal_power": noise.measured_snr_db(reference, noisy, signal_power=None)}


def save_set(noisy: Splits, root: str | Path) -> Path:
    """Write the six ``.npy`` files of ``noisy`` under ``root/<noise>/`` (atomically each)."""
    folder = Path(root) / noisy.noise
    for split in SPLITS:
        for part, array in zip(("images", "labels"), noisy.split(split), strict=True):
            with atomic_target(folder / f"{split}_{part}.npy") as tmp:
                np.save(tmp, array, allow_pickle=False)
    return folder


def check_own_folder(root: str | Path) -> None:
    """UserError unless ``root`` is new or holds only what make_noisy_mnist.py writes there:
    the script replaces the whole folder, and must never delete a user's other files."""
    root = Path(root)
    if not root.exists():
        return
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder for the noisy sets; give --output-dir "
                        "a folder of its own.")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in {*SETS, "manifest.json"})
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(f"{root} holds {shown} beside the noisy sets, and make_noisy_mnist.py "
                        "replaces the whole folder; give --output-dir a folder of its own.")


def save_manifest(root: str | Path, summary: dict, seed: int, sets: list[str]) -> Path:
    return save_json({"source": summary, "seed": seed, "sets": sets,
                      "noise": noise_parameters()}, Path(root) / "manifest.json")


def noise_parameters() -> dict:
    """The corruption settings, for manifests and metrics files."""
    return {
        "snr_definition": "SNR_dB = 10 log10(1.0 / sigma^2) on [0, 1] pixels (0 dBW reference)",
        "awgn": {"snr_db": noise.AWGN_SNR_DB, "sigma": noise.sigma_for_snr(noise.AWGN_SNR_DB)},
        "motion-blur": {"length_px": noise.BLUR_LENGTH, "angle_deg": noise.BLUR_ANGLE_DEG},
        "contrast-awgn": {"contrast_factor": noise.CONTRAST_FACTOR,
                          "snr_db": noise.CONTRAST_AWGN_SNR_DB,
                          "sigma": noise.sigma_for_snr(noise.CONTRAST_AWGN_SNR_DB)},
    }


def load_set(name: str, root: str | Path | None = None,
             source: dict | None = None) -> Splits:
    """Load one saved set, checking every file; UserError naming the fix if not.
    ``source``: the manifest's source summary, which the set records."""
    if name not in SETS:
        raise UserError(f"unknown noisy MNIST set {name!r}; choose one of {', '.join(SETS)}.")
    folder = Path(root or paths.noisy_mnist_dir()) / name
    arrays = {}
    for split in SPLITS:
        images = _load_array(folder / f"{split}_images.npy")
        labels = _load_array(folder / f"{split}_labels.npy")
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise UserError(f"{folder / f'{split}_images.npy'} holds {images.dtype} "
                            f"{images.shape}, not uint8 (N, 28, 28) images; "
                            f"re-create it with {MAKE_COMMAND}.")
        if (labels.ndim != 1 or len(labels) != len(images)
                or not np.issubdtype(labels.dtype, np.integer)
                or (len(labels) and (labels.min() < 0 or labels.max() > 9))):
            raise UserError(f"{folder / f'{split}_labels.npy'} does not hold one digit label "
                            f"per image; re-create it with {MAKE_COMMAND}.")
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.astype(np.int64)
    source = source or {}
    description = source.get("description", f"noisy MNIST set in {folder.parent}")
    return Splits(**arrays, source=source.get("source", "noisy-mnist"),
                  description=description if name == "clean"
                  else f"{description}, corrupted with {name} noise", noise=name)


def load_manifest(root: str | Path | None = None) -> dict:
    path = Path(root or paths.noisy_mnist_dir()) / "manifest.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist; create the noisy sets with {MAKE_COMMAND}.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable manifest ({err}); re-create the noisy sets "
                        f"with {MAKE_COMMAND}.") from None


def load_sets(names=SETS, root: str | Path | None = None) -> tuple[dict, dict[str, Splits]]:
    """The manifest and the sets ``names``, each of which the manifest must list.

    Files of a set that the last ``make_noisy_mnist.py`` run did not write may come
    from an older run (another seed or source); they are refused, not mixed in.
    """
    manifest = load_manifest(root)
    missing = [name for name in names if name not in manifest.get("sets", [])]
    if missing:
        raise UserError(f"the noisy sets {', '.join(missing)} were not built by the last run "
                        f"(its manifest lists {', '.join(manifest.get('sets', [])) or 'none'}); "
                        "rebuild them all with python scripts/make_noisy_mnist.py --noise all "
                        "(or make noisy).")
    return manifest, {name: load_set(name, root, manifest.get("source")) for name in names}


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path} does not exist; create the noisy sets with {MAKE_COMMAND}.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable .npy file ({err}); "
                        f"re-create it with {MAKE_COMMAND}.") from None
