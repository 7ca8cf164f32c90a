"""What every benchmark shares: headline numbers over seeds, and where results go.

A headline number is a mean over seeds with its spread; the minimum is shown
beside it and targets are judged on the mean (:func:`over_seeds`). Only a run
with every option at its default writes the canonical results file that the
README quotes; any other run writes beside it, named by what differs
(:func:`output_path`), so a quick check or an experiment never overwrites a
measured number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def over_seeds(values: Sequence[float], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean, (population) standard deviation, minimum and maximum of one number per seed."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std()), "min": float(array.min()),
            "max": float(array.max()), "n_seeds": len(array),
            "per_seed": {str(s): float(v) for s, v in zip(seeds, array, strict=True)}}


def changed(options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options whose value differs from its default (in the order of ``defaults``)."""
    return {name: options[name] for name, default in defaults.items()
            if _normal(options[name]) != _normal(default)}


def _normal(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    return value


# The full MNIST: training (train + validation) and test digits.
FULL_MNIST_SIZE = (60_000, 10_000)


def full_mnist_naming(options: Mapping[str, Any], defaults: Mapping[str, Any],
                      data: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as :func:`output_path` should see them for a run on ``data`` (a
    ``Splits.summary()``): on a full-size set, which folder holds it does not change the
    run (the file records it), so the data options count as their defaults and the run
    writes the canonical file the full-MNIST column of the results table reads."""
    if (data["n_train"] + data["n_val"], data["n_test"]) != FULL_MNIST_SIZE:
        return dict(options)
    return {**options, **{key: defaults[key] for key in ("source", "data_dir") if key in defaults}}


def output_path(canonical: Path, options: Mapping[str, Any], defaults: Mapping[str, Any],
                explicit: Path | None = None) -> Path:
    """``explicit`` if given; the canonical file when no option differs from its default;
    else a sibling named by the differences, e.g. ``benchmark_quick.json`` or
    ``benchmark_seeds-0_noise-motion-blur.json``."""
    if explicit is not None:
        return explicit
    differences = changed(options, defaults)
    if not differences:
        return canonical
    parts = []
    for name, value in differences.items():
        if value is True:
            parts.append(name)
        else:
            shown = "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            parts.append(f"{name}-{shown}")
    slug = "_".join(re.sub(r"[^A-Za-z0-9.+-]+", "-", part) for part in parts)
    return canonical.with_name(f"{canonical.stem}_{slug}{canonical.suffix}")


def add_output_option(parser, canonical: str) -> None:
    """``--output``: where the results go; by default ``canonical`` (relative to results/)
    for the default run, else a sibling named by the options that differ."""
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default: results/{canonical} for the default run, else a "
                             "sibling named by the options that differ")
