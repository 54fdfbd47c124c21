"""Predicted apparent V magnitude from absolute magnitude H and slope G.

IAU H-G system (Bowell et al. 1989, in Asteroids II, p. 549):

    V = H + 5 log10(r * delta) - 2.5 log10((1 - G) phi1(alpha) + G phi2(alpha))
    phi_i(alpha) = exp(-A_i tan(alpha / 2) ** B_i),  A = (3.33, 1.87),  B = (0.63, 1.22)

with r the heliocentric and delta the observer distance in AU and alpha the phase angle
(Sun-object-observer). A missing H (NaN) gives NaN; a missing G uses the standard 0.15.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_G = 0.15
_A1, _B1 = 3.33, 0.63
_A2, _B2 = 1.87, 1.22


def hg_phase_function(phase_angle_deg: npt.ArrayLike, g: npt.ArrayLike) -> FloatArray:
    """The H-G phase term ``(1 - G) phi1 + G phi2`` (1 at zero phase), dimensionless."""
    alpha = np.radians(np.asarray(phase_angle_deg, dtype=np.float64))
    tan_half = np.tan(0.5 * np.clip(alpha, 0.0, np.pi))
    phi1 = np.exp(-_A1 * tan_half**_B1)
    phi2 = np.exp(-_A2 * tan_half**_B2)
    gg = np.asarray(g, dtype=np.float64)
    return np.asarray((1.0 - gg) * phi1 + gg * phi2, dtype=np.float64)


def v_magnitude(
    h_mag: npt.ArrayLike,
    g_slope: npt.ArrayLike,
    helio_range_au: npt.ArrayLike,
    topo_range_au: npt.ArrayLike,
    phase_angle_deg: npt.ArrayLike,
) -> FloatArray:
    """Apparent V magnitude (mag) with the IAU H-G phase function; NaN where H is NaN.

    All arguments broadcast together. ``g_slope`` NaN falls back to 0.15.
    """
    h = np.asarray(h_mag, dtype=np.float64)
    g = np.asarray(g_slope, dtype=np.float64)
    g = np.where(np.isnan(g), DEFAULT_G, g)
    r = np.asarray(helio_range_au, dtype=np.float64)
    d = np.asarray(topo_range_au, dtype=np.float64)
    phase = hg_phase_function(phase_angle_deg, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = h + 5.0 * np.log10(r * d) - 2.5 * np.log10(phase)
    return np.asarray(v, dtype=np.float64)


def phase_angle_deg(helio_pos_au: npt.ArrayLike, topo_pos_au: npt.ArrayLike) -> FloatArray:
    """Phase angle Sun-object-observer (deg) from the object's heliocentric position and
    the observer-to-object (topocentric) vector, both ``[..., 3]`` AU."""
    h = np.asarray(helio_pos_au, dtype=np.float64)
    t = np.asarray(topo_pos_au, dtype=np.float64)
    # Angle between object->Sun (-h) and object->observer (-t) = angle between h and t.
    cross = np.linalg.norm(np.cross(h, t), axis=-1)
    dot = np.sum(h * t, axis=-1)
    return np.asarray(np.degrees(np.arctan2(cross, dot)), dtype=np.float64)
