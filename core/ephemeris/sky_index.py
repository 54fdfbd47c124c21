"""HEALPix index of where each object is on the sky, per time bin.

The store's span is cut into time bins of ``bin_days``. For every object and bin
the builder samples the object's apparent (topocentric, light-time corrected)
path often enough that no point of the true path is farther than ``pad_deg``
from a sample (``rate_max * spacing / 2 <= pad_deg``), and records the HEALPix
cells (NESTED, ``nside``) of the samples. Diurnal parallax is part of that
apparent path, so it is padded for too.

Completeness: if an object is within ``r`` of a query centre at time ``t`` in bin
``b``, some sample of its path is within ``r + pad_deg``, so the sample's cell
overlaps the cone of radius ``r + pad_deg``, which an inclusive cone search
returns. The query therefore never misses an object the exact distance test would keep.

On disk the index is a dense CSR: ``offsets`` (int64, ``n_bins * npix + 1``, one entry
per key ``bin * npix + cell`` whether occupied or not) and ``objects`` (int32 row
numbers), so the objects of key ``k`` are ``objects[offsets[k]:offsets[k + 1]]``. A
dense table is looked up directly (no binary search over millions of keys, which
touches ~20 scattered pages per lookup on a cold store). Because NESTED children of a
cell are contiguous, a cone can be searched at any coarser ``nside`` and each coarse
cell becomes one contiguous key range: big cones use few coarse cells (the cone
search itself is then cheap), small cones fine ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # cdshealpix's Rust entry point: the public wrapper adds ~40 us of astropy unit handling
    from cdshealpix.cdshealpix import cone_search as _cds_cone
except ImportError:  # pragma: no cover - another cdshealpix layout: use the public API
    _cds_cone = None

__all__ = [
    "SkyIndex",
    "cone_cells",
    "dense_offsets",
    "lonlat_to_cells",
    "merge_entries",
    "pack_entries",
]

try:  # compiled gather (built at install); the numpy path below is the fallback
    from . import _query_kernel
except ImportError:  # pragma: no cover - installed without a C compiler / Cython
    _query_kernel = None  # type: ignore[assignment]

IntArray = npt.NDArray[np.int64]
_OBJ_BITS = 31  # object row numbers < 2**31 in packed (key, object) entries


def _check_nside(nside: int) -> int:
    nside = int(nside)
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"nside must be a power of two, got {nside}")
    return nside


def cone_cells(ra_deg: float, dec_deg: float, radius_deg: float, nside: int) -> IntArray:
    """NESTED cells at ``nside`` that overlap the cone, even partly, int64.

    Uses cdshealpix, whose cone search is exact-inclusive. astropy-healpix's is not: it
    returns the cells whose centres are within the radius, so a cell that a small cone only
    clips is missed (e.g. nside 256, cone of 0.07 deg at (180.962, 44.295) deg: astropy
    gives cell 174839 only, the cone also overlaps 174838), and it is 3-10x slower.
    """
    depth = _check_nside(nside).bit_length() - 1
    return np.asarray(_cone_cells_depth(ra_deg, dec_deg, radius_deg, depth), dtype=np.int64)


def _cone_cells_depth(ra_deg: float, dec_deg: float, radius_deg: float, depth: int) -> npt.NDArray[np.uint64]:
    """:func:`cone_cells` at a HEALPix depth, as cdshealpix returns them (uint64)."""
    ra, dec, r = math.radians(ra_deg), math.radians(dec_deg), math.radians(radius_deg)
    if _cds_cone is not None:  # plain Python numbers: no conversions on the way in
        return _cds_cone(depth, 2, ra, dec, r, True)[0]
    import astropy.units as u  # pragma: no cover
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import cone_search

    cells = cone_search(Longitude(ra * u.rad), Latitude(dec * u.rad), r * u.rad, depth, flat=True)[0]
    return np.asarray(cells, dtype=np.uint64)


def lonlat_to_cells(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, nside: int) -> IntArray:
    """NESTED cells of positions in degrees, int64."""
    import astropy.units as u
    from astropy_healpix import lonlat_to_healpix

    nside = _check_nside(nside)
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.clip(np.asarray(dec_deg, dtype=np.float64), -90.0, 90.0)
    return np.asarray(lonlat_to_healpix(ra * u.deg, dec * u.deg, nside, order="nested"), dtype=np.int64)


def pack_entries(bins: npt.ArrayLike, cells: npt.ArrayLike, objects: npt.ArrayLike, nside: int) -> IntArray:
    """Unique packed ``(key << 31) | object`` entries, key = ``bin * npix + cell``."""
    npix = 12 * _check_nside(nside) ** 2
    key = np.asarray(bins, dtype=np.int64) * npix + np.asarray(cells, dtype=np.int64)
    obj = np.asarray(objects, dtype=np.int64)
    if obj.size and (obj.min() < 0 or obj.max() >= 2**_OBJ_BITS):
        raise ValueError("object row numbers must be in [0, 2**31)")
    return np.unique((key << _OBJ_BITS) | obj)


def merge_entries(parts: list[IntArray]) -> tuple[IntArray, IntArray, npt.NDArray[np.int32]]:
    """CSR arrays ``(keys, offsets, objects)`` from lists of packed entries."""
    packed = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    key = packed >> _OBJ_BITS
    objects = (packed & ((1 << _OBJ_BITS) - 1)).astype(np.int32)
    keys, starts = np.unique(key, return_index=True)
    offsets = np.append(starts, key.size).astype(np.int64)
    return keys.astype(np.int64), offsets, objects


def dense_offsets(keys: IntArray, offsets: IntArray, n_keys: int) -> IntArray:
    """Dense CSR offsets (``n_keys + 1``, int64) from sparse ``(keys, offsets)``."""
    counts = np.zeros(n_keys, np.int64)
    counts[np.asarray(keys, dtype=np.int64)] = np.diff(offsets)
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)])


@dataclass(frozen=True)
class SkyIndex:
    """The index as stored: dense CSR arrays plus the geometry they were built with."""

    offsets: IntArray
    """Start of each key's (``bin * npix + cell``) objects in :attr:`objects`, plus the end (int64)."""
    objects: npt.NDArray[np.int32]
    """Object row numbers, grouped by key (int32)."""
    nside: int
    """HEALPix NESTED resolution of the cells."""
    n_bins: int
    """Number of time bins covering the store span."""
    bin_days: float
    """Length of a time bin (days)."""
    pad_deg: float
    """Largest distance of a true path point from its nearest sample (deg)."""

    @property
    def npix(self) -> int:
        return 12 * self.nside * self.nside

    def time_bin(self, dt_days: float) -> int:
        """Bin holding ``dt_days`` since the span start (the span end belongs to the last bin)."""
        return int(min(max(dt_days // self.bin_days, 0), self.n_bins - 1))

    def query_nside(self, radius_deg: float) -> int:
        """Resolution to search a cone of this radius at: cells about twice the radius,
        but none coarser than nside 64 (0.92 deg), never finer than the index.

        Coarser cells mean a cheaper cone search (cdshealpix's cost grows with the cells
        it returns: ~11 us for 19 cells at nside 256, ~5-7 us for 9 at 128, ~3 us for 4
        at 64) but more candidates (an area of about (2 r + cell)^2). Measured on a 1.3 M
        object store (benchmarks/ephem_query.py): r = 0.42 deg is 5 % faster at nside 64
        than at 128 for sparse cones and as fast near the ecliptic; r = 2.12 deg is
        fastest at 64 (2.5x slower near the ecliptic at 32).
        """
        # HEALPix cell size ~ 58.6 deg / nside
        level = round(math.log2(58.6 / max(2.0 * radius_deg, 1e-9)))
        return min(2 ** min(max(level, 6), 29), self.nside)

    def candidates(
        self, dt_days: float, ra_deg: float, dec_deg: float, radius_deg: float
    ) -> npt.NDArray[np.integer[Any]]:
        """Object rows that may be within ``radius_deg`` of the centre at ``dt_days`` (unique,
        sorted; int32 as stored, no conversion)."""
        b = self.time_bin(dt_days)
        search_deg = radius_deg + self.pad_deg
        nside_q = self.query_nside(search_deg)
        depth_q = nside_q.bit_length() - 1
        # each (coarse) cell is one contiguous key range [lo, lo + 2**shift) (NESTED order)
        shift = 2 * (self.nside.bit_length() - nside_q.bit_length())
        cells_u64 = _cone_cells_depth(ra_deg, dec_deg, search_deg, depth_q)
        if _query_kernel is not None:
            return _query_kernel.gather_cone(self.offsets, self.objects, cells_u64, shift, b * self.npix)
        # the numpy fallback: the same steps, the same checks of what the store file holds
        lo = (cells_u64.astype(np.int64) << shift) + b * self.npix
        if lo.size and lo.max() + (1 << shift) >= self.offsets.size:
            raise IndexError(f"sky index key {int(lo.max())} outside the index's {self.offsets.size - 1} keys")
        start, stop = self.offsets[lo], self.offsets[lo + (1 << shift)]
        n = stop - start
        if n.size and (start.min() < 0 or n.min() < 0 or stop.max() > self.objects.size):
            raise IndexError(f"sky index offsets outside its {self.objects.size} entries")
        ends = np.cumsum(n)
        # concatenated ranges without a Python loop: running index minus each range's shift
        found = self.objects[np.arange(int(ends[-1]) if n.size else 0) + np.repeat(start - (ends - n), n)]
        if found.size == 0:
            return found
        rows = np.sort(found)
        # an object is listed in every cell its path crosses: keep one of each
        first = np.empty(rows.size, bool)
        first[0] = True
        np.not_equal(rows[1:], rows[:-1], out=first[1:])
        return rows[first]
