"""`ssassoc ephem ...` end to end on a tiny store: population -> build -> info -> query."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ssassoc.worker.cli import main
from ssassoc.worker.commands.ephem import parse_time_mjd_tai


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cli")
    orbits = d / "MPCORB.DAT"
    assert main(["ephem", "population", "--n", "40", "--out", str(orbits), "--format", "mpcorb", "--seed", "2"]) == 0
    store = d / "store"
    rc = main([
        "ephem", "build", "--orbits", str(orbits), "--observatory", "X05",
        "--start", "60800.5", "--end", "2025-05-06T12:00:00", "--out", str(store), "--workers", "1",
    ])  # fmt: skip
    assert rc == 0
    return orbits, store


def test_build_and_info(tiny: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    orbits, store = tiny
    assert main(["ephem", "info", str(store), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "observatory    X05" in out and "checksums      OK" in out and "40 (" in out
    assert "sampler        nbody" in out
    assert main(["ephem", "info", str(store), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["orbits"]["path"] == str(orbits.absolute())
    assert manifest["fit"]["worst_error_mas"] < 5.0
    assert manifest["end_mjd_tai"] == pytest.approx(parse_time_mjd_tai("2025-05-06T12:00:00"))


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_query_formats(tiny: tuple[Path, Path], fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, store = tiny
    assert main(["ephem", "query", str(store), "--time", "60801.0", "--ra", "0", "--dec", "0",
                 "--radius", "180", "--format", fmt]) == 0  # fmt: skip
    out = capsys.readouterr().out
    if fmt == "csv":
        from io import StringIO

        df = pd.read_csv(StringIO(out))
        assert len(df) == 40 and list(df.columns)[:3] == ["ssObjectId", "designation", "ephRa"]
    elif fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 40 and {"ephRa", "topo_vz", "ephUncertainty"} <= set(rows[0])
    else:
        assert "40 object(s) within 180.0 deg" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "{store}", "--time", "60900", "--ra", "0", "--dec", "0", "--radius", "1"], "outside the store"),
        (["query", "{store}", "--time", "noon", "--ra", "0", "--dec", "0", "--radius", "1"], "ISO-8601"),
        (["query", "{store}", "--time", "60801", "--ra", "0", "--dec", "95", "--radius", "1"], "--dec"),
        (["query", "{nowhere}", "--time", "60801", "--ra", "0", "--dec", "0", "--radius", "1"], "does not exist"),
        (["info", "{orbits}"], "not a directory"),
        (["build", "--orbits", "{nowhere}", "--observatory", "X05", "--start", "60800", "--end", "60801",
          "--out", "{nowhere}"], "does not exist"),
        (["build", "--orbits", "{orbits}", "--observatory", "QQQ", "--start", "60800", "--end", "60801",
          "--out", "{nowhere}"], "unknown MPC observatory"),
        (["build", "--orbits", "{orbits}", "--observatory", "X05", "--start", "60801", "--end", "60800",
          "--out", "{nowhere}"], "must be after"),
        (["build", "--orbits", "{orbits}", "--observatory", "X05", "--start", "60800", "--end", "60801",
          "--out", "{store}"], "already exists"),
        (["population", "--n", "0", "--out", "{nowhere}"], "--n"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(
    tiny: tuple[Path, Path], tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orbits, store = tiny
    subst = {"store": str(store), "orbits": str(orbits), "nowhere": str(tmp_path / "nowhere")}
    assert main(["ephem", *[a.format(**subst) for a in argv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("ssassoc ephem ") and message in err[-1]


def test_corrupt_store_exit_2(tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    _, store = tiny
    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    (bad / "manifest.json").write_text("{not json")
    assert main(["ephem", "info", str(bad)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_time_parsing() -> None:
    assert parse_time_mjd_tai("60800.5") == 60800.5
    # 2025 has TAI - UTC = 37 s
    assert parse_time_mjd_tai("2025-05-05T12:00:00Z") == pytest.approx(60800.5 + 37 / 86400, abs=1e-9)
    assert parse_time_mjd_tai("2025-05-05") == pytest.approx(60800.0 + 37 / 86400, abs=1e-9)


def test_build_progress_bar_and_log_events(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from ssassoc.worker.commands.ephem import BuildProgress

    stream = io.StringIO()
    progress = BuildProgress(bar=True, stream=stream)
    for done in (0, 50, 100):
        progress("objects", done, 100)
    text = stream.getvalue()
    assert "100/100" in text and text.endswith("\n") and "#" * 30 in text
    logged = capsys.readouterr().out
    assert logged.count("ephem.build.progress") == 2  # stage start and end; 50 % is throttled
    assert "objects_per_s" in logged
