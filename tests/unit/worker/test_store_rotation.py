"""A directory of daily stores used as one: the newest covering store wins, new ones are found."""

import json
import time

import numpy as np
import pytest

from ssassoc.core.ephemeris.build import build_store, two_body_sampler
from ssassoc.core.ephemeris.population import generate_population
from ssassoc.core.ephemeris.store import EphemerisCoverageError
from ssassoc.core.focal_plane import rubin_like_focal_plane
from ssassoc.worker.store_rotation import StoreDirectoryProvider, is_store_directory


@pytest.fixture(scope="module")
def orbits():
    return generate_population(300, seed=3, epoch_mjd_tdb=60810.0).to_orbit_table()


def build(orbits, root, name, start, end):
    # Two-body positions keep this test fast; the store mechanics are the same.
    return build_store(orbits, "X05", start, end, root / name, sampler=two_body_sampler("X05"))


def test_the_covering_store_is_chosen_and_new_ones_are_found(tmp_path, orbits):
    build(orbits, tmp_path, "day1", 60810.0, 60811.0)
    (tmp_path / "day2-in-progress").mkdir()  # no manifest yet: ignored
    provider = StoreDirectoryProvider(tmp_path, rescan_interval_s=3600)
    assert len(provider.spans) == 1
    assert provider.store_for(60810.5, "X05").start_mjd_tai == 60810.0
    with pytest.raises(EphemerisCoverageError, match=r"60811.50000.*X05 \[60810.00000, 60811.00000\]"):
        provider.store_for(60811.5, "X05")
    with pytest.raises(EphemerisCoverageError, match="observatory W84"):
        provider.store_for(60810.5, "W84")
    # The next day's store arrives while the worker runs: found on the first miss.
    build(orbits, tmp_path, "day2", 60811.0, 60812.0)
    assert provider.store_for(60811.5, "X05").start_mjd_tai == 60811.0
    assert is_store_directory(tmp_path / "day2") and not is_store_directory(tmp_path)


def test_a_rebuild_of_the_same_span_replaces_the_old_store(tmp_path, orbits):
    build(orbits, tmp_path, "a-old", 60810.0, 60811.0)
    provider = StoreDirectoryProvider(tmp_path, rescan_interval_s=0.0)
    first = provider.store_for(60810.5, "X05")
    time.sleep(1.1)  # created_utc has a resolution of one second
    build(orbits.take(np.arange(100)), tmp_path, "b-new", 60810.0, 60811.0)
    second = provider.store_for(60810.5, "X05")
    assert second.n_objects == 100 and first.n_objects == 300
    # The exposure path works through the chosen store.
    exposure = rubin_like_focal_plane().exposures(10.0, 0.0, 0.0, 60810.5, visit=1)[94]
    table = provider.query_exposure(exposure)
    assert set(table.columns) >= {"ssObjectId", "ephRa", "ephDec"}


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        StoreDirectoryProvider(tmp_path / "nope")


def test_a_broken_manifest_is_skipped(tmp_path, orbits):
    build(orbits, tmp_path, "good", 60810.0, 60811.0)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text(json.dumps({"format": "something else"}))
    provider = StoreDirectoryProvider(tmp_path)
    assert [s[3].split("/")[-1] for s in provider.spans] == ["good"]


def test_the_worker_opens_a_directory_of_stores_as_one(tmp_path, orbits):
    from ssassoc.worker.ephemeris import open_provider

    build(orbits, tmp_path, "day1", 60810.0, 60811.0)
    assert isinstance(open_provider(tmp_path), StoreDirectoryProvider)
    assert not isinstance(open_provider(tmp_path / "day1"), StoreDirectoryProvider)
