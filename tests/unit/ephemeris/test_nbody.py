"""N-body propagation: consistency properties (accuracy vs Horizons is tested separately)."""

from __future__ import annotations

import numpy as np
import pytest

from ssassoc.core.ephemeris import nbody, planets, timescales
from ssassoc.core.ephemeris.orbits import OrbitTable, propagate_two_body
from ssassoc.core.ephemeris.population import generate_population

AU_KM = planets.AU_KM


@pytest.fixture(scope="module")
def sample() -> OrbitTable:
    # 40 objects of all classes (NEOs go to IAS15, the rest to WHFast).
    return generate_population(40, seed=11, epoch_mjd_tdb=60800.0).to_orbit_table()


def test_state_at_epoch_is_the_orbit(sample: OrbitTable) -> None:
    pos, vel = nbody.propagate_states(sample, [60800.0])
    np.testing.assert_allclose(pos[:, 0], sample.pos_au, atol=1e-14)
    np.testing.assert_allclose(vel[:, 0], sample.vel_au_per_day, atol=1e-16)


def test_close_to_two_body_over_a_day(sample: OrbitTable) -> None:
    t = np.array([60800.5, 60801.0])
    pos, _ = nbody.propagate_states(sample, t)
    kp, _ = propagate_two_body(sample.pos_au[:, None], sample.vel_au_per_day[:, None],
                               (t - 60800.0)[None, :])
    # Planetary perturbations move objects by at most a few hundred km in a day.
    assert np.max(np.linalg.norm(pos - kp, axis=-1)) * AU_KM < 2000.0
    assert np.max(np.linalg.norm(pos - kp, axis=-1)) > 0


def test_forward_and_backward_and_mixed_epochs(sample: OrbitTable) -> None:
    # Epochs on both sides of the requested times, and requested times on both sides of
    # the epochs; each object must match its own single-object propagation.
    sub = sample.take(np.arange(6))
    shifted = OrbitTable.from_states(
        sub.object_id, sub.epoch_mjd_tdb + np.array([0, 30, -30, 60, 0, -60.0]),
        sub.pos_au, sub.vel_au_per_day,
    )
    times = np.array([60770.0, 60800.0, 60815.0, 60900.0])
    together, _ = nbody.propagate_states(shifted, times)
    for i in range(len(shifted)):
        alone, _ = nbody.propagate_states(shifted.take([i]), times)
        np.testing.assert_allclose(together[i], alone[0], atol=1e-10)
    # Propagate out and back: recovers the initial state.
    out_p, out_v = nbody.propagate_states(sub, [60900.0])
    back = OrbitTable.from_states(sub.object_id, 60900.0, out_p[:, 0], out_v[:, 0])
    ret, _ = nbody.propagate_states(back, [60800.0])
    np.testing.assert_allclose(ret[:, 0], sub.pos_au, atol=2e-9)


def test_dense_output_interpolation_matches_direct_integration(sample: OrbitTable) -> None:
    times = 61165.0 + np.linspace(0.0, 1.0, 49)
    dense, dense_v = nbody.propagate_states(sample, times)
    direct, direct_v = nbody.propagate_states(
        sample, times, config=nbody.PropagationConfig(node_step_days=0.0)
    )
    assert np.max(np.linalg.norm(dense - direct, axis=-1)) * AU_KM < 0.01  # 10 m
    assert np.max(np.linalg.norm(dense_v - direct_v, axis=-1)) * AU_KM < 0.01


def test_mixed_scheme_matches_ias15_everywhere(sample: OrbitTable) -> None:
    t = [61165.0]
    mixed, _ = nbody.propagate_states(sample, t)
    ias, _ = nbody.propagate_states(sample, t, config=nbody.PropagationConfig(mixed=False))
    assert np.max(np.linalg.norm(mixed - ias, axis=-1)) * AU_KM < 5.0  # km after a year


def test_workers_and_origin(sample: OrbitTable) -> None:
    t = np.array([60810.0, 60811.0])
    one, _ = nbody.propagate_states(sample, t)
    two, _ = nbody.propagate_states(sample, t, workers=2)
    np.testing.assert_allclose(one, two, atol=1e-13)
    bary, _ = nbody.propagate_states(sample, t, origin="ssb")
    sun, _ = planets.body_state("sun", t)
    np.testing.assert_allclose(bary - sun[None], one, atol=1e-14)
    with pytest.raises(ValueError, match="origin"):
        nbody.propagate_states(sample, t, origin="earth")


def test_barycentric_orbits_are_accepted(sample: OrbitTable) -> None:
    sun_p, sun_v = planets.body_state("sun", sample.epoch_mjd_tdb)
    bary = OrbitTable.from_states(sample.object_id, sample.epoch_mjd_tdb,
                                  sample.pos_au + sun_p, sample.vel_au_per_day + sun_v,
                                  barycentric=True)
    a, _ = nbody.propagate_states(sample, [60830.0])
    b, _ = nbody.propagate_states(bary, [60830.0])
    np.testing.assert_allclose(a, b, atol=1e-13)


def test_observe_light_time_rates_and_geometry(sample: OrbitTable) -> None:
    tai = 60900.0 + np.array([0.0, 1e-3])
    obs = nbody.observe(sample, tai, "X05")
    np.testing.assert_allclose(obs.light_time_days,
                               obs.topo_range_au / planets.C_AU_PER_DAY, rtol=1e-12)
    # Rates agree with finite differences of the positions (1.44 min apart).
    dt = np.diff(obs.mjd_tai)[0]
    dra = ((obs.ra_deg[:, 1] - obs.ra_deg[:, 0] + 180) % 360 - 180) / dt
    dra *= np.cos(np.radians(obs.dec_deg[:, 0]))
    ddec = (obs.dec_deg[:, 1] - obs.dec_deg[:, 0]) / dt
    np.testing.assert_allclose(obs.ra_rate_deg_per_day[:, 0], dra, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(obs.dec_rate_deg_per_day[:, 0], ddec, rtol=2e-3, atol=1e-5)
    # topo = helio(emission) + Sun(emission) - observer: differs from the difference of
    # heliocentric vectors only by the Sun's barycentric motion during the light time
    # (~1e-6 AU/day x up to 0.2 day).
    approx_topo = obs.helio_pos_au - obs.obs_helio_pos_au[None]
    assert np.max(np.linalg.norm(obs.topo_pos_au - approx_topo, axis=-1)) < 1e-6
    assert np.all((obs.elongation_deg >= 0) & (obs.elongation_deg <= 180))
    assert np.all(np.isfinite(obs.v_mag))
    np.testing.assert_allclose(np.linalg.norm(obs.helio_pos_au, axis=-1), obs.helio_range_au)
    assert obs.mjd_tdb == pytest.approx(timescales.mjd_tai_to_tdb(tai))


def test_empty_inputs() -> None:
    empty = generate_population(3, seed=1).to_orbit_table().take(np.arange(0))
    p, v = nbody.propagate_states(empty, [60000.0, 60001.0])
    assert p.shape == (0, 2, 3) and v.shape == (0, 2, 3)


def test_epoch_grid_shift_is_accurate(sample: OrbitTable) -> None:
    # Orbits at arbitrary (fractional) epochs are moved to a 0.25-day grid before the
    # integration; the result must agree with exact epochs to well under a km.
    rng = np.random.default_rng(0)
    epochs = 60800.0 + rng.uniform(-0.5, 0.5, len(sample))
    exact = nbody.PropagationConfig(epoch_tolerance_days=0.0)
    p, v = nbody.propagate_states(sample, epochs, config=exact)
    i = np.arange(len(sample))
    moved = OrbitTable.from_states(sample.object_id, epochs, p[i, i], v[i, i])
    a, _ = nbody.propagate_states(moved, [61000.0], config=exact)
    b, _ = nbody.propagate_states(moved, [61000.0])
    assert nbody.DEFAULT_CONFIG.epoch_tolerance_days == 0.25
    assert np.max(np.linalg.norm(a - b, axis=-1)) * AU_KM < 1.0


def test_dense_output_through_close_earth_approaches() -> None:
    # Objects passing 0.001-0.05 AU from the Earth at ~10 km/s: the interpolated dense
    # output must match direct integration to a few mas as seen from the geocentre.
    t0 = 61000.0
    e, ev = planets.body_state("earth", t0)
    s, sv = planets.body_state("sun", t0)
    dists = np.array([0.001, 0.002, 0.005, 0.01, 0.05])
    pos = (e - s)[None] + np.outer(dists, [0.0, 0.0, 1.0])
    vel = np.broadcast_to(ev - sv + np.array([0.006, 0.0, 0.0]), pos.shape)
    orbits = OrbitTable.from_states([f"d{d}" for d in dists], t0, pos, vel)
    times = t0 - 1.5 + np.linspace(0.0, 3.0, 3 * 144 + 1)  # every 10 minutes
    dense, _ = nbody.propagate_states(orbits, times)
    direct, _ = nbody.propagate_states(
        orbits, times, config=nbody.PropagationConfig(node_step_days=0.0)
    )
    earth, _ = planets.body_state("earth", times)
    sun, _ = planets.body_state("sun", times)
    geo = np.linalg.norm(direct - (earth - sun)[None], axis=-1)
    assert geo.min() < 0.0011
    err_arcsec = np.linalg.norm(dense - direct, axis=-1) / geo * 206264.8
    assert err_arcsec.max() < 0.005


def test_non_finite_orbit_is_isolated(sample: OrbitTable) -> None:
    sub = sample.take(np.arange(4))
    pos = sub.pos_au.copy()
    pos[1] = np.nan
    bad = OrbitTable.from_states(sub.object_id, sub.epoch_mjd_tdb, pos, sub.vel_au_per_day)
    got, _ = nbody.propagate_states(bad, [60810.0, 60811.0])
    want, _ = nbody.propagate_states(sub, [60810.0, 60811.0])
    assert np.isnan(got[1]).all()
    np.testing.assert_allclose(got[[0, 2, 3]], want[[0, 2, 3]], atol=1e-13)


def test_light_time_step_matches_exact_kepler() -> None:
    # The light-time step back uses a Taylor series (exact Kepler close to the Sun): it must
    # agree with the universal-variable solution to well under a metre.
    orbits = generate_population(3000, seed=4).to_orbit_table()
    t = np.array([60800.0, 60800.3])
    obs = np.array([[0.5, 0.8, 0.1], [-0.9, 0.3, 0.1]])
    p0 = np.repeat(orbits.pos_au[:, None], 2, axis=1)
    v0 = np.repeat(orbits.vel_au_per_day[:, None], 2, axis=1)
    p, v, tau = nbody.light_time_correct(p0, v0, obs, t)
    pk, vk = propagate_two_body(p0, v0, -tau)
    assert np.max(np.linalg.norm(p - pk, axis=-1)) * AU_KM < 1e-3
    assert np.max(np.linalg.norm(v - vk, axis=-1)) * AU_KM < 1e-3
    # and tau is the light travel time to the emission point
    sun, sun_v = planets.body_state("sun", t)
    rho = p + (sun - tau[..., None] * sun_v) - obs[None]
    np.testing.assert_allclose(tau, np.linalg.norm(rho, axis=-1) / planets.C_AU_PER_DAY, rtol=1e-9)


def test_observe_with_workers_matches_one_process(sample: OrbitTable) -> None:
    t = np.array([60850.0, 60850.5, 60851.0])
    one = nbody.observe(sample, t, "W84")
    two = nbody.observe(sample, t, "W84", workers=2)
    np.testing.assert_allclose(two.ra_deg, one.ra_deg, atol=1e-12)
    np.testing.assert_allclose(two.topo_pos_au, one.topo_pos_au, atol=1e-14)
    np.testing.assert_array_equal(two.object_id, one.object_id)
    np.testing.assert_allclose(two.obs_helio_pos_au, one.obs_helio_pos_au)
    np.testing.assert_allclose(two.v_mag, one.v_mag)


def test_geometry_known_answer_rubin_2003_yf26() -> None:
    # Rubin's association test vector, stated as verified against JPL Horizons (science.md):
    # heliocentric and topocentric states of 2003 YF26 (AU, km/s) and the expected values.
    helio = np.array([-2.03972984386492, -0.754159365265218, -0.09916618480505775])
    helio_v = np.array([6.451686836410149, -17.36829941588102, -9.013339853647382])
    topo = np.array([-1.2867480491014316, -0.1395377271885233, 0.16727378829681566])
    topo_v = np.array([-13.061265792221151, 3.5105145303033005, -0.11752881599981002])
    km_s = AU_KM / 86400.0  # km/s per AU/day
    ra, dec, ra_rate, dec_rate = nbody.sky_position_and_rates(topo, topo_v / km_s)
    assert ra == pytest.approx(186.18909260549128, abs=1e-9)
    assert dec == pytest.approx(7.364065668224215, abs=1e-9)
    # Rubin's expected rates come from its ephemeris service, not from these vectors; they
    # agree with the vectors' angular velocity to 3e-4 (1.5e-5 deg/day).
    assert ra_rate == pytest.approx(-0.1242177608944433, rel=3e-4)
    assert dec_rate == pytest.approx(-0.0439180553471223, rel=3e-4)
    from ssassoc.core.ephemeris.magnitudes import phase_angle_deg

    assert phase_angle_deg(helio, topo) == pytest.approx(17.248719450313473, abs=1e-9)
    assert nbody.elongation_deg(helio - topo, topo) == pytest.approx(140.17164534286258, abs=1e-9)
    assert np.linalg.norm(helio) == pytest.approx(2.1769446746252505, abs=1e-12)
    assert np.linalg.norm(topo) == pytest.approx(1.3050562591039694, abs=1e-12)
    assert topo @ topo_v / np.linalg.norm(topo) == pytest.approx(12.487622241678675, rel=1e-9)
    assert helio @ helio_v / np.linalg.norm(helio) == pytest.approx(0.3824562080346701, rel=1e-9)
