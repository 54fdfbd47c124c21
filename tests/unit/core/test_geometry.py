"""Spherical geometry: known answers and properties."""

import numpy as np
import pytest
from core_helpers import offset_deg
from hypothesis import given
from hypothesis import strategies as st

from ssassoc.core.geometry import (
    angular_separation_deg,
    radec_from_unit_vectors_deg,
    tangent_plane_offsets_arcsec,
    unit_vectors,
)

ra_st = st.floats(0, 360, exclude_max=True)
dec_st = st.floats(-90, 90)


def test_separation_known_answers():
    assert angular_separation_deg(0, 0, 90, 0) == pytest.approx(90)
    assert angular_separation_deg(10, 89, 190, 89) == pytest.approx(2)
    assert angular_separation_deg(359.9, 0, 0.1, 0) == pytest.approx(0.2)
    assert angular_separation_deg(0, 0, 180, 0) == pytest.approx(180)
    # Tiny angles are exact (no arccos round-off): 1 micro-arcsecond.
    assert angular_separation_deg(30, 10, 30, 10 + 1e-6 / 3600) * 3600 == pytest.approx(1e-6, rel=1e-4)


def test_offsets_wrap_at_ra_zero():
    east, north = tangent_plane_offsets_arcsec(359.9999, 0.0, 0.0001, 0.0)
    assert east == pytest.approx(0.72, rel=1e-6)
    assert north == pytest.approx(0.0, abs=1e-9)


def test_offsets_at_the_pole_are_finite_and_right_size():
    ra, dec = offset_deg(123.0, 89.99999, 0.3, -0.4)
    east, north = tangent_plane_offsets_arcsec(123.0, 89.99999, ra, dec)
    assert east == pytest.approx(0.3, rel=1e-6)
    assert north == pytest.approx(-0.4, rel=1e-6)


@given(ra_st, dec_st)
def test_unit_vector_round_trip(ra, dec):
    back_ra, back_dec = radec_from_unit_vectors_deg(unit_vectors(ra, dec))
    assert back_dec == pytest.approx(dec, abs=1e-9)
    if abs(dec) < 89.9999:
        assert abs((back_ra - ra + 180) % 360 - 180) < 1e-8


@given(ra_st, st.floats(-89.9, 89.9), st.floats(-5, 5), st.floats(-5, 5))
def test_offsets_invert_the_tangent_projection(ra, dec, east, north):
    ra2, dec2 = offset_deg(ra, dec, east, north)
    got_east, got_north = tangent_plane_offsets_arcsec(ra, dec, ra2, dec2)
    assert got_east == pytest.approx(east, abs=1e-6)
    assert got_north == pytest.approx(north, abs=1e-6)
    sep = angular_separation_deg(ra, dec, ra2, dec2) * 3600
    assert sep == pytest.approx(np.hypot(east, north), abs=1e-5)
