"""Benchmark of ``associateSources`` against two baselines measured in the same run.

(a) a bare Rubin-style match: cKDTree of source unit vectors, each object's
    single nearest source (k = 1) within the radius, closest first, one-to-one
    (what ``SolarSystemAssociationTask`` does, without any derived column);
(b) astropy ``SkyCoord.search_around_sky`` (all pairs within the radius, no
    one-to-one step, no derived columns).

ssassoc computes, on top of what (a) does: the footprint cut (sky side then
pixels), all candidate pairs, the globally optimal assignment, and the 40
ssSource columns. ``associateSources`` returns them as an astropy Table (about
1 ms to build whatever the size); ``run(...).ssSourceColumns`` as numpy arrays.

    .venv/bin/python benchmarks/association.py [--repeat 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from scipy.spatial import cKDTree

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.geometry import unit_vectors
from ssassoc.core.sample_data import SyntheticField, synthetic_field

RADIUS_ARCSEC = 1.0


def rubin_style_match(field: SyntheticField) -> int:
    """Baseline (a): k = 1 nearest source per object, closest first, one-to-one."""
    sources, objects = field.sources, field.objects
    src_vec = unit_vectors(sources["ra"].to_numpy(), sources["dec"].to_numpy())
    obj_vec = unit_vectors(objects["ephRa"].to_numpy(), objects["ephDec"].to_numpy())
    chord = 2 * np.sin(np.radians(RADIUS_ARCSEC / 3600) / 2)
    dist, idx = cKDTree(src_vec).query(obj_vec, k=1, distance_upper_bound=chord)
    found = np.flatnonzero(np.isfinite(dist))
    order = found[np.argsort(dist[found])]
    used_src: set[int] = set()
    n = 0
    for obj in order:
        if idx[obj] not in used_src:
            used_src.add(int(idx[obj]))
            n += 1
    return n


def astropy_search_around_sky(field: SyntheticField) -> int:
    """Baseline (b): every pair within the radius."""
    src = SkyCoord(field.sources["ra"].to_numpy() * u.deg, field.sources["dec"].to_numpy() * u.deg)
    obj = SkyCoord(field.objects["ephRa"].to_numpy() * u.deg, field.objects["ephDec"].to_numpy() * u.deg)
    i_obj, _, _, _ = obj.search_around_sky(src, RADIUS_ARCSEC * u.arcsec)
    return len(i_obj)


def timed_round_robin(candidates: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, float]]:
    """Median/p99/min wall time of each candidate, interleaved so machine noise hits all alike."""
    for fn in candidates.values():
        fn()  # warm caches (imports, astropy frame matrices)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, values in times.items():
        ms = np.array(values) * 1e3
        out[name] = {
            "median_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)),
            "min_ms": float(ms.min()),
        }
    return out


def run_case(n_sources: int, n_objects: int, repeat: int, seed: int) -> dict[str, Any]:
    field = synthetic_field(n_sources=n_sources, n_objects=n_objects, seed=seed)
    task = SsSingleFrameAssociationTask(config=SsSingleFrameAssociationConfig(maxDistArcSeconds=RADIUS_ARCSEC))
    greedy = SsSingleFrameAssociationTask(config=SsSingleFrameAssociationConfig(matching="greedy"))
    # The worker's inputs: columns as numpy arrays (decoded event, store query), no DataFrames.
    source_columns = {name: field.sources[name].to_numpy() for name in field.sources.columns}
    object_columns = {
        name: field.objects[name].to_numpy(dtype=object if name == "designation" else None)
        for name in field.objects.columns
    }
    results = timed_round_robin(
        {
            "ssassoc_associateSources": lambda: task.associateSources(field.sources, field.objects, field.exposure),
            "ssassoc_greedy": lambda: greedy.associateSources(field.sources, field.objects, field.exposure),
            # What the worker uses: run() with the columns as arrays (no astropy Table built).
            "ssassoc_run_columns": lambda: (
                task.run(field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects).ssSourceColumns
            ),
            "ssassoc_run_arrays_in_and_out": lambda: (
                task.run(
                    field.exposure, source_columns, band="r", solarSystemObjectTable=object_columns
                ).ssSourceColumns
            ),
            "a_rubin_style_kdtree": lambda: rubin_style_match(field),
            "b_astropy_search_around_sky": lambda: astropy_search_around_sky(field),
        },
        repeat,
    )
    n_ours = len(task.associateSources(field.sources, field.objects, field.exposure))
    return {
        "n_sources": n_sources,
        "n_objects": n_objects,
        "associations_ssassoc": n_ours,
        "associations_rubin_style": rubin_style_match(field),
        "timings": results,
        "ratio_vs_a": results["ssassoc_associateSources"]["median_ms"] / results["a_rubin_style_kdtree"]["median_ms"],
        "ratio_vs_b": results["ssassoc_associateSources"]["median_ms"]
        / results["b_astropy_search_around_sky"]["median_ms"],
    }


def batch_case(n_images: int, repeat: int, seed: int) -> dict[str, Any]:
    """Per-image cost of run_batch against run() one by one, same images, same run."""
    fields = [
        synthetic_field(n_sources=500, n_objects=20, seed=seed + k, ra_deg=(10.0 + 2.0 * k) % 360.0)
        for k in range(n_images)
    ]
    items = [
        (
            f.exposure,
            {name: f.sources[name].to_numpy() for name in f.sources.columns},
            {n: f.objects[n].to_numpy(dtype=object if n == "designation" else None) for n in f.objects.columns},
        )
        for f in fields
    ]
    task = SsSingleFrameAssociationTask()
    timings = timed_round_robin(
        {
            "one_by_one": lambda: [task.run(e, s, solarSystemObjectTable=o) for e, s, o in items],
            "run_batch": lambda: task.run_batch(items),
        },
        repeat,
    )
    per_image = {name: t["median_ms"] * 1e3 / n_images for name, t in timings.items()}
    return {"n_images": n_images, "per_image_us": per_image, "ratio": per_image["run_batch"] / per_image["one_by_one"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 100k x 10k case")
    args = parser.parse_args()
    # A streaming-size detector (the worker's typical event), then the reference case.
    cases = [run_case(500, 20, args.repeat * 4, args.seed), run_case(10_000, 1_000, args.repeat, args.seed)]
    if not args.skip_scaling:
        cases.append(run_case(100_000, 10_000, max(args.repeat // 5, 5), args.seed))
    for case in cases:
        print(
            f"\n{case['n_sources']} sources x {case['n_objects']} objects "
            f"(associations: ssassoc {case['associations_ssassoc']}, rubin-style {case['associations_rubin_style']})"
        )
        for name, t in case["timings"].items():
            print(f"  {name:32s} median {t['median_ms']:8.3f} ms   p99 {t['p99_ms']:8.3f} ms")
        print(f"  ratio ssassoc / (a) = {case['ratio_vs_a']:.2f}   ssassoc / (b) = {case['ratio_vs_b']:.2f}")
    batch = batch_case(50, max(args.repeat // 2, 5), args.seed)
    print(f"\n{batch['n_images']} images of 500 sources x 20 objects, per image:")
    for name, us in batch["per_image_us"].items():
        print(f"  {name:32s} median {us:8.1f} us")
    print(f"  ratio run_batch / one by one = {batch['ratio']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cases": cases, "batch": batch}, fh, indent=2)


if __name__ == "__main__":
    main()
