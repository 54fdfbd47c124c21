"""Ephemerides: orbits in, N-body propagation, the cached ephemeris store and its query task."""

from .query_task import EphemerisQueryConfig, EphemerisQueryTask, EphemerisUnavailableError
from .store import (
    EphemerisCoverageError,
    EphemerisStore,
    EphemerisStoreError,
    ObservatoryMismatchError,
)

__all__ = [
    "EphemerisCoverageError",
    "EphemerisQueryConfig",
    "EphemerisQueryTask",
    "EphemerisStore",
    "EphemerisStoreError",
    "EphemerisUnavailableError",
    "ObservatoryMismatchError",
]
