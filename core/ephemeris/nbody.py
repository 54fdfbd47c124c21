"""N-body propagation of orbits with REBOUND, and observer-centred (astrometric) ephemerides.

Model: the objects are massless test particles under the Sun, Mercury, Venus, Earth, Moon,
the Mars, Jupiter, Saturn, Uranus, Neptune and Pluto system barycentres (masses and initial
states from DE421, :mod:`.planets`), in ICRS, AU and days, with G = 1 and masses as GM.
The massive bodies are integrated together with the particles from their DE421 states at
the start; over the spans of interest (years) they stay close to DE421, far below what
matters for asteroid astrometry. The Sun's post-Newtonian (1PN, Schwarzschild) correction
is added with REBOUNDx's ``gr`` force when REBOUNDx is installed (``PropagationConfig.gr``);
without it inner-solar-system objects drift by ~0.1 arcsec per few years.

Two models, chosen per object from its osculating orbit (``PropagationConfig``):

- near (perihelion < 1.3 AU, unbound, or planet-crossing Centaur-like orbits): REBOUND
  IAS15 (adaptive, 15th order) with the Earth and Moon separate, in batches of 256 objects
  ordered by perihelion distance so that a sun-grazer or a close encounter only slows its
  own batch;
- far (everything else, ~96 % of a catalogue): REBOUND WHFast in democratic-heliocentric
  (WHDS) coordinates, 1-day step, Earth-Moon barycentre; ~20x cheaper per particle-day and
  within ~0.1 km per 100 days of IAS15 for main-belt orbits.

Heliocentric outputs are taken relative to the integrated Sun (so the slow drift of the
simulated system against DE421 cancels); barycentric ones add DE421's Sun.

Speed: all objects of a model share a simulation; objects are added at their own epoch
while the simulation runs past it (one forward run for requested times after each epoch,
one backward run for times before); epochs off a 0.25-day grid are first moved onto it
(two-body plus the planets' perturbation, < 1 km). Dense output times are not integrated
to one by one: the integrator stops only at "nodes" at most ``node_step_days`` apart, and
in between the state is the two-body (Kepler) motion from the previous node plus a cubic
Hermite interpolation of the small deviation from it (matched in position and velocity at
both nodes); objects passing close to the Earth or Moon get finer nodes. ``workers > 1``
splits objects over processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import rebound

from . import timescales
from .magnitudes import phase_angle_deg, v_magnitude
from .observatory import observer_states
from .orbits import OrbitTable, propagate_two_body
from .planets import (
    BODIES,
    C_AU_PER_DAY,
    GM_AU3_PER_DAY2,
    GM_SUN_AU3_PER_DAY2,
    body_state,
)

try:  # optional: REBOUNDx provides the solar GR term
    import reboundx

    HAVE_REBOUNDX: Final = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_REBOUNDX = False  # type: ignore[misc]

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "ObservedStates",
    "PropagationConfig",
    "elongation_deg",
    "light_time_correct",
    "observables_from_states",
    "observe",
    "propagate_states",
    "sky_position_and_rates",
]


@dataclass(frozen=True)
class PropagationConfig:
    """Integrator settings.

    Attributes:
        gr: add the Sun's 1PN (general relativity) force via REBOUNDx ``gr`` (ignored
            with a warning-free fallback to Newtonian if REBOUNDx is missing).
        ias15_epsilon: IAS15 accuracy parameter (REBOUND default 1e-9).
        node_step_days: largest gap between integrator stops for dense output; requested
            times in between are interpolated (Kepler + Hermite deviation). 0 disables
            interpolation (every requested time is integrated to).
        epoch_tolerance_days: orbit epochs that are not multiples of this (e.g. Sorcha files
            with arbitrary epochs) are first moved to the nearest multiple by two-body motion
            plus the planets' perturbation (error ~30 m for a close NEO, far less for the
            rest), so the simulation stops at most once per grid step instead of once per
            distinct epoch. MPCORB epochs (whole days) are not moved. 0 keeps every epoch.
        near_q_au: objects with perihelion below this (NEOs), unbound or planet-crossing
            Centaur-like orbits (e > 0.3 beyond 4.5 AU) go to the "near" model: IAS15 with
            the Earth and Moon separate. All others go to the "far" model: WHFast in
            democratic-heliocentric (WHDS) coordinates with the Earth-Moon barycentre, which
            is ~20x faster and agrees with IAS15 to ~0.1 km per 100 days for main-belt
            orbits.
        whfast_step_days: WHFast time step of the far model.
        mixed: False puts every object in the near (IAS15) model.
        near_batch: objects per IAS15 simulation (ordered by perihelion distance), so the
            small steps a sun-grazer or a close encounter needs slow down few others.
    """

    gr: bool = True
    ias15_epsilon: float = 1e-9
    node_step_days: float = 0.5
    epoch_tolerance_days: float = 0.25
    near_q_au: float = 1.3
    whfast_step_days: float = 1.0
    mixed: bool = True
    near_batch: int = 256


DEFAULT_CONFIG: Final = PropagationConfig()


# --------------------------------------------------------------------------------------
# The integrator core (one process)


NEAR_BODIES: Final = BODIES
FAR_BODIES: Final = tuple(b for b in BODIES if b != "moon")  # "earth" -> Earth-Moon barycentre


def _new_simulation(t0_mjd_tdb: float, config: PropagationConfig, model: str) -> tuple[rebound.Simulation, object, int]:
    """A simulation at ``t0`` with the DE421 bodies of ``model`` ('near' or 'far'), an
    object to keep alive with it (REBOUNDx extras) and the number of massive bodies."""
    sim = rebound.Simulation()
    sim.G = 1.0
    sim.t = t0_mjd_tdb
    far = model == "far"
    bodies = FAR_BODIES if far else NEAR_BODIES
    for body in bodies:
        if far and body == "earth":
            p, v = body_state("emb", t0_mjd_tdb)
            gm = GM_AU3_PER_DAY2["earth"] + GM_AU3_PER_DAY2["moon"]
        else:
            p, v = body_state(body, t0_mjd_tdb)
            gm = GM_AU3_PER_DAY2[body]
        sim.add(m=gm, x=p[0], y=p[1], z=p[2], vx=v[0], vy=v[1], vz=v[2])
    sim.N_active = len(bodies)
    sim.testparticle_type = 0
    if far:
        sim.integrator = "whfast"
        sim.integrator.coordinates = "whds"
        sim.dt = config.whfast_step_days
    else:
        sim.integrator = "ias15"
        sim.integrator.epsilon = config.ias15_epsilon
    keep: object = None
    if config.gr and HAVE_REBOUNDX:
        with warnings.catch_warnings():
            # REBOUNDx warns that a velocity-dependent force in WHFast accumulates errors
            # proportional to the force; the 1PN term is ~1e-8 of gravity, so they are tiny.
            warnings.simplefilter("ignore", RuntimeWarning)
            extras = reboundx.Extras(sim)
            gr = extras.load_force("gr")
            extras.add_force(gr)
        gr.params["c"] = C_AU_PER_DAY
        keep = (extras, gr)
    return sim, keep, len(bodies)


def _integrate(sim: rebound.Simulation, t: float, config: PropagationConfig, far: bool) -> None:
    if far:
        # WHFast shortens the last step to land exactly on t; restore the fixed step.
        sim.dt = config.whfast_step_days if t >= sim.t else -config.whfast_step_days
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sim.integrate(t, exact_finish_time=1)


def _perihelion_au(helio_pos: FloatArray, helio_vel: FloatArray) -> FloatArray:
    h = np.linalg.norm(np.cross(helio_pos, helio_vel), axis=1)
    p = h * h / GM_SUN_AU3_PER_DAY2
    r = np.linalg.norm(helio_pos, axis=1)
    inv_a = 2.0 / r - np.sum(helio_vel * helio_vel, axis=1) / GM_SUN_AU3_PER_DAY2
    e = np.sqrt(np.maximum(0.0, 1.0 - p * inv_a))
    return np.asarray(p / (1.0 + e), dtype=np.float64)


def _is_near(helio_pos: FloatArray, helio_vel: FloatArray, config: PropagationConfig) -> npt.NDArray[np.bool_]:
    """Objects that need the IAS15 model: close approaches to the Earth/Moon or planets."""
    if not config.mixed:
        return np.ones(helio_pos.shape[0], dtype=bool)
    r = np.linalg.norm(helio_pos, axis=1)
    inv_a = 2.0 / r - np.sum(helio_vel * helio_vel, axis=1) / GM_SUN_AU3_PER_DAY2
    h = np.linalg.norm(np.cross(helio_pos, helio_vel), axis=1)
    e = np.sqrt(np.maximum(0.0, 1.0 - h * h / GM_SUN_AU3_PER_DAY2 * inv_a))
    q = _perihelion_au(helio_pos, helio_vel)
    with np.errstate(divide="ignore"):
        a = np.where(inv_a > 0, 1.0 / inv_a, np.inf)
    return np.asarray((q < config.near_q_au) | (inv_a <= 0) | ((a > 4.5) & (e > 0.3)))


def _serialize(sim: rebound.Simulation) -> tuple[FloatArray, FloatArray]:
    n = sim.N
    xyz = np.empty((n, 3), dtype=np.float64)
    vxyz = np.empty((n, 3), dtype=np.float64)
    sim.serialize_particle_data(xyz=xyz, vxvyvz=vxyz)
    return xyz, vxyz


def _add_particles(sim: rebound.Simulation, helio_pos: FloatArray, helio_vel: FloatArray) -> None:
    """Append test particles given heliocentric states at the simulation's current time."""
    n_new = helio_pos.shape[0]
    if n_new == 0:
        return
    xyz, vxyz = _serialize(sim)
    sun_p, sun_v = xyz[0], vxyz[0]
    for _ in range(n_new):
        sim.add(m=0.0, x=1.0)
    xyz2, vxyz2 = _serialize(sim)
    xyz2[-n_new:] = helio_pos + sun_p
    vxyz2[-n_new:] = helio_vel + sun_v
    sim.set_serialized_particle_data(xyz=xyz2, vxvyvz=vxyz2)


def _run_direction(
    helio_pos: FloatArray,
    helio_vel: FloatArray,
    epochs: FloatArray,
    out_times: FloatArray,
    direction: float,
    config: PropagationConfig,
    model: str,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Integrate all particles from their epochs in one direction; record heliocentric
    states at each of ``out_times`` for particles whose epoch is not beyond it."""
    n, n_t = helio_pos.shape[0], out_times.size
    out_p = np.full((n, n_t, 3), np.nan)
    out_v = np.full((n, n_t, 3), np.nan)
    valid = np.zeros((n, n_t), dtype=bool)
    if n == 0 or n_t == 0:
        return out_p, out_v, valid
    order = np.argsort(direction * epochs, kind="stable")
    t_order = np.argsort(direction * out_times, kind="stable")
    sim, _keep, n_bodies = _new_simulation(float(epochs[order[0]]), config, model)
    far = model == "far"
    added = 0  # particles order[:added] are in the simulation, in that order
    for ti in t_order:
        t_out = float(out_times[ti])
        while added < n and direction * (epochs[order[added]] - t_out) <= 0:
            t_ep = float(epochs[order[added]])
            stop = added
            while stop < n and epochs[order[stop]] == t_ep:
                stop += 1
            _integrate(sim, t_ep, config, far)
            idx = order[added:stop]
            _add_particles(sim, helio_pos[idx], helio_vel[idx])
            added = stop
        if added == 0:
            continue
        _integrate(sim, t_out, config, far)
        xyz, vxyz = _serialize(sim)
        idx = order[:added]
        out_p[idx, ti] = xyz[n_bodies:] - xyz[0]
        out_v[idx, ti] = vxyz[n_bodies:] - vxyz[0]
        valid[idx, ti] = True
    return out_p, out_v, valid


def _perturbing_acceleration(helio_pos: FloatArray, mjd_tdb: FloatArray) -> FloatArray:
    """Heliocentric perturbing acceleration (AU/day^2) of the planets, Moon and Pluto on
    objects at ``helio_pos[n, 3]`` at times ``mjd_tdb[n]``: direct minus indirect term."""
    sun_p, _ = body_state("sun", mjd_tdb)
    acc = np.zeros_like(helio_pos)
    for body in BODIES[1:]:
        bp, _ = body_state(body, mjd_tdb)
        rb = bp - sun_p
        d = rb - helio_pos
        gm = GM_AU3_PER_DAY2[body]
        acc += gm * (d / np.linalg.norm(d, axis=1, keepdims=True) ** 3
                     - rb / np.linalg.norm(rb, axis=1, keepdims=True) ** 3)
    return acc


def _group_epochs(
    helio_pos: FloatArray, helio_vel: FloatArray, epochs: FloatArray, tolerance_days: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Move epochs to the nearest multiple of ``tolerance_days`` so that the simulation
    stops once per grid time instead of once per distinct epoch.

    The shift (at most half the grid step) is two-body motion plus the planets' perturbing
    acceleration held constant (Encke to second order): the error is about
    jerk * dt^3 / 6, ~30 m for an NEO 0.05 AU from the Earth with dt = 0.125 day.
    """
    if tolerance_days <= 0 or epochs.size == 0:
        return helio_pos, helio_vel, epochs
    grouped = np.round(epochs / tolerance_days) * tolerance_days
    moved = grouped != epochs
    if not np.any(moved):
        return helio_pos, helio_vel, epochs
    pos, vel = helio_pos.copy(), helio_vel.copy()
    dt = (grouped - epochs)[moved]
    p, v = propagate_two_body(helio_pos[moved], helio_vel[moved], dt)
    acc = _perturbing_acceleration(helio_pos[moved], epochs[moved])
    pos[moved] = p + 0.5 * acc * dt[:, None] ** 2
    vel[moved] = v + acc * dt[:, None]
    return pos, vel, grouped


def _heliocentric_at_epoch(orbits: OrbitTable) -> tuple[FloatArray, FloatArray]:
    pos = orbits.pos_au.copy()
    vel = orbits.vel_au_per_day.copy()
    bary = orbits.barycentric
    if np.any(bary):
        sp, sv = body_state("sun", orbits.epoch_mjd_tdb[bary])
        pos[bary] -= sp
        vel[bary] -= sv
    return pos, vel


def _propagate_nodes_model(
    helio_pos: FloatArray,
    helio_vel: FloatArray,
    epochs: FloatArray,
    times: FloatArray,
    config: PropagationConfig,
    model: str,
) -> tuple[FloatArray, FloatArray]:
    fp, fv, fok = _run_direction(helio_pos, helio_vel, epochs, times, 1.0, config, model)
    need_back = ~fok
    if np.any(need_back):
        rows = np.flatnonzero(np.any(need_back, axis=1))
        bp, bv, bok = _run_direction(helio_pos[rows], helio_vel[rows], epochs[rows], times, -1.0, config, model)
        take = bok & need_back[rows]
        sub_p, sub_v = fp[rows], fv[rows]
        sub_p[take] = bp[take]
        sub_v[take] = bv[take]
        fp[rows], fv[rows] = sub_p, sub_v
    return fp, fv


def _propagate_nodes(
    helio_pos: FloatArray,
    helio_vel: FloatArray,
    epochs: FloatArray,
    times: FloatArray,
    config: PropagationConfig,
) -> tuple[FloatArray, FloatArray]:
    """Heliocentric states at exactly ``times`` (near and far models, forward and
    backward runs combined)."""
    near = _is_near(helio_pos, helio_vel, config)
    pos = np.empty((helio_pos.shape[0], times.size, 3))
    vel = np.empty_like(pos)
    # IAS15's step is set by the most demanding particle (smallest perihelion, closest
    # encounter): run the near objects in small batches ordered by their perihelion
    # distance, so a few sun-grazers do not slow everyone down.
    near_rows = np.flatnonzero(near)
    q = _perihelion_au(helio_pos[near_rows], helio_vel[near_rows])
    near_rows = near_rows[np.argsort(q, kind="stable")]
    size = max(1, config.near_batch)
    groups = [("near", near_rows[i : i + size]) for i in range(0, near_rows.size, size)]
    groups.append(("far", np.flatnonzero(~near)))
    for model, rows in groups:
        if rows.size:
            pos[rows], vel[rows] = _propagate_nodes_model(
                helio_pos[rows], helio_vel[rows], epochs[rows], times, config, model
            )
    return pos, vel


def _hermite_fill(
    node_t: FloatArray, node_p: FloatArray, node_v: FloatArray, times: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """States at ``times`` from states at bracketing nodes: two-body from the left node
    plus a cubic Hermite interpolation of the deviation from two-body."""
    n = node_p.shape[0]
    j = np.clip(np.searchsorted(node_t, times, side="right") - 1, 0, node_t.size - 2)
    t_a, t_b = node_t[j], node_t[j + 1]
    h = t_b - t_a
    # Deviation from two-body at the end of each node interval (once per interval).
    kp_b, kv_b = propagate_two_body(node_p[:, :-1], node_v[:, :-1], np.diff(node_t)[None, :])
    dp = (node_p[:, 1:] - kp_b)[:, j]
    dv = (node_v[:, 1:] - kv_b)[:, j]
    tau = times - t_a
    kp, kv = propagate_two_body(node_p[:, j], node_v[:, j], np.broadcast_to(tau, (n, tau.size)))
    s = (tau / h)[None, :, None]
    hh = h[None, :, None]
    # eps(0) = eps'(0) = 0, eps(h) = dp, eps'(h) = dv.
    c2 = 3.0 * dp - hh * dv
    c3 = hh * dv - 2.0 * dp
    eps = c2 * s**2 + c3 * s**3
    deps = (2.0 * c2 * s + 3.0 * c3 * s**2) / hh
    return kp + eps, kv + deps


def _close_approach_steps(
    node_t: FloatArray, node_p: FloatArray, node_v: FloatArray, step: float
) -> FloatArray:
    """Node spacing (days) each object needs for the Hermite fill near the Earth or Moon.

    The fill's error grows like h^4 / d^5 (h node spacing, d distance to the Earth): measured
    0.03 arcsec at d = 0.01 AU, h = 0.5 day, 10 km/s. ``0.15 (d / 0.01 AU)^1.25`` days keeps
    it at a few mas for encounter speeds up to ~30 km/s; never below one minute. The
    closest distance is estimated from straight-line relative motion within half a step of
    each node.
    """
    sun, sun_v = body_state("sun", node_t)
    d = np.full(node_p.shape[0], np.inf)
    for body in ("earth", "moon"):
        b, bv = body_state(body, node_t)
        rel = node_p - (b - sun)[None]
        vrel = node_v - (bv - sun_v)[None]
        t_star = -np.sum(rel * vrel, axis=-1) / np.maximum(np.sum(vrel * vrel, axis=-1), 1e-30)
        t_star = np.clip(t_star, -0.5 * step, 0.5 * step)
        closest = np.linalg.norm(rel + vrel * t_star[..., None], axis=-1)
        d = np.minimum(d, np.min(closest, axis=1))
    d = np.maximum(d, 1e-6)
    return np.asarray(np.clip(0.15 * (d / 0.01) ** 1.25, 1.0 / 1440.0, step), dtype=np.float64)


def _propagate_helio(
    helio_pos: FloatArray,
    helio_vel: FloatArray,
    epochs: FloatArray,
    times: FloatArray,
    config: PropagationConfig,
) -> tuple[FloatArray, FloatArray]:
    helio_pos, helio_vel, epochs = _group_epochs(helio_pos, helio_vel, epochs, config.epoch_tolerance_days)
    uniq = np.unique(times)
    step = config.node_step_days
    if step > 0 and uniq.size > 2:
        n_nodes = int(np.ceil((uniq[-1] - uniq[0]) / step)) + 1
        if n_nodes < uniq.size:
            nodes = np.linspace(uniq[0], uniq[-1], max(n_nodes, 2))
            np_, nv_ = _propagate_nodes(helio_pos, helio_vel, epochs, nodes, config)
            pos, vel = _hermite_fill(nodes, np_, nv_, times)
            # Close approaches to the Earth or Moon: finer nodes for those objects only.
            need = _close_approach_steps(nodes, np_, nv_, step)
            levels = np.ceil(np.log2(step / need) - 1e-9).astype(int)
            for k in np.unique(levels[levels > 0]):
                rows = np.flatnonzero(levels == k)
                sub = (helio_pos[rows], helio_vel[rows], epochs[rows])
                n_k = int(np.ceil((uniq[-1] - uniq[0]) / (step / 2.0**k))) + 1
                if n_k >= uniq.size:
                    p_k, v_k = _propagate_nodes(*sub, uniq, config)
                    idx = np.searchsorted(uniq, times)
                    pos[rows], vel[rows] = p_k[:, idx], v_k[:, idx]
                else:
                    nodes_k = np.linspace(uniq[0], uniq[-1], n_k)
                    p_k, v_k = _propagate_nodes(*sub, nodes_k, config)
                    pos[rows], vel[rows] = _hermite_fill(nodes_k, p_k, v_k, times)
            return pos, vel
    p, v = _propagate_nodes(helio_pos, helio_vel, epochs, uniq, config)
    k = np.searchsorted(uniq, times)
    return p[:, k], v[:, k]


def _worker(
    args: tuple[FloatArray, FloatArray, FloatArray, FloatArray, PropagationConfig],
) -> tuple[FloatArray, FloatArray]:
    return _propagate_helio(*args)


def propagate_states(
    orbits: OrbitTable,
    times_mjd_tdb: npt.ArrayLike,
    *,
    origin: str = "sun",
    workers: int = 1,
    config: PropagationConfig = DEFAULT_CONFIG,
) -> tuple[FloatArray, FloatArray]:
    """N-body states of every orbit at every time (geometric, no light time).

    Args:
        orbits: the objects (any epochs; each is integrated from its own epoch).
        times_mjd_tdb: ``[n_t]`` times, MJD TDB, any order, may repeat.
        origin: ``'sun'`` (heliocentric, default) or ``'ssb'`` (barycentric).
        workers: processes to use (objects are split between them).
        config: integrator settings.

    Returns:
        ``(pos_au[n_obj, n_t, 3], vel_au_per_day[n_obj, n_t, 3])``, ICRS; NaN for objects
        whose state at epoch is not finite (they never enter the simulation). Memory is
        ``48 * n_obj * n_t`` bytes: call in batches of objects for large catalogues.
    """
    if origin not in ("sun", "ssb"):
        raise ValueError(f"origin must be 'sun' or 'ssb', got {origin!r}")
    times = np.atleast_1d(np.asarray(times_mjd_tdb, dtype=np.float64))
    if times.ndim != 1:
        raise ValueError("times_mjd_tdb must be one-dimensional")
    hp, hv = _heliocentric_at_epoch(orbits)
    epochs = orbits.epoch_mjd_tdb
    n = len(orbits)
    if n == 0 or times.size == 0:
        return np.zeros((n, times.size, 3)), np.zeros((n, times.size, 3))
    # A non-finite state would poison the shared simulation (IAS15's step control): such
    # objects are left out and come back as NaN.
    ok = np.all(np.isfinite(hp) & np.isfinite(hv), axis=1) & np.isfinite(epochs)
    good = np.flatnonzero(ok)
    pos = np.full((n, times.size, 3), np.nan)
    vel = np.full((n, times.size, 3), np.nan)
    workers = max(1, min(int(workers), good.size))
    if good.size == 0:
        pass
    elif workers == 1:
        pos[good], vel[good] = _propagate_helio(hp[good], hv[good], epochs[good], times, config)
    else:
        # Deal objects out in epoch order so every worker covers the same epoch range.
        order = good[np.argsort(epochs[good], kind="stable")]
        parts = [order[w::workers] for w in range(workers)]
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = pool.map(_worker, [(hp[i], hv[i], epochs[i], times, config) for i in parts])
        for idx, (p, v) in zip(parts, results, strict=True):
            pos[idx], vel[idx] = p, v
    if origin == "ssb":
        sp, sv = body_state("sun", times)
        pos = pos + sp[None]
        vel = vel + sv[None]
    return pos, vel


# --------------------------------------------------------------------------------------
# Light time and observables


def light_time_correct(
    helio_pos_au: FloatArray,
    helio_vel_au_per_day: FloatArray,
    obs_bary_pos_au: FloatArray,
    times_mjd_tdb: FloatArray,
    iterations: int = 3,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Object state at light emission for observers at ``times``.

    Args:
        helio_pos_au, helio_vel_au_per_day: ``[n_obj, n_t, 3]`` heliocentric geometric
            states at the observation times.
        obs_bary_pos_au: ``[n_t, 3]`` barycentric observer positions.
        times_mjd_tdb: ``[n_t]`` observation times.

    Returns:
        ``(helio_pos_emit_au, helio_vel_emit_au_per_day, light_time_days)``: heliocentric
        state of the object at emission time ``t - tau`` (relative to the Sun at that
        time) and ``tau``. The short step back (at most hours) uses two-body motion from
        the geometric state (Taylor series, exact Kepler near the Sun); the Sun's
        barycentric motion from DE421, linear over tau.
    """
    t = np.asarray(times_mjd_tdb, np.float64)
    sun_t, sun_v = body_state("sun", t)
    p0, v0 = helio_pos_au, helio_vel_au_per_day
    tau = np.linalg.norm(p0 + sun_t[None] - obs_bary_pos_au[None], axis=-1) / C_AU_PER_DAY
    # Two-body motion over -tau as a Taylor series to third order in tau (acceleration and
    # jerk of the Kepler orbit): the neglected term is ~(tau / T)^4 / 24 of the distance r,
    # with T = sqrt(r^3 / mu) -- ~1e-16 for an NEO or a TNO; objects with tau > 0.01 T
    # (within ~0.1 AU of the Sun, where that bound would reach metres) take exact Kepler.
    r = np.linalg.norm(p0, axis=-1)
    mu = GM_SUN_AU3_PER_DAY2
    acc = -mu * p0 / (r**3)[..., None]
    rdot = np.sum(p0 * v0, axis=-1) / r
    jerk = -mu * (v0 / (r**3)[..., None] - 3.0 * (rdot / r**4)[..., None] * p0)
    exact = tau > 0.01 * np.sqrt(r**3 / mu)
    p_emit, v_emit = p0, v0
    for _ in range(iterations):
        dt = -tau[..., None]
        p_emit = p0 + dt * (v0 + dt * (0.5 * acc + dt * jerk / 6.0))
        v_emit = v0 + dt * (acc + 0.5 * dt * jerk)
        if np.any(exact):
            p_emit[exact], v_emit[exact] = propagate_two_body(p0[exact], v0[exact], -tau[exact], mu)
        # The Sun's barycentric motion over the light time is linear to ~10 m (its
        # acceleration is ~3e-9 AU/day^2 and tau < 0.3 day out to 50 AU).
        sun_emit = sun_t[None] - tau[..., None] * sun_v[None]
        rho = p_emit + sun_emit - obs_bary_pos_au[None]
        tau = np.linalg.norm(rho, axis=-1) / C_AU_PER_DAY
    return p_emit, v_emit, tau


@dataclass(frozen=True)
class ObservedStates:
    """Ephemerides of ``n_obj`` objects at ``n_t`` times for one observatory.

    Arrays are ``[n_obj, n_t]`` (``[n_obj, n_t, 3]`` for vectors) unless noted. Frames are
    ICRS; vectors in AU and AU/day.

    Attributes:
        object_id: ``[n_obj]`` ids from the orbit table.
        mjd_tai: ``[n_t]`` observation times (MJD TAI); ``mjd_tdb`` the same in TDB.
        observatory: MPC code.
        ra_deg, dec_deg: astrometric ICRS position (light-time corrected; no aberration,
            no light deflection) -- what JPL Horizons calls "astrometric RA/Dec".
        ra_rate_deg_per_day: dRA/dt * cos(Dec); dec_rate_deg_per_day: dDec/dt.
        helio_pos_au, helio_vel_au_per_day: object relative to the Sun at emission time.
        obs_helio_pos_au, obs_helio_vel_au_per_day: ``[n_t, 3]`` observer relative to the
            Sun at observation time.
        topo_pos_au, topo_vel_au_per_day: observer-to-object vector (object at emission,
            observer at reception; barycentric difference) and its time derivative.
        topo_range_au, helio_range_au: norms of the two position vectors.
        topo_range_rate_au_per_day, helio_range_rate_au_per_day: radial velocities
            (positive = receding).
        light_time_days: light travel time.
        phase_angle_deg: Sun-object-observer angle; elongation_deg: Sun-observer-object.
        v_mag: predicted V magnitude (H-G), NaN where H is unknown.
    """

    object_id: npt.NDArray[np.object_]
    mjd_tai: FloatArray
    mjd_tdb: FloatArray
    observatory: str
    ra_deg: FloatArray
    dec_deg: FloatArray
    ra_rate_deg_per_day: FloatArray
    dec_rate_deg_per_day: FloatArray
    helio_pos_au: FloatArray
    helio_vel_au_per_day: FloatArray
    obs_helio_pos_au: FloatArray
    obs_helio_vel_au_per_day: FloatArray
    topo_pos_au: FloatArray
    topo_vel_au_per_day: FloatArray
    topo_range_au: FloatArray
    helio_range_au: FloatArray
    topo_range_rate_au_per_day: FloatArray
    helio_range_rate_au_per_day: FloatArray
    light_time_days: FloatArray
    phase_angle_deg: FloatArray
    elongation_deg: FloatArray
    v_mag: FloatArray


def sky_position_and_rates(
    topo_pos_au: FloatArray, topo_vel_au_per_day: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """RA, Dec (deg) of observer-to-object vectors ``[..., 3]`` (ICRS) and their rates
    ``(dRA/dt cos Dec, dDec/dt)`` in deg/day from the vectors' time derivatives (any
    consistent length and time units)."""
    rho = np.asarray(topo_pos_au, np.float64)
    rho_dot = np.asarray(topo_vel_au_per_day, np.float64)
    rng = np.linalg.norm(rho, axis=-1)
    ra = np.degrees(np.arctan2(rho[..., 1], rho[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(rho[..., 2] / rng, -1.0, 1.0)))
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    # Rates are the velocity components along the local east and north unit vectors.
    e_ra = np.stack([-np.sin(ra_r), np.cos(ra_r), np.zeros_like(ra_r)], axis=-1)
    e_dec = np.stack(
        [-np.sin(dec_r) * np.cos(ra_r), -np.sin(dec_r) * np.sin(ra_r), np.cos(dec_r)], axis=-1
    )
    ra_rate = np.degrees(np.sum(rho_dot * e_ra, axis=-1) / rng)
    dec_rate = np.degrees(np.sum(rho_dot * e_dec, axis=-1) / rng)
    return ra, dec, ra_rate, dec_rate


def elongation_deg(obs_helio_pos_au: FloatArray, topo_pos_au: FloatArray) -> FloatArray:
    """Solar elongation (deg): angle at the observer between the Sun and the object, from
    the observer's heliocentric position and the observer-to-object vector, ``[..., 3]``."""
    to_sun = -np.asarray(obs_helio_pos_au, np.float64)
    rho = np.asarray(topo_pos_au, np.float64)
    cross = np.linalg.norm(np.cross(to_sun, rho), axis=-1)
    return np.asarray(np.degrees(np.arctan2(cross, np.sum(to_sun * rho, axis=-1))), np.float64)


def observables_from_states(
    orbits: OrbitTable,
    helio_pos_au: FloatArray,
    helio_vel_au_per_day: FloatArray,
    times_mjd_tai: FloatArray,
    observatory: str,
) -> ObservedStates:
    """:class:`ObservedStates` from geometric heliocentric states ``[n_obj, n_t, 3]`` at
    the observation times (e.g. from :func:`propagate_states` or a store)."""
    t_tai = np.atleast_1d(np.asarray(times_mjd_tai, np.float64))
    t_tdb = timescales.mjd_tai_to_tdb(t_tai)
    obs_bary_p, obs_bary_v = observer_states(observatory, t_tai, origin="ssb")
    sun_p, sun_v = body_state("sun", t_tdb)
    obs_helio_p = obs_bary_p - sun_p
    obs_helio_v = obs_bary_v - sun_v
    p_emit, v_emit, tau = light_time_correct(helio_pos_au, helio_vel_au_per_day, obs_bary_p, t_tdb)
    sun_emit_p = sun_p[None] - tau[..., None] * sun_v[None]  # linear over tau, see above
    sun_emit_v = np.broadcast_to(sun_v[None], sun_emit_p.shape)
    rho = p_emit + sun_emit_p - obs_bary_p[None]
    rng = np.linalg.norm(rho, axis=-1)
    # d(rho)/dt = v_obj(t - tau) (1 - dtau/dt) - v_obs(t), with dtau/dt = range rate / c.
    v_obj_bary = v_emit + sun_emit_v
    rdot0 = np.sum(rho * (v_obj_bary - obs_bary_v[None]), axis=-1) / rng
    tau_dot = rdot0 / C_AU_PER_DAY / (1.0 + np.sum(rho * v_obj_bary, axis=-1) / rng / C_AU_PER_DAY)
    rho_dot = v_obj_bary * (1.0 - tau_dot)[..., None] - obs_bary_v[None]
    ra, dec, ra_rate, dec_rate = sky_position_and_rates(rho, rho_dot)
    helio_r = np.linalg.norm(p_emit, axis=-1)
    phase = phase_angle_deg(p_emit, rho)
    elong = elongation_deg(np.broadcast_to(obs_helio_p[None], rho.shape), rho)
    vmag = v_magnitude(orbits.h_mag[:, None], orbits.g_slope[:, None], helio_r, rng, phase)
    return ObservedStates(
        object_id=orbits.object_id,
        mjd_tai=t_tai,
        mjd_tdb=t_tdb,
        observatory=observatory,
        ra_deg=ra,
        dec_deg=dec,
        ra_rate_deg_per_day=ra_rate,
        dec_rate_deg_per_day=dec_rate,
        helio_pos_au=p_emit,
        helio_vel_au_per_day=v_emit,
        obs_helio_pos_au=obs_helio_p,
        obs_helio_vel_au_per_day=obs_helio_v,
        topo_pos_au=rho,
        topo_vel_au_per_day=rho_dot,
        topo_range_au=rng,
        helio_range_au=helio_r,
        topo_range_rate_au_per_day=np.sum(rho * rho_dot, axis=-1) / rng,
        helio_range_rate_au_per_day=np.sum(p_emit * v_emit, axis=-1) / helio_r,
        light_time_days=tau,
        phase_angle_deg=phase,
        elongation_deg=elong,
        v_mag=vmag,
    )


def observe(
    orbits: OrbitTable,
    times_mjd_tai: npt.ArrayLike,
    observatory: str,
    *,
    workers: int = 1,
    config: PropagationConfig = DEFAULT_CONFIG,
) -> ObservedStates:
    """Astrometric ephemerides of every orbit at every time, seen from an MPC site.

    Args:
        orbits: the objects.
        times_mjd_tai: ``[n_t]`` observation (reception) times, MJD TAI.
        observatory: MPC observatory code ('X05', 'W84', '500' for the geocentre, ...).
        workers: processes; each runs the whole pipeline (integration, light time,
            observables) for its share of the objects.
        config: integrator settings.
    """
    t_tai = np.atleast_1d(np.asarray(times_mjd_tai, np.float64))
    n = len(orbits)
    workers = max(1, min(int(workers), n))
    if workers > 1:
        order = np.argsort(orbits.epoch_mjd_tdb, kind="stable")
        parts = [np.sort(order[w::workers]) for w in range(workers)]
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            chunks = pool.map(
                _observe_worker, [(orbits.take(i), t_tai, observatory, config) for i in parts]
            )
        return _merge_observed(chunks, parts, n)
    t_tdb = timescales.mjd_tai_to_tdb(t_tai)
    pos, vel = propagate_states(orbits, t_tdb, origin="sun", workers=1, config=config)
    return observables_from_states(orbits, pos, vel, t_tai, observatory)


def _observe_worker(
    args: tuple[OrbitTable, FloatArray, str, PropagationConfig],
) -> ObservedStates:
    orbits, t_tai, observatory, config = args
    return observe(orbits, t_tai, observatory, workers=1, config=config)


# Fields of ObservedStates that do not have the object axis first.
_SHARED_FIELDS: Final = frozenset(
    {"mjd_tai", "mjd_tdb", "observatory", "obs_helio_pos_au", "obs_helio_vel_au_per_day"}
)


def _merge_observed(
    chunks: list[ObservedStates], parts: list[npt.NDArray[np.intp]], n: int
) -> ObservedStates:
    """Reassemble per-worker results in the original object order."""
    merged: dict[str, object] = {}
    for f in dataclasses.fields(ObservedStates):
        first = getattr(chunks[0], f.name)
        if f.name in _SHARED_FIELDS:
            merged[f.name] = first
            continue
        out = np.empty((n, *np.shape(first)[1:]), dtype=np.asarray(first).dtype)
        for idx, chunk in zip(parts, chunks, strict=True):
            out[idx] = getattr(chunk, f.name)
        merged[f.name] = out
    return ObservedStates(**merged)  # type: ignore[arg-type]
