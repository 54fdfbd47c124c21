"""The cached ephemeris store: a directory of memory-mapped arrays plus a JSON manifest.

Layout of a store directory (format version 1)::

    manifest.json          what, for where and when, how built, checksums (written last)
    coeffs.npy             (n_segments, 3, degree + 1) float64: Chebyshev coefficients of
                           each object's light-time-corrected heliocentric ICRS position (AU)
                           as a function of observation time
    seg_start.npy          (n_objects,) int64: first segment row of each object
    level.npy              (n_objects,) int8: the object has n_base_segments * 2**level
                           equal segments over the span
    observer_coeffs.npy    (n_observer_segments, 3, observer_degree + 1) float64: the
                           observer's heliocentric ICRS position (AU)
    index_keys.npy         sorted unique time_bin * npix + HEALPix NESTED cell (int64)
    index_offsets.npy      CSR offsets into index_objects (int64)
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
import hashlib
import json
import math
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..columns import SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED
from ..version import __version__
from .chebyshev import chebyshev_basis
from .magnitudes import _A1, _A2, _B1, _B2, DEFAULT_G
from .sky_index import SkyIndex

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
    "sha256_file",
    "write_store_directory",
]

FORMAT_NAME = "ssassoc-ephemeris-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SS_OBJECT_COLUMNS: tuple[str, ...] = SS_OBJECT_REQUIRED + SS_OBJECT_OPTIONAL
"""Columns of every query result, in order."""

ARRAY_NAMES: tuple[str, ...] = (
    "coeffs", "seg_start", "level", "observer_coeffs",
    "index_keys", "index_offsets", "index_objects",
    "ss_object_id", "designation", "h_mag", "g_slope", "fit_error_mas", "uncertainty_arcsec",
)  # fmt: skip

AU_KM = 149_597_870.7
DAY_S = 86_400.0
AU_PER_DAY_TO_KM_S = AU_KM / DAY_S
C_AU_PER_DAY = 299_792.458 / AU_KM * DAY_S
EXPOSURE_BUFFER_PIXELS = 100.0
"""Default cone margin around a detector, in pixels (the association's ``maxPixelMargin``)."""
EXPOSURE_BUFFER_ARCSEC = 10.0
"""Extra cone margin around a detector (arcsec), above the largest ephemeris errors."""

_FLOAT_COLUMNS = SS_OBJECT_COLUMNS[2:]
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


_Tables = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


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
            keys=arrays["index_keys"],
            offsets=arrays["index_offsets"],
            objects=arrays["index_objects"],
            nside=int(b["index_nside"]),
            n_bins=int(b["index_n_bins"]),
            bin_days=float(b["index_bin_days"]),
            pad_deg=float(b["index_pad_deg"]),
        )
        self._levels = np.arange(int(b.get("max_level", 8)) + 1, dtype=np.int64)
        # per segment level (static): segments over the span, their length, dx/dt
        self._orders = np.arange(self._geo.degree + 1, dtype=np.float64)
        self._level_nseg = np.left_shift(self._geo.n_base_segments, self._levels)
        self._level_length = self._geo.span_days / self._level_nseg
        self._tables_cache: tuple[float, _Tables] | None = None
        self._observer_cache: tuple[float, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] | None = None
        per_level = manifest.get("fit", {}).get("objects_per_level")
        self._present_levels = (
            [int(i) for i, c in enumerate(per_level) if c] if per_level else [int(i) for i in self._levels]
        )

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, verify: bool = False, prefetch: bool = False) -> EphemerisStore:
        """Map the store at ``path`` read-only (lazy: pages load on first touch).

        Checks the manifest (format, version, required fields) and every array's file,
        dtype and shape; with ``verify`` also every array's SHA-256 (reads all bytes).
        With ``prefetch`` the kernel is asked to read the whole store into the page cache
        in the background (``madvise(MADV_WILLNEED)``; open stays fast), so later first
        touches are cheap minor faults instead of disk reads.
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
            if prefetch:
                _will_need(arr)
            # plain ndarray views of the maps: same pages, none of np.memmap's per-index overhead
            arrays[name] = arr.view(np.ndarray)
        n = int(manifest["n_objects"])
        if any(arrays[k].shape[0] != n for k in ("seg_start", "level", "ss_object_id", "designation")):
            raise EphemerisStoreError(f"ephemeris store {root} is corrupt: per-object arrays disagree on n")
        return cls(root, manifest, arrays)

    def warm(self) -> float:
        """Map every page of the store into this process now (reads one byte per page);
        returns the seconds it took.

        A long-running process reaches this state by itself as queries touch the sky;
        warming up front makes every query as fast as in that steady state, at the cost
        of a resident set the size of the store (385 MiB for 1.3 M objects over a day).
        """
        t0 = time.perf_counter()
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
        return self._observer(self._dt_days(mjd_tai))

    def _observer(self, dt_days: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        cached = self._observer_cache  # one (dt, state) tuple: read and replaced atomically
        if cached is not None and cached[0] == dt_days:
            return cached[1]
        state = self._observer_uncached(dt_days)
        self._observer_cache = (dt_days, state)
        return state

    def _observer_uncached(self, dt_days: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        g = self._geo
        length = g.span_days / g.n_observer_segments
        k = min(max(int(dt_days // length), 0), g.n_observer_segments - 1)
        x = 2.0 * (dt_days - k * length) / length - 1.0
        t, d = chebyshev_basis(x, g.observer_degree)
        c = self._a["observer_coeffs"][k]
        return c @ t, (c @ d) * (2.0 / length)

    def positions(
        self, rows: npt.ArrayLike, mjd_tai: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Heliocentric ICRS position (AU) at light-emission time and its derivative with
        respect to observation time (AU/day) of object ``rows`` observed at ``mjd_tai``."""
        dt = self._dt_days(mjd_tai)
        return self._helio(np.asarray(rows, dtype=np.int64), dt)

    def _level_tables(
        self, dt: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per segment level: segment number, basis T_k and dT_k/dt (per day) at ``dt``.

        All objects of one level share their segment boundaries, so the basis is computed
        once per level present in the store (usually one or two), in closed form:
        ``T_n = cos(n theta)``, ``dT_n/dx = n sin(n theta) / sin(theta)`` (``n^2 (+-1)^(n+1)``
        at ``x = +-1``), with plain floats, cheaper than array operations at this size.
        """
        cached = self._tables_cache  # one (dt, tables) tuple: read and replaced atomically
        if cached is not None and cached[0] == dt:
            return cached[1]
        k_tab = np.zeros(self._levels.size, np.int64)
        t_tab = np.zeros((self._levels.size, self._geo.degree + 1))
        d_tab = np.zeros_like(t_tab)
        orders = range(self._geo.degree + 1)
        for lvl in self._present_levels:
            nseg, length = int(self._level_nseg[lvl]), float(self._level_length[lvl])
            k = min(int(dt / length), nseg - 1)
            x = min(max(2.0 * (dt - k * length) / length - 1.0, -1.0), 1.0)
            theta = math.acos(x)
            sin_theta = math.sin(theta)
            dxdt = 2.0 / length
            k_tab[lvl] = k
            t_tab[lvl] = [math.cos(n * theta) for n in orders]
            if sin_theta > 1e-7:
                d_tab[lvl] = [n * math.sin(n * theta) / sin_theta * dxdt for n in orders]
            else:
                d_tab[lvl] = [n * n * (1.0 if x > 0 or n % 2 else -1.0) * dxdt for n in orders]
        # exposures of one visit (all detectors) share their midpoint: keep the last tables
        self._tables_cache = (dt, (k_tab, t_tab, d_tab))
        return k_tab, t_tab, d_tab

    def _helio(
        self, rows: npt.NDArray[np.int64], dt: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        k_tab, t_tab, d_tab = self._level_tables(dt)
        lvl = self._a["level"][rows]
        c = self._a["coeffs"][self._a["seg_start"][rows] + k_tab[lvl]]
        pos = np.einsum("nck,nk->nc", c, t_tab[lvl])
        vel = np.einsum("nck,nk->nc", c, d_tab[lvl])
        return pos, vel

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

    def query_columns(
        self, mjd_tai: float, ra_deg: float, dec_deg: float, radius_deg: float
    ) -> dict[str, np.ndarray]:
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
        w, h = exposure.width, exposure.height
        s = np.linspace(0.0, 1.0, 9)
        xs = np.concatenate([s * w, np.full(9, w), s * w, np.zeros(9)]) - 0.5
        ys = np.concatenate([np.zeros(9), s * h, np.full(9, h), s * h]) - 0.5
        ra_e, dec_e = exposure.pixel_to_sky_deg(xs, ys)
        radius = float(np.max(_separation_deg(ra_c, dec_c, ra_e, dec_e)))
        buffer_deg = (
            self.exposure_buffer_pixels * exposure.pixel_scale_arcsec + self.exposure_buffer_arcsec
        ) / 3600.0
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
                f"bad cone: ra={ra_deg!r} dec={dec_deg!r} (deg, |dec| <= 90) radius={radius_deg!r} "
                "(deg, 0..180)"
            )
        if radius + self._index.pad_deg >= 90.0:
            cand = np.arange(self.n_objects, dtype=np.int64)  # a hemisphere or more: scan all
        else:
            cand = self._index.candidates(dt, ra, dec, radius)
        return self._evaluate(cand, dt, ra, dec, radius)

    def _evaluate(
        self, cand: npt.NDArray[np.int64], dt: float, ra: float, dec: float, radius: float
    ) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64]]:
        """Evaluate candidates at ``dt``; (ids, designations, float block) of those in the cone.

        Component-major layout throughout: vectors are ``(3, n)`` and every column is
        written straight into its row of the float block, so each step is one numpy call
        on contiguous data (a query is dominated by per-call overhead, not arithmetic).
        """
        a = self._a
        # positions of all candidates; velocities only for those inside the cone
        k_tab, t_tab, d_tab = self._level_tables(dt)
        lvl = a["level"][cand]
        c = a["coeffs"][a["seg_start"][cand] + k_tab[lvl]]  # (n, 3, degree + 1)
        obs_p, obs_v = self._observer(dt)  # AU, AU/day
        topo = np.einsum("nck,nk->cn", c, t_tab[lvl]) - obs_p[:, None]  # (3, n) AU
        rho = np.sqrt(np.einsum("cn,cn->n", topo, topo))
        ra_r, dec_r = math.radians(ra), math.radians(dec)
        cd = math.cos(dec_r)
        centre = np.array([cd * math.cos(ra_r), cd * math.sin(ra_r), math.sin(dec_r)])
        keep = centre @ topo >= math.cos(math.radians(radius)) * rho
        if not keep.all():
            idx = np.flatnonzero(keep)
            cand, c, lvl, topo, rho = cand[idx], c[idx], lvl[idx], topo[:, idx], rho[idx]
        n = cand.size
        out = np.empty((len(_FLOAT_COLUMNS), n))
        helio, topo_o, v_helio, v_topo = out[4:7], out[7:10], out[10:13], out[13:16]
        np.copyto(topo_o, topo)
        np.add(topo, obs_p[:, None], out=helio)  # AU, light-emission time
        # apparent topocentric motion d(topo)/d(t_obs) (AU/day), kept in v_topo for now
        np.subtract(np.einsum("nck,nk->cn", c, d_tab[lvl]), obs_v[:, None], out=v_topo)
        u = topo / rho
        rho_dot = np.einsum("cn,cn->n", u, v_topo)
        cos_dec = np.hypot(u[0], u[1])
        np.arctan2(u[1], u[0], out=out[0])
        np.degrees(out[0], out=out[0])
        np.mod(out[0], 360.0, out=out[0])  # ephRa
        np.degrees(np.arcsin(np.clip(u[2], -1.0, 1.0)), out=out[1])  # ephDec
        scale = (180.0 / math.pi) / (rho * np.maximum(cos_dec, 1e-15))  # no division by 0 at a pole
        np.multiply(u[0] * v_topo[1] - u[1] * v_topo[0], scale, out=out[2])  # d(ra)/dt cos(dec)
        np.multiply(v_topo[2] - u[2] * rho_dot, scale, out=out[3])  # d(dec)/dt
        # velocity at emission time: d(helio)/d(t_obs) = v(t_emit) * (1 - rho_dot / c);
        # d(helio)/d(t_obs) = v_topo + obs_v
        factor = AU_PER_DAY_TO_KM_S / (1.0 - rho_dot / C_AU_PER_DAY)
        np.multiply(v_topo + obs_v[:, None], factor, out=v_helio)  # km/s
        np.subtract(v_helio, (obs_v * AU_PER_DAY_TO_KM_S)[:, None], out=v_topo)  # km/s
        # V magnitude, H-G system (see magnitudes.py); phase angle from the two vectors
        r_helio = np.sqrt(np.einsum("cn,cn->n", helio, helio))
        cos_phase = np.einsum("cn,cn->n", helio, topo) / (r_helio * rho)
        out[16] = _v_mag(a["h_mag"][cand], a["g_slope"][cand], r_helio, rho, cos_phase)
        out[17] = a["uncertainty_arcsec"][cand]
        return a["ss_object_id"][cand], a["designation"][cand], out


def _will_need(arr: np.ndarray) -> None:
    """Ask the kernel to read a memory-mapped array's file ahead (no-op where unsupported)."""
    mm = getattr(arr, "_mmap", None)
    advice = getattr(mmap, "MADV_WILLNEED", None)
    if mm is not None and advice is not None and hasattr(mm, "madvise"):
        with contextlib.suppress(OSError, ValueError):  # advice is only a hint
            mm.madvise(advice)


def _v_mag(
    h: np.ndarray,
    g: np.ndarray,
    r_au: npt.NDArray[np.float64],
    delta_au: npt.NDArray[np.float64],
    cos_phase: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """H-G V magnitude (the formula and constants of magnitudes.py) from the cosine of the
    phase angle, using tan(alpha / 2) = sqrt((1 - cos) / (1 + cos))."""
    c = np.clip(cos_phase, -1.0, 1.0)
    tan_half = np.sqrt((1.0 - c) / np.maximum(1.0 + c, 1e-300))
    gg = np.where(np.isnan(g), DEFAULT_G, g)
    phase = (1.0 - gg) * np.exp(-_A1 * tan_half**_B1) + gg * np.exp(-_A2 * tan_half**_B2)
    return np.asarray(h + 5.0 * np.log10(r_au * delta_au) - 2.5 * np.log10(phase), dtype=np.float64)


def _separation_deg(ra1: float, dec1: float, ra2: npt.ArrayLike, dec2: npt.ArrayLike) -> npt.NDArray[np.float64]:
    r1, d1 = math.radians(ra1), math.radians(dec1)
    r2, d2 = np.radians(ra2), np.radians(dec2)
    # haversine: accurate at small separations
    h = np.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))), dtype=np.float64)


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
