"""Schemas: versions, sample data, and field-for-field compatibility with lsst.v11_1.ssSource."""

from __future__ import annotations

import json
from importlib import resources

import fastavro
import pytest

from ssassoc.schemas import (
    RECORDS,
    SchemaVersion,
    latest_version,
    load_sample_data,
    load_schema,
    load_schema_json,
    versions,
)
from ssassoc.worker import wire
from ssassoc.worker.events import source_dtypes

ALL = [(v, r) for v in versions() for r in RECORDS]


def _rubin_sssource() -> dict:
    path = resources.files("lsst.alert.packet") / "schema/11/1/lsst.v11_1.ssSource.avsc"
    return json.loads(path.read_text())


def test_latest_is_a_shipped_version() -> None:
    assert latest_version() in versions()
    assert versions()[0] == SchemaVersion(1, 0)


@pytest.mark.parametrize(("version", "record"), ALL, ids=[f"{v}-{r}" for v, r in ALL])
def test_every_version_round_trips_its_sample_data(version: SchemaVersion, record: str) -> None:
    samples = load_sample_data(record, version)
    assert samples, f"{version} {record} has no sample data"
    for sample in samples:
        framed = wire.encode(record, sample, version)
        assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == version.schema_id
        decoded_version, decoded = wire.decode(record, framed)
        assert decoded_version == version
        assert decoded == sample


@pytest.mark.parametrize(("version", "record"), ALL, ids=[f"{v}-{r}" for v, r in ALL])
def test_namespace_carries_the_version(version: SchemaVersion, record: str) -> None:
    schema = load_schema_json(record, version)
    assert schema["namespace"] == f"ssassoc.v{version.major}_{version.minor}"
    assert schema["name"] == record


def test_schema_ids_are_unique_and_derived_from_the_version() -> None:
    ids = [v.schema_id for v in versions()]
    assert len(set(ids)) == len(ids)
    assert SchemaVersion(1, 0).schema_id == 100
    assert SchemaVersion.from_schema_id(1203) == SchemaVersion(12, 3)


@pytest.mark.parametrize("version", versions(), ids=str)
def test_sssource_is_field_for_field_rubin_v11_1(version: SchemaVersion) -> None:
    ours = load_schema_json("ssSource", version)["fields"]
    rubin = _rubin_sssource()["fields"]
    assert [f["name"] for f in ours] == [f["name"] for f in rubin]
    for mine, theirs in zip(ours, rubin, strict=True):
        assert mine["type"] == theirs["type"], mine["name"]
        assert ("default" in mine) == ("default" in theirs), mine["name"]
        assert mine.get("default") == theirs.get("default"), mine["name"]


@pytest.mark.parametrize("version", versions(), ids=str)
def test_rubin_readers_read_our_sssource_bytes(version: SchemaVersion) -> None:
    """Schema resolution: a consumer holding Rubin's schema reads our records unchanged."""
    rubin = fastavro.parse_schema(_rubin_sssource())
    import io

    for sample in load_sample_data("ssSource", version):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, load_schema("ssSource", version), sample)
        out.seek(0)
        assert fastavro.schemaless_reader(out, rubin, None) == sample


def test_source_columns_use_rubin_names_and_little_endian_dtypes() -> None:
    dtypes = source_dtypes()
    for name in ("diaSourceId", "ra", "dec", "raErr", "decErr", "psfFlux", "psfFluxErr", "extendedness"):
        assert name in dtypes
    assert dtypes["diaSourceId"].str == "<i8"
    assert dtypes["ra"].str == "<f8" and dtypes["dec"].str == "<f8"
    assert all(d.byteorder in ("<", "|", "=") and d.str.startswith("<") for d in dtypes.values())


def test_schemas_ship_as_package_data() -> None:
    root = resources.files("ssassoc.schemas")
    assert (root / "latest.txt").is_file()
    for version in versions():
        for record in RECORDS:
            assert (root / str(version.major) / str(version.minor)
                    / f"{version.namespace}.{record}.avsc").is_file()
