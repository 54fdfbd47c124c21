"""Chebyshev segments: fit positions sampled at Chebyshev nodes, evaluate many objects at once.

A segment covers ``[t_start, t_start + length_days]`` of observation time (MJD TAI).
Inside it the position is ``sum_k c_k T_k(x)`` with ``x = 2 (t - t_start) / length - 1``
in ``[-1, 1]``; one coefficient vector per Cartesian axis, so a segment is a
``(3, degree + 1)`` array. Fits interpolate at the ``degree + 1`` Chebyshev points of
the first kind, which is within a factor ~2 of the best (minimax) polynomial and
needs no linear solve: the coefficients are a fixed matrix times the samples.

The store keeps one such list of segments per object: the span is cut into
``n_base * 2**level`` equal segments, ``level`` chosen per object by the builder
(slow main-belt objects use one segment a day, close NEOs finer ones). All
functions here are pure numpy and vectorised over objects.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "chebyshev_basis",
    "chebyshev_nodes",
    "check_points",
    "evaluate_segments",
    "fit_coefficients",
    "segment_index_and_x",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@lru_cache(maxsize=32)
def chebyshev_nodes(degree: int) -> FloatArray:
    """The ``degree + 1`` Chebyshev points of the first kind in ``[-1, 1]``, ascending."""
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    n = degree + 1
    x = np.cos(np.pi * (np.arange(n)[::-1] + 0.5) / n)
    x.setflags(write=False)
    return x


@lru_cache(maxsize=32)
def check_points(degree: int) -> FloatArray:
    """Points to verify a fit at: both segment ends and every midpoint between nodes.

    The interpolation error of a smooth function peaks between nodes and at the ends,
    so these bracket the worst error of the segment.
    """
    x = chebyshev_nodes(degree)
    pts = np.concatenate([[-1.0], 0.5 * (x[1:] + x[:-1]), [1.0]])
    pts.setflags(write=False)
    return pts


@lru_cache(maxsize=32)
def _fit_matrix(degree: int) -> FloatArray:
    """``M`` with ``coeffs = samples @ M.T``: the discrete Chebyshev transform at the nodes."""
    x = chebyshev_nodes(degree)
    n = degree + 1
    basis = np.cos(np.outer(np.arange(n), np.arccos(x)))  # T_k(x_j), (k, j)
    m = (2.0 / n) * basis
    m[0] *= 0.5
    m.setflags(write=False)
    return m


def fit_coefficients(samples: npt.ArrayLike, degree: int) -> FloatArray:
    """Chebyshev coefficients from values at :func:`chebyshev_nodes` ``(degree)``.

    ``samples`` has shape ``(..., degree + 1, 3)`` (node axis, then x/y/z); the result
    has shape ``(..., 3, degree + 1)`` in the samples' unit.
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.shape[-2] != degree + 1:
        raise ValueError(f"need {degree + 1} samples per segment, got {s.shape[-2]}")
    m = _fit_matrix(degree)
    return np.asarray(np.einsum("kj,...jc->...ck", m, s), dtype=np.float64)


def chebyshev_basis(x: npt.ArrayLike, degree: int) -> tuple[FloatArray, FloatArray]:
    """``T_k(x)`` and ``dT_k/dx`` for ``k = 0..degree``, each of shape ``x.shape + (degree + 1,)``.

    Uses the recurrences ``T_{k+1} = 2x T_k - T_{k-1}`` and
    ``T'_{k+1} = 2 T_k + 2x T'_k - T'_{k-1}``, exact at ``x = +-1`` (no division).
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim == 0:  # one time (the observer): plain floats beat tiny-array numpy calls
        return _basis_scalar(float(xa), degree)
    # k-major scratch arrays: every recurrence step is then one contiguous vector op
    t = np.empty((degree + 1, *xa.shape))
    d = np.empty_like(t)
    t[0] = 1.0
    d[0] = 0.0
    if degree >= 1:
        t[1] = xa
        d[1] = 1.0
    two_x = 2.0 * xa
    for k in range(1, degree):
        t[k + 1] = two_x * t[k] - t[k - 1]
        d[k + 1] = 2.0 * t[k] + two_x * d[k] - d[k - 1]
    if xa.ndim == 1:
        return t.T, d.T
    return np.moveaxis(t, 0, -1), np.moveaxis(d, 0, -1)


def _basis_scalar(x: float, degree: int) -> tuple[FloatArray, FloatArray]:
    t = [1.0, x][: degree + 1]
    d = [0.0, 1.0][: degree + 1]
    for k in range(1, degree):
        t.append(2.0 * x * t[k] - t[k - 1])
        d.append(2.0 * t[k] + 2.0 * x * d[k] - d[k - 1])
    return np.array(t), np.array(d)


def segment_index_and_x(
    dt_days: npt.ArrayLike, n_segments: npt.ArrayLike, span_days: float
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Which segment holds time ``dt_days`` (days since the span start), and where.

    Returns ``(k, x, length_days)``: the segment number (clipped to the last one so the
    span end is included), the reduced time ``x`` in ``[-1, 1]`` and the segment length.
    """
    n = np.asarray(n_segments)
    length = span_days / n
    dt = np.asarray(dt_days, dtype=np.float64)
    k = np.minimum(np.floor(dt / length).astype(np.int64), n - 1)
    k = np.maximum(k, 0)
    x = 2.0 * (dt - k * length) / length - 1.0
    return k, np.asarray(x, dtype=np.float64), np.asarray(length, dtype=np.float64)


def evaluate_segments(
    coeffs: npt.ArrayLike, x: npt.ArrayLike, length_days: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Position and its time derivative for many segments, each at its own ``x``.

    ``coeffs`` is ``(n, 3, degree + 1)`` (e.g. AU), ``x`` and ``length_days`` are ``(n,)``.
    Returns ``(position (n, 3), velocity (n, 3))``, velocity in the unit of
    ``coeffs`` per day.
    """
    c = np.asarray(coeffs, dtype=np.float64)
    degree = c.shape[-1] - 1
    t, d = chebyshev_basis(x, degree)
    pos = np.einsum("nck,nk->nc", c, t)
    vel = np.einsum("nck,nk->nc", c, d) * (2.0 / np.asarray(length_days, dtype=np.float64))[..., None]
    return pos, vel
