"""MPC designations and Rubin's ``ssObjectId``.

Rubin defines ``ssObjectId`` as the bytes of the MPC *packed* designation (7 or
8 Latin-1 characters) read as one big-endian unsigned integer:
``K15MK4Q`` -> 21164728253101137. This module converts packed designations to
ids and back, and unpacked designations (``2015 MK204``, ``(12345)``,
``C/1995 O1``, ``1P``, ``2040 P-L``) to packed ones, following the MPC's
packing rules (https://minorplanetcenter.net/iau/info/PackedDes.html).
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DesignationError",
    "packed_to_ss_object_id",
    "packed_to_unpacked",
    "ss_object_id_to_packed",
    "ss_object_ids_from_packed",
    "unpacked_to_packed",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {c: i for i, c in enumerate(_B62)}
_CENTURY = {"I": 18, "J": 19, "K": 20, "L": 21}
_CENTURY_LETTER = {v: k for k, v in _CENTURY.items()}
_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"  # I is not used
_SURVEYS = {"P-L": "PLS", "T-1": "T1S", "T-2": "T2S", "T-3": "T3S"}
_SURVEYS_PACKED = {v: k for k, v in _SURVEYS.items()}
_MAX_ID = 2**64


class DesignationError(ValueError):
    """A designation or id that cannot be packed, unpacked or converted."""


# -- ssObjectId ------------------------------------------------------------------
def packed_to_ss_object_id(packed: str) -> int:
    """Rubin ``ssObjectId`` of a packed designation: its Latin-1 bytes as a big-endian int.

    Raises DesignationError for strings shorter than 7 or longer than 8
    characters and for characters outside Latin-1.
    """
    if not isinstance(packed, str):
        raise DesignationError(f"packed designation must be a str, got {type(packed).__name__}")
    if not 7 <= len(packed) <= 8:
        raise DesignationError(f"packed designation {packed!r} has {len(packed)} characters; 7 or 8 are required")
    try:
        raw = packed.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise DesignationError(f"packed designation {packed!r} is not Latin-1") from exc
    return int.from_bytes(raw, "big")


def ss_object_id_to_packed(ss_object_id: int) -> str:
    """Inverse of :func:`packed_to_ss_object_id`."""
    value = int(ss_object_id)
    if not 0 <= value < _MAX_ID:
        raise DesignationError(f"ssObjectId {ss_object_id} is outside [0, 2**64)")
    raw = value.to_bytes(8, "big").lstrip(b"\x00")
    if not 7 <= len(raw) <= 8:
        raise DesignationError(f"ssObjectId {ss_object_id} does not hold a 7-8 character designation")
    return raw.decode("latin-1")


def ss_object_ids_from_packed(packed: list[str] | NDArray[np.str_]) -> NDArray[np.uint64]:
    """Vectorised :func:`packed_to_ss_object_id` (uint64: ids above 2**63 exist for 8 bytes)."""
    return np.fromiter((packed_to_ss_object_id(str(p)) for p in packed), dtype=np.uint64, count=len(packed))


# -- numbers ---------------------------------------------------------------------
def _pack_number(number: int) -> str:
    if number < 1:
        raise DesignationError(f"minor planet number {number} must be positive")
    if number < 100_000:
        return f"{number:05d}"
    if number < 620_000:
        high, low = divmod(number, 10_000)
        return _B62[high] + f"{low:04d}"
    rest = number - 620_000
    if rest >= 62**4:
        raise DesignationError(f"minor planet number {number} is beyond the packed range")
    digits = ""
    for _ in range(4):
        rest, d = divmod(rest, 62)
        digits = _B62[d] + digits
    return "~" + digits


def _unpack_number(packed: str) -> int:
    if packed.startswith("~"):
        value = 0
        for c in packed[1:]:
            value = value * 62 + _B62_VALUE[c]
        return value + 620_000
    return _B62_VALUE[packed[0]] * 10_000 + int(packed[1:])


# -- unpacked -> packed ----------------------------------------------------------
_RE_NUMBER = re.compile(r"^\(?(\d+)\)?$")
_RE_PROVISIONAL = re.compile(r"^(\d{4}) ([A-HJ-Y])([A-HJ-Z])(\d*)$")
_RE_SURVEY = re.compile(r"^(\d{4}) (P-L|T-[123])$")
_RE_COMET_NUMBERED = re.compile(r"^(\d{1,4})([PDI])(?:/.*)?$")
_RE_COMET_ASTEROIDAL = re.compile(r"^([PCDXAI])/(\d{4} [A-HJ-Y][A-HJ-Z]\d*)$")
_RE_COMET_PROVISIONAL = re.compile(r"^([PCDXAI])/(\d{4}) ([A-HJ-Y])(\d+)(?:-([A-Z]))?(?: .*)?$")


def _pack_year(year: int) -> str:
    century, yy = divmod(year, 100)
    if century not in _CENTURY_LETTER:
        raise DesignationError(f"year {year} is outside the packable range 1800-2199")
    return f"{_CENTURY_LETTER[century]}{yy:02d}"


def _pack_cycle(cycle: int) -> str:
    if cycle > 619:
        raise DesignationError(f"cycle count {cycle} needs the extended packed format, not supported")
    tens, units = divmod(cycle, 10)
    return _B62[tens] + str(units)


def unpacked_to_packed(designation: str) -> str:
    """Pack an MPC designation: ``(1)`` -> ``00001``, ``2015 MQ204`` -> ``K15MK4Q``.

    Supports numbered minor planets, provisional designations, survey
    designations (``2040 P-L``), numbered comets (``1P``) and provisional
    comets (``C/1995 O1`` -> ``CJ95O010``, fragments ``-B``).
    """
    text = " ".join(str(designation).split())
    if m := _RE_NUMBER.match(text):
        return _pack_number(int(m.group(1)))
    if m := _RE_PROVISIONAL.match(text):
        year, half, second, cycle = m.groups()
        return f"{_pack_year(int(year))}{half}{_pack_cycle(int(cycle or 0))}{second}"
    if m := _RE_SURVEY.match(text):
        return f"{_SURVEYS[m.group(2)]}{m.group(1)}"
    if m := _RE_COMET_NUMBERED.match(text):
        return f"{int(m.group(1)):04d}{m.group(2)}"
    if m := _RE_COMET_ASTEROIDAL.match(text):  # e.g. P/2019 LD2, a comet found as an asteroid
        return m.group(1) + unpacked_to_packed(m.group(2))
    if m := _RE_COMET_PROVISIONAL.match(text):
        kind, year, half, number, fragment = m.groups()
        if int(number) > 619:
            raise DesignationError(f"comet order number {number} is beyond the packed range")
        order = _pack_cycle(int(number))
        return f"{kind}{_pack_year(int(year))}{half}{order}{(fragment or '0').lower()}"
    raise DesignationError(f"cannot pack designation {designation!r}: not a form the MPC defines")


def packed_to_unpacked(packed: str) -> str:
    """Unpack an MPC packed designation (inverse of :func:`unpacked_to_packed`).

    Numbered minor planets unpack to the bare number (``00001`` -> ``1``).
    """
    p = str(packed).strip()
    try:
        if len(p) == 5 and p[-1] in "PDI" and p[:4].isdigit():
            return f"{int(p[:4])}{p[-1]}"
        if len(p) == 5:
            return str(_unpack_number(p))
        if len(p) == 7 and p[:3] in _SURVEYS_PACKED:
            return f"{p[3:]} {_SURVEYS_PACKED[p[:3]]}"
        if len(p) == 7 and p[0] in _CENTURY:
            year = _CENTURY[p[0]] * 100 + int(p[1:3])
            cycle = _B62_VALUE[p[4]] * 10 + int(p[5])
            return f"{year} {p[3]}{p[6]}{cycle if cycle else ''}"
        if len(p) == 8 and p[0] in "PCDXAI" and p[1] in _CENTURY:
            year = _CENTURY[p[1]] * 100 + int(p[2:4])
            if p[7].isupper():  # asteroid-style comet designation
                return f"{p[0]}/{packed_to_unpacked(p[1:])}"
            number = _B62_VALUE[p[5]] * 10 + int(p[6])
            fragment = "" if p[7] == "0" else f"-{p[7].upper()}"
            return f"{p[0]}/{year} {p[4]}{number}{fragment}"
    except (KeyError, ValueError) as exc:
        raise DesignationError(f"cannot unpack {packed!r}: malformed packed designation") from exc
    raise DesignationError(f"cannot unpack {packed!r}: not a packed MPC designation")
