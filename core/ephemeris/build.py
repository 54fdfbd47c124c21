"""Build an ephemeris store: sample positions, fit Chebyshev segments, verify, index, write.

Pipeline for ``[start, end]`` (MJD TAI, a continuous interval: day and night alike):

1. Observer: its heliocentric position (``observatory.observer_states``) is fitted with
   ``observer_degree`` Chebyshev segments of ``observer_segment_days`` and verified
   between the nodes.
2. Objects, in chunks (one process each with ``workers > 1``): the sampler gives each
   object's light-time-corrected heliocentric ICRS position at the Chebyshev nodes of its
   segments and at check points between the nodes (the ends and the midpoints between
   nodes, where interpolation errors peak). Every object starts with
   ``n_base_segments`` segments; objects whose worst check error (projected on the sky,
   ``|dr| / topocentric distance``, in mas) exceeds ``tolerance_mas`` are refitted with
   twice as many segments, up to ``max_level`` halvings. Main-belt objects and beyond pass
   with one segment a day; close NEOs take finer ones (measured: docs/ephemeris.md).
3. Index: the fitted apparent path of every object in every time bin is sampled densely
   enough for the index pad (see :mod:`.sky_index`) and its HEALPix cells recorded.
4. Write: arrays plus a manifest to a temporary directory, renamed into place.

The sampler is the N-body integrator (``nbody.observe``) by default. :func:`two_body_sampler`
(Kepler orbits + light time) exists for tests and benchmarks only and is labelled as such
in the manifest of any store built with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..designation import DesignationError, packed_to_ss_object_id
from .chebyshev import (
    chebyshev_basis,
    chebyshev_nodes,
    check_points,
    evaluate_segments,
    fit_coefficients,
    segment_index_and_x,
)
from .orbits import OrbitTable
from .sky_index import dense_offsets, lonlat_to_cells, merge_entries
from .store import EphemerisStoreError, segment_records, sha256_file, write_store_directory

__all__ = [
    "BuildParameters",
    "BuildResult",
    "ProgressCallback",
    "Sampler",
    "build_store",
    "nbody_sampler",
    "ss_object_ids",
    "two_body_sampler",
]

FloatArray = npt.NDArray[np.float64]
RAD_TO_MAS = 180.0 / math.pi * 3600e3
C_AU_PER_DAY = 299_792.458 / 149_597_870.7 * 86_400.0

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage ``"observer"``, ``"objects"`` (done/total objects),
``"index"`` or ``"write"``. Raising from it aborts the build (nothing is left behind)."""


class Sampler(Protocol):
    """Positions the store is fitted to.

    ``sampler(orbits, times_mjd_tai)`` returns the light-time-corrected heliocentric ICRS
    position (AU) of every object at every observation time, shape ``(n, T, 3)``: the
    object's position at the emission time of the light that reaches the observer at
    ``times_mjd_tai``. NaN marks an object that could not be propagated.
    """

    name: str

    def __call__(self, orbits: OrbitTable, times_mjd_tai: FloatArray) -> FloatArray: ...


@dataclass(frozen=True)
class BuildParameters:
    """Fit, verification and index parameters (recorded in the manifest)."""

    degree: int = 7
    """Chebyshev degree of object segments."""
    max_segment_days: float = 1.0
    """Longest object segment; the span is first cut into ceil(span / this) segments."""
    max_level: int = 8
    """At most this many halvings of an object's segments (1 day / 256 = 5.6 min)."""
    tolerance_mas: float = 1.0
    """Refine an object's segments while its worst check error exceeds this (mas)."""
    observer_degree: int = 11
    """Chebyshev degree of observer segments."""
    observer_segment_days: float = 1.0 / 12.0
    """Observer segment length (days); diurnal rotation needs short segments."""
    index_nside: int = 256
    """HEALPix NESTED resolution of the sky index (cells ~0.23 deg)."""
    index_bin_days: float = 0.125
    """Index time bin (3 h)."""
    index_pad_deg: float = 0.02
    """Largest gap between a true path point and its nearest index sample (deg)."""
    uncertainty_floor_arcsec: float = 0.1
    """Model error added in quadrature to the fit error for ``ephUncertainty``: the p95
    N-body-vs-Horizons error of the propagation up to 3 years from epoch (issue 3)."""
    chunk_objects: int = 50_000
    """Objects per work unit."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    n_objects: int
    n_skipped: int
    worst_fit_error_mas: float
    seconds: float
    manifest: dict[str, Any]


# -- samplers ----------------------------------------------------------------------------
def nbody_sampler(observatory: str) -> Sampler:
    """The production sampler: REBOUND N-body with DE421 perturbers and light-time iteration."""
    return _NBodySampler(observatory)


class _NBodySampler:
    name = "nbody"

    def __init__(self, observatory: str) -> None:
        self.observatory = observatory

    def __call__(self, orbits: OrbitTable, times_mjd_tai: FloatArray) -> FloatArray:
        from . import nbody

        states = nbody.observe(orbits, times_mjd_tai, self.observatory, workers=1)
        # Observer-to-object vector (object at emission, observer at reception, differenced
        # in the barycentric frame) plus the observer's heliocentric position: the object at
        # emission relative to the Sun at reception. Fitting this makes topocentric
        # directions exact; as "heliocentric" it is off by the Sun's barycentric motion
        # during the light time (<= ~1e-7 AU), see docs/ephemeris.md.
        q = states.topo_pos_au + states.obs_helio_pos_au[None, :, :]
        return np.asarray(q, dtype=np.float64)


def two_body_sampler(observatory: str) -> Sampler:
    """FOR TESTS AND BENCHMARKS ONLY: Kepler orbits around the Sun plus light time.

    Two-body motion is off by arcseconds after months (science.md); it is here because
    it is fast and exact for itself, which is what tests of the store mechanics need.
    Stores built with it say ``sampler: "two-body (TEST ONLY)"`` in their manifest.
    """
    return _TwoBodySampler(observatory)


class _TwoBodySampler:
    name = "two-body (TEST ONLY)"

    def __init__(self, observatory: str) -> None:
        self.observatory = observatory

    def __call__(self, orbits: OrbitTable, times_mjd_tai: FloatArray) -> FloatArray:
        from .observatory import observer_states
        from .orbits import propagate_two_body
        from .timescales import mjd_tai_to_tdb

        t = np.asarray(times_mjd_tai, dtype=np.float64)
        obs_p, _ = observer_states(self.observatory, t)
        t_tdb = t + (mjd_tai_to_tdb(t[:1])[0] - t[0])  # TDB-TAI is constant to 2 ms over days
        dt = t_tdb[None, :] - orbits.epoch_mjd_tdb[:, None]
        p0, v0 = orbits.pos_au[:, None, :], orbits.vel_au_per_day[:, None, :]
        pos, _ = propagate_two_body(p0, v0, dt)
        for _ in range(2):  # light time: converges to << 1 mas in two steps
            rho = np.linalg.norm(pos - obs_p[None], axis=-1)
            pos, _ = propagate_two_body(p0, v0, dt - rho / C_AU_PER_DAY)
        return np.asarray(pos, dtype=np.float64)


# -- ssObjectId ------------------------------------------------------------------------------
def ss_object_ids(object_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Rubin ``ssObjectId`` per object: the packed designation's Latin-1 bytes, big-endian.

    Ids that are not 7-8 Latin-1 characters (MPCORB's 5-character packed numbers, free-form
    OpenOrb ``ObjID``) still get their bytes' big-endian value when <= 8 bytes, else a
    63-bit BLAKE2b hash of the UTF-8 id, so every object has a stable int64 id.
    """
    out = np.empty(len(np.asarray(object_ids, dtype=object)), dtype=np.int64)
    for i, raw in enumerate(np.asarray(object_ids, dtype=object)):
        s = str(raw).strip()
        try:
            value = packed_to_ss_object_id(s)
        except DesignationError:
            value = _bytes_id(s)
        out[i] = value if value < 2**63 else value - 2**64  # int64 column: wrap the rare top bit
    return out


def _bytes_id(s: str) -> int:
    try:
        raw = s.encode("latin-1")
        if 0 < len(raw) <= 8:
            return int.from_bytes(raw, "big")
    except UnicodeEncodeError:
        pass
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big") >> 1


# -- fitting ---------------------------------------------------------------------------------
def _segment_times(n_seg: int, length_days: float, x: FloatArray) -> FloatArray:
    """``(n_seg, len(x))`` times (days since start) of reduced points ``x`` in every segment."""
    starts = np.arange(n_seg) * length_days
    return starts[:, None] + (x[None, :] + 1.0) * (0.5 * length_days)


@dataclass
class _ChunkFit:
    coeffs: FloatArray  # (segments of the chunk's objects, in object order, 3, D+1)
    level: npt.NDArray[np.int8]
    fit_error_mas: FloatArray
    min_rho_au: FloatArray
    bad: npt.NDArray[np.bool_]
    entries: npt.NDArray[np.int64]  # packed index entries, object = row within the chunk


def _observer_fit(
    observatory: str, start: float, span: float, p: BuildParameters
) -> tuple[FloatArray, int, float]:
    """Observer coefficients, number of segments, worst check error (km)."""
    from .observatory import observer_states

    n_seg = max(1, math.ceil(span / p.observer_segment_days - 1e-9))
    length = span / n_seg
    d = p.observer_degree
    t_nodes = _segment_times(n_seg, length, chebyshev_nodes(d))
    t_check = _segment_times(n_seg, length, check_points(d))
    pos_n, _ = observer_states(observatory, start + t_nodes.ravel())
    pos_c, _ = observer_states(observatory, start + t_check.ravel())
    coeffs = fit_coefficients(pos_n.reshape(n_seg, d + 1, 3), d)
    t_basis, _ = chebyshev_basis(check_points(d), d)
    pred = np.einsum("sck,jk->sjc", coeffs, t_basis)
    err_au = np.linalg.norm(pred - pos_c.reshape(n_seg, d + 2, 3), axis=-1)
    return coeffs, n_seg, float(err_au.max() * 149_597_870.7)


def _fit_chunk(
    orbits: OrbitTable,
    sampler: Sampler,
    observatory: str,
    start: float,
    span: float,
    p: BuildParameters,
    obs_coeffs: FloatArray,
    n_obs_seg: int,
) -> _ChunkFit:
    n = len(orbits)
    d = p.degree
    n_base = max(1, math.ceil(span / p.max_segment_days - 1e-9))
    coeffs: list[FloatArray | None] = [None] * n
    level = np.zeros(n, np.int8)
    err = np.full(n, np.nan)
    min_rho = np.full(n, np.nan)
    bad = np.zeros(n, bool)
    todo = np.arange(n)
    basis_check, _ = chebyshev_basis(check_points(d), d)
    for lvl in range(p.max_level + 1):
        if todo.size == 0:
            break
        n_seg = n_base << lvl
        length = span / n_seg
        t_nodes = _segment_times(n_seg, length, chebyshev_nodes(d))
        t_check = _segment_times(n_seg, length, check_points(d))
        times = start + np.concatenate([t_nodes.ravel(), t_check.ravel()])
        sub = orbits.take(todo)
        samples = np.asarray(sampler(sub, times), dtype=np.float64)
        k = t_nodes.size
        node_s = samples[:, :k].reshape(todo.size, n_seg, d + 1, 3)
        check_s = samples[:, k:].reshape(todo.size, n_seg, d + 2, 3)
        finite = np.asarray(np.isfinite(samples).all(axis=(1, 2)), dtype=bool)
        c = fit_coefficients(node_s, d)  # (m, n_seg, 3, d+1)
        pred = np.einsum("msck,jk->msjc", c, basis_check)
        # observer from its verified fit (2e-5 km): only the distances need it here
        tc = t_check.ravel()
        obs_c, _ = _eval_at(obs_coeffs, np.zeros(tc.size, np.int64), np.full(tc.size, n_obs_seg), span, tc)
        rho = np.linalg.norm(check_s - obs_c.reshape(1, n_seg, d + 2, 3), axis=-1)
        err_mas = np.linalg.norm(pred - check_s, axis=-1) / rho * RAD_TO_MAS
        with np.errstate(invalid="ignore"):
            worst = np.where(finite, err_mas.reshape(todo.size, -1).max(axis=1), np.inf)
        done = (worst <= p.tolerance_mas) | (lvl == p.max_level) | ~finite
        for j in np.flatnonzero(done):
            coeffs[todo[j]] = c[j]
        rows = todo[done]
        level[rows] = lvl
        err[rows] = worst[done]
        min_rho[rows] = np.where(finite[done], rho.reshape(todo.size, -1)[done].min(axis=1), np.nan)
        bad[rows] = ~finite[done]
        todo = todo[~done]
    flat = np.concatenate([c for c in coeffs if c is not None], axis=0)
    return _ChunkFit(flat, level, err, min_rho, bad, np.empty(0, np.int64))


def _eval_at(
    coeffs: FloatArray,
    seg_start: npt.NDArray[np.int64],
    n_seg: npt.NDArray[np.int64],
    span: float,
    dt_days: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Positions (AU) and d/dt (AU/day) of objects (rows of the arrays) at their own times."""
    k, x, length = segment_index_and_x(dt_days, n_seg, span)
    return evaluate_segments(coeffs[seg_start + k], x, length)


def _eval_grid(
    coeffs: FloatArray,
    seg_start: npt.NDArray[np.int64],
    n_seg: npt.NDArray[np.int64],
    span: float,
    times: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Positions (AU) and d/dt (AU/day) of objects at common times, ``(n, 3, T)`` each.

    Objects with the same number of segments share segment boundaries, so for each such
    group and each segment the basis is evaluated once and applied to all objects with one
    ``einsum`` (no per-(object, time) gathers).
    """
    n, nt, deg = seg_start.size, times.size, coeffs.shape[-1] - 1
    pos = np.empty((n, 3, nt))
    vel = np.empty((n, 3, nt))
    xyz = np.arange(3)
    for ns in np.unique(n_seg):
        objs = np.flatnonzero(n_seg == ns)
        k, x, length = segment_index_and_x(times, np.full(nt, ns), span)
        t_basis, d_basis = chebyshev_basis(x, deg)
        d_basis = d_basis * (2.0 / length)[:, None]
        for kk in np.unique(k):
            ts = np.flatnonzero(k == kk)
            c = coeffs[seg_start[objs] + kk]
            p_ = np.einsum("mck,tk->mct", c, t_basis[ts])
            v_ = np.einsum("mck,tk->mct", c, d_basis[ts])
            if objs.size == n and ts.size == nt:
                pos[:], vel[:] = p_, v_
            else:
                sel = np.ix_(objs, xyz, ts)
                pos[sel], vel[sel] = p_, v_
    return pos, vel


def _index_chunk(
    coeffs: FloatArray,
    seg_start: npt.NDArray[np.int64],
    n_seg: npt.NDArray[np.int64],
    row0: int,
    span: float,
    obs_coeffs: FloatArray,
    n_obs_seg: int,
    p: BuildParameters,
) -> npt.NDArray[np.int64]:
    """Packed index entries of one chunk of objects (rows ``row0 + i``)."""
    n = seg_start.size
    n_bins = max(1, math.ceil(span / p.index_bin_days - 1e-9))
    bin_len = span / n_bins
    obs_start, obs_nseg = np.zeros(1, np.int64), np.array([n_obs_seg])

    def apparent(rows: npt.NDArray[np.int64], times: FloatArray) -> tuple[FloatArray, FloatArray]:
        pos, vel = _eval_grid(coeffs, seg_start[rows], n_seg[rows], span, times)
        o_p, o_v = _eval_grid(obs_coeffs, obs_start, obs_nseg, span, times)
        return pos - o_p, vel - o_v

    # 1. upper bound of the angular rate per object and bin: |v| / rho at 5 points per bin
    #    (ends shared), times 1.5 for variation between them (checked against brute force
    #    in the tests)
    probes = 4
    topo, vel = apparent(np.arange(n), np.linspace(0.0, span, n_bins * probes + 1))
    rate = np.linalg.norm(vel, axis=1) / np.linalg.norm(topo, axis=1)  # rad/day, (n, T)
    per_bin = np.maximum(rate[:, :-1].reshape(n, n_bins, probes).max(axis=2), rate[:, probes::probes])
    rate_max = np.degrees(per_bin.max(axis=1)) * 1.5 + 1e-3  # deg/day, per object
    # 2. samples per bin so that rate_max * spacing / 2 <= pad, a power of two per object
    n_int = np.ceil(rate_max * bin_len / (2.0 * p.index_pad_deg)).astype(np.int64)
    n_int = 1 << np.ceil(np.log2(np.maximum(n_int, 1))).astype(np.int64)
    npix = 12 * p.index_nside**2
    parts: list[npt.NDArray[np.int64]] = []
    for m in np.unique(n_int):
        m = int(m)
        group = np.flatnonzero(n_int == m)
        times = np.linspace(0.0, span, n_bins * m + 1)
        # sample j*m .. (j+1)*m of the grid belong to bin j (boundary samples to both)
        in_bin = np.arange(n_bins)[:, None] * m + np.arange(m + 1)[None, :]
        step = max(1, 2_000_000 // times.size)  # bound memory for fast objects
        for i in range(0, group.size, step):
            rows = group[i : i + step]
            topo, _ = apparent(rows, times)
            ra = np.degrees(np.arctan2(topo[:, 1], topo[:, 0]))
            dec = np.degrees(np.arcsin(np.clip(topo[:, 2] / np.linalg.norm(topo, axis=1), -1.0, 1.0)))
            cells = lonlat_to_cells(ra.ravel(), dec.ravel(), p.index_nside).reshape(rows.size, -1)
            keys = np.arange(n_bins)[None, :, None] * npix + cells[:, in_bin]  # (rows, bins, m+1)
            packed = (keys << 31) | (rows + row0)[:, None, None]
            parts.append(np.unique(packed))
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def _work_unit(
    args: tuple[OrbitTable, Sampler, str, float, float, BuildParameters, FloatArray, int],
) -> _ChunkFit:
    """Fit and index one chunk (runs in a worker process when ``workers > 1``)."""
    orbits, sampler, observatory, start, span, p, obs_coeffs, n_obs_seg = args
    fit = _fit_chunk(orbits, sampler, observatory, start, span, p, obs_coeffs, n_obs_seg)
    n_seg = (np.int64(_n_base(span, p)) << fit.level.astype(np.int64)).astype(np.int64)
    seg_start = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)
    good = ~fit.bad
    if good.all():
        fit.entries = _index_chunk(fit.coeffs, seg_start, n_seg, 0, span, obs_coeffs, n_obs_seg, p)
    elif good.any():  # index only objects with finite fits, under their chunk row numbers
        rows = np.flatnonzero(good)
        packed = _index_chunk(fit.coeffs, seg_start[rows], n_seg[rows], 0, span, obs_coeffs, n_obs_seg, p)
        fit.entries = _remap_objects(packed, rows)
    return fit


def _n_base(span: float, p: BuildParameters) -> int:
    return max(1, math.ceil(span / p.max_segment_days - 1e-9))


_OBJ_MASK = (1 << 31) - 1


def _segment_rows(seg_start: npt.NDArray[np.int64], n_seg: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Coefficient rows of objects' segments, object after object (no Python loop)."""
    total = int(n_seg.sum())
    ends = np.cumsum(n_seg)
    return np.asarray(np.arange(total) + np.repeat(seg_start - (ends - n_seg), n_seg), dtype=np.int64)


def _sky_order(
    coeffs: FloatArray,
    seg_start: npt.NDArray[np.int64],
    n_seg: npt.NDArray[np.int64],
    span: float,
    obs_coeffs: FloatArray,
    n_obs_seg: int,
    nside: int = 1024,
) -> npt.NDArray[np.int64]:
    """Objects sorted by the HEALPix NESTED cell of their apparent position at mid-span.

    NESTED order is hierarchical, so a fine key keeps every coarser grouping too: the
    candidates of any cone sit in a few runs of rows (fewer pages per cold query)."""
    n = seg_start.size
    mid = np.full(n, 0.5 * span)
    pos, _ = _eval_at(coeffs, seg_start, n_seg, span, mid)
    o_p, _ = _eval_at(obs_coeffs, np.zeros(1, np.int64), np.array([n_obs_seg]), span, mid[:1])
    topo = pos - o_p
    ra = np.degrees(np.arctan2(topo[:, 1], topo[:, 0]))
    dec = np.degrees(np.arcsin(np.clip(topo[:, 2] / np.linalg.norm(topo, axis=1), -1.0, 1.0)))
    good = np.isfinite(ra) & np.isfinite(dec)
    cells = np.zeros(n, np.int64)
    cells[good] = lonlat_to_cells(ra[good], dec[good], nside)
    return np.asarray(np.argsort(cells, kind="stable"), dtype=np.int64)


def _remap_objects(packed: npt.NDArray[np.int64], new_rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Packed entries with object ``i`` replaced by ``new_rows[i]`` (dropping ``new_rows < 0``)."""
    obj = new_rows[packed & _OBJ_MASK]
    keep = obj >= 0
    return np.asarray(((packed[keep] >> 31) << 31) | obj[keep], dtype=np.int64)


# -- the builder ---------------------------------------------------------------------------------
def build_store(
    orbits: OrbitTable,
    observatory: str,
    start_mjd_tai: float,
    end_mjd_tai: float,
    out_dir: str | Path,
    *,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    sampler: Sampler | None = None,
    parameters: BuildParameters | None = None,
    orbits_path: str | Path | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
) -> BuildResult:
    """Build a store for ``orbits`` seen from ``observatory`` over ``[start, end]`` MJD TAI.

    ``orbits_path`` (the catalogue file) is recorded with its SHA-256 in the manifest.
    Objects that cannot be propagated (NaN positions) raise unless ``skip_bad``, in which
    case they are dropped and counted. Returns a :class:`BuildResult`; the store is at
    ``out_dir`` only if the whole build succeeded.
    """
    import time as _time

    t_begin = _time.perf_counter()
    p = parameters or BuildParameters()
    start, end = float(start_mjd_tai), float(end_mjd_tai)
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise ValueError(f"need start < end (MJD TAI), got [{start_mjd_tai}, {end_mjd_tai}]")
    if end - start > 366.0:
        raise ValueError(f"span of {end - start:.1f} days is longer than the 366 days a store may cover")
    if len(orbits) == 0:
        raise ValueError("no orbits to build a store from")
    from .observatory import get_observatory

    get_observatory(observatory)  # unknown codes fail here, before any work
    span = end - start
    sampler = sampler or nbody_sampler(observatory)
    report = progress or (lambda stage, done, total: None)
    n = len(orbits)

    report("observer", 0, 1)
    obs_coeffs, n_obs_seg, obs_err_km = _observer_fit(observatory, start, span, p)
    report("observer", 1, 1)

    chunks = [np.arange(i, min(i + p.chunk_objects, n)) for i in range(0, n, p.chunk_objects)]
    fits: list[_ChunkFit] = []
    report("objects", 0, n)
    done_objects = 0
    units = ((orbits.take(c), sampler, observatory, start, span, p, obs_coeffs, n_obs_seg) for c in chunks)
    if workers > 1 and len(chunks) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for fit in pool.map(_work_unit, units):
                fits.append(fit)
                done_objects += fit.level.size
                report("objects", done_objects, n)
    else:
        for unit in units:
            fit = _work_unit(unit)
            fits.append(fit)
            done_objects += fit.level.size
            report("objects", done_objects, n)

    bad = np.concatenate([f.bad for f in fits])
    if bad.any() and not skip_bad:
        first = np.asarray(orbits.object_id)[np.flatnonzero(bad)[:5]]
        raise EphemerisStoreError(
            f"{int(bad.sum())} object(s) could not be propagated (first: {', '.join(map(str, first))}); "
            "fix the orbits or build with --skip-bad"
        )
    keep = ~bad
    n_kept = int(keep.sum())
    n_base = _n_base(span, p)
    level_all = np.concatenate([f.level for f in fits])
    coeffs = np.concatenate([f.coeffs for f in fits], axis=0)
    if bad.any():
        coeffs = coeffs[np.repeat(keep, np.int64(n_base) << level_all.astype(np.int64))]
    level = level_all[keep]
    fit_err = np.concatenate([f.fit_error_mas for f in fits])[keep]
    min_rho = np.concatenate([f.min_rho_au for f in fits])[keep]
    n_seg = (np.int64(n_base) << level.astype(np.int64)).astype(np.int64)
    seg_start = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)

    # Store objects in sky order (HEALPix cell at mid-span): a cone query's candidates
    # then sit in a few runs of rows, so it touches a few pages of each array instead of
    # one page per candidate (a 2-4x faster first touch of a memory-mapped store).
    order = _sky_order(coeffs, seg_start, n_seg, span, obs_coeffs, n_obs_seg)
    # segment level first: a level's objects then have equally many segments each, so an
    # object's segment row is row * segments + a per-level constant (no lookup table)
    order = order[np.argsort(level[order], kind="stable")]
    rank = np.empty(n_kept, np.int64)
    rank[order] = np.arange(n_kept)
    seg_rows = _segment_rows(seg_start[order], n_seg[order])
    coeffs, level, n_seg = coeffs[seg_rows], level[order], n_seg[order]
    fit_err, min_rho = fit_err[order], min_rho[order]
    seg_start = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)

    report("index", 0, n_kept)
    # final row of each input object (-1 for dropped ones), then the chunks' entries in it
    new_row = np.full(keep.size, -1, np.int64)
    new_row[keep] = rank
    parts = []
    row0 = 0
    for f in fits:
        parts.append(_remap_objects(f.entries, new_row[row0 : row0 + f.level.size]))
        row0 += f.level.size
        f.entries = np.empty(0, np.int64)
    del fits
    keys, offsets, objects = merge_entries(parts)
    del parts
    n_bins = max(1, math.ceil(span / p.index_bin_days - 1e-9))
    offsets = dense_offsets(keys, offsets, n_bins * 12 * p.index_nside**2)
    del keys
    report("index", n_kept, n_kept)
    # observer fit error seen from each object, added to its own fit error
    fit_err = fit_err + obs_err_km / 149_597_870.7 / min_rho * RAD_TO_MAS
    kept = orbits.take(np.flatnonzero(keep)[order])

    designation = np.asarray([str(x) for x in kept.name], dtype=str)  # fixed-width unicode
    uncertainty = np.hypot(fit_err / 1000.0, p.uncertainty_floor_arcsec)
    ss_ids = ss_object_ids(kept.object_id)
    records = segment_records(coeffs, n_seg, kept.h_mag, kept.g_slope, uncertainty, ss_ids)
    del coeffs
    level_first_row = np.searchsorted(level, np.arange(p.max_level + 2)).tolist()
    arrays = {
        "records": records,
        "level": level.astype(np.int8),
        "observer_coeffs": obs_coeffs,
        "index_offsets": offsets,
        "index_objects": objects,
        "ss_object_id": ss_ids,
        "designation": designation,
        "h_mag": kept.h_mag.astype(np.float32),
        "g_slope": kept.g_slope.astype(np.float32),
        "fit_error_mas": fit_err.astype(np.float32),
        "uncertainty_arcsec": uncertainty.astype(np.float32),
    }
    worst = float(np.max(fit_err)) if fit_err.size else 0.0
    worst_row = int(np.argmax(fit_err)) if fit_err.size else -1
    orbit_info: dict[str, Any] = {"path": None, "sha256": None}
    if orbits_path is not None:
        op = Path(orbits_path)
        orbit_info = {"path": str(op.absolute()), "sha256": sha256_file(op)}
    orbit_info["n_objects"] = n_kept
    orbit_info["n_skipped_reading"] = int(orbits.n_skipped)
    orbit_info["n_skipped_propagation"] = int(bad.sum())
    build_info = {
        **asdict(p),
        "sampler": sampler.name,
        "n_base_segments": n_base,
        "n_observer_segments": n_obs_seg,
        "index_n_bins": n_bins,
        "index_bin_days": span / n_bins,
        "level_first_row": level_first_row,
        "workers": int(workers),
        "seconds": round(_time.perf_counter() - t_begin, 3),
        "host_cpus": os.cpu_count(),
    }
    manifest = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "observatory": observatory,
        "start_mjd_tai": start,
        "end_mjd_tai": end,
        "n_objects": n_kept,
        "n_segments": int(records.shape[0]),
        "orbits": orbit_info,
        "build": build_info,
        "fit": {
            "worst_error_mas": worst,
            "worst_object": str(kept.object_id[worst_row]) if worst_row >= 0 else None,
            "p99_error_mas": float(np.percentile(fit_err, 99)) if fit_err.size else 0.0,
            "median_error_mas": float(np.median(fit_err)) if fit_err.size else 0.0,
            "observer_worst_error_km": obs_err_km,
            "objects_per_level": np.bincount(level.astype(np.int64), minlength=p.max_level + 1).tolist(),
            "meets_5_mas_target": bool(worst < 5.0),
        },
    }
    report("write", 0, 1)
    path = write_store_directory(out_dir, arrays, manifest, overwrite=overwrite)
    report("write", 1, 1)
    manifest = json.loads((path / "manifest.json").read_text())  # as written: with checksums
    return BuildResult(
        path=path,
        n_objects=n_kept,
        n_skipped=int(bad.sum()),
        worst_fit_error_mas=worst,
        seconds=_time.perf_counter() - t_begin,
        manifest=manifest,
    )
