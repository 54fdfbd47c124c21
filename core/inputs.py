"""Checking and normalising the two input tables before association.

Errors a user can cause get clear messages: a missing column is a
``ValueError`` naming it; duplicate ids are a ``RuntimeError`` (as Rubin's API
says); a column of the wrong type is coerced when that is lossless
(e.g. float ids with integral values, numeric strings) and rejected otherwise.
Rows with non-finite coordinates are kept but flagged, so they are excluded
from matching and counted, never crash and never vanish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .columns import SOURCE_REQUIRED, SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED

__all__ = ["CheckedObjects", "CheckedSources", "InputTableError", "check_objects", "check_sources"]

_OBJECT_FLOAT_COLUMNS = tuple(c for c in SS_OBJECT_REQUIRED if c not in ("ssObjectId", "designation"))


class InputTableError(ValueError):
    """An input table is missing a column or has a column of an unusable type."""


@dataclass(frozen=True)
class CheckedSources:
    table: pd.DataFrame
    """The caller's rows (same index), with ``diaSourceId`` int64 and ``ra``/``dec`` float64."""
    ids: NDArray[np.int64]
    ra_deg: NDArray[np.float64]
    dec_deg: NDArray[np.float64]
    good: NDArray[np.bool_]
    """Rows with finite coordinates (the others are excluded from matching)."""


@dataclass(frozen=True)
class CheckedObjects:
    table: pd.DataFrame
    """The caller's table, unchanged."""
    columns: dict[str, np.ndarray]
    """Normalised columns: ``ssObjectId`` int64, ``designation`` object, the rest float64
    (``ephUncertainty`` NaN where the table has none)."""
    ids: NDArray[np.int64]
    good: NDArray[np.bool_]
    """Rows with finite predicted positions."""


def _require_frame(table: object, what: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InputTableError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    return table


def _require_columns(table: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    have = set(table.columns)
    missing = [c for c in required if c not in have]
    if missing:
        raise InputTableError(f"{what} is missing required column(s): {', '.join(missing)}")


def _as_int64(values: pd.Series, column: str, what: str) -> NDArray[np.int64]:
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_unsigned_integer_dtype(values.dtype):
        if values.isna().any():  # nullable Int64 with <NA>
            raise InputTableError(f"{what} column {column} has missing ids")
        return values.to_numpy(dtype=np.int64)
    try:
        numeric = pd.to_numeric(values, errors="raise")
    except (ValueError, TypeError) as exc:
        raise InputTableError(f"{what} column {column} must hold integer ids: {exc}") from exc
    as_float = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_unsigned_integer_dtype(numeric.dtype):
        if (numeric.to_numpy() > np.iinfo(np.int64).max).any():
            raise InputTableError(f"{what} column {column} has ids beyond the int64 range")
        return numeric.to_numpy(dtype=np.int64)
    if not np.isfinite(as_float).all() or (as_float != np.round(as_float)).any():
        raise InputTableError(f"{what} column {column} must hold integer ids (found non-integral or NaN)")
    if (np.abs(as_float) >= 2.0**63).any():
        raise InputTableError(f"{what} column {column} has ids beyond the int64 range")
    return numeric.to_numpy(dtype=np.int64)


def _as_float(values: pd.Series, column: str, what: str) -> NDArray[np.float64]:
    if pd.api.types.is_float_dtype(values.dtype) and not isinstance(values.dtype, pd.ArrowDtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise InputTableError(f"{what} column {column} must be numeric: {exc}") from exc


def _float64_column(table: pd.DataFrame, column: str) -> NDArray[np.float64] | None:
    """The column's float64 array without building a Series (10x cheaper on small tables),
    or None if it is not a plain float64 column. Uses a pandas-internal accessor when
    present, the public path otherwise."""
    getter = getattr(table, "_get_column_array", None)
    loc = table.columns.get_loc(column)
    if getter is not None and isinstance(loc, int):
        values = getter(loc)
    else:
        values = table[column].to_numpy()
    return values if isinstance(values, np.ndarray) and values.dtype == np.float64 else None


def _reject_duplicates(ids: NDArray[np.int64], column: str, what: str) -> None:
    if len(ids) < 2:
        return
    sorted_ids = np.sort(ids)
    dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if len(dup):
        shown = ", ".join(str(v) for v in np.unique(dup)[:5])
        raise RuntimeError(f"{what} has duplicate {column} values (e.g. {shown}); ids must be unique")


def check_sources(sources: object) -> CheckedSources:
    """Validate the DiaSource table (``diaSourceId``, ``ra``, ``dec`` in degrees required)."""
    what = "sourceTable"
    table = _require_frame(sources, what)
    _require_columns(table, SOURCE_REQUIRED, what)
    ids = _as_int64(table["diaSourceId"], "diaSourceId", what)
    _reject_duplicates(ids, "diaSourceId", what)
    ra = _as_float(table["ra"], "ra", what)
    dec = _as_float(table["dec"], "dec", what)
    good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    return CheckedSources(table, ids, ra, dec, good)


def check_objects(objects: object) -> CheckedObjects:
    """Validate the solarSystemObjectTable and normalise its columns."""
    what = "solarSystemObjectTable"
    table = _require_frame(objects, what)
    _require_columns(table, SS_OBJECT_REQUIRED, what)
    ids = _as_int64(table["ssObjectId"], "ssObjectId", what)
    _reject_duplicates(ids, "ssObjectId", what)
    data: dict[str, np.ndarray] = {"ssObjectId": ids, "designation": table["designation"].to_numpy(dtype=object)}
    have = set(table.columns)
    present = [c for c in (*_OBJECT_FLOAT_COLUMNS, *SS_OBJECT_OPTIONAL) if c in have]
    for column in present:
        # Plain float64 columns need no conversion (the usual case, and the fast one).
        fast = _float64_column(table, column)
        data[column] = fast if fast is not None else _as_float(table[column], column, what)
    for column in SS_OBJECT_OPTIONAL:
        data.setdefault(column, np.full(len(table), np.nan))
    ra, dec = data["ephRa"], data["ephDec"]
    good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    return CheckedObjects(table, data, ids, good)
