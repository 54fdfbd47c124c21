"""Simulated visits: pointings and per-detector sources with known truth."""

import numpy as np
import pandas as pd
import pytest

from ssassoc.core import SsSingleFrameAssociationTask
from ssassoc.core.focal_plane import rubin_like_focal_plane
from ssassoc.core.geometry import angular_separation_deg, ecliptic_from_icrs_deg
from ssassoc.core.simulation import night_pointings, simulate_detector


def test_pointings_revisit_and_sit_near_the_ecliptic():
    rng = np.random.default_rng(1)
    visits = night_pointings(100, 60800.0, rng, ecliptic_fraction=0.6)
    assert len(visits) == 200 and visits["visit"].is_unique
    assert (visits.groupby("field").size() == 2).all()
    assert np.all(np.diff(visits["midpointMjdTai"]) > 0)
    first, second = (visits.groupby("field")["midpointMjdTai"].agg(f).to_numpy() for f in ("min", "max"))
    assert np.all((second - first) * 1440 > 25)  # revisits ~33 min later
    _, beta = ecliptic_from_icrs_deg(visits["ra"].to_numpy(), visits["dec"].to_numpy())
    fields = visits.drop_duplicates("field")
    _, beta = ecliptic_from_icrs_deg(fields["ra"].to_numpy(), fields["dec"].to_numpy())
    assert np.sum(np.abs(beta) < 10.01) == 60


def test_detector_sources_hold_the_detections_and_the_truth():
    fp = rubin_like_focal_plane()
    exposure = fp.exposures(150.0, 10.0, 30.0, 60800.2, visit=3)[94]
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 4071, 300)
    y = rng.uniform(0, 3999, 300)
    ra, dec = exposure.pixel_to_sky_deg(x, y)
    ra = np.r_[ra, 155.0]  # one object far off the detector
    dec = np.r_[dec, 10.0]
    mag = np.r_[rng.uniform(18, 26, 300), 20.0]
    ids = np.arange(1000, 1301, dtype=np.int64)
    sim = simulate_detector(exposure, ids, ra, dec, mag, rng, first_source_id=5_000_000, n_field_sources=2000)
    assert len(sim.truth) == 300 and 1300 not in set(sim.truth["ssObjectId"])
    assert sim.sources["diaSourceId"].is_unique
    bright = sim.truth[sim.truth["mag"] < 23]
    faint = sim.truth[sim.truth["mag"] > 25.5]
    assert bright["detected"].all() and not faint["detected"].any()
    detected = sim.truth[sim.truth["detected"]].merge(sim.sources, on="diaSourceId")
    true_pos = pd.DataFrame({"ssObjectId": ids[:300], "tra": ra[:300], "tdec": dec[:300]})
    detected = detected.merge(true_pos, on="ssObjectId")
    sep = angular_separation_deg(detected["ra"], detected["dec"], detected["tra"], detected["tdec"]) * 3600
    assert np.median(sep) < 0.1 and sep.max() < 1.0

    objects = pd.DataFrame({"ssObjectId": ids[:300], "designation": None, "ephRa": ra[:300], "ephDec": dec[:300]})
    for col in (
        "ephRateRa",
        "ephRateDec",
        "helio_x",
        "helio_y",
        "helio_z",
        "topo_x",
        "topo_y",
        "topo_z",
        "helio_vx",
        "helio_vy",
        "helio_vz",
        "topo_vx",
        "topo_vy",
        "topo_vz",
        "ephVmag",
    ):
        objects[col] = 1.0
    result = SsSingleFrameAssociationTask().run(exposure, sim.sources, solarSystemObjectTable=objects)
    matched = dict(
        zip(result.associatedSsSources["ssObjectId"], result.associatedSsSources["diaSourceId"], strict=True)
    )
    truly = sim.truth[sim.truth["detected"]]
    correct = sum(matched.get(o) == s for o, s in zip(truly["ssObjectId"], truly["diaSourceId"], strict=True))
    assert correct / len(truly) > 0.97
    assert correct / len(matched) > 0.97
    assert result.nTotalSsObjects == 300


@pytest.mark.parametrize("n_field", [0, 10])
def test_no_objects(n_field):
    exposure = rubin_like_focal_plane().exposures(10.0, 0.0, 0.0, 60800.0, visit=1)[0]
    sim = simulate_detector(exposure, np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0),
                            np.random.default_rng(0), first_source_id=1, n_field_sources=n_field)  # fmt: skip
    assert len(sim.sources) == n_field and len(sim.truth) == 0
