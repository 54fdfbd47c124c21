"""Built-in synthetic sample data: one detector with sources and predicted objects.

For the demonstration, tests and benchmarks of the association alone. The
object states are *geometrically consistent* (topocentric vector along the
predicted direction, heliocentric = observer + topocentric, on-sky rates =
transverse topocentric velocity / distance) but not from orbits: real
ephemerides come from the ephemeris store. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from astropy.wcs import WCS

from .exposure import Exposure
from .geometry import radec_from_unit_vectors_deg, unit_vectors

__all__ = ["SyntheticField", "make_tan_wcs", "synthetic_field"]

AU_KM = 149_597_870.7
SECONDS_PER_DAY = 86_400.0


def make_tan_wcs(
    ra_deg: float, dec_deg: float, width: int, height: int, pixel_scale_arcsec: float = 0.2, rotation_deg: float = 0.0
) -> WCS:
    """A TAN WCS centred on (ra, dec), north up / east left before rotation."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    scale = pixel_scale_arcsec / 3600.0
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    wcs.wcs.cd = np.array([[-scale * c, scale * s], [scale * s, scale * c]])
    return wcs


@dataclass(frozen=True)
class SyntheticField:
    exposure: Exposure
    sources: pd.DataFrame
    objects: pd.DataFrame
    """Predicted objects (solarSystemObjectTable), some off the detector."""
    truth: pd.DataFrame
    """``ssObjectId`` -> ``diaSourceId`` of the true detections (-1 if not detected)."""


def synthetic_field(
    *,
    n_sources: int = 500,
    n_objects: int = 20,
    seed: int = 1,
    ra_deg: float = 186.0,
    dec_deg: float = 7.0,
    width: int = 4072,
    height: int = 4000,
    pixel_scale_arcsec: float = 0.2,
    astrometric_noise_arcsec: float = 0.1,
    detection_fraction: float = 0.9,
    off_detector_fraction: float = 0.1,
    midpoint_mjd_tai: float = 60800.1,
    visit: int = 1,
    detector: int = 42,
    rng: np.random.Generator | None = None,
    first_object_id: int | None = None,
    first_source_id: int | None = None,
) -> SyntheticField:
    """A detector-sized field: ``n_objects`` predicted objects (some just off the chip),
    their detections with astrometric noise (a fraction missed), plus unrelated sources
    up to ``n_sources`` in all. Ids are random unless ``first_object_id`` /
    ``first_source_id`` ask for consecutive ones; ``rng`` (if given) replaces ``seed``."""
    rng = np.random.default_rng(seed) if rng is None else rng
    wcs = make_tan_wcs(ra_deg, dec_deg, width, height, pixel_scale_arcsec)
    exposure = Exposure(
        wcs=wcs, width=width, height=height, midpointMjdTai=midpoint_mjd_tai,
        observatory="X05", visit=visit, detector=detector,
    )  # fmt: skip

    # Predicted positions: mostly on the chip, some up to 200 px outside.
    n_off = round(n_objects * off_detector_fraction)
    x = rng.uniform(-0.5, width - 0.5, n_objects)
    y = rng.uniform(-0.5, height - 0.5, n_objects)
    x[:n_off] = np.where(rng.random(n_off) < 0.5, -rng.uniform(50, 200, n_off), width + rng.uniform(50, 200, n_off))
    eph_ra, eph_dec = exposure.pixel_to_sky_deg(x, y)

    # Geometry: observer ~1 AU from the Sun, objects 0.3-40 AU away along the line of sight.
    sun_to_observer = unit_vectors(rng.uniform(0, 360), rng.uniform(-23, 23)) * 0.983
    distance_au = np.exp(rng.uniform(np.log(0.3), np.log(40.0), n_objects))
    direction = unit_vectors(eph_ra, eph_dec)
    topo = direction * distance_au[:, None]
    helio = sun_to_observer + topo
    topo_v = rng.normal(0.0, 15.0, (n_objects, 3))  # km/s
    observer_v = np.cross([0.0, 0.0, 1.0], sun_to_observer) * 29.8 / 0.983
    helio_v = topo_v + observer_v
    # On-sky rate: transverse topocentric velocity over distance.
    east = np.stack((-np.sin(np.radians(eph_ra)), np.cos(np.radians(eph_ra)), np.zeros(n_objects)), axis=-1)
    north = np.cross(direction, east)
    rad_per_day = SECONDS_PER_DAY / (distance_au * AU_KM)
    rate_ra = np.degrees(np.einsum("ij,ij->i", topo_v, east) * rad_per_day)
    rate_dec = np.degrees(np.einsum("ij,ij->i", topo_v, north) * rad_per_day)

    if first_object_id is None:
        ss_object_id = np.sort(10**15 + rng.choice(10**9, n_objects, replace=False))
    else:
        ss_object_id = first_object_id + np.arange(n_objects)
    objects = pd.DataFrame(
        {
            "ssObjectId": ss_object_id.astype(np.int64),
            "designation": [f"2026 S{chr(65 + i % 25)}{i}" for i in range(n_objects)],
            "ephRa": eph_ra,
            "ephDec": eph_dec,
            "ephRateRa": rate_ra,
            "ephRateDec": rate_dec,
            **{f"helio_{a}": helio[:, i] for i, a in enumerate("xyz")},
            **{f"topo_{a}": topo[:, i] for i, a in enumerate("xyz")},
            **{f"helio_v{a}": helio_v[:, i] for i, a in enumerate("xyz")},
            **{f"topo_v{a}": topo_v[:, i] for i, a in enumerate("xyz")},
            "ephVmag": rng.uniform(16.0, 24.5, n_objects),
            "ephUncertainty": np.full(n_objects, 0.2),
        }
    )

    # Detections of on-chip objects: predicted position + Gaussian noise.
    on_chip = np.arange(n_objects) >= n_off
    detected = on_chip & (rng.random(n_objects) < detection_fraction)
    det_idx = np.flatnonzero(detected)
    noise = rng.normal(0.0, astrometric_noise_arcsec / 3600.0, (len(det_idx), 2))
    det_vec = direction[det_idx] + np.stack(
        (east[det_idx] * noise[:, :1] * np.pi / 180, north[det_idx] * noise[:, 1:] * np.pi / 180), 0
    ).sum(axis=0)
    det_ra, det_dec = radec_from_unit_vectors_deg(det_vec)

    n_field = max(n_sources - len(det_idx), 0)
    field_ra, field_dec = exposure.pixel_to_sky_deg(
        rng.uniform(-0.5, width - 0.5, n_field), rng.uniform(-0.5, height - 0.5, n_field)
    )
    ra = np.concatenate((det_ra, field_ra))
    dec = np.concatenate((det_dec, field_dec))
    if first_source_id is None:
        ids = (10**12 + rng.choice(10**8, len(ra), replace=False)).astype(np.int64)
    else:
        ids = first_source_id + rng.permutation(len(ra)).astype(np.int64)
    order = rng.permutation(len(ra))
    sources = pd.DataFrame(
        {
            "diaSourceId": ids[order],
            "ra": ra[order],
            "dec": dec[order],
            "raErr": np.full(len(ra), 0.1 / 3600),
            "decErr": np.full(len(ra), 0.1 / 3600),
            "psfFlux": rng.lognormal(8.0, 1.0, len(ra)),
            "psfFluxErr": rng.lognormal(5.0, 0.3, len(ra)),
            "extendedness": rng.random(len(ra)),
            "midpointMjdTai": midpoint_mjd_tai,
        }
    )
    truth_src = np.full(n_objects, -1, dtype=np.int64)
    truth_src[det_idx] = ids[: len(det_idx)]
    truth = pd.DataFrame({"ssObjectId": objects["ssObjectId"], "diaSourceId": truth_src, "onDetector": on_chip})
    return SyntheticField(exposure, sources, objects, truth)
