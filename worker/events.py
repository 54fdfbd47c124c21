"""The visit event in memory: packed DiaSource columns <-> numpy, WCS <-> FITS cards.

Pure functions, shared by the worker (decode side) and by producers (the demo,
tests and benchmarks: encode side). Column dtypes come from the schema's
``ssassoc:dtype`` attributes, so the schema stays the single source of truth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS, Sip

from ssassoc.core import Exposure, ExposureError
from ssassoc.schemas import SchemaVersion, latest_version, load_schema_json

__all__ = [
    "SchemaInvalidError",
    "cards_to_header",
    "exposure_from_event",
    "make_visit_event",
    "pack_sources",
    "source_dtypes",
    "unpack_source_columns",
    "unpack_sources",
    "wcs_to_cards",
]


class SchemaInvalidError(ValueError):
    """A record that decodes but breaks the schema's documented contract (column lengths...)."""


def source_dtypes(version: SchemaVersion | None = None) -> dict[str, np.dtype[Any]]:
    """DiaSource column name -> little-endian numpy dtype, from the schema at ``version``."""
    return _source_dtypes(version or latest_version())


_DTYPE_CACHE: dict[SchemaVersion, dict[str, np.dtype[Any]]] = {}


def _source_dtypes(version: SchemaVersion) -> dict[str, np.dtype[Any]]:
    cached = _DTYPE_CACHE.get(version)
    if cached is None:
        schema = load_schema_json("diaSourceColumns", version)
        cached = {
            field["name"]: np.dtype(field["ssassoc:dtype"]) for field in schema["fields"] if "ssassoc:dtype" in field
        }
        _DTYPE_CACHE[version] = cached
    return cached


def pack_sources(columns: Mapping[str, Any] | pd.DataFrame, version: SchemaVersion | None = None) -> dict[str, Any]:
    """A ``diaSourceColumns`` record from arrays or a DataFrame; missing float columns -> NaN."""
    dtypes = source_dtypes(version)
    n_rows = len(np.asarray(columns["diaSourceId"]))
    record: dict[str, Any] = {"nRows": n_rows}
    for name, dtype in dtypes.items():
        if name in columns:
            values = np.ascontiguousarray(np.asarray(columns[name]), dtype=dtype)
        elif dtype.kind == "f":
            values = np.full(n_rows, np.nan, dtype=dtype)
        else:
            raise SchemaInvalidError(f"required source column {name!r} is missing")
        if values.shape != (n_rows,):
            raise SchemaInvalidError(f"column {name!r} has shape {values.shape}, expected ({n_rows},)")
        record[name] = values.tobytes()
    return record


def unpack_sources(record: Mapping[str, Any], version: SchemaVersion) -> pd.DataFrame:
    """A DataFrame of the sources (zero-copy views of the message bytes, read-only)."""
    return pd.DataFrame(unpack_source_columns(record, version), copy=False)


def unpack_source_columns(record: Mapping[str, Any], version: SchemaVersion) -> dict[str, np.ndarray[Any, Any]]:
    """The sources as column name -> numpy array (zero-copy views of the message bytes,
    read-only): what the worker hands the association, with no DataFrame per event."""
    n_rows = record.get("nRows")
    if not isinstance(n_rows, int) or n_rows < 0:
        raise SchemaInvalidError(f"nRows must be a non-negative int, got {n_rows!r}")
    data: dict[str, np.ndarray[Any, Any]] = {}
    for name, dtype in _source_dtypes(version).items():
        raw = record.get(name)
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise SchemaInvalidError(f"source column {name!r} is missing or not bytes")
        if len(raw) != n_rows * dtype.itemsize:
            raise SchemaInvalidError(
                f"source column {name!r} holds {len(raw)} bytes, expected {n_rows} x {dtype.itemsize} ({dtype.str})"
            )
        data[name] = np.frombuffer(raw, dtype=dtype)
    return data


# -- WCS as FITS cards -----------------------------------------------------------------

_SKIP = frozenset({"", "COMMENT", "HISTORY", "SIMPLE", "BITPIX", "EXTEND", "END"})


def wcs_to_cards(wcs: WCS | fits.Header) -> list[dict[str, Any]]:
    """FITS cards (keyword, typed value) of a celestial WCS, SIP terms included."""
    header = wcs if isinstance(wcs, fits.Header) else wcs.to_header(relax=True)
    cards: list[dict[str, Any]] = []
    for card in header.cards:
        keyword = card.keyword
        if keyword in _SKIP:
            continue
        value = card.value
        if isinstance(value, bool | np.bool_):
            value = bool(value)
        elif isinstance(value, int | np.integer):
            value = int(value)
        elif isinstance(value, float | np.floating):
            value = float(value)
        elif isinstance(value, fits.card.Undefined) or value is None:
            value = None
        else:
            value = str(value)
        cards.append({"keyword": keyword, "value": value})
    return cards


def cards_to_header(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """Cards -> ``{keyword: value}`` for :meth:`Exposure.from_fits_header` (last card wins)."""
    header: dict[str, Any] = {}
    for card in cards:
        header[card["keyword"]] = card["value"]
    return header


def make_visit_event(
    *,
    visit: int,
    detector: int,
    band: str,
    midpoint_mjd_tai: float,
    exposure_time_s: float,
    wcs: WCS | fits.Header,
    width: int,
    height: int,
    sources: Mapping[str, Any] | pd.DataFrame,
    observatory: str = "X05",
    version: SchemaVersion | None = None,
) -> dict[str, Any]:
    """A ``visitEvent`` record, ready for :func:`ssassoc.worker.wire.encode`."""
    if not math.isfinite(midpoint_mjd_tai):
        raise ValueError("midpoint_mjd_tai must be finite")
    return {
        "visit": int(visit),
        "detector": int(detector),
        "band": band,
        "midpointMjdTai": float(midpoint_mjd_tai),
        "exposureTime": float(exposure_time_s),
        "observatory": observatory,
        "width": int(width),
        "height": int(height),
        "wcs": wcs_to_cards(wcs),
        "diaSources": pack_sources(sources, version),
    }


# -- the exposure, fast ----------------------------------------------------------------

_LINEAR = re.compile(r"^(CTYPE|CRVAL|CRPIX|CDELT|CUNIT)[12]$|^(CD|PC)[12]_[12]$")
_SIP = re.compile(r"^(A|B|AP|BP)_(ORDER|\d+_\d+)$")
_INFORMATIONAL = frozenset(
    {
        "WCSAXES", "LONPOLE", "LATPOLE", "RADESYS", "EQUINOX", "MJDREF", "MJD-OBS", "MJD-MID",
        "MJD-BEG", "MJD-END", "DATE-OBS", "DATE-AVG", "DATEREF", "TIMESYS", "EXPTIME", "NAXIS",
        "NAXIS1", "NAXIS2", "OBSCODE", "VISIT", "DETECTOR", "WCSNAME", "DATE-BEG", "DATE-END",
    }
)  # fmt: skip


def _sip_matrix(header: Mapping[str, Any], prefix: str) -> np.ndarray[Any, Any] | None:
    order = header.get(f"{prefix}_ORDER")
    if order is None:
        return None
    order = int(order)
    matrix = np.zeros((order + 1, order + 1))
    for p in range(order + 1):
        for q in range(order + 1 - p):
            matrix[p, q] = float(header.get(f"{prefix}_{p}_{q}", 0.0))
    return matrix


def _fast_wcs(header: Mapping[str, Any]) -> WCS | None:
    """A TAN/TAN-SIP WCS built without FITS parsing (~50x faster); None if unsupported keys."""
    for keyword in header:
        if not (_LINEAR.match(keyword) or _SIP.match(keyword) or keyword in _INFORMATIONAL):
            return None  # e.g. PV terms, lookup tables: let astropy parse the header
    wcs = WCS(naxis=2)
    ctype = [str(header.get("CTYPE1", "")), str(header.get("CTYPE2", ""))]
    wcs.wcs.ctype = [c.replace("-SIP", "") for c in ctype]
    wcs.wcs.crval = [float(header.get("CRVAL1", 0.0)), float(header.get("CRVAL2", 0.0))]
    crpix = [float(header.get("CRPIX1", 0.0)), float(header.get("CRPIX2", 0.0))]
    wcs.wcs.crpix = crpix
    if any(k in header for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")):
        wcs.wcs.cd = [
            [float(header.get("CD1_1", 0.0)), float(header.get("CD1_2", 0.0))],
            [float(header.get("CD2_1", 0.0)), float(header.get("CD2_2", 0.0))],
        ]
    else:
        wcs.wcs.pc = [
            [float(header.get("PC1_1", 1.0)), float(header.get("PC1_2", 0.0))],
            [float(header.get("PC2_1", 0.0)), float(header.get("PC2_2", 1.0))],
        ]
        wcs.wcs.cdelt = [float(header.get("CDELT1", 1.0)), float(header.get("CDELT2", 1.0))]
    wcs.wcs.cunit = [str(header.get("CUNIT1", "deg")), str(header.get("CUNIT2", "deg"))]
    for key, attr in (("LONPOLE", "lonpole"), ("LATPOLE", "latpole")):
        if key in header:
            setattr(wcs.wcs, attr, float(header[key]))
    if "RADESYS" in header:
        wcs.wcs.radesys = str(header["RADESYS"])
    if "EQUINOX" in header:
        wcs.wcs.equinox = float(header["EQUINOX"])
    a, b = _sip_matrix(header, "A"), _sip_matrix(header, "B")
    if (a is None) != (b is None):
        raise ExposureError("SIP distortion needs both A_ORDER and B_ORDER")
    if a is not None and b is not None:
        if not all(c.endswith("-SIP") for c in ctype):
            raise ExposureError("SIP coefficients given but CTYPE does not end in -SIP")
        wcs.sip = Sip(a, b, _sip_matrix(header, "AP"), _sip_matrix(header, "BP"), crpix)
    wcs.wcs.set()
    return wcs


def exposure_from_event(event: Mapping[str, Any]) -> Exposure:
    """The :class:`Exposure` of a decoded visit event; bad WCS -> :class:`ExposureError`."""
    header = cards_to_header(event["wcs"])
    try:
        wcs = _fast_wcs(header)
    except ExposureError:
        raise
    except Exception as exc:  # wcslib's own errors (bad CTYPE, singular matrix...)
        raise ExposureError(f"invalid WCS: {exc}") from exc
    if wcs is None:
        return Exposure.from_fits_header(
            header, width=event["width"], height=event["height"],
            midpointMjdTai=event["midpointMjdTai"], observatory=event["observatory"],
            visit=event["visit"], detector=event["detector"],
        )  # fmt: skip
    return Exposure(
        wcs=wcs, width=event["width"], height=event["height"],
        midpointMjdTai=event["midpointMjdTai"], observatory=event["observatory"],
        visit=event["visit"], detector=event["detector"],
        exposureTimeSeconds=float(event.get("exposureTime", math.nan)),
    )  # fmt: skip
