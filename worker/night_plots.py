"""Pictures of a simulated night (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["write_plots"]


def write_plots(
    out: Path,
    sources: pd.DataFrame,
    truth: pd.DataFrame,
    outputs: pd.DataFrame,
    unassociated: pd.DataFrame,
    log_events: list[dict[str, Any]],
    end_to_end_ms: np.ndarray,
) -> list[str]:
    """Three figures: one detector's sky, the offset distribution, the per-event time. Returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    assoc = outputs.merge(sources, on="diaSourceId", how="left") if len(outputs) else pd.DataFrame()

    # 1. The detector with the most associations: its detections, predictions, matches.
    fig, ax = plt.subplots(figsize=(8, 8))
    if len(assoc):
        # The detector with the most predicted objects, associated or not.
        predicted = pd.concat([assoc[["visit", "detector"]], unassociated[["visit", "detector"]]])
        per_detector = predicted.groupby(["visit", "detector"]).size()
        visit, detector = (int(v) for v in per_detector.index[int(np.argmax(per_detector.to_numpy()))])
        field = sources[(sources["visit"] == visit) & (sources["detector"] == detector)]
        here = assoc[(assoc["visit"] == visit) & (assoc["detector"] == detector)]
        missed = truth[(truth["visit"] == visit) & (truth["detector"] == detector) & ~truth["detected"]]
        lonely = unassociated[(unassociated["visit"] == visit) & (unassociated["detector"] == detector)]
        ax.scatter(field["ra"], field["dec"], s=4, c="0.7", label=f"detections ({len(field)})")
        ax.scatter(here["ephRa"], here["ephDec"], s=80, facecolors="none", edgecolors="tab:blue",
                   label=f"predicted, associated ({len(here)})")  # fmt: skip
        ax.scatter(here["ra"], here["dec"], s=10, c="tab:red", label="associated detection")
        ax.scatter(lonely["ephRa"], lonely["ephDec"], s=80, marker="s", facecolors="none", edgecolors="tab:orange",
                   label=f"predicted, not associated ({len(lonely)})")  # fmt: skip
        ax.set_title(f"visit {visit} detector {detector}: {len(here)} associations, "
                     f"{len(missed)} objects on chip but too faint to detect")  # fmt: skip
        ax.invert_xaxis()
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    ax.legend(loc="upper right")
    paths.append(_save(fig, out / "detector_sky.png"))

    # 2. Observed minus predicted, along and across the direction of motion.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    if len(outputs):
        along = outputs["ephOffsetAlongTrack"].astype(float)
        cross = outputs["ephOffsetCrossTrack"].astype(float)
        axes[0].scatter(along, cross, s=3, alpha=0.5)
        axes[0].set_xlim(-1, 1)
        axes[0].set_ylim(-1, 1)
        axes[0].set_aspect("equal")
        bins = np.linspace(-1, 1, 81)
        axes[1].hist(along.dropna(), bins=bins, histtype="step", label="along track")
        axes[1].hist(cross.dropna(), bins=bins, histtype="step", label="cross track")
        axes[1].legend()
    axes[0].set_xlabel("along-track offset (arcsec)")
    axes[0].set_ylabel("cross-track offset (arcsec)")
    axes[1].set_xlabel("offset (arcsec)")
    axes[1].set_ylabel("associations")
    fig.suptitle(f"{len(outputs)} associations: observed minus predicted position")
    paths.append(_save(fig, out / "offsets.png"))

    # 3. Latency: per event inside the worker, and visit event produced -> ssSource produced.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    total = np.array([e["totalMs"] for e in log_events if "totalMs" in e], dtype=float)
    for ax, values, label in (
        (axes[0], total, "worker time per event, decode to produce (ms)"),
        (axes[1], np.asarray(end_to_end_ms, dtype=float), "visit event produced -> ssSource produced (ms)"),
    ):
        if len(values):
            low, high = max(values.min(), 0.05), values.max() * 1.01 + 0.1
            ax.hist(values, bins=list(np.geomspace(low, high, 60)))
            ax.set_xscale("log")
            for q, style in ((50, "--"), (99, ":")):
                value = np.percentile(values, q)
                ax.axvline(value, color="k", ls=style, label=f"p{q} {value:.1f} ms")
            ax.legend()
        ax.set_xlabel(label)
    axes[0].set_ylabel(f"events ({len(total)})")
    axes[1].set_ylabel(f"ssSources ({len(end_to_end_ms)})")
    paths.append(_save(fig, out / "latency.png"))
    return paths


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)
