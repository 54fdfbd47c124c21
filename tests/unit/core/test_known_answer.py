"""Every derived ssSource column against Rubin's Horizons-verified vector ("2003 YF26")."""

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from core_helpers import YF26, exposure_at

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.columns import SSSOURCE_COLUMNS

EXPECTED = {
    "helioRange": 2.1769446746252505,
    "topoRange": 1.3050562591039694,
    "ephOffsetRa": -0.08092633090227584,
    "ephOffsetDec": -0.06292996923882299,
    "ephOffset": 0.10251464315747216,
    "ephOffsetAlongTrack": 0.09727483587724564,
    "ephOffsetCrossTrack": 0.03235519072357292,
    "ephRate": 0.13175297987940152,
    "phaseAngle": 17.248719450313473,
    "elongation": 140.17164534286258,
    "helioRangeRate": 0.3824562080346701,
    "topoRangeRate": 12.487622241678675,
    "helio_vtot": 20.603940956820594,
    "topo_vtot": 13.525316609422026,
    "eclLambda": 182.73184707660818,
    "eclBeta": 9.214287183249514,
    "galLon": 283.959546691413,
    "galLat": 69.24711603487795,
}
# Offsets are given to ~1e-9 arcsec in the reference; angles to ~1e-12 deg.
TOLERANCE = {
    "ephOffsetRa": 1e-8,
    "ephOffsetDec": 1e-8,
    "ephOffset": 1e-8,
    "ephOffsetAlongTrack": 1e-8,
    "ephOffsetCrossTrack": 1e-8,
}


@pytest.fixture(scope="module")
def row():
    eph_ra, eph_dec = YF26["eph"]
    objects = pd.DataFrame(
        {
            "ssObjectId": [21164728253101137], "designation": ["2003 YF26"],
            "ephRa": [eph_ra], "ephDec": [eph_dec], "ephRateRa": [YF26["rate"][0]], "ephRateDec": [YF26["rate"][1]],
            **{f"helio_{a}": [v] for a, v in zip("xyz", YF26["helio"], strict=True)},
            **{f"topo_{a}": [v] for a, v in zip("xyz", YF26["topo"], strict=True)},
            **{f"helio_v{a}": [v] for a, v in zip("xyz", YF26["helio_v"], strict=True)},
            **{f"topo_v{a}": [v] for a, v in zip("xyz", YF26["topo_v"], strict=True)},
            "ephVmag": [19.5],
        }
    )  # fmt: skip
    sources = pd.DataFrame({"diaSourceId": [7], "ra": [YF26["obs"][0]], "dec": [YF26["obs"][1]]})
    task = SsSingleFrameAssociationTask(config=SsSingleFrameAssociationConfig(maxDistArcSeconds=1.0))
    table = task.associateSources(sources, objects, exposure_at(eph_ra, eph_dec))
    assert len(table) == 1
    return table


@pytest.mark.parametrize("column", sorted(EXPECTED))
def test_column_matches_reference(row, column):
    assert row[column][0] == pytest.approx(EXPECTED[column], abs=TOLERANCE.get(column, 1e-9), rel=1e-12)


def test_passthrough_columns(row):
    assert row["diaSourceId"][0] == 7
    assert row["ssObjectId"][0] == 21164728253101137
    assert row["designation"][0] == "2003 YF26"
    assert row["ephRa"][0] == YF26["eph"][0] and row["ephDec"][0] == YF26["eph"][1]
    assert row["ephRateRa"][0] == YF26["rate"][0] and row["ephRateDec"][0] == YF26["rate"][1]
    assert row["ephVmag"][0] == 19.5
    for prefix, key in (("helio_", "helio"), ("topo_", "topo"), ("helio_v", "helio_v"), ("topo_v", "topo_v")):
        assert [row[f"{prefix}{a}"][0] for a in "xyz"] == list(YF26[key])
    assert row["diaDistanceRank"][0] == 1


def test_columns_names_order_and_units(row):
    assert row.colnames == [spec.name for spec in SSSOURCE_COLUMNS]
    for spec in SSSOURCE_COLUMNS:
        if spec.unit:
            assert row[spec.name].unit == u.Unit(spec.unit), spec.name
        assert row[spec.name].description


def test_velocity_norms_are_norms(row):
    # Rubin's defect: vy counted twice. Ours is the Euclidean norm.
    for frame in ("helio", "topo"):
        v = np.array([row[f"{frame}_v{a}"][0] for a in "xyz"])
        assert row[f"{frame}_vtot"][0] == pytest.approx(np.linalg.norm(v), rel=1e-14)


def test_frames_agree_with_astropy_everywhere():
    from ssassoc.core.sssource import observed_frames

    rng = np.random.default_rng(5)
    ra = rng.uniform(0, 360, 2000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    ra[:4], dec[:4] = [0.0, 359.9999999, 12.0, 200.0], [0.0, 1.0, 90.0, -90.0]
    cols = observed_frames(ra, dec)
    coord = SkyCoord(ra * u.deg, dec * u.deg)
    ecl = coord.barycentrictrueecliptic
    gal = coord.galactic

    def wrapped(a, b):
        return np.abs((a - b + 180.0) % 360.0 - 180.0)

    away_from_pole = np.abs(ecl.lat.deg) < 89.999
    assert wrapped(cols["eclLambda"], ecl.lon.deg)[away_from_pole].max() < 1e-6
    assert np.abs(cols["eclBeta"] - ecl.lat.deg).max() < 1e-6
    away_from_pole = np.abs(gal.b.deg) < 89.999
    assert wrapped(cols["galLon"], gal.l.deg)[away_from_pole].max() < 1e-6
    assert np.abs(cols["galLat"] - gal.b.deg).max() < 1e-6
