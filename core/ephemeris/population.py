"""Synthetic Solar System populations for scale tests, and writers for both input formats.

The mix and element distributions are chosen to resemble the MPC catalogue (~1.4 M
objects, 2025): mostly main-belt asteroids, a few percent NEOs, Hungarias, Mars-crossers,
Hildas and Jupiter Trojans, and small numbers of Centaurs and TNOs (classicals, plutinos,
scattered disc). Elements are heliocentric, ecliptic J2000 (the convention of both file
formats). Absolute magnitudes follow power-law size distributions, log N(<H) ~ slope * H,
within each class's observed range. Everything is vectorised and seeded; 1.3 M objects
take a few seconds.

Numbers are indicative, not a fit to the catalogue: they give the right mix of orbital
periods, distances and sky motions for timing and coverage tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from .orbits import OrbitTable, ecliptic_to_equatorial, keplerian_to_cartesian
from .planets import GM_SUN_AU3_PER_DAY2

FloatArray = npt.NDArray[np.float64]

#: Fraction of each class in the synthetic catalogue.
CLASS_FRACTIONS: Final[dict[str, float]] = {
    "main_belt": 0.885,
    "hungaria": 0.022,
    "mars_crosser": 0.015,
    "neo": 0.027,
    "hilda": 0.006,
    "trojan": 0.011,
    "centaur": 0.0008,
    "tno": 0.0032,
}
_CLASS_NAMES: Final = tuple(CLASS_FRACTIONS)


@dataclass(frozen=True)
class KeplerianPopulation:
    """Heliocentric ecliptic J2000 Keplerian elements of ``n`` synthetic objects.

    Attributes: ``object_id`` (packed numbered designation), ``dyn_class`` (one of
    ``CLASS_FRACTIONS``), ``a_au``, ``e``, ``inc_deg``, ``node_deg``, ``argperi_deg``,
    ``mean_anomaly_deg``, ``epoch_mjd_tdb``, ``h_mag``, ``g_slope``.
    """

    object_id: npt.NDArray[np.object_]
    dyn_class: npt.NDArray[np.object_]
    a_au: FloatArray
    e: FloatArray
    inc_deg: FloatArray
    node_deg: FloatArray
    argperi_deg: FloatArray
    mean_anomaly_deg: FloatArray
    epoch_mjd_tdb: FloatArray
    h_mag: FloatArray
    g_slope: FloatArray

    def __len__(self) -> int:
        return len(self.object_id)

    def to_orbit_table(self) -> OrbitTable:
        """The population as an :class:`OrbitTable` (ICRS states at epoch)."""
        pos, vel = keplerian_to_cartesian(
            self.a_au, self.e, self.inc_deg, self.node_deg, self.argperi_deg,
            self.mean_anomaly_deg, GM_SUN_AU3_PER_DAY2,
        )
        return OrbitTable.from_states(
            self.object_id, self.epoch_mjd_tdb, ecliptic_to_equatorial(pos),
            ecliptic_to_equatorial(vel), h_mag=self.h_mag, g_slope=self.g_slope,
        )


def _power_law_h(rng: np.random.Generator, n: int, h_min: float, h_max: float,
                 slope: float) -> FloatArray:
    """H with cumulative N(<H) proportional to 10**(slope * H) on [h_min, h_max]."""
    u = rng.random(n)
    span = 10.0 ** (slope * (h_max - h_min)) - 1.0
    return np.asarray(h_min + np.log10(1.0 + u * span) / slope, dtype=np.float64)


def _rayleigh_clipped(rng: np.random.Generator, n: int, sigma: float, hi: float) -> FloatArray:
    x = rng.rayleigh(sigma, n)
    return np.asarray(np.where(x > hi, rng.uniform(0, hi, n), x), dtype=np.float64)


def _main_belt_a(rng: np.random.Generator, n: int) -> FloatArray:
    """Semi-major axes 2.1-3.3 AU, denser in the middle belt, Kirkwood gaps emptied."""
    a = rng.triangular(2.1, 2.7, 3.3, n)
    for gap in (2.502, 2.825, 2.958, 3.279):  # 3:1, 5:2, 7:3, 2:1 resonances with Jupiter
        inside = np.abs(a - gap) < 0.012
        a[inside] += np.where(rng.random(int(inside.sum())) < 0.5, -0.03, 0.03)
    return a


def _jupiter_mean_longitude_deg(mjd_tdb: FloatArray) -> FloatArray:
    # Mean elements of Jupiter at J2000 (Standish 1992): L0 = 34.40 deg, 0.08309 deg/day.
    return np.asarray((34.40438 + 0.0830853 * (mjd_tdb - 51544.5)) % 360.0, dtype=np.float64)


def generate_population(
    n: int,
    *,
    seed: int = 0,
    epoch_mjd_tdb: float = 60800.0,
    epoch_spread_days: float = 0.0,
) -> KeplerianPopulation:
    """A synthetic catalogue of ``n`` objects (see :data:`CLASS_FRACTIONS`).

    Args:
        n: number of objects.
        seed: random seed (same seed, same catalogue).
        epoch_mjd_tdb: orbit epoch (MJD TDB).
        epoch_spread_days: if > 0, epochs are spread uniformly over
            ``epoch_mjd_tdb - spread .. epoch_mjd_tdb`` in whole days (as in a catalogue
            that mixes orbit updates), otherwise all orbits share one epoch.
    """
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.array(list(CLASS_FRACTIONS.values())) / sum(CLASS_FRACTIONS.values()))
    a_parts, e_parts, i_parts, h_parts, g_parts = [], [], [], [], []
    for name, k in zip(_CLASS_NAMES, counts, strict=True):
        if name == "main_belt":
            a = _main_belt_a(rng, k)
            e = _rayleigh_clipped(rng, k, 0.12, 0.35)
            inc = _rayleigh_clipped(rng, k, 7.0, 30.0)
            h = _power_law_h(rng, k, 9.0, 19.5, 0.35)
        elif name == "hungaria":
            a = rng.uniform(1.78, 2.0, k)
            e = rng.uniform(0.02, 0.18, k)
            inc = rng.uniform(16.0, 34.0, k)
            h = _power_law_h(rng, k, 12.0, 19.5, 0.4)
        elif name == "mars_crosser":
            a = rng.uniform(1.6, 3.0, k)
            q = rng.uniform(1.3, 1.666, k)
            e = 1.0 - q / a
            inc = _rayleigh_clipped(rng, k, 12.0, 45.0)
            h = _power_law_h(rng, k, 12.0, 20.0, 0.4)
        elif name == "neo":
            a = np.clip(rng.lognormal(np.log(1.7), 0.35, k), 0.6, 4.2)
            q_max = np.minimum(1.3, a * 0.98)
            q = rng.uniform(0.1, 1.0, k) * q_max
            q = np.maximum(q, a * (1.0 - 0.97))
            e = 1.0 - q / a
            inc = _rayleigh_clipped(rng, k, 13.0, 70.0)
            h = _power_law_h(rng, k, 13.0, 28.0, 0.45)
        elif name == "hilda":
            a = rng.normal(3.97, 0.04, k)
            e = rng.uniform(0.05, 0.3, k)
            inc = _rayleigh_clipped(rng, k, 8.0, 25.0)
            h = _power_law_h(rng, k, 10.0, 17.5, 0.35)
        elif name == "trojan":
            a = rng.normal(5.20, 0.05, k)
            e = _rayleigh_clipped(rng, k, 0.07, 0.2)
            inc = _rayleigh_clipped(rng, k, 12.0, 40.0)
            h = _power_law_h(rng, k, 8.0, 16.5, 0.35)
        elif name == "centaur":
            a = rng.uniform(6.0, 29.0, k)
            q = rng.uniform(5.2, np.maximum(5.3, a * 0.95), k)
            e = np.clip(1.0 - q / a, 0.0, 0.8)
            inc = _rayleigh_clipped(rng, k, 15.0, 60.0)
            h = _power_law_h(rng, k, 6.0, 14.0, 0.4)
        else:  # tno: 60 % classical, 25 % plutinos, 15 % scattered disc
            sub = rng.choice(3, size=k, p=[0.6, 0.25, 0.15])
            a = np.where(sub == 0, rng.uniform(42.0, 47.5, k),
                         np.where(sub == 1, rng.normal(39.45, 0.15, k), rng.uniform(50.0, 120.0, k)))
            e = np.where(sub == 0, _rayleigh_clipped(rng, k, 0.06, 0.2),
                         np.where(sub == 1, rng.uniform(0.05, 0.3, k), rng.uniform(0.2, 0.6, k)))
            inc = np.where(sub == 0, _rayleigh_clipped(rng, k, 5.0, 35.0),
                           _rayleigh_clipped(rng, k, 15.0, 50.0))
            h = _power_law_h(rng, k, 3.5, 10.0, 0.6)
        a_parts.append(a)
        e_parts.append(e)
        i_parts.append(inc)
        h_parts.append(h)
        g_parts.append(np.full(k, 0.15))
    a_all = np.concatenate(a_parts)
    e_all = np.clip(np.concatenate(e_parts), 0.0, 0.98)
    inc_all = np.concatenate(i_parts)
    cls = np.repeat(np.array(_CLASS_NAMES, dtype=object), counts)
    node = rng.uniform(0.0, 360.0, n)
    peri = rng.uniform(0.0, 360.0, n)
    mean_anom = rng.uniform(0.0, 360.0, n)
    if epoch_spread_days > 0:
        epochs = epoch_mjd_tdb - np.floor(rng.uniform(0.0, epoch_spread_days, n))
    else:
        epochs = np.full(n, float(epoch_mjd_tdb))
    # Trojans librate around Jupiter's L4/L5 points: mean longitude 60 deg ahead/behind.
    troj = cls == "trojan"
    lam = _jupiter_mean_longitude_deg(epochs[troj]) + np.where(
        rng.random(int(troj.sum())) < 0.6, 60.0, -60.0
    ) + rng.normal(0.0, 12.0, int(troj.sum()))
    mean_anom[troj] = (lam - node[troj] - peri[troj]) % 360.0
    # Shuffle so classes are interleaved like a real catalogue; ids follow the final order.
    perm = rng.permutation(n)
    ids = pack_numbers(np.arange(1, n + 1))
    return KeplerianPopulation(
        object_id=ids,
        dyn_class=cls[perm],
        a_au=a_all[perm],
        e=e_all[perm],
        inc_deg=inc_all[perm],
        node_deg=node[perm],
        argperi_deg=peri[perm],
        mean_anomaly_deg=mean_anom[perm],
        epoch_mjd_tdb=epochs[perm],
        h_mag=np.round(np.concatenate(h_parts)[perm], 2),
        g_slope=np.concatenate(g_parts)[perm],
    )


_B62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def pack_numbers(numbers: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """MPC packed form of minor-planet numbers 1..15,396,335 (5 characters), vectorised:
    ``12345`` -> ``'12345'``, ``123456`` -> ``'C3456'``, ``620000`` -> ``'~0000'``."""
    num = np.asarray(numbers, dtype=np.int64)
    b62 = np.frombuffer(_B62.encode(), dtype=np.uint8)
    out = np.zeros((num.size, 5), dtype=np.uint8)
    small = num < 620_000
    hi, lo = np.divmod(num, 10_000)
    out[:, 0] = b62[np.clip(hi, 0, 61)]
    for k in range(4):
        out[:, 4 - k] = ord("0") + (lo // 10**k) % 10
    ext = ~small
    rest = num[ext] - 620_000
    out[ext, 0] = ord("~")
    for k in range(4):
        out[ext, 4 - k] = b62[(rest // 62**k) % 62]
    return np.asarray(out.view("S5").reshape(-1).astype("U5"), dtype=object)


def pack_epochs(mjd: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """MPC packed epochs of whole-day MJDs (0h TT): 60800 -> 'K2555' (2025 May 5)."""
    m = np.floor(np.asarray(mjd, dtype=np.float64)).astype(np.int64)
    # Civil date from the Julian day number (Fliegel & Van Flandern).
    jd = m + 2400001
    ell = jd + 68569
    nn = 4 * ell // 146097
    ell = ell - (146097 * nn + 3) // 4
    i = 4000 * (ell + 1) // 1461001
    ell = ell - 1461 * i // 4 + 31
    j = 80 * ell // 2447
    day = ell - 2447 * j // 80
    ell = j // 11
    month = j + 2 - 12 * ell
    year = 100 * (nn - 49) + i + ell
    b62 = np.frombuffer(_B62.encode(), dtype=np.uint8)
    out = np.zeros((m.size, 5), dtype=np.uint8)
    out[:, 0] = b62[year // 100]  # 18 -> 'I', 19 -> 'J', 20 -> 'K'
    out[:, 1] = ord("0") + (year % 100) // 10
    out[:, 2] = ord("0") + year % 10
    out[:, 3] = b62[month]
    out[:, 4] = b62[day]
    return np.asarray(out.view("S5").reshape(-1).astype("U5"), dtype=object)


def _fmt(fmt: str, values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    return np.char.mod(fmt, np.asarray(values))


def write_mpcorb(pop: KeplerianPopulation, path: str | Path) -> None:
    """Write ``pop`` as MPCORB.DAT (fixed width, with a short header and ``-----`` line).
    Epochs are rounded down to whole days (MPCORB epochs are 0h TT)."""
    if np.any(pop.epoch_mjd_tdb != np.floor(pop.epoch_mjd_tdb)):
        raise ValueError("MPCORB epochs must be whole days (0h TT)")
    n_ = np.degrees(np.sqrt(GM_SUN_AU3_PER_DAY2 / pop.a_au**3))
    h = np.where(np.isnan(pop.h_mag), "     ", _fmt("%5.2f", np.nan_to_num(pop.h_mag)))
    cols: list[npt.NDArray[np.str_] | str] = [
        np.char.ljust(pop.object_id.astype("U7"), 7), " ", h, " ",
        _fmt("%5.2f", pop.g_slope), " ", pack_epochs(pop.epoch_mjd_tdb).astype("U5"), " ",
        _fmt("%9.5f", pop.mean_anomaly_deg % 360.0), "  ",
        _fmt("%9.5f", pop.argperi_deg % 360.0), "  ",
        _fmt("%9.5f", pop.node_deg % 360.0), "  ",
        _fmt("%9.5f", pop.inc_deg), "  ",
        _fmt("%9.7f", pop.e), " ",
        _fmt("%11.8f", n_), " ",
        _fmt("%11.7f", pop.a_au), "  0 SYNTHETIC  100  10 2000-2025 0.50 M-v 3Ek ssassoc    0000 ",
        np.char.ljust(pop.object_id.astype("U28"), 28), " 20250101",
    ]
    lines: npt.NDArray[np.str_] = np.asarray(cols[0], dtype=np.str_)
    for c in cols[1:]:
        lines = np.char.add(lines, np.asarray(c, dtype=np.str_))
    header = (
        "Synthetic MPCORB-format catalogue written by ssassoc.core.ephemeris.population\n"
        "Des'n     H     G   Epoch     M        Peri.      Node       Incl.       e"
        "            n           a        Reference #Obs #Opp    Arc    rms  Perts   Computer\n"
        + "-" * 160 + "\n"
    )
    Path(path).write_text(header + "\n".join(lines.tolist()) + "\n", encoding="latin-1")


def write_openorb(
    pop: KeplerianPopulation, path: str | Path, *, fmt: str = "KEP", sep: str = ","
) -> None:
    """Write ``pop`` in the OpenOrb/Sorcha format (``fmt`` KEP or COM, heliocentric),
    CSV (``sep=','``) or whitespace separated (``sep=' '``), with H and G columns."""
    if fmt == "KEP":
        elements = {
            "a": pop.a_au, "e": pop.e, "inc": pop.inc_deg, "node": pop.node_deg,
            "argPeri": pop.argperi_deg, "ma": pop.mean_anomaly_deg,
        }
    elif fmt == "COM":
        n_rad = np.sqrt(GM_SUN_AU3_PER_DAY2 / pop.a_au**3)
        m = (pop.mean_anomaly_deg + 180.0) % 360.0 - 180.0
        elements = {
            "q": pop.a_au * (1.0 - pop.e), "e": pop.e, "inc": pop.inc_deg,
            "node": pop.node_deg, "argPeri": pop.argperi_deg,
            "t_p_MJD_TDB": pop.epoch_mjd_tdb - np.radians(m) / n_rad,
        }
    else:
        raise ValueError(f"fmt must be KEP or COM, got {fmt!r}")
    df = pd.DataFrame({"ObjID": pop.object_id, "FORMAT": fmt, **elements,
                       "epochMJD_TDB": pop.epoch_mjd_tdb, "H": pop.h_mag, "G": pop.g_slope})
    df.to_csv(path, sep=sep, index=False, float_format="%.12g")
