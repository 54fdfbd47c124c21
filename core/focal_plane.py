"""A Rubin-like focal plane: 189 science detectors and their WCS for a pointing.

Layout of LSSTCam's science array, approximated: 21 rafts on a 5 x 5 grid
without its corners, each raft 3 x 3 CCDs of 4072 x 4000 px (10 um pixels,
0.2 arcsec/px). CCD pitch 4225 px inside a raft, raft pitch 12700 px, so the
array spans about 3.5 deg. Every detector's WCS is a TAN projection about the
boresight, so all 189 share one tangent plane, as the real camera nearly does
(optical distortion is ignored here; the association handles TAN-SIP WCSs too).

Used to simulate visits (demo, benchmarks); positions in pixels, angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS
from numpy.typing import NDArray

from .exposure import Exposure
from .geometry import unit_vectors

__all__ = ["FocalPlane", "rubin_like_focal_plane"]

CCD_WIDTH_PX = 4072
CCD_HEIGHT_PX = 4000
PIXEL_SCALE_ARCSEC = 0.2
_CCD_PITCH_PX = 4225.0
_RAFT_PITCH_PX = 12700.0


@dataclass(frozen=True)
class FocalPlane:
    """Detector ids and the focal-plane position (px from the boresight) of each detector's pixel (0, 0)."""

    detector: NDArray[np.int64]
    origin_x_px: NDArray[np.float64]
    origin_y_px: NDArray[np.float64]
    width_px: int = CCD_WIDTH_PX
    height_px: int = CCD_HEIGHT_PX
    pixel_scale_arcsec: float = PIXEL_SCALE_ARCSEC

    @property
    def radius_deg(self) -> float:
        """Radius of the circle around the boresight that holds every detector."""
        far_x = np.maximum(np.abs(self.origin_x_px), np.abs(self.origin_x_px + self.width_px))
        far_y = np.maximum(np.abs(self.origin_y_px), np.abs(self.origin_y_px + self.height_px))
        return float(np.hypot(far_x, far_y).max() * self.pixel_scale_arcsec / 3600)

    def subset(self, detectors: list[int] | NDArray[np.int64]) -> FocalPlane:
        keep = np.isin(self.detector, np.asarray(detectors))
        return FocalPlane(self.detector[keep], self.origin_x_px[keep], self.origin_y_px[keep],
                          self.width_px, self.height_px, self.pixel_scale_arcsec)  # fmt: skip

    def wcs(self, index: int, boresight_ra_deg: float, boresight_dec_deg: float, rotation_deg: float) -> WCS:
        """TAN WCS of detector ``index`` (position in ``self.detector``) for a pointing."""
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [boresight_ra_deg, boresight_dec_deg]
        # FITS CRPIX is 1-based: the boresight in this detector's pixel frame.
        wcs.wcs.crpix = [1.0 - self.origin_x_px[index], 1.0 - self.origin_y_px[index]]
        scale = self.pixel_scale_arcsec / 3600.0
        c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
        wcs.wcs.cd = np.array([[-scale * c, scale * s], [scale * s, scale * c]])
        return wcs

    def exposures(
        self,
        boresight_ra_deg: float,
        boresight_dec_deg: float,
        rotation_deg: float,
        midpoint_mjd_tai: float,
        visit: int,
        observatory: str = "X05",
    ) -> list[Exposure]:
        """One Exposure per detector for a visit."""
        return [
            Exposure(
                wcs=self.wcs(i, boresight_ra_deg, boresight_dec_deg, rotation_deg),
                width=self.width_px,
                height=self.height_px,
                midpointMjdTai=midpoint_mjd_tai,
                observatory=observatory,
                visit=visit,
                detector=int(det),
            )
            for i, det in enumerate(self.detector)
        ]

    def locate(
        self,
        ra_deg: NDArray[np.float64],
        dec_deg: NDArray[np.float64],
        boresight_ra_deg: float,
        boresight_dec_deg: float,
        rotation_deg: float,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Detector id (-1 if none: gaps, off the array, far side) and pixel x, y of sky positions."""
        v = unit_vectors(ra_deg, dec_deg)
        ra0, dec0 = np.radians(boresight_ra_deg), np.radians(boresight_dec_deg)
        east = np.array([-np.sin(ra0), np.cos(ra0), 0.0])
        north = np.array([-np.sin(dec0) * np.cos(ra0), -np.sin(dec0) * np.sin(ra0), np.cos(dec0)])
        centre = np.array([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)])
        radial = v @ centre
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = np.degrees((v @ east) / radial) * 3600 / self.pixel_scale_arcsec  # px, east
            eta = np.degrees((v @ north) / radial) * 3600 / self.pixel_scale_arcsec  # px, north
        # Invert the CD matrix of `wcs`: pixel offsets from the boresight.
        c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
        cd = np.array([[-c, s], [s, c]])
        dx, dy = np.linalg.solve(cd, np.stack((xi, eta)))
        detector = np.full(len(v), -1, dtype=np.int64)
        x = np.full(len(v), np.nan)
        y = np.full(len(v), np.nan)
        ok = radial > 0
        for i, det in enumerate(self.detector):
            px = dx - self.origin_x_px[i]
            py = dy - self.origin_y_px[i]
            on = ok & (px >= -0.5) & (px <= self.width_px - 0.5) & (py >= -0.5) & (py <= self.height_px - 0.5)
            detector[on] = det
            x[on], y[on] = px[on], py[on]
        return detector, x, y


def rubin_like_focal_plane() -> FocalPlane:
    """The 189-detector science array (ids 0-188, raft by raft, row by row)."""
    origins_x, origins_y = [], []
    for raft_row in range(5):
        for raft_col in range(5):
            if raft_row in (0, 4) and raft_col in (0, 4):
                continue  # corner rafts hold wavefront/guider sensors, not science CCDs
            raft_x = (raft_col - 2) * _RAFT_PITCH_PX
            raft_y = (raft_row - 2) * _RAFT_PITCH_PX
            for ccd_row in range(3):
                for ccd_col in range(3):
                    centre_x = raft_x + (ccd_col - 1) * _CCD_PITCH_PX
                    centre_y = raft_y + (ccd_row - 1) * _CCD_PITCH_PX
                    origins_x.append(centre_x - (CCD_WIDTH_PX - 1) / 2)
                    origins_y.append(centre_y - (CCD_HEIGHT_PX - 1) / 2)
    n = len(origins_x)
    return FocalPlane(np.arange(n, dtype=np.int64), np.array(origins_x), np.array(origins_y))
