"""HEALPix sky index: CSR round trip and cone completeness against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core.ephemeris.sky_index import (
    SkyIndex,
    cone_cells,
    dense_offsets,
    lonlat_to_cells,
    merge_entries,
    pack_entries,
)


def _sphere(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def _sep_deg(ra1: float, dec1: float, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r2 - r1)
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def _static_index(ra: np.ndarray, dec: np.ndarray, nside: int, n_bins: int = 2) -> SkyIndex:
    """Points that do not move: one sample per object and bin, pad 0."""
    n = ra.size
    cells = lonlat_to_cells(ra, dec, nside)
    parts = [pack_entries(np.full(n, b), cells, np.arange(n), nside) for b in range(n_bins)]
    keys, offsets, objects = merge_entries(parts)
    dense = dense_offsets(keys, offsets, n_bins * 12 * nside**2)
    return SkyIndex(dense, objects, nside, n_bins, 0.5, 0.0)


def test_csr_round_trip() -> None:
    rng = np.random.default_rng(3)
    bins = rng.integers(0, 4, 5000)
    cells = rng.integers(0, 12 * 64**2, 5000)
    objs = rng.integers(0, 1000, 5000)
    keys, offsets, objects = merge_entries([pack_entries(bins, cells, objs, 64)])
    assert np.all(np.diff(keys) > 0)
    assert offsets[0] == 0 and offsets[-1] == objects.size
    got = {(int(k), int(o)) for i, k in enumerate(keys) for o in objects[offsets[i] : offsets[i + 1]]}
    want = {(int(b * 12 * 64**2 + c), int(o)) for b, c, o in zip(bins, cells, objs, strict=True)}
    assert got == want
    dense = dense_offsets(keys, offsets, 4 * 12 * 64**2)
    assert dense.size == 4 * 12 * 64**2 + 1 and dense[-1] == objects.size
    got_dense = {(k, int(o)) for k in range(dense.size - 1) for o in objects[dense[k] : dense[k + 1]]}
    assert got_dense == want


def test_pack_rejects_huge_object_rows() -> None:
    with pytest.raises(ValueError, match="2\\*\\*31"):
        pack_entries([0], [0], [2**31], 8)


@pytest.mark.parametrize("nside", [64, 256])
def test_cone_cells_cover_the_cone(nside: int) -> None:
    """Every point within the radius falls in a returned cell (incl. the poles and RA 0)."""
    rng = np.random.default_rng(4)
    cases = [(0.0, 0.0, 1.0), (359.9, 10.0, 0.4), (12.0, 89.8, 0.5), (200.0, -89.95, 2.1), (100.0, 5.0, 0.01)]
    for ra0, dec0, r in cases:
        ra, dec = _sphere(100_000, rng)
        # plus points densely inside the cone, many near its edge
        k = 20_000
        rho = r * np.sqrt(rng.uniform(0, 1, k))
        phi = rng.uniform(0, 2 * np.pi, k)
        ra = np.concatenate([ra, (ra0 + rho * np.cos(phi) / max(np.cos(np.radians(dec0)), 1e-3)) % 360])
        dec = np.concatenate([dec, np.clip(dec0 + rho * np.sin(phi), -90, 90)])
        inside = _sep_deg(ra0, dec0, ra, dec) <= r
        cells = cone_cells(ra0, dec0, r, nside)
        assert np.isin(lonlat_to_cells(ra[inside], dec[inside], nside), cells).all()


def test_cone_cells_include_cells_the_cone_only_clips() -> None:
    """A regression: astropy-healpix's cone search returns only cell 174839 here."""
    assert {174838, 174839} <= set(cone_cells(180.9622584577294, 44.29536046020718, 0.07, 256).tolist())


@settings(max_examples=40, deadline=None)
@given(
    ra0=st.floats(0.0, 360.0, exclude_max=True),
    dec0=st.one_of(st.floats(-90.0, 90.0), st.sampled_from([89.99, -89.99, 0.0])),
    radius=st.sampled_from([0.05, 0.4, 1.0, 2.1, 7.0]),
    t=st.floats(0.0, 1.0),
)
def test_candidates_are_complete(ra0: float, dec0: float, radius: float, t: float) -> None:
    rng = np.random.default_rng(5)
    ra, dec = _sphere(20_000, rng)
    # concentrate extra points around the query centre so small cones have members
    k = 2000
    dra = rng.normal(0, radius, k) / max(np.cos(np.radians(dec0)), 0.05)
    ra = np.concatenate([ra, (ra0 + dra) % 360.0])
    dec = np.concatenate([dec, np.clip(dec0 + rng.normal(0, radius, k), -90, 90)])
    index = _static_index(ra, dec, nside=256)
    cand = index.candidates(t, ra0, dec0, radius)
    truth = np.flatnonzero(_sep_deg(ra0, dec0, ra, dec) <= radius)
    assert np.isin(truth, cand).all()
    assert np.all(np.diff(cand) > 0)  # unique, sorted
    # and the index prunes: far fewer candidates than objects for small cones
    if radius <= 1.0:
        assert cand.size < 0.2 * ra.size


def test_query_nside_follows_the_radius() -> None:
    index = _static_index(np.array([0.0]), np.array([0.0]), nside=256)
    assert index.query_nside(0.05) == 256
    assert index.query_nside(0.1) == 256
    assert index.query_nside(0.2) == 128
    assert index.query_nside(0.42) == 64
    assert index.query_nside(2.12) == 64
    assert index.query_nside(10.0) == 64  # never coarser: candidates would dominate
    assert index.time_bin(-1.0) == 0 and index.time_bin(5.0) == 1
