"""Propagation throughput: objects per second per core for a 24 h span.

A synthetic catalogue (all classes) with epochs up to ``--epoch-age`` days before the
span is propagated with :func:`ssassoc.core.ephemeris.nbody.propagate_states` to
``--samples`` times over 24 h. Prints objects/s (per core and total), the time split
between the long integration to the span and the dense output inside it, and the
projection for 1.3 M objects. The baseline in the same run is two-body (Kepler)
propagation of the same objects to the same times.

    .venv/bin/python benchmarks/propagation_throughput.py --n 20000 --workers 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ssassoc.core.ephemeris import nbody
from ssassoc.core.ephemeris.orbits import propagate_two_body
from ssassoc.core.ephemeris.population import generate_population


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epoch-age", type=float, default=365.0, help="days from epoch to span")
    ap.add_argument("--epoch-spread", type=float, default=0.0,
                    help="spread epochs over this many days (0: one common epoch)")
    ap.add_argument("--samples", type=int, default=97, help="output times over the 24 h")
    ap.add_argument("--node-step", type=float, default=nbody.DEFAULT_CONFIG.node_step_days)
    ap.add_argument("--epoch-tolerance", type=float, default=0.0)
    ap.add_argument("--no-gr", action="store_true")
    ap.add_argument("--observe", action="store_true",
                    help="time nbody.observe (light time, X05) instead of propagate_states")
    args = ap.parse_args()

    span_start = 60800.0 + args.epoch_age
    pop = generate_population(args.n, seed=42, epoch_mjd_tdb=60800.0,
                              epoch_spread_days=args.epoch_spread)
    orbits = pop.to_orbit_table()
    times = span_start + np.linspace(0.0, 1.0, args.samples)
    cfg = nbody.PropagationConfig(gr=not args.no_gr, node_step_days=args.node_step,
                                  epoch_tolerance_days=args.epoch_tolerance)

    t0 = time.perf_counter()
    p2, _ = propagate_two_body(orbits.pos_au[:, None], orbits.vel_au_per_day[:, None],
                               times[None, :] - orbits.epoch_mjd_tdb[:, None])
    t_kepler = time.perf_counter() - t0

    t0 = time.perf_counter()
    if args.observe:
        obs = nbody.observe(orbits, times, "X05", workers=args.workers, config=cfg)
        pos = obs.helio_pos_au
    else:
        pos, _ = nbody.propagate_states(orbits, times, workers=args.workers, config=cfg)
    t_nbody = time.perf_counter() - t0

    # Split: integration to the span start only (one output time).
    t0 = time.perf_counter()
    nbody.propagate_states(orbits, times[:1], workers=args.workers, config=cfg)
    t_to_span = time.perf_counter() - t0

    n = len(orbits)
    per_core = n / t_nbody / args.workers
    print(f"objects={n} workers={args.workers} epoch_age={args.epoch_age} d "
          f"spread={args.epoch_spread} d samples={args.samples} node_step={args.node_step} d "
          f"gr={not args.no_gr} observe={args.observe}")
    print(f"two-body baseline : {t_kepler:8.2f} s  ({n / t_kepler:10.0f} obj/s)")
    print(f"N-body total      : {t_nbody:8.2f} s  ({n / t_nbody:10.0f} obj/s, "
          f"{per_core:8.0f} obj/s/core, {t_nbody / t_kepler:6.1f}x two-body)")
    print(f"  to span start   : {t_to_span:8.2f} s; dense output in span: "
          f"{t_nbody - t_to_span:8.2f} s")
    print(f"projection 1.3 M objects on 2 cores: {1.3e6 / (per_core * 2) / 60:6.1f} min")
    sep = np.linalg.norm(pos - p2, axis=-1)
    print(f"N-body minus two-body at the span: median {np.median(sep) * 1.496e8:.0f} km")


if __name__ == "__main__":
    main()
