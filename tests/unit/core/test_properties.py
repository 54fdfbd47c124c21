"""Property-based checks of the matching invariants (hypothesis)."""

import contextlib
import itertools

import numpy as np
import pandas as pd
import pytest
from core_helpers import exposure_at, objects_table, offset_deg, sources_table
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.geometry import angular_separation_deg

RADIUS = 1.0
offsets = st.tuples(st.floats(-3, 3), st.floats(-3, 3))
centres = st.tuples(st.floats(0, 360, exclude_max=True), st.floats(-89.999, 89.999))


def build(centre, obj_offsets, src_offsets):
    ra0, dec0 = centre
    obj = [offset_deg(ra0, dec0, e, n) for e, n in obj_offsets]
    src = [offset_deg(ra0, dec0, e, n) for e, n in src_offsets]
    objects = objects_table([p[0] for p in obj], [p[1] for p in obj], ids=np.arange(1, len(obj) + 1) * 7)
    sources = sources_table([p[0] for p in src], [p[1] for p in src], ids=np.arange(1, len(src) + 1) * 11)
    return exposure_at(ra0, dec0, width=400, height=400), sources, objects


def assoc(exposure, sources, objects, matching):
    task = SsSingleFrameAssociationTask(
        config=SsSingleFrameAssociationConfig(matching=matching, maxDistArcSeconds=RADIUS)
    )
    table = task.associateSources(sources, objects, exposure)
    return {
        (int(o), int(s)): float(d)
        for o, s, d in zip(table["ssObjectId"], table["diaSourceId"], table["ephOffset"], strict=True)
    }


def brute_force_best(sources, objects):
    """(most matches, least total distance) over every one-to-one matching within the radius."""
    dist = angular_separation_deg(
        objects["ephRa"].to_numpy()[:, None], objects["ephDec"].to_numpy()[:, None],
        sources["ra"].to_numpy()[None, :], sources["dec"].to_numpy()[None, :],
    ) * 3600  # fmt: skip
    n_o, n_s = dist.shape
    best = (0, 0.0)
    for k in range(min(n_o, n_s), 0, -1):
        totals = [
            sum(dist[o, s] for o, s in zip(objs, perm, strict=True))
            for objs in itertools.combinations(range(n_o), k)
            for perm in itertools.permutations(range(n_s), k)
            if all(dist[o, s] <= RADIUS for o, s in zip(objs, perm, strict=True))
        ]
        if totals:
            return (k, min(totals))
    return best


@settings(max_examples=60, deadline=None)
@given(centres, st.lists(offsets, max_size=5), st.lists(offsets, max_size=5))
def test_optimal_is_one_to_one_within_radius_and_truly_optimal(centre, obj_offsets, src_offsets):
    exposure, sources, objects = build(centre, obj_offsets, src_offsets)
    got = assoc(exposure, sources, objects, "optimal")
    objs = [o for o, _ in got]
    srcs = [s for _, s in got]
    assert len(set(objs)) == len(objs) and len(set(srcs)) == len(srcs)
    assert all(d <= RADIUS for d in got.values())
    count, total = brute_force_best(sources, objects)
    assert len(got) == count
    assert abs(sum(got.values()) - total) < 1e-9


@settings(max_examples=60, deadline=None)
@given(centres, st.lists(offsets, max_size=8), st.lists(offsets, max_size=8), st.randoms())
def test_results_do_not_depend_on_row_order(centre, obj_offsets, src_offsets, rnd):
    exposure, sources, objects = build(centre, obj_offsets, src_offsets)
    shuffled_sources = sources.iloc[rnd.sample(range(len(sources)), len(sources))]
    shuffled_objects = objects.iloc[rnd.sample(range(len(objects)), len(objects))]
    for matching in ("optimal", "greedy"):
        assert set(assoc(exposure, sources, objects, matching)) == set(
            assoc(exposure, shuffled_sources, shuffled_objects, matching)
        )


@settings(max_examples=60, deadline=None)
@given(centres, st.lists(offsets, max_size=10), st.lists(offsets, max_size=10))
def test_optimal_never_matches_fewer_than_greedy(centre, obj_offsets, src_offsets):
    exposure, sources, objects = build(centre, obj_offsets, src_offsets)
    greedy = assoc(exposure, sources, objects, "greedy")
    optimal = assoc(exposure, sources, objects, "optimal")
    assert len(optimal) >= len(greedy)
    assert all(d <= RADIUS for d in greedy.values())


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dense_fields_stay_one_to_one(seed):
    # Many objects competing in a small area: big connected components.
    rng = np.random.default_rng(seed)
    exposure, sources, objects = build(
        (rng.uniform(0, 360), rng.uniform(-80, 80)),
        list(map(tuple, rng.uniform(-2, 2, (40, 2)))),
        list(map(tuple, rng.uniform(-2, 2, (40, 2)))),
    )
    got = assoc(exposure, sources, objects, "optimal")
    assert len({o for o, _ in got}) == len(got) == len({s for _, s in got})
    assert len(got) >= len(assoc(exposure, sources, objects, "greedy"))
    assert isinstance(objects, pd.DataFrame)


@settings(max_examples=40, deadline=None)
@given(centres, st.floats(0.2, 60.0), st.integers(0, 2**32 - 1))
def test_candidate_pairs_are_exactly_the_pairs_within_the_radius(centre, radius_arcsec, seed):
    from ssassoc.core.matching import candidate_pairs

    rng = np.random.default_rng(seed)
    spread = 3 * radius_arcsec
    obj = np.array([offset_deg(*centre, *rng.uniform(-spread, spread, 2)) for _ in range(30)])
    src = np.array([offset_deg(*centre, *rng.uniform(-spread, spread, 2)) for _ in range(60)])
    dist = angular_separation_deg(obj[:, :1], obj[:, 1:], src[:, 0][None, :], src[:, 1][None, :]) * 3600
    want = {(int(a), int(b)) for a, b in zip(*np.nonzero(dist <= radius_arcsec), strict=True)}
    # Every coarse search: all pairs (small inputs), Dec zones, and the KD-tree fallback.
    for small_limit, zone_limit in ((1 << 16, 64), (0, 64), (0, -1)):
        with forced_path(small_limit, zone_limit):
            got = candidate_pairs(
                obj[:, 0], obj[:, 1], src[:, 0], src[:, 1], radius_arcsec, np.arange(30), np.arange(60)
            )
        assert set(zip(got.obj.tolist(), got.src.tolist(), strict=True)) == want, (small_limit, zone_limit)


@contextlib.contextmanager
def forced_path(small_all_pairs, zone_factor):
    """Force a coarse-search path by changing the size limits that choose it."""
    from ssassoc.core import matching

    saved = matching._SMALL_ALL_PAIRS, matching._ZONE_MAX_FACTOR
    matching._SMALL_ALL_PAIRS, matching._ZONE_MAX_FACTOR = small_all_pairs, zone_factor
    try:
        yield
    finally:
        matching._SMALL_ALL_PAIRS, matching._ZONE_MAX_FACTOR = saved


@pytest.mark.parametrize(
    "centre", [(0.0, 0.0), (359.99999, 45.0), (0.00001, -60.0), (10.0, 89.9999), (180.0, -89.99999), (90.0, 90.0)]
)
@pytest.mark.parametrize("radius_arcsec", [0.5, 30.0])
def test_candidate_pairs_at_the_wrap_and_the_poles(centre, radius_arcsec):
    test_candidate_pairs_are_exactly_the_pairs_within_the_radius.hypothesis.inner_test(centre, radius_arcsec, 11)
