"""Matching cases: competition for a source, optimality, wrap, poles, bad rows, empty inputs."""

import numpy as np
import pandas as pd
import pytest
from core_helpers import exposure_at, objects_table, offset_deg, sources_table

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.columns import SSSOURCE_COLUMNS
from ssassoc.core.ephemeris import EphemerisUnavailableError
from ssassoc.core.inputs import InputTableError


def run(exposure, sources, objects, matching="optimal", **config):
    cfg = SsSingleFrameAssociationConfig(matching=matching, **config)
    return SsSingleFrameAssociationTask(config=cfg).run(exposure, sources, band="g", solarSystemObjectTable=objects)


def pairs(result):
    table = result.associatedSsSources
    return {(int(o), int(s)) for o, s in zip(table["ssObjectId"], table["diaSourceId"], strict=True)}


def field(ra0, dec0, object_offsets, source_offsets):
    """Objects and sources at (east, north) arcsec offsets from (ra0, dec0)."""
    obj = [offset_deg(ra0, dec0, e, n) for e, n in object_offsets]
    src = [offset_deg(ra0, dec0, e, n) for e, n in source_offsets]
    objects = objects_table([p[0] for p in obj], [p[1] for p in obj])
    sources = sources_table([p[0] for p in src], [p[1] for p in src])
    return exposure_at(ra0, dec0), sources, objects


def test_object_whose_nearest_source_is_taken_gets_its_next_one():
    # A (id 1) and B (id 2) share nearest source S100; B also has S101 at 0.8".
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (0.3, 0.0)], [(0.1, 0.0), (0.3, 0.8)])
    assert pairs(run(exposure, sources, objects, "greedy")) == {(1, 100)}
    assert pairs(run(exposure, sources, objects, "optimal")) == {(1, 100), (2, 101)}


def test_optimal_prefers_more_matches_over_shorter_distances():
    # A: S100 at 0.1", S101 at 0.9"; B: S100 at 0.2" only.
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (0.3, 0.0)], [(0.1, 0.0), (-0.9, 0.0)])
    greedy = run(exposure, sources, objects, "greedy")
    optimal = run(exposure, sources, objects, "optimal")
    assert pairs(greedy) == {(1, 100)}
    assert pairs(optimal) == {(1, 101), (2, 100)}
    ranks = dict(
        zip(optimal.associatedSsSources["ssObjectId"], optimal.associatedSsSources["diaDistanceRank"], strict=True)
    )
    assert ranks == {1: 2, 2: 1}


def test_optimal_minimises_total_distance_among_full_matchings():
    # A(0,0), B(0.9,0); S100(0.44,0): A .44, B .46; S101(0.2,0.7): A .728, B .990.
    # Full matchings: A-S100 + B-S101 = 1.430, A-S101 + B-S100 = 1.188.
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (0.9, 0.0)], [(0.44, 0.0), (0.2, 0.7)])
    optimal = run(exposure, sources, objects, "optimal")
    assert pairs(optimal) == {(1, 101), (2, 100)}
    assert float(np.sum(optimal.associatedSsSources["ephOffset"])) == pytest.approx(0.46 + np.hypot(0.2, 0.7), abs=1e-6)
    assert pairs(run(exposure, sources, objects, "greedy")) == {(1, 100)}


def test_match_across_ra_zero():
    exposure = exposure_at(0.0, 0.0)
    objects = objects_table([359.99999], [0.0])
    sources = sources_table([0.0000001, 359.9], [0.0, 0.0])
    result = run(exposure, sources, objects)
    assert pairs(result) == {(1, 100)}
    offset_ra = result.associatedSsSources["ephOffsetRa"][0]
    assert offset_ra == pytest.approx((0.0000001 + 0.00001) * 3600, rel=1e-6)  # not -1296000"


@pytest.mark.parametrize("dec0", [89.99995, -89.99995])
def test_match_at_the_pole(dec0):
    exposure = exposure_at(0.0, dec0)
    # Near the pole RA differences are huge while separations are tiny.
    obj = offset_deg(10.0, dec0, 0.0, 0.0)
    src_near = offset_deg(10.0, dec0, 0.4, -0.3)
    src_far = offset_deg(10.0, dec0, 3.0, 0.0)
    result = run(
        exposure, sources_table([src_near[0], src_far[0]], [src_near[1], src_far[1]]), objects_table([obj[0]], [obj[1]])
    )
    assert pairs(result) == {(1, 100)}
    row = result.associatedSsSources
    assert row["ephOffset"][0] == pytest.approx(0.5, rel=1e-5)
    assert row["ephOffsetRa"][0] == pytest.approx(0.4, rel=1e-5)
    assert row["ephOffsetDec"][0] == pytest.approx(-0.3, rel=1e-5)


def test_non_finite_rows_are_excluded_and_counted():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (5.0, 5.0)], [(0.1, 0.0), (5.0, 5.1)])
    sources = pd.concat([sources, sources_table([np.nan, 30.0, np.inf], [5.0, np.nan, 5.0], ids=[7, 8, 9])])
    objects.loc[1, "ephDec"] = np.nan
    task = SsSingleFrameAssociationTask()
    result = task.run(exposure, sources, solarSystemObjectTable=objects)
    assert pairs(result) == {(1, 100)}
    md = task.getFullMetadata()
    assert md["ssSingleFrameAssociation.nBadSources"] == 3
    assert md["ssSingleFrameAssociation.nBadSsObjects"] == 1
    assert md["ssSingleFrameAssociation.nSources"] == 5
    assert set(result.unAssocDiaSources["diaSourceId"]) == {101, 7, 8, 9}  # nothing lost


def test_all_nan_sources():
    exposure = exposure_at(30.0, 5.0)
    result = run(exposure, sources_table([np.nan] * 3, [np.nan] * 3), objects_table([30.0], [5.0]))
    assert len(result.associatedSsSources) == 0
    assert len(result.unAssocDiaSources) == 3
    assert result.nTotalSsObjects == 1


@pytest.mark.parametrize("which", ["sources", "objects", "both"])
def test_empty_inputs_give_empty_results_with_full_schema(which):
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0)], [(0.1, 0.0)])
    if which in ("sources", "both"):
        sources = sources.iloc[:0]
    if which in ("objects", "both"):
        objects = objects.iloc[:0]
    result = run(exposure, sources, objects)
    assert len(result.associatedSsSources) == 0
    assert result.associatedSsSources.colnames == [spec.name for spec in SSSOURCE_COLUMNS]
    assert result.nAssociatedSsObjects == 0


def test_duplicate_ids_raise_runtime_error():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (3.0, 0.0)], [(0.1, 0.0), (3.0, 0.1)])
    with pytest.raises(RuntimeError, match="diaSourceId"):
        run(exposure, sources.assign(diaSourceId=[5, 5]), objects)
    with pytest.raises(RuntimeError, match="ssObjectId"):
        run(exposure, sources, objects.assign(ssObjectId=[9, 9]))


@pytest.mark.parametrize("column", ["diaSourceId", "ra", "dec"])
def test_missing_source_column_is_named(column):
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0)], [(0.1, 0.0)])
    with pytest.raises(ValueError, match=column):
        run(exposure, sources.drop(columns=[column]), objects)


@pytest.mark.parametrize("column", ["ssObjectId", "ephRa", "topo_vz", "ephVmag", "designation"])
def test_missing_object_column_is_named(column):
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0)], [(0.1, 0.0)])
    with pytest.raises(ValueError, match=column):
        run(exposure, sources, objects.drop(columns=[column]))


def test_dtypes_are_coerced_or_rejected_clearly():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0)], [(0.1, 0.0)])
    coerced = sources.assign(diaSourceId=sources["diaSourceId"].astype(float), ra=sources["ra"].astype(str))
    assert pairs(run(exposure, coerced, objects)) == {(1, 100)}
    with pytest.raises(InputTableError, match="diaSourceId"):
        run(exposure, sources.assign(diaSourceId=[1.5]), objects)
    with pytest.raises(InputTableError, match="ra"):
        run(exposure, sources.assign(ra=["north"]), objects)
    with pytest.raises(InputTableError, match="DataFrame"):
        run(exposure, sources.to_dict(), objects)


def test_matched_sources_carry_object_ids_and_band():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (9.0, 0.0)], [(0.1, 0.0), (30.0, 0.0)])
    result = run(exposure, sources, objects)
    assert result.ssoAssocDiaSources[["diaSourceId", "ssObjectId"]].values.tolist() == [[100, 1]]
    assert (result.ssoAssocDiaSources["band"] == "g").all()
    assert result.unAssocDiaSources["diaSourceId"].tolist() == [101]
    assert result.unassociatedSsObjects["ssObjectId"].tolist() == [2]
    assert (result.nTotalSsObjects, result.nAssociatedSsObjects) == (2, 1)


def test_radius_is_respected():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (9.0, 0.0)], [(0.99, 0.0), (10.01, 0.0)])
    assert pairs(run(exposure, sources, objects)) == {(1, 100)}
    assert pairs(run(exposure, sources, objects, maxDistArcSeconds=1.5)) == {(1, 100), (2, 101)}


def test_rates_of_zero_give_nan_track_offsets_only_then():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (9.0, 0.0)], [(0.1, 0.0), (9.1, 0.0)])
    objects.loc[0, ["ephRateRa", "ephRateDec"]] = 0.0
    table = run(exposure, sources, objects).associatedSsSources
    by_id = {int(i): k for k, i in enumerate(table["ssObjectId"])}
    assert np.isnan(table["ephOffsetAlongTrack"][by_id[1]]) and np.isnan(table["ephOffsetCrossTrack"][by_id[1]])
    assert np.isfinite(table["ephOffsetAlongTrack"][by_id[2]]) and np.isfinite(table["ephOffsetCrossTrack"][by_id[2]])


def test_without_object_table_asks_the_ephemeris_subtask():
    exposure, sources, _ = field(30.0, 5.0, [(0.0, 0.0)], [(0.1, 0.0)])
    with pytest.raises(EphemerisUnavailableError, match="storePath"):
        SsSingleFrameAssociationTask().run(exposure, sources, band="r")


def test_column_arrays_match_the_table_for_empty_and_full_results():
    exposure, sources, objects = field(30.0, 5.0, [(0.0, 0.0), (9.0, 0.0)], [(0.1, 0.0), (30.0, 0.0)])
    names = [spec.name for spec in SSSOURCE_COLUMNS]
    full = run(exposure, sources, objects)
    empty = run(exposure, sources.iloc[:0], objects)
    assert list(full.ssSourceColumns) == names == list(empty.ssSourceColumns)
    for name in names:
        assert full.ssSourceColumns[name].dtype == empty.ssSourceColumns[name].dtype, name
        assert list(full.associatedSsSources[name]) == list(full.ssSourceColumns[name]), name
    assert len(empty.associatedSsSources) == 0
