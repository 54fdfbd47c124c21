"""Simulated survey visits: pointings for a night and the sources a detector would see.

Pure functions of their inputs and a numpy ``Generator``: the demo and the
benchmarks feed them true object positions (from the N-body propagator) and get
back, per detector, a DiaSource table with the true detections (astrometric
noise growing towards the limiting magnitude, faint ones missed) among many
unrelated sources, plus the truth to score association against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .exposure import Exposure
from .geometry import radec_from_unit_vectors_deg, unit_vectors

__all__ = ["DetectorSimulation", "night_pointings", "offset_positions", "simulate_detector"]

_OBLIQUITY_J2000_DEG = 23.4392911
_SECONDS_PER_VISIT = 34.0  # 30 s exposure + readout/slew, Rubin-like cadence


def _ecliptic_to_icrs_deg(lon_deg: NDArray[np.float64], lat_deg: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    eps = np.radians(_OBLIQUITY_J2000_DEG)
    v = unit_vectors(lon_deg, lat_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(eps), -np.sin(eps)], [0, np.sin(eps), np.cos(eps)]])
    return radec_from_unit_vectors_deg(v @ rot.T)


def night_pointings(
    n_fields: int,
    start_mjd_tai: float,
    rng: np.random.Generator,
    *,
    ecliptic_fraction: float = 0.6,
    revisit_minutes: float = 33.0,
    bands: str = "griz",
) -> pd.DataFrame:
    """A night of visits: ``n_fields`` fields, each observed twice ``revisit_minutes`` apart.

    Fields near opposition: a fraction along the ecliptic (|latitude| < 10 deg,
    where most asteroids are), the rest 15-60 deg off it. Columns: ``visit``,
    ``ra``, ``dec``, ``rotation`` (deg), ``midpointMjdTai``, ``band``.
    """
    days_from_j2000 = start_mjd_tai - 51544.5
    sun_lon = (280.460 + 0.9856474 * days_from_j2000) % 360.0  # low-precision solar longitude
    n_ecl = round(n_fields * ecliptic_fraction)
    lon = (sun_lon + 180.0 + rng.uniform(-40.0, 40.0, n_fields)) % 360.0
    lat = np.where(
        np.arange(n_fields) < n_ecl,
        rng.uniform(-10.0, 10.0, n_fields),
        rng.choice([-1.0, 1.0], n_fields) * rng.uniform(15.0, 60.0, n_fields),
    )
    ra, dec = _ecliptic_to_icrs_deg(lon, lat)
    rotation = rng.uniform(0.0, 360.0, n_fields)
    band = rng.choice(list(bands), n_fields)
    # Fields in blocks; each block is visited, then revisited after revisit_minutes.
    per_block = max(int(revisit_minutes * 60 / _SECONDS_PER_VISIT), 1)
    rows = []
    t = start_mjd_tai
    for start in range(0, n_fields, per_block):
        block = range(start, min(start + per_block, n_fields))
        block_start = t
        for revisit in (False, True):
            if revisit:  # a short last block waits for its revisit time
                t = max(t, block_start + revisit_minutes / 1440.0)
            for i in block:
                rows.append((i, t))
                t += _SECONDS_PER_VISIT / 86400.0
    field_idx = np.array([r[0] for r in rows], dtype=np.int64)
    return pd.DataFrame(
        {
            "visit": np.arange(len(rows), dtype=np.int64) + int(start_mjd_tai) * 100_000,
            "field": field_idx,
            "ra": ra[field_idx],
            "dec": dec[field_idx],
            "rotation": rotation[field_idx],
            "midpointMjdTai": np.array([r[1] for r in rows]),
            "band": band[field_idx],
        }
    )


@dataclass(frozen=True)
class DetectorSimulation:
    sources: pd.DataFrame
    """DiaSource table (``diaSourceId``, ``ra``, ``dec``, errors, fluxes, ...)."""
    truth: pd.DataFrame
    """Objects truly on the detector: ``ssObjectId``, ``mag``, ``detected``, ``diaSourceId`` (-1 if missed)."""


def simulate_detector(
    exposure: Exposure,
    object_ids: NDArray[np.int64],
    object_ra_deg: NDArray[np.float64],
    object_dec_deg: NDArray[np.float64],
    object_mag: NDArray[np.float64],
    rng: np.random.Generator,
    *,
    first_source_id: int,
    n_field_sources: int = 500,
    limiting_mag: float = 24.5,
    seeing_arcsec: float = 0.7,
) -> DetectorSimulation:
    """Sources of one detector: detections of the given objects (true positions) plus field sources.

    Detection probability falls from 1 to 0 around ``limiting_mag`` (5-sigma);
    the astrometric error is ``seeing / SNR`` with SNR 5 at the limit (floor
    10 mas). Objects with unknown (NaN) magnitude are taken to be at the limit.
    Ids are consecutive from ``first_source_id`` (shuffled order).
    """
    on = _on_detector(exposure, object_ra_deg, object_dec_deg)
    ids, ra, dec = object_ids[on], object_ra_deg[on], object_dec_deg[on]
    mag = np.where(np.isfinite(object_mag[on]), object_mag[on], limiting_mag)
    p_detect = 1.0 / (1.0 + np.exp((mag - limiting_mag) / 0.15))
    detected = rng.random(len(ids)) < p_detect
    snr = 5.0 * 10 ** (-0.4 * (mag - limiting_mag))
    sigma_arcsec = np.maximum(seeing_arcsec / snr, 0.01)

    d = np.flatnonzero(detected)
    east, north = rng.normal(size=(2, len(d))) * sigma_arcsec[d] / np.sqrt(2)
    det_ra, det_dec = offset_positions(ra[d], dec[d], east, north)
    field_x = rng.uniform(-0.5, exposure.width - 0.5, n_field_sources)
    field_y = rng.uniform(-0.5, exposure.height - 0.5, n_field_sources)
    field_ra, field_dec = exposure.pixel_to_sky_deg(field_x, field_y)
    field_mag = limiting_mag - rng.exponential(1.5, n_field_sources)
    field_sigma = np.maximum(seeing_arcsec / (5.0 * 10 ** (-0.4 * (field_mag - limiting_mag))), 0.01)

    n = len(d) + n_field_sources
    all_mag = np.concatenate((mag[d], field_mag))
    all_sigma = np.concatenate((sigma_arcsec[d], field_sigma))
    flux_njy = 10 ** (-0.4 * (all_mag - 31.4))  # AB magnitude -> nJy
    order = rng.permutation(n)
    source_ids = np.int64(first_source_id) + np.arange(n, dtype=np.int64)
    sources = pd.DataFrame(
        {
            "diaSourceId": source_ids,
            "ra": np.concatenate((det_ra, field_ra))[order],
            "dec": np.concatenate((det_dec, field_dec))[order],
            "raErr": (all_sigma / 3600)[order],
            "decErr": (all_sigma / 3600)[order],
            "psfFlux": flux_njy[order],
            "psfFluxErr": (flux_njy / (5.0 * 10 ** (-0.4 * (all_mag - limiting_mag))))[order],
            "extendedness": np.concatenate((np.zeros(len(d)), rng.random(n_field_sources)))[order],
            "midpointMjdTai": exposure.midpointMjdTai,
        }
    )
    truth_source = np.full(len(ids), -1, dtype=np.int64)
    # Detection k went to position where(order == k) in the shuffled table.
    position_of = np.empty(n, dtype=np.int64)
    position_of[order] = np.arange(n)
    truth_source[d] = source_ids[position_of[np.arange(len(d))]]
    truth = pd.DataFrame({"ssObjectId": ids, "mag": mag, "detected": detected, "diaSourceId": truth_source})
    return DetectorSimulation(sources, truth)


def _on_detector(exposure: Exposure, ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64]) -> NDArray[np.bool_]:
    from .footprint import DetectorFootprint

    if len(ra_deg) == 0:
        return np.zeros(0, dtype=bool)
    mask, _, _ = DetectorFootprint(exposure, 0.0).contains(ra_deg, dec_deg, np.zeros(len(ra_deg)))
    return mask


def offset_positions(
    ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64], east_arcsec: NDArray, north_arcsec: NDArray
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Move positions by small (east, north) offsets in arcsec on the tangent plane."""
    v = unit_vectors(ra_deg, dec_deg)
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    e = np.stack((-np.sin(ra), np.cos(ra), np.zeros_like(ra)), axis=-1)
    n = np.stack((-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)), axis=-1)
    scale = np.radians(1 / 3600)
    moved = v + e * (east_arcsec * scale)[:, None] + n * (north_arcsec * scale)[:, None]
    return radec_from_unit_vectors_deg(moved)
