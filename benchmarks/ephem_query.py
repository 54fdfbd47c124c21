#!/usr/bin/env python3
"""Cone-query benchmark of the ephemeris store, side by side with Rubin's mpSky.

    .venv/bin/python benchmarks/ephem_query.py --n 1300000 --queries 200 --seed 1

1. Builds (or reuses, ``--store DIR``) a store of N synthetic objects
   (``population.generate_population``: MPC-like class mix) over 24 h at X05.
   ``--sampler two-body`` (default for speed) fits Kepler+light-time positions and is
   labelled as such: query speed does not depend on where positions came from.
   ``--sampler nbody`` uses the production N-body integrator.
2. In a fresh process, the store evicted from the page cache first: open time, cold
   first query (at opposition, r = 0.4 deg), query latency median / p99 at r = 0.4 and 2.1 deg
   for pointings near the ecliptic (|beta| <= 10 deg) and anywhere (uniform on the sky),
   objects returned, candidates evaluated, completeness against brute force, resident
   memory (VmRSS / VmHWM).
3. Runs mpSky's own build + query (``/work/shared/bench/mpsky_anchor.py`` in ``.venv-mpsky``)
   on a catalogue of the same size and prints both with ratios (ours / mpSky; < 1 = faster).

4. Cold start (``--cold K`` alone, or 5 runs in a full run): K fresh processes, each after
   evicting the store from the page cache (``posix_fadvise(DONTNEED)`` per file, checked
   with ``fincore``; ``--drop-caches`` for the whole machine): open time and first query.
5. Interleaved (``--interleave`` alone, or after a full run): ssassoc ``query`` and
   ``query_columns`` and mpSky's ``query`` (in a ``.venv-mpsky`` child that builds its cache
   with the anchor's own functions) on the same pointings, alternating blocks of
   ``--block`` queries, so load from other jobs on the machine hits both alike.
6. Breakdown (``--breakdown``): per stage of a query (per-time plan, candidates, compiled
   evaluation, dict, DataFrame), medians over cones with objects.

mpSky returns polynomial coefficients only; ours returns the complete evaluated
``solarSystemObjectTable`` (positions, rates, states, magnitudes) for objects in the cone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ANCHOR = Path("/work/shared/bench/mpsky_anchor.py")
MPSKY_PY = REPO / ".venv-mpsky" / "bin" / "python"
OBLIQ = math.radians(84381.406 / 3600.0)


def _status_mib() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024.0
    return out


def ecl_to_eq(lon_deg: np.ndarray, lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    x, y, z = np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)
    ce, se = math.cos(OBLIQ), math.sin(OBLIQ)
    yy, zz = y * ce - z * se, y * se + z * ce
    return np.degrees(np.arctan2(yy, x)) % 360.0, np.degrees(np.arcsin(zz))


# -- build ----------------------------------------------------------------------------
def build(args: argparse.Namespace, store_dir: Path) -> dict:
    from ssassoc.core.ephemeris.build import build_store, nbody_sampler, two_body_sampler
    from ssassoc.core.ephemeris.population import generate_population

    t0 = time.perf_counter()
    orbits = generate_population(args.n, seed=args.seed, epoch_mjd_tdb=args.start - 1.0,
                                 epoch_spread_days=args.epoch_spread).to_orbit_table()  # fmt: skip
    t_pop = time.perf_counter() - t0
    sampler = two_body_sampler("X05") if args.sampler == "two-body" else nbody_sampler("X05")
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 15 or done == total:
            print(f"#   build {stage}: {done:,}/{total:,}  {now - t0:7.1f} s", flush=True)
            last[0] = now

    r = build_store(orbits, "X05", args.start, args.start + args.span, store_dir, sampler=sampler,
                    workers=args.workers, progress=progress, overwrite=True)  # fmt: skip
    size = sum(p.stat().st_size for p in store_dir.iterdir())
    info = dict(seconds=r.seconds, population_s=t_pop, sampler=sampler.name, n=r.n_objects, workers=args.workers,
                objects_per_s=r.n_objects / r.seconds, epoch_spread_days=args.epoch_spread,
                worst_fit_error_mas=r.worst_fit_error_mas, size_mib=size / 2**20,
                objects_per_level=r.manifest["fit"]["objects_per_level"],
                index_entries=r.manifest["arrays"]["index_objects"]["shape"][0])  # fmt: skip
    print(f"# built {r.n_objects:,} objects in {r.seconds:.1f} s ({sampler.name}), store {size / 2**20:.0f} MiB, "
          f"worst fit error {r.worst_fit_error_mas:.4f} mas", flush=True)  # fmt: skip
    return info


# -- measure (fresh process) ----------------------------------------------------------------
def measure(store_dir: Path, queries: int, seed: int, radii: list[float], brute: int) -> dict:
    import pandas as pd  # noqa: F401 - import cost is not open cost

    from ssassoc.core.ephemeris.store import EphemerisStore

    res: dict = {"rss_before_open_mib": _status_mib()["VmRSS"]}
    t0 = time.perf_counter()
    store = EphemerisStore.open(store_dir)
    res["open_ms"] = (time.perf_counter() - t0) * 1e3
    t_mid = 0.5 * (store.start_mjd_tai + store.end_mjd_tai)
    obs, _ = store.observer_state(t_mid)  # anti-Sun direction = opposition
    ra_opp = math.degrees(math.atan2(obs[1], obs[0])) % 360.0
    dec_opp = math.degrees(math.asin(obs[2] / np.linalg.norm(obs)))
    t0 = time.perf_counter()
    df = store.query(t_mid, ra_opp, dec_opp, radii[0])
    res["cold_first_query_ms"] = (time.perf_counter() - t0) * 1e3
    res["cold_first_query_nobj"] = len(df)

    rng = np.random.default_rng(seed + 1)
    times = rng.uniform(store.start_mjd_tai, store.end_mjd_tai, queries)
    sets = {
        "ecl": ecl_to_eq(rng.uniform(0, 360, queries), rng.uniform(-10, 10, queries)),
        "any": (rng.uniform(0, 360, queries), np.degrees(np.arcsin(rng.uniform(-1, 1, queries)))),
    }
    stats: dict = {}
    # Pass 1, "first touch": pages of the store are mapped as queries reach them (a fresh
    # process). Pass 2, "warm": every page mapped (store.warm()), the steady state of a
    # long-running worker and the state mpSky is always in (its cache is loaded in RAM).
    for phase in ("first_touch", "warm"):
        if phase == "warm":
            res["warm_s"] = store.warm()
        for name, (ras, decs) in sets.items():
            for r in radii:
                lat = np.empty(queries)
                nret = np.empty(queries, np.int64)
                for j in range(queries):
                    t1 = time.perf_counter()
                    out = store.query(float(times[j]), float(ras[j]), float(decs[j]), r)
                    lat[j] = time.perf_counter() - t1
                    nret[j] = len(out)
                ncand = [store._index.candidates(float(times[j]) - store.start_mjd_tai, float(ras[j]),
                                                 float(decs[j]), r).size for j in range(queries)]  # fmt: skip
                ms = lat * 1e3
                key = f"{name}/r={r}" if phase == "warm" else f"{name}/r={r}/first_touch"
                stats[key] = dict(
                    median_ms=float(np.median(ms)), p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()),
                    mean_returned=float(nret.mean()), max_returned=int(nret.max()),
                    mean_candidates=float(np.mean(ncand)),
                )  # fmt: skip
                s = stats[key]
                print(f"#   ssassoc {phase:11s} {name} r={r}: median {s['median_ms']:.3f} ms "
                      f"p99 {s['p99_ms']:.3f} ms returned {s['mean_returned']:.1f} "
                      f"candidates {s['mean_candidates']:.1f}", flush=True)  # fmt: skip
                if phase == "warm":  # the same queries as numpy columns (no DataFrame)
                    for j in range(queries):
                        t1 = time.perf_counter()
                        store.query_columns(float(times[j]), float(ras[j]), float(decs[j]), r)
                        lat[j] = time.perf_counter() - t1
                    ms = lat * 1e3
                    stats[key + "/columns"] = dict(median_ms=float(np.median(ms)), p99_ms=float(np.percentile(ms, 99)))
                    print(f"#   ssassoc warm columns {name} r={r}: median {np.median(ms):.3f} ms "
                          f"p99 {np.percentile(ms, 99):.3f} ms", flush=True)  # fmt: skip
    res["queries_stats"] = stats
    # completeness: indexed query vs evaluating every object
    miss = tot = 0
    ras, decs = sets["ecl"]
    all_rows = np.arange(len(store))
    for j in range(min(brute, queries)):
        t = float(times[j])
        helio, _ = store.positions(all_rows, t)
        o, _ = store.observer_state(t)
        u = helio - o
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        ra_r, de_r = math.radians(ras[j]), math.radians(decs[j])
        c = np.array([math.cos(de_r) * math.cos(ra_r), math.cos(de_r) * math.sin(ra_r), math.sin(de_r)])
        truth = set(store._a["ss_object_id"][u @ c >= math.cos(math.radians(max(radii)))].tolist())
        got = set(store.query(t, float(ras[j]), float(decs[j]), max(radii))["ssObjectId"].tolist())
        tot += len(truth)
        miss += len(truth - got)
    res["completeness"] = dict(queries=min(brute, queries), radius=max(radii), objects=tot, missed=miss)
    st = _status_mib()
    res["rss_end_mib"], res["peak_rss_mib"] = st["VmRSS"], st["VmHWM"]
    return res


def run_mpsky(n: int, queries: int, seed: int) -> dict | None:
    if not (MPSKY_PY.exists() and ANCHOR.exists()):
        print(f"# mpSky anchor skipped: need {MPSKY_PY} (python3 -m venv .venv-mpsky && "
              ".venv-mpsky/bin/pip install mpsky==0.0.2 'pandas<3') and {ANCHOR}", flush=True)  # fmt: skip
        return None
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "mpsky.json"
        cmd = [str(MPSKY_PY), str(ANCHOR), "--n", str(n), "--queries", str(queries), "--seed", str(seed),
               "--json", str(out), "--no-pickle"]  # fmt: skip
        print("# running mpSky anchor:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
            return None
        print("\n".join("#   mpsky " + ln for ln in proc.stdout.splitlines() if "query set" in ln or "cold" in ln))
        return json.loads(out.read_text())


# -- cold start ---------------------------------------------------------------------------
def evict(store_dir: Path, drop_caches: bool) -> int:
    """Drop the store's files from the page cache; return the bytes still resident.

    Default: ``posix_fadvise(POSIX_FADV_DONTNEED)`` on every file (only this store, so the
    other jobs on the machine keep their caches); ``drop_caches``: ``sync; echo 3 >
    /proc/sys/vm/drop_caches`` (root; the whole machine)."""
    if drop_caches:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    for f in store_dir.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    try:  # util-linux fincore: resident bytes per file (checks that the eviction worked)
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES",
                              *map(str, store_dir.iterdir())], capture_output=True, text=True, check=True)  # fmt: skip
        return sum(int(x) for x in out.stdout.split())
    except (OSError, subprocess.CalledProcessError, ValueError):
        return -1


def cold_child(store_dir: Path, seed: int, prefetch: bool) -> dict:
    """Fresh process, store evicted: open time and first query (r = 0.4 deg within 30 deg
    of opposition, near the ecliptic, at a random time) with its major page faults."""
    import resource

    import pandas as pd  # noqa: F401 - import cost is not open cost

    from ssassoc.core.ephemeris.store import EphemerisStore

    rng = np.random.default_rng(seed)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    store = EphemerisStore.open(store_dir, prefetch=prefetch)
    t1 = time.perf_counter()
    t = float(rng.uniform(store.start_mjd_tai, store.end_mjd_tai))
    obs, _ = store.observer_state(t)
    lon_opp = math.degrees(math.atan2(obs[1] * math.cos(OBLIQ) + obs[2] * math.sin(OBLIQ), obs[0]))
    ra, dec = ecl_to_eq(np.array([lon_opp + rng.uniform(-30, 30)]), np.array([rng.uniform(-5, 5)]))
    t2 = time.perf_counter()
    df = store.query(t, float(ra[0]), float(dec[0]), 0.4)
    t3 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    t4 = time.perf_counter()
    store.query(t, float(ra[0]) + 0.3, float(dec[0]), 0.4)
    t5 = time.perf_counter()
    return dict(open_ms=(t1 - t0) * 1e3, first_query_ms=(t3 - t2) * 1e3, n=len(df),
                major_faults=r1.ru_majflt - r0.ru_majflt, second_query_ms=(t5 - t4) * 1e3)  # fmt: skip


def cold(store_dir: Path, reps: int, drop_caches: bool, prefetch: bool) -> dict:
    runs = []
    for i in range(reps):
        resident = evict(store_dir, drop_caches)
        cmd = [sys.executable, __file__, "--cold-child", str(store_dir), "--seed", str(i)]
        proc = subprocess.run(cmd + (["--prefetch"] if prefetch else []), capture_output=True, text=True, check=True)
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["resident_bytes_before"] = resident
        runs.append(run)
        print(f"#   cold {i}: resident before {resident} B, open {run['open_ms']:.2f} ms, first query "
              f"{run['first_query_ms']:.2f} ms ({run['n']} objects, {run['major_faults']} major faults), "
              f"second {run['second_query_ms']:.2f} ms", flush=True)  # fmt: skip
    first = np.array([r["first_query_ms"] for r in runs])
    opens = np.array([r["open_ms"] for r in runs])
    res = dict(runs=runs, eviction="drop_caches" if drop_caches else "posix_fadvise DONTNEED", prefetch=prefetch,
               first_query_median_ms=float(np.median(first)), first_query_max_ms=float(first.max()),
               open_median_ms=float(np.median(opens)), open_max_ms=float(opens.max()))  # fmt: skip
    print(f"# cold ({res['eviction']}, prefetch={prefetch}, {reps} runs): first query median "
          f"{res['first_query_median_ms']:.2f} ms, max {res['first_query_max_ms']:.2f} ms; open median "
          f"{res['open_median_ms']:.2f} ms, max {res['open_max_ms']:.2f} ms", flush=True)  # fmt: skip
    return res


# -- interleaved comparison ---------------------------------------------------------------
def mpsky_server(n: int, seed: int) -> int:
    """Child under ``.venv-mpsky``: build mpSky's cache exactly as the anchor script does
    (its own functions, imported from ``/work/shared/bench``), then answer query blocks
    from stdin (one JSON line each) with their latencies, so both sides are timed in the
    same seconds of a shared machine."""
    import gc

    sys.path.insert(0, str(ANCHOR.parent))
    import mpsky_anchor as anc
    from mpsky import core as mc

    rng = np.random.default_rng(seed)
    t_tai = 60800.98 + np.linspace(0.0, 0.44, 20)
    el = anc.synth_elements(n, rng, t_tai[0])
    obs_km = anc.observer_positions_km(t_tai)
    parts = []
    for start in range(0, n, 100_000):
        sl = slice(start, min(start + 100_000, n))
        comps = mc.compress(anc.make_sorcha_df(el, sl, t_tai, obs_km), cheby_order=4, observer_cheby_order=7)
        parts.append((comps, mc.build_healpix_index(comps, 128)))
    comps, idx = mc.merge_comps(parts)
    del parts
    gc.collect()
    tmin, tmax = comps[0]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        lat, nret = [], []
        for ra, dec, f in zip(cmd["ras"], cmd["decs"], cmd["time_fracs"], strict=True):
            t = float(tmin + f * (tmax - tmin))
            t0 = time.perf_counter()
            res = mc.query(comps, idx, t, float(ra), float(dec), float(cmd["r"]))
            lat.append(time.perf_counter() - t0)
            nret.append(len(res[0]))
        print(json.dumps({"lat": lat, "n": nret}), flush=True)
    return 0


def interleaved(store_dir: Path, n: int, queries: int, seed: int, radii: list[float], block: int) -> dict:
    """ssassoc (``query`` and ``query_columns``, every store page mapped) and mpSky
    (``mpsky.core.query`` in a ``.venv-mpsky`` child) on the same pointings and time
    fractions, alternating blocks of ``block`` queries, so machine load hits both alike."""
    from ssassoc.core.ephemeris import sky_index
    from ssassoc.core.ephemeris import store as store_mod
    from ssassoc.core.ephemeris.store import EphemerisStore

    kernel = store_mod._query_kernel

    def use_kernel(on: bool) -> None:
        """The compiled kernel, or the numpy path it replaced (the fallback), for a same-run ratio."""
        store_mod._query_kernel = sky_index._query_kernel = kernel if on else None
        store._plan_cache = None

    proc = subprocess.Popen([str(MPSKY_PY), __file__, "--mpsky-server", "--n", str(n), "--seed", str(seed)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    store = EphemerisStore.open(store_dir)
    store.warm()
    ready = json.loads(proc.stdout.readline())
    assert ready.get("ready")
    rng = np.random.default_rng(seed + 7)
    sets = {
        "ecl": ecl_to_eq(rng.uniform(0, 360, queries), rng.uniform(-10, 10, queries)),
        "any": (rng.uniform(0, 360, queries), np.degrees(np.arcsin(rng.uniform(-1, 1, queries)))),
    }
    fracs = rng.uniform(0, 1, queries)
    times = store.start_mjd_tai + fracs * (store.end_mjd_tai - store.start_mjd_tai)
    out: dict = {}
    for name, (ras, decs) in sets.items():
        for r in radii:
            lat: dict[str, list[float]] = {"query": [], "query_columns": [], "query_columns_numpy": [], "mpsky": []}
            nret: dict[str, list[int]] = {"query": [], "mpsky": []}
            for b0 in range(0, queries, block):
                sl = slice(b0, min(b0 + block, queries))
                for key in ("query", "query_columns", "query_columns_numpy"):
                    fn = getattr(store, key.removesuffix("_numpy"))
                    use_kernel(not key.endswith("_numpy"))
                    for j in range(sl.start, sl.stop):
                        t1 = time.perf_counter()
                        res = fn(float(times[j]), float(ras[j]), float(decs[j]), r)
                        lat[key].append(time.perf_counter() - t1)
                        if key == "query":
                            nret["query"].append(len(res))
                use_kernel(True)
                proc.stdin.write(json.dumps({"ras": ras[sl].tolist(), "decs": decs[sl].tolist(),
                                             "time_fracs": fracs[sl].tolist(), "r": r}) + "\n")  # fmt: skip
                proc.stdin.flush()
                ans = json.loads(proc.stdout.readline())
                lat["mpsky"] += ans["lat"]
                nret["mpsky"] += ans["n"]
            st = {k: {"median_ms": float(np.median(v) * 1e3), "p99_ms": float(np.percentile(v, 99) * 1e3)}
                  for k, v in lat.items()}  # fmt: skip
            st["returned_mean"] = {k: float(np.mean(v)) for k, v in nret.items()}
            out[f"{name}/r={r}"] = st
            q, c, m = st["query"], st["query_columns"], st["mpsky"]
            print(f"# interleaved {name} r={r}: query {q['median_ms']:.3f}/{q['p99_ms']:.3f} ms, "
                  f"query_columns {c['median_ms']:.3f}/{c['p99_ms']:.3f}, mpSky {m['median_ms']:.3f}/"
                  f"{m['p99_ms']:.3f} (median/p99); ratio median query {q['median_ms'] / m['median_ms']:.2f}, "
                  f"columns {c['median_ms'] / m['median_ms']:.2f}; returned {st['returned_mean']['query']:.1f} "
                  f"vs {st['returned_mean']['mpsky']:.1f}; numpy path (no compiled kernel) columns "
                  f"{st['query_columns_numpy']['median_ms']:.3f} ms", flush=True)  # fmt: skip
    proc.stdin.close()
    proc.wait()
    return out


def breakdown(store_dir: Path, queries: int, seed: int) -> dict:
    """Where one query's time goes (``--breakdown``): medians over ``queries`` cones at
    random times (so every query computes its per-time plan), store warm, per stage."""
    from ssassoc.core.ephemeris import store as store_mod
    from ssassoc.core.ephemeris.store import EphemerisStore

    store = EphemerisStore.open(store_dir)
    store.warm()
    rng = np.random.default_rng(seed + 11)
    span = store.end_mjd_tai - store.start_mjd_tai
    sets = {
        "any r=0.4": (rng.uniform(0, 360, queries), np.degrees(np.arcsin(rng.uniform(-1, 1, queries))), 0.4),
        "ecl r=2.1": (*ecl_to_eq(rng.uniform(0, 360, queries), rng.uniform(-10, 10, queries)), 2.1),
    }
    out: dict = {}
    for name, (ras, decs, r) in sets.items():
        stages: dict[str, list[float]] = {k: [] for k in ("plan", "candidates", "evaluate", "dict", "dataframe")}
        for dt, ra, dec in zip(rng.uniform(0, span, queries), ras.tolist(), decs.tolist(), strict=True):
            store._plan_cache = None
            t0 = time.perf_counter()
            store._plan(float(dt))
            t1 = time.perf_counter()
            cand = store._index.candidates(float(dt), ra, dec, r)
            t2 = time.perf_counter()
            parts = store._evaluate(cand, float(dt), ra, dec, r) if cand.size else None
            t3 = time.perf_counter()
            if parts is None or parts[0].size == 0:
                continue  # empty cones return early: the breakdown is of cones with objects
            store_mod._columns(*parts)
            t4 = time.perf_counter()
            store_mod._frame(*parts)
            t5 = time.perf_counter()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stages[k].append(v)
        out[name] = {k: float(np.median(v) * 1e6) for k, v in stages.items()} | {"n_cones": len(stages["plan"])}
        print(f"# breakdown {name} (median us over {out[name]['n_cones']} cones with objects): "
              + ", ".join(f"{k} {out[name][k]:.1f}" for k in stages), flush=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_300_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=float, default=60800.5, help="store start, MJD TAI")
    ap.add_argument("--span", type=float, default=1.0, help="store span, days")
    ap.add_argument("--sampler", choices=("two-body", "nbody"), default="two-body")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epoch-spread", type=float, default=365.0, help="orbit epochs up to this many days before")
    ap.add_argument("--store", type=Path, default=None, help="store directory (reused if it holds N objects)")
    ap.add_argument("--radii", default="0.4,2.1")
    ap.add_argument("--brute", type=int, default=5, help="queries checked against brute force")
    ap.add_argument("--no-mpsky", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--interleave", action="store_true",
                    help="only the interleaved comparison (ssassoc and mpSky alternating in blocks)")  # fmt: skip
    ap.add_argument("--block", type=int, default=10, help="queries per interleaved block")
    ap.add_argument("--breakdown", action="store_true", help="only where a query's time goes, per stage")
    ap.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mpsky-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cold", type=int, default=0, metavar="K",
                    help="only the cold-start mode: K fresh processes, each after evicting the store "
                         "from the page cache (posix_fadvise DONTNEED per file)")  # fmt: skip
    ap.add_argument("--drop-caches", action="store_true",
                    help="evict with `sync; echo 3 > /proc/sys/vm/drop_caches` instead (root, whole machine)")
    ap.add_argument("--prefetch", action="store_true", help="cold mode: open with prefetch=True")
    ap.add_argument("--cold-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    radii = [float(r) for r in args.radii.split(",")]
    if args.mpsky_server:
        return mpsky_server(args.n, args.seed)
    if args.cold_child is not None:
        print(json.dumps(cold_child(args.cold_child, args.seed, args.prefetch)), flush=True)
        return 0

    if args.measure is not None:  # child: measure only, print JSON
        print(json.dumps(measure(args.measure, args.queries, args.seed, radii, args.brute)), flush=True)
        return 0

    store_dir = args.store or Path(tempfile.gettempdir()) / f"ssassoc-bench-store-{args.n}-{args.sampler}"
    res: dict = {"n": args.n, "queries": args.queries, "seed": args.seed, "cpus": os.cpu_count()}
    manifest = store_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text())["n_objects"] == args.n:
        print(f"# reusing {store_dir}", flush=True)
        res["build"] = None
    else:
        res["build"] = build(args, store_dir)
    if args.cold:
        res["cold"] = cold(store_dir, args.cold, args.drop_caches, args.prefetch)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    if args.breakdown:
        res["breakdown"] = breakdown(store_dir, max(args.queries, 1000), args.seed)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    if args.interleave:
        res["interleaved"] = interleaved(store_dir, args.n, args.queries, args.seed, radii, args.block)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    # a defined start: first touches below read from the disk (the worst case)
    res["resident_bytes_before_measure"] = evict(store_dir, args.drop_caches)
    cmd = [sys.executable, __file__, "--measure", str(store_dir), "--queries", str(args.queries),
           "--seed", str(args.seed), "--radii", args.radii, "--brute", str(args.brute)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        return 1
    lines = proc.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    ours = json.loads(lines[-1])
    res["ssassoc"] = ours
    mp = None if args.no_mpsky else run_mpsky(args.n, args.queries, args.seed)
    res["mpsky"] = mp
    res["cold"] = cold(store_dir, 5, args.drop_caches, prefetch=False)
    if not args.no_mpsky and MPSKY_PY.exists():  # in a fresh process, like the measurement above
        with tempfile.TemporaryDirectory() as td:
            out_json = Path(td) / "interleaved.json"
            subprocess.run([sys.executable, __file__, "--interleave", "--store", str(store_dir), "--n", str(args.n),
                            "--queries", str(args.queries), "--seed", str(args.seed), "--radii", args.radii,
                            "--block", str(args.block), "--json", str(out_json)], check=True)  # fmt: skip
            res["interleaved"] = json.loads(out_json.read_text())["interleaved"]

    print(f"\nN = {args.n:,}, {args.queries} queries per cell; latency median / p99 in ms; "
          "ratio = ssassoc / mpSky (< 1: ssassoc faster)")
    print("ssassoc warm = every store page mapped (steady state; mpSky's cache is always in RAM); "
          "first touch = fresh process, store evicted from the page cache before, pages read as "
          "queries reach them")
    print(f"{'pointings':10s} {'radius':>6s} | {'ssassoc warm':>17s} {'objects':>8s} | {'first touch':>17s} | "
          f"{'warm, columns':>17s} | {'mpSky':>17s} {'objects':>8s} | {'ratio med':>9s} {'cols med':>9s} "
          f"{'ratio p99':>9s}")  # fmt: skip
    for key, s in ours["queries_stats"].items():
        if key.endswith(("first_touch", "columns")):
            continue
        name, r = key.split("/r=")
        f = ours["queries_stats"][key + "/first_touch"]
        line = (f"{name:10s} {r:>6s} | {s['median_ms']:7.3f} / {s['p99_ms']:7.3f} {s['mean_returned']:8.1f} | "
                f"{f['median_ms']:7.3f} / {f['p99_ms']:7.3f} | ")
        m = (mp or {}).get("queries_stats", {}).get(key)
        cs = ours["queries_stats"][key + "/columns"]
        line += f"{cs['median_ms']:7.3f} / {cs['p99_ms']:7.3f} | "
        if m:
            line += (f"{m['median_ms']:7.3f} / {m['p99_ms']:7.3f} {m['mean_returned']:8.1f} | "
                     f"{s['median_ms'] / m['median_ms']:9.2f} {cs['median_ms'] / m['median_ms']:9.2f} "
                     f"{s['p99_ms'] / m['p99_ms']:9.2f}")  # fmt: skip
        print(line)
    print(f"open {ours['open_ms']:.1f} ms; cold first query {ours['cold_first_query_ms']:.2f} ms "
          f"({ours['cold_first_query_nobj']} objects)"
          + (f" [mpSky cold first query {mp['cold_first_query_ms']:.2f} ms]" if mp else ""))  # fmt: skip
    print(f"resident: {ours['rss_end_mib']:.0f} MiB at end (all store pages mapped), peak "
          f"{ours['peak_rss_mib']:.0f} MiB (before open {ours['rss_before_open_mib']:.0f} MiB); "
          f"warming took {ours['warm_s'] * 1e3:.0f} ms")
    c = ours["completeness"]
    print(f"completeness: {c['missed']} of {c['objects']} objects missed in {c['queries']} brute-force checks "
          f"at r = {c['radius']}")
    if res["build"]:
        b = res["build"]
        print(f"build ({b['sampler']}, {b['workers']} workers, epochs up to {b['epoch_spread_days']:.0f} d away): "
              f"{b['seconds']:.1f} s for {b['n']:,} objects = {b['objects_per_s']:.0f} obj/s, "
              f"store {b['size_mib']:.0f} MiB, "
              f"worst fit {b['worst_fit_error_mas']:.4f} mas, objects per level {b['objects_per_level']}")
    c = res["cold"]
    print(f"cold (store evicted by {c['eviction']}, fresh process, r = 0.4 deg near opposition): open median "
          f"{c['open_median_ms']:.2f} ms, first query median {c['first_query_median_ms']:.2f} ms, max "
          f"{c['first_query_max_ms']:.2f} ms over {len(c['runs'])} runs")  # fmt: skip
    for key, st in res.get("interleaved", {}).items():
        q, cc, m = st["query"], st["query_columns"], st["mpsky"]
        print(f"interleaved {key}: query {q['median_ms']:.3f}/{q['p99_ms']:.3f}, query_columns "
              f"{cc['median_ms']:.3f}/{cc['p99_ms']:.3f}, mpSky {m['median_ms']:.3f}/{m['p99_ms']:.3f} ms; "
              f"ratio median query {q['median_ms'] / m['median_ms']:.2f}, columns "
              f"{cc['median_ms'] / m['median_ms']:.2f}; numpy path columns "
              f"{st['query_columns_numpy']['median_ms']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
