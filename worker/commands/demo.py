"""``ssassoc demo``: the main job on embedded defaults.

By default a simulated night end to end (:mod:`ssassoc.worker.night`): local
broker, ephemeris store from a synthetic population, simulated Rubin-like
visits published as events, the worker, a summary and plots.

``--single-detector``: only the association, on one built-in synthetic
detector field, printed as a table with completeness/purity against the truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.sample_data import synthetic_field


def register(subparsers: Any) -> None:
    from ssassoc.worker.night import NightConfig

    defaults = NightConfig()
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated night end to end (or --single-detector: one association table)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--single-detector", action="store_true", help="only associate one synthetic detector")
    parser.add_argument(
        "--out", type=Path, default=defaults.out_dir, help=f"output folder (default {defaults.out_dir})"
    )
    parser.add_argument("--objects", type=int, default=None,
                        help=f"orbits in the synthetic catalogue (night: {defaults.n_objects}); "
                             "with --single-detector: predicted objects (20)")  # fmt: skip
    parser.add_argument("--fields", type=int, default=defaults.n_fields, help="fields, each visited twice")
    parser.add_argument("--detectors", default="all", help="'all' (189), 'raft' (the central 9) or ids: 93,94")
    parser.add_argument("--field-sources", type=int, default=defaults.n_field_sources,
                        help="unrelated sources per detector")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds to wait for the worker")
    parser.add_argument("--sources", type=int, default=500, help="--single-detector: sources on the detector")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--matching", choices=("optimal", "greedy"), default="optimal",
                        help="--single-detector: matching strategy")  # fmt: skip
    parser.add_argument("--max-dist-arcsec", type=float, default=1.0, help="--single-detector: match radius")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.single_detector:
        return run_demo(args)
    from ssassoc.worker.night import CENTRAL_RAFT, NightConfig, run_night

    if args.detectors == "all":
        detectors: tuple[int, ...] = tuple(range(189))
    elif args.detectors == "raft":
        detectors = CENTRAL_RAFT
    else:
        try:
            detectors = tuple(int(d) for d in args.detectors.split(","))
        except ValueError:
            print(f"ssassoc demo: --detectors must be all, raft or comma-separated ids, got {args.detectors!r}")
            return 2
        if not all(0 <= d < 189 for d in detectors):
            print("ssassoc demo: detector ids run from 0 to 188")
            return 2
    config = NightConfig(
        out_dir=args.out,
        n_objects=args.objects if args.objects is not None else NightConfig().n_objects,
        n_fields=args.fields,
        detectors=detectors,
        n_field_sources=args.field_sources,
        seed=args.seed,
        timeout_s=args.timeout,
    )
    if config.n_objects <= 0 or config.n_fields <= 0 or config.n_field_sources < 0:
        print("ssassoc demo: --objects and --fields must be positive, --field-sources >= 0")
        return 2
    run_night(config)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    n_objects = 20 if args.objects is None else args.objects
    if args.sources < 0 or n_objects < 0:
        print("ssassoc demo: --sources and --objects must be >= 0")
        return 2
    field = synthetic_field(n_sources=args.sources, n_objects=n_objects, seed=args.seed)
    config = SsSingleFrameAssociationConfig(matching=args.matching, maxDistArcSeconds=args.max_dist_arcsec)
    task = SsSingleFrameAssociationTask(config=config)
    result = task.run(field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects)

    table = result.associatedSsSources
    shown = table[
        "diaSourceId", "ssObjectId", "designation", "ephRa", "ephDec", "ephOffset",
        "ephOffsetAlongTrack", "ephOffsetCrossTrack", "ephRate", "topoRange", "phaseAngle", "ephVmag",
    ]  # fmt: skip
    for name in shown.colnames:
        if shown[name].dtype.kind == "f":
            shown[name].format = ".6f" if name in ("ephRa", "ephDec") else ".3f"
    exposure = field.exposure
    print(
        f"Synthetic detector: visit {exposure.visit} detector {exposure.detector}, "
        f'{exposure.width}x{exposure.height} px at {exposure.pixel_scale_arcsec:.2f}"/px, '
        f"centre {exposure.centre_deg[0]:.4f} {exposure.centre_deg[1]:+.4f} deg, MJD(TAI) {exposure.midpointMjdTai}"
    )
    print(f"{len(field.sources)} sources, {len(field.objects)} predicted objects ({args.matching} matching)\n")
    print("ssSource records (first columns of 40):")
    shown.pprint(max_lines=-1, max_width=-1)

    truth = field.truth
    matched = dict(zip(table["ssObjectId"].tolist(), table["diaSourceId"].tolist(), strict=True))
    detectable = truth[truth["diaSourceId"] >= 0]
    correct = sum(matched.get(o) == s for o, s in zip(detectable["ssObjectId"], detectable["diaSourceId"], strict=True))
    completeness = correct / max(len(detectable), 1)
    purity = correct / max(len(matched), 1)
    print(
        f"\n{len(matched)} associations; {len(detectable)} objects were truly detected; "
        f"completeness {completeness:.1%}, purity {purity:.1%}"
    )
    metadata = {
        key.split(".", 1)[1]: value
        for key, value in task.getFullMetadata().to_dict().items()
        if key.startswith("ssSingleFrameAssociation.") and ("Duration" in key or key.split(".")[-1].startswith("n"))
    }
    print("task metadata:", json.dumps({k: _round(v) for k, v in metadata.items()}))
    return 0


def _round(value: Any) -> Any:
    return float(np.round(value, 6)) if isinstance(value, float) else value
