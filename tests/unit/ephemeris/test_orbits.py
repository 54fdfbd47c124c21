"""Orbit readers, element conversions, packed epochs and two-body propagation."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core.ephemeris import orbits as O
from ssassoc.core.ephemeris.planets import GM_SUN_AU3_PER_DAY2
from ssassoc.core.ephemeris.population import generate_population, pack_epochs, write_mpcorb

K = np.sqrt(GM_SUN_AU3_PER_DAY2)


# -- packed epochs -----------------------------------------------------------------------


def test_unpack_epochs_known_answers() -> None:
    # K2555 = 2025 May 5, J9611 = 1996 Jan 1, K24AA = 2024 Oct 10, I9912 = 1899 Jan 2.
    got = O.unpack_epochs_mjd(["K2555", "J9611", "K24AA", "I9912"])
    np.testing.assert_array_equal(got, [60800.0, 50083.0, 60593.0, 14656.0])


@pytest.mark.parametrize("bad", ["X2555", "K25D5", "K2550", "K255W", "K2", ""])
def test_unpack_epochs_malformed_is_nan(bad: str) -> None:
    assert np.isnan(O.unpack_epochs_mjd([bad])[0])


@given(st.integers(min_value=14_000, max_value=88_000))
def test_pack_unpack_epoch_roundtrip(mjd: int) -> None:
    assert O.unpack_epochs_mjd(pack_epochs([mjd]))[0] == mjd


# -- frames and elements -------------------------------------------------------------------


def test_ecliptic_pole_in_equatorial_frame() -> None:
    eps = np.radians(84381.448 / 3600.0)
    np.testing.assert_allclose(
        O.ecliptic_to_equatorial([0.0, 0.0, 1.0]), [0.0, -np.sin(eps), np.cos(eps)], atol=1e-15
    )
    v = np.array([0.3, -1.2, 0.7])
    np.testing.assert_allclose(O.equatorial_to_ecliptic(O.ecliptic_to_equatorial(v)), v)


def test_circular_orbit_known_state() -> None:
    pos, vel = O.keplerian_to_cartesian(1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(pos, [1.0, 0.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(vel, [0.0, K, 0.0], atol=1e-14)
    # A quarter period later the body is on the y axis.
    p2, v2 = O.propagate_two_body(pos, vel, 0.5 * np.pi / K)
    np.testing.assert_allclose(p2, [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(v2, [-K, 0.0, 0.0], atol=1e-12)


def test_perihelion_state_of_a_comet() -> None:
    # At t = tp the body is at perihelion, distance q, speed sqrt(mu (1 + e) / q).
    for e in (0.5, 1.0, 3.0):
        pos, vel = O.cometary_to_cartesian(0.7, e, 30.0, 40.0, 50.0, 60000.0, 60000.0)
        assert np.linalg.norm(pos) == pytest.approx(0.7, rel=1e-12)
        assert np.linalg.norm(vel) == pytest.approx(np.sqrt((1 + e) / 0.7) * K, rel=1e-12)
        assert np.dot(pos, vel) == pytest.approx(0.0, abs=1e-14)


elements = st.tuples(
    st.floats(0.05, 60.0),  # q
    st.one_of(st.floats(0.0, 0.99), st.floats(0.995, 1.005), st.floats(1.01, 4.0)),  # e
    st.floats(0.01, 179.9),  # inc
    st.floats(0.0, 359.9),  # node
    st.floats(0.0, 359.9),  # argperi
    st.floats(-3000.0, 3000.0),  # tp - epoch
)


@settings(max_examples=200, deadline=None)
@given(elements)
def test_cometary_cartesian_roundtrip(el: tuple[float, ...]) -> None:
    q, e, inc, node, peri, dtp = el
    pos, vel = O.cometary_to_cartesian(q, e, inc, node, peri, dtp, 0.0)
    back = O.cartesian_to_cometary(pos, vel, 0.0)
    # Far from perihelion q and e are ill-conditioned functions of the state: allow the
    # round-off to grow with r / q.
    grow = np.linalg.norm(pos) / q
    assert back["q_au"][0] == pytest.approx(q, rel=1e-9 * grow)
    assert back["e"][0] == pytest.approx(e, abs=1e-9 * grow)
    assert back["inc_deg"][0] == pytest.approx(inc, abs=1e-8 * grow)
    # The state from the recovered elements is the same state.
    p2, v2 = O.cometary_to_cartesian(
        back["q_au"], back["e"], back["inc_deg"], back["node_deg"], back["argperi_deg"],
        back["tp_mjd_tdb"], 0.0,
    )
    np.testing.assert_allclose(p2[0], pos, rtol=1e-7, atol=1e-9 * q)
    np.testing.assert_allclose(v2[0], vel, rtol=1e-7, atol=1e-9 * K)


@settings(max_examples=100, deadline=None)
@given(elements, st.floats(-5000.0, 5000.0))
def test_two_body_conserves_energy_and_momentum_and_reverses(
    el: tuple[float, ...], dt: float
) -> None:
    q, e, inc, node, peri, dtp = el
    pos, vel = O.cometary_to_cartesian(q, e, inc, node, peri, dtp, 0.0)
    p1, v1 = O.propagate_two_body(pos, vel, dt)
    energy = lambda p, v: 0.5 * v @ v - GM_SUN_AU3_PER_DAY2 / np.linalg.norm(p)  # noqa: E731
    # Passing a close perihelion from far away amplifies round-off by ~ r / q.
    cond = max(1.0, max(np.linalg.norm(p1), np.linalg.norm(pos)) / q)
    tol = max(1e-9, 1e-10 * cond)
    assert energy(p1, v1) == pytest.approx(energy(pos, vel), rel=tol, abs=1e-14)
    np.testing.assert_allclose(np.cross(p1, v1), np.cross(pos, vel), rtol=tol, atol=1e-13)
    p0, _ = O.propagate_two_body(p1, v1, -dt)
    # Going back towards perihelion amplifies round-off by ~ r1 / r0.
    grow = max(1.0, np.linalg.norm(p1) / np.linalg.norm(pos))
    np.testing.assert_allclose(p0, pos, rtol=1e-6, atol=1e-9 * max(q, 1.0) * grow)


# -- readers -------------------------------------------------------------------------------

MPC_HEADER = "MINOR PLANET CENTER ORBIT DATABASE (MPCORB)\nDes'n     H     G   Epoch\n" + "-" * 160


def _write_small_mpcorb(path: Path, n: int = 20) -> O.OrbitTable:
    pop = generate_population(n, seed=5, epoch_mjd_tdb=60800.0)
    write_mpcorb(pop, path)
    return pop.to_orbit_table()


def test_read_mpcorb_matches_elements(tmp_path: Path) -> None:
    truth = _write_small_mpcorb(tmp_path / "MPCORB.DAT")
    tab = O.read_orbits(tmp_path / "MPCORB.DAT")
    assert len(tab) == len(truth)
    assert list(tab.object_id) == list(truth.object_id)
    np.testing.assert_array_equal(tab.epoch_mjd_tdb, 60800.0)
    # Angles are written with 5 decimals: states agree to ~1e-5 relative.
    np.testing.assert_allclose(tab.pos_au, truth.pos_au, atol=2e-4)
    np.testing.assert_allclose(tab.h_mag, truth.h_mag, atol=0.006)
    assert not tab.barycentric.any()


def test_read_mpcorb_gzipped_and_blank_h(tmp_path: Path) -> None:
    _write_small_mpcorb(tmp_path / "plain.dat", 3)
    lines = (tmp_path / "plain.dat").read_text().splitlines()
    lines[-1] = lines[-1][:8] + "     " + lines[-1][13:]  # blank H
    with gzip.open(tmp_path / "MPCORB.DAT.gz", "wt", encoding="latin-1") as fh:
        fh.write("\n".join(lines) + "\n")
    tab = O.read_mpcorb(tmp_path / "MPCORB.DAT.gz")
    assert len(tab) == 3
    assert np.isnan(tab.h_mag[-1]) and np.isfinite(tab.h_mag[:2]).all()


def test_read_mpcorb_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "MPCORB.DAT"
    _write_small_mpcorb(path, 5)
    lines = path.read_text().splitlines()
    bad = lines[5][:70] + "-0.1000000" + lines[5][80:]  # e < 0 on file line 6
    lines[5] = bad
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(O.OrbitFormatError, match=r"MPCORB.DAT:6: eccentricity < 0"):
        O.read_mpcorb(path)
    tab = O.read_mpcorb(path, skip_bad=True)
    assert len(tab) == 4 and tab.n_skipped == 1 and tab.skipped[0][0] == 6


def test_read_mpcorb_bad_epoch(tmp_path: Path) -> None:
    path = tmp_path / "MPCORB.DAT"
    _write_small_mpcorb(path, 2)
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1][:20] + "K25Z5" + lines[-1][25:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(O.OrbitFormatError, match=r":5: malformed packed epoch"):
        O.read_mpcorb(path)


def _state_fixture() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    pos, vel = O.keplerian_to_cartesian(2.5, 0.2, 10.0, 80.0, 30.0, 45.0)
    el = O.cartesian_to_cometary(pos, vel, 60000.0)
    return pos, vel, el


@pytest.mark.parametrize("sep", [",", " "])
def test_openorb_formats_give_the_same_state(tmp_path: Path, sep: str) -> None:
    pos, vel, el = _state_fixture()
    j = sep.join
    rows = [
        j(["ObjID", "FORMAT", "a", "e", "inc", "node", "argPeri", "ma", "epochMJD_TDB", "H", "G"]),
        j(["k1", "KEP", "2.5", "0.2", "10", "80", "30", "45", "60000", "15.5", "0.15"]),
    ]
    (tmp_path / "kep.csv").write_text("\n".join(rows) + "\n")
    com = [
        j(["ObjID", "FORMAT", "q", "e", "inc", "node", "argPeri", "t_p_MJD_TDB", "epochMJD_TDB"]),
        j(["c1", "COM", *(repr(float(el[k][0])) for k in
                          ("q_au", "e", "inc_deg", "node_deg", "argperi_deg", "tp_mjd_tdb")),
           "60000"]),
    ]
    (tmp_path / "com.csv").write_text("\n".join(com) + "\n")
    cart = [
        j(["ObjID", "FORMAT", "x", "y", "z", "xdot", "ydot", "zdot", "epochMJD_TDB"]),
        j(["x1", "CART", *(repr(float(v)) for v in (*pos, *vel)), "60000"]),
    ]
    (tmp_path / "cart.csv").write_text("\n".join(cart) + "\n")
    want_p = O.ecliptic_to_equatorial(pos)
    for name in ("kep", "com", "cart"):
        tab = O.read_orbits(tmp_path / f"{name}.csv")
        np.testing.assert_allclose(tab.pos_au[0], want_p, atol=1e-12)
        assert tab.epoch_mjd_tdb[0] == 60000.0
    kep = O.read_openorb(tmp_path / "kep.csv")
    assert kep.h_mag[0] == 15.5 and kep.g_slope[0] == 0.15


def test_openorb_barycentric_flag(tmp_path: Path) -> None:
    text = "ObjID,FORMAT,x,y,z,xdot,ydot,zdot,epochMJD_TDB\nb1,BCART,1,2,0.5,0,0.01,0,60000\n"
    (tmp_path / "b.csv").write_text(text)
    tab = O.read_orbits(tmp_path / "b.csv")
    assert tab.barycentric[0]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("o,KEP,2.5,-0.1,10,80,30,45,60000", "eccentricity < 0"),
        ("o,KEP,2.5,1.5,10,80,30,45,60000", "hyperbolic orbit"),
        ("o,KEP,-2.5,0.5,10,80,30,45,60000", "negative semi-major axis"),
        ("o,KEP,2.5,0.5,190,80,30,45,60000", "inclination"),
        ("o,KEP,2.5,0.5,10,80,30,45,x", "epoch"),
        ("o,KEQ,2.5,0.5,10,80,30,45,60000", "unknown FORMAT"),
        ("o,KEP,2.5,0.5,10,80,30,45", "expected 9 fields"),
    ],
)
def test_openorb_bad_line(tmp_path: Path, row: str, message: str) -> None:
    good = "g,KEP,2.5,0.1,10,80,30,45,60000"
    text = "ObjID,FORMAT,a,e,inc,node,argPeri,ma,epochMJD_TDB\n" + good + "\n" + row + "\n"
    path = tmp_path / "o.csv"
    path.write_text(text)
    with pytest.raises(O.OrbitFormatError, match=rf"o.csv:3: .*{message}"):
        O.read_openorb(path)
    tab = O.read_openorb(path, skip_bad=True)
    assert len(tab) == 1 and tab.n_skipped == 1


def test_openorb_com_with_negative_q_rejected(tmp_path: Path) -> None:
    text = "ObjID,FORMAT,q,e,inc,node,argPeri,t_p_MJD_TDB,epochMJD_TDB\nc,COM,-1,0.5,1,2,3,60000,60000\n"
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(O.OrbitFormatError, match="q <= 0"):
        O.read_openorb(tmp_path / "c.csv")


def test_openorb_header_must_match_format(tmp_path: Path) -> None:
    text = "ObjID,FORMAT,q,e,inc,node,argPeri,t_p_MJD_TDB,epochMJD_TDB\nk,KEP,2.5,0.1,1,2,3,4,60000\n"
    (tmp_path / "h.csv").write_text(text)
    with pytest.raises(O.OrbitFormatError, match="FORMAT KEP needs"):
        O.read_openorb(tmp_path / "h.csv")


def test_openorb_rejects_non_openorb_header(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("name,a,e\nfoo,1,2\n")
    with pytest.raises(O.OrbitFormatError, match="not an OpenOrb/Sorcha header"):
        O.read_openorb(tmp_path / "x.csv")


def test_orbit_table_take_and_concatenate() -> None:
    t = generate_population(10, seed=1).to_orbit_table()
    both = O.OrbitTable.concatenate([t.take(np.arange(5)), t.take(np.arange(5, 10))])
    np.testing.assert_array_equal(both.pos_au, t.pos_au)
    assert list(both.to_frame().columns)[:3] == ["object_id", "name", "epoch_mjd_tdb"]


def test_real_mpcorb_lines_and_agreement_with_jpl_orbits() -> None:
    data = Path(__file__).resolve().parents[2] / "data" / "ephemeris"
    tab = O.read_orbits(data / "mpcorb_sample.dat")
    assert list(tab.object_id) == ["00001", "00433"]
    assert list(tab.name) == ["(1) Ceres", "(433) Eros"]
    np.testing.assert_array_equal(tab.epoch_mjd_tdb, [61200.0, 61200.0])  # 2026-06-09
    np.testing.assert_array_equal(tab.h_mag, [3.34, 10.39])
    el = O.cartesian_to_cometary(O.equatorial_to_ecliptic(tab.pos_au),
                                 O.equatorial_to_ecliptic(tab.vel_au_per_day), 61200.0)
    np.testing.assert_allclose(el["a_au"], [2.7655526, 1.4582437], rtol=1e-7)
    np.testing.assert_allclose(el["inc_deg"], [10.58803, 10.82855], atol=1e-6)
    # JPL's SBDB orbits at MJD 60200, integrated 1000 days by our N-body, land within the
    # rounding of MPCORB's elements (5 decimals of a degree ~ 70 km at Ceres).
    from ssassoc.core.ephemeris import nbody

    sbdb = pd.read_csv(data / "adam_core_sbdb_orbits_epoch60200.csv")
    sbdb = sbdb.set_index(sbdb["full_name"].str.strip())
    for i, key in enumerate(["1 Ceres (A801 AA)", "433 Eros (A898 PA)"]):
        r = sbdb.loc[key]
        pos, vel = O.cometary_to_cartesian(
            r["q"], r["e"], r["i"], r["om"], r["w"], r["tp"] - 2400000.5, r["epoch_mjd"]
        )
        jpl = O.OrbitTable.from_states(
            [key], [r["epoch_mjd"]], O.ecliptic_to_equatorial(pos), O.ecliptic_to_equatorial(vel)
        )
        prop, _ = nbody.propagate_states(jpl, [61200.0])
        assert np.linalg.norm(prop[0, 0] - tab.pos_au[i]) * 1.495978707e8 < 150.0  # km


def test_sorcha_whitespace_and_csv_layouts_agree() -> None:
    data = Path(__file__).resolve().parents[2] / "data" / "ephemeris"
    des = O.read_orbits(data / "sorcha_testorb.des")
    csv = O.read_orbits(data / "sorcha_orbit_com.csv")
    assert list(des.object_id) == ["S00000t", "S000015", "S000021", "S00002b", "S000044"]
    assert list(csv.object_id) == list(des.object_id)
    np.testing.assert_array_equal(des.epoch_mjd_tdb, 54466.0)
    np.testing.assert_allclose(des.pos_au, csv.pos_au, rtol=1e-11)
    np.testing.assert_allclose(des.vel_au_per_day, csv.vel_au_per_day, rtol=1e-11)
    # Perihelion distance and eccentricity survive the trip through the state vector.
    el = O.cartesian_to_cometary(O.equatorial_to_ecliptic(des.pos_au),
                                 O.equatorial_to_ecliptic(des.vel_au_per_day), 54466.0)
    np.testing.assert_allclose(el["q_au"][:2], [0.952105479028, 0.154159694141], rtol=1e-10)
    np.testing.assert_allclose(el["e"][:2], [0.504888475701, 0.938877338769], atol=1e-10)
    assert np.isnan(des.h_mag).all()
