"""`ssassoc ephem ...`: build, query and describe ephemeris stores; synthetic populations.

    ssassoc ephem build --orbits PATH --observatory X05 --start T --end T --out DIR [--workers N] [--skip-bad]
    ssassoc ephem query DIR --time T --ra DEG --dec DEG --radius DEG [--format table|csv|json]
    ssassoc ephem info DIR [--verify] [--json]
    ssassoc ephem population --n N --out PATH --format mpcorb|openorb [--seed S]

T is an ISO-8601 UTC time (``2025-06-01T03:00:00``) or an MJD number in TAI (``60827.125``).
Exit status: 0 success, 2 user error (bad arguments, missing or unreadable files, bad
times, corrupt or foreign stores, times outside a store), 1 anything unexpected.
Progress: a bar on a terminal (stderr) and structured ``ephem.build.progress`` log events.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import structlog

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USER = 2

log = structlog.get_logger("ssassoc.ephem")


class UserError(Exception):
    """A problem with the command's input, reported without a traceback (exit 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ephem",
        help="build, query and inspect cached ephemeris stores",
        description="Cached ephemeris stores: build from orbit catalogues, query cones, describe.",
    )
    sub = parser.add_subparsers(dest="ephem_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), EXIT_USER)[1])

    b = sub.add_parser("build", help="build a store from an orbit catalogue (N-body)")
    b.add_argument("--orbits", required=True, help="MPCORB.DAT(.gz) or OpenOrb/Sorcha orbit file")
    b.add_argument("--observatory", required=True, help="MPC observatory code, e.g. X05, W84, 500")
    b.add_argument("--start", required=True, help="span start: ISO-8601 UTC or MJD (TAI)")
    b.add_argument("--end", required=True, help="span end: ISO-8601 UTC or MJD (TAI)")
    b.add_argument("--out", required=True, help="store directory to create")
    b.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    b.add_argument("--skip-bad", action="store_true", help="skip (and count) bad orbit lines and objects")
    b.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    b.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    b.set_defaults(func=_cmd_build)

    q = sub.add_parser("query", help="objects predicted in a cone at a time")
    q.add_argument("store", help="store directory")
    q.add_argument("--time", required=True, help="ISO-8601 UTC or MJD (TAI)")
    q.add_argument("--ra", required=True, type=float, help="cone centre RA (deg, ICRS)")
    q.add_argument("--dec", required=True, type=float, help="cone centre Dec (deg, ICRS)")
    q.add_argument("--radius", required=True, type=float, help="cone radius (deg)")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table")
    q.set_defaults(func=_cmd_query)

    i = sub.add_parser("info", help="describe a store (manifest summary)")
    i.add_argument("store", help="store directory")
    i.add_argument("--verify", action="store_true", help="check every array's SHA-256")
    i.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    i.set_defaults(func=_cmd_info)

    p = sub.add_parser("population", help="write a synthetic Solar System population (orbit file)")
    p.add_argument("--n", required=True, type=int, help="number of objects")
    p.add_argument("--out", required=True, help="orbit file to write")
    p.add_argument("--format", choices=("mpcorb", "openorb"), default="openorb")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epoch", type=float, default=60800.0, help="orbit epoch, MJD TDB (default 60800.0)")
    p.set_defaults(func=_cmd_population)

    for cmd in (b, q, i, p):
        func = cmd.get_default("func")
        cmd.set_defaults(func=_guarded(func))


def _guarded(func: Any) -> Any:
    """Turn expected failures into one clear line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        from ssassoc.core.ephemeris.store import (
            EphemerisCoverageError,
            EphemerisStoreError,
            ObservatoryMismatchError,
        )

        expected: tuple[type[BaseException], ...] = (
            UserError,
            EphemerisStoreError,
            EphemerisCoverageError,
            ObservatoryMismatchError,
            FileNotFoundError,
            FileExistsError,
            IsADirectoryError,
            PermissionError,
        )
        try:
            from ssassoc.core.ephemeris.orbits import OrbitFormatError

            expected += (OrbitFormatError,)
        except ImportError:  # pragma: no cover
            pass
        try:
            from ssassoc.core.ephemeris.observatory import UnknownObservatoryError

            expected += (UnknownObservatoryError,)
        except ImportError:  # pragma: no cover
            pass
        try:
            return int(func(args))
        except expected as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"ssassoc ephem {args.ephem_command}: error: {msg}", file=sys.stderr, flush=True)
            return EXIT_USER

    return run


# -- times ---------------------------------------------------------------------------
def parse_time_mjd_tai(text: str) -> float:
    """ISO-8601 UTC (``2025-06-01T03:00:00[Z]``, or a date) or an MJD number (TAI) -> MJD TAI."""
    s = str(text).strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or not 0.0 < value < 200_000.0:
            raise UserError(f"time {text!r}: not a plausible MJD (TAI)")
        return value
    from astropy.time import Time

    from ssassoc.core.ephemeris.timescales import mjd_utc_to_tai

    iso = s[:-1] if s.endswith(("Z", "z")) else s
    try:
        t = Time(iso, format="isot" if "T" in iso else "iso", scale="utc")
    except ValueError as exc:
        raise UserError(
            f"time {text!r}: neither an MJD (TAI) number nor an ISO-8601 UTC time such as 2025-06-01T03:00:00"
        ) from exc
    return float(mjd_utc_to_tai(float(t.mjd)))


# -- progress ------------------------------------------------------------------------
class BuildProgress:
    """Progress callback for ``build_store``: a bar on a terminal, structured log events always.

    Log events (``ephem.build.progress``: stage, done, total, percent, elapsed_s,
    objects_per_s) are emitted at each stage change and at most every ``log_every_s``.
    """

    def __init__(self, *, bar: bool, log_every_s: float = 10.0, stream: Any = None) -> None:
        self.bar = bar
        self.stream = stream or sys.stderr
        self.log_every_s = log_every_s
        self.t0 = time.monotonic()
        self.stage = ""
        self.last_log = -math.inf

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.t0
        if stage != self.stage or done >= total or now - self.last_log >= self.log_every_s:
            rate = done / elapsed if stage == "objects" and elapsed > 0 else None
            log.info(
                "ephem.build.progress",
                stage=stage,
                done=done,
                total=total,
                percent=round(100.0 * done / max(total, 1), 1),
                elapsed_s=round(elapsed, 2),
                objects_per_s=None if rate is None else round(rate, 1),
            )
            self.last_log = now
        if self.bar:
            width = 30
            frac = done / max(total, 1)
            filled = int(width * frac)
            line = f"\r{stage:>8} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} {elapsed:6.1f}s"
            self.stream.write(line)
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        self.stage = stage


# -- commands ------------------------------------------------------------------------
def _cmd_build(args: argparse.Namespace) -> int:
    from ssassoc.core.ephemeris.build import build_store
    from ssassoc.core.ephemeris.observatory import get_observatory
    from ssassoc.core.ephemeris.orbits import read_orbits

    start = parse_time_mjd_tai(args.start)
    end = parse_time_mjd_tai(args.end)
    if not end > start:
        raise UserError(f"--end ({args.end}) must be after --start ({args.start})")
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    get_observatory(args.observatory)
    orbits_path = Path(args.orbits)
    if not orbits_path.is_file():
        raise UserError(f"orbit file {orbits_path} does not exist")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} already exists (use --overwrite to replace it)")
    t0 = time.monotonic()
    orbits = read_orbits(orbits_path, skip_bad=args.skip_bad)
    log.info(
        "ephem.build.orbits_read",
        path=str(orbits_path),
        n_objects=len(orbits),
        n_skipped=int(orbits.n_skipped),
        seconds=round(time.monotonic() - t0, 2),
    )
    progress = BuildProgress(bar=sys.stderr.isatty() and not args.no_progress)
    try:
        result = build_store(
            orbits,
            args.observatory,
            start,
            end,
            out,
            workers=args.workers,
            progress=progress,
            orbits_path=orbits_path,
            skip_bad=args.skip_bad,
            overwrite=args.overwrite,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    log.info(
        "ephem.build.done",
        path=str(result.path),
        n_objects=result.n_objects,
        n_skipped=result.n_skipped,
        worst_fit_error_mas=round(result.worst_fit_error_mas, 4),
        seconds=round(result.seconds, 2),
        objects_per_s=round(result.n_objects / max(result.seconds, 1e-9), 1),
    )
    print(
        f"wrote {result.path}: {result.n_objects:,} objects, MJD TAI [{start}, {end}], "
        f"worst fit error {result.worst_fit_error_mas:.3f} mas, {result.seconds:.1f} s"
    )
    return EXIT_OK


def _cmd_query(args: argparse.Namespace) -> int:
    from ssassoc.core.ephemeris.store import EphemerisStore

    t = parse_time_mjd_tai(args.time)
    if not (-90.0 <= args.dec <= 90.0 and math.isfinite(args.ra) and 0.0 <= args.radius <= 180.0):
        raise UserError("need -90 <= --dec <= 90, a finite --ra and 0 <= --radius <= 180 (degrees)")
    store = EphemerisStore.open(args.store)
    df = store.query(t, args.ra, args.dec, args.radius)
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        json.dump(
            json.loads(df.to_json(orient="records", double_precision=15)), sys.stdout, indent=1
        )
        sys.stdout.write("\n")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
            print(df.to_string(index=False) if len(df) else "(no objects)")
        print(f"# {len(df)} object(s) within {args.radius} deg of ({args.ra}, {args.dec}) at MJD {t} TAI")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from ssassoc.core.ephemeris.store import EphemerisStore

    store = EphemerisStore.open(args.store, verify=args.verify)
    m = store.manifest
    if args.json:
        print(json.dumps(m, indent=1))
        return EXIT_OK
    from ssassoc.core.ephemeris.timescales import mjd_tai_to_utc

    b, f, o = m["build"], m.get("fit", {}), m.get("orbits", {})

    def iso(mjd_tai: float) -> str:
        from astropy.time import Time

        return str(Time(float(mjd_tai_to_utc(mjd_tai)), format="mjd", scale="utc").isot) + " UTC"

    size = sum(p.stat().st_size for p in Path(args.store).iterdir() if p.is_file())
    lines = [
        f"store          {store.path}",
        f"format         {m['format']} v{m['format_version']} (ssassoc {m.get('software_version')})",
        f"observatory    {m['observatory']}",
        f"span (TAI)     MJD {m['start_mjd_tai']} .. {m['end_mjd_tai']}",
        f"span (UTC)     {iso(m['start_mjd_tai'])} .. {iso(m['end_mjd_tai'])}",
        f"objects        {m['n_objects']:,} ({m.get('n_segments', '?'):,} segments)",
        f"orbits         {o.get('path')} sha256 {o.get('sha256')}",
        f"sampler        {b.get('sampler')}",
        f"fit            degree {b['degree']}, {b['n_base_segments']} base segment(s), "
        f"objects per level {f.get('objects_per_level')}",
        f"fit error      worst {f.get('worst_error_mas', float('nan')):.4f} mas "
        f"({f.get('worst_object')}), p99 {f.get('p99_error_mas', float('nan')):.4f} mas, "
        f"observer {f.get('observer_worst_error_km', float('nan')):.2e} km",
        f"index          nside {b['index_nside']}, {b['index_n_bins']} bins of "
        f"{b['index_bin_days'] * 24:.2f} h, pad {b['index_pad_deg']} deg",
        f"size           {size / 2**20:.1f} MiB",
        f"created        {m.get('created_utc')}",
    ]
    if args.verify:
        lines.append("checksums      OK")
    print("\n".join(lines))
    return EXIT_OK


def _cmd_population(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    from ssassoc.core.ephemeris import population

    out = Path(args.out)
    if not out.parent.exists():
        raise UserError(f"directory {out.parent} does not exist")
    pop = population.generate_population(args.n, seed=args.seed, epoch_mjd_tdb=args.epoch)
    if args.format == "mpcorb":
        population.write_mpcorb(pop, out)
    else:
        population.write_openorb(pop, out)
    print(f"wrote {args.n:,} synthetic orbits to {out} ({args.format})")
    return EXIT_OK
