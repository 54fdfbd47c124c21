"""The visit cache of the ephemeris store answers every detector exactly as the store does."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssassoc.core.ephemeris.build import build_store, two_body_sampler
from ssassoc.core.ephemeris.population import generate_population
from ssassoc.core.ephemeris.store import EphemerisCoverageError, EphemerisStore, ObservatoryMismatchError
from ssassoc.core.focal_plane import FocalPlane, rubin_like_focal_plane
from ssassoc.worker.config import WorkerSettings
from ssassoc.worker.ephemeris import (
    DEFAULT_VISIT_CACHE_RADIUS_DEG,
    TableEphemerisProvider,
    VisitCacheProvider,
    with_visit_cache,
)
from ssassoc.worker.loop import processor_from_settings
from ssassoc.worker.store_rotation import StoreDirectoryProvider

T0 = 60810.0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> EphemerisStore:
    # Two-body positions keep the build fast; the cache only sees evaluated columns.
    orbits = generate_population(20_000, seed=11, epoch_mjd_tdb=T0).to_orbit_table()
    root = tmp_path_factory.mktemp("visit-cache") / "store"
    build_store(orbits, "X05", T0, T0 + 0.5, root, sampler=two_body_sampler("X05"))
    return EphemerisStore.open(root)


# Rubin's layout with 10x larger pixels: detectors 1.6 deg across hold several objects of a
# 20,000-object store, so the comparisons below compare non-empty tables.
_RUBIN = rubin_like_focal_plane()
WIDE = FocalPlane(_RUBIN.detector, _RUBIN.origin_x_px, _RUBIN.origin_y_px, pixel_scale_arcsec=2.0)


class CountingStore:
    """The store, counting the cone queries it answers."""

    def __init__(self, store: EphemerisStore) -> None:
        self.store = store
        self.radii: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def query_columns(self, mjd_tai, ra_deg, dec_deg, radius_deg):
        self.radii.append(radius_deg)
        return self.store.query_columns(mjd_tai, ra_deg, dec_deg, radius_deg)


# The store's own values for one object differ in the last bits between queries whose
# batches differ in size (numpy's SIMD and scalar paths of arctan2, log10, einsum...):
# ephRateDec (a difference of near-equal terms) by a few ulp, ephRa near RA = 0 by a few
# ulp of its tiny value. The cache returns the values of its visit query, so floats are
# compared to 1e-14 relative / 1e-12 absolute (deg, deg/day, AU, km/s, mag: 1e-12 deg is
# 4 nano-arcsec); objects, their order, ids, designations and NaNs must match exactly.


def assert_same_columns(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].shape == want[name].shape, name
        if want[name].dtype.kind != "f":
            np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)
        else:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-14, atol=1e-12, err_msg=name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ra=st.one_of(st.floats(0.0, 360.0, exclude_max=True), st.sampled_from([0.0, 0.3, 359.7])),
    dec=st.one_of(st.floats(-90.0, 90.0), st.sampled_from([-90.0, -89.5, 89.5, 90.0]), st.floats(-25.0, 25.0)),
    rotation=st.floats(0.0, 360.0),
    order=st.permutations(range(189)).map(lambda p: p[:12]),
    time=st.floats(T0, T0 + 0.5),
)
def test_every_detector_is_answered_as_the_store_answers(store, ra, dec, rotation, order, time):
    cache = VisitCacheProvider(store, radius_deg=2 * WIDE.radius_deg + 0.1)
    exposures = WIDE.exposures(ra, dec, rotation, time, visit=1)
    for i in order:
        assert_same_columns(cache.query_exposure_columns(exposures[i]), store.query_exposure_columns(exposures[i]))
    # The first detector is queried directly, the second opens the visit's cone, the rest hit it.
    assert cache.misses == 2 and cache.hits == len(order) - 2


def test_results_are_not_empty_and_frames_match(store):
    obs, _ = store.observer_state(T0 + 0.2)
    ra = float(np.degrees(np.arctan2(obs[1], obs[0])) % 360)  # opposition: densest sky
    dec = float(np.degrees(np.arcsin(obs[2] / np.linalg.norm(obs))))
    cache = VisitCacheProvider(store, radius_deg=2 * WIDE.radius_deg + 0.1)
    total = 0
    for exposure in WIDE.exposures(ra, dec, 30.0, T0 + 0.2, visit=7):
        frame = cache.query_exposure(exposure)
        pd.testing.assert_frame_equal(frame, store.query_exposure(exposure), check_exact=False, rtol=1e-14)
        total += len(frame)
    assert total > 100  # the comparisons were about real objects
    assert cache.hits == 187
    assert cache._cones[0].grid is not None  # and went through the tangent grid


@pytest.mark.parametrize(("ra", "dec"), [(0.1, 0.0), (359.9, 20.0), (123.0, -89.9), (77.0, 90.0), (200.0, 45.0)])
def test_the_tangent_grid_finds_every_object(store, monkeypatch, ra, dec):
    # Rubin's geometry with the grid forced on (a 20,000-object store is too sparse for it).
    monkeypatch.setattr("ssassoc.worker.ephemeris._GRID_MIN_OBJECTS", 0)
    cache = VisitCacheProvider(store, radius_deg=DEFAULT_VISIT_CACHE_RADIUS_DEG)
    for k, exposure in enumerate(rubin_like_focal_plane().exposures(ra, dec, 33.0, T0 + 0.25, visit=3)):
        assert_same_columns(cache.query_exposure_columns(exposure), store.query_exposure_columns(exposure))
        if k == 1:
            assert cache._cones[0].grid is not None
    assert cache.hits == 187


def test_a_detector_outside_the_cached_cone_gets_a_fresh_query(store):
    counting = CountingStore(store)
    cache = VisitCacheProvider(counting, radius_deg=2 * WIDE.radius_deg + 0.1, adaptive=False)
    here = WIDE.exposures(100.0, 10.0, 0.0, T0 + 0.1, visit=1)
    there = WIDE.exposures(160.0, -20.0, 0.0, T0 + 0.1, visit=2)  # same time, far away
    for exposure in here[:3]:
        cache.query_exposure_columns(exposure)
    assert len(counting.radii) == 2 and cache.hits == 1
    wide = counting.radii[1]
    assert_same_columns(cache.query_exposure_columns(there[5]), store.query_exposure_columns(there[5]))
    assert len(counting.radii) == 3 and counting.radii[2] > wide - 1.0  # a new visit cone
    cache.query_exposure_columns(there[6])
    cache.query_exposure_columns(here[4])  # both cones kept
    assert len(counting.radii) == 3 and cache.hits == 3


def test_isolated_detectors_cost_one_plain_query_each(store):
    counting = CountingStore(store)
    cache = VisitCacheProvider(counting, radius_deg=4.2)
    for k in range(6):
        exposure = rubin_like_focal_plane().exposures(20.0 * k, 5.0, 0.0, T0 + 0.01 * k, visit=k)[k]
        assert_same_columns(cache.query_exposure_columns(exposure), store.query_exposure_columns(exposure))
    assert len(counting.radii) == 6 and max(counting.radii) < 0.2  # never a wide cone


def test_memory_is_bounded(store):
    cache = VisitCacheProvider(store, radius_deg=4.2, max_entries=2, adaptive=False)
    for k in range(5):
        exposures = rubin_like_focal_plane().exposures(30.0 * k, 0.0, 0.0, T0 + 0.01 * k, visit=k)
        for exposure in exposures[:3]:
            cache.query_exposure_columns(exposure)
    assert len(cache._cones) == 2


def test_errors_are_the_stores(store):
    cache = VisitCacheProvider(store)
    late = rubin_like_focal_plane().exposures(10.0, 0.0, 0.0, T0 + 2.0, visit=1)
    with pytest.raises(EphemerisCoverageError):
        cache.query_exposure_columns(late[0])
    with pytest.raises(EphemerisCoverageError):
        cache.query_exposure_columns(late[1])
    foreign = rubin_like_focal_plane().exposures(10.0, 0.0, 0.0, T0 + 0.1, visit=1, observatory="W84")
    with pytest.raises(ObservatoryMismatchError):
        cache.query_exposure_columns(foreign[0])


def test_wiring(store, tmp_path):
    assert isinstance(with_visit_cache(store, 4.2), VisitCacheProvider)
    assert with_visit_cache(store, 0.0) is store
    table = TableEphemerisProvider(pd.DataFrame(columns=["ssObjectId", "designation", "ephRa", "ephDec"]
                                                + [f"{p}_{c}" for p in ("helio", "topo") for c in "xyz"]
                                                + [f"{p}_v{c}" for p in ("helio", "topo") for c in "xyz"]
                                                + ["ephRateRa", "ephRateDec", "ephVmag"]), T0, T0 + 1)
    assert with_visit_cache(table, 4.2) is table
    # off by default (a direct query with the compiled kernel is faster, docs/worker.md)
    assert WorkerSettings().ephemeris_visit_cache_radius_deg == 0.0
    assert 2 * rubin_like_focal_plane().radius_deg <= DEFAULT_VISIT_CACHE_RADIUS_DEG
    on = {"ephemeris_visit_cache_radius_deg": DEFAULT_VISIT_CACHE_RADIUS_DEG}
    wired = processor_from_settings(WorkerSettings(ephemeris_store=store.path, **on)).provider
    assert isinstance(wired, VisitCacheProvider) and wired.radius_deg == DEFAULT_VISIT_CACHE_RADIUS_DEG
    off = processor_from_settings(WorkerSettings(ephemeris_store=store.path))
    assert isinstance(off.provider, EphemerisStore)
    # A directory of daily stores is cached the same way, per chosen store.
    directory = processor_from_settings(WorkerSettings(ephemeris_store=store.path.parent, **on)).provider
    assert isinstance(directory, VisitCacheProvider) and isinstance(directory.provider, StoreDirectoryProvider)
    exposures = rubin_like_focal_plane().exposures(50.0, 0.0, 0.0, T0 + 0.3, visit=1)
    for exposure in exposures[:4]:
        assert_same_columns(directory.query_exposure_columns(exposure), store.query_exposure_columns(exposure))
    assert directory.hits == 2


def test_widening_stops_when_a_worker_sees_few_detectors_of_each_visit(store):
    # As a replica among many would: 4 detectors of each visit. A wide query then costs more
    # than it saves; the provider notices, queries detectors directly, and still widens one
    # visit in _REPROBE_VISITS.
    class SlowWideStore(CountingStore):  # a wide cone costs what it does on 1.3 M objects (~5 ms)
        def query_columns(self, mjd_tai, ra_deg, dec_deg, radius_deg):
            if radius_deg > 1.0:
                time.sleep(0.005)
            return super().query_columns(mjd_tai, ra_deg, dec_deg, radius_deg)

    counting = SlowWideStore(store)
    cache = VisitCacheProvider(counting, radius_deg=4.2)
    focal_plane = rubin_like_focal_plane()
    n_visits = 40
    for k in range(n_visits):
        exposures = focal_plane.exposures(10.0 + 5 * k, 0.0, 0.0, T0 + 0.001 * k, visit=k)
        for exposure in exposures[k % 5 :: 50]:
            assert_same_columns(cache.query_exposure_columns(exposure), store.query_exposure_columns(exposure))
    assert cache.wide_queries == 1  # the first visit only (the next probe comes after _REPROBE_VISITS)
    # A worker that sees whole visits keeps widening.
    cache = VisitCacheProvider(store, radius_deg=4.2)
    for k in range(3):
        for exposure in focal_plane.exposures(10.0 + 5 * k, 0.0, 0.0, T0 + 0.001 * k, visit=k):
            cache.query_exposure_columns(exposure)
    assert cache.wide_queries == 3 and cache.hits == 3 * 187
