"""The cached ephemeris store: a directory of memory-mapped arrays plus a JSON manifest.

Layout of a store directory (format version 2)::

    manifest.json          what, for where and when, how built, checksums (written last)
    records.npy            (n_segments, 3 * (degree + 1) + 4) float64, one row per segment:
                           Chebyshev coefficients of the object's light-time-corrected
                           heliocentric ICRS position (AU) as a function of observation
                           time (x, y, z blocks of degree + 1), then the object's H, G
                           (NaN -> 0.15), ephUncertainty (arcsec) and ssObjectId (the int64
                           bits). One fancy index gathers everything a query evaluates.
    level.npy              (n_objects,) int8: the object has n_base_segments * 2**level
                           equal segments over the span. Objects are sorted by level (then
                           sky position), so an object's rows are found arithmetically from
                           the manifest's ``build.level_first_row``
    observer_coeffs.npy    (n_observer_segments, 3, observer_degree + 1) float64: the
                           observer's heliocentric ICRS position (AU)
    index_offsets.npy      dense CSR offsets, one per key time_bin * npix + HEALPix NESTED
                           cell, plus the end (int64)
    index_objects.npy      object rows grouped by key (int32)
    ss_object_id.npy       (n_objects,) int64, Rubin ssObjectId
    designation.npy        (n_objects,) fixed-width unicode, readable designation
    h_mag.npy, g_slope.npy (n_objects,) float32 (NaN when unknown)
    fit_error_mas.npy      (n_objects,) float32, worst verified fit error of the object
    uncertainty_arcsec.npy (n_objects,) float32, the ephUncertainty column

Stores are written by :func:`write_store_directory` into a temporary sibling directory
and renamed into place, so the target path holds either nothing or a whole store.
Readers only ever map files read-only: any number of processes can share one store and
the page cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import mmap
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..columns import SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED
from ..version import __version__
from .magnitudes import _A1, _A2, _B1, _B2, DEFAULT_G
from .sky_index import SkyIndex

try:  # the compiled inner loops (built at install); the numpy path below is the fallback
    from . import _query_kernel
except ImportError:  # pragma: no cover - installed without a C compiler / Cython
    _query_kernel = None  # type: ignore[assignment]
    warnings.warn(
        "ssassoc.core.ephemeris._query_kernel is not built: ephemeris queries use the numpy path "
        "(same results, 1.6-5x slower); reinstall with a C compiler available",
        RuntimeWarning,
        stacklevel=2,
    )

if TYPE_CHECKING:
    from ..exposure import Exposure

__all__ = [
    "ARRAY_NAMES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SS_OBJECT_COLUMNS",
    "EphemerisCoverageError",
    "EphemerisStore",
    "EphemerisStoreError",
    "ObservatoryMismatchError",
    "segment_records",
    "sha256_file",
    "write_store_directory",
]

FORMAT_NAME = "ssassoc-ephemeris-store"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SS_OBJECT_COLUMNS: tuple[str, ...] = SS_OBJECT_REQUIRED + SS_OBJECT_OPTIONAL
"""Columns of every query result, in order."""

ARRAY_NAMES: tuple[str, ...] = (
    "records", "level", "observer_coeffs", "index_offsets", "index_objects",
    "ss_object_id", "designation", "h_mag", "g_slope", "fit_error_mas", "uncertainty_arcsec",
)  # fmt: skip

AU_KM = 149_597_870.7
DAY_S = 86_400.0
AU_PER_DAY_TO_KM_S = AU_KM / DAY_S
C_AU_PER_DAY = 299_792.458 / AU_KM * DAY_S
EXPOSURE_BUFFER_PIXELS = 100.0
"""Default cone margin around a detector, in pixels (the association's ``maxPixelMargin``)."""
PREFETCH_QUERIES = 64
_WARM_STREAK = 1000  # consecutive queries found cached before the probing stops
"""Where ``mincore`` is missing: queries after open that read their pages ahead in
parallel (see ``_RowPages``); elsewhere every query whose records are not cached does."""
EXPOSURE_BUFFER_ARCSEC = 10.0
"""Extra cone margin around a detector (arcsec), above the largest ephemeris errors."""

_FLOAT_COLUMNS = SS_OBJECT_COLUMNS[2:]
_DEG = 180.0 / math.pi
_KM_S_C = AU_PER_DAY_TO_KM_S * C_AU_PER_DAY
_NEG_A = np.array([[-_A1], [-_A2]])
_B_HALF = np.array([[_B1 / 2], [_B2 / 2]])  # tan(a/2)^B = (tan^2(a/2))^(B/2)
_BLOCK_PLACEMENT = (np.array([0]), np.array([1]), np.arange(2, len(SS_OBJECT_COLUMNS)))
_COLUMN_INDEX = pd.Index(SS_OBJECT_COLUMNS)

try:  # pandas >= 3: build the frame from its blocks (3x faster than the dict constructor)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - pandas 2
    _from_blocks = None
_STR_DTYPE: Any = pd.api.types.pandas_dtype("str")
_STR_ARRAY: Any = _STR_DTYPE.construct_array_type()


class EphemerisStoreError(RuntimeError):
    """The store directory is missing, corrupt, foreign or of an unsupported version."""


class EphemerisCoverageError(ValueError):
    """A time outside the span the store was built for."""


class ObservatoryMismatchError(ValueError):
    """An exposure from another observatory than the store was built for."""


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_store_directory(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    manifest: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``arrays`` and a manifest to ``out_dir`` atomically; return the final path.

    Everything goes to a temporary directory beside ``out_dir`` (same filesystem), is
    fsynced, checksummed into the manifest, and only then renamed to ``out_dir``. On any
    error the temporary directory is removed; a hard crash can leave only a hidden
    ``.<name>.partial-*`` sibling, never a half-written ``out_dir``. With ``overwrite`` an
    existing store is replaced (moved aside, then deleted after the new one is in place).
    """
    out = Path(out_dir).absolute()
    missing = set(ARRAY_NAMES) - set(arrays)
    if missing:
        raise ValueError(f"arrays missing from the store: {sorted(missing)}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        entries: dict[str, Any] = {}
        for name in ARRAY_NAMES:
            arr = np.ascontiguousarray(arrays[name])
            path = tmp / f"{name}.npy"
            with open(path, "wb") as f:
                np.save(f, arr, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            entries[name] = {
                "file": path.name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "sha256": sha256_file(path),
            }
        full = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "software_version": __version__,
            **manifest,
            "arrays": entries,
        }
        with open(tmp / MANIFEST, "w") as f:
            json.dump(full, f, indent=1, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        _fsync_dir(tmp)
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, trash / "store")
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class _Plan(NamedTuple):
    """What a query at one time needs besides its candidates (per store and time)."""

    basis: npt.NDArray[np.float64]
    """``(n_levels, 2, degree + 1)``: per segment level, ``T_k`` and ``dT_k/dt`` (per day)
    of the segment holding the time."""
    row_add: npt.NDArray[np.int64]
    """``(n_levels,)``: object row ``r`` of level ``l`` has its segment at record row
    ``r * n_segments[l] + row_add[l]``."""
    obs: npt.NDArray[np.float64]
    """``(6,)``: observer heliocentric position (AU) and velocity (AU/day)."""


@dataclass(frozen=True)
class _Geometry:
    start_mjd_tai: float
    end_mjd_tai: float
    n_base_segments: int
    degree: int
    observer_degree: int
    n_observer_segments: int

    @property
    def span_days(self) -> float:
        return self.end_mjd_tai - self.start_mjd_tai


class EphemerisStore:
    """A read-only, memory-mapped ephemeris store for one observatory and time span.

    Open with :meth:`open`. Queries evaluate every candidate's Chebyshev segment at the
    exact time and keep only objects whose evaluated position is within the radius.
    Instances hold only read-only maps: share one per process (e.g. in a task), and
    any number of processes can map the same store.
    """

    #: used by query_exposure to pad the detector's bounding circle
    exposure_buffer_pixels: ClassVar[float] = EXPOSURE_BUFFER_PIXELS
    exposure_buffer_arcsec: ClassVar[float] = EXPOSURE_BUFFER_ARCSEC

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.path = path
        self.manifest = manifest
        b = manifest["build"]
        self._geo = _Geometry(
            start_mjd_tai=float(manifest["start_mjd_tai"]),
            end_mjd_tai=float(manifest["end_mjd_tai"]),
            n_base_segments=int(b["n_base_segments"]),
            degree=int(b["degree"]),
            observer_degree=int(b["observer_degree"]),
            n_observer_segments=int(b["n_observer_segments"]),
        )
        self._a = arrays
        self._index = SkyIndex(
            offsets=arrays["index_offsets"],
            objects=arrays["index_objects"],
            nside=int(b["index_nside"]),
            n_bins=int(b["index_n_bins"]),
            bin_days=float(b["index_bin_days"]),
            pad_deg=float(b["index_pad_deg"]),
        )
        self._records = arrays["records"]
        self._designation = arrays["designation"]
        self._n_coef = 3 * (self._geo.degree + 1)
        # objects are sorted by segment level: level l holds rows [first[l], first[l + 1])
        first = [int(x) for x in b["level_first_row"]]
        self._level_bounds = np.asarray(first, dtype=np.int64)
        n_levels = len(first) - 1
        self._present_levels = [lvl for lvl in range(n_levels) if first[lvl + 1] > first[lvl]]
        nseg = [self._geo.n_base_segments << lvl for lvl in range(n_levels)]
        self._level_nseg = nseg
        self._level_nseg_arr = np.asarray(nseg, dtype=np.int64)
        seg_first = np.concatenate([[0], np.cumsum(np.diff(first) * np.asarray(nseg, np.int64))])
        # segment row of object i at level l, segment k: i * nseg[l] + row_shift[l] + k
        self._row_shift = np.asarray([int(seg_first[lvl]) - first[lvl] * nseg[lvl] for lvl in range(n_levels)])
        # the only level with objects (the usual store), or None: then rows need a level lookup
        self._single_level = self._present_levels[0] if len(self._present_levels) == 1 else None
        self._plan_cache: tuple[float, _Plan] | None = None
        # tiny and touched by every query: in RAM, not a page fault on a cold store
        self._observer_coeffs = np.array(arrays["observer_coeffs"])
        # the first queries of a fresh process ask for their record and designation pages
        # all at once, so a cold store reads them in parallel, not one fault after another
        records_pages, designation_pages = _RowPages.of(self._records), _RowPages.of(self._designation)
        # hint while the candidates' records are not in the page cache (probed with mincore
        # per query, ~1 us); where mincore is missing, for the first PREFETCH_QUERIES queries
        self._cold_queries = PREFETCH_QUERIES if records_pages and designation_pages else 0
        self._probe = bool(self._cold_queries) and _mincore is not None
        self._warm_streak = 0
        # open(prefetch=True): set after the first query, which the read-ahead waits for
        self._first_query_done: threading.Event | None = None
        self._records_pages: _RowPages = records_pages  # type: ignore[assignment]  # used when not None
        self._designation_pages: _RowPages = designation_pages  # type: ignore[assignment]

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, verify: bool = False, prefetch: bool = False) -> EphemerisStore:
        """Map the store at ``path`` read-only (lazy: pages load on first touch).

        Checks the manifest (format, version, required fields) and every array's file,
        dtype and shape; with ``verify`` also every array's SHA-256 (reads all bytes).
        With ``prefetch`` the kernel is asked to read the whole store into the page cache
        in the background once the first query has returned (``posix_fadvise(WILLNEED)``
        in a thread; open stays fast), so later first touches are cheap minor faults
        instead of disk reads. Either way a query whose records are not in the page cache
        (probed with ``mincore``) announces the record and designation pages it is about
        to read, so the kernel reads them in parallel (~1 ms for a cold first query).
        Raises :class:`EphemerisStoreError` with the reason when anything is off.
        """
        root = Path(path)
        if not root.is_dir():
            raise EphemerisStoreError(f"ephemeris store {root} does not exist or is not a directory")
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise EphemerisStoreError(
                f"{root} is not an ephemeris store: no {MANIFEST} (an interrupted build leaves none)"
            )
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EphemerisStoreError(f"{mpath} is corrupt: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise EphemerisStoreError(
                f"{root} is not an ssassoc ephemeris store (manifest format "
                f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT_NAME!r})"
            )
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise EphemerisStoreError(
                f"{root} has store format version {version!r}; this ssassoc ({__version__}) reads "
                f"version {FORMAT_VERSION}: rebuild it with `ssassoc ephem build`"
            )
        try:
            for key in ("observatory", "start_mjd_tai", "end_mjd_tai", "n_objects", "build", "arrays"):
                manifest[key]
            for key in ("n_base_segments", "degree", "observer_degree", "n_observer_segments",
                        "index_nside", "index_n_bins", "index_bin_days", "index_pad_deg"):  # fmt: skip
                manifest["build"][key]
        except (KeyError, TypeError) as exc:
            raise EphemerisStoreError(f"{mpath} is corrupt: missing field {exc}") from exc
        arrays: dict[str, np.ndarray] = {}
        for name in ARRAY_NAMES:
            entry = manifest["arrays"].get(name)
            if not isinstance(entry, dict):
                raise EphemerisStoreError(f"{mpath} is corrupt: no entry for array {name!r}")
            fpath = root / str(entry.get("file", ""))
            if not fpath.is_file():
                raise EphemerisStoreError(f"ephemeris store {root} is incomplete: {fpath.name} is missing")
            try:
                arr = np.load(fpath, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise EphemerisStoreError(f"ephemeris store array {fpath} is corrupt: {exc}") from exc
            if arr.dtype.str != entry.get("dtype") or list(arr.shape) != entry.get("shape"):
                raise EphemerisStoreError(
                    f"ephemeris store array {fpath} is corrupt: {arr.dtype.str} {list(arr.shape)} "
                    f"where the manifest says {entry.get('dtype')} {entry.get('shape')}"
                )
            if verify and sha256_file(fpath) != entry.get("sha256"):
                raise EphemerisStoreError(f"ephemeris store array {fpath} is corrupt: checksum mismatch")
            # queries touch a few scattered pages per array: without this, each first touch
            # of a cold store reads the device's whole read-ahead window (8 MiB here: 28 ms
            # for a first query instead of ~1 ms)
            _advise(arr, "MADV_RANDOM")
            # plain ndarray views of the maps: same pages, none of np.memmap's per-index overhead
            arrays[name] = arr.view(np.ndarray)
        n = int(manifest["n_objects"])
        if any(arrays[k].shape[0] != n for k in ("level", "ss_object_id", "designation")):
            raise EphemerisStoreError(f"ephemeris store {root} is corrupt: per-object arrays disagree on n")
        first = manifest["build"].get("level_first_row")
        deg = int(manifest["build"]["degree"])
        if (
            not isinstance(first, list)
            or len(first) < 2
            or first[0] != 0
            or first[-1] != n
            or arrays["records"].ndim != 2
            or arrays["records"].shape[1] != 3 * (deg + 1) + 4
        ):
            raise EphemerisStoreError(f"ephemeris store {root} is corrupt: records and levels disagree")
        store = cls(root, manifest, arrays)
        if prefetch:  # index first: every query needs it, records and designations by sky area
            order = ("index_offsets", "index_objects", "records", "designation")
            names = [*order, *(n for n in ARRAY_NAMES if n not in order)]
            files = [root / str(manifest["arrays"][n]["file"]) for n in names]
            store._first_query_done = threading.Event()
            threading.Thread(
                target=_read_ahead, args=(files, store._first_query_done), name="ephemeris-prefetch", daemon=True
            ).start()
        return store

    def warm(self) -> float:
        """Map every page of the store into this process now (reads one byte per page);
        returns the seconds it took.

        A long-running process reaches this state by itself as queries touch the sky;
        warming up front makes every query as fast as in that steady state, at the cost
        of a resident set the size of the store (429 MiB for 1.3 M objects over a day).
        Ends the cold queries' page hints: nothing is left to read.
        """
        t0 = time.perf_counter()
        self._cold_queries = 0
        for arr in self._a.values():
            _advise(arr, "MADV_WILLNEED")  # large sequential reads instead of a fault per page
        for arr in self._a.values():
            if arr.nbytes:
                flat = arr.reshape(-1).view(np.uint8) if arr.flags.c_contiguous else None
                if flat is not None:
                    int(flat[:: mmap.PAGESIZE].sum())
        return time.perf_counter() - t0

    # -- description ---------------------------------------------------------------
    @property
    def observatory(self) -> str:
        """MPC code of the observatory the store was built for."""
        return str(self.manifest["observatory"])

    @property
    def start_mjd_tai(self) -> float:
        return self._geo.start_mjd_tai

    @property
    def end_mjd_tai(self) -> float:
        return self._geo.end_mjd_tai

    @property
    def n_objects(self) -> int:
        return int(self.manifest["n_objects"])

    def __len__(self) -> int:
        return self.n_objects

    def __repr__(self) -> str:
        return (
            f"EphemerisStore({str(self.path)!r}, observatory={self.observatory!r}, "
            f"mjd_tai=[{self.start_mjd_tai}, {self.end_mjd_tai}], n_objects={self.n_objects})"
        )

    # -- evaluation ------------------------------------------------------------------
    def _dt_days(self, mjd_tai: float) -> float:
        t = float(mjd_tai)
        g = self._geo
        if not (g.start_mjd_tai <= t <= g.end_mjd_tai):  # also rejects NaN
            raise EphemerisCoverageError(
                f"time MJD {t!r} TAI is outside the store's span MJD "
                f"[{g.start_mjd_tai}, {g.end_mjd_tai}] TAI ({self.path})"
            )
        return t - g.start_mjd_tai

    def observer_state(self, mjd_tai: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Observer heliocentric ICRS position (AU) and velocity (AU/day) at ``mjd_tai``."""
        obs = self._plan(self._dt_days(mjd_tai)).obs
        return obs[:3].copy(), obs[3:].copy()

    def positions(self, rows: npt.ArrayLike, mjd_tai: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Heliocentric ICRS position (AU) at light-emission time and its derivative with
        respect to observation time (AU/day) of object ``rows`` observed at ``mjd_tai``,
        each ``(n, 3)``."""
        dt = self._dt_days(mjd_tai)
        rows_a = np.asarray(rows, dtype=np.int64).reshape(-1)
        states, _ = self._states(rows_a, self._plan(dt))
        return np.ascontiguousarray(states[0].T), np.ascontiguousarray(states[1].T)

    def _plan(self, dt: float) -> _Plan:
        """The observer's state and, per segment level, the Chebyshev basis and segment
        row offset at ``dt``.

        All objects of one level share their segment boundaries, so the basis is computed
        once per level (usually one has objects), not per object. Queries at one time
        (all detectors of a visit) reuse the last plan.
        """
        cached = self._plan_cache  # one (dt, plan) tuple: read and replaced atomically
        if cached is not None and cached[0] == dt:
            return cached[1]
        g = self._geo
        if _query_kernel is not None:
            basis, row_add, obs = _query_kernel.time_plan(
                dt, g.span_days, self._observer_coeffs, self._level_nseg_arr, self._row_shift, g.degree
            )
        else:
            length = g.span_days / g.n_observer_segments
            k = min(max(int(dt // length), 0), g.n_observer_segments - 1)
            td = _basis_td(2.0 * (dt - k * length) / length - 1.0, g.observer_degree, 2.0 / length)
            obs = (td @ self._observer_coeffs[k].T).reshape(6)  # AU, AU/day
            basis = np.zeros((len(self._level_nseg), 2, g.degree + 1))
            row_add = self._row_shift.copy()
            for lvl in self._present_levels:  # levels without objects are never looked up
                nseg = self._level_nseg[lvl]
                length = g.span_days / nseg
                k = min(max(int(dt // length), 0), nseg - 1)
                basis[lvl] = _basis_td(2.0 * (dt - k * length) / length - 1.0, g.degree, 2.0 / length)
                row_add[lvl] += k
        plan = _Plan(basis, row_add, obs)
        self._plan_cache = (dt, plan)
        return plan

    def _segment_rows(self, rows: npt.NDArray[Any], plan: _Plan) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | int]:
        """Segment (record) row of each object row at the plan's time; and each row's
        level (an int when the store has one level)."""
        lvl: npt.NDArray[Any] | int
        if self._single_level is not None:
            lvl = self._single_level
        else:
            lvl = np.searchsorted(self._level_bounds[1:-1], rows, side="right")
        return rows * self._level_nseg_arr[lvl] + plan.row_add[lvl], lvl

    def _states(
        self, rows: npt.NDArray[Any], plan: _Plan, prefetch: bool = False
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(2, 3, n)``: position (AU) and d/dt (AU/day) of objects ``rows``, component-major;
        and their records."""
        seg, lvl = self._segment_rows(rows, plan)
        if prefetch:
            self._hint_pages(rows, seg)
        rec = self._records[seg]
        coef = rec[:, : self._n_coef].reshape(-1, 3, self._geo.degree + 1)  # (n, axis, k)
        if isinstance(lvl, int):  # (2, k) @ (3, k, n): three small gemms
            return (plan.basis[lvl] @ coef.transpose(1, 2, 0)).transpose(1, 0, 2), rec
        return np.einsum("njk,nck->jcn", plan.basis[lvl], coef), rec

    def _hint_pages(self, rows: npt.NDArray[Any], seg: npt.NDArray[Any]) -> None:
        """Announce the record and designation pages of a cold query (see ``_RowPages``)."""
        if seg.size == 0:
            return
        if self._probe:
            if self._records_pages.resident(int(seg[seg.size // 2])):
                self._warm_streak += 1
                if self._warm_streak >= _WARM_STREAK:  # the store is cached: stop probing
                    self._cold_queries = 0
                return  # warm here: the hints would only cost time
            self._warm_streak = 0
        else:
            self._cold_queries -= 1  # a benign race between threads: only a hint
        self._records_pages.will_need(seg)
        self._designation_pages.will_need(rows)

    # -- queries ---------------------------------------------------------------------
    def query(self, mjd_tai: float, ra_deg: float, dec_deg: float, radius_deg: float) -> pd.DataFrame:
        """Objects whose predicted position at ``mjd_tai`` (TAI) is within ``radius_deg``
        of (``ra_deg``, ``dec_deg``) (ICRS, degrees), as a ``solarSystemObjectTable``.

        Columns (exactly :data:`SS_OBJECT_COLUMNS`): ``ssObjectId`` int64, ``designation``
        str, ``ephRa``/``ephDec`` deg (astrometric: light-time corrected, no aberration),
        ``ephRateRa`` (includes cos dec) / ``ephRateDec`` deg/day, ``helio_*``/``topo_*``
        AU at light-emission time, ``*_v*`` km/s, ``ephVmag`` mag (NaN without H),
        ``ephUncertainty`` arcsec (see docs/ephemeris.md). Rows ordered by store row.
        """
        return _frame(*self._query_parts(mjd_tai, ra_deg, dec_deg, radius_deg))

    def query_columns(self, mjd_tai: float, ra_deg: float, dec_deg: float, radius_deg: float) -> dict[str, np.ndarray]:
        """The result of :meth:`query` as 1-D numpy arrays keyed by exactly
        :data:`SS_OBJECT_COLUMNS` (in order), no pandas: ``ssObjectId`` int64,
        ``designation`` object array of str, the rest float64 (views of one block)."""
        return _columns(*self._query_parts(mjd_tai, ra_deg, dec_deg, radius_deg))

    def exposure_cone(self, exposure: Exposure) -> tuple[float, float, float]:
        """(ra_deg, dec_deg, radius_deg) of the cone :meth:`query_exposure` searches: the
        detector's bounding circle plus a margin (``exposure_buffer_pixels`` pixels +
        ``exposure_buffer_arcsec``).

        The bounding circle is measured from 8 points per detector edge mapped through the
        full WCS (distortions included). Raises :class:`ObservatoryMismatchError` if the
        exposure's observatory is not the store's.
        """
        if exposure.observatory != self.observatory:
            raise ObservatoryMismatchError(
                f"exposure is from observatory {exposure.observatory!r} but the ephemeris store "
                f"{self.path} was built for {self.observatory!r}"
            )
        ra_c, dec_c = exposure.centre_deg
        radius = exposure.bounding_radius_deg  # computed once per exposure, by the exposure
        buffer_deg = (self.exposure_buffer_pixels * exposure.pixel_scale_arcsec + self.exposure_buffer_arcsec) / 3600.0
        return float(ra_c), float(dec_c), radius + buffer_deg

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        """:meth:`query` at the exposure midpoint over :meth:`exposure_cone`."""
        return self.query(exposure.midpointMjdTai, *self.exposure_cone(exposure))

    def query_exposure_columns(self, exposure: Exposure) -> dict[str, np.ndarray]:
        """:meth:`query_columns` at the exposure midpoint over :meth:`exposure_cone`."""
        return self.query_columns(exposure.midpointMjdTai, *self.exposure_cone(exposure))

    def _query_parts(
        self, mjd_tai: float, ra_deg: float, dec_deg: float, radius_deg: float
    ) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
        """Shared by every query form: (ids, designations, float block (columns, n))."""
        dt = self._dt_days(mjd_tai)
        ra, dec, radius = float(ra_deg), float(dec_deg), float(radius_deg)
        if not (math.isfinite(ra) and -90.0 <= dec <= 90.0 and 0.0 <= radius <= 180.0):
            raise ValueError(
                f"bad cone: ra={ra_deg!r} dec={dec_deg!r} (deg, |dec| <= 90) radius={radius_deg!r} (deg, 0..180)"
            )
        cand: npt.NDArray[np.integer[Any]]
        try:
            if radius + self._index.pad_deg >= 90.0:
                cand = np.arange(self.n_objects, dtype=np.int32)  # a hemisphere or more: scan all
            else:
                cand = self._index.candidates(dt, ra, dec, radius)
                if cand.size == 0:
                    return _empty_parts(self._designation.dtype)
            parts = self._evaluate(cand, dt, ra, dec, radius)
        except IndexError as exc:  # only from a store whose index or records disagree
            raise EphemerisStoreError(
                f"ephemeris store {self.path} is corrupt: {exc} (check it with `ssassoc ephem info --verify`)"
            ) from exc
        if self._first_query_done is not None:
            self._first_query_done.set()  # the background read-ahead may start now
        return parts

    def _evaluate(
        self, cand: npt.NDArray[Any], dt: float, ra: float, dec: float, radius: float
    ) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
        """Evaluate candidates at ``dt``; (ids, designations, float block) of those in the cone.

        In the compiled kernel (``_query_kernel.evaluate_cone``): a sparse query's cost in
        numpy was per-call overhead (~60 calls of ~1 us on tens of rows), not arithmetic.
        """
        plan = self._plan(dt)
        ra_r, dec_r = math.radians(ra), math.radians(dec)
        cd = math.cos(dec_r)
        cx, cy, cz, cos_r = cd * math.cos(ra_r), cd * math.sin(ra_r), math.sin(dec_r), math.cos(math.radians(radius))
        if _query_kernel is not None:
            if self._cold_queries > 0:
                self._hint_pages(cand, self._segment_rows(cand, plan)[0])
            kept, ids, block = _query_kernel.evaluate_cone(
                cand, self._records, self._level_bounds, self._level_nseg_arr, plan.row_add, plan.basis, plan.obs,
                cx, cy, cz, cos_r, _KM_S_C, C_AU_PER_DAY, AU_PER_DAY_TO_KM_S,
            )  # fmt: skip
            if kept.size == 0:
                return _empty_parts(self._designation.dtype)
            return ids, self._designation[kept], block
        return self._evaluate_numpy(cand, plan, (cx, cy, cz), cos_r)

    def _evaluate_numpy(
        self, cand: npt.NDArray[Any], plan: _Plan, centre_xyz: tuple[float, float, float], cos_r: float
    ) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
        """:meth:`_evaluate` in numpy: the reference for the compiled kernel, and the
        fallback where it was not built. Few calls: one gather fetches every candidate's
        record, one matmul evaluates positions and derivatives (component-major, ``(3, n)``
        rows), and each output column is written straight into its row of the float block."""
        if cand.size and (cand[0] < 0 or cand[-1] >= self.n_objects):  # sorted: the ends suffice
            raise IndexError(f"object rows [{cand[0]}, {cand[-1]}] outside the store's {self.n_objects} objects")
        states, rec = self._states(cand, plan, self._cold_queries > 0)  # (2, 3, n): AU, AU/day
        obs = plan.obs[:, None]  # a column against component-major (6, n) states
        topo_all = states[0] - obs[:3]
        rho_all = np.hypot(np.hypot(topo_all[0], topo_all[1]), topo_all[2])
        idx = np.flatnonzero(np.array(centre_xyz) @ topo_all >= cos_r * rho_all)
        if idx.size == 0:  # common for sparse cones: skip the rest
            return _empty_parts(self._designation.dtype)
        # everything below only for objects inside the cone
        out = np.empty((len(_FLOAT_COLUMNS), idx.size))
        # helio position (AU, light-emission time) and d(helio)/d(t_obs) (AU/day, parked in
        # the topo rows), then topo and the apparent motion d(topo)/d(t_obs) side by side
        # (mode="clip": idx is valid by construction, and "raise" would buffer the output)
        np.take(states, idx, axis=2, out=out[4:10].reshape(2, 3, -1), mode="clip")
        z = out[4:10] - obs
        topo, v_app = z[:3], z[3:]
        rho = rho_all[idx]
        tv = (topo * v_app).sum(axis=0)  # rho * d(rho)/dt
        # velocity at emission time: d(helio)/d(t_obs) = v(t_emit) * (1 - rho_dot / c)
        np.multiply(out[7:10], _KM_S_C / (C_AU_PER_DAY - tv / rho), out=out[10:13])  # km/s
        np.subtract(out[10:13], obs[3:] * AU_PER_DAY_TO_KM_S, out=out[13:16])
        out[7:10] = topo
        rxy = np.hypot(topo[0], topo[1])
        np.arctan2(topo[1], topo[0], out=out[0])
        np.arctan2(topo[2], rxy, out=out[1])
        out[:2] *= _DEG
        np.mod(out[0], 360.0, out=out[0])  # ephRa, ephDec
        # d(ra)/dt cos(dec) = (x y' - y x') / (rxy rho); d(dec)/dt = (z' - z tv / rho^2) / rxy
        rho2 = rho * rho
        q = _DEG / np.maximum(rxy, 1e-300)  # no division by 0 at a pole
        np.multiply(topo[0], v_app[1], out=out[2])
        out[2] -= topo[1] * v_app[0]
        out[2] *= q / rho
        np.subtract(v_app[2], topo[2] * tv / rho2, out=out[3])
        out[3] *= q
        # V magnitude, H-G system (magnitudes.py), from tan^2(alpha / 2) = (r rho - h.t) / (r rho + h.t)
        ext = rec[idx, self._n_coef :]  # H, G, ephUncertainty, ssObjectId bits
        hh_ht = np.einsum("in,kin->kn", out[4:7], out[4:10].reshape(2, 3, -1))  # h.h, h.t
        rr2 = hh_ht[0] * rho2
        rr = np.sqrt(rr2)
        tan2_half = np.abs((rr - hh_ht[1]) / (rr + hh_ht[1]))  # abs: rounding at zero phase
        phi = np.exp(_NEG_A * tan2_half**_B_HALF)  # (2, m): phi_1, phi_2
        g = ext[:, 1]
        np.log10(rr2 / (phi[0] + g * (phi[1] - phi[0])), out=out[16])
        out[16] *= 2.5
        out[16] += ext[:, 0]
        out[17] = ext[:, 2]
        ids = np.ascontiguousarray(ext.view(np.int64)[:, 3])
        return ids, self._designation[cand[idx]], out


def _empty_parts(designation_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
    return np.empty(0, np.int64), np.empty(0, designation_dtype), np.empty((len(_FLOAT_COLUMNS), 0))


def _basis_td(x: float, degree: int, dxdt: float) -> npt.NDArray[np.float64]:
    """``(2, degree + 1)``: ``T_k(x)`` and ``dT_k/dt = dT_k/dx * dxdt``, by the recurrences
    (exact at ``x = +-1``) on plain floats: cheaper than numpy calls at this size."""
    x = min(max(x, -1.0), 1.0)
    t = [1.0, x][: degree + 1]
    d = [0.0, 1.0][: degree + 1]
    for k in range(1, degree):
        t.append(2.0 * x * t[k] - t[k - 1])
        d.append(2.0 * t[k] + 2.0 * x * d[k] - d[k - 1])
    return np.array([t, [v * dxdt for v in d]])


def _advise(arr: np.ndarray, advice_name: str) -> None:
    """``madvise`` the memory map behind ``arr`` (no-op where unsupported: only a hint)."""
    base: Any = arr
    while base is not None and getattr(base, "_mmap", None) is None:
        base = base.base
    mm = getattr(base, "_mmap", None)
    advice = getattr(mmap, advice_name, None)
    if mm is not None and advice is not None and hasattr(mm, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(advice)


def _load_mincore() -> Any:
    """libc's ``mincore(addr, length, vec)`` (Linux and most Unixes), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).mincore
    except (OSError, AttributeError):  # pragma: no cover - not a Unix libc
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    fn.restype = ctypes.c_int
    return fn


_mincore = _load_mincore()


def _read_ahead(files: list[Path], start: threading.Event) -> None:
    """Once ``start`` is set (or after 10 s), ``posix_fadvise(WILLNEED)`` each file in turn
    (the call releases the GIL). Waiting for the first query keeps its disk reads from
    queueing behind the store's 400 MiB (issued at open: open 40-120 ms, first query
    2.7 ms)."""
    start.wait(10.0)
    for f in files:
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)


class _RowPages:
    """Row ranges of a memory-mapped array read ahead in parallel (``MADV_WILLNEED``).

    With ``MADV_RANDOM`` every first touch of a page is one synchronous disk read (~70 us
    here); a cold query touching ~20 record pages one after another spends most of its
    time waiting. Announcing the candidates' row runs first lets the kernel issue those
    reads together.
    """

    _GAP_ROWS = 32  # rows closer than this are read as one run

    def __init__(self, mm: mmap.mmap, data_offset: int, row_bytes: int, address: int) -> None:
        self.mm, self.data_offset, self.row_bytes = mm, data_offset, row_bytes
        self.address = address  # of row 0 in this process
        self._vec = ctypes.create_string_buffer(1)

    def resident(self, row: int) -> bool:
        """Whether the page holding ``row`` is in the page cache (``mincore``)."""
        page = mmap.PAGESIZE
        a = self.address + row * self.row_bytes
        return _mincore is not None and _mincore(a - a % page, page, self._vec) == 0 and bool(self._vec.raw[0] & 1)

    @classmethod
    def of(cls, arr: np.ndarray) -> _RowPages | None:
        base: Any = arr
        while base is not None and getattr(base, "_mmap", None) is None:
            base = base.base
        if base is None or not hasattr(base._mmap, "madvise") or not hasattr(mmap, "MADV_WILLNEED"):
            return None
        # np.memmap maps from the offset rounded down to the allocation granularity
        return cls(base._mmap, int(base.offset) % mmap.ALLOCATIONGRANULARITY, int(arr.strides[0]), int(arr.ctypes.data))

    def will_need(self, rows: npt.NDArray[Any]) -> None:
        """Hint the pages of ``rows`` (sorted ascending)."""
        if rows.size == 0:
            return
        brk = np.flatnonzero(np.diff(rows) > self._GAP_ROWS)
        starts = rows[np.concatenate(([0], brk + 1))].tolist()
        stops = rows[np.concatenate((brk, [rows.size - 1]))].tolist()
        page = mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):  # only a hint
            for r0, r1 in zip(starts, stops, strict=True):
                b0 = self.data_offset + r0 * self.row_bytes
                a0 = b0 - b0 % page
                self.mm.madvise(mmap.MADV_WILLNEED, a0, self.data_offset + (r1 + 1) * self.row_bytes - a0)


def segment_records(
    coeffs: npt.NDArray[np.float64],
    n_seg: npt.ArrayLike,
    h_mag: npt.ArrayLike,
    g_slope: npt.ArrayLike,
    uncertainty_arcsec: npt.ArrayLike,
    ss_object_id: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """The ``records`` array: per segment row (objects' segments consecutive, ``n_seg``
    each) its coefficients ``(3, degree + 1)`` flattened, then the object's H, G (NaN ->
    the default 0.15, as :func:`magnitudes.v_magnitude`), ephUncertainty and the int64 bits
    of its ssObjectId."""
    n_segments = coeffs.shape[0]
    reps = np.asarray(n_seg, dtype=np.int64)
    rec = np.empty((n_segments, coeffs.shape[1] * coeffs.shape[2] + 4))
    rec[:, :-4] = coeffs.reshape(n_segments, -1)
    g = np.asarray(g_slope, dtype=np.float64)
    rec[:, -4] = np.repeat(np.asarray(h_mag, dtype=np.float64), reps)
    rec[:, -3] = np.repeat(np.where(np.isnan(g), DEFAULT_G, g), reps)
    rec[:, -2] = np.repeat(np.asarray(uncertainty_arcsec, dtype=np.float64), reps)
    rec.view(np.int64)[:, -1] = np.repeat(np.asarray(ss_object_id, dtype=np.int64), reps)
    return rec


def _columns(ids: np.ndarray, designation: np.ndarray, floats: np.ndarray) -> dict[str, np.ndarray]:
    """The result as a dict of 1-D arrays; float columns are row views of ``floats``."""
    cols: dict[str, np.ndarray] = {
        "ssObjectId": np.asarray(ids, dtype=np.int64),
        "designation": designation.astype(object),
    }
    cols.update(zip(_FLOAT_COLUMNS, floats, strict=True))
    return cols


def _frame(ids: np.ndarray, designation: np.ndarray, floats: np.ndarray) -> pd.DataFrame:
    """The result frame: one int64, one string and one float64 block (no per-column copies)."""
    n = floats.shape[1]
    ids64 = np.asarray(ids, dtype=np.int64)
    names = designation
    if _from_blocks is not None:
        # ExtensionArray._from_sequence directly: pd.array's dtype resolution costs more
        des = _STR_ARRAY._from_sequence(names.astype(object), dtype=_STR_DTYPE)
        blocks = [(ids64[None, :], _BLOCK_PLACEMENT[0]), (des, _BLOCK_PLACEMENT[1]), (floats, _BLOCK_PLACEMENT[2])]
        return _from_blocks(blocks, index=pd.RangeIndex(n), columns=_COLUMN_INDEX)
    data: dict[str, Any] = {"ssObjectId": ids64, "designation": names.astype(str)}  # pragma: no cover
    data.update(zip(_FLOAT_COLUMNS, floats, strict=True))  # pragma: no cover
    return pd.DataFrame(data, columns=list(SS_OBJECT_COLUMNS))  # pragma: no cover
