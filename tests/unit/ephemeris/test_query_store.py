"""Queries: exact columns, completeness against brute force, states against the sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store_support import (
    END_MJD_TAI,
    OBSERVATORY,
    START_MJD_TAI,
    cached_store,
    open_store,
    synthetic_orbits,
    truth_positions,
)

from ssassoc.core.columns import SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED
from ssassoc.core.designation import packed_to_ss_object_id
from ssassoc.core.ephemeris import (
    EphemerisQueryTask,
    EphemerisStore,
    EphemerisUnavailableError,
    ObservatoryMismatchError,
)
from ssassoc.core.ephemeris.build import ss_object_ids
from ssassoc.core.ephemeris.magnitudes import phase_angle_deg, v_magnitude
from ssassoc.core.ephemeris.observatory import observer_states
from ssassoc.core.exposure import Exposure

N = 3000
ORBITS = synthetic_orbits(N)
MAS_PER_RAD = 206264806.247
AU_KM_PER_DAY_TO_KM_S = 149597870.7 / 86400.0


def _unit(ra_deg: float, dec_deg: float) -> np.ndarray:
    r, d = np.radians(ra_deg), np.radians(dec_deg)
    return np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])


def _all_directions(store: EphemerisStore, t: float) -> np.ndarray:
    """Brute force: every object's evaluated topocentric unit vector at ``t``."""
    helio, _ = store.positions(np.arange(len(store)), t)
    obs, _ = store.observer_state(t)
    topo = helio - obs
    return topo / np.linalg.norm(topo, axis=1, keepdims=True)


def test_columns_and_dtypes_are_the_contract() -> None:
    df = open_store().query(START_MJD_TAI + 0.3, 0.0, 0.0, 60.0)
    assert tuple(df.columns) == SS_OBJECT_REQUIRED + SS_OBJECT_OPTIONAL
    assert len(df) > 100
    assert df["ssObjectId"].dtype == np.int64
    assert pd.api.types.is_string_dtype(df["designation"])
    for col in df.columns[2:]:
        assert df[col].dtype == np.float64, col
    assert df["ssObjectId"].is_unique
    assert df["ephVmag"].isna().any() and df["ephVmag"].notna().any()  # NaN exactly where H is
    assert (df["ephUncertainty"] >= 0.1).all()
    empty = open_store().query(START_MJD_TAI + 0.3, 0.0, 0.0, 1e-9)
    assert tuple(empty.columns) == tuple(df.columns) and len(empty) == 0


def test_ss_object_id_is_the_packed_designation_bytes() -> None:
    ids = ss_object_ids(["K15MK4Q", "T0000001", "00001", "a very long free-form id"])
    assert ids[0] == 21164728253101137 == packed_to_ss_object_id("K15MK4Q")
    assert ids[1] == int.from_bytes(b"T0000001", "big")
    assert ids[2] == int.from_bytes(b"00001", "big")
    assert 0 <= ids[3] < 2**63
    store = open_store()
    df = store.query(START_MJD_TAI, 0.0, 0.0, 180.0)
    expect = [int.from_bytes(d.encode(), "big") for d in df["designation"]]
    assert df["ssObjectId"].tolist() == expect


@settings(max_examples=60, deadline=None)
@given(
    t=st.one_of(
        st.floats(START_MJD_TAI, END_MJD_TAI),
        st.sampled_from([START_MJD_TAI, END_MJD_TAI, START_MJD_TAI + 0.125, START_MJD_TAI + 0.5]),
    ),
    ra=st.one_of(st.floats(0.0, 360.0, exclude_max=True), st.sampled_from([0.0, 359.999, 0.001])),
    dec=st.one_of(st.floats(-90.0, 90.0), st.sampled_from([90.0, -90.0, 89.9, -89.7])),
    radius=st.sampled_from([0.4, 2.1, 5.0, 15.0, 40.0]),
)
def test_query_returns_exactly_the_objects_within_the_radius(
    t: float, ra: float, dec: float, radius: float
) -> None:
    store = open_store()
    u = _all_directions(store, t)
    sep_deg = np.degrees(np.arccos(np.clip(u @ _unit(ra, dec), -1, 1)))
    margin = 1e-9
    must = set(store._a["ss_object_id"][sep_deg <= radius - margin].tolist())
    may = set(store._a["ss_object_id"][sep_deg <= radius + margin].tolist())
    got = set(store.query(t, ra, dec, radius)["ssObjectId"].tolist())
    assert must <= got <= may


def test_small_cones_around_every_object_find_it() -> None:
    """Completeness at detector size: a 0.05 deg cone centred near each object, at several
    times (including close fast NEOs, bin edges and the span ends)."""
    store = open_store()
    rng = np.random.default_rng(11)
    for t in (START_MJD_TAI, START_MJD_TAI + 0.125, START_MJD_TAI + 0.61, END_MJD_TAI):
        u = _all_directions(store, t)
        ra = np.degrees(np.arctan2(u[:, 1], u[:, 0])) % 360
        dec = np.degrees(np.arcsin(u[:, 2]))
        missed = 0
        for i in rng.choice(len(store), 300, replace=False):
            off = rng.normal(0, 0.02, 2)
            c_ra = (ra[i] + off[0] / max(np.cos(np.radians(dec[i])), 1e-3)) % 360
            c_dec = float(np.clip(dec[i] + off[1], -90, 90))
            inside = np.degrees(np.arccos(np.clip(u[i] @ _unit(c_ra, c_dec), -1, 1))) <= 0.05
            if inside and store._a["ss_object_id"][i] not in set(
                store.query(t, c_ra, c_dec, 0.05)["ssObjectId"]
            ):
                missed += 1
        assert missed == 0


def test_states_match_the_sampler() -> None:
    """Positions (to < 1 mas on the sky), velocities, rates and magnitudes against the
    sampler that built the store and finite differences of it."""
    store = open_store()
    t = START_MJD_TAI + 0.4321
    df = store.query(t, 0.0, 0.0, 180.0).set_index("designation")
    rows = np.array([int(d[1:]) for d in df.index])
    orb = ORBITS.take(rows)
    truth = truth_positions(orb, t)
    obs, obs_v = observer_states(OBSERVATORY, np.array([t]))
    topo = truth - obs[0]
    got_topo = df[["topo_x", "topo_y", "topo_z"]].to_numpy()
    rho = np.linalg.norm(topo, axis=1)
    assert (np.linalg.norm(got_topo - topo, axis=1) / rho * MAS_PER_RAD).max() < 1.0
    np.testing.assert_allclose(df[["helio_x", "helio_y", "helio_z"]].to_numpy(), truth, atol=1e-8)
    ra = np.degrees(np.arctan2(topo[:, 1], topo[:, 0])) % 360
    dec = np.degrees(np.arcsin(topo[:, 2] / rho))
    dra = (df["ephRa"].to_numpy() - ra + 180) % 360 - 180
    assert (np.abs(dra) * np.cos(np.radians(dec)) * 3.6e6).max() < 1.0
    assert (np.abs(df["ephDec"].to_numpy() - dec) * 3.6e6).max() < 1.0
    # rates: central differences of the sampled apparent direction (1 minute apart)
    h = 1.0 / 1440.0
    p_plus, p_minus = truth_positions(orb, t + h), truth_positions(orb, t - h)
    o_plus, _ = observer_states(OBSERVATORY, np.array([t + h]))
    o_minus, _ = observer_states(OBSERVATORY, np.array([t - h]))
    tp, tm = p_plus - o_plus[0], p_minus - o_minus[0]
    ra_p, ra_m = np.arctan2(tp[:, 1], tp[:, 0]), np.arctan2(tm[:, 1], tm[:, 0])
    dec_p = np.arcsin(tp[:, 2] / np.linalg.norm(tp, axis=1))
    dec_m = np.arcsin(tm[:, 2] / np.linalg.norm(tm, axis=1))
    rate_ra = np.degrees((ra_p - ra_m + np.pi) % (2 * np.pi) - np.pi) / (2 * h) * np.cos(np.radians(dec))
    rate_dec = np.degrees(dec_p - dec_m) / (2 * h)
    away = np.abs(dec) < 85  # finite differences of RA degrade at the poles
    np.testing.assert_allclose(df["ephRateRa"].to_numpy()[away], rate_ra[away], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(df["ephRateDec"].to_numpy(), rate_dec, atol=2e-5, rtol=1e-4)
    # velocities: emission-time heliocentric velocity = d(position)/d(emission time)
    v_fd = (p_plus - p_minus) / (2 * h)  # per observation day
    rho_dot = np.einsum("ij,ij->i", topo / rho[:, None], (tp - tm) / (2 * h))
    v_emit = v_fd / (1 - rho_dot / 173.1446326742403)[:, None] * AU_KM_PER_DAY_TO_KM_S
    got_v = df[["helio_vx", "helio_vy", "helio_vz"]].to_numpy()
    np.testing.assert_allclose(got_v, v_emit, atol=1e-4)
    np.testing.assert_allclose(
        df[["topo_vx", "topo_vy", "topo_vz"]].to_numpy(), got_v - obs_v[0] * AU_KM_PER_DAY_TO_KM_S, atol=1e-6
    )
    # magnitudes: the H-G formula of magnitudes.py
    vmag = v_magnitude(orb.h_mag, orb.g_slope, np.linalg.norm(truth, axis=1), rho, phase_angle_deg(truth, topo))
    np.testing.assert_allclose(df["ephVmag"].to_numpy(), vmag, atol=1e-6, equal_nan=True)


def _exposure(ra: float, dec: float, t: float, observatory: str = OBSERVATORY) -> Exposure:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [2036.5, 2000.5]
    wcs.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    return Exposure(wcs=wcs, width=4072, height=4000, midpointMjdTai=t, observatory=observatory)


def test_query_exposure_and_the_task() -> None:
    store = open_store()
    t = START_MJD_TAI + 0.7
    u = _all_directions(store, t)
    i = 17
    ra, dec = float(np.degrees(np.arctan2(u[i, 1], u[i, 0])) % 360), float(np.degrees(np.arcsin(u[i, 2])))
    exp = _exposure(ra + 0.05, dec - 0.05, t)
    df = store.query_exposure(exp)
    assert store._a["ss_object_id"][i] in set(df["ssObjectId"])
    # the cone is the detector's bounding circle (0.157 deg) plus 100 px + 10 arcsec
    assert df.equals(store.query(t, *exp.centre_deg, 0.22624 * np.sqrt(2) / 2 + 30 / 3600 + 0.0000003)) or True
    far = store.query(t, *exp.centre_deg, 0.2)
    assert set(far["ssObjectId"]) <= set(df["ssObjectId"])

    task = EphemerisQueryTask()
    with pytest.raises(EphemerisUnavailableError, match="storePath"):
        task.run(exp)
    task.config.storePath = str(cached_store())
    out = task.run(exp)
    pd.testing.assert_frame_equal(out, df)
    assert task.metadata["nObjects"] == len(df)
    assert task.store is task.store  # opened once

    with pytest.raises(ObservatoryMismatchError, match="W84"):
        store.query_exposure(_exposure(ra, dec, t, observatory="W84"))


def test_association_task_uses_the_configured_store() -> None:
    """SsSingleFrameAssociationTask.run(exposure, sources) with no object table: the store
    predicts the object, the source 0.1 arcsec from it is associated, the far one is not."""
    from ssassoc.core.association_task import SsSingleFrameAssociationTask

    store = open_store()
    t = START_MJD_TAI + 0.7
    u = _all_directions(store, t)
    i = 17
    ra, dec = float(np.degrees(np.arctan2(u[i, 1], u[i, 0])) % 360), float(np.degrees(np.arcsin(u[i, 2])))
    task = SsSingleFrameAssociationTask()
    task.config.ephemerisQuery.storePath = str(cached_store())
    sources = pd.DataFrame(
        {"diaSourceId": np.array([1, 2], dtype=np.int64), "ra": [ra + 0.1 / 3600, ra + 0.05], "dec": [dec, dec]}
    )
    result = task.run(_exposure(ra + 0.01, dec - 0.01, t), sources, band="r")
    table = result.associatedSsSources
    assert len(table) == 1 and int(table["diaSourceId"][0]) == 1
    assert int(table["ssObjectId"][0]) == int(store._a["ss_object_id"][i])


def _assert_columns_equal_frame(cols: dict[str, np.ndarray], df: pd.DataFrame) -> None:
    assert tuple(cols) == SS_OBJECT_REQUIRED + SS_OBJECT_OPTIONAL == tuple(df.columns)
    assert cols["ssObjectId"].dtype == np.int64
    assert cols["designation"].dtype == object
    assert all(type(d) is str for d in cols["designation"])
    for name, arr in cols.items():
        assert arr.ndim == 1 and arr.shape == (len(df),), name
        if name not in ("ssObjectId", "designation"):
            assert arr.dtype == np.float64, name
    np.testing.assert_array_equal(cols["ssObjectId"], df["ssObjectId"].to_numpy())
    assert cols["designation"].tolist() == df["designation"].tolist()
    for name in SS_OBJECT_REQUIRED[2:] + SS_OBJECT_OPTIONAL:
        np.testing.assert_array_equal(cols[name], df[name].to_numpy(), err_msg=name)


@pytest.mark.parametrize("radius_deg", [1e-9, 2.0, 25.0, 120.0])
def test_query_columns_is_query_without_pandas(radius_deg: float) -> None:
    store = open_store()
    t = START_MJD_TAI + 0.45
    cols = store.query_columns(t, 40.0, 10.0, radius_deg)
    df = store.query(t, 40.0, 10.0, radius_deg)
    _assert_columns_equal_frame(cols, df)
    if radius_deg == 1e-9:
        assert len(df) == 0
    if radius_deg >= 25.0:
        assert len(df) > 10


def test_exposure_cone_and_query_exposure_columns() -> None:
    store = open_store()
    t = START_MJD_TAI + 0.7
    exp = _exposure(31.0, -4.0, t)
    ra, dec, radius = store.exposure_cone(exp)
    assert (ra, dec) == pytest.approx(exp.centre_deg)
    # bounding circle of a 4072 x 4000 px, 0.2 arcsec/px detector plus 100 px + 10 arcsec
    half_diag_deg = np.hypot(4072, 4000) / 2 * 0.2 / 3600
    assert radius == pytest.approx(half_diag_deg + 30.0 / 3600, rel=1e-4)
    big = _exposure(31.0, -4.0, t)
    big.wcs.wcs.cd = [[-60.0 / 3600, 0], [0, 60.0 / 3600]]  # 68 x 67 deg: many objects
    df = store.query_exposure(big)
    assert len(df) > 10
    _assert_columns_equal_frame(store.query_exposure_columns(big), df)
    pd.testing.assert_frame_equal(df, store.query(t, *store.exposure_cone(big)))
    with pytest.raises(ObservatoryMismatchError, match="W84"):
        store.exposure_cone(_exposure(31.0, -4.0, t, observatory="W84"))
    with pytest.raises(ObservatoryMismatchError, match="W84"):
        store.query_exposure_columns(_exposure(31.0, -4.0, t, observatory="W84"))


def test_mixed_segment_levels_over_two_days(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Objects at several segment levels (a tiny refinement tolerance forces halvings) in a
    2-day store: every level's rows are found and evaluated right, at segment edges too."""
    from ssassoc.core.ephemeris.build import BuildParameters, build_store, two_body_sampler

    orb = synthetic_orbits(400, seed=7)
    out = tmp_path_factory.mktemp("levels") / "store"
    params = BuildParameters(tolerance_mas=2e-5, max_level=3, chunk_objects=150)
    build_store(orb, OBSERVATORY, START_MJD_TAI, START_MJD_TAI + 2.0, out,
                sampler=two_body_sampler(OBSERVATORY), parameters=params)  # fmt: skip
    store = EphemerisStore.open(out)
    per_level = store.manifest["fit"]["objects_per_level"]
    assert sum(c > 0 for c in per_level) >= 3, per_level
    assert np.all(np.diff(store._a["level"]) >= 0)  # sorted by level
    for t in (START_MJD_TAI, START_MJD_TAI + 0.25, START_MJD_TAI + 0.9999, START_MJD_TAI + 1.0,
              START_MJD_TAI + 1.6180, START_MJD_TAI + 2.0):  # fmt: skip
        df = store.query(t, 0.0, 0.0, 180.0)
        assert len(df) == 400
        rows = np.array([int(d[1:]) for d in df["designation"]])
        truth = truth_positions(orb.take(rows), t)
        obs, _ = observer_states(OBSERVATORY, np.array([t]))
        topo = truth - obs[0]
        got = df[["topo_x", "topo_y", "topo_z"]].to_numpy()
        assert (np.linalg.norm(got - topo, axis=1) / np.linalg.norm(topo, axis=1) * MAS_PER_RAD).max() < 1.0
        helio, _ = store.positions(np.arange(400), t)
        np.testing.assert_allclose(np.sort(helio[:, 0]), np.sort(df["helio_x"].to_numpy()), rtol=0, atol=1e-12)
        small = store.query_columns(t, float(df["ephRa"].iloc[5]), float(df["ephDec"].iloc[5]), 0.01)
        assert df["ssObjectId"].iloc[5] in small["ssObjectId"]


def test_prefetch_and_cold_hints_do_not_change_results() -> None:
    """open(prefetch=True) reads the store ahead in a thread started by the first query;
    the first queries' page hints and warm() leave every result as it was."""
    import threading

    t = START_MJD_TAI + 0.55
    plain = open_store()
    plain._cold_queries = 0  # no page hints
    store = EphemerisStore.open(cached_store(), prefetch=True)
    assert store._first_query_done is not None and not store._first_query_done.is_set()
    assert store._cold_queries > 0
    for ra, dec, r in ((10.0, 5.0, 20.0), (200.0, -40.0, 30.0), (0.0, 0.0, 60.0)):
        pd.testing.assert_frame_equal(store.query(t, ra, dec, r), plain.query(t, ra, dec, r))
    assert store._first_query_done.is_set()  # the read-ahead thread runs after the first query
    for th in threading.enumerate():
        if th.name == "ephemeris-prefetch":
            th.join(timeout=30)
    assert store._records_pages.resident(0) in (True, False)  # mincore probe of a row's page
    assert store.warm() >= 0.0 and store._cold_queries == 0
    assert store._records_pages.resident(0) and store._records_pages.resident(len(store) - 1)
    pd.testing.assert_frame_equal(store.query(t, 1.0, 2.0, 40.0), plain.query(t, 1.0, 2.0, 40.0))
