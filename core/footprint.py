"""Which predicted positions fall on a detector.

Two steps, sky side first (as Rubin does, and for the same reason): a
distorted WCS is not invertible far from its detector, and ``world -> pixel``
can fold a far-off-chip position back onto the chip. So a position must first
lie inside the detector's padded outline *on the sky* (the outline is traced
by mapping many points of the padded pixel boundary forward, which is always
well defined), and only then is it converted to pixels and tested against the
box padded by its own ephemeris uncertainty. A round-trip check
(pixel -> sky must return the position) rejects any remaining fold.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from .exposure import Exposure
from .geometry import ARCSEC_PER_DEG, angular_separation_deg, cross, unit_vectors

__all__ = ["DetectorFootprint", "padding_pixels"]

_EDGE_SAMPLES = 32  # points per detector side when tracing the outline on the sky
_ROUND_TRIP_TOLERANCE_ARCSEC = 0.05


def padding_pixels(
    uncertainty_arcsec: NDArray[np.float64], pixel_scale_arcsec: float, max_pixel_margin: float
) -> NDArray[np.float64]:
    """Per-object padding of the detector box: the 1-sigma ephemeris error in pixels,
    capped at ``max_pixel_margin``; non-finite or negative errors count as the cap."""
    pad = np.asarray(uncertainty_arcsec, dtype=np.float64) / pixel_scale_arcsec
    pad = np.where(np.isfinite(pad) & (pad >= 0), pad, max_pixel_margin)
    return np.minimum(pad, max_pixel_margin)


class DetectorFootprint:
    """The sky outline and pixel box of one exposure, padded by ``max_pad_pixels``.

    For a plain TAN WCS (no SIP or other distortion) sky -> pixel is exact and
    one-to-one on the hemisphere around the tangent point, so no fold is
    possible: positions on that hemisphere go straight to the pixel box test
    and the outline is never traced.
    """

    def __init__(self, exposure: Exposure, max_pad_pixels: float):
        self.exposure = exposure
        self.max_pad_pixels = float(max_pad_pixels)
        self.linear = not exposure.is_distorted
        self._outline: tuple[NDArray[np.float64], float, float] | None = None
        self.centre_ra_deg, self.centre_dec_deg = exposure.centre_deg

    @cached_property
    def _basis(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(centre, east, north) unit vectors: only the sky-side outline test needs them."""
        centre = _unit_vector(self.centre_ra_deg, self.centre_dec_deg)
        cx, cy, _ = centre
        east = np.array([-cy, cx, 0.0])  # z x centre
        norm = math.hypot(cx, cy)
        # At a pole any east direction will do.
        east = east / norm if norm > 1e-12 else np.array([0.0, 1.0, 0.0])
        return centre, east, cross(centre, east)

    def _traced_outline(self) -> tuple[NDArray[np.float64], float, float]:
        """(projected outline polygon, bounding radius, inscribed radius in degrees), traced once."""
        if self._outline is None:
            exposure, pad = self.exposure, self.max_pad_pixels
            lo_x, hi_x = -0.5 - pad, exposure.width - 0.5 + pad
            lo_y, hi_y = -0.5 - pad, exposure.height - 0.5 + pad
            t = np.linspace(0.0, 1.0, _EDGE_SAMPLES, endpoint=False)
            # Counter-clockwise in pixel space: bottom, right, top, left.
            up_x, up_y = lo_x + t * (hi_x - lo_x), lo_y + t * (hi_y - lo_y)
            down_x, down_y = hi_x - t * (hi_x - lo_x), hi_y - t * (hi_y - lo_y)
            xs = np.concatenate((up_x, np.full_like(t, hi_x), down_x, np.full_like(t, lo_x)))
            ys = np.concatenate((np.full_like(t, lo_y), up_y, np.full_like(t, hi_y), down_y))
            ra, dec = exposure.pixel_to_sky_deg(xs, ys)
            outline_dist = angular_separation_deg(self.centre_ra_deg, self.centre_dec_deg, ra, dec)
            # Inside the inscribed radius a point is surely inside the outline (a
            # little under the nearest outline sample, for the bulge between samples).
            self._outline = (
                self._project(unit_vectors(ra, dec)),
                float(np.max(outline_dist)),
                float(np.min(outline_dist)) * 0.98,
            )
        return self._outline

    def _project(self, vectors: NDArray[np.float64]) -> NDArray[np.float64]:
        """Gnomonic projection on the plane tangent at the detector centre."""
        centre, east, north = self._basis
        radial = vectors @ centre
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = np.stack((vectors @ east / radial, vectors @ north / radial), axis=-1)
        xy[radial <= 0] = np.nan  # far hemisphere: never inside
        return xy

    @property
    def radius_deg(self) -> float:
        """Radius of the circle around the detector centre that holds the padded outline."""
        return self._traced_outline()[1]

    def on_sky_outline(self, ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64]) -> NDArray[np.bool_]:
        """True where (ra, dec) lies inside the padded outline traced on the sky."""
        ra = np.asarray(ra_deg, dtype=np.float64)
        dec = np.asarray(dec_deg, dtype=np.float64)
        inside = np.zeros(ra.shape, dtype=bool)
        finite = np.isfinite(ra) & np.isfinite(dec)
        if not finite.any():
            return inside
        # Cheap cone cuts first: inside the inscribed circle a point is surely
        # inside; outside the bounding circle surely not; only the annulus
        # between needs the polygon test.
        outline_xy, radius_deg, inner_radius_deg = self._traced_outline()
        vectors = unit_vectors(ra[finite], dec[finite])
        cos_dist = vectors @ self._basis[0]
        surely_in = cos_dist >= np.cos(np.radians(inner_radius_deg))
        maybe = ~surely_in & (cos_dist >= np.cos(np.radians(radius_deg)))
        result = surely_in.copy()
        if maybe.any():
            result[maybe] = _points_in_polygon(self._project(vectors[maybe]), outline_xy)
        inside[finite] = result
        return inside

    def contains(
        self, ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64], pad_pixels: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
        """Mask of positions on the detector box padded by ``pad_pixels`` each, with pixel x, y.

        ``pad_pixels`` must not exceed ``max_pad_pixels``. x, y are NaN where not computed.
        """
        ra = np.asarray(ra_deg, dtype=np.float64)
        dec = np.asarray(dec_deg, dtype=np.float64)
        x = np.full(ra.shape, np.nan)
        y = np.full(ra.shape, np.nan)
        if self.linear:
            # Plain TAN: any point on the tangent point's hemisphere has one exact pixel position.
            ra0, dec0 = np.radians(self.exposure.wcs.wcs.crval)
            with np.errstate(invalid="ignore"):  # NaN compares False: excluded
                # cos(distance to the tangent point) > 0
                mask = (
                    np.sin(np.radians(dec)) * math.sin(dec0)
                    + np.cos(np.radians(dec)) * math.cos(dec0) * np.cos(np.radians(ra) - ra0)
                    > 0
                )
        else:
            mask = self.on_sky_outline(ra, dec)
        if not mask.any():
            return mask, x, y
        idx = np.flatnonzero(mask)
        px, py = self.exposure.sky_to_pixel(ra[idx], dec[idx])
        pad = np.asarray(pad_pixels, dtype=np.float64)[idx]
        exp = self.exposure
        in_box = (
            (px >= -0.5 - pad) & (px <= exp.width - 0.5 + pad)
            & (py >= -0.5 - pad) & (py <= exp.height - 0.5 + pad)
        )  # fmt: skip
        if self.linear:
            ok = in_box
        else:
            # The inverse must map back to the same position (rejects folded solutions).
            back_ra, back_dec = exp.pixel_to_sky_deg(np.nan_to_num(px), np.nan_to_num(py))
            round_trip = angular_separation_deg(ra[idx], dec[idx], back_ra, back_dec) * ARCSEC_PER_DEG
            ok = in_box & (round_trip <= _ROUND_TRIP_TOLERANCE_ARCSEC)
        mask[idx] = ok
        x[idx], y[idx] = px, py
        return mask, x, y


def _unit_vector(ra_deg: float, dec_deg: float) -> NDArray[np.float64]:
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


def _points_in_polygon(points: NDArray[np.float64], polygon: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Even-odd rule, vectorised over points and edges. NaN points are outside."""
    px = points[:, 0][:, None]
    py = points[:, 1][:, None]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    crossings = np.count_nonzero(straddles & (px < x_cross), axis=1)
    return (crossings % 2 == 1) & np.isfinite(points).all(axis=1)
