"""The compiled query kernel against the numpy reference path it replaces.

Both paths stay in the store (the numpy one is the fallback where the extension was not
built), so every query form must give the same rows and, to rounding, the same values.
The synthetic store has objects on three segment levels, so the per-level row lookup of
both paths is exercised.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_store_support import END_MJD_TAI, START_MJD_TAI, cached_store, open_store

from ssassoc.core.ephemeris import sky_index, store
from ssassoc.core.ephemeris.store import SS_OBJECT_COLUMNS, EphemerisStore, EphemerisStoreError

KERNEL = store._query_kernel


@contextmanager
def numpy_path(s: EphemerisStore) -> Iterator[None]:
    """Run queries through the numpy reference path (no compiled kernel)."""
    saved = store._query_kernel, sky_index._query_kernel
    store._query_kernel = sky_index._query_kernel = None  # type: ignore[assignment]
    s._plan_cache = None
    try:
        yield
    finally:
        store._query_kernel, sky_index._query_kernel = saved
        s._plan_cache = None


def assert_same_result(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want) == list(SS_OBJECT_COLUMNS)
    np.testing.assert_array_equal(got["ssObjectId"], want["ssObjectId"])
    np.testing.assert_array_equal(got["designation"], want["designation"])
    for name in SS_OBJECT_COLUMNS[2:]:
        # values of order 1e-3..1e3 in their units; rounding differs only in the last bits.
        # V is ill-conditioned near phase 180 deg (tan^2(a/2) divides by r rho + h.t -> 0; an
        # object behind the Sun has V ~ 380 here): 5e-11 relative was seen there
        rtol = 1e-9 if name == "ephVmag" else 1e-11
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=1e-12, err_msg=name)


def test_the_kernel_is_compiled_in_this_install() -> None:
    # CI must measure and test the path production runs, not silently the fallback
    assert KERNEL is not None, "ssassoc.core.ephemeris._query_kernel was not built (needs Cython and a C compiler)"
    assert sky_index._query_kernel is KERNEL


@settings(max_examples=80, deadline=None)
@given(
    t=st.floats(START_MJD_TAI, END_MJD_TAI),
    ra=st.floats(0.0, 360.0, exclude_max=True),
    z=st.floats(-1.0, 1.0),
    radius=st.sampled_from([0.05, 0.4, 2.1, 10.0, 60.0, 100.0]),
)
@example(t=60801.3951439477, ra=0.0, z=0.0, radius=60.0)  # holds the object behind the Sun (V ~ 380)
def test_kernel_query_equals_numpy_query(t: float, ra: float, z: float, radius: float) -> None:
    s = open_store()
    dec = float(np.degrees(np.arcsin(z)))
    got = s.query_columns(t, ra, dec, radius)
    with numpy_path(s):
        want = s.query_columns(t, ra, dec, radius)
    assert_same_result(got, want)


def test_kernel_and_numpy_agree_on_a_whole_sky_at_the_span_ends_and_segment_boundaries() -> None:
    s = open_store()
    base = s.manifest["build"]["n_base_segments"]
    times = [START_MJD_TAI, END_MJD_TAI, START_MJD_TAI + 0.5 / base, START_MJD_TAI + 1.0 / base]
    for t in times:
        got = s.query_columns(t, 10.0, -5.0, 180.0)  # every object: the scan-all path
        with numpy_path(s):
            want = s.query_columns(t, 10.0, -5.0, 180.0)
        assert got["ssObjectId"].size == len(s)
        assert_same_result(got, want)
        frame = s.query(t, 10.0, -5.0, 180.0)
        np.testing.assert_array_equal(frame["ssObjectId"].to_numpy(), want["ssObjectId"])


@settings(max_examples=60, deadline=None)
@given(dt=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.25, 0.5, 1.0 / 3.0])))
def test_time_plan_equals_the_python_plan(dt: float) -> None:
    s = open_store()
    s._plan_cache = None
    got = s._plan(dt)
    with numpy_path(s):
        want = s._plan(dt)
    np.testing.assert_array_equal(got.row_add[s._present_levels], want.row_add[s._present_levels])
    np.testing.assert_allclose(got.basis[s._present_levels], want.basis[s._present_levels], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got.obs, want.obs, rtol=1e-14, atol=1e-15)


@settings(max_examples=80, deadline=None)
@given(
    dt=st.floats(0.0, 1.0),
    ra=st.floats(0.0, 360.0, exclude_max=True),
    dec=st.floats(-90.0, 90.0),
    radius=st.floats(0.0, 30.0),
)
def test_compiled_gather_equals_the_numpy_gather(dt: float, ra: float, dec: float, radius: float) -> None:
    index = open_store()._index
    got = index.candidates(dt, ra, dec, radius)
    with numpy_path(open_store()):
        want = index.candidates(dt, ra, dec, radius)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.diff(got) > 0)  # sorted, each object once


def test_empty_cones_give_empty_typed_results() -> None:
    s = open_store()
    cols = s.query_columns(START_MJD_TAI + 0.1, 123.0, 45.0, 0.0)
    assert all(v.size == 0 for v in cols.values())
    assert cols["ssObjectId"].dtype == np.int64
    assert s.query(START_MJD_TAI + 0.1, 123.0, 45.0, 0.0).empty


def test_kernel_rejects_a_mistyped_call_clearly() -> None:
    s = open_store()
    plan = s._plan(0.3)
    with pytest.raises((ValueError, TypeError)):
        KERNEL.evaluate_cone(
            np.arange(3, dtype=np.float64), s._records, s._level_bounds, s._level_nseg_arr, plan.row_add,
            plan.basis, plan.obs, 1.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0,
        )  # fmt: skip


def _corrupt_copy(tmp_path: Path, name: str, edit: Callable[[np.ndarray], None]) -> Path:
    """A copy of the test store with array ``name`` edited in place (checksums now stale:
    ``open`` without ``verify`` does not read them, as a worker's open does not)."""
    dst = tmp_path / "corrupt"
    shutil.copytree(cached_store(), dst)
    arr = np.load(dst / f"{name}.npy", mmap_mode="r+")
    edit(arr)
    arr.flush()
    del arr
    return dst


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("index_objects", lambda a: a.__setitem__(slice(None), 2**31 - 1)),  # rows past the objects
        ("index_objects", lambda a: a.__setitem__(slice(None), -5)),
        ("index_offsets", lambda a: a.__setitem__(slice(a.size // 2, None), 2**40)),  # entries past the end
    ],
    ids=["rows-too-big", "rows-negative", "offsets-past-end"],
)
def test_a_corrupt_index_raises_a_clear_error_not_a_crash(
    tmp_path: Path, name: str, edit: Callable[[np.ndarray], None], kernel: bool
) -> None:
    s = EphemerisStore.open(_corrupt_copy(tmp_path, name, edit))
    with contextlib.ExitStack() as stack:
        if not kernel:
            stack.enter_context(numpy_path(s))
        with pytest.raises(EphemerisStoreError, match=r"is corrupt: .*ephem info --verify"):
            for ra in range(0, 360, 15):  # some cones meet the edited part of the index
                for dec in (-60.0, -20.0, 0.0, 20.0, 60.0):
                    s.query_columns(START_MJD_TAI + 0.5, float(ra), dec, 3.0)
    with pytest.raises(EphemerisStoreError, match="checksum mismatch"):
        EphemerisStore.open(s.path, verify=True)
