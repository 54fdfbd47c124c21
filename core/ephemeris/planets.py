"""Sun, planets, Moon and Pluto from the JPL DE421 kernel shipped in ``skyfield-data``.

Positions are barycentric ICRS (the DE421 frame), AU; velocities AU/day; times MJD TDB.
All functions are vectorised over times. The kernel is opened once per process (memory
mapped by jplephem) and found through the installed package, never downloaded.

Masses are DE421's GM values (Folkner et al. 2008, IPN Progress Report 42-178 / JPL IOM
343R-08-003), converted with the IAU 2012 astronomical unit. Bodies whose satellites
are not modelled separately (Mars, Jupiter, ..., Pluto) are represented by their system
barycentre with the system mass, as DE421 itself does; Earth and Moon are separate
because near-Earth objects pass close to both.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from jplephem.spk import SPK

FloatArray = npt.NDArray[np.float64]

AU_KM: Final = 149_597_870.7
DAY_S: Final = 86_400.0
C_AU_PER_DAY: Final = 299_792.458 * DAY_S / AU_KM
_KM3_S2_TO_AU3_D2: Final = DAY_S**2 / AU_KM**3

# DE421 GM values, km^3/s^2. EMRAT (Earth/Moon mass ratio) = 81.3005690699.
_EMRAT: Final = 81.3005690699
_GM_EMB_KM3_S2: Final = 403_503.236_310
_GM_KM3_S2: Final[dict[str, float]] = {
    "sun": 132_712_440_040.944,
    "mercury": 22_032.090_000,
    "venus": 324_858.592_000,
    "earth": _GM_EMB_KM3_S2 * _EMRAT / (1.0 + _EMRAT),
    "moon": _GM_EMB_KM3_S2 / (1.0 + _EMRAT),
    "mars": 42_828.375_214,
    "jupiter": 126_712_764.800_000,
    "saturn": 37_940_585.200_000,
    "uranus": 5_794_548.600_000,
    "neptune": 6_836_535.000_000,
    "pluto": 977.000_000,
}

#: GM of each perturbing body, AU^3/day^2 (DE421).
GM_AU3_PER_DAY2: Final[dict[str, float]] = {k: v * _KM3_S2_TO_AU3_D2 for k, v in _GM_KM3_S2.items()}
GM_SUN_AU3_PER_DAY2: Final = GM_AU3_PER_DAY2["sun"]
#: Total GM of the modelled Solar System (for barycentric osculating elements).
GM_TOTAL_AU3_PER_DAY2: Final = float(sum(GM_AU3_PER_DAY2.values()))

#: Perturbers in the order used by the integrator.
BODIES: Final = (
    "sun",
    "mercury",
    "venus",
    "earth",
    "moon",
    "mars",
    "jupiter",
    "saturn",
    "uranus",
    "neptune",
    "pluto",
)

# SPK (center, target) chains from the solar-system barycentre (0) to each body.
_CHAINS: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "sun": ((0, 10),),
    "mercury": ((0, 1),),
    "venus": ((0, 2),),
    "earth": ((0, 3), (3, 399)),
    "moon": ((0, 3), (3, 301)),
    "emb": ((0, 3),),
    "mars": ((0, 4),),
    "jupiter": ((0, 5),),
    "saturn": ((0, 6),),
    "uranus": ((0, 7),),
    "neptune": ((0, 8),),
    "pluto": ((0, 9),),
}

MJD_TO_JD: Final = 2_400_000.5


class EphemerisRangeError(ValueError):
    """A time lies outside the DE421 kernel's coverage (1899-07-29 .. 2053-10-09)."""


def de421_path() -> Path:
    """Path of ``de421.bsp`` inside the installed ``skyfield-data`` package."""
    path = Path(str(resources.files("skyfield_data") / "data" / "de421.bsp"))
    if not path.exists():
        raise FileNotFoundError(
            f"DE421 kernel not found at {path}; install the PyPI package 'skyfield-data'"
        )
    return path


@functools.cache
def _kernel() -> SPK:
    return SPK.open(str(de421_path()))


def _check_range(jd: FloatArray) -> None:
    seg = _kernel()[0, 10]
    if jd.size and (np.min(jd) < seg.start_jd or np.max(jd) > seg.end_jd):
        raise EphemerisRangeError(
            f"times JD {np.min(jd):.3f}..{np.max(jd):.3f} outside DE421 coverage "
            f"JD {seg.start_jd:.1f}..{seg.end_jd:.1f}"
        )


def body_state(body: str, mjd_tdb: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Barycentric ICRS state of one body ('sun', 'earth', 'moon', 'emb', 'mars', ...).

    Returns ``(pos_au[n, 3], vel_au_per_day[n, 3])`` for ``mjd_tdb[n]`` (a scalar gives
    arrays of shape (3,)).
    """
    if body not in _CHAINS:
        raise KeyError(f"unknown body {body!r}; known: {sorted(_CHAINS)}")
    t = np.asarray(mjd_tdb, dtype=np.float64)
    flat = np.atleast_1d(t).ravel()
    # jplephem takes the Julian date in two parts; keep the big part exact.
    jd1 = np.floor(flat) + MJD_TO_JD
    jd2 = flat - np.floor(flat)
    _check_range(jd1 + jd2)
    pos = np.zeros((3, flat.size))
    vel = np.zeros((3, flat.size))
    kernel = _kernel()
    for center, target in _CHAINS[body]:
        p, v = kernel[center, target].compute_and_differentiate(jd1, jd2)
        pos += np.asarray(p).reshape(3, -1)
        vel += np.asarray(v).reshape(3, -1)
    pos_au = (pos / AU_KM).T
    vel_au_d = (vel / AU_KM).T  # jplephem velocities are km/day
    if t.ndim == 0:
        return pos_au[0], vel_au_d[0]
    return pos_au.reshape(*t.shape, 3), vel_au_d.reshape(*t.shape, 3)


def perturber_states(mjd_tdb: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """States of all ``BODIES`` at the given times: ``(pos_au[n_body, n_t, 3],
    vel_au_per_day[n_body, n_t, 3])``, barycentric ICRS."""
    t = np.atleast_1d(np.asarray(mjd_tdb, dtype=np.float64))
    states = [body_state(b, t) for b in BODIES]
    return np.stack([s[0] for s in states]), np.stack([s[1] for s in states])


def sun_state(mjd_tdb: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Barycentric ICRS state of the Sun, AU and AU/day."""
    return body_state("sun", mjd_tdb)


def earth_state(mjd_tdb: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Barycentric ICRS state of the Earth (geocentre), AU and AU/day."""
    return body_state("earth", mjd_tdb)
