"""The Rubin-like focal plane: layout and consistency of its WCSs with locate()."""

import numpy as np
import pytest

from ssassoc.core.focal_plane import rubin_like_focal_plane


def test_layout():
    fp = rubin_like_focal_plane()
    assert len(fp.detector) == 189
    assert 1.7 < fp.radius_deg < 2.2  # LSSTCam: ~3.5 deg across


@pytest.mark.parametrize(("ra0", "dec0", "rot"), [(10.0, -5.0, 0.0), (359.5, 30.0, 37.0), (200.0, -88.5, 120.0)])
def test_locate_agrees_with_each_detector_wcs(ra0, dec0, rot):
    fp = rubin_like_focal_plane()
    exposures = fp.exposures(ra0, dec0, rot, 60800.2, visit=7)
    rng = np.random.default_rng(2)
    picks = rng.choice(len(exposures), 20, replace=False)
    for i in picks:
        exp = exposures[i]
        x = rng.uniform(0, exp.width - 1, 5)
        y = rng.uniform(0, exp.height - 1, 5)
        ra, dec = exp.pixel_to_sky_deg(x, y)
        det, lx, ly = fp.locate(ra, dec, ra0, dec0, rot)
        assert (det == exp.detector).all()
        assert lx == pytest.approx(x, abs=1e-6)
        assert ly == pytest.approx(y, abs=1e-6)
    # The boresight itself falls on the central CCD, a point 5 deg away on none.
    det, _, _ = fp.locate(np.array([ra0]), np.array([dec0]), ra0, dec0, rot)
    assert det[0] == 94
    far, _, _ = fp.locate(np.array([ra0]), np.array([dec0 - 5 if dec0 > 0 else dec0 + 5]), ra0, dec0, rot)
    assert far[0] == -1
