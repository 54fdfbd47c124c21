"""One-to-one matching of predicted objects to detected sources within a radius.

Two strategies over the same candidate pairs (every object-source pair closer
than the radius, by exact great-circle distance):

- ``optimal`` (default): a globally optimal assignment: the most matches, then
  the least total distance. Candidates form a bipartite graph; each connected
  component is solved on its own (most are a single pair), the non-trivial ones
  with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``).
- ``greedy``: Rubin's behaviour, kept for comparison: each object looks only
  at its single nearest source (k = 1), then pairs are taken closest first,
  skipping objects and sources already used. An object whose nearest source
  was taken by a closer object stays unmatched even if another source is in
  range; ``optimal`` never matches fewer.

Ties are broken by ids, never by row order, so results do not depend on the
order of the input tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .geometry import ARCSEC_PER_DEG, angle_between_vectors_deg, chord_from_angle_deg, unit_vectors

__all__ = ["CandidatePairs", "Matches", "candidate_pairs", "match"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
MatchingStrategy = Literal["optimal", "greedy"]


@dataclass(frozen=True)
class CandidatePairs:
    """All (object, source) index pairs within the radius, sorted by object then distance."""

    obj: IntArray
    src: IntArray
    dist_arcsec: FloatArray
    rank: IntArray
    """1-based distance rank of the source among the object's candidates."""


@dataclass(frozen=True)
class Matches:
    """Chosen pairs (indices into the object and source arrays given to :func:`match`)."""

    obj: IntArray
    src: IntArray
    dist_arcsec: FloatArray
    rank: IntArray


def candidate_pairs(
    obj_ra_deg: FloatArray,
    obj_dec_deg: FloatArray,
    src_ra_deg: FloatArray,
    src_dec_deg: FloatArray,
    max_dist_arcsec: float,
    obj_ids: IntArray,
    src_ids: IntArray,
    obj_group: IntArray | None = None,
    src_group: IntArray | None = None,
) -> CandidatePairs:
    """Every (object, source) pair within ``max_dist_arcsec`` (finite coordinates, degrees).

    Sources are sorted into Dec zones one radius high, by RA within a zone;
    each object looks at the zones its Dec +- radius touches and, in each, at
    the RA interval that can hold a source within the radius (:func:`_zone_candidates`).
    The exact angle then decides. Should the zones hold far too many candidates
    a KD-tree on unit vectors finds the pairs instead.

    With ``obj_group``/``src_group`` (e.g. the detector image each row belongs to when
    several are associated at once) only pairs within one group are candidates.
    Pairs come sorted by (group,) object id, distance, source id: ids, not positions,
    break ties, and ids need only be unique within a group.
    """
    n_obj, n_src = len(obj_ra_deg), len(src_ra_deg)
    if n_obj == 0 or n_src == 0:
        return _empty_pairs()
    radius_deg = max_dist_arcsec / ARCSEC_PER_DEG
    obj, src, obj_vec, src_vec = _coarse_candidates(obj_ra_deg, obj_dec_deg, src_ra_deg, src_dec_deg, radius_deg)
    if obj_group is not None and src_group is not None:
        same = np.flatnonzero(obj_group[obj] == src_group[src])
        obj, src, obj_vec, src_vec = obj[same], src[same], obj_vec[same], src_vec[same]
    dist = angle_between_vectors_deg(obj_vec, src_vec) * ARCSEC_PER_DEG
    keep = dist <= max_dist_arcsec
    obj, src, dist = obj[keep], src[keep], dist[keep]
    # Sort by object, distance, then source id (ids, not positions, break ties).
    if obj_group is None:
        order = np.lexsort((src_ids[src], dist, obj_ids[obj]))
    else:  # ids are unique within a group only
        order = np.lexsort((src_ids[src], dist, obj_ids[obj], obj_group[obj]))
    obj, src, dist = obj[order], src[order], dist[order]
    first_of_obj = np.r_[True, obj[1:] != obj[:-1]] if len(obj) else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(first_of_obj, np.arange(len(obj)), 0))
    rank = np.arange(len(obj)) - group_start + 1
    return CandidatePairs(obj, src, dist, rank.astype(np.int64))


def _coarse_candidates(
    obj_ra_deg: FloatArray, obj_dec_deg: FloatArray, src_ra_deg: FloatArray, src_dec_deg: FloatArray, radius_deg: float
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """A superset of the pairs within ``radius_deg``: (object index, source index, their unit vectors)."""
    slack = 1 + 1e-9  # the exact-angle cut decides; the coarse cuts only must not lose pairs
    if len(obj_ra_deg) * len(src_ra_deg) <= _SMALL_ALL_PAIRS:
        # A streaming-size detector (20 objects x 500 sources): testing every pair at once
        # costs less than sorting into zones. 2 - 2 cos is coarse for tiny angles, hence the
        # generous margin.
        all_obj_vec = unit_vectors(obj_ra_deg, obj_dec_deg)
        all_src_vec = unit_vectors(src_ra_deg, src_dec_deg)
        chord = chord_from_angle_deg(radius_deg)
        near = 2.0 - 2.0 * (all_obj_vec @ all_src_vec.T) <= chord * chord * 1.01 + 1e-12
        obj, src = (idx.astype(np.int64) for idx in np.nonzero(near))
        return obj, src, all_obj_vec[obj], all_src_vec[src]
    zone_obj, zone_src = _zone_candidates(obj_ra_deg, obj_dec_deg, src_ra_deg, src_dec_deg, radius_deg * slack)
    if zone_obj is not None and zone_src is not None:
        obj_vec = unit_vectors(obj_ra_deg[zone_obj], obj_dec_deg[zone_obj])
        src_vec = unit_vectors(src_ra_deg[zone_src], src_dec_deg[zone_src])
        return zone_obj, zone_src, obj_vec, src_vec
    all_obj_vec = unit_vectors(obj_ra_deg, obj_dec_deg)
    all_src_vec = unit_vectors(src_ra_deg, src_dec_deg)
    chord = chord_from_angle_deg(radius_deg) * slack + 1e-15
    found = cKDTree(all_obj_vec).sparse_distance_matrix(cKDTree(all_src_vec), chord, output_type="ndarray")
    obj, src = found["i"].astype(np.int64), found["j"].astype(np.int64)
    return obj, src, all_obj_vec[obj], all_src_vec[src]


_SMALL_ALL_PAIRS = 1 << 16  # object x source pairs below which every pair is tested directly
_ZONE_MAX_FACTOR = 64  # zone candidates per input row beyond which the KD-tree is used
_ZONE_KEY_STRIDE = 400.0  # > 360: a zone's keys never overlap the next zone's


def _zone_candidates(
    obj_ra_deg: FloatArray, obj_dec_deg: FloatArray, src_ra_deg: FloatArray, src_dec_deg: FloatArray, radius_deg: float
) -> tuple[IntArray, IntArray] | tuple[None, None]:
    """Candidate (object, source) index pairs: a superset of the pairs within ``radius_deg``.

    Valid everywhere: a separation is never less than the Dec difference, and
    within the radius sin(dRA/2) <= sin(r/2) / sqrt(cos(dec_obj) cos(|dec_obj| + r))
    (haversine with the source's Dec at its extreme); near a pole the whole
    zone is taken. RA intervals that cross 0/360 are split in two.
    Returns (None, None) when there would be too many candidates.
    """
    n_obj, n_src = len(obj_ra_deg), len(src_ra_deg)
    src_zone = np.floor((src_dec_deg + 90.0) / radius_deg)
    keys = src_zone * _ZONE_KEY_STRIDE + src_ra_deg % 360.0
    order = np.argsort(keys)
    sorted_keys = keys[order]

    ra = obj_ra_deg % 360.0
    cos_lo = np.cos(np.radians(obj_dec_deg)) * np.cos(np.radians(np.minimum(np.abs(obj_dec_deg) + radius_deg, 90.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_half = np.sin(np.radians(radius_deg) / 2) / np.sqrt(cos_lo)
    half_width = np.where(sin_half < 1, np.degrees(2 * np.arcsin(np.minimum(sin_half, 1))), 180.0)
    half_width = half_width * (1 + 1e-9) + 1e-9  # never narrower than exact, above key rounding
    full_circle = half_width >= 180.0
    ra_lo = np.where(full_circle, 0.0, ra - half_width)
    ra_hi = np.where(full_circle, 360.0, ra + half_width)
    # Up to three RA segments: the main one clipped to [0, 360], and the wrapped parts.
    seg_lo = np.stack((np.maximum(ra_lo, 0.0), ra_lo + 360.0, np.zeros(n_obj)), axis=1)
    seg_hi = np.stack((np.minimum(ra_hi, 360.0), np.full(n_obj, 360.0), ra_hi - 360.0), axis=1)
    seg_ok = np.stack((np.ones(n_obj, bool), ra_lo < 0.0, ra_hi > 360.0), axis=1)

    first_zone = np.floor((obj_dec_deg - radius_deg + 90.0) / radius_deg)
    last_zone = np.floor((obj_dec_deg + radius_deg + 90.0) / radius_deg)
    obj_parts, lo_parts, hi_parts = [], [], []
    for step in range(3):  # a band 2r high spans at most 3 zones r high
        zone = first_zone + step
        zone_ok = zone <= last_zone
        for seg in range(3):
            use = np.flatnonzero(zone_ok & seg_ok[:, seg])
            base = zone[use] * _ZONE_KEY_STRIDE
            obj_parts.append(use)
            lo_parts.append(np.searchsorted(sorted_keys, base + seg_lo[use, seg], side="left"))
            hi_parts.append(np.searchsorted(sorted_keys, base + seg_hi[use, seg], side="right"))
    owner = np.concatenate(obj_parts)
    lo = np.concatenate(lo_parts)
    count = np.concatenate(hi_parts) - lo
    total = int(count.sum())
    if total > _ZONE_MAX_FACTOR * (n_obj + n_src):
        return None, None
    obj = np.repeat(owner, count).astype(np.int64)
    offset = np.repeat(lo - (np.cumsum(count) - count), count)
    src = order[np.arange(total) + offset].astype(np.int64)
    return obj, src


def _empty_pairs() -> CandidatePairs:
    z = np.zeros(0, np.int64)
    return CandidatePairs(z, z, np.zeros(0), z)


def match(
    pairs: CandidatePairs,
    strategy: MatchingStrategy,
    obj_ids: IntArray,
    src_ids: IntArray,
    obj_group: IntArray | None = None,
) -> Matches:
    """Choose a one-to-one subset of ``pairs`` with the given strategy; the matches come
    ordered by (``obj_group``,) object id. Pairs of different groups never share an
    object or a source, so each group is solved on its own."""
    if strategy == "greedy":
        chosen = _greedy(pairs, obj_ids, src_ids)
    elif strategy == "optimal":
        chosen = _optimal(pairs, obj_ids, src_ids)
    else:
        raise ValueError(f"unknown matching strategy {strategy!r} (optimal or greedy)")
    if obj_group is None:
        order = chosen[np.argsort(obj_ids[pairs.obj[chosen]], kind="stable")]
    else:
        order = chosen[np.lexsort((obj_ids[pairs.obj[chosen]], obj_group[pairs.obj[chosen]]))]
    return Matches(pairs.obj[order], pairs.src[order], pairs.dist_arcsec[order], pairs.rank[order])


def _greedy(pairs: CandidatePairs, obj_ids: IntArray, src_ids: IntArray) -> IntArray:
    nearest = np.flatnonzero(pairs.rank == 1)  # Rubin's k = 1 query
    order = nearest[np.lexsort((src_ids[pairs.src[nearest]], obj_ids[pairs.obj[nearest]], pairs.dist_arcsec[nearest]))]
    used_obj: set[int] = set()
    used_src: set[int] = set()
    chosen = []
    for p in order:  # at most one candidate per object: short loop
        o, s = int(pairs.obj[p]), int(pairs.src[p])
        if o not in used_obj and s not in used_src:
            used_obj.add(o)
            used_src.add(s)
            chosen.append(p)
    return np.asarray(chosen, dtype=np.int64)


_SMALL_REST = 64  # pairs; beyond this, split into connected components first


def _optimal(pairs: CandidatePairs, obj_ids: IntArray, src_ids: IntArray) -> IntArray:
    n = len(pairs.obj)
    if n == 0:
        return np.zeros(0, np.int64)
    # Most pairs are isolated (the object's only candidate, the source's only
    # object): take those directly and build the graph of the rest only.
    obj_degree = np.bincount(pairs.obj)
    src_degree = np.bincount(pairs.src)
    isolated = (obj_degree[pairs.obj] == 1) & (src_degree[pairs.src] == 1)
    chosen = [np.flatnonzero(isolated)]
    rest = np.flatnonzero(~isolated)
    if 0 < len(rest) <= _SMALL_REST:
        # Few entangled pairs (the usual case): one small assignment problem
        # over all of them is cheaper than finding their components first.
        chosen.append(rest[_solve_component(rest, pairs, obj_ids, src_ids)])
    elif len(rest):
        chosen.append(rest[_optimal_components(pairs, rest, obj_ids, src_ids)])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _optimal_components(pairs: CandidatePairs, subset: IntArray, obj_ids: IntArray, src_ids: IntArray) -> IntArray:
    """Optimal choice among ``subset`` of the pairs; returns positions within ``subset``."""
    p_obj, p_src = pairs.obj[subset], pairs.src[subset]
    p_dist, p_rank = pairs.dist_arcsec[subset], pairs.rank[subset]
    n = len(subset)
    # Bipartite graph: nodes 0..n_o-1 are objects, n_o.. are sources (compact indices).
    obj_nodes, obj_local = np.unique(p_obj, return_inverse=True)
    src_nodes, src_local = np.unique(p_src, return_inverse=True)
    n_o, n_s = len(obj_nodes), len(src_nodes)
    graph = coo_matrix((np.ones(n), (obj_local, n_o + src_local)), shape=(n_o + n_s, n_o + n_s))
    n_comp, label = connected_components(graph, directed=False)
    objs_in = np.bincount(label[:n_o], minlength=n_comp)
    srcs_in = np.bincount(label[n_o:], minlength=n_comp)
    pair_label = label[obj_local]
    # A component with one object (or one source) is a star: its best and only
    # possible single match is its shortest edge. Pairs are sorted by object then
    # distance, so for one object that is its rank-1 pair; for one source, the
    # first pair in (distance, object id) order.
    one_obj = objs_in[pair_label] == 1
    chosen = [np.flatnonzero(one_obj & (p_rank == 1))]
    one_src = (srcs_in[pair_label] == 1) & ~one_obj
    if one_src.any():
        idx = np.flatnonzero(one_src)
        idx = idx[np.lexsort((obj_ids[p_obj[idx]], p_dist[idx], pair_label[idx]))]
        first = np.r_[True, pair_label[idx][1:] != pair_label[idx][:-1]]
        chosen.append(idx[first])
    general = np.flatnonzero(~one_obj & ~one_src)
    if len(general):
        by_label = general[np.argsort(pair_label[general], kind="stable")]
        bounds = np.flatnonzero(np.diff(pair_label[by_label])) + 1
        for group in np.split(by_label, bounds):
            chosen.append(group[_solve_component(subset[group], pairs, obj_ids, src_ids)])
    return np.concatenate(chosen).astype(np.int64)


def _solve_component(group: IntArray, pairs: CandidatePairs, obj_ids: IntArray, src_ids: IntArray) -> IntArray:
    """Max-cardinality, then min-total-distance assignment of one connected component.

    Returns positions within ``group``.
    """
    objs = pairs.obj[group]
    srcs = pairs.src[group]
    # Rows and columns in id order, so the answer does not depend on input order.
    row_nodes = np.unique(objs)
    row_nodes = row_nodes[np.argsort(obj_ids[row_nodes], kind="stable")]
    col_nodes = np.unique(srcs)
    col_nodes = col_nodes[np.argsort(src_ids[col_nodes], kind="stable")]
    rows = _positions(row_nodes, objs)
    cols = _positions(col_nodes, srcs)
    # Every edge is worth `big` minus its distance, a non-edge nothing: the
    # assignment then maximises the number of matches first, distance second.
    big = (float(pairs.dist_arcsec[group].sum()) + 1.0) * 2.0
    cost = np.zeros((len(row_nodes), len(col_nodes)))
    cost[rows, cols] = pairs.dist_arcsec[group] - big
    edge = np.full(cost.shape, -1, dtype=np.int64)
    edge[rows, cols] = np.arange(len(group))
    r, c = linear_sum_assignment(cost)
    picked = edge[r, c]
    return picked[picked >= 0]


def _positions(nodes: IntArray, values: IntArray) -> IntArray:
    """Position in ``nodes`` (unsorted, unique) of each of ``values``."""
    order = np.argsort(nodes)
    return order[np.searchsorted(nodes, values, sorter=order)]
