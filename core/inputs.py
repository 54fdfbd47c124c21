"""Checking and normalising the two input tables before association.

Either table may be a pandas DataFrame or a mapping of column name to 1-D
array (the streaming worker's form: no DataFrame is built per event). Plain
int64/float64 numpy columns are used as they are; anything else goes through
the same lossless coercions as a DataFrame column.

Errors a user can cause get clear messages: a missing column is a
``ValueError`` naming it; duplicate ids are a ``RuntimeError`` (as Rubin's API
says); a column of the wrong type is coerced when that is lossless
(e.g. float ids with integral values, numeric strings) and rejected otherwise.
Rows with non-finite coordinates are kept but flagged, so they are excluded
from matching and counted, never crash and never vanish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .columns import SOURCE_REQUIRED, SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED

__all__ = [
    "CheckedObjects",
    "CheckedSources",
    "ColumnTable",
    "DuplicateIdError",
    "InputTableError",
    "as_dataframe",
    "check_objects",
    "check_sources",
]

ColumnTable = pd.DataFrame | Mapping[str, Any]
"""An input table: a DataFrame or a mapping of column name to 1-D array."""

_OBJECT_FLOAT_COLUMNS = tuple(c for c in SS_OBJECT_REQUIRED if c not in ("ssObjectId", "designation"))


class InputTableError(ValueError):
    """An input table is missing a column or has a column of an unusable type."""


class DuplicateIdError(RuntimeError):
    """An id column holds the same id twice (a RuntimeError, as Rubin's task raises)."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class CheckedSources:
    table: ColumnTable
    """The caller's table, unchanged (:func:`as_dataframe` makes a DataFrame of it)."""
    ids: NDArray[np.int64]
    ra_deg: NDArray[np.float64]
    dec_deg: NDArray[np.float64]
    good: NDArray[np.bool_]
    """Rows with finite coordinates (the others are excluded from matching)."""


@dataclass(frozen=True)
class CheckedObjects:
    table: ColumnTable
    """The caller's table, unchanged (:func:`as_dataframe` makes a DataFrame of it)."""
    columns: dict[str, np.ndarray]
    """Normalised columns: ``ssObjectId`` int64, ``designation`` object, the rest float64
    (``ephUncertainty`` NaN where the table has none)."""
    ids: NDArray[np.int64]
    good: NDArray[np.bool_]
    """Rows with finite predicted positions."""


class _Columns:
    """Uniform column access to a DataFrame or a mapping of 1-D arrays."""

    def __init__(self, table: object, what: str) -> None:
        self.what = what
        if isinstance(table, pd.DataFrame):
            self.frame: pd.DataFrame | None = table
            self.names = set(table.columns)
            self.n_rows = len(table)
            return
        if not isinstance(table, Mapping):
            raise InputTableError(
                f"{what} must be a pandas DataFrame or a mapping of column name to 1-D array, "
                f"got {type(table).__name__}"
            )
        self.frame = None
        self.mapping = table
        self.names = set(table)
        lengths = set()
        for name, values in table.items():
            if isinstance(values, np.ndarray):  # the usual case: no generic checks
                ndim = values.ndim
            elif isinstance(values, list | tuple | pd.Series | pd.api.extensions.ExtensionArray):
                ndim = np.ndim(np.asarray(values, dtype=object))
            else:
                raise InputTableError(
                    f"{what} must be a pandas DataFrame or a mapping of column name to 1-D array; "
                    f"column {name!r} is a {type(values).__name__}"
                )
            if ndim != 1:
                raise InputTableError(f"{what} column {name!r} must be 1-D, got {ndim} dimensions")
            lengths.add(len(values))
        if len(lengths) > 1:
            raise InputTableError(f"{what} columns differ in length: {sorted(lengths)}")
        self.n_rows = lengths.pop() if lengths else 0

    def require(self, required: tuple[str, ...]) -> None:
        missing = [c for c in required if c not in self.names]
        if missing:
            raise InputTableError(f"{self.what} is missing required column(s): {', '.join(missing)}")

    def raw(self, column: str) -> Any:
        """The column's values without conversion (numpy array or pandas array)."""
        if self.frame is None:
            values = self.mapping[column]
            return values if isinstance(values, np.ndarray) else pd.Series(values).array
        return _frame_column(self.frame, column)

    def series(self, column: str) -> pd.Series:
        if self.frame is None:
            return pd.Series(self.mapping[column])
        return self.frame[column]

    def int64(self, column: str) -> NDArray[np.int64]:
        values = self.raw(column)
        if isinstance(values, np.ndarray) and values.dtype == np.int64:
            return values  # the usual case, no pandas involved
        return _as_int64(self.series(column), column, self.what)

    def float64(self, column: str) -> NDArray[np.float64]:
        values = self.raw(column)
        if isinstance(values, np.ndarray) and values.dtype == np.float64:
            return values
        return _as_float(self.series(column), column, self.what)


def _frame_column(table: pd.DataFrame, column: str) -> Any:
    """A DataFrame column's array without building a Series (10x cheaper on small tables).
    Uses a pandas-internal accessor when present, the public path otherwise."""
    getter = getattr(table, "_get_column_array", None)
    loc = table.columns.get_loc(column)
    if getter is not None and isinstance(loc, int):
        return getter(loc)
    return table[column].array


def as_dataframe(table: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """The input table as a DataFrame (a mapping of arrays is wrapped, without copying)."""
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame(dict(table), copy=False)


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


def _reject_duplicates(ids: NDArray[np.int64], column: str, what: str) -> None:
    if len(ids) < 2:
        return
    sorted_ids = np.sort(ids)
    dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if len(dup):
        shown = ", ".join(str(v) for v in np.unique(dup)[:5])
        raise DuplicateIdError(f"{what} has duplicate {column} values (e.g. {shown}); ids must be unique", column)


def check_sources(sources: object) -> CheckedSources:
    """Validate the DiaSource table (``diaSourceId``, ``ra``, ``dec`` in degrees required)."""
    columns = _Columns(sources, "sourceTable")
    columns.require(SOURCE_REQUIRED)
    ids = columns.int64("diaSourceId")
    _reject_duplicates(ids, "diaSourceId", columns.what)
    ra = columns.float64("ra")
    dec = columns.float64("dec")
    with np.errstate(invalid="ignore"):
        good = np.isfinite(ra) & (np.abs(dec) <= 90.0)  # NaN dec fails the comparison
    return CheckedSources(sources, ids, ra, dec, good)  # type: ignore[arg-type]  # checked by _Columns


def check_objects(objects: object) -> CheckedObjects:
    """Validate the solarSystemObjectTable and normalise its columns.

    ``designation`` is kept as the caller's array (numpy or pandas): only the matched
    rows are ever converted, which saves converting every predicted object's string.
    """
    columns = _Columns(objects, "solarSystemObjectTable")
    columns.require(SS_OBJECT_REQUIRED)
    ids = columns.int64("ssObjectId")
    _reject_duplicates(ids, "ssObjectId", columns.what)
    data: dict[str, Any] = {"ssObjectId": ids, "designation": columns.raw("designation")}
    for column in (*_OBJECT_FLOAT_COLUMNS, *SS_OBJECT_OPTIONAL):
        if column in columns.names:
            data[column] = columns.float64(column)
    for column in SS_OBJECT_OPTIONAL:
        data.setdefault(column, np.full(columns.n_rows, np.nan))
    ra, dec = data["ephRa"], data["ephDec"]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(ra) & (np.abs(dec) <= 90.0)
    return CheckedObjects(objects, data, ids, good)  # type: ignore[arg-type]  # checked by _Columns
