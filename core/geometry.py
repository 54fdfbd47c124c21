"""Spherical geometry on numpy arrays: unit vectors, separations, tangent-plane offsets,
fixed frame rotations. Angles in degrees unless the name says otherwise.

Everything works at RA 0/360 and at the poles: separations use
``atan2(|a x b|, a . b)`` (exact at all angles), offsets use the local east/north
basis of the reference position instead of differences of RA.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ARCSEC_PER_DEG",
    "angle_between_vectors_deg",
    "angular_separation_deg",
    "chord_from_angle_deg",
    "cross",
    "ecliptic_from_icrs_deg",
    "galactic_from_icrs_deg",
    "gnomonic_offsets_arcsec",
    "radec_from_unit_vectors_deg",
    "rotation_from_icrs",
    "tangent_plane_offsets_arcsec",
    "unit_vectors",
]

ARCSEC_PER_DEG = 3600.0
FloatArray = NDArray[np.float64]


def unit_vectors(ra_deg: ArrayLike, dec_deg: ArrayLike) -> FloatArray:
    """(N, 3) unit vectors of ICRS-like (ra, dec) in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    shape = ra.shape if ra.shape == dec.shape else np.broadcast_shapes(ra.shape, dec.shape)
    out = np.empty((*shape, 3))
    # Written in place: np.stack costs more than the trigonometry for a detector's rows.
    cos_dec = np.cos(dec)
    np.multiply(cos_dec, np.cos(ra), out=out[..., 0])
    np.multiply(cos_dec, np.sin(ra), out=out[..., 1])
    out[..., 2] = np.sin(dec)
    return out


def radec_from_unit_vectors_deg(vectors: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(ra in [0, 360), dec) in degrees of (N, 3) vectors (any length)."""
    v = np.asarray(vectors, dtype=np.float64)
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return ra, dec


def cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cross product of (..., 3) arrays (``np.cross`` costs 10x more on small arrays)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    np.subtract(ay * bz, az * by, out=out[..., 0])
    np.subtract(az * bx, ax * bz, out=out[..., 1])
    np.subtract(ax * by, ay * bx, out=out[..., 2])
    return out


def angle_between_vectors_deg(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Angle between (N, 3) vectors of any length, in degrees; exact at 0 and 180."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = cross(*np.broadcast_arrays(a, b))
    sin_part = np.sqrt(np.einsum("...i,...i->...", c, c))
    dot = np.einsum("...i,...i->...", a, b)
    return np.degrees(np.arctan2(sin_part, dot))


def angular_separation_deg(
    ra1_deg: ArrayLike, dec1_deg: ArrayLike, ra2_deg: ArrayLike, dec2_deg: ArrayLike
) -> FloatArray:
    """Great-circle separation in degrees (broadcasting)."""
    return angle_between_vectors_deg(unit_vectors(ra1_deg, dec1_deg), unit_vectors(ra2_deg, dec2_deg))


def chord_from_angle_deg(angle_deg: float) -> float:
    """Chord length on the unit sphere subtending ``angle_deg``."""
    return float(2.0 * np.sin(np.radians(angle_deg) / 2.0))


def tangent_plane_offsets_arcsec(
    ref_ra_deg: ArrayLike, ref_dec_deg: ArrayLike, ra_deg: ArrayLike, dec_deg: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Gnomonic (east, north) offsets in arcsec of (ra, dec) from the reference position.

    East is the RA direction, so the first component is what surveys call
    ``dRA * cos(dec)``; unlike that difference it does not wrap at RA 0/360 and
    stays well defined at the poles.
    """
    return gnomonic_offsets_arcsec(ref_ra_deg, ref_dec_deg, np.moveaxis(unit_vectors(ra_deg, dec_deg), -1, 0))


def gnomonic_offsets_arcsec(
    ref_ra_deg: ArrayLike, ref_dec_deg: ArrayLike, vectors: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`tangent_plane_offsets_arcsec` of positions given as component-major unit
    vectors ``(3, ...)`` (for callers that already have them)."""
    ref_ra = np.radians(np.asarray(ref_ra_deg, dtype=np.float64))
    ref_dec = np.radians(np.asarray(ref_dec_deg, dtype=np.float64))
    sin_ra, cos_ra = np.sin(ref_ra), np.cos(ref_ra)
    sin_dec, cos_dec = np.sin(ref_dec), np.cos(ref_dec)
    x, y, z = vectors
    # Projections on the local (east, north, radial) basis of the reference point.
    toward_ref_ra = x * cos_ra + y * sin_ra
    east = y * cos_ra - x * sin_ra
    north = z * cos_dec - sin_dec * toward_ref_ra
    scale = np.degrees(1.0) * ARCSEC_PER_DEG / (cos_dec * toward_ref_ra + sin_dec * z)
    return east * scale, north * scale


@cache
def rotation_from_icrs(frame_name: str) -> FloatArray:
    """3x3 matrix taking ICRS unit vectors to ``frame_name`` unit vectors.

    Both target frames here are fixed rotations of ICRS (galactic; the
    barycentric true ecliptic of the default J2000 equinox), so astropy is asked
    once for the images of the basis vectors and the result is reused.
    """
    from astropy import units as u
    from astropy.coordinates import BarycentricTrueEcliptic, Galactic, SkyCoord

    frames = {"galactic": Galactic(), "barycentrictrueecliptic": BarycentricTrueEcliptic()}
    # Directions of the ICRS x, y, z axes; their images are the matrix columns.
    basis = SkyCoord(ra=[0.0, 90.0, 0.0] * u.deg, dec=[0.0, 0.0, 90.0] * u.deg, frame="icrs")
    images = basis.transform_to(frames[frame_name]).cartesian.xyz.value
    return np.asarray(images, dtype=np.float64)


def _rotate(frame_name: str, ra_deg: ArrayLike, dec_deg: ArrayLike) -> tuple[FloatArray, FloatArray]:
    v = unit_vectors(ra_deg, dec_deg)
    return radec_from_unit_vectors_deg(v @ rotation_from_icrs(frame_name).T)


def ecliptic_from_icrs_deg(ra_deg: ArrayLike, dec_deg: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(lambda, beta) in the barycentric true ecliptic of J2000 (astropy's default equinox)."""
    return _rotate("barycentrictrueecliptic", ra_deg, dec_deg)


def galactic_from_icrs_deg(ra_deg: ArrayLike, dec_deg: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(l, b) galactic coordinates."""
    return _rotate("galactic", ra_deg, dec_deg)
