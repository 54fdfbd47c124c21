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
from .geometry import (
    ARCSEC_PER_DEG,
    angle_between_vectors_deg,
    angular_separation_deg,
    ecliptic_from_icrs_deg,
    galactic_from_icrs_deg,
    tangent_plane_offsets_arcsec,
)

__all__ = ["derive_sssource_columns", "empty_sssource_columns", "empty_sssource_table", "sssource_table"]

FloatArray = NDArray[np.float64]
Columns = dict[str, np.ndarray]


def _stack(cols: Mapping[str, np.ndarray], prefix: str, suffixes: str = "xyz") -> FloatArray:
    return np.stack([np.asarray(cols[f"{prefix}{s}"], dtype=np.float64) for s in suffixes], axis=-1)


def observed_frames(ra_deg: FloatArray, dec_deg: FloatArray) -> Columns:
    """eclLambda, eclBeta, galLon, galLat of the OBSERVED position."""
    ecl_lambda, ecl_beta = ecliptic_from_icrs_deg(ra_deg, dec_deg)
    gal_lon, gal_lat = galactic_from_icrs_deg(ra_deg, dec_deg)
    return {"eclLambda": ecl_lambda, "eclBeta": ecl_beta, "galLon": gal_lon, "galLat": gal_lat}


def viewing_geometry(helio_au: FloatArray, topo_au: FloatArray) -> Columns:
    """elongation (Sun-observer-object) and phaseAngle (Sun-object-observer), degrees."""
    observer_to_sun = topo_au - helio_au  # (obj - obs) - (obj - sun) = sun - obs
    return {
        "elongation": angle_between_vectors_deg(observer_to_sun, topo_au),
        # object->Sun is -helio and object->observer is -topo; the angle between
        # two negated vectors is the angle between the vectors.
        "phaseAngle": angle_between_vectors_deg(helio_au, topo_au),
    }


def ranges_and_rates(
    helio_au: FloatArray, helio_v_km_s: FloatArray, topo_au: FloatArray, topo_v_km_s: FloatArray
) -> Columns:
    """Distances (AU), radial velocities (km/s, positive receding) and velocity norms."""
    helio_range = np.linalg.norm(helio_au, axis=-1)
    topo_range = np.linalg.norm(topo_au, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        helio_rr = np.einsum("ij,ij->i", helio_au, helio_v_km_s) / helio_range
        topo_rr = np.einsum("ij,ij->i", topo_au, topo_v_km_s) / topo_range
    return {
        "topoRange": topo_range,
        "topoRangeRate": topo_rr,
        "helioRange": helio_range,
        "helioRangeRate": helio_rr,
        "helio_vtot": np.linalg.norm(helio_v_km_s, axis=-1),
        "topo_vtot": np.linalg.norm(topo_v_km_s, axis=-1),
    }


def offsets(
    eph_ra_deg: FloatArray,
    eph_dec_deg: FloatArray,
    obs_ra_deg: FloatArray,
    obs_dec_deg: FloatArray,
    rate_ra_deg_day: FloatArray,
    rate_dec_deg_day: FloatArray,
) -> Columns:
    """Observed minus predicted: total, (RA*cos dec, Dec), along/cross track (arcsec), and rates.

    Along-track is the offset projected on the direction of motion; cross-track
    is the component 90 deg counter-clockwise from it (towards +Dec when moving
    towards +RA). Both are NaN only where the rate is exactly zero (or unknown).
    """
    off_ra, off_dec = tangent_plane_offsets_arcsec(eph_ra_deg, eph_dec_deg, obs_ra_deg, obs_dec_deg)
    rate = np.hypot(rate_ra_deg_day, rate_dec_deg_day)
    moving = rate != 0
    safe_rate = np.where(moving, rate, 1.0)
    along = np.where(moving, (off_ra * rate_ra_deg_day + off_dec * rate_dec_deg_day) / safe_rate, np.nan)
    cross = np.where(moving, (off_dec * rate_ra_deg_day - off_ra * rate_dec_deg_day) / safe_rate, np.nan)
    return {
        "ephRate": rate,
        "ephOffset": angular_separation_deg(eph_ra_deg, eph_dec_deg, obs_ra_deg, obs_dec_deg) * ARCSEC_PER_DEG,
        "ephOffsetRa": off_ra,
        "ephOffsetDec": off_dec,
        "ephOffsetAlongTrack": along,
        "ephOffsetCrossTrack": cross,
    }


def derive_sssource_columns(
    sources: Mapping[str, np.ndarray], objects: Mapping[str, np.ndarray], rank: np.ndarray
) -> Columns:
    """All ssSource columns, in schema order, for aligned rows of matched sources and objects."""
    helio = _stack(objects, "helio_")
    topo = _stack(objects, "topo_")
    helio_v = _stack(objects, "helio_v")
    topo_v = _stack(objects, "topo_v")
    eph_ra = np.asarray(objects["ephRa"], dtype=np.float64)
    eph_dec = np.asarray(objects["ephDec"], dtype=np.float64)
    rate_ra = np.asarray(objects["ephRateRa"], dtype=np.float64)
    rate_dec = np.asarray(objects["ephRateDec"], dtype=np.float64)
    obs_ra = np.asarray(sources["ra"], dtype=np.float64)
    obs_dec = np.asarray(sources["dec"], dtype=np.float64)

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
    for axis, name in enumerate("xyz"):
        cols[f"helio_{name}"] = helio[:, axis]
        cols[f"topo_{name}"] = topo[:, axis]
        cols[f"helio_v{name}"] = helio_v[:, axis]
        cols[f"topo_v{name}"] = topo_v[:, axis]
    cols.update(observed_frames(obs_ra, obs_dec))
    cols.update(viewing_geometry(helio, topo))
    cols.update(ranges_and_rates(helio, helio_v, topo, topo_v))
    cols.update(offsets(eph_ra, eph_dec, obs_ra, obs_dec, rate_ra, rate_dec))
    return {spec.name: cols[spec.name] for spec in SSSOURCE_COLUMNS}  # schema order


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
