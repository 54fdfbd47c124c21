"""The store on disk: manifest, checksums, clear errors for bad stores, atomic writes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from test_store_support import (
    END_MJD_TAI,
    OBSERVATORY,
    START_MJD_TAI,
    cached_store,
    synthetic_orbits,
)

from ssassoc.core.ephemeris.build import BuildParameters, build_store, two_body_sampler
from ssassoc.core.ephemeris.store import (
    ARRAY_NAMES,
    FORMAT_NAME,
    FORMAT_VERSION,
    EphemerisCoverageError,
    EphemerisStore,
    EphemerisStoreError,
    sha256_file,
    write_store_directory,
)
from ssassoc.core.version import __version__


@pytest.fixture()
def store_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(cached_store(), dst)
    return dst


def test_manifest_describes_the_store() -> None:
    path = cached_store()
    m = json.loads((path / "manifest.json").read_text())
    assert m["format"] == FORMAT_NAME and m["format_version"] == FORMAT_VERSION
    assert m["software_version"] == __version__
    assert m["observatory"] == OBSERVATORY
    assert (m["start_mjd_tai"], m["end_mjd_tai"]) == (START_MJD_TAI, END_MJD_TAI)
    assert m["build"]["sampler"] == "two-body (TEST ONLY)"
    assert m["fit"]["worst_error_mas"] < 5.0 and m["fit"]["meets_5_mas_target"]
    assert set(m["arrays"]) == set(ARRAY_NAMES)
    for entry in m["arrays"].values():
        assert entry["sha256"] == sha256_file(path / entry["file"])
    # leaves nothing but the store itself
    assert not [p for p in path.parent.iterdir() if ".partial-" in p.name]


def test_open_is_lazy_fast_and_verifiable() -> None:
    path = cached_store()
    EphemerisStore.open(path)
    t0 = time.perf_counter()
    store = EphemerisStore.open(path)
    assert time.perf_counter() - t0 < 0.1
    assert len(store) == 3000 and store.observatory == OBSERVATORY
    assert EphemerisStore.open(path, verify=True).n_objects == 3000
    prefetched = EphemerisStore.open(path, prefetch=True)
    pd_equal = prefetched.query(START_MJD_TAI + 0.2, 30.0, 10.0, 20.0).equals(
        store.query(START_MJD_TAI + 0.2, 30.0, 10.0, 20.0)
    )
    assert pd_equal
    assert prefetched.warm() >= 0.0
    assert "X05" in repr(store)


def test_times_outside_the_span_raise_coverage_errors() -> None:
    store = EphemerisStore.open(cached_store())
    store.query(START_MJD_TAI, 10.0, 0.0, 1.0)  # both ends are inside
    store.query(END_MJD_TAI, 10.0, 0.0, 1.0)
    for t in (START_MJD_TAI - 1e-6, END_MJD_TAI + 1e-6, float("nan")):
        with pytest.raises(EphemerisCoverageError, match="outside the store's span"):
            store.query(t, 10.0, 0.0, 1.0)


def test_bad_cones_raise_value_errors() -> None:
    store = EphemerisStore.open(cached_store())
    for ra, dec, r in [(0.0, 91.0, 1.0), (0.0, 0.0, -1.0), (float("nan"), 0.0, 1.0)]:
        with pytest.raises(ValueError, match="bad cone"):
            store.query(START_MJD_TAI, ra, dec, r)


def test_missing_directory_and_manifest(tmp_path: Path) -> None:
    with pytest.raises(EphemerisStoreError, match="does not exist"):
        EphemerisStore.open(tmp_path / "nope")
    with pytest.raises(EphemerisStoreError, match=r"no manifest\.json"):
        EphemerisStore.open(tmp_path)


def _edit_manifest(path: Path, **changes: object) -> None:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


def test_foreign_wrong_version_and_corrupt_manifests(store_copy: Path) -> None:
    _edit_manifest(store_copy, format="something-else")
    with pytest.raises(EphemerisStoreError, match="not an ssassoc ephemeris store"):
        EphemerisStore.open(store_copy)
    _edit_manifest(store_copy, format=FORMAT_NAME, format_version=FORMAT_VERSION + 1)
    with pytest.raises(EphemerisStoreError, match=rf"format version {FORMAT_VERSION + 1}.*rebuild"):
        EphemerisStore.open(store_copy)
    # a store of the previous layout (version 1: coeffs + seg_start + sparse index keys)
    _edit_manifest(store_copy, format=FORMAT_NAME, format_version=1)
    with pytest.raises(EphemerisStoreError, match=rf"format version 1; .* reads version {FORMAT_VERSION}: rebuild"):
        EphemerisStore.open(store_copy)
    (store_copy / "manifest.json").write_text('{"format": "ssassoc-ephemeris-store", ')
    with pytest.raises(EphemerisStoreError, match="corrupt"):
        EphemerisStore.open(store_copy)


def test_truncated_missing_and_altered_arrays(store_copy: Path) -> None:
    coeffs = store_copy / "records.npy"
    data = coeffs.read_bytes()
    coeffs.write_bytes(data[: len(data) // 2])
    with pytest.raises(EphemerisStoreError, match=r"records\.npy is corrupt"):
        EphemerisStore.open(store_copy)
    coeffs.write_bytes(data)
    EphemerisStore.open(store_copy, verify=True)
    # same size, one flipped byte: only the checksum can tell
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    coeffs.write_bytes(bytes(flipped))
    EphemerisStore.open(store_copy)
    with pytest.raises(EphemerisStoreError, match="checksum mismatch"):
        EphemerisStore.open(store_copy, verify=True)
    (store_copy / "level.npy").unlink()
    with pytest.raises(EphemerisStoreError, match=r"level\.npy is missing"):
        EphemerisStore.open(store_copy)


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "store"

    def explode(stage: str, done: int, total: int) -> None:
        if stage == "index":
            raise RuntimeError("simulated failure")

    with pytest.raises(RuntimeError, match="simulated"):
        build_store(
            synthetic_orbits(50), OBSERVATORY, START_MJD_TAI, END_MJD_TAI, out,
            sampler=two_body_sampler(OBSERVATORY), progress=explode,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


class _CrashingArrays(dict):  # type: ignore[type-arg]
    """Arrays whose 6th lookup kills the process, as a power cut would, mid-write."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads = 0

    def __getitem__(self, key: str) -> np.ndarray:
        self.reads += 1
        if self.reads == 6:
            os._exit(9)
        return super().__getitem__(key)


def _write_and_crash(src: str, out: str) -> None:
    store = EphemerisStore.open(src)
    arrays = _CrashingArrays({k: np.asarray(v) for k, v in store._a.items()})
    write_store_directory(out, arrays, {k: v for k, v in store.manifest.items() if k != "arrays"})


def test_a_crash_mid_write_never_leaves_a_half_store(tmp_path: Path) -> None:
    out = tmp_path / "store"
    proc = mp.get_context("fork").Process(target=_write_and_crash, args=(str(cached_store()), str(out)))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 9
    assert not out.exists()
    partial = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert len(partial) == 1 and partial[0].name.startswith(".")
    with pytest.raises(EphemerisStoreError, match=r"no manifest\.json"):
        EphemerisStore.open(partial[0])


def test_overwrite_replaces_and_refuses_without_flag(tmp_path: Path) -> None:
    out = tmp_path / "store"
    kwargs = dict(sampler=two_body_sampler(OBSERVATORY), parameters=BuildParameters())
    build_store(synthetic_orbits(30), OBSERVATORY, START_MJD_TAI, END_MJD_TAI, out, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(FileExistsError, match="already exists"):
        build_store(synthetic_orbits(40), OBSERVATORY, START_MJD_TAI, END_MJD_TAI, out, **kwargs)  # type: ignore[arg-type]
    build_store(
        synthetic_orbits(40), OBSERVATORY, START_MJD_TAI, END_MJD_TAI, out, overwrite=True, **kwargs  # type: ignore[arg-type]
    )
    assert EphemerisStore.open(out, verify=True).n_objects == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_orbit_catalogue_checksum_is_recorded(tmp_path: Path) -> None:
    cat = tmp_path / "orbits.txt"
    cat.write_text("any bytes stand for the catalogue here\n")
    result = build_store(
        synthetic_orbits(10), OBSERVATORY, START_MJD_TAI, END_MJD_TAI, tmp_path / "s",
        sampler=two_body_sampler(OBSERVATORY), orbits_path=cat,
    )  # fmt: skip
    assert result.manifest["orbits"]["sha256"] == sha256_file(cat)
    assert result.manifest["orbits"]["path"] == str(cat.absolute())


def test_unpropagatable_objects_raise_or_are_skipped(tmp_path: Path) -> None:
    orb = synthetic_orbits(12)
    orb.pos_au[3] = np.nan  # an orbit the sampler cannot propagate
    kwargs = dict(sampler=two_body_sampler(OBSERVATORY))
    with pytest.raises(EphemerisStoreError, match=r"1 object\(s\) could not be propagated.*T0000003"):
        build_store(orb, OBSERVATORY, START_MJD_TAI, END_MJD_TAI, tmp_path / "a", **kwargs)  # type: ignore[arg-type]
    r = build_store(orb, OBSERVATORY, START_MJD_TAI, END_MJD_TAI, tmp_path / "b", skip_bad=True, **kwargs)  # type: ignore[arg-type]
    assert r.n_objects == 11 and r.n_skipped == 1
    store = EphemerisStore.open(tmp_path / "b")
    assert "T0000003" not in set(store.query(START_MJD_TAI + 0.5, 0, 0, 180)["designation"])


def test_parallel_build_gives_the_same_store(tmp_path: Path) -> None:
    orb = synthetic_orbits(600, seed=9)
    kwargs = dict(sampler=two_body_sampler(OBSERVATORY), parameters=BuildParameters(chunk_objects=150))
    build_store(orb, OBSERVATORY, START_MJD_TAI, END_MJD_TAI, tmp_path / "one", workers=1, **kwargs)  # type: ignore[arg-type]
    build_store(orb, OBSERVATORY, START_MJD_TAI, END_MJD_TAI, tmp_path / "two", workers=2, **kwargs)  # type: ignore[arg-type]
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())["arrays"]
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())["arrays"]
    assert {k: v["sha256"] for k, v in one.items()} == {k: v["sha256"] for k, v in two.items()}
