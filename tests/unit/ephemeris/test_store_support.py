"""Shared helpers of the ephemeris store tests: synthetic orbits and small cached stores.

Stores here are built with the TWO-BODY test sampler (``build.two_body_sampler``): fast
and exactly reproducible, which is what tests of the store mechanics (fits, index,
queries, files) need. Accuracy against the real sky is the N-body tests' business.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ssassoc.core.ephemeris.build import BuildParameters, build_store, two_body_sampler
from ssassoc.core.ephemeris.observatory import observer_states
from ssassoc.core.ephemeris.orbits import (
    OrbitTable,
    ecliptic_to_equatorial,
    keplerian_to_cartesian,
    propagate_two_body,
)
from ssassoc.core.ephemeris.store import EphemerisStore

GM_SUN = 0.01720209895**2  # AU^3/day^2
START_MJD_TAI = 60800.75
END_MJD_TAI = 60801.75
OBSERVATORY = "X05"

_TMP = Path(tempfile.mkdtemp(prefix="ssassoc-store-tests-"))
atexit.register(shutil.rmtree, _TMP, True)
_CACHE: dict[tuple[int, int, float], Path] = {}


def synthetic_orbits(n: int, seed: int = 1, epoch_mjd_tdb: float = 60800.0) -> OrbitTable:
    """A mix that exercises the store: objects spread uniformly over the sky as seen from
    the observer (poles and RA 0/360 included), main-belt objects near the ecliptic and
    close fast NEOs (0.02-0.2 AU, up to several deg/day) that need short segments."""
    rng = np.random.default_rng(seed)
    n_sky = int(n * 0.6)
    n_mba = int(n * 0.3)
    n_neo = n - n_sky - n_mba
    obs_p, _ = observer_states(OBSERVATORY, np.array([epoch_mjd_tdb]))
    # uniform directions from the observer, 0.5-6 AU, near-circular heliocentric speeds
    u = rng.normal(size=(n_sky, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    p_sky = obs_p[0] + u * rng.uniform(0.5, 6.0, (n_sky, 1))
    r = np.linalg.norm(p_sky, axis=1, keepdims=True)
    t = np.cross(p_sky, rng.normal(size=(n_sky, 3)))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    v_sky = t * np.sqrt(GM_SUN / r) * rng.uniform(0.8, 1.15, (n_sky, 1))
    # main belt
    p_mb, v_mb = keplerian_to_cartesian(
        rng.uniform(2.1, 3.3, n_mba), rng.uniform(0.0, 0.25, n_mba), rng.rayleigh(8.0, n_mba),
        rng.uniform(0, 360, n_mba), rng.uniform(0, 360, n_mba), rng.uniform(0, 360, n_mba),
    )  # fmt: skip
    p_mb, v_mb = ecliptic_to_equatorial(p_mb), ecliptic_to_equatorial(v_mb)
    # close NEOs: near the Earth at epoch + a relative velocity of 5-20 km/s
    e = rng.normal(size=(n_neo, 3))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    p_neo = obs_p[0] + e * rng.uniform(0.02, 0.2, (n_neo, 1))
    r_neo = np.linalg.norm(p_neo, axis=1, keepdims=True)
    w = np.cross(p_neo, rng.normal(size=(n_neo, 3)))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    v_rel = rng.normal(size=(n_neo, 3))
    v_rel *= rng.uniform(5, 20, (n_neo, 1)) / 1731.46 / np.linalg.norm(v_rel, axis=1, keepdims=True)
    v_neo = w * np.sqrt(GM_SUN / r_neo) + v_rel
    pos = np.concatenate([p_sky, p_mb, p_neo])
    vel = np.concatenate([v_sky, v_mb, v_neo])
    ids = [f"T{i:07d}" for i in range(n)]
    h = rng.uniform(8.0, 24.0, n)
    h[::17] = np.nan  # some objects have no H
    return OrbitTable.from_states(ids, epoch_mjd_tdb, pos, vel, h_mag=h, g_slope=np.full(n, 0.15))


def cached_store(n: int = 3000, seed: int = 1, span_days: float = 1.0) -> Path:
    """A two-body store of ``synthetic_orbits(n, seed)`` over ``span_days`` (built once per session)."""
    key = (n, seed, span_days)
    if key not in _CACHE:
        out = _TMP / f"store-{n}-{seed}-{span_days}"
        build_store(
            synthetic_orbits(n, seed),
            OBSERVATORY,
            START_MJD_TAI,
            START_MJD_TAI + span_days,
            out,
            sampler=two_body_sampler(OBSERVATORY),
            parameters=BuildParameters(chunk_objects=1000),
        )
        _CACHE[key] = out
    return _CACHE[key]


def truth_positions(orbits: OrbitTable, mjd_tai: float) -> np.ndarray:
    """Light-time-corrected heliocentric positions (AU) straight from the test sampler, (n, 3)."""
    return two_body_sampler(OBSERVATORY)(orbits, np.array([mjd_tai]))[:, 0, :]


def open_store(n: int = 3000, seed: int = 1) -> EphemerisStore:
    return EphemerisStore.open(cached_store(n, seed))


def test_two_body_sampler_light_time() -> None:
    """The test sampler itself: a position at emission time, t - |r - obs| / c."""
    orb = synthetic_orbits(20, seed=5)
    t = START_MJD_TAI + 0.3
    pos = truth_positions(orb, t)
    obs, _ = observer_states(OBSERVATORY, np.array([t]))
    rho = np.linalg.norm(pos - obs[0], axis=1)
    from ssassoc.core.ephemeris.timescales import mjd_tai_to_tdb

    dt = mjd_tai_to_tdb(np.array([t]))[0] - orb.epoch_mjd_tdb - rho / 173.1446326742403
    direct, _ = propagate_two_body(orb.pos_au, orb.vel_au_per_day, dt)
    np.testing.assert_allclose(direct, pos, atol=1e-12)
