"""The worker with the real ephemeris store (``ssassoc.core.ephemeris.store``), end to end.

A small store is built with the store's two-body test sampler (fast, exact) from
orbits placed around one field; detector events are pointed at objects of that
store and carry detections at the store's own predicted positions, plus field
sources. An event outside the store's time span is dead-lettered.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from integration_helpers import make_topics, produce, read_topic, ss_pairs

from ssassoc.core import Exposure
from ssassoc.core.ephemeris.build import BuildParameters, build_store, two_body_sampler
from ssassoc.core.ephemeris.observatory import observer_states
from ssassoc.core.ephemeris.orbits import OrbitTable
from ssassoc.core.ephemeris.store import EphemerisStore
from ssassoc.core.sample_data import make_tan_wcs
from ssassoc.worker import wire
from ssassoc.worker.events import make_visit_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START, END = 60800.75, 60801.75
GM_SUN = 0.01720209895**2  # AU^3/day^2


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(4)
    n = 300
    obs, _ = observer_states("X05", np.array([START + 0.5]))
    ra = np.radians(150.0 + rng.normal(0, 0.05, n))
    dec = np.radians(10.0 + rng.normal(0, 0.05, n))
    direction = np.stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), -1)
    pos = obs[0] + direction * rng.uniform(1.2, 3.0, (n, 1))
    r = np.linalg.norm(pos, axis=1, keepdims=True)
    tangent = np.cross(pos, [0.0, 0.0, 1.0])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    vel = tangent * np.sqrt(GM_SUN / r)
    orbits = OrbitTable.from_states([f"T{i:07d}" for i in range(n)], START + 0.5, pos, vel,
                                    h_mag=rng.uniform(12, 20, n), g_slope=np.full(n, 0.15))
    out = tmp_path_factory.mktemp("store") / "store"
    build_store(orbits, "X05", START, END, out, sampler=two_body_sampler("X05"),
                parameters=BuildParameters(chunk_objects=1000))
    return out


def _events(store_dir: Path, n_events: int) -> tuple[list[tuple[bytes, bytes]], set[tuple[int, int]]]:
    store = EphemerisStore.open(store_dir)
    rng = np.random.default_rng(9)
    messages: list[tuple[bytes, bytes]] = []
    truth: set[tuple[int, int]] = set()
    for k in range(n_events):
        t = START + 0.2 + 0.15 * k
        around = store.query(t, 150.0, 10.0, 3.0)
        centre = around.iloc[k * 7 % len(around)]
        wcs = make_tan_wcs(float(centre["ephRa"]), float(centre["ephDec"]), 4072, 4000, 0.2)
        exposure = Exposure(wcs=wcs, width=4072, height=4000, midpointMjdTai=t, observatory="X05",
                            visit=5000 + k, detector=k)
        objects = store.query_exposure(exposure)
        x, y = exposure.sky_to_pixel(objects["ephRa"].to_numpy(), objects["ephDec"].to_numpy())
        on = (x > 5) & (x < 4066) & (y > 5) & (y < 3994)
        det_ra = objects["ephRa"].to_numpy()[on] + rng.normal(0, 0.03 / 3600, on.sum())
        det_dec = objects["ephDec"].to_numpy()[on] + rng.normal(0, 0.03 / 3600, on.sum())
        f_ra, f_dec = exposure.pixel_to_sky_deg(rng.uniform(0, 4071, 300), rng.uniform(0, 3999, 300))
        ids = np.arange(len(det_ra) + 300, dtype=np.int64) + 10**9 * (k + 1)
        sources = {"diaSourceId": ids, "ra": np.concatenate((det_ra, f_ra)),
                   "dec": np.concatenate((det_dec, f_dec))}
        truth |= set(zip(objects["ssObjectId"].to_numpy()[on].tolist(), ids[: on.sum()].tolist(),
                         strict=True))
        record = make_visit_event(visit=5000 + k, detector=k, band="r", midpoint_mjd_tai=t,
                                  exposure_time_s=30.0, wcs=wcs, width=4072, height=4000,
                                  sources=sources)
        messages.append((f"{5000 + k}:{k}".encode(), wire.encode("visitEvent", record)))
    return messages, truth


def test_worker_with_the_real_store(broker, store_dir: Path, start_worker) -> None:
    messages, truth = _events(store_dir, 5)
    assert len(truth) >= 5, "the fixture must put objects on the detectors"
    late = make_visit_event(visit=9, detector=9, band="r", midpoint_mjd_tai=END + 3.0,
                            exposure_time_s=30.0, wcs=make_tan_wcs(150.0, 10.0, 4072, 4000, 0.2),
                            width=4072, height=4000,
                            sources={"diaSourceId": np.arange(3), "ra": np.full(3, 150.0),
                                     "dec": np.full(3, 10.0) + np.arange(3) * 1e-3})
    messages.insert(2, (b"late", wire.encode("visitEvent", late)))
    topics = make_topics(broker.bootstrap, partitions=1)
    produce(broker.bootstrap, topics.input, messages)
    worker = start_worker(topics, "--ephemeris-store", str(store_dir))  # overrides the CSV table
    pairs = ss_pairs(read_topic(broker.bootstrap, topics.output, min_count=len(truth), timeout_s=60))
    assert set(pairs) == truth and len(pairs) == len(truth)
    letters = read_topic(broker.bootstrap, topics.dead_letter, min_count=1, timeout_s=30)
    assert [wire.decode("deadLetter", r.value)[1]["errorClass"] for r in letters] == [
        "outside_ephemeris_coverage"]
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
