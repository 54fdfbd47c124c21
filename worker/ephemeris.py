"""Where the worker gets predicted objects: the ephemeris store, behind a small protocol.

The worker only needs ``query_exposure(exposure) -> DataFrame`` (the
solarSystemObjectTable) raising a coverage error for times the provider does
not cover. :func:`open_provider` opens the real store
(``ssassoc.core.ephemeris.store``); a ``.csv`` path opens a
:class:`TableEphemerisProvider`, a fixed object table valid over a declared
time range, meant for development and tests only.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ssassoc.core.columns import SS_OBJECT_REQUIRED

if TYPE_CHECKING:
    from ssassoc.core import Exposure

__all__ = [
    "EphemerisProvider",
    "OutsideCoverageError",
    "TableEphemerisProvider",
    "coverage_error_types",
    "open_provider",
]


class OutsideCoverageError(LookupError):
    """The exposure time lies outside the provider's time coverage."""


def coverage_error_types() -> tuple[type[BaseException], ...]:
    """Exception types meaning "time not covered" (the store's own, once it exists)."""
    types: list[type[BaseException]] = [OutsideCoverageError]
    try:
        store = importlib.import_module("ssassoc.core.ephemeris.store")
    except ImportError:
        return tuple(types)
    store_error = getattr(store, "EphemerisCoverageError", None)
    if isinstance(store_error, type) and issubclass(store_error, BaseException):
        types.append(store_error)
    return tuple(types)


class EphemerisProvider(Protocol):
    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        """Objects predicted on the exposure (solarSystemObjectTable columns)."""
        ...


class TableEphemerisProvider:
    """A fixed solarSystemObjectTable, valid between two TAI MJDs (dev/test data).

    Objects do not move: for any covered time it returns those within the
    detector's bounding circle plus ``buffer_deg`` (Rubin queries with a
    0.208 deg buffer); the association task's footprint cut does the rest.
    """

    def __init__(
        self, table: pd.DataFrame, start_mjd_tai: float, end_mjd_tai: float, buffer_deg: float = 0.208
    ) -> None:
        missing = [c for c in SS_OBJECT_REQUIRED if c not in table.columns]
        if missing:
            raise ValueError(f"object table lacks columns {missing}")
        if not start_mjd_tai < end_mjd_tai:
            raise ValueError("coverage start must be before its end")
        self.table = table.reset_index(drop=True)
        self.start_mjd_tai = float(start_mjd_tai)
        self.end_mjd_tai = float(end_mjd_tai)
        self.buffer_deg = buffer_deg
        ra = np.radians(self.table["ephRa"].to_numpy(float))
        dec = np.radians(self.table["ephDec"].to_numpy(float))
        self._unit = np.stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), -1)

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        t = exposure.midpointMjdTai
        if not self.start_mjd_tai <= t <= self.end_mjd_tai:
            raise OutsideCoverageError(
                f"exposure midpoint MJD {t} TAI is outside the table's coverage "
                f"[{self.start_mjd_tai}, {self.end_mjd_tai}]"
            )
        ra_c, dec_c = np.radians(exposure.centre_deg)
        centre = np.array([np.cos(dec_c) * np.cos(ra_c), np.cos(dec_c) * np.sin(ra_c), np.sin(dec_c)])
        half_diagonal_deg = 0.5 * np.hypot(exposure.width, exposure.height) * exposure.pixel_scale_arcsec / 3600
        cos_radius = np.cos(np.radians(min(half_diagonal_deg + self.buffer_deg, 180.0)))
        keep = self._unit @ centre >= cos_radius
        return self.table.loc[keep].reset_index(drop=True)

    def to_csv(self, path: str | Path) -> None:
        """Write with a ``# coverage_mjd_tai: START END`` first line (read by :meth:`from_csv`)."""
        with open(path, "w") as stream:
            stream.write(f"# coverage_mjd_tai: {self.start_mjd_tai!r} {self.end_mjd_tai!r}\n")
            self.table.to_csv(stream, index=False)

    @classmethod
    def from_csv(cls, path: str | Path) -> TableEphemerisProvider:
        with open(path) as stream:
            first = stream.readline()
            if not first.startswith("# coverage_mjd_tai:"):
                raise ValueError(f"{path}: first line must be '# coverage_mjd_tai: START END'")
            start, end = (float(v) for v in first.split(":", 1)[1].split())
            table = pd.read_csv(stream, dtype={"designation": "string"})
        table["designation"] = table["designation"].astype(object)
        return cls(table, start, end)


def open_provider(path: str | Path) -> Any:
    """The ephemeris store at ``path``; for a directory of stores (daily builds), a
    :class:`~ssassoc.worker.store_rotation.StoreDirectoryProvider` choosing per exposure;
    for a ``.csv`` file, a fixed table."""
    path = Path(path)
    if path.suffix == ".csv":
        return TableEphemerisProvider.from_csv(path)
    from .store_rotation import StoreDirectoryProvider, is_store_directory

    if path.is_dir() and not is_store_directory(path) and any(is_store_directory(c) for c in path.iterdir()):
        return StoreDirectoryProvider(path)
    store = importlib.import_module("ssassoc.core.ephemeris.store")
    return store.EphemerisStore.open(path)
