"""Small builders shared by the core tests (tables with the required columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssassoc.core import Exposure
from ssassoc.core.sample_data import make_tan_wcs

# Rubin's test vector, "2003 YF26", stated as verified against JPL Horizons.
YF26 = {
    "helio": (-2.03972984386492, -0.754159365265218, -0.09916618480505775),
    "helio_v": (6.451686836410149, -17.36829941588102, -9.013339853647382),
    "topo": (-1.2867480491014316, -0.1395377271885233, 0.16727378829681566),
    "topo_v": (-13.061265792221151, 3.5105145303033005, -0.11752881599981002),
    "eph": (186.18909260549128, 7.364065668224215),
    "obs": (186.18906993899677, 7.364048187677204),
    "rate": (-0.1242177608944433, -0.0439180553471223),
}


def exposure_at(ra_deg: float, dec_deg: float, width: int = 2000, height: int = 2000, **kw: object) -> Exposure:
    wcs = make_tan_wcs(ra_deg, dec_deg, width, height, 0.2)
    return Exposure(wcs=wcs, width=width, height=height, midpointMjdTai=60800.1, observatory="X05", **kw)  # type: ignore[arg-type]


def objects_table(ra_deg, dec_deg, ids=None, rate=(0.1, 0.05), uncertainty=None) -> pd.DataFrame:
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
    n = len(ra)
    ids = np.arange(1, n + 1) if ids is None else np.asarray(ids)
    table = pd.DataFrame(
        {
            "ssObjectId": ids.astype(np.int64),
            "designation": [f"2026 AB{i}" for i in range(n)],
            "ephRa": ra,
            "ephDec": dec,
            "ephRateRa": np.full(n, rate[0]),
            "ephRateDec": np.full(n, rate[1]),
            **{f"helio_{a}": np.full(n, v) for a, v in zip("xyz", YF26["helio"], strict=True)},
            **{f"topo_{a}": np.full(n, v) for a, v in zip("xyz", YF26["topo"], strict=True)},
            **{f"helio_v{a}": np.full(n, v) for a, v in zip("xyz", YF26["helio_v"], strict=True)},
            **{f"topo_v{a}": np.full(n, v) for a, v in zip("xyz", YF26["topo_v"], strict=True)},
            "ephVmag": np.full(n, 20.0),
        }
    )
    if uncertainty is not None:
        table["ephUncertainty"] = uncertainty
    return table


def sources_table(ra_deg, dec_deg, ids=None) -> pd.DataFrame:
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
    ids = np.arange(100, 100 + len(ra)) if ids is None else np.asarray(ids)
    return pd.DataFrame({"diaSourceId": ids.astype(np.int64), "ra": ra, "dec": dec})


def offset_deg(ra_deg: float, dec_deg: float, east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """Position offset by (east, north) arcsec on the tangent plane (exact inverse gnomonic)."""
    ra0, dec0 = np.radians(ra_deg), np.radians(dec_deg)
    xi, eta = np.radians(east_arcsec / 3600), np.radians(north_arcsec / 3600)
    denom = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denom))
    return float(np.degrees(ra) % 360), float(np.degrees(dec))
