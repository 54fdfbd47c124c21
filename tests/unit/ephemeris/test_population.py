"""Synthetic population: class mix, element ranges, determinism, both file formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssassoc.core.ephemeris import population as P
from ssassoc.core.ephemeris.orbits import read_orbits


@pytest.fixture(scope="module")
def pop() -> P.KeplerianPopulation:
    return P.generate_population(50_000, seed=7)


def test_class_mix_and_ranges(pop: P.KeplerianPopulation) -> None:
    cls = pop.dyn_class
    for name, frac in P.CLASS_FRACTIONS.items():
        share = np.mean(cls == name)
        assert share == pytest.approx(frac / sum(P.CLASS_FRACTIONS.values()), abs=0.01)
    q = pop.a_au * (1 - pop.e)
    assert np.all(q[cls == "neo"] < 1.3)
    assert np.all(q[cls != "neo"] >= 1.3 - 1e-9)
    hun = cls == "hungaria"
    assert np.all((pop.a_au[hun] > 1.78) & (pop.a_au[hun] < 2.0) & (pop.inc_deg[hun] > 16))
    assert np.all(pop.a_au[cls == "tno"] > 30)
    assert np.all((pop.a_au[cls == "trojan"] > 4.9) & (pop.a_au[cls == "trojan"] < 5.5))
    assert np.all((pop.e >= 0) & (pop.e < 1)) and np.all((pop.inc_deg >= 0) & (pop.inc_deg <= 180))
    # More faint than bright objects (power-law H distribution).
    mb = pop.h_mag[cls == "main_belt"]
    assert np.mean(mb > 17) > np.mean(mb < 14)


def test_trojans_lead_and_trail_jupiter(pop: P.KeplerianPopulation) -> None:
    troj = pop.dyn_class == "trojan"
    lam = (pop.node_deg + pop.argperi_deg + pop.mean_anomaly_deg)[troj] % 360
    lam_j = P._jupiter_mean_longitude_deg(pop.epoch_mjd_tdb[troj])
    d = (lam - lam_j + 180) % 360 - 180
    assert np.mean(np.abs(np.abs(d) - 60) < 40) > 0.95


def test_seeded(pop: P.KeplerianPopulation) -> None:
    again = P.generate_population(50_000, seed=7)
    np.testing.assert_array_equal(again.a_au, pop.a_au)
    other = P.generate_population(50_000, seed=8)
    assert not np.array_equal(other.a_au, pop.a_au)


def test_epoch_spread() -> None:
    p = P.generate_population(1000, seed=1, epoch_mjd_tdb=60800.0, epoch_spread_days=365)
    assert p.epoch_mjd_tdb.min() >= 60800 - 365 and p.epoch_mjd_tdb.max() <= 60800
    assert np.all(p.epoch_mjd_tdb == np.floor(p.epoch_mjd_tdb)) and len(set(p.epoch_mjd_tdb)) > 300


def test_pack_numbers_known_answers() -> None:
    got = P.pack_numbers([1, 12345, 99999, 100000, 123456, 619999, 620000, 3140113])
    assert list(got) == ["00001", "12345", "99999", "A0000", "C3456", "z9999", "~0000", "~AZaz"]


@pytest.mark.parametrize("kind", ["mpcorb", "KEP", "COM", "KEP-ws"])
def test_written_files_read_back(tmp_path: Path, kind: str) -> None:
    p = P.generate_population(500, seed=3, epoch_spread_days=100)
    path = tmp_path / "orbits.txt"
    if kind == "mpcorb":
        P.write_mpcorb(p, path)
    else:
        P.write_openorb(p, path, fmt=kind[:3], sep=" " if kind.endswith("ws") else ",")
    tab = read_orbits(path)
    truth = p.to_orbit_table()
    assert list(tab.object_id) == list(truth.object_id)
    np.testing.assert_array_equal(tab.epoch_mjd_tdb, truth.epoch_mjd_tdb)
    # MPCORB keeps 5 decimals of the angles; the CSV writers keep 12 significant digits.
    tol = 2e-6 if kind == "mpcorb" else 1e-9
    rel = np.linalg.norm(tab.pos_au - truth.pos_au, axis=1) / np.linalg.norm(truth.pos_au, axis=1)
    assert rel.max() < tol
    np.testing.assert_allclose(tab.h_mag, truth.h_mag, atol=0.006)
