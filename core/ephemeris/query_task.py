"""The ``ephemerisQuery`` subtask of the association task.

Given an exposure, it returns the Solar System objects predicted on that
detector at its midpoint, as a ``solarSystemObjectTable`` DataFrame (columns
:data:`ssassoc.core.ephemeris.store.SS_OBJECT_COLUMNS`), read from the ephemeris
store at ``config.storePath`` (built by ``ssassoc ephem build``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..task import Task, TaskConfig

if TYPE_CHECKING:
    from ..exposure import Exposure
    from .store import EphemerisStore

__all__ = ["EphemerisQueryConfig", "EphemerisQueryTask", "EphemerisUnavailableError"]


class EphemerisUnavailableError(RuntimeError):
    """No ephemeris source is configured, so predicted objects cannot be looked up."""


class EphemerisQueryConfig(TaskConfig):
    storePath: str | None = None
    """Directory of an ephemeris store built by ``ssassoc ephem build``."""
    verifyStore: bool = False
    """Check every array's SHA-256 when the store is first opened (reads the whole store)."""
    prefetchStore: bool = True
    """Ask the kernel to read the store into the page cache in the background on opening,
    so first queries do not wait for the disk."""


class EphemerisQueryTask(Task):
    """Looks up the objects predicted on an exposure in the cached ephemeris store.

    The store is opened on the first :meth:`run` and kept (memory-mapped, read-only) for
    the task's life; changing ``config.storePath`` reopens it. Metadata per run:
    ``nObjects`` (rows returned).
    """

    ConfigClass = EphemerisQueryConfig
    _DefaultName = "ephemerisQuery"
    config: EphemerisQueryConfig
    _store: EphemerisStore | None = None
    _store_path: str | None = None

    @property
    def store(self) -> EphemerisStore:
        """The opened store (opening it on first use)."""
        path = self.config.storePath
        if not path:
            raise EphemerisUnavailableError(
                "no solarSystemObjectTable was given and no ephemeris store is available; "
                "pass solarSystemObjectTable= to run() or set config.ephemerisQuery.storePath"
            )
        if self._store is None or self._store_path != path:
            from .store import EphemerisStore

            self._store = EphemerisStore.open(
                path, verify=self.config.verifyStore, prefetch=self.config.prefetchStore
            )
            self._store_path = path
        return self._store

    def run(self, exposure: Exposure) -> pd.DataFrame:
        """Objects predicted within the exposure's bounding circle plus margin at its midpoint.

        Raises :class:`EphemerisUnavailableError` without a store,
        ``EphemerisStoreError`` for a bad store, ``EphemerisCoverageError`` for a midpoint
        outside the store's span and ``ObservatoryMismatchError`` for another observatory.
        """
        table = self.store.query_exposure(exposure)
        self.metadata["nObjects"] = len(table)
        return table
