"""The ssSource columns of matched (object, source) pairs, all vectorised.

One function per group of columns, so ``grep <column> core/sssource.py`` finds
where each is computed. Inputs are plain arrays in the units of the
solarSystemObjectTable (deg, deg/day, AU, km/s); outputs in the units of
:data:`ssassoc.core.columns.SSSOURCE_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.table import MaskedColumn, Table
from numpy.typing import NDArray

from .columns import SSSOURCE_COLUMNS
from .geometry import ARCSEC_PER_DEG, gnomonic_offsets_arcsec, rotation_from_icrs

__all__ = ["derive_sssource_columns", "empty_sssource_columns", "empty_sssource_table", "sssource_table"]

FloatArray = NDArray[np.float64]
Columns = dict[str, np.ndarray]


_STATE_COLUMNS = tuple(f"{prefix}{axis}" for prefix in ("helio_", "topo_", "helio_v", "topo_v") for axis in "xyz")


def _unit_vectors_cm(ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    """(3, N) unit vectors (component-major: each component one contiguous row)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    out = np.empty((3, len(ra)))
    cos_dec = np.cos(dec)
    np.multiply(cos_dec, np.cos(ra), out=out[0])
    np.multiply(cos_dec, np.sin(ra), out=out[1])
    np.sin(dec, out=out[2])
    return out


def _angles_deg(a: FloatArray, b: FloatArray) -> FloatArray:
    """Angle between the columns of (3, N) arrays of any length: atan2(|a x b|, a . b)."""
    c0 = a[1] * b[2] - a[2] * b[1]
    c1 = a[2] * b[0] - a[0] * b[2]
    c2 = a[0] * b[1] - a[1] * b[0]
    return np.degrees(np.arctan2(np.sqrt(c0 * c0 + c1 * c1 + c2 * c2), np.einsum("cn,cn->n", a, b)))


@cache
def _frames_matrix() -> FloatArray:
    """(6, 3): ICRS unit vector -> ecliptic (rows 0-2) and galactic (rows 3-5) unit vectors."""
    return np.vstack([rotation_from_icrs("barycentrictrueecliptic"), rotation_from_icrs("galactic")])


def _observed_frames_cm(obs_vec: FloatArray) -> Columns:
    frames = _frames_matrix() @ obs_vec  # (6, N), both frames in one product
    x, y, z = frames[0::3], frames[1::3], frames[2::3]  # (2, N) each: ecliptic, galactic
    lon = np.degrees(np.arctan2(y, x)) % 360.0
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return {"eclLambda": lon[0], "eclBeta": lat[0], "galLon": lon[1], "galLat": lat[1]}


def observed_frames(ra_deg: FloatArray, dec_deg: FloatArray) -> Columns:
    """eclLambda, eclBeta, galLon, galLat of the OBSERVED position."""
    ra = np.asarray(ra_deg, dtype=np.float64).ravel()
    dec = np.asarray(dec_deg, dtype=np.float64).ravel()
    return _observed_frames_cm(_unit_vectors_cm(ra, dec))


def derive_sssource_columns(
    sources: Mapping[str, np.ndarray], objects: Mapping[str, np.ndarray], rank: np.ndarray
) -> Columns:
    """All ssSource columns, in schema order, for aligned rows of matched sources and objects.

    Vectors are component-major (3, N) and related quantities are computed together
    (both frames in one product, three angles in one call, four norms in one einsum):
    for a detector's ~20 matches the cost is the number of numpy calls, not arithmetic.
    """
    state = np.array([np.asarray(objects[name], dtype=np.float64) for name in _STATE_COLUMNS])  # (12, N)
    vectors = state.reshape(4, 3, -1)  # helio, topo (AU), helio_v, topo_v (km/s)
    helio, topo = vectors[0], vectors[1]
    eph_ra = np.asarray(objects["ephRa"], dtype=np.float64)
    eph_dec = np.asarray(objects["ephDec"], dtype=np.float64)
    rate_ra = np.asarray(objects["ephRateRa"], dtype=np.float64)
    rate_dec = np.asarray(objects["ephRateDec"], dtype=np.float64)
    obs_ra = np.asarray(sources["ra"], dtype=np.float64)
    obs_dec = np.asarray(sources["dec"], dtype=np.float64)
    obs_vec = _unit_vectors_cm(obs_ra, obs_dec)
    eph_vec = _unit_vectors_cm(eph_ra, eph_dec)

    cols: Columns = {
        "diaSourceId": np.asarray(sources["diaSourceId"], dtype=np.int64),
        "ssObjectId": np.asarray(objects["ssObjectId"], dtype=np.int64),
        "designation": np.asarray(objects["designation"], dtype=object),
        "ephRa": eph_ra,
        "ephDec": eph_dec,
        "ephVmag": np.asarray(objects["ephVmag"], dtype=np.float64),
        "ephRateRa": rate_ra,
        "ephRateDec": rate_dec,
        "diaDistanceRank": np.asarray(rank, dtype=np.int32),
    }
    cols.update(zip(_STATE_COLUMNS, state, strict=True))
    cols.update(_observed_frames_cm(obs_vec))

    # Three angles at once: elongation (Sun-observer-object: observer->Sun = topo - helio,
    # observer->object = topo), phase (Sun-object-observer: the angle between -helio and
    # -topo, i.e. between helio and topo) and the offset between predicted and observed.
    n = len(eph_ra)
    angles = _angles_deg(
        np.concatenate((topo - helio, helio, eph_vec), axis=1), np.concatenate((topo, topo, obs_vec), axis=1)
    )
    cols["elongation"], cols["phaseAngle"] = angles[:n], angles[n : 2 * n]
    cols["ephOffset"] = angles[2 * n :] * ARCSEC_PER_DEG

    # Ranges (AU), velocity norms (km/s) and radial velocities (km/s, positive receding).
    norms = np.sqrt(np.einsum("kcn,kcn->kn", vectors, vectors))
    with np.errstate(invalid="ignore", divide="ignore"):
        range_rates = np.einsum("kcn,kcn->kn", vectors[:2], vectors[2:]) / norms[:2]
    cols["helioRange"], cols["topoRange"], cols["helio_vtot"], cols["topo_vtot"] = norms
    cols["helioRangeRate"], cols["topoRangeRate"] = range_rates

    cols.update(_offsets_cm(eph_ra, eph_dec, obs_vec, rate_ra, rate_dec))
    return {spec.name: cols[spec.name] for spec in SSSOURCE_COLUMNS}  # schema order


def _offsets_cm(
    eph_ra_deg: FloatArray,
    eph_dec_deg: FloatArray,
    obs_vec: FloatArray,
    rate_ra_deg_day: FloatArray,
    rate_dec_deg_day: FloatArray,
) -> Columns:
    """Observed minus predicted: gnomonic (RA*cos dec, Dec) offsets, along/cross track
    (arcsec) and the total rate.

    Along-track is the offset projected on the direction of motion; cross-track
    is the component 90 deg counter-clockwise from it (towards +Dec when moving
    towards +RA). Both are NaN only where the rate is exactly zero (or unknown).
    East/north are the local basis at the predicted position, so nothing wraps at
    RA 0/360 and the poles are fine.
    """
    off_ra, off_dec = gnomonic_offsets_arcsec(eph_ra_deg, eph_dec_deg, obs_vec)
    rate = np.hypot(rate_ra_deg_day, rate_dec_deg_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        # x / 0 -> inf or NaN where the rate is 0; replaced by NaN below.
        along = (off_ra * rate_ra_deg_day + off_dec * rate_dec_deg_day) / rate
        cross = (off_dec * rate_ra_deg_day - off_ra * rate_dec_deg_day) / rate
    still = rate == 0
    along[still] = np.nan
    cross[still] = np.nan
    return {
        "ephRate": rate,
        "ephOffsetRa": off_ra,
        "ephOffsetDec": off_dec,
        "ephOffsetAlongTrack": along,
        "ephOffsetCrossTrack": cross,
    }


_DTYPES = {"long": np.int64, "int": np.int32, "double": np.float64, "float": np.float64, "string": object}


_NAMES = [spec.name for spec in SSSOURCE_COLUMNS]
_DESCRIPTIONS = {spec.name: spec.description for spec in SSSOURCE_COLUMNS}


@cache
def _units() -> dict[str, u.UnitBase]:
    # Parsed once: parsing unit strings costs more than the whole association.
    return {spec.name: u.Unit(spec.unit) for spec in SSSOURCE_COLUMNS if spec.unit}


def sssource_table(cols: Mapping[str, np.ndarray]) -> Table:
    """An astropy Table with exactly the ssSource columns, in order, units in metadata."""
    data: list[np.ndarray] = []
    for spec in SSSOURCE_COLUMNS:
        values = np.asarray(cols[spec.name], dtype=_DTYPES[spec.avro_type])
        if spec.avro_type == "string":
            missing = np.asarray(pd.isna(values), dtype=bool)
            values = np.where(missing, "", values).astype(str) if len(values) else np.zeros(0, "U1")
            values = MaskedColumn(values, mask=missing)
        data.append(values)
    return Table(data, names=_NAMES, units=_units(), descriptions=_DESCRIPTIONS, copy=False)


def empty_sssource_columns() -> Columns:
    """The ssSource columns with no rows (dtypes as :func:`derive_sssource_columns` gives them)."""
    return {spec.name: np.zeros(0, dtype=_DTYPES[spec.avro_type]) for spec in SSSOURCE_COLUMNS}


def empty_sssource_table() -> Table:
    """The ssSource table with no rows (full schema)."""
    return sssource_table(empty_sssource_columns())
