"""Orbit catalogues in: MPCORB.DAT and the OpenOrb/Sorcha format, to one canonical table.

The canonical form, :class:`OrbitTable`, holds for every object a Cartesian state at its
epoch in the ICRS (equatorial) frame: position in AU and velocity in AU/day, relative to
the Sun (heliocentric) or to the Solar System barycentre (``barycentric`` flag), epoch as
MJD TDB, plus H and G. Every input element set is converted to that state on reading.

Conventions (the ones JPL and the MPC use):

- Input elements are in the ecliptic and equinox of J2000. They are rotated to ICRS about
  the x axis by the J2000 obliquity, 84381.448 arcsec. No frame bias is applied: JPL
  defines its "ecliptic of J2000" frame as exactly this rotation of the ICRF, and the
  integrator (DE421) is itself ICRF.
- Heliocentric elements use GM_sun; barycentric (BKEP, BCOM) elements use the total GM of
  the Sun, planets, Moon and Pluto of DE421 (the convention of OpenOrb/Sorcha).
- MPCORB epochs are TT; TT - TDB is below 2 ms and is ignored.

Two-body (Kepler) propagation uses universal variables (Stumpff functions), so elliptic,
parabolic and hyperbolic orbits and near-parabolic comets all go through one code path.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from .planets import GM_SUN_AU3_PER_DAY2, GM_TOTAL_AU3_PER_DAY2

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.object_]

OBLIQUITY_J2000_RAD: Final = np.radians(84381.448 / 3600.0)
_COS_EPS: Final = float(np.cos(OBLIQUITY_J2000_RAD))
_SIN_EPS: Final = float(np.sin(OBLIQUITY_J2000_RAD))
#: Rotation matrix ecliptic J2000 -> ICRS equatorial (apply as ``R @ v``).
ECLIPTIC_TO_EQUATORIAL: Final = np.array(
    [[1.0, 0.0, 0.0], [0.0, _COS_EPS, -_SIN_EPS], [0.0, _SIN_EPS, _COS_EPS]]
)

ORBIT_FORMATS: Final = ("KEP", "COM", "CART", "BKEP", "BCOM", "BCART")


class OrbitFormatError(ValueError):
    """A line of an orbit file cannot be read, or gives an invalid orbit."""


# --------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class OrbitTable:
    """Orbits of ``n`` objects as ICRS Cartesian states at their epochs.

    Attributes:
        object_id: ``[n]`` str, the identifier as written in the file (MPCORB: the packed
            designation of columns 1-7; OpenOrb/Sorcha: ``ObjID``).
        name: ``[n]`` str, readable designation when the file has one (MPCORB columns
            167-194), else equal to ``object_id``.
        epoch_mjd_tdb: ``[n]`` epoch of the state, MJD TDB.
        pos_au: ``[n, 3]`` position at epoch, ICRS, AU.
        vel_au_per_day: ``[n, 3]`` velocity at epoch, ICRS, AU/day.
        barycentric: ``[n]`` bool, True if relative to the Solar System barycentre, False
            if heliocentric.
        h_mag: ``[n]`` absolute magnitude H (mag); NaN when unknown.
        g_slope: ``[n]`` slope parameter G; NaN when unknown (0.15 is then used).
        n_skipped: lines skipped as bad when read with ``skip_bad=True``.
        skipped: ``(line number, reason)`` of the first 1000 skipped lines.
    """

    object_id: StrArray
    name: StrArray
    epoch_mjd_tdb: FloatArray
    pos_au: FloatArray
    vel_au_per_day: FloatArray
    barycentric: BoolArray
    h_mag: FloatArray
    g_slope: FloatArray
    n_skipped: int = 0
    skipped: tuple[tuple[int, str], ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.object_id)
        shapes = {
            "name": (self.name.shape, (n,)),
            "epoch_mjd_tdb": (self.epoch_mjd_tdb.shape, (n,)),
            "pos_au": (self.pos_au.shape, (n, 3)),
            "vel_au_per_day": (self.vel_au_per_day.shape, (n, 3)),
            "barycentric": (self.barycentric.shape, (n,)),
            "h_mag": (self.h_mag.shape, (n,)),
            "g_slope": (self.g_slope.shape, (n,)),
        }
        for key, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"OrbitTable.{key} has shape {got}, expected {want}")

    def __len__(self) -> int:
        return len(self.object_id)

    @classmethod
    def from_states(
        cls,
        object_id: Sequence[str] | npt.ArrayLike,
        epoch_mjd_tdb: npt.ArrayLike,
        pos_au: npt.ArrayLike,
        vel_au_per_day: npt.ArrayLike,
        *,
        barycentric: bool | npt.ArrayLike = False,
        h_mag: npt.ArrayLike | None = None,
        g_slope: npt.ArrayLike | None = None,
        name: Sequence[str] | npt.ArrayLike | None = None,
    ) -> OrbitTable:
        """Build a table from ICRS Cartesian states (AU, AU/day) at epochs (MJD TDB)."""
        ids = np.asarray(object_id, dtype=object).reshape(-1)
        n = len(ids)
        nan = np.full(n, np.nan)
        return cls(
            object_id=ids,
            name=ids.copy() if name is None else np.asarray(name, dtype=object).reshape(-1),
            epoch_mjd_tdb=np.broadcast_to(np.asarray(epoch_mjd_tdb, np.float64), (n,)).copy(),
            pos_au=np.asarray(pos_au, np.float64).reshape(n, 3),
            vel_au_per_day=np.asarray(vel_au_per_day, np.float64).reshape(n, 3),
            barycentric=np.broadcast_to(np.asarray(barycentric, bool), (n,)).copy(),
            h_mag=nan.copy() if h_mag is None else np.asarray(h_mag, np.float64).reshape(n),
            g_slope=nan.copy() if g_slope is None else np.asarray(g_slope, np.float64).reshape(n),
        )

    def take(self, index: npt.ArrayLike) -> OrbitTable:
        """The sub-table of rows ``index`` (integer indices or boolean mask)."""
        idx = np.asarray(index)
        return dataclasses.replace(
            self,
            object_id=self.object_id[idx],
            name=self.name[idx],
            epoch_mjd_tdb=self.epoch_mjd_tdb[idx],
            pos_au=self.pos_au[idx],
            vel_au_per_day=self.vel_au_per_day[idx],
            barycentric=self.barycentric[idx],
            h_mag=self.h_mag[idx],
            g_slope=self.g_slope[idx],
            n_skipped=0,
            skipped=(),
        )

    @staticmethod
    def concatenate(tables: Sequence[OrbitTable]) -> OrbitTable:
        """All rows of ``tables`` in order."""
        return OrbitTable(
            object_id=np.concatenate([t.object_id for t in tables]),
            name=np.concatenate([t.name for t in tables]),
            epoch_mjd_tdb=np.concatenate([t.epoch_mjd_tdb for t in tables]),
            pos_au=np.concatenate([t.pos_au for t in tables]).reshape(-1, 3),
            vel_au_per_day=np.concatenate([t.vel_au_per_day for t in tables]).reshape(-1, 3),
            barycentric=np.concatenate([t.barycentric for t in tables]),
            h_mag=np.concatenate([t.h_mag for t in tables]),
            g_slope=np.concatenate([t.g_slope for t in tables]),
            n_skipped=sum(t.n_skipped for t in tables),
        )

    def to_frame(self) -> pd.DataFrame:
        """A pandas view: object_id, name, epoch_mjd_tdb, x/y/z_au, vx/vy/vz_au_per_day,
        barycentric, h_mag, g_slope."""
        return pd.DataFrame(
            {
                "object_id": self.object_id,
                "name": self.name,
                "epoch_mjd_tdb": self.epoch_mjd_tdb,
                "x_au": self.pos_au[:, 0],
                "y_au": self.pos_au[:, 1],
                "z_au": self.pos_au[:, 2],
                "vx_au_per_day": self.vel_au_per_day[:, 0],
                "vy_au_per_day": self.vel_au_per_day[:, 1],
                "vz_au_per_day": self.vel_au_per_day[:, 2],
                "barycentric": self.barycentric,
                "h_mag": self.h_mag,
                "g_slope": self.g_slope,
            }
        )


# --------------------------------------------------------------------------------------
# Frames and element conversions (all vectorised)


def ecliptic_to_equatorial(vec: npt.ArrayLike) -> FloatArray:
    """Rotate ``[..., 3]`` vectors from ecliptic J2000 to ICRS equatorial."""
    return np.asarray(np.asarray(vec, np.float64) @ ECLIPTIC_TO_EQUATORIAL.T, dtype=np.float64)


def equatorial_to_ecliptic(vec: npt.ArrayLike) -> FloatArray:
    """Rotate ``[..., 3]`` vectors from ICRS equatorial to ecliptic J2000."""
    return np.asarray(np.asarray(vec, np.float64) @ ECLIPTIC_TO_EQUATORIAL, dtype=np.float64)


def _stumpff(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Stumpff functions C(z), S(z), with series near z = 0 to avoid cancellation."""
    c = np.empty_like(z)
    s = np.empty_like(z)
    small = np.abs(z) < 1e-3
    pos = (z > 0) & ~small
    neg = (z < 0) & ~small
    zs = z[small]
    c[small] = 0.5 - zs / 24.0 + zs**2 / 720.0 - zs**3 / 40320.0
    s[small] = 1.0 / 6.0 - zs / 120.0 + zs**2 / 5040.0 - zs**3 / 362880.0
    sz = np.sqrt(z[pos])
    c[pos] = (1.0 - np.cos(sz)) / z[pos]
    s[pos] = (sz - np.sin(sz)) / sz**3
    sz = np.sqrt(-z[neg])
    c[neg] = (np.cosh(sz) - 1.0) / (-z[neg])
    s[neg] = (np.sinh(sz) - sz) / sz**3
    return c, s


def propagate_two_body(
    pos_au: npt.ArrayLike,
    vel_au_per_day: npt.ArrayLike,
    dt_days: npt.ArrayLike,
    mu_au3_per_day2: float | npt.ArrayLike = GM_SUN_AU3_PER_DAY2,
) -> tuple[FloatArray, FloatArray]:
    """Kepler (two-body) propagation of states ``[..., 3]`` by ``dt_days`` (broadcast).

    Universal-variable formulation with Laguerre-Conway iterations: valid for elliptic,
    parabolic and hyperbolic orbits. Returns ``(pos_au, vel_au_per_day)``.
    """
    r0v = np.asarray(pos_au, np.float64)
    v0v = np.asarray(vel_au_per_day, np.float64)
    dt = np.asarray(dt_days, np.float64)
    mu = np.asarray(mu_au3_per_day2, np.float64)
    shape = np.broadcast_shapes(r0v.shape[:-1], v0v.shape[:-1], dt.shape, mu.shape)
    r0v = np.broadcast_to(r0v, (*shape, 3)).reshape(-1, 3)
    v0v = np.broadcast_to(v0v, (*shape, 3)).reshape(-1, 3)
    dt = np.broadcast_to(dt, shape).reshape(-1).copy()
    mu = np.broadcast_to(mu, shape).reshape(-1)

    r0 = np.linalg.norm(r0v, axis=1)
    v0sq = np.sum(v0v * v0v, axis=1)
    rdotv = np.sum(r0v * v0v, axis=1)
    alpha = 2.0 / r0 - v0sq / mu  # 1/a
    sqmu = np.sqrt(mu)
    # Whole revolutions of elliptic orbits change nothing: fold dt into one period.
    ell = alpha > 1e-12
    period = np.full_like(dt, np.inf)
    period[ell] = 2.0 * np.pi / np.sqrt(mu[ell] * alpha[ell] ** 3)
    fold = ell & (np.abs(dt) > period)
    dt[fold] = np.fmod(dt[fold], period[fold])

    sig0 = rdotv / sqmu
    chi = sqmu * dt * np.where(ell, alpha, 1.0 / r0)
    # Unbound or near-parabolic: the linear guess grows without bound far from the start;
    # the parabolic solution for large times (chi^3 / 6 ~ sqrt(mu) dt) bounds it.
    cube = np.sign(dt) * np.cbrt(6.0 * sqmu * np.abs(dt))
    chi = np.where(~ell & (np.abs(cube) < np.abs(chi)), cube, chi)
    # Hyperbolic: start from the solution of the hyperbolic Kepler equation
    # e sinh H - H = M (Newton from Danby's guess, which lies above the root and
    # converges monotonically); chi = sqrt(-a) (H - H0).
    hyp = alpha < -1e-12
    if np.any(hyp):
        a_h = 1.0 / alpha[hyp]
        ec = 1.0 - r0[hyp] / a_h
        es = rdotv[hyp] / np.sqrt(-mu[hyp] * a_h)
        e_h = np.sqrt(np.maximum(ec * ec - es * es, 1e-300))
        h0 = np.arcsinh(es / e_h)
        m = e_h * np.sinh(h0) - h0 + np.sqrt(mu[hyp] / (-a_h) ** 3) * dt[hyp]
        hh = np.sign(m) * np.log(2.0 * np.abs(m) / e_h + 1.8)
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(60):
                step = (e_h * np.sinh(hh) - hh - m) / (e_h * np.cosh(hh) - 1.0)
                hh = hh - np.where(np.isfinite(step), step, 0.0)
                if np.all(np.abs(step) < 1e-12 * np.maximum(1.0, np.abs(hh))):
                    break
        guess = np.sqrt(-a_h) * (hh - h0)
        chi[hyp] = np.where(np.isfinite(guess), guess, chi[hyp])
    # Laguerre-Conway iterations, continued only for elements not yet converged.
    active = np.arange(chi.size)
    last_rel = np.zeros_like(chi)
    one_m_ar0 = 1.0 - alpha * r0
    for _ in range(50):
        if active.size == 0:
            break
        x = chi[active]
        al = alpha[active]
        z = al * x * x
        c, s = _stumpff(z)
        x2 = x * x
        sg, om, rr = sig0[active], one_m_ar0[active], r0[active]
        f = sg * x2 * c + om * x2 * x * s + rr * x - sqmu[active] * dt[active]
        fp = sg * x * (1.0 - z * s) + om * x2 * c + rr
        fpp = sg * (1.0 - z * c) + om * x * (1.0 - z * s)
        n = 5.0
        with np.errstate(over="ignore", invalid="ignore"):
            disc = np.abs((n - 1.0) ** 2 * fp * fp - n * (n - 1.0) * f * fpp)
        denom = fp + np.sign(fp) * np.sqrt(disc)
        delta = n * f / np.where(denom == 0.0, 1.0, denom)
        chi[active] = x - delta
        rel = np.abs(delta) / np.maximum(np.abs(x), 1e-300)
        last_rel[active] = rel
        # Round-off limits chi to ~1e-14 relative; 2e-13 is 0.03 m at 1 AU.
        active = active[rel > 2e-13]
    # Never return a silently wrong state: what did not converge is NaN. Far from
    # perihelion on hyperbolic orbits round-off limits chi to ~1e-9 relative; that is kept.
    chi[active[last_rel[active] > 1e-6]] = np.nan
    z = alpha * chi * chi
    c, s = _stumpff(z)
    chi2 = chi * chi
    f = 1.0 - chi2 / r0 * c
    # g = dt - chi^3 S / sqrt(mu), rewritten with Kepler's equation to avoid cancelling
    # two large numbers far from the start on near-parabolic orbits.
    g = (sig0 * chi2 * c + r0 * chi * (1.0 - z * s)) / sqmu
    rv = f[:, None] * r0v + g[:, None] * v0v
    r = np.linalg.norm(rv, axis=1)
    fdot = sqmu / (r * r0) * chi * (z * s - 1.0)
    gdot = 1.0 - chi2 / r * c
    vv = fdot[:, None] * r0v + gdot[:, None] * v0v
    return rv.reshape(*shape, 3), vv.reshape(*shape, 3)


def _rotation_pqw(
    inc_deg: FloatArray, node_deg: FloatArray, argperi_deg: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Unit vectors P (to perihelion) and Q (90 deg ahead in the orbit plane), ``[n, 3]``,
    in the reference frame of the elements."""
    i, o, w = np.radians(inc_deg), np.radians(node_deg), np.radians(argperi_deg)
    co, so, ci, si, cw, sw = np.cos(o), np.sin(o), np.cos(i), np.sin(i), np.cos(w), np.sin(w)
    p = np.stack([co * cw - so * sw * ci, so * cw + co * sw * ci, sw * si], axis=-1)
    q = np.stack([-co * sw - so * cw * ci, -so * sw + co * cw * ci, cw * si], axis=-1)
    return p, q


def cometary_to_cartesian(
    q_au: npt.ArrayLike,
    e: npt.ArrayLike,
    inc_deg: npt.ArrayLike,
    node_deg: npt.ArrayLike,
    argperi_deg: npt.ArrayLike,
    tp_mjd_tdb: npt.ArrayLike,
    epoch_mjd_tdb: npt.ArrayLike,
    mu_au3_per_day2: float = GM_SUN_AU3_PER_DAY2,
) -> tuple[FloatArray, FloatArray]:
    """Cometary elements (perihelion distance AU, eccentricity, angles deg, time of
    perihelion MJD TDB) -> state at ``epoch`` in the elements' frame, AU and AU/day.
    Valid for any e >= 0 (the state at perihelion is propagated by universal Kepler)."""
    qq = np.asarray(q_au, np.float64)
    ee = np.asarray(e, np.float64)
    p, qv = _rotation_pqw(
        np.asarray(inc_deg, np.float64),
        np.asarray(node_deg, np.float64),
        np.asarray(argperi_deg, np.float64),
    )
    vp = np.sqrt(mu_au3_per_day2 * (1.0 + ee) / qq)
    r_peri = qq[..., None] * p
    v_peri = vp[..., None] * qv
    dt = np.asarray(epoch_mjd_tdb, np.float64) - np.asarray(tp_mjd_tdb, np.float64)
    return propagate_two_body(r_peri, v_peri, dt, mu_au3_per_day2)


def keplerian_to_cartesian(
    a_au: npt.ArrayLike,
    e: npt.ArrayLike,
    inc_deg: npt.ArrayLike,
    node_deg: npt.ArrayLike,
    argperi_deg: npt.ArrayLike,
    mean_anomaly_deg: npt.ArrayLike,
    mu_au3_per_day2: float = GM_SUN_AU3_PER_DAY2,
) -> tuple[FloatArray, FloatArray]:
    """Keplerian elements -> state in the elements' frame (AU, AU/day). Elliptic orbits
    (0 <= e < 1, a > 0) and hyperbolic ones (e > 1, a < 0, M the hyperbolic mean
    anomaly)."""
    a = np.asarray(a_au, np.float64)
    ee = np.asarray(e, np.float64)
    m = np.radians(np.asarray(mean_anomaly_deg, np.float64))
    n = np.sqrt(mu_au3_per_day2 / np.abs(a) ** 3)  # rad/day
    q = a * (1.0 - ee)
    # M = n (t - tp): express as a time of perihelion relative to epoch 0.
    tp = -m / n
    return cometary_to_cartesian(q, ee, inc_deg, node_deg, argperi_deg, tp, 0.0, mu_au3_per_day2)


def cartesian_to_cometary(
    pos_au: npt.ArrayLike,
    vel_au_per_day: npt.ArrayLike,
    epoch_mjd_tdb: npt.ArrayLike,
    mu_au3_per_day2: float = GM_SUN_AU3_PER_DAY2,
) -> dict[str, FloatArray]:
    """State ``[n, 3]`` -> osculating elements in the same frame.

    Returns a dict with ``q_au, e, inc_deg, node_deg, argperi_deg, tp_mjd_tdb, a_au``
    (``a_au`` negative for hyperbolic, inf for parabolic) and ``mean_anomaly_deg``
    (NaN for parabolic).
    """
    r = np.atleast_2d(np.asarray(pos_au, np.float64))
    v = np.atleast_2d(np.asarray(vel_au_per_day, np.float64))
    mu = mu_au3_per_day2
    rn = np.linalg.norm(r, axis=1)
    h = np.cross(r, v)
    hn = np.linalg.norm(h, axis=1)
    evec = np.cross(v, h) / mu - r / rn[:, None]
    e = np.linalg.norm(evec, axis=1)
    inc = np.degrees(np.arccos(np.clip(h[:, 2] / hn, -1.0, 1.0)))
    node_vec = np.stack([-h[:, 1], h[:, 0], np.zeros_like(hn)], axis=1)
    nn = np.linalg.norm(node_vec, axis=1)
    # Equatorial orbits: put the node on the x axis.
    node_vec = np.where(nn[:, None] > 1e-15 * hn[:, None], node_vec, np.array([1.0, 0.0, 0.0]))
    nn = np.linalg.norm(node_vec, axis=1)
    node = np.degrees(np.arctan2(node_vec[:, 1], node_vec[:, 0])) % 360.0
    # Circular orbits: perihelion at the node.
    ehat = np.where(
        e[:, None] > 1e-15, evec / np.maximum(e, 1e-300)[:, None], node_vec / nn[:, None]
    )
    nhat = node_vec / nn[:, None]
    hhat = h / hn[:, None]
    argp = np.degrees(
        np.arctan2(np.sum(np.cross(nhat, ehat) * hhat, axis=1), np.sum(nhat * ehat, axis=1))
    ) % 360.0
    nu = np.arctan2(np.sum(np.cross(ehat, r) * hhat, axis=1), np.sum(ehat * r, axis=1))
    p = hn * hn / mu
    q = p / (1.0 + e)
    energy = 0.5 * np.sum(v * v, axis=1) - mu / rn
    with np.errstate(divide="ignore", invalid="ignore"):
        a = -mu / (2.0 * energy)
    ell = e < 1.0 - 1e-12
    hyp = e > 1.0 + 1e-12
    par = ~ell & ~hyp
    dt_peri = np.empty_like(e)  # time since perihelion, days
    mean_anom = np.full_like(e, np.nan)
    # Elliptic: eccentric anomaly from the true anomaly.
    big_e = 2.0 * np.arctan2(np.sqrt(1.0 - e[ell]) * np.sin(nu[ell] / 2),
                             np.sqrt(1.0 + e[ell]) * np.cos(nu[ell] / 2))
    m_ell = big_e - e[ell] * np.sin(big_e)
    dt_peri[ell] = m_ell / np.sqrt(mu / a[ell] ** 3)
    mean_anom[ell] = np.degrees(m_ell) % 360.0
    # Hyperbolic: hyperbolic anomaly.
    eh = e[hyp]
    big_h = 2.0 * np.arctanh(np.sqrt((eh - 1.0) / (eh + 1.0)) * np.tan(nu[hyp] / 2))
    m_hyp = eh * np.sinh(big_h) - big_h
    dt_peri[hyp] = m_hyp / np.sqrt(mu / (-a[hyp]) ** 3)
    mean_anom[hyp] = np.degrees(m_hyp)
    # Parabolic: Barker's equation.
    dd = np.tan(nu[par] / 2)
    dt_peri[par] = np.sqrt(2.0 * q[par] ** 3 / mu) * (dd + dd**3 / 3.0)
    a = np.where(par, np.inf, a)
    tp = np.asarray(epoch_mjd_tdb, np.float64) - dt_peri
    return {
        "q_au": q,
        "e": e,
        "inc_deg": inc,
        "node_deg": node,
        "argperi_deg": argp,
        "tp_mjd_tdb": tp,
        "a_au": a,
        "mean_anomaly_deg": mean_anom,
    }


# --------------------------------------------------------------------------------------
# Validation shared by the readers


def _element_errors(fmt: str, el: FloatArray) -> npt.NDArray[np.object_]:
    """Per-row reason an element set ``el[n, 6]`` of format ``fmt`` is invalid, or ''."""
    n = el.shape[0]
    reason = np.full(n, "", dtype=object)

    def flag(mask: BoolArray, why: str) -> None:
        reason[(reason == "") & mask] = why

    flag(~np.all(np.isfinite(el), axis=1), "non-finite element")
    base = fmt.removeprefix("B")
    if base in ("KEP", "COM"):
        e = el[:, 1]
        inc = el[:, 2]
        flag(e < 0, "eccentricity < 0")
        flag((inc < 0) | (inc > 180), "inclination outside [0, 180] deg")
    if base == "COM":
        flag(el[:, 0] <= 0, "perihelion distance q <= 0")
        flag(el[:, 1] > 1e3, "eccentricity implausibly large (> 1000)")
    elif base == "KEP":
        a, e = el[:, 0], el[:, 1]
        flag(a == 0, "semi-major axis a = 0")
        flag((e < 1) & (a < 0), "elliptic orbit (e < 1) with negative semi-major axis")
        flag((e > 1) & (a > 0), "hyperbolic orbit (e > 1) needs a negative semi-major axis")
        flag(e == 1, "parabolic orbit cannot be given as KEP; use COM")
    elif base == "CART":
        r = np.linalg.norm(el[:, :3], axis=1)
        flag(r <= 0, "zero position vector")
    return reason


def _elements_to_state(
    fmt: str, el: FloatArray, epoch: FloatArray
) -> tuple[FloatArray, FloatArray, bool]:
    """Element rows of one format (ecliptic J2000) -> ICRS state, barycentric flag."""
    bary = fmt.startswith("B")
    mu = GM_TOTAL_AU3_PER_DAY2 if bary else GM_SUN_AU3_PER_DAY2
    base = fmt.removeprefix("B")
    if base == "CART":
        pos, vel = el[:, :3], el[:, 3:]
    elif base == "COM":
        q, e, inc, node, peri, tp = el.T
        pos, vel = cometary_to_cartesian(q, e, inc, node, peri, tp, epoch, mu_au3_per_day2=mu)
    elif base == "KEP":
        a, e, inc, node, peri, ma = el.T
        pos, vel = keplerian_to_cartesian(a, e, inc, node, peri, ma, mu_au3_per_day2=mu)
    else:  # pragma: no cover - checked by the callers
        raise OrbitFormatError(f"unknown orbit format {fmt!r}")
    return ecliptic_to_equatorial(pos), ecliptic_to_equatorial(vel), bary


def _open_text(path: Path) -> str:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path) as gz:
            raw = gz.read()
    else:
        raw = path.read_bytes()
    return raw.decode("latin-1")


def _raise_or_skip(
    path: Path, line_no: npt.NDArray[np.int64], reason: npt.NDArray[np.object_], skip_bad: bool
) -> tuple[BoolArray, int, tuple[tuple[int, str], ...]]:
    bad = reason != ""
    if not np.any(bad):
        return ~bad, 0, ()
    if not skip_bad:
        i = int(np.flatnonzero(bad)[0])
        raise OrbitFormatError(
            f"{path}:{int(line_no[i])}: {reason[i]} "
            f"({int(bad.sum())} bad line(s) in total; use skip_bad=True to skip them)"
        )
    idx = np.flatnonzero(bad)[:1000]
    return ~bad, int(bad.sum()), tuple((int(line_no[i]), str(reason[i])) for i in idx)


# --------------------------------------------------------------------------------------
# MPCORB.DAT


def _packed_char_value(c: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """'0'-'9' -> 0-9, 'A'-'Z' -> 10-35, 'a'-'z' -> 36-61; anything else -> -1."""
    v = np.full(c.shape, -1, dtype=np.int64)
    digit = (c >= ord("0")) & (c <= ord("9"))
    upper = (c >= ord("A")) & (c <= ord("Z"))
    lower = (c >= ord("a")) & (c <= ord("z"))
    v[digit] = c[digit] - ord("0")
    v[upper] = c[upper] - ord("A") + 10
    v[lower] = c[lower] - ord("a") + 36
    return v


def _civil_to_mjd(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.ArrayLike
) -> FloatArray:
    """Gregorian calendar date (day may be fractional) -> MJD, vectorised."""
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    jdn = (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045
    return np.asarray(jdn - 2400001 + np.asarray(day, np.float64), dtype=np.float64)


def unpack_epochs_mjd(packed: Sequence[str] | npt.ArrayLike) -> FloatArray:
    """MPC packed epochs (e.g. ``'K2555'`` = 2025 May 5.0 TT) -> MJD; NaN if malformed.

    Century letter I/J/K/L = 18/19/20/21, two year digits, month 1-9 A-C, day 1-9 A-V.
    An optional 6th+ character string of decimal digits gives the fraction of day.
    """
    arr = np.asarray(packed, dtype="U").reshape(-1)
    if arr.size == 0:
        return np.zeros(0)
    b = np.char.ljust(arr, 5).astype("S5").view(np.uint8).reshape(-1, 5)
    vals = _packed_char_value(b)
    century = vals[:, 0] - 18 + 18  # I=18, J=19, K=20, L=21
    ok = (b[:, 0] >= ord("I")) & (b[:, 0] <= ord("L"))
    yy_ok = (vals[:, 1] >= 0) & (vals[:, 1] <= 9) & (vals[:, 2] >= 0) & (vals[:, 2] <= 9)
    month = vals[:, 3]
    day = vals[:, 4]
    ok &= yy_ok & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    year = century * 100 + vals[:, 1] * 10 + vals[:, 2]
    mjd = _civil_to_mjd(year, np.where(ok, month, 1), np.where(ok, day, 1))
    # Optional fractional day (rare, e.g. 'K2555' + '5' -> .5); digits only.
    frac_str = np.char.strip(np.asarray([s[5:] for s in arr], dtype="U"))
    has_frac = frac_str != ""
    if np.any(has_frac):
        digits = np.char.isdigit(frac_str) | ~has_frac
        ok &= digits
        fs = np.where(has_frac & digits, frac_str, "0")
        mjd = mjd + np.array([float("0." + s) for s in fs])
    return np.where(ok, mjd, np.nan)


# Fixed columns (0-based, end exclusive) of MPCORB.DAT.
_MPC_COLS: Final[dict[str, tuple[int, int]]] = {
    "id": (0, 7),
    "H": (8, 13),
    "G": (14, 19),
    "epoch": (20, 25),
    "M": (26, 35),
    "peri": (37, 46),
    "node": (48, 57),
    "incl": (59, 68),
    "e": (70, 79),
    "a": (92, 103),
    "name": (166, 194),
}


def _fixed_float(col: npt.NDArray[np.bytes_]) -> FloatArray:
    """Bytes fields -> float, NaN for blank or malformed fields (vectorised via pandas)."""
    s = pd.Series(np.char.strip(col).astype("U"))
    return np.asarray(pd.to_numeric(s.replace("", np.nan), errors="coerce"), dtype=np.float64)


def read_mpcorb(path: str | Path, *, skip_bad: bool = False) -> OrbitTable:
    """Read MPCORB.DAT (plain or gzipped) into an :class:`OrbitTable`.

    Lines up to and including the ``-----`` separator are a header and skipped (if the
    file has no separator, nothing is skipped); blank lines are skipped. A blank H gives
    NaN; a blank G gives NaN (0.15 is used for magnitudes). A malformed line raises
    :class:`OrbitFormatError` naming the file and line number, or with ``skip_bad`` is
    skipped and counted in ``n_skipped``.
    """
    p = Path(path)
    lines = _open_text(p).splitlines()
    start = 0
    for i, line in enumerate(lines[:200]):
        if line.startswith("-----"):
            start = i + 1
            break
    body = np.asarray(lines[start:], dtype="U")
    line_no = np.arange(start + 1, start + 1 + body.size, dtype=np.int64)
    keep = np.char.str_len(np.char.rstrip(body)) > 0
    body, line_no = body[keep], line_no[keep]
    fixed = np.char.ljust(body, 202).astype("S202")
    chars = fixed.view(np.uint8).reshape(-1, 202)

    def col(key: str) -> npt.NDArray[np.bytes_]:
        lo, hi = _MPC_COLS[key]
        return np.ascontiguousarray(chars[:, lo:hi]).view(f"S{hi - lo}").reshape(-1)

    ids = np.char.strip(col("id")).astype("U").astype(object)
    names = np.char.strip(col("name")).astype("U").astype(object)
    names = np.where(names == "", ids, names)
    h = _fixed_float(col("H"))
    g = _fixed_float(col("G"))
    epoch = unpack_epochs_mjd(np.char.strip(col("epoch")).astype("U"))
    el = np.stack(
        [_fixed_float(col(k)) for k in ("a", "e", "incl", "node", "peri", "M")], axis=1
    )
    reason = _element_errors("KEP", el)
    reason[(reason == "") & (ids == "")] = "missing designation (columns 1-7)"
    reason[(reason == "") & ~np.isfinite(epoch)] = "malformed packed epoch (columns 21-25)"
    h_field = np.char.strip(col("H"))
    reason[(reason == "") & (h_field != b"") & ~np.isfinite(h)] = "malformed H (columns 9-13)"
    g_field = np.char.strip(col("G"))
    reason[(reason == "") & (g_field != b"") & ~np.isfinite(g)] = "malformed G (columns 15-19)"
    reason[(reason == "") & (el[:, 1] >= 1)] = "MPCORB orbit with e >= 1"
    good, n_bad, skipped = _raise_or_skip(p, line_no, reason, skip_bad)
    pos, vel, _ = _elements_to_state("KEP", el[good], epoch[good])
    return OrbitTable(
        object_id=ids[good],
        name=names[good],
        epoch_mjd_tdb=epoch[good],
        pos_au=pos,
        vel_au_per_day=vel,
        barycentric=np.zeros(int(good.sum()), dtype=bool),
        h_mag=h[good],
        g_slope=g[good],
        n_skipped=n_bad,
        skipped=skipped,
    )


# --------------------------------------------------------------------------------------
# OpenOrb / Sorcha


_ID_NAMES: Final = ("objid", "!!oid", "oid", "!!objid", "#objid", "object_id")
_EPOCH_NAMES: Final = ("epochmjd_tdb", "t_0", "epoch", "epoch_mjd_tdb", "epochmjd")
_H_NAMES: Final = ("h", "h_v", "hv")
_G_NAMES: Final = ("g", "gs", "g_slope")
# Accepted names of the six element columns (after ObjID and FORMAT), by format.
_ELEMENT_NAMES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "COM": (
        ("q",), ("e",), ("inc", "i", "incl"), ("node", "omega", "om", "raan"),
        ("argperi", "w", "peri", "argperi_deg"), ("t_p_mjd_tdb", "t_p", "tp", "tperi"),
    ),
    "KEP": (
        ("a",), ("e",), ("inc", "i", "incl"), ("node", "omega", "om", "raan"),
        ("argperi", "w", "peri"), ("ma", "m", "meananom", "mean_anomaly"),
    ),
    "CART": (
        ("x",), ("y",), ("z",), ("xdot", "vx", "dx/dt"), ("ydot", "vy", "dy/dt"),
        ("zdot", "vz", "dz/dt"),
    ),
}


def _split_fields(
    lines: list[str], sep: str | None, width: int
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Split data lines into ``width`` string columns; also return each line's field count
    (-1 where it is known only to be wrong). Rows with too few fields are padded."""
    if not lines:
        return pd.DataFrame(columns=range(width), dtype=object), np.zeros(0, dtype=np.int64)
    try:  # fast path: pandas' C parser
        # Whitespace-separated rows cannot have empty fields, so a missing value (NaN)
        # means a short row; CSV rows are counted by their separators.
        df = pd.read_csv(
            io.StringIO("\n".join(lines)), header=None, names=range(width), dtype=str,
            sep=sep if sep else r"\s+", skipinitialspace=True, engine="c",
            keep_default_na=not sep, na_values=None if not sep else [],
        )
        if len(df) == len(lines):
            if sep:
                counts = np.char.count(np.asarray(lines, dtype=str), sep).astype(np.int64) + 1
            else:
                counts = np.where(df.isna().any(axis=1).to_numpy(), -1, width).astype(np.int64)
            df = df.fillna("").apply(lambda c: c.str.strip())
            return df, counts
    except (pd.errors.ParserError, ValueError):
        pass
    # Slow path (some line has too many fields): split line by line.
    tokens = [[t.strip() for t in ln.split(sep)] if sep else ln.split() for ln in lines]
    counts = np.array([len(t) for t in tokens], dtype=np.int64)
    table = np.array(
        [t if len(t) == width else ([*t, *[""] * width])[:width] for t in tokens], dtype=object
    ).reshape(len(lines), width)
    return pd.DataFrame(table), counts


def read_openorb(path: str | Path, *, skip_bad: bool = False) -> OrbitTable:
    """Read an OpenOrb/Sorcha orbit file (CSV or whitespace separated, header first).

    Columns: ``ObjID`` (or OpenOrb's ``!!OID``), ``FORMAT`` (KEP, COM, CART, BKEP, BCOM,
    BCART), the six elements of that format, the epoch (``epochMJD_TDB`` or ``t_0``,
    MJD TDB) and optionally ``H`` and ``G``. Elements are ecliptic J2000, angles in
    degrees, distances AU, velocities AU/day, ``t_p`` MJD TDB. The six element columns are
    the six columns after ``FORMAT`` (as both tools write them), and their names are
    checked against the format of each row. Lines starting with '#' (after the header)
    are comments. Bad lines raise :class:`OrbitFormatError` with file and line number,
    or with ``skip_bad`` are skipped and counted.
    """
    p = Path(path)
    text = _open_text(p)
    lines = text.splitlines()
    hdr_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if hdr_idx is None:
        raise OrbitFormatError(f"{p}: empty orbit file")
    header_line = lines[hdr_idx]
    sep = "," if "," in header_line else None
    header = [h.strip() for h in (header_line.split(sep) if sep else header_line.split())]
    lower = [h.lower() for h in header]
    if len(header) < 9 or lower[0] not in _ID_NAMES or lower[1] != "format":
        raise OrbitFormatError(
            f"{p}:{hdr_idx + 1}: not an OpenOrb/Sorcha header (want 'ObjID FORMAT <6 elements>"
            f" epochMJD_TDB [H] [G]'), got {header_line.strip()!r}"
        )

    def find(names: tuple[str, ...]) -> int | None:
        return next((i for i, h in enumerate(lower) if h in names), None)

    i_epoch = find(_EPOCH_NAMES)
    if i_epoch is None:
        raise OrbitFormatError(f"{p}:{hdr_idx + 1}: no epoch column (epochMJD_TDB or t_0)")
    i_h, i_g = find(_H_NAMES), find(_G_NAMES)

    data_lines = lines[hdr_idx + 1 :]
    line_no_all = np.arange(hdr_idx + 2, hdr_idx + 2 + len(data_lines), dtype=np.int64)
    stripped = np.char.strip(np.asarray(data_lines, dtype="U")) if data_lines else np.zeros(0, "U1")
    keep = (np.char.str_len(stripped) > 0) & ~np.char.startswith(stripped, "#")
    kept = [data_lines[i] for i in np.flatnonzero(keep)]
    line_no = line_no_all[keep]
    width = len(header)
    df, counts = _split_fields(kept, sep, width)
    n = len(df)

    def num(i: int | None) -> FloatArray:
        if i is None:
            return np.full(n, np.nan)
        return np.asarray(pd.to_numeric(df[i], errors="coerce"), dtype=np.float64)

    ids = df[0].astype(str).to_numpy(dtype=object)
    fmt = df[1].astype(str).str.upper().to_numpy(dtype=object)
    el = np.stack([num(2 + k) for k in range(6)], axis=1)
    epoch = num(i_epoch)
    h = num(i_h)
    g = num(i_g)
    reason = np.full(n, "", dtype=object)
    reason[counts != len(header)] = f"expected {len(header)} fields"
    reason[(reason == "") & (ids == "")] = "missing ObjID"
    known = np.isin(fmt, ORBIT_FORMATS)
    reason[(reason == "") & ~known] = "unknown FORMAT (want KEP, COM, CART, BKEP, BCOM or BCART)"
    reason[(reason == "") & ~np.isfinite(epoch)] = "missing or non-numeric epoch"
    if i_h is not None:
        bad_h = df[i_h].astype(str).to_numpy(dtype=object)
        reason[(reason == "") & (bad_h != "") & ~np.isfinite(h)
               & ~np.isin(bad_h, ["nan", "NaN", "NA", "-"])] = "malformed H"
    pos = np.full((n, 3), np.nan)
    vel = np.full((n, 3), np.nan)
    bary = np.zeros(n, dtype=bool)
    for f in ORBIT_FORMATS:
        rows = (fmt == f) & (reason == "")
        if not np.any(rows):
            continue
        names = _ELEMENT_NAMES[f.removeprefix("B")]
        for k, allowed in enumerate(names):
            if lower[2 + k] not in allowed:
                raise OrbitFormatError(
                    f"{p}:{hdr_idx + 1}: column {2 + k + 1} is {header[2 + k]!r}, but FORMAT "
                    f"{f} needs one of {allowed} there"
                )
        r = _element_errors(f, el[rows])
        reason[np.flatnonzero(rows)] = r
        rows &= reason == ""
        if np.any(rows):
            pos[rows], vel[rows], bary[rows] = _elements_to_state(f, el[rows], epoch[rows])
    reason[(reason == "") & ~np.all(np.isfinite(pos) & np.isfinite(vel), axis=1)] = (
        "elements do not give a finite state"
    )
    good, n_bad, skipped = _raise_or_skip(p, line_no, reason, skip_bad)
    return OrbitTable(
        object_id=ids[good],
        name=ids[good].copy(),
        epoch_mjd_tdb=epoch[good],
        pos_au=pos[good],
        vel_au_per_day=vel[good],
        barycentric=bary[good],
        h_mag=h[good],
        g_slope=g[good],
        n_skipped=n_bad,
        skipped=skipped,
    )


def read_orbits(path: str | Path, *, skip_bad: bool = False) -> OrbitTable:
    """Read an orbit file, detecting MPCORB.DAT vs OpenOrb/Sorcha from its first line."""
    p = Path(path)
    text = _open_text(p)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    token = first.replace(",", " ").split()[0].lower() if first.split() else ""
    if token in _ID_NAMES:
        return read_openorb(p, skip_bad=skip_bad)
    return read_mpcorb(p, skip_bad=skip_bad)
