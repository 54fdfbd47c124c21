"""The exposure's own geometry: centre, pixel scale, bounding radius (known answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from core_helpers import exposure_at

from ssassoc.core.geometry import angular_separation_deg


@pytest.mark.parametrize(("ra0", "dec0"), [(10.0, 20.0), (0.0, -89.99), (359.999, 0.0), (180.0, 89.5)])
def test_centre_scale_and_bounding_radius(ra0: float, dec0: float) -> None:
    exposure = exposure_at(ra0, dec0, width=4072, height=4000)  # 0.2"/px TAN, centred on (ra0, dec0)
    ra_c, dec_c = exposure.centre_deg
    assert angular_separation_deg(ra_c, dec_c, ra0, dec0) * 3600 < 0.2  # within a pixel of the pointing
    assert exposure.pixel_scale_arcsec == pytest.approx(0.2, rel=1e-6)
    # A gnomonic chip of 4072 x 4000 px at 0.2": the corners are half its diagonal away
    # (plus the projection's tan stretch, ~1e-6 relative at 0.16 deg).
    half_diagonal_deg = 0.5 * math.hypot(4072, 4000) * 0.2 / 3600
    assert exposure.bounding_radius_deg == pytest.approx(half_diagonal_deg, rel=1e-4)
    # and it bounds every pixel of the chip
    rng = np.random.default_rng(1)
    ra, dec = exposure.pixel_to_sky_deg(rng.uniform(-0.5, 4071.5, 2000), rng.uniform(-0.5, 3999.5, 2000))
    assert angular_separation_deg(ra_c, dec_c, ra, dec).max() <= exposure.bounding_radius_deg + 1e-12
