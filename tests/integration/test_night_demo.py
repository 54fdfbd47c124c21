"""The main job on embedded defaults, in a reduced size: a simulated night end to end."""

import json

import pytest

from ssassoc.worker.night import NightConfig, run_night

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_reduced_night_end_to_end(tmp_path):
    config = NightConfig(
        out_dir=tmp_path / "night", n_objects=60_000, n_fields=1, detectors=tuple(range(0, 189, 3)),
        n_field_sources=150, timeout_s=240, orbit_error_arcsec=0.1,
    )  # fmt: skip
    summary = run_night(config)
    assert summary["events"] == 2 * len(config.detectors)
    assert summary["worker_events_logged"] == summary["events"]
    assert summary["objects_detected_truth"] >= 5, "too few objects to judge; the simulation is too sparse"
    assert summary["completeness"] >= 0.95
    assert summary["purity"] >= 0.95
    assert summary["worker_exit_status"] == 0
    on_disk = json.loads((tmp_path / "night" / "summary.json").read_text())
    assert on_disk["associated"] == summary["associated"]
    for name in ("detector_sky.png", "offsets.png", "latency.png"):
        path = tmp_path / "night" / name
        assert path.stat().st_size > 10_000, name
