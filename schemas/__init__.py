"""Avro schemas of ssassoc's topics, versioned like Rubin's alert packets.

Layout: ``<major>/<minor>/ssassoc.v<major>_<minor>.<record>.avsc`` with
``sample_data/<record>.json`` (Avro JSON encoding) per version, and
``latest.txt`` naming the version producers write. The version is in the Avro
namespace; the Confluent schema id is ``major * 100 + minor`` (1.0 -> 100), so
a consumer can pick the schema of any version it ever produced without a
registry. Versions are never edited once released: add a new folder.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, NamedTuple

import fastavro
import fastavro.schema

__all__ = [
    "RECORDS",
    "SCHEMA_ROOT",
    "SchemaVersion",
    "latest_version",
    "load_sample_data",
    "load_schema",
    "load_schema_json",
    "versions",
]

SCHEMA_ROOT = Path(__file__).resolve().parent

RECORDS: tuple[str, ...] = ("visitEvent", "ssSource", "unassociatedSsObjects", "deadLetter")
"""Top-level records, one per topic role (input, output, unassociated objects, dead letters)."""


class SchemaVersion(NamedTuple):
    major: int
    minor: int

    @property
    def schema_id(self) -> int:
        """Confluent wire-format schema id: ``major * 100 + minor``."""
        return self.major * 100 + self.minor

    @property
    def namespace(self) -> str:
        return f"ssassoc.v{self.major}_{self.minor}"

    @property
    def directory(self) -> Path:
        return SCHEMA_ROOT / str(self.major) / str(self.minor)

    @classmethod
    def parse(cls, text: str) -> SchemaVersion:
        """``"1.0"`` -> ``SchemaVersion(1, 0)``."""
        major, _, minor = text.strip().partition(".")
        return cls(int(major), int(minor))

    @classmethod
    def from_schema_id(cls, schema_id: int) -> SchemaVersion:
        return cls(schema_id // 100, schema_id % 100)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@functools.cache
def versions() -> tuple[SchemaVersion, ...]:
    """Every version shipped, oldest first (each must keep decoding its sample data)."""
    found = [
        SchemaVersion(int(major.name), int(minor.name))
        for major in SCHEMA_ROOT.iterdir()
        if major.is_dir() and major.name.isdigit()
        for minor in major.iterdir()
        if minor.is_dir() and minor.name.isdigit()
    ]
    return tuple(sorted(found))


@functools.cache
def latest_version() -> SchemaVersion:
    """The version producers write, from ``latest.txt``."""
    return SchemaVersion.parse((SCHEMA_ROOT / "latest.txt").read_text())


def _schema_path(record: str, version: SchemaVersion) -> Path:
    return version.directory / f"{version.namespace}.{record}.avsc"


@functools.cache
def load_schema(record: str, version: SchemaVersion | None = None) -> Any:
    """The parsed (fastavro) schema of ``record`` at ``version`` (default: latest).

    Named types used by the record (``ssassoc.v1_0.fitsCard``...) are read from
    their own ``.avsc`` files in the same folder.
    """
    version = version or latest_version()
    path = _schema_path(record, version)
    if not path.is_file():
        raise KeyError(f"no schema for record {record!r} in version {version}")
    return fastavro.schema.load_schema(str(path), _write_hint=False)


@functools.cache
def load_schema_json(record: str, version: SchemaVersion | None = None) -> dict[str, Any]:
    """The record's own ``.avsc`` as JSON (named sub-types not expanded)."""
    version = version or latest_version()
    result: dict[str, Any] = json.loads(_schema_path(record, version).read_text())
    return result


def load_sample_data(record: str, version: SchemaVersion) -> list[dict[str, Any]]:
    """The sample records of ``record`` at ``version`` (Avro JSON encoding on disk)."""
    path = version.directory / "sample_data" / f"{record}.json"
    with path.open() as stream:
        return list(fastavro.json_reader(stream, load_schema(record, version)))
