"""``ssassoc demo``: the association on built-in sample data, printed as a table.

A detector-sized synthetic field (see :mod:`ssassoc.core.sample_data`):
predicted objects, their noisy detections (some missed) and unrelated sources.
Prints the ssSource rows, the task metadata, and completeness/purity against
the known truth.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from ssassoc.core import SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.sample_data import synthetic_field


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="associate a built-in synthetic detector field and print the result",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sources", type=int, default=500, help="sources on the detector (default 500)")
    parser.add_argument("--objects", type=int, default=20, help="predicted objects (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--matching", choices=("optimal", "greedy"), default="optimal")
    parser.add_argument("--max-dist-arcsec", type=float, default=1.0)
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if args.sources < 0 or args.objects < 0:
        print("ssassoc demo: --sources and --objects must be >= 0")
        return 2
    field = synthetic_field(n_sources=args.sources, n_objects=args.objects, seed=args.seed)
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
