#!/usr/bin/env python3
"""Build-rate benchmark of the ephemeris store with the production N-body sampler.

    .venv/bin/python benchmarks/ephem_build.py --n 20000 --workers 1
    .venv/bin/python benchmarks/ephem_build.py --n 20000 --workers 2

Synthetic MPC-like catalogue (``population.generate_population``) with orbit epochs
spread over the year before the store (``--epoch-spread``, default 365 d), a 24 h store
at X05. Reports objects/s (total and per worker), where the time goes (N-body sampling,
fitting + verification, index, write; the breakdown needs ``--workers 1``), fit errors,
segments per object, and the extrapolated time for 1.3 M objects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class TimedSampler:
    """Wraps a sampler and accumulates the time spent in it (same process only)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.seconds = 0.0
        self.calls = 0
        self.object_times = 0

    def __call__(self, orbits, times):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = self.inner(orbits, times)  # type: ignore[operator]
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.object_times += len(orbits) * len(times)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--start", type=float, default=60800.5, help="store start, MJD TAI")
    ap.add_argument("--span", type=float, default=1.0, help="days")
    ap.add_argument("--epoch-spread", type=float, default=365.0, help="orbit epochs up to this many days before")
    ap.add_argument("--sampler", choices=("nbody", "two-body"), default="nbody")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from ssassoc.core.ephemeris.build import build_store, nbody_sampler, two_body_sampler
    from ssassoc.core.ephemeris.population import generate_population

    pop = generate_population(args.n, seed=args.seed, epoch_mjd_tdb=args.start - 1.0,
                              epoch_spread_days=args.epoch_spread)  # fmt: skip
    orbits = pop.to_orbit_table()
    inner = nbody_sampler("X05") if args.sampler == "nbody" else two_body_sampler("X05")
    sampler = TimedSampler(inner)
    stages: dict[str, float] = {}
    t_last = [time.perf_counter(), ""]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage != t_last[1]:
            if t_last[1]:
                stages[str(t_last[1])] = stages.get(str(t_last[1]), 0.0) + now - float(t_last[0])
            t_last[0], t_last[1] = now, stage
        if stage == "objects" and done:
            el = now - float(t_last[0])
            print(f"#   {done:,}/{total:,} objects fitted, {done / max(el, 1e-9):.0f} obj/s", flush=True)

    with tempfile.TemporaryDirectory() as td:
        t0 = time.perf_counter()
        r = build_store(orbits, "X05", args.start, args.start + args.span, Path(td) / "store",
                        workers=args.workers, progress=progress, sampler=sampler)  # fmt: skip
        total = time.perf_counter() - t0
        stages[str(t_last[1])] = stages.get(str(t_last[1]), 0.0) + time.perf_counter() - float(t_last[0])
        fit = r.manifest["fit"]
        size = sum(p.stat().st_size for p in (Path(td) / "store").iterdir())
    rate = r.n_objects / total
    res = {
        "n": r.n_objects, "workers": args.workers, "sampler": inner.name, "seconds": total,  # type: ignore[attr-defined]
        "objects_per_s": rate, "objects_per_s_per_worker": rate / args.workers,
        "stages_s": stages, "sampler_s_in_main_process": sampler.seconds, "sampler_calls": sampler.calls,
        "fit": fit, "store_mib": size / 2**20, "extrapolated_1p3M_minutes": 1.3e6 / rate / 60.0,
        "classes": {str(c): int(k) for c, k in zip(*np.unique(pop.dyn_class.astype(str), return_counts=True),
                                                      strict=True)},
    }  # fmt: skip
    print(f"N-body build: {r.n_objects:,} objects over {args.span} d, epochs up to {args.epoch_spread:.0f} d away, "
          f"workers {args.workers}: {total:.1f} s = {rate:.0f} obj/s ({rate / args.workers:.0f} per worker); "
          f"1.3 M would take {res['extrapolated_1p3M_minutes']:.1f} min")  # fmt: skip
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
          + (f"; of which N-body sampling {sampler.seconds:.1f} s in {sampler.calls} calls"
             if args.workers == 1 else ""))
    print(f"fit: worst {fit['worst_error_mas']:.4f} mas ({fit['worst_object']}), p99 {fit['p99_error_mas']:.4f}, "
          f"median {fit['median_error_mas']:.5f} mas; objects per level {fit['objects_per_level']}; "
          f"store {size / 2**20:.1f} MiB")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
