"""Time scales, DE421 bodies, observatory positions and H-G magnitudes (known answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssassoc.core.ephemeris import magnitudes, observatory, planets, timescales
from ssassoc.core.ephemeris.planets import AU_KM, DAY_S

DATA = Path(__file__).resolve().parents[2] / "data" / "ephemeris"


# -- time scales ---------------------------------------------------------------------------


def test_tai_utc_is_37_seconds_since_2017() -> None:
    utc = np.array([58000.0, 60000.5, 60800.25])
    tai = timescales.mjd_utc_to_tai(utc)
    np.testing.assert_allclose((tai - utc) * 86400.0, 37.0, atol=1e-6)


def test_tai_utc_before_the_2017_leap_second() -> None:
    assert (timescales.mjd_utc_to_tai(57700.0) - 57700.0) * 86400.0 == pytest.approx(36.0, abs=1e-6)


def test_tt_minus_tai_is_exact_and_tdb_close_to_tt() -> None:
    tai = np.linspace(50000.0, 62000.0, 50)
    tt = timescales.mjd_tai_to_tt(tai)
    np.testing.assert_allclose((tt - tai) * 86400.0, 32.184, atol=1e-6)
    tdb = timescales.mjd_tai_to_tdb(tai)
    assert np.max(np.abs((tdb - tt) * 86400.0)) < 0.002


@given(st.floats(45000.0, 61000.0))  # within the leap-second table (no ERFA warnings)
def test_time_roundtrips(mjd: float) -> None:
    assert timescales.mjd_tdb_to_tai(timescales.mjd_tai_to_tdb(mjd)) == pytest.approx(mjd, abs=1e-9)
    assert timescales.mjd_tai_to_utc(timescales.mjd_utc_to_tai(mjd)) == pytest.approx(mjd, abs=1e-9)
    assert timescales.mjd_tdb_to_utc(timescales.mjd_utc_to_tdb(mjd)) == pytest.approx(mjd, abs=1e-9)


def test_no_iers_download() -> None:
    from astropy.utils import iers

    assert iers.conf.auto_download is False


# -- DE421 -------------------------------------------------------------------------------


def test_earth_sun_distance_and_moon_distance() -> None:
    t = np.linspace(60000.0, 60365.0, 200)
    earth, _ = planets.body_state("earth", t)
    sun, _ = planets.body_state("sun", t)
    moon, _ = planets.body_state("moon", t)
    r = np.linalg.norm(earth - sun, axis=1)
    assert 0.9832 < r.min() < 0.9834 and 1.0166 < r.max() < 1.0168  # perihelion/aphelion
    d_km = np.linalg.norm(moon - earth, axis=1) * AU_KM
    assert d_km.min() > 356_000 and d_km.max() < 407_000
    assert np.linalg.norm(sun, axis=1).max() < 0.011  # the Sun stays near the barycentre


def test_velocity_is_derivative_of_position() -> None:
    t, h = 60123.4, 1e-3
    for body in planets.BODIES:
        p1, _ = planets.body_state(body, t - h)
        p2, _ = planets.body_state(body, t + h)
        _, v = planets.body_state(body, t)
        np.testing.assert_allclose((p2 - p1) / (2 * h), v, rtol=1e-6, atol=1e-10)


def test_masses() -> None:
    assert pytest.approx(0.01720209895**2, rel=1e-10) == planets.GM_SUN_AU3_PER_DAY2
    ratio = planets.GM_AU3_PER_DAY2["sun"] / planets.GM_AU3_PER_DAY2["jupiter"]
    assert ratio == pytest.approx(1047.3486, rel=1e-6)
    earth_moon = planets.GM_AU3_PER_DAY2["earth"] / planets.GM_AU3_PER_DAY2["moon"]
    assert earth_moon == pytest.approx(81.30057, rel=1e-6)
    assert planets.perturber_states([60000.0, 60001.0])[0].shape == (len(planets.BODIES), 2, 3)


def test_outside_de421_is_an_error() -> None:
    with pytest.raises(planets.EphemerisRangeError, match="outside DE421"):
        planets.body_state("earth", 90000.0)
    with pytest.raises(KeyError, match="unknown body"):
        planets.body_state("vulcan", 60000.0)


# -- observatories -----------------------------------------------------------------------


def test_rubin_site_geocentric_distance_and_speed() -> None:
    t = np.linspace(60800.0, 60801.0, 25)
    pos, vel = observatory.observer_geocentric_states("X05", t)
    obs = observatory.get_observatory("X05")
    rho_km = np.hypot(obs.rho_cos_phi, obs.rho_sin_phi) * observatory.EARTH_RADIUS_KM
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1) * AU_KM, rho_km, rtol=1e-6)
    speed = np.linalg.norm(vel, axis=1) * AU_KM / DAY_S
    # Rotation speed at the site: omega * rho cos(phi'), ~0.40 km/s at latitude -30 deg.
    np.testing.assert_allclose(speed, 7.2921150e-5 * obs.rho_cos_phi * 6378.1366, rtol=2e-3)
    # Southern site: z negative and nearly fixed; it wobbles by ~30 km over a day because
    # precession since J2000 has tilted the Earth's pole ~0.3 deg from the GCRS z axis.
    assert np.all(pos[:, 2] < 0)
    assert 5.0 < np.ptp(pos[:, 2]) * AU_KM < 60.0


def test_geocentre_and_heliocentric_observer() -> None:
    t = np.array([60000.0, 60100.0])
    p, v = observatory.observer_states("500", t)
    tdb = timescales.mjd_tai_to_tdb(t)
    e, ev = planets.body_state("earth", tdb)
    s, sv = planets.body_state("sun", tdb)
    np.testing.assert_allclose(p, e - s, atol=1e-15)
    np.testing.assert_allclose(v, ev - sv, atol=1e-15)
    pb, _ = observatory.observer_states("X05", t, origin="ssb")
    assert np.all(np.linalg.norm(pb - e, axis=1) * AU_KM < 6400)


def test_unknown_and_space_observatories() -> None:
    with pytest.raises(observatory.UnknownObservatoryError, match="ObsCodes"):
        observatory.get_observatory("ZZZ")
    with pytest.raises(observatory.UnknownObservatoryError, match="no fixed position"):
        observatory.get_observatory("C51")
    with pytest.raises(ValueError, match="origin"):
        observatory.observer_states("500", [60000.0], origin="moon")


# -- magnitudes --------------------------------------------------------------------------


def test_hg_zero_phase_and_distance_terms() -> None:
    v = magnitudes.v_magnitude(10.0, 0.15, 2.0, 1.0, 0.0)
    assert v == pytest.approx(10.0 + 5 * np.log10(2.0))
    assert magnitudes.hg_phase_function(0.0, 0.15) == pytest.approx(1.0)
    assert np.isnan(magnitudes.v_magnitude(np.nan, 0.15, 2.0, 1.0, 10.0))
    # A missing G means 0.15.
    assert magnitudes.v_magnitude(10.0, np.nan, 2.0, 1.0, 20.0) == pytest.approx(
        magnitudes.v_magnitude(10.0, 0.15, 2.0, 1.0, 20.0)
    )


@given(st.floats(0.0, 150.0), st.floats(0.0, 150.0), st.floats(-0.2, 0.8))
def test_phase_function_decreases_with_phase(a1: float, a2: float, g: float) -> None:
    lo, hi = sorted((a1, a2))
    assert magnitudes.hg_phase_function(hi, g) <= magnitudes.hg_phase_function(lo, g) + 1e-15


def test_v_magnitudes_match_horizons() -> None:
    eph = pd.read_csv(DATA / "adam_core_horizons_ephemeris.csv")
    eph = eph[eph["H"].notna() & eph["V"].notna() & (eph["alpha"] < 120)]
    v = magnitudes.v_magnitude(eph["H"], eph["G"], eph["r"], eph["delta"], eph["alpha"])
    # Horizons rounds V to 0.001 mag and alpha to 1e-4 deg.
    np.testing.assert_allclose(v, eph["V"], atol=0.003)


def test_phase_angle_geometry() -> None:
    # Sun at origin, object at (1, 0, 0), observer at (1, 1, 0): phase angle 90 deg.
    assert magnitudes.phase_angle_deg([1.0, 0.0, 0.0], [0.0, -1.0, 0.0]) == pytest.approx(90.0)
    assert magnitudes.phase_angle_deg([2.0, 0.0, 0.0], [1.0, 0.0, 0.0]) == pytest.approx(0.0)
