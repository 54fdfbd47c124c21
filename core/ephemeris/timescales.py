"""The one place that converts between time scales (TAI, UTC, TT, TDB), as MJD floats.

Exposure midpoints arrive as MJD TAI, orbit epochs are MJD TDB, JPL Horizons observer
tables are in UTC. All conversions go through astropy ``Time`` with the IERS tables bundled
in ``astropy-iers-data``; automatic downloads are switched off on import, so nothing here
ever touches the network.

TT = TAI + 32.184 s exactly. TDB - TT is a periodic term below 2 ms (geocentric model,
astropy's default); its effect on positions is below a micro-arcsecond for our purposes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from astropy.time import Time
from astropy.utils import iers

# No network at run time, ever: use the tables shipped with astropy-iers-data.
iers.conf.auto_download = False
iers.conf.auto_max_age = None

FloatArray = npt.NDArray[np.float64]

TT_MINUS_TAI_S = 32.184
SECONDS_PER_DAY = 86400.0

__all__ = [
    "mjd_tai_to_tdb",
    "mjd_tai_to_tt",
    "mjd_tai_to_utc",
    "mjd_tdb_to_tai",
    "mjd_tdb_to_utc",
    "mjd_utc_to_tai",
    "mjd_utc_to_tdb",
    "time_from_mjd",
]


def _as_array(mjd: npt.ArrayLike) -> FloatArray:
    return np.asarray(mjd, dtype=np.float64)


def time_from_mjd(mjd: npt.ArrayLike, scale: str) -> Time:
    """Astropy ``Time`` for MJD values in ``scale`` ('tai', 'utc', 'tt', 'tdb'), kept in two
    doubles (integer day + fraction) so sub-microsecond precision survives."""
    m = _as_array(mjd)
    day = np.floor(m)
    return Time(day, m - day, format="mjd", scale=scale)


def _mjd(t: Time) -> FloatArray:
    # jd1 + jd2 in MJD with the large part first keeps ~1e-11 day precision.
    return np.asarray((t.jd1 - 2400000.5) + t.jd2, dtype=np.float64)


def _convert(mjd: npt.ArrayLike, src: str, dst: str) -> FloatArray:
    m = _as_array(mjd)
    if m.size == 0:
        return m.copy()
    return _mjd(getattr(time_from_mjd(m, src), dst)).reshape(m.shape)


def mjd_tai_to_tt(mjd_tai: npt.ArrayLike) -> FloatArray:
    """MJD TAI -> MJD TT (exact offset of 32.184 s)."""
    return _as_array(mjd_tai) + TT_MINUS_TAI_S / SECONDS_PER_DAY


def mjd_tai_to_tdb(mjd_tai: npt.ArrayLike) -> FloatArray:
    """MJD TAI -> MJD TDB (days)."""
    return _convert(mjd_tai, "tai", "tdb")


def mjd_tdb_to_tai(mjd_tdb: npt.ArrayLike) -> FloatArray:
    """MJD TDB -> MJD TAI (days)."""
    return _convert(mjd_tdb, "tdb", "tai")


def mjd_utc_to_tai(mjd_utc: npt.ArrayLike) -> FloatArray:
    """MJD UTC -> MJD TAI (days), leap seconds from the bundled tables."""
    return _convert(mjd_utc, "utc", "tai")


def mjd_tai_to_utc(mjd_tai: npt.ArrayLike) -> FloatArray:
    """MJD TAI -> MJD UTC (days)."""
    return _convert(mjd_tai, "tai", "utc")


def mjd_utc_to_tdb(mjd_utc: npt.ArrayLike) -> FloatArray:
    """MJD UTC -> MJD TDB (days)."""
    return _convert(mjd_utc, "utc", "tdb")


def mjd_tdb_to_utc(mjd_tdb: npt.ArrayLike) -> FloatArray:
    """MJD TDB -> MJD UTC (days)."""
    return _convert(mjd_tdb, "tdb", "utc")
