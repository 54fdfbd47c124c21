"""One detector image of one visit, as far as association needs it."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

__all__ = ["Exposure", "ExposureError"]

_OBSCODE = re.compile(r"^[0-9A-Z]{3}$")


class ExposureError(ValueError):
    """The exposure description is unusable (bad WCS, size or time)."""


@dataclass(frozen=True)
class Exposure:
    """A detector image: celestial WCS (TAN or TAN-SIP, distortions allowed), size, time.

    Pixel convention is astropy's: 0-based, pixel centres at integers, so the
    detector covers ``x`` in ``[-0.5, width - 0.5]`` and likewise ``y``.
    """

    wcs: WCS
    width: int
    """Detector width in pixels (FITS NAXIS1)."""
    height: int
    """Detector height in pixels (FITS NAXIS2)."""
    midpointMjdTai: float
    """Exposure midpoint, MJD in TAI."""
    observatory: str = "X05"
    """MPC observatory code (X05 = Rubin, 500 = geocentre)."""
    visit: int = 0
    detector: int = 0
    exposureTimeSeconds: float = math.nan
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.wcs, WCS):
            raise ExposureError(f"wcs must be an astropy.wcs.WCS, got {type(self.wcs).__name__}")
        try:
            celestial = self.wcs.has_celestial and self.wcs.naxis == 2
        except Exception as exc:  # wcslib raises on singular or inconsistent keywords
            raise ExposureError(f"unusable WCS: {exc}") from exc
        if not celestial:
            raise ExposureError("wcs must be a 2-axis celestial WCS (e.g. RA---TAN / DEC--TAN)")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ExposureError(f"{name} must be a positive integer number of pixels, got {value!r}")
            object.__setattr__(self, name, int(value))
        mjd = self.midpointMjdTai
        if not isinstance(mjd, int | float | np.floating | np.integer) or not math.isfinite(mjd):
            raise ExposureError(f"midpointMjdTai must be a finite MJD (TAI), got {mjd!r}")
        object.__setattr__(self, "midpointMjdTai", float(mjd))
        if not isinstance(self.observatory, str) or not _OBSCODE.match(self.observatory):
            raise ExposureError(f"observatory must be a 3-character MPC code such as 'X05', got {self.observatory!r}")
        object.__setattr__(self, "visit", int(self.visit))
        object.__setattr__(self, "detector", int(self.detector))
        # A WCS that cannot map its own centre is broken (singular CD matrix, NaN keywords...).
        # The centre and its two neighbours in one call: they also give the pixel scale.
        cx, cy = (self.width - 1) / 2, (self.height - 1) / 2
        try:
            ra, dec = self.pixel_to_sky_deg(np.array([cx, cx + 1, cx]), np.array([cy, cy, cy + 1]))
        except Exception as exc:
            raise ExposureError(f"unusable WCS: {exc}") from exc
        if not np.all(np.isfinite(ra)) or not np.all(np.isfinite(dec)):
            raise ExposureError("wcs does not map the detector centre to a finite sky position")
        ra0, dec0, ra1, dec1, ra2, dec2 = (float(v) for v in (ra[0], dec[0], ra[1], dec[1], ra[2], dec[2]))
        self._cache["centre_deg"] = (ra0, dec0)
        # Two one-pixel steps: scalar haversines cost a fraction of array calls here.
        step_x, step_y = _separation_deg(ra0, dec0, ra1, dec1), _separation_deg(ra0, dec0, ra2, dec2)
        self._cache["pixel_scale_arcsec"] = math.sqrt(step_x * step_y) * 3600.0

    # -- conversions -----------------------------------------------------------
    def pixel_to_sky_deg(self, x_pix: np.ndarray, y_pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (0-based) to ICRS (ra, dec) in degrees, distortions included."""
        ra_deg, dec_deg = self.wcs.all_pix2world(np.asarray(x_pix, float), np.asarray(y_pix, float), 0)
        return np.asarray(ra_deg, float) % 360.0, np.asarray(dec_deg, float)

    def sky_to_pixel(self, ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ICRS (ra, dec) in degrees to 0-based pixels; NaN where the inversion fails."""
        ra = np.asarray(ra_deg, float)
        dec = np.asarray(dec_deg, float)
        if ra.size == 0:
            return np.empty(0), np.empty(0)
        if not self.is_distorted:  # closed form, no iteration to watch
            with np.errstate(all="ignore"):
                x, y = self.wcs.wcs_world2pix(ra, dec, 0)
            return np.asarray(x, float), np.asarray(y, float)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                x, y = self.wcs.all_world2pix(ra, dec, 0, quiet=True, maxiter=50, tolerance=1e-6)
            except Exception:  # astropy raises NoConvergence subclasses on wild inputs
                x, y = self.wcs.wcs_world2pix(ra, dec, 0)
        return np.asarray(x, float), np.asarray(y, float)

    @property
    def is_distorted(self) -> bool:
        """True unless the WCS is a plain TAN projection with no distortion terms."""
        cached = self._cache.get("is_distorted")
        if cached is None:
            wcs = self.wcs
            plain_tan = all(str(c).endswith("-TAN") for c in wcs.wcs.ctype)
            extra = (wcs.sip, wcs.cpdis1, wcs.cpdis2, wcs.det2im1, wcs.det2im2)
            cached = not plain_tan or any(term is not None for term in extra)
            self._cache["is_distorted"] = cached
        return bool(cached)

    @property
    def centre_deg(self) -> tuple[float, float]:
        """(ra, dec) in degrees of the detector centre pixel (computed once, at construction)."""
        return self._cache["centre_deg"]

    @property
    def bounding_radius_deg(self) -> float:
        """Largest distance from :attr:`centre_deg` to 8 points per detector edge mapped
        through the full WCS (distortion included): the radius of a cone holding the
        detector. Computed on first use."""
        cached = self._cache.get("bounding_radius_deg")
        if cached is None:
            xs, ys = _edge_points(self.width, self.height)
            ra, dec = self.pixel_to_sky_deg(xs, ys)
            ra0, dec0 = np.radians(self.centre_deg)
            d2 = np.radians(dec)
            h = np.sin((d2 - dec0) / 2) ** 2 + math.cos(dec0) * np.cos(d2) * np.sin((np.radians(ra) - ra0) / 2) ** 2
            radius = np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))  # haversine
            cached = self._cache["bounding_radius_deg"] = float(radius.max())
        return float(cached)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Mean pixel scale at the detector centre (arcsec/pixel; computed at construction)."""
        return float(self._cache["pixel_scale_arcsec"])

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_fits_header(
        cls,
        header: fits.Header | dict[str, Any] | str,
        *,
        width: int | None = None,
        height: int | None = None,
        midpointMjdTai: float | None = None,
        observatory: str | None = None,
        visit: int | None = None,
        detector: int | None = None,
    ) -> Exposure:
        """Build from FITS header cards (a Header, a dict of cards, or header text).

        Keyword arguments win over the header. Otherwise: width/height from
        ``NAXIS1/NAXIS2`` (or ``ZNAXIS1/2``); midpoint from ``MJD-MID``, else the
        mean of ``MJD-BEG``/``MJD-END``, else ``MJD-OBS + EXPTIME/2``, taken as TAI
        unless ``TIMESYS`` says ``UTC`` (then converted); observatory from
        ``OBSCODE``; visit and detector from ``VISIT``/``DETECTOR``.
        """
        if isinstance(header, str):
            header = fits.Header.fromstring(header, sep="\n" if "\n" in header else "")
        elif isinstance(header, dict):
            header = fits.Header(list(header.items()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(header, relax=True, fix=True)
            except Exception as exc:
                raise ExposureError(f"cannot build a WCS from the header: {exc}") from exc
            wcs = wcs.celestial if wcs.naxis > 2 else wcs

        def pick(value: Any, *keys: str) -> Any:
            if value is not None:
                return value
            for key in keys:
                if key in header:
                    return header[key]
            return None

        width = pick(width, "NAXIS1", "ZNAXIS1")
        height = pick(height, "NAXIS2", "ZNAXIS2")
        if width is None or height is None:
            raise ExposureError("detector size unknown: no NAXIS1/NAXIS2 and no width/height given")
        exptime = float(header.get("EXPTIME", math.nan))
        if midpointMjdTai is None:
            midpointMjdTai = _midpoint_from_header(header, exptime)
        return cls(
            wcs=wcs,
            width=int(width),
            height=int(height),
            midpointMjdTai=float(midpointMjdTai),
            observatory=str(pick(observatory, "OBSCODE") or "X05"),
            visit=int(pick(visit, "VISIT") or 0),
            detector=int(pick(detector, "DETECTOR") or 0),
            exposureTimeSeconds=exptime,
        )


@lru_cache(maxsize=16)
def _edge_points(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """8 points per detector edge (corners included), 0-based pixel coordinates."""
    s = np.linspace(0.0, 1.0, 9)
    xs = np.concatenate([s * width, np.full(9, width), s * width, np.zeros(9)]) - 0.5
    ys = np.concatenate([np.zeros(9), s * height, np.full(9, height), s * height]) - 0.5
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Haversine separation of two positions (degrees): exact for the tiny steps it measures."""
    d1, d2 = math.radians(dec1), math.radians(dec2)
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin(math.radians(ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(min(h, 1.0))))


def _midpoint_from_header(header: fits.Header, exptime_s: float) -> float:
    if "MJD-MID" in header:
        mjd = float(header["MJD-MID"])
    elif "MJD-BEG" in header and "MJD-END" in header:
        mjd = 0.5 * (float(header["MJD-BEG"]) + float(header["MJD-END"]))
    elif "MJD-OBS" in header and math.isfinite(exptime_s):
        mjd = float(header["MJD-OBS"]) + exptime_s / 2 / 86400.0
    else:
        raise ExposureError("exposure midpoint unknown: no MJD-MID, MJD-BEG/END or MJD-OBS+EXPTIME")
    timesys = str(header.get("TIMESYS", "TAI")).strip().upper()
    if timesys == "TAI":
        return mjd
    if timesys == "UTC":
        from astropy.time import Time

        return float(Time(mjd, format="mjd", scale="utc").tai.mjd)
    raise ExposureError(f"unsupported TIMESYS {timesys!r} (TAI or UTC)")
