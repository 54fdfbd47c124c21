"""Column contracts: the predicted-object table in, the ssSource table out.

The ssSource columns follow Rubin's SDM ``SSSource`` / alert packet
``lsst.v11_1.ssSource``: same names, same order. ``AVRO_TYPE`` gives the type
each column has in that Avro record ("double", "float", "long", "int",
"string"), nullable unless listed in :data:`SSSOURCE_REQUIRED`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "SOURCE_REQUIRED",
    "SSSOURCE_COLUMNS",
    "SSSOURCE_REQUIRED",
    "SS_OBJECT_OPTIONAL",
    "SS_OBJECT_REQUIRED",
    "ColumnSpec",
]


class ColumnSpec(NamedTuple):
    name: str
    unit: str | None
    avro_type: str
    description: str


SOURCE_REQUIRED: tuple[str, ...] = ("diaSourceId", "ra", "dec")
"""Required columns of the DiaSource table (ids int64, coordinates in degrees)."""

SS_OBJECT_REQUIRED: tuple[str, ...] = (
    "ssObjectId", "designation", "ephRa", "ephDec", "ephRateRa", "ephRateDec",
    "helio_x", "helio_y", "helio_z", "topo_x", "topo_y", "topo_z",
    "helio_vx", "helio_vy", "helio_vz", "topo_vx", "topo_vy", "topo_vz", "ephVmag",
)  # fmt: skip
"""Required columns of the solarSystemObjectTable (deg, deg/day, AU, km/s, mag)."""

SS_OBJECT_OPTIONAL: tuple[str, ...] = ("ephUncertainty",)
"""Optional: 1-sigma predicted position error in arcsec."""

_D, _F, _L, _I, _S = "double", "float", "long", "int", "string"

SSSOURCE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("diaSourceId", None, _L, "Id of the associated DiaSource."),
    ColumnSpec("ssObjectId", None, _L, "Id of the Solar System object (packed designation bytes)."),
    ColumnSpec("designation", None, _S, "Unpacked primary provisional designation."),
    ColumnSpec("eclLambda", "deg", _D, "Ecliptic longitude of the observed position."),
    ColumnSpec("eclBeta", "deg", _D, "Ecliptic latitude of the observed position."),
    ColumnSpec("galLon", "deg", _D, "Galactic longitude of the observed position."),
    ColumnSpec("galLat", "deg", _D, "Galactic latitude of the observed position."),
    ColumnSpec("elongation", "deg", _F, "Solar elongation (angle Sun-observer-object)."),
    ColumnSpec("phaseAngle", "deg", _F, "Phase angle (angle Sun-object-observer)."),
    ColumnSpec("topoRange", "AU", _F, "Topocentric distance at light-emission time."),
    ColumnSpec("topoRangeRate", "km/s", _F, "Topocentric radial velocity, positive receding."),
    ColumnSpec("helioRange", "AU", _F, "Heliocentric distance at light-emission time."),
    ColumnSpec("helioRangeRate", "km/s", _F, "Heliocentric radial velocity, positive receding."),
    ColumnSpec("ephRa", "deg", _D, "Predicted ICRS right ascension."),
    ColumnSpec("ephDec", "deg", _D, "Predicted ICRS declination."),
    ColumnSpec("ephVmag", "mag", _F, "Predicted V magnitude (H, G phase function)."),
    ColumnSpec("ephRate", "deg/day", _F, "Total predicted on-sky rate."),
    ColumnSpec("ephRateRa", "deg/day", _F, "Predicted rate in RA, including cos(dec)."),
    ColumnSpec("ephRateDec", "deg/day", _F, "Predicted rate in Dec."),
    ColumnSpec("ephOffset", "arcsec", _F, "Observed minus predicted angular separation."),
    ColumnSpec("ephOffsetRa", "arcsec", _D, "Observed minus predicted in RA, including cos(dec)."),
    ColumnSpec("ephOffsetDec", "arcsec", _D, "Observed minus predicted in Dec."),
    ColumnSpec("ephOffsetAlongTrack", "arcsec", _F, "Offset along the direction of motion."),
    ColumnSpec("ephOffsetCrossTrack", "arcsec", _F, "Offset across the direction of motion."),
    ColumnSpec("helio_x", "AU", _F, "Heliocentric ICRS x at light-emission time."),
    ColumnSpec("helio_y", "AU", _F, "Heliocentric ICRS y at light-emission time."),
    ColumnSpec("helio_z", "AU", _F, "Heliocentric ICRS z at light-emission time."),
    ColumnSpec("helio_vx", "km/s", _F, "Heliocentric ICRS vx at light-emission time."),
    ColumnSpec("helio_vy", "km/s", _F, "Heliocentric ICRS vy at light-emission time."),
    ColumnSpec("helio_vz", "km/s", _F, "Heliocentric ICRS vz at light-emission time."),
    ColumnSpec("helio_vtot", "km/s", _F, "Norm of the heliocentric velocity."),
    ColumnSpec("topo_x", "AU", _F, "Topocentric ICRS x at light-emission time."),
    ColumnSpec("topo_y", "AU", _F, "Topocentric ICRS y at light-emission time."),
    ColumnSpec("topo_z", "AU", _F, "Topocentric ICRS z at light-emission time."),
    ColumnSpec("topo_vx", "km/s", _F, "Topocentric ICRS vx at light-emission time."),
    ColumnSpec("topo_vy", "km/s", _F, "Topocentric ICRS vy at light-emission time."),
    ColumnSpec("topo_vz", "km/s", _F, "Topocentric ICRS vz at light-emission time."),
    ColumnSpec("topo_vtot", "km/s", _F, "Norm of the topocentric velocity."),
    ColumnSpec(
        "diaDistanceRank", None, _I, "Rank of this source among the object's candidates by distance (1 = nearest)."
    ),
)

SSSOURCE_REQUIRED: frozenset[str] = frozenset({"diaSourceId", "ssObjectId", "eclLambda", "eclBeta", "galLon", "galLat"})
