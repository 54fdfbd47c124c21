"""A directory of ephemeris stores, used as one: how a worker running for months
moves on to each day's new store without a restart.

Operations build a store per day (or per week) into the same parent directory,
for example ``stores/2026-11-24`` with ``ssassoc ephem build --out``. Each build
appears atomically (renamed into place, manifest written last) and is never
modified afterwards, so a worker may open it at any time. For every exposure
the provider uses the store that covers its midpoint, for its observatory,
preferring the most recently built one (a rebuild after a new orbit catalogue
replaces the old one for the same span). When no known store covers an
exposure, the directory is rescanned before the exposure is declared outside
the coverage; it is also rescanned every ``rescan_interval_s``. Stores that
disappear (deleted by a clean-up job) are dropped; their memory maps stay valid
until released.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssassoc.core import Exposure
from ssassoc.core.ephemeris.store import MANIFEST, EphemerisCoverageError, EphemerisStore

__all__ = ["StoreDirectoryProvider", "is_store_directory"]


def is_store_directory(path: Path) -> bool:
    """True if ``path`` is itself one store (it has a manifest)."""
    return (path / MANIFEST).is_file()


@dataclass(frozen=True)
class _Known:
    path: Path
    observatory: str
    start_mjd_tai: float
    end_mjd_tai: float
    created_utc: str


class StoreDirectoryProvider:
    """Chooses, per exposure, the newest store in ``root`` that covers it."""

    def __init__(self, root: str | Path, *, rescan_interval_s: float = 60.0, prefetch: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"ephemeris store directory {self.root} does not exist")
        self.rescan_interval_s = rescan_interval_s
        self.prefetch = prefetch
        self._known: list[_Known] = []
        self._open: dict[Path, EphemerisStore] = {}
        self._last_scan = -float("inf")
        self.rescan()

    # -- the catalogue ----------------------------------------------------------------
    def rescan(self) -> None:
        """Read the manifests of the stores in ``root`` (cheap: small JSON files)."""
        known = []
        for child in sorted(self.root.iterdir()):
            manifest = child / MANIFEST
            if not manifest.is_file():
                continue  # a build in progress, or something else
            try:
                m: dict[str, Any] = json.loads(manifest.read_text())
                known.append(
                    _Known(
                        child,
                        str(m["observatory"]),
                        float(m["start_mjd_tai"]),
                        float(m["end_mjd_tai"]),
                        str(m.get("created_utc", "")),
                    )
                )
            except (OSError, ValueError, KeyError):
                continue  # unreadable now; EphemerisStore.open would say why, if it were chosen
        self._known = known
        for path in list(self._open):
            if not any(k.path == path for k in known):
                del self._open[path]
        self._last_scan = time.monotonic()

    @property
    def spans(self) -> list[tuple[str, float, float, str]]:
        """(observatory, start, end, path) of every known store."""
        return [(k.observatory, k.start_mjd_tai, k.end_mjd_tai, str(k.path)) for k in self._known]

    def _choose(self, mjd_tai: float, observatory: str) -> _Known | None:
        covering = [
            k for k in self._known if k.observatory == observatory and k.start_mjd_tai <= mjd_tai <= k.end_mjd_tai
        ]
        return max(covering, key=lambda k: (k.created_utc, k.path.name)) if covering else None

    def store_for(self, mjd_tai: float, observatory: str) -> EphemerisStore:
        """The store to use at ``mjd_tai`` for ``observatory`` (opened once, then cached)."""
        if time.monotonic() - self._last_scan > self.rescan_interval_s:
            self.rescan()
        chosen = self._choose(mjd_tai, observatory)
        if chosen is None:
            self.rescan()  # a new store may have arrived since the last scan
            chosen = self._choose(mjd_tai, observatory)
        if chosen is None:
            spans = ", ".join(f"{o} [{s:.5f}, {e:.5f}]" for o, s, e, _ in self.spans) or "none"
            raise EphemerisCoverageError(
                f"no ephemeris store in {self.root} covers MJD(TAI) {mjd_tai:.5f} for observatory "
                f"{observatory}; stores there: {spans}"
            )
        store = self._open.get(chosen.path)
        if store is None:
            store = EphemerisStore.open(chosen.path, prefetch=self.prefetch)
            self._open[chosen.path] = store
        return store

    # -- the provider protocol -----------------------------------------------------------
    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        return self.store_for(exposure.midpointMjdTai, exposure.observatory).query_exposure(exposure)

    def query_exposure_columns(self, exposure: Exposure) -> dict[str, np.ndarray]:
        """:meth:`query_exposure` as a dict of 1-D numpy arrays (no DataFrame)."""
        store = self.store_for(exposure.midpointMjdTai, exposure.observatory)
        return store.query_exposure_columns(exposure)
