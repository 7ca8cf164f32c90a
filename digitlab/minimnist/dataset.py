"""Mini MNIST: procedurally drawn 9 x 8 digits (72 pixels, intensities 0-255).

Each digit is a stroke template (line segments and elliptic arcs in a unit box,
some digits with several handwriting styles). Every sample gets its own random
affine transform (rotation, scale, aspect, shear, shift), a small independent
offset per stroke, a random pen width and ink level; strokes are rasterised on a
supersampled grid and averaged down to 9 rows x 8 columns (anti-aliasing), then
Gaussian pixel noise is added. ``mode="random"`` instead draws uniformly random
pixels with balanced labels: a chance-level control with no structure.

The CSV layout is ``pixel_0 ... pixel_71, label`` with one image per row in
row-major order. :func:`scale` is the single definition of the input scaling
used by every model downstream.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import UserError
from digitlab.minimnist.tables import check_integer_range, read_table
from digitlab.repro import atomic_write

ROWS, COLS = 9, 8
N_PIXELS = ROWS * COLS
PIXEL_COLUMNS = tuple(f"pixel_{i}" for i in range(N_PIXELS))
LABEL_COLUMN = "label"
COLUMNS = (*PIXEL_COLUMNS, LABEL_COLUMN)
MODES = ("digits", "random")
SUPERSAMPLE = 4  # each output pixel averages SUPERSAMPLE x SUPERSAMPLE sub-pixels


def scale(pixels: np.ndarray) -> np.ndarray:
    """The input scaling used by every model: intensities 0-255 -> float32 in [0, 1]."""
    return np.asarray(pixels, dtype=np.float32) / 255.0


SCALING = "pixel / 255 (float32 in [0, 1])"


@dataclass(frozen=True)
class Difficulty:
    """How much each sample departs from its template; :data:`KNOB_HELP` explains each knob."""

    rotation: float = 12.0
    scale: float = 0.12
    aspect: float = 0.08
    shear: float = 0.2
    shift: float = 0.08
    stroke_jitter: float = 0.04
    width_min: float = 0.9
    width_max: float = 1.5
    ink_min: float = 0.75
    noise: float = 12.0


PRESETS = {
    "easy": Difficulty(rotation=5.0, scale=0.05, aspect=0.03, shear=0.05, shift=0.03,
                       stroke_jitter=0.015, width_min=1.1, width_max=1.4, ink_min=0.9,
                       noise=4.0),
    "default": Difficulty(),
    "hard": Difficulty(rotation=20.0, scale=0.2, aspect=0.12, shear=0.35, shift=0.12,
                       stroke_jitter=0.07, width_min=0.7, width_max=1.8, ink_min=0.5,
                       noise=30.0),
}
KNOBS = tuple(f.name for f in dataclasses.fields(Difficulty))
KNOB_HELP = {
    "rotation": "max |rotation| in degrees",
    "scale": "size factor drawn from 1 +- scale",
    "aspect": "width/height ratio drawn from 1 +- aspect",
    "shear": "max |horizontal shear|",
    "shift": "max |shift|, fraction of the image",
    "stroke_jitter": "max |offset| of each stroke, fraction of the image",
    "width_min": "thinnest pen, in pixels",
    "width_max": "thickest pen, in pixels",
    "ink_min": "faintest peak intensity, fraction of 255",
    "noise": "std of the Gaussian pixel noise (0-255 units)",
}


def difficulty(name: str = "default", **overrides: float | None) -> Difficulty:
    """A preset with explicit knob overrides (``None`` keeps the preset's value)."""
    if name not in PRESETS:
        raise ValueError(f"unknown difficulty {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name],
                               **{k: v for k, v in overrides.items() if v is not None})


# --- stroke templates in the unit box (x to the right, y downwards) -----------------

def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=float)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float,
         n: int = 20) -> np.ndarray:
    """Elliptic arc; angles in degrees, 90 = bottom, 270 = top (y points down)."""
    t = np.deg2rad(np.linspace(start, stop, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _bezier(p0, p1, p2, n: int = 12) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


# Each digit has one or more styles; each style is a list of strokes (point chains).
TEMPLATES: dict[int, list[list[np.ndarray]]] = {
    0: [[_arc(0.5, 0.5, 0.3, 0.38, 0, 360, 28)]],
    1: [[_line((0.52, 0.12), (0.5, 0.88))],
        [_line((0.34, 0.3), (0.55, 0.12), (0.52, 0.88))],
        [_line((0.34, 0.3), (0.55, 0.12), (0.52, 0.88)), _line((0.3, 0.88), (0.74, 0.88))]],
    2: [[np.vstack([_arc(0.5, 0.33, 0.28, 0.21, 190, 400), _line((0.22, 0.86))]),
         _line((0.22, 0.86), (0.82, 0.86))]],
    3: [[_arc(0.48, 0.3, 0.26, 0.19, 200, 450), _arc(0.48, 0.69, 0.3, 0.2, 270, 525)]],
    4: [[_line((0.62, 0.12), (0.18, 0.62), (0.84, 0.62)), _line((0.64, 0.3), (0.64, 0.9))],
        [_line((0.24, 0.12), (0.22, 0.58), (0.82, 0.58)), _line((0.66, 0.14), (0.66, 0.9))]],
    5: [[_line((0.78, 0.13), (0.3, 0.13), (0.27, 0.48)), _arc(0.48, 0.66, 0.29, 0.22, 235, 515)]],
    6: [[_bezier((0.72, 0.1), (0.2, 0.25), (0.24, 0.7)), _arc(0.5, 0.68, 0.26, 0.2, 0, 360, 24)]],
    7: [[_line((0.18, 0.13), (0.82, 0.13), (0.4, 0.9))],
        [_line((0.18, 0.13), (0.82, 0.13), (0.4, 0.9)), _line((0.38, 0.52), (0.76, 0.52))]],
    8: [[_arc(0.5, 0.3, 0.22, 0.18, 0, 360, 22), _arc(0.5, 0.69, 0.27, 0.2, 0, 360, 24)]],
    9: [[_arc(0.5, 0.32, 0.26, 0.2, 0, 360, 24), _bezier((0.76, 0.32), (0.76, 0.7), (0.58, 0.9))],
        [_arc(0.5, 0.32, 0.26, 0.2, 0, 360, 24), _line((0.76, 0.32), (0.72, 0.9))]],
}

# Centres of the supersampled grid in output-pixel units (x = column, y = row).
_SUB_Y, _SUB_X = np.meshgrid((np.arange(ROWS * SUPERSAMPLE) + 0.5) / SUPERSAMPLE,
                             (np.arange(COLS * SUPERSAMPLE) + 0.5) / SUPERSAMPLE, indexing="ij")
_SUB_POINTS = np.stack([_SUB_X.ravel(), _SUB_Y.ravel()], axis=1)


def _segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance from each point (P, 2) to the nearest of the segments starts -> ends (S, 2)."""
    # x and y are handled as separate (P, S) planes: much faster than a trailing axis of 2.
    dx, dy = (ends - starts).T
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    rx = points[:, :1] - starts[:, 0]
    ry = points[:, 1:] - starts[:, 1]
    t = np.clip((rx * dx + ry * dy) / length2, 0.0, 1.0)
    ex, ey = rx - t * dx, ry - t * dy
    return np.sqrt((ex * ex + ey * ey).min(axis=1))


def _random_affine(rng: np.random.Generator, k: Difficulty) -> np.ndarray:
    """A 2 x 2 matrix: rotation @ shear @ anisotropic scale, about the box centre."""
    angle = np.deg2rad(rng.uniform(-k.rotation, k.rotation))
    size = rng.uniform(1 - k.scale, 1 + k.scale)
    ratio = rng.uniform(1 - k.aspect, 1 + k.aspect)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-k.shear, k.shear)], [0.0, 1.0]])
    return rot @ shear @ np.diag([size * ratio, size / ratio])


def draw_digit(digit: int, rng: np.random.Generator, k: Difficulty) -> np.ndarray:
    """One (9, 8) uint8 image of ``digit`` drawn with the knobs ``k``."""
    styles = TEMPLATES[digit]
    strokes = styles[rng.integers(len(styles))]
    matrix = _random_affine(rng, k)
    shift = rng.uniform(-k.shift, k.shift, size=2)
    starts, ends = [], []
    for stroke in strokes:
        moved = (stroke - 0.5 + rng.uniform(-k.stroke_jitter, k.stroke_jitter, 2)) @ matrix.T
        pixels = (moved + 0.5 + shift) * [COLS, ROWS]
        starts.append(pixels[:-1])
        ends.append(pixels[1:])
    dist = _segment_distance(_SUB_POINTS, np.vstack(starts), np.vstack(ends))
    half_width = rng.uniform(k.width_min, k.width_max) / 2
    ink = (dist <= half_width).astype(float).reshape(ROWS, SUPERSAMPLE, COLS, SUPERSAMPLE)
    coverage = ink.mean(axis=(1, 3))
    image = 255.0 * rng.uniform(k.ink_min, 1.0) * coverage + rng.normal(0, k.noise, coverage.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def generate(n_per_class: int = 100, seed: int = 0, mode: str = "digits",
             knobs: Difficulty | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` images of each digit, shuffled: uint8 (N, 9, 8) and int64 (N,) labels."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if n_per_class < 1:
        raise ValueError("n_per_class must be at least 1")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10, dtype=np.int64), n_per_class))
    if mode == "random":
        images = rng.integers(0, 256, size=(len(labels), ROWS, COLS), dtype=np.uint8)
        return images, labels
    k = knobs or PRESETS["default"]
    images = np.stack([draw_digit(int(d), rng, k) for d in labels])
    return images, labels


# Memory held per image at the peak, while writing the CSV: the int64 table (72 pixels
# and the label, 8 bytes each) and its int64 copy, the uint8 image, the label and the
# label array it was shuffled from.
BYTES_PER_IMAGE = 2 * (N_PIXELS + 1) * 8 + N_PIXELS + 2 * 8


def physical_memory() -> int | None:
    """Bytes of RAM in this machine, or None where the OS does not say (e.g. Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(n_per_class: int, memory: int | None = None) -> None:
    """UserError, before anything is allocated, if ``n_per_class`` images per digit
    cannot be generated and written within ``memory`` bytes (default: this machine's RAM)."""
    memory = physical_memory() if memory is None else memory
    needed = 10 * n_per_class * BYTES_PER_IMAGE
    if memory is not None and needed > memory:
        raise UserError(f"{n_per_class:,} images per digit would need about "
                        f"{needed / 1e9:,.1f} GB of memory but this machine has "
                        f"{memory / 1e9:,.1f} GB; use at most "
                        f"{memory // (10 * BYTES_PER_IMAGE):,} per digit.")


def write_csv(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write ``pixel_0 ... pixel_71, label`` atomically (same data -> same bytes)."""
    table = np.column_stack([np.asarray(images).reshape(len(labels), N_PIXELS),
                             np.asarray(labels)]).astype(np.int64)
    return _write_rows(Path(path), COLUMNS, table)


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate a Mini MNIST CSV: uint8 (N, 9, 8) images, int64 labels."""
    table = read_table(path, COLUMNS, what="a Mini MNIST CSV")
    pixels = check_pixels(table[list(PIXEL_COLUMNS)].to_numpy(), path)
    return pixels.reshape(-1, ROWS, COLS), check_labels(table[LABEL_COLUMN].to_numpy(), path)


def check_pixels(values: np.ndarray, path) -> np.ndarray:
    return check_integer_range(values, 0, 255, path, "pixel values").astype(np.uint8)


def check_labels(values: np.ndarray, path) -> np.ndarray:
    return check_integer_range(values, 0, 9, path, "labels").astype(np.int64)


SPLIT_FILES = ("X_train.csv", "X_test.csv", "y_train.csv", "y_test.csv")
_SPLIT_HINT = "run scripts/split_data.py first"


def write_split(folder: str | os.PathLike, train: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray]) -> list[Path]:
    """Write X_train.csv, X_test.csv (pixel columns) and y_train.csv, y_test.csv (label)."""
    folder = Path(folder)
    written = []
    for part, (images, labels) in (("train", train), ("test", test)):
        pixels = np.asarray(images).reshape(len(labels), N_PIXELS).astype(np.int64)
        written.append(_write_rows(folder / f"X_{part}.csv", PIXEL_COLUMNS, pixels))
        written.append(_write_rows(folder / f"y_{part}.csv", (LABEL_COLUMN,),
                                   np.asarray(labels, dtype=np.int64)[:, None]))
    return written


def _write_rows(path: Path, columns: tuple[str, ...], rows: np.ndarray) -> Path:
    with atomic_write(path) as handle:
        handle.write(",".join(columns) + "\n")
        np.savetxt(handle, rows, fmt="%d", delimiter=",")
    return path


def read_split(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the four split files: ``x_train``/``x_test`` uint8 (N, 9, 8), ``y_*`` int64."""
    folder = Path(folder)
    out = {}
    for part in ("train", "test"):
        x_path, y_path = folder / f"X_{part}.csv", folder / f"y_{part}.csv"
        x_table = read_table(x_path, PIXEL_COLUMNS, "a Mini MNIST pixel file", _SPLIT_HINT)
        y_table = read_table(y_path, (LABEL_COLUMN,), "a Mini MNIST label file", _SPLIT_HINT)
        if len(x_table) != len(y_table):
            raise UserError(f"{x_path} has {len(x_table)} rows but {y_path} has {len(y_table)}; "
                            f"{_SPLIT_HINT} again to rewrite both.")
        out[f"x_{part}"] = check_pixels(x_table.to_numpy(), x_path).reshape(-1, ROWS, COLS)
        out[f"y_{part}"] = check_labels(y_table[LABEL_COLUMN].to_numpy(), y_path)
    return out
