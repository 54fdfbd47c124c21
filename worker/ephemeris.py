"""Where the worker gets predicted objects: the ephemeris store, behind a small protocol.

The worker only needs ``query_exposure(exposure) -> DataFrame`` (the
solarSystemObjectTable) raising a coverage error for times the provider does
not cover; providers that also have ``query_exposure_columns(exposure) -> dict``
(the same table as 1-D numpy arrays) spare the worker a DataFrame per event.
:func:`open_provider` opens the real store (``ssassoc.core.ephemeris.store``);
a ``.csv`` path opens a :class:`TableEphemerisProvider`, a fixed object table
valid over a declared time range, meant for development and tests only.
:class:`VisitCacheProvider` wraps a store so that the detectors of one visit
(which share the midpoint time) cost one store query per visit, not one each.
"""

from __future__ import annotations

import importlib
import math
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ssassoc.core.columns import SS_OBJECT_OPTIONAL, SS_OBJECT_REQUIRED

if TYPE_CHECKING:
    from ssassoc.core import Exposure

__all__ = [
    "DEFAULT_VISIT_CACHE_RADIUS_DEG",
    "EphemerisProvider",
    "OutsideCoverageError",
    "TableEphemerisProvider",
    "VisitCacheProvider",
    "columns_frame",
    "coverage_error_types",
    "open_provider",
    "with_visit_cache",
]

DEFAULT_VISIT_CACHE_RADIUS_DEG = 4.2
"""Extra radius of a visit-cache query beyond the first detector's cone [deg] when the cache
is on: twice the radius of the circle holding every detector of Rubin's focal plane (2 x
2.05 deg), so whichever detector of a visit comes first, the cone covers every other one.
The worker's default is off (``--ephemeris-visit-cache-radius-deg 0``): with the store's
compiled query kernel a direct query per detector is the faster of the two."""

_SS_COLUMNS: tuple[str, ...] = SS_OBJECT_REQUIRED + SS_OBJECT_OPTIONAL
# A detector must lie inside the cached cone by more than float rounding of the angles.
_COVER_MARGIN_DEG = 1e-7


class OutsideCoverageError(LookupError):
    """The exposure time lies outside the provider's time coverage."""


def coverage_error_types() -> tuple[type[BaseException], ...]:
    """Exception types meaning "time not covered" (the store's own, once it exists)."""
    types: list[type[BaseException]] = [OutsideCoverageError]
    try:
        store = importlib.import_module("ssassoc.core.ephemeris.store")
    except ImportError:
        return tuple(types)
    store_error = getattr(store, "EphemerisCoverageError", None)
    if isinstance(store_error, type) and issubclass(store_error, BaseException):
        types.append(store_error)
    return tuple(types)


class EphemerisProvider(Protocol):
    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        """Objects predicted on the exposure (solarSystemObjectTable columns)."""
        ...


def _unit_vector(ra_deg: float, dec_deg: float) -> np.ndarray:
    # Built exactly as the store builds a cone centre: cone decisions then agree to the bit.
    ra_r, dec_r = math.radians(ra_deg), math.radians(dec_deg)
    cd = math.cos(dec_r)
    return np.array([cd * math.cos(ra_r), cd * math.sin(ra_r), math.sin(dec_r)])


def columns_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A solarSystemObjectTable DataFrame from a dict of columns (designation as pandas str)."""
    frame = pd.DataFrame({name: columns[name] for name in _SS_COLUMNS if name in columns})
    frame["designation"] = frame["designation"].astype("str")
    return frame


class TableEphemerisProvider:
    """A fixed solarSystemObjectTable, valid between two TAI MJDs (dev/test data).

    Objects do not move: for any covered time it returns those within the
    detector's bounding circle plus ``buffer_deg`` (Rubin queries with a
    0.208 deg buffer); the association task's footprint cut does the rest.
    """

    def __init__(
        self, table: pd.DataFrame, start_mjd_tai: float, end_mjd_tai: float, buffer_deg: float = 0.208
    ) -> None:
        missing = [c for c in SS_OBJECT_REQUIRED if c not in table.columns]
        if missing:
            raise ValueError(f"object table lacks columns {missing}")
        if not start_mjd_tai < end_mjd_tai:
            raise ValueError("coverage start must be before its end")
        self.table = table.reset_index(drop=True)
        self.start_mjd_tai = float(start_mjd_tai)
        self.end_mjd_tai = float(end_mjd_tai)
        self.buffer_deg = buffer_deg
        ra = np.radians(self.table["ephRa"].to_numpy(float))
        dec = np.radians(self.table["ephDec"].to_numpy(float))
        self._unit = np.stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), -1)
        # numpy copies of the columns once, for the array form of the query
        self._columns = {
            name: np.asarray(self.table[name], dtype=object if name == "designation" else None)
            for name in self.table.columns
        }

    def _keep(self, exposure: Exposure) -> np.ndarray:
        t = exposure.midpointMjdTai
        if not self.start_mjd_tai <= t <= self.end_mjd_tai:
            raise OutsideCoverageError(
                f"exposure midpoint MJD {t} TAI is outside the table's coverage "
                f"[{self.start_mjd_tai}, {self.end_mjd_tai}]"
            )
        ra_c, dec_c = np.radians(exposure.centre_deg)
        centre = np.array([np.cos(dec_c) * np.cos(ra_c), np.cos(dec_c) * np.sin(ra_c), np.sin(dec_c)])
        half_diagonal_deg = 0.5 * np.hypot(exposure.width, exposure.height) * exposure.pixel_scale_arcsec / 3600
        cos_radius = np.cos(np.radians(min(half_diagonal_deg + self.buffer_deg, 180.0)))
        return np.asarray(self._unit @ centre >= cos_radius)

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        return self.table.loc[self._keep(exposure)].reset_index(drop=True)

    def query_exposure_columns(self, exposure: Exposure) -> dict[str, np.ndarray]:
        """:meth:`query_exposure` as a dict of 1-D numpy arrays (designation: object array)."""
        idx = np.flatnonzero(self._keep(exposure))
        return {name: values[idx] for name, values in self._columns.items()}

    def to_csv(self, path: str | Path) -> None:
        """Write with a ``# coverage_mjd_tai: START END`` first line (read by :meth:`from_csv`)."""
        with open(path, "w") as stream:
            stream.write(f"# coverage_mjd_tai: {self.start_mjd_tai!r} {self.end_mjd_tai!r}\n")
            self.table.to_csv(stream, index=False)

    @classmethod
    def from_csv(cls, path: str | Path) -> TableEphemerisProvider:
        with open(path) as stream:
            first = stream.readline()
            if not first.startswith("# coverage_mjd_tai:"):
                raise ValueError(f"{path}: first line must be '# coverage_mjd_tai: START END'")
            start, end = (float(v) for v in first.split(":", 1)[1].split())
            table = pd.read_csv(stream, dtype={"designation": "string"})
        table["designation"] = table["designation"].astype(object)
        return cls(table, start, end)


# -- the visit cache -------------------------------------------------------------------------


_REPROBE_VISITS = 64  # while widening does not pay, still widen one visit in this many (~36 min of Rubin visits)
_GRID_MIN_OBJECTS = 512  # below this, testing every object is as cheap as finding cells
_GRID_MAX_RADIUS_DEG = 60.0  # the tangent plane stretches too much beyond
_GRID_CELL_DEG = 0.2  # about a detector's cone radius: a detector reaches 2-3 cells a side
_GRID_MAX_CELLS = 64  # a side


class _TangentGrid:
    """The objects of a cone binned on a grid in the tangent plane at its centre (gnomonic
    projection), for a cone inside it to find its candidates among a few cells.

    Complete by construction: along the arc from a detector's centre to any object within
    its radius r, the projection stretches lengths by at most sec^2(R) (R: this cone's
    radius), so every such object lies within r sec^2(R) of the projected centre."""

    __slots__ = ("cell", "east", "half", "n", "north", "offsets", "order", "stretch", "w")

    def __init__(self, centre: np.ndarray, radius_deg: float, unit: np.ndarray) -> None:
        axis = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        east = np.cross(axis, centre)
        self.east = east / np.linalg.norm(east)
        self.north = np.cross(centre, self.east)
        self.w = centre
        self.half = math.tan(math.radians(radius_deg))  # the cone's extent in the plane
        self.cell = max(math.tan(math.radians(_GRID_CELL_DEG)), 2 * self.half / _GRID_MAX_CELLS)
        self.n = int(2 * self.half / self.cell) + 1
        self.stretch = 1.0 / math.cos(math.radians(radius_deg)) ** 2 * (1 + 1e-9)
        depth = centre @ unit  # > 0: every object is within 60 deg of the centre
        ix = self._cell_index(self.east @ unit / depth)
        iy = self._cell_index(self.north @ unit / depth)
        key = iy * self.n + ix
        self.order = np.argsort(key, kind="stable")
        self.offsets = np.searchsorted(key[self.order], np.arange(self.n * self.n + 1)).tolist()

    def _cell_index(self, coordinate: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((coordinate + self.half) / self.cell), 0, self.n - 1).astype(np.int64)

    def _cell(self, coordinate: float) -> int:
        return min(max(math.floor((coordinate + self.half) / self.cell), 0), self.n - 1)

    def candidates(self, centre: np.ndarray, radius_deg: float) -> np.ndarray:
        """Rows (ascending, i.e. store order) of the objects in the cells the cone reaches."""
        cx, cy, cz = centre.tolist()
        ex, ey, ez = self.east.tolist()
        nx, ny, nz = self.north.tolist()
        wx, wy, wz = self.w.tolist()
        depth = cx * wx + cy * wy + cz * wz
        x = (cx * ex + cy * ey + cz * ez) / depth
        y = (cx * nx + cy * ny + cz * nz) / depth
        reach = math.radians(radius_deg) * self.stretch + 1e-12
        x0, x1 = self._cell(x - reach), self._cell(x + reach)
        offsets, n = self.offsets, self.n
        slices = [self.order[offsets[row * n + x0] : offsets[row * n + x1 + 1]]
                  for row in range(self._cell(y - reach), self._cell(y + reach) + 1)]  # fmt: skip
        return np.sort(np.concatenate(slices) if len(slices) > 1 else slices[0])  # a copy: order stays


class _VisitCone:
    """The evaluated objects of one store query (one visit's wide cone at one time)."""

    __slots__ = (
        "centre",
        "designation",
        "float_names",
        "floats",
        "grid",
        "hits",
        "ids",
        "mjd_tai",
        "radius_deg",
        "rho",
        "store",
        "topo",
    )  # fmt: skip

    def __init__(
        self, store: Any, mjd_tai: float, ra_deg: float, dec_deg: float, radius_deg: float,
        columns: dict[str, np.ndarray],
    ) -> None:  # fmt: skip
        self.store = store
        self.mjd_tai = mjd_tai
        self.hits = 0  # detectors answered from this cone
        self.centre = _unit_vector(ra_deg, dec_deg)
        self.radius_deg = radius_deg
        self.ids = columns["ssObjectId"]
        self.designation = columns["designation"]
        self.float_names = [name for name in columns if name not in ("ssObjectId", "designation")]
        # One (columns, n) block: a detector's rows are then one fancy-index call, not 18.
        self.floats = np.stack([columns[name] for name in self.float_names])
        # The store's own cone test uses topocentric vectors and their length (not unit
        # vectors of ephRa/ephDec): the same inputs give the same decisions.
        self.topo = np.ascontiguousarray(np.stack((columns["topo_x"], columns["topo_y"], columns["topo_z"])))
        self.rho = np.sqrt(np.einsum("cn,cn->n", self.topo, self.topo))
        self.grid = _TangentGrid(self.centre, radius_deg, self.topo / self.rho) if (
            self.ids.size >= _GRID_MIN_OBJECTS and radius_deg <= _GRID_MAX_RADIUS_DEG) else None

    def covers(self, centre: np.ndarray, radius_deg: float) -> bool:
        """True if the cone (``centre``, ``radius_deg``) lies inside this one."""
        # Plain floats: numpy's cross/dot cost ~15 us on 3-vectors, this ~1 us.
        ax, ay, az = self.centre.tolist()
        bx, by, bz = centre.tolist()
        sin_sep = math.hypot(ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
        separation_deg = math.degrees(math.atan2(sin_sep, ax * bx + ay * by + az * bz))  # exact at small angles
        return separation_deg + radius_deg <= self.radius_deg - _COVER_MARGIN_DEG

    def select(self, centre: np.ndarray, radius_deg: float) -> dict[str, np.ndarray]:
        """The objects in a cone inside this one, as the store itself would return them."""
        cos_radius = math.cos(math.radians(radius_deg))
        if self.grid is None:
            idx = np.flatnonzero(centre @ self.topo >= cos_radius * self.rho)
        else:  # the exact test on the objects of the cells the cone can reach
            cand = self.grid.candidates(centre, radius_deg)
            idx = cand[centre @ self.topo[:, cand] >= cos_radius * self.rho[cand]]
        floats = self.floats[:, idx]
        out = {"ssObjectId": self.ids[idx], "designation": self.designation[idx]}
        out.update(zip(self.float_names, floats, strict=True))
        return out


class VisitCacheProvider:
    """One store query per visit instead of one per detector.

    The detectors of a visit share their midpoint time. When a second detector
    with the same time (and store, hence observatory) arrives, the store is
    queried once over the detector's cone widened by ``radius_deg`` (default:
    the focal plane's diameter, so every detector of the visit falls inside,
    whichever came first); that detector and the visit's later ones are then
    answered from the evaluated columns with a numpy cone test on each
    detector's own :meth:`exposure_cone`, giving exactly the rows and values
    a direct store query gives. A detector outside every cached cone gets a
    fresh query. The first detector of a time is queried directly, so a stream
    of isolated detectors (each its own time) pays nothing for the cache.

    A wide query costs as much as ~50 detector queries (Rubin's focal plane,
    1.3 million objects), so it pays only when a worker sees many detectors of a
    visit; replicas sharing a visit's detectors each see a part of them. The
    provider therefore measures, as it runs, the time of its wide queries, of
    direct queries and of answers from a cone, and how many detectors the cones
    it keeps answered, and stops widening while that count times the saving
    per detector is below the cost of a wide query (widening one visit in
    ``_REPROBE_VISITS`` still, to notice a change). Results are the same either way.

    Memory is bounded: the ``max_entries`` most recently used cones are kept
    (a visit's cone holds a few thousand objects, ~0.2 kB each).

    ``provider`` is an :class:`~ssassoc.core.ephemeris.store.EphemerisStore`
    or anything with ``store_for(mjd_tai, observatory)`` returning one
    (:class:`~ssassoc.worker.store_rotation.StoreDirectoryProvider`).
    """

    def __init__(
        self,
        provider: Any,
        radius_deg: float = DEFAULT_VISIT_CACHE_RADIUS_DEG,
        max_entries: int = 4,
        *,
        adaptive: bool = True,
    ) -> None:
        if not radius_deg > 0:
            raise ValueError(f"radius_deg must be > 0, got {radius_deg!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self.provider = provider
        self.radius_deg = float(radius_deg)
        self.max_entries = int(max_entries)
        self.adaptive = adaptive  # False: always widen from a visit's second detector on
        self._cones: deque[_VisitCone] = deque()
        self._seen: deque[tuple[int, float]] = deque(maxlen=8)  # (id(store), time) queried directly
        self.hits = 0
        self.misses = 0
        self.wide_queries = 0
        # Running costs [s] (exponential moving averages) and detectors answered per cone.
        self._wide_s: float | None = None
        self._direct_s: float | None = None
        self._select_s: float | None = None
        self._declined: tuple[int, float] | None = None  # the last visit not widened
        self._declined_visits = 0

    def __getattr__(self, name: str) -> Any:
        # Everything else (spans, store_for, start_mjd_tai, ...) is the wrapped provider's.
        if name == "provider":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.provider, name)

    def _store(self, exposure: Exposure) -> Any:
        store_for = getattr(self.provider, "store_for", None)
        if store_for is not None:
            return store_for(exposure.midpointMjdTai, exposure.observatory)
        return self.provider

    def query_exposure_columns(self, exposure: Exposure) -> dict[str, np.ndarray]:
        """The store's ``query_exposure_columns(exposure)``, from the visit's cached cone if possible."""
        store = self._store(exposure)
        ra, dec, radius = store.exposure_cone(exposure)  # raises on a foreign observatory
        mjd = float(exposure.midpointMjdTai)
        centre = _unit_vector(ra, dec)
        for i, cone in enumerate(self._cones):
            if cone.store is store and cone.mjd_tai == mjd and cone.covers(centre, radius):
                if i:  # most recently used first
                    del self._cones[i]
                    self._cones.appendleft(cone)
                self.hits += 1
                return self._select(cone, centre, radius)
        self.misses += 1
        key = (id(store), mjd)
        if key not in self._seen or not self._widening_pays(key):
            # The first detector of this time (maybe an isolated one), or widening does not
            # pay: query just its cone.
            if key not in self._seen:
                self._seen.append(key)
            t0 = time.perf_counter()
            columns: dict[str, np.ndarray] = store.query_columns(mjd, ra, dec, radius)
            self._direct_s = _ema(self._direct_s, time.perf_counter() - t0)
            return columns
        wide = min(radius + self.radius_deg, 180.0)
        t0 = time.perf_counter()
        cone = _VisitCone(store, mjd, ra, dec, wide, store.query_columns(mjd, ra, dec, wide))
        self._wide_s = _ema(self._wide_s, time.perf_counter() - t0)
        self.wide_queries += 1
        self._cones.appendleft(cone)
        while len(self._cones) > self.max_entries:
            self._cones.pop()
        return self._select(cone, centre, radius)

    def _select(self, cone: _VisitCone, centre: np.ndarray, radius_deg: float) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = cone.select(centre, radius_deg)
        self._select_s = _ema(self._select_s, time.perf_counter() - t0)
        cone.hits += 1
        return out

    def _widening_pays(self, key: tuple[int, float]) -> bool:
        """Whether a wide query for this visit is expected to save time (see the class doc)."""
        wide_s, direct_s, select_s = self._wide_s, self._direct_s, self._select_s
        if not self.adaptive or wide_s is None or direct_s is None or select_s is None or not self._cones:
            return True  # nothing measured yet: try
        # Detectors per visit: the best of the cones kept (recent visits, one of them complete).
        hits = max(cone.hits for cone in self._cones)
        if hits * (direct_s - select_s) >= wide_s:
            return True
        if key != self._declined:
            self._declined = key
            self._declined_visits += 1
        # Now and then widen anyway: the mix of visits (and replicas) changes.
        return self._declined_visits % _REPROBE_VISITS == 0

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        return columns_frame(self.query_exposure_columns(exposure))


def _ema(previous: float | None, value: float, weight: float = 0.2) -> float:
    return value if previous is None else previous + weight * (value - previous)


def with_visit_cache(provider: Any, radius_deg: float, max_entries: int = 4) -> Any:
    """``provider`` behind a :class:`VisitCacheProvider` if it is a store (or a directory of
    stores) and ``radius_deg`` > 0; otherwise ``provider`` itself."""
    if radius_deg <= 0 or isinstance(provider, VisitCacheProvider):
        return provider
    is_store = hasattr(provider, "exposure_cone") and hasattr(provider, "query_columns")
    if not (is_store or hasattr(provider, "store_for")):
        return provider
    return VisitCacheProvider(provider, radius_deg, max_entries)


def open_provider(path: str | Path) -> Any:
    """The ephemeris store at ``path``; for a directory of stores (daily builds), a
    :class:`~ssassoc.worker.store_rotation.StoreDirectoryProvider` choosing per exposure;
    for a ``.csv`` file, a fixed table."""
    path = Path(path)
    if path.suffix == ".csv":
        return TableEphemerisProvider.from_csv(path)
    from .store_rotation import StoreDirectoryProvider, is_store_directory

    if path.is_dir() and not is_store_directory(path) and any(is_store_directory(c) for c in path.iterdir()):
        return StoreDirectoryProvider(path)
    store = importlib.import_module("ssassoc.core.ephemeris.store")
    return store.EphemerisStore.open(path)
