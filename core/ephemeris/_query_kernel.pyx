# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled inner loops of a cone query (see store.py and sky_index.py).

A sparse query (a detector-sized cone off the ecliptic: tens of candidates, a few kept)
costs ~1 us per numpy call, not arithmetic: the vectorised path makes ~60 calls. Here the
same steps run as two loops over the candidates: one gathers them from the sky index,
one evaluates them and writes every output column of those inside the cone. The numpy
path in store.py stays as the reference (tests compare the two) and as the fallback where
this module was not compiled.
"""

from libc.math cimport atan2, exp, log, log10, sqrt
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

import numpy as np

from .magnitudes import _A1, _A2, _B1, _B2

cdef double A1 = _A1
cdef double A2 = _A2
cdef double B1_HALF = _B1 / 2.0  # tan(a/2)^B = (tan^2(a/2))^(B/2)
cdef double B2_HALF = _B2 / 2.0
cdef double DEG = 57.29577951308232  # 180 / pi

N_FLOAT_COLUMNS = 18  # store._FLOAT_COLUMNS, in that order


cdef Py_ssize_t _INSERTION_SORT_MAX = 64


cdef void _insertion_sort(int32_t* a, Py_ssize_t n) noexcept nogil:
    """In place, ascending: for the few dozen candidates of a sparse cone, cheaper than a
    call into numpy."""
    cdef Py_ssize_t i, j
    cdef int32_t v
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


cdef inline void _chebyshev_xyz(const double* rec, const double* w, Py_ssize_t n_k, double* out) noexcept nogil:
    """``out[c] = sum_k w[k] * rec[c * n_k + k]`` for the x, y, z coefficient blocks of a
    record: the position (w = T_k) or its time derivative (w = dT_k/dt)."""
    cdef Py_ssize_t k
    cdef double x = 0.0, y = 0.0, z = 0.0
    for k in range(n_k):
        x += w[k] * rec[k]
        y += w[k] * rec[n_k + k]
        z += w[k] * rec[2 * n_k + k]
    out[0] = x
    out[1] = y
    out[2] = z


def gather_cone(const int64_t[::1] offsets, const int32_t[::1] objects,
                const uint64_t[::1] cells, int64_t shift, int64_t key_base):
    """Object rows listed under the sky-index keys of ``cells`` (NESTED cells ``shift / 2``
    levels coarser than the index: each covers keys ``[key_base + (cell << shift),
    ... + 2**shift)``), sorted and without repeats (an object is listed in every cell its
    path crosses), int32.

    The arrays come from a store file: every key and offset is checked before it is used,
    so a corrupt index raises IndexError instead of reading outside the maps."""
    cdef Py_ssize_t i, n_cells = cells.shape[0]
    cdef int64_t total = 0, lo, span = (<int64_t>1) << shift, k, n = 0, m = 1
    cdef int64_t n_keys = offsets.shape[0] - 1, n_entries = objects.shape[0], start, stop
    for i in range(n_cells):
        lo = key_base + (<int64_t>cells[i] << shift)
        if lo < 0 or lo + span > n_keys:
            raise IndexError(f"sky index key {lo} outside the index's {n_keys} keys")
        start = offsets[lo]
        stop = offsets[lo + span]
        if start < 0 or stop < start or stop > n_entries:
            raise IndexError(f"sky index offsets [{start}, {stop}) outside its {n_entries} entries")
        total += stop - start
    out_arr = np.empty(total, np.int32)
    if total == 0:
        return out_arr
    cdef int32_t[::1] out = out_arr
    for i in range(n_cells):
        lo = key_base + (<int64_t>cells[i] << shift)
        for k in range(offsets[lo], offsets[lo + span]):
            out[n] = objects[k]
            n += 1
    if n <= _INSERTION_SORT_MAX:
        _insertion_sort(&out[0], n)
    else:
        out_arr.sort()  # numpy's vectorised sort: ~20x qsort's speed for thousands of rows
    for k in range(1, n):
        if out[k] != out[m - 1]:
            out[m] = out[k]
            m += 1
    return out_arr[:m]


def evaluate_cone(const int32_t[::1] rows, const double[:, ::1] records,
                  const int64_t[::1] level_first, const int64_t[::1] row_mult,
                  const int64_t[::1] row_add, const double[:, :, ::1] basis,
                  const double[::1] observer, double cx, double cy, double cz,
                  double cos_radius, double km_s_c, double c_au_per_day,
                  double au_per_day_to_km_s):
    """Evaluate object ``rows`` (ascending) and keep those within the cone.

    ``records``: the store's records (coefficient blocks x, y, z of ``n_k`` each, then H,
    G, ephUncertainty, ssObjectId bits). Object row ``r`` of segment level ``l``
    (``level_first[l] <= r < level_first[l + 1]``) is at segment row
    ``r * row_mult[l] + row_add[l]``; ``basis[l]`` is ``(2, n_k)``: T_k and dT_k/dt at the
    query time. ``observer``: heliocentric position (AU) and velocity (AU/day). The cone:
    unit vector (cx, cy, cz) and the cosine of its radius.

    Returns ``(kept rows int64, ssObjectId int64, float block (18, m))``, the block's
    rows in the order of ``store._FLOAT_COLUMNS``, with the same formulas as the numpy
    path of ``EphemerisStore._evaluate``.
    """
    cdef Py_ssize_t n = rows.shape[0], n_k = basis.shape[2], n_levels = level_first.shape[0] - 1
    cdef Py_ssize_t i, lvl = 0, m = 0
    cdef int64_t seg, row
    cdef double p[3]
    cdef double tx, ty, tz, rho
    cdef int64_t n_objects, n_segments = records.shape[0]
    if n_levels < 1 or records.shape[1] < 3 * n_k + 4:
        raise ValueError(f"need level bounds and records of {3 * n_k + 4} columns, got {records.shape[1]}")
    if basis.shape[0] < n_levels or row_mult.shape[0] < n_levels or row_add.shape[0] < n_levels or observer.shape[0] < 6:
        raise ValueError("basis, row_mult and row_add need one entry per level, observer 6 values")
    n_objects = level_first[n_levels]
    cdef double ox = observer[0], oy = observer[1], oz = observer[2]
    cdef int64_t* kept = <int64_t*>malloc(2 * (n if n > 0 else 1) * sizeof(int64_t))
    if kept == NULL:
        raise MemoryError()
    try:
        # pass 1: positions only, exact cone test; remember (row, segment) of those kept
        for i in range(n):
            row = rows[i]
            while lvl + 1 < n_levels and row >= level_first[lvl + 1]:
                lvl += 1
            seg = row * row_mult[lvl] + row_add[lvl]
            if row < 0 or row >= n_objects or seg < 0 or seg >= n_segments:  # a corrupt index
                raise IndexError(f"object row {row} (segment row {seg}) outside the store's "
                                 f"{n_objects} objects / {n_segments} segments")
            _chebyshev_xyz(&records[seg, 0], &basis[lvl, 0, 0], n_k, p)
            tx = p[0] - ox
            ty = p[1] - oy
            tz = p[2] - oz
            rho = sqrt(tx * tx + ty * ty + tz * tz)  # not hypot: 2 libm hypot calls cost ~40 ns
            if cx * tx + cy * ty + cz * tz >= cos_radius * rho:
                kept[2 * m] = row
                kept[2 * m + 1] = seg
                m += 1
        rows_out = np.empty(m, np.int64)
        ids_out = np.empty(m, np.int64)
        block = np.empty((N_FLOAT_COLUMNS, m))
        if m:
            _derive(kept, m, records, level_first, basis, observer, km_s_c, c_au_per_day,
                    au_per_day_to_km_s, rows_out, ids_out, block)
        return rows_out, ids_out, block
    finally:
        free(kept)


cdef void _derive(const int64_t* kept, Py_ssize_t m, const double[:, ::1] records,
                  const int64_t[::1] level_first, const double[:, :, ::1] basis,
                  const double[::1] observer, double km_s_c, double c_au_per_day,
                  double au_per_day_to_km_s, int64_t[::1] rows_out, int64_t[::1] ids_out,
                  double[:, ::1] out) noexcept:
    """Pass 2 of evaluate_cone: every output column of the kept objects."""
    cdef Py_ssize_t j, lvl = 0, n_k = basis.shape[2], n_levels = level_first.shape[0] - 1
    cdef Py_ssize_t ext = 3 * n_k
    cdef int64_t row, seg
    cdef const double* rec
    cdef double h[3]
    cdef double v[3]
    cdef double hx, hy, hz, vx, vy, vz, tx, ty, tz, ux, uy, uz, rho, rho2, tv, rxy, q, f
    cdef double hh, ht, rr2, rr, tan2_half, log_tan2, phi1, phi2, g, ra
    cdef double ox = observer[0], oy = observer[1], oz = observer[2]
    cdef double ovx = observer[3], ovy = observer[4], ovz = observer[5]
    for j in range(m):
        row = kept[2 * j]
        seg = kept[2 * j + 1]
        while lvl + 1 < n_levels and row >= level_first[lvl + 1]:
            lvl += 1
        rec = &records[seg, 0]
        _chebyshev_xyz(rec, &basis[lvl, 0, 0], n_k, h)
        _chebyshev_xyz(rec, &basis[lvl, 1, 0], n_k, v)
        hx, hy, hz = h[0], h[1], h[2]
        vx, vy, vz = v[0], v[1], v[2]
        # topocentric position and apparent motion d(topo)/d(t_obs)
        tx = hx - ox
        ty = hy - oy
        tz = hz - oz
        ux = vx - ovx
        uy = vy - ovy
        uz = vz - ovz
        rho2 = tx * tx + ty * ty + tz * tz
        rho = sqrt(rho2)
        tv = tx * ux + ty * uy + tz * uz  # rho * d(rho)/dt
        rxy = sqrt(tx * tx + ty * ty)
        ra = atan2(ty, tx) * DEG  # [-180, 180]
        if ra < 0.0:
            ra += 360.0
        out[0, j] = ra
        out[1, j] = atan2(tz, rxy) * DEG
        q = DEG / (rxy if rxy > 1e-300 else 1e-300)  # no division by 0 at a pole
        out[2, j] = (tx * uy - ty * ux) * q / rho  # d(ra)/dt cos(dec)
        out[3, j] = (uz - tz * tv / rho2) * q
        out[4, j] = hx
        out[5, j] = hy
        out[6, j] = hz
        out[7, j] = tx
        out[8, j] = ty
        out[9, j] = tz
        # velocity at emission time: d(helio)/d(t_obs) = v(t_emit) * (1 - rho_dot / c)
        f = km_s_c / (c_au_per_day - tv / rho)
        out[10, j] = vx * f
        out[11, j] = vy * f
        out[12, j] = vz * f
        out[13, j] = vx * f - ovx * au_per_day_to_km_s
        out[14, j] = vy * f - ovy * au_per_day_to_km_s
        out[15, j] = vz * f - ovz * au_per_day_to_km_s
        # V magnitude, H-G system, from tan^2(alpha / 2) = (r rho - h.t) / (r rho + h.t)
        hh = hx * hx + hy * hy + hz * hz
        ht = hx * tx + hy * ty + hz * tz
        rr2 = hh * rho2
        rr = sqrt(rr2)
        tan2_half = (rr - ht) / (rr + ht)
        if tan2_half < 0.0:  # rounding at zero phase
            tan2_half = -tan2_half
        log_tan2 = log(tan2_half)  # one log for both powers (pow is ~3x an exp); 0 -> -inf -> phi 1
        phi1 = exp(-A1 * exp(B1_HALF * log_tan2))
        phi2 = exp(-A2 * exp(B2_HALF * log_tan2))
        g = rec[ext + 1]
        out[16, j] = 2.5 * log10(rr2 / (phi1 + g * (phi2 - phi1))) + rec[ext]
        out[17, j] = rec[ext + 2]
        rows_out[j] = row
        ids_out[j] = (<const int64_t*>&rec[ext + 3])[0]


cdef void _chebyshev_td(double x, double dxdt, Py_ssize_t n_k, double* t, double* d) noexcept:
    """``T_k(x)`` and ``dT_k/dt = dT_k/dx * dxdt`` for k < n_k, by the recurrences (exact at
    x = +-1); x is clamped to [-1, 1]."""
    cdef Py_ssize_t k
    x = -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)
    t[0] = 1.0
    d[0] = 0.0
    if n_k > 1:
        t[1] = x
        d[1] = 1.0
    for k in range(1, n_k - 1):
        t[k + 1] = 2.0 * x * t[k] - t[k - 1]
        d[k + 1] = 2.0 * t[k] + 2.0 * x * d[k] - d[k - 1]
    for k in range(n_k):
        d[k] *= dxdt


def time_plan(double dt, double span_days, const double[:, :, ::1] observer_coeffs,
              const int64_t[::1] level_nseg, const int64_t[::1] row_shift, Py_ssize_t degree):
    """What every query at ``dt`` days into the span shares (``store._Plan``): per segment
    level (``level_nseg[l]`` equal segments), the basis ``(n_levels, 2, degree + 1)`` and
    the record row offset ``row_shift[l] + segment``; and the observer's heliocentric
    position and velocity ``(6,)`` from its ``(n_segments, 3, n_k)`` coefficients."""
    cdef Py_ssize_t n_levels = level_nseg.shape[0], n_k = degree + 1, lvl, c, k
    cdef Py_ssize_t n_obs = observer_coeffs.shape[0], n_ko = observer_coeffs.shape[2]
    if n_obs < 1 or n_ko < 1 or observer_coeffs.shape[1] != 3 or row_shift.shape[0] < n_levels or n_k < 1:
        raise ValueError("observer coefficients must be (n >= 1, 3, k >= 1), one row shift per level, degree >= 0")
    basis_arr = np.empty((n_levels, 2, n_k))
    add_arr = np.empty(n_levels, np.int64)
    obs_arr = np.empty(6)
    cdef double[:, :, ::1] basis = basis_arr
    cdef int64_t[::1] add = add_arr
    cdef double[::1] obs = obs_arr
    cdef double length, pos, vel
    cdef int64_t seg
    cdef double* to = <double*>malloc(2 * n_ko * sizeof(double))
    if to == NULL:
        raise MemoryError()
    for lvl in range(n_levels):
        length = span_days / level_nseg[lvl]
        seg = <int64_t>(dt // length)
        seg = 0 if seg < 0 else (level_nseg[lvl] - 1 if seg > level_nseg[lvl] - 1 else seg)
        _chebyshev_td(2.0 * (dt - seg * length) / length - 1.0, 2.0 / length, n_k,
                      &basis[lvl, 0, 0], &basis[lvl, 1, 0])
        add[lvl] = row_shift[lvl] + seg
    length = span_days / n_obs
    seg = <int64_t>(dt // length)
    seg = 0 if seg < 0 else (n_obs - 1 if seg > n_obs - 1 else seg)
    _chebyshev_td(2.0 * (dt - seg * length) / length - 1.0, 2.0 / length, n_ko, to, to + n_ko)
    for c in range(3):
        pos = 0.0
        vel = 0.0
        for k in range(n_ko):
            pos += to[k] * observer_coeffs[seg, c, k]
            vel += to[n_ko + k] * observer_coeffs[seg, c, k]
        obs[c] = pos
        obs[3 + c] = vel
    free(to)
    return basis_arr, add_arr, obs_arr
