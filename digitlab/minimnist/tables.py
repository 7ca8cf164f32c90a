"""Reading numeric CSV tables with validation a user can act on.

Every problem (missing or empty file, wrong columns, a non-numeric or missing
cell, a value out of range) becomes a :class:`~digitlab.errors.UserError` whose
one sentence names the file, the place (line and column) and the fix.
Line numbers count the header as line 1, as a text editor shows them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from digitlab.errors import UserError

_MISSING_MARKERS = {"", "nan", "na", "n/a", "null", "none"}


def _listing(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_table(path: str | os.PathLike, columns: Sequence[str], what: str = "a CSV table",
               hint: str = "regenerate it with scripts/generate_data.py") -> pd.DataFrame:
    """Read ``path`` as a table with exactly ``columns`` (any order), all numeric.

    Returns a float64 DataFrame with the columns in the order given.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; {hint}.")
    if not path.is_file():
        raise UserError(f"{path} is not a file; pass the path of {what}.")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty; {hint}.")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                          index_col=False)  # a trailing comma on data rows must not shift columns
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} has no header line; {hint}.") from None
    except pd.errors.ParserError as err:
        detail = str(err).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise UserError(f"{path} is not a well-formed CSV ({detail}); {hint}.") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text CSV file; pass the path of {what}.") from None
    _check_columns(path, list(raw.columns), list(columns), what)
    if raw.empty:
        raise UserError(f"{path} has a header but no data rows; {hint}.")
    raw = raw[list(columns)]
    numeric = raw.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    bad = numeric.isna().to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        cell = raw.iat[row, col]
        where = f"line {row + 2}, column {columns[col]}"
        if cell.strip().lower() in _MISSING_MARKERS:
            raise UserError(f"{path} has a missing (empty or NaN) value at {where}; "
                            f"fill it in or {hint}.")
        raise UserError(f"{path} has a non-numeric value {cell!r} at {where}; "
                        f"every cell must be a number.")
    return numeric.astype(np.float64)


def _check_columns(path: Path, found: list[str], expected: list[str], what: str) -> None:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing and extra:
        raise UserError(f"{path} does not have the columns of {what}: missing {_listing(missing)}; "
                        f"unexpected {_listing(extra)}.")
    if missing:
        raise UserError(f"{path} is missing column(s) {_listing(missing)} of {what}.")
    if extra:
        raise UserError(f"{path} has unexpected column(s) {_listing(extra)}; "
                        f"{what} has exactly {_listing(expected, 2)} ({len(expected)} columns).")


def check_integer_range(values: np.ndarray, low: int, high: int, path: str | os.PathLike,
                        name: str) -> np.ndarray:
    """``values`` (rows first) as int64 if all are whole numbers in [low, high]."""
    values = np.asarray(values, dtype=np.float64)
    rows = values.reshape(len(values), -1)
    outside = (rows < low) | (rows > high) | ~np.isfinite(rows)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise UserError(f"{path} has {name} outside {low}-{high} (found {rows[row, col]:g} on "
                        f"line {row + 2}); {name} must be whole numbers from {low} to {high}.")
    fractional = rows != np.round(rows)
    if fractional.any():
        row, col = np.argwhere(fractional)[0]
        raise UserError(f"{path} has non-integer {name} (found {rows[row, col]:g} on line "
                        f"{row + 2}); {name} must be whole numbers from {low} to {high}.")
    return values.astype(np.int64)
