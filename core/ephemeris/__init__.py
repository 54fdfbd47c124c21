"""Ephemerides: orbits in, N-body propagation, the cached ephemeris store and its query task."""

from .query_task import EphemerisQueryConfig, EphemerisQueryTask, EphemerisUnavailableError

__all__ = ["EphemerisQueryConfig", "EphemerisQueryTask", "EphemerisUnavailableError"]
