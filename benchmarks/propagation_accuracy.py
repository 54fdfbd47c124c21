"""Accuracy of the N-body ephemerides against JPL Horizons, per class and span.

Uses the reference data and comparison of tests/unit/ephemeris/test_accuracy_vs_horizons.py
(set A: Horizons state vectors -> Horizons observer tables 0.1-3.4 yr away; set B: SBDB
orbits at MJD 60200 -> the same tables 3-32 yr away). Prints p95 and max of the sky
separation (arcsec) per class and set, and the same for two-body (Kepler) propagation
as the baseline.

    .venv/bin/python benchmarks/propagation_accuracy.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEST = HERE.parent / "tests" / "unit" / "ephemeris" / "test_accuracy_vs_horizons.py"


def main() -> None:
    spec = importlib.util.spec_from_file_location("accuracy_test", TEST)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.horizons_residuals()
    print(f"{'set':3s} {'class':10s} {'objects':>7s} {'span yr':>12s} {'p95 arcsec':>11s} "
          f"{'max arcsec':>11s}")
    for (s, cls), sub in res.groupby(["set", "cls"]):
        sep = np.concatenate(sub["sep"].to_list())
        span = f"{sub['span_yr'].min():.1f}-{sub['span_yr'].max():.1f}"
        print(f"{s:3s} {cls:10s} {len(sub):7d} {span:>12s} {np.percentile(sep, 95):11.4f} "
              f"{sep.max():11.4f}")
    for label, sub in (("all <= 3.5 yr", res[res["span_yr"] <= 3.5]), ("all", res)):
        sep = np.concatenate(sub["sep"].to_list())
        print(f"{label:14s} n={sep.size:5d} p95={np.percentile(sep, 95):.4f} "
              f"max={sep.max():.4f} arcsec")
    worst = res.assign(mx=[s.max() for s in res["sep"]]).nlargest(3, "mx")
    print("worst objects:", ", ".join(f"{r.name} ({r.set}, {r.mx:.3f}\")"
                                      for r in worst.itertuples()))


if __name__ == "__main__":
    main()
