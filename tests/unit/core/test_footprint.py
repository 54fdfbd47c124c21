"""Which predicted objects count as on the detector."""

import numpy as np
import pytest
from astropy.wcs import WCS, Sip
from core_helpers import exposure_at, objects_table, sources_table

from ssassoc.core import Exposure, SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.footprint import DetectorFootprint


def rubin_trap_exposure() -> Exposure:
    """TAN at (45, 45) deg, 0.2"/px, 1024 x 1153 px, x -> x - 1e-7 x^3 (SIP about pixel 0 in x)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval = [45.0, 45.0]
    wcs.wcs.crpix = [1.0, 577.0]
    scale = 0.2 / 3600
    wcs.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]])
    a = np.zeros((4, 4))
    a[3, 0] = -1e-7
    wcs.sip = Sip(a, np.zeros((4, 4)), None, None, wcs.wcs.crpix)
    return Exposure(wcs=wcs, width=1024, height=1153, midpointMjdTai=60000.0, observatory="X05")


def on_detector(exposure, ra, dec, uncertainty=None, **config):
    task = SsSingleFrameAssociationTask(config=SsSingleFrameAssociationConfig(**config))
    objects = objects_table(ra, dec, uncertainty=uncertainty)
    result = task.run(exposure, sources_table([], []), solarSystemObjectTable=objects)
    return set(result.unassociatedSsObjects["ssObjectId"])


def test_rubin_trap_and_far_objects_are_rejected():
    exposure = rubin_trap_exposure()
    x = np.array([100.0, 500.0, 900.0, 10.0])
    y = np.array([100.0, 600.0, 1100.0, 1140.0])
    ra, dec = exposure.pixel_to_sky_deg(x, y)
    ra = np.r_[ra, 44.91215199831453, 150.0, 150.0]
    dec = np.r_[dec, 45.001331943391406, 80.0, -80.0]
    assert on_detector(exposure, ra, dec) == {1, 2, 3, 4}


def test_antipode_of_the_detector_is_rejected():
    exposure = exposure_at(10.0, 20.0)
    assert on_detector(exposure, [190.0, 10.0], [-20.0, 20.0]) == {2}


def test_padding_by_uncertainty_capped_by_margin():
    exposure = exposure_at(100.0, -30.0, width=1000, height=1000)  # 0.2"/px
    # 20 px (4") beyond the right edge.
    ra, dec = exposure.pixel_to_sky_deg(np.array([999.5 + 20] * 3), np.array([500.0] * 3))
    # 1": 5 px pad -> out; 5": 25 px -> in; 100": 500 px capped at 30 px -> in.
    got = on_detector(exposure, ra, dec, uncertainty=[1.0, 5.0, 100.0], maxPixelMargin=30)
    assert got == {2, 3}
    # Cap below the offset: nobody is in.
    assert on_detector(exposure, ra, dec, uncertainty=[1.0, 5.0, 100.0], maxPixelMargin=10) == set()


def test_default_uncertainty_is_used_when_missing():
    exposure = exposure_at(100.0, -30.0, width=1000, height=1000)
    ra, dec = exposure.pixel_to_sky_deg(np.array([999.5 + 8, 999.5 + 12]), np.array([500.0, 500.0]))
    # Default 2" = 10 px.
    assert on_detector(exposure, ra, dec) == {1}
    assert on_detector(exposure, ra, dec, defaultEphemerisUncertaintyArcsec=3.0) == {1, 2}


@pytest.mark.parametrize(("ra0", "dec0"), [(0.0, 0.0), (359.99, -10.0), (45.0, 89.95), (200.0, -89.95)])
def test_detector_across_ra_zero_and_at_the_poles(ra0, dec0):
    exposure = exposure_at(ra0, dec0, width=4000, height=4000)
    rng = np.random.default_rng(1)
    inside_x, inside_y = rng.uniform(0, 3999, 50), rng.uniform(0, 3999, 50)
    ra_in, dec_in = exposure.pixel_to_sky_deg(inside_x, inside_y)
    out_x = np.r_[rng.uniform(-400, -30, 25), rng.uniform(4030, 4400, 25)]
    ra_out, dec_out = exposure.pixel_to_sky_deg(out_x, rng.uniform(0, 3999, 50))
    fp = DetectorFootprint(exposure, 10.0)
    mask_in, _, _ = fp.contains(ra_in, dec_in, np.full(50, 10.0))
    mask_out, _, _ = fp.contains(ra_out, dec_out, np.full(50, 10.0))
    assert mask_in.all()
    assert not mask_out.any()


def test_non_finite_positions_are_outside():
    exposure = exposure_at(10.0, 10.0)
    fp = DetectorFootprint(exposure, 5.0)
    mask, _x, _y = fp.contains(np.array([np.nan, 10.0, np.inf]), np.array([10.0, np.nan, 10.0]), np.full(3, 5.0))
    assert not mask.any()


def test_pixel_coordinates_of_unassociated_objects():
    exposure = exposure_at(50.0, 10.0, width=1000, height=800)
    ra, dec = exposure.pixel_to_sky_deg(np.array([12.25, 700.0]), np.array([400.5, 3.0]))
    task = SsSingleFrameAssociationTask()
    result = task.run(exposure, sources_table([], []), solarSystemObjectTable=objects_table(ra, dec))
    table = result.unassociatedSsObjects.sort_values("ssObjectId")
    assert table["x"].to_numpy() == pytest.approx([12.25, 700.0], abs=1e-6)
    assert table["y"].to_numpy() == pytest.approx([400.5, 3.0], abs=1e-6)


@pytest.mark.parametrize(("ra0", "dec0"), [(10.0, 20.0), (0.0, -89.99), (359.999, 0.0)])
def test_plain_tan_shortcut_agrees_with_the_general_two_step_test(ra0, dec0):
    exposure = exposure_at(ra0, dec0, width=3000, height=2000)
    assert not exposure.is_distorted and rubin_trap_exposure().is_distorted
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-300, 3300, 400), rng.uniform(-300, 2300, 400)
    ra, dec = exposure.pixel_to_sky_deg(x, y)
    ra = np.r_[ra, (ra0 + 180) % 360, ra0, np.nan]  # antipode-ish, same RA far away, NaN
    dec = np.r_[dec, -dec0, dec0 - 60 if dec0 > 0 else dec0 + 60, 0.0]
    pad = rng.uniform(0, 50, len(ra))
    fast = DetectorFootprint(exposure, 50.0)
    general = DetectorFootprint(exposure, 50.0)
    general.linear = False
    got_fast, fx, fy = fast.contains(ra, dec, pad)
    got_general, gx, gy = general.contains(ra, dec, pad)
    assert fast.linear
    assert (got_fast == got_general).all()
    assert got_fast[:400].sum() > 100 and (~got_fast[:400]).sum() > 50
    assert np.allclose(fx[got_fast], gx[got_general]) and np.allclose(fy[got_fast], gy[got_general])
