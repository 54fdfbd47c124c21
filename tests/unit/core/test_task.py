"""Task machinery, config validation, metadata and the Exposure contract."""

import logging

import numpy as np
import pytest
from astropy.io import fits
from core_helpers import exposure_at, objects_table, sources_table
from pydantic import ValidationError

from ssassoc.core import Exposure, ExposureError, SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.ephemeris import EphemerisQueryConfig, EphemerisQueryTask
from ssassoc.core.sample_data import make_tan_wcs
from ssassoc.core.task import Task, TaskConfig


def test_names_and_task_dict():
    task = SsSingleFrameAssociationTask()
    assert task.getName() == "ssSingleFrameAssociation"
    assert task.getFullName() == "ssSingleFrameAssociation"
    assert task.ephemerisQuery.getName() == "ephemerisQuery"
    assert task.ephemerisQuery.getFullName() == "ssSingleFrameAssociation.ephemerisQuery"
    assert set(task.getTaskDict()) == {"ssSingleFrameAssociation", "ssSingleFrameAssociation.ephemerisQuery"}
    assert SsSingleFrameAssociationTask.canMultiprocess is True


def test_config_defaults_and_validation():
    cfg = SsSingleFrameAssociationConfig()
    assert (cfg.maxDistArcSeconds, cfg.maxPixelMargin, cfg.defaultEphemerisUncertaintyArcsec, cfg.matching) == (
        1.0,
        100.0,
        2.0,
        "optimal",
    )
    with pytest.raises(ValidationError):
        SsSingleFrameAssociationConfig(maxDistArcSeconds=-1)
    with pytest.raises(ValidationError):
        SsSingleFrameAssociationConfig(matching="best")
    with pytest.raises(ValidationError):
        SsSingleFrameAssociationConfig(maxPixelMargin=-5)
    with pytest.raises(ValidationError):
        SsSingleFrameAssociationConfig(unknownField=3)
    cfg.maxDistArcSeconds = 2.0
    with pytest.raises(ValidationError):
        cfg.maxDistArcSeconds = 0.0  # validated on assignment too
    with pytest.raises(TypeError):
        SsSingleFrameAssociationTask(config=EphemerisQueryConfig())


def test_every_config_field_is_documented():
    for name, field in SsSingleFrameAssociationConfig.model_fields.items():
        assert field.description, name


def test_subtask_config_passthrough_and_retarget():
    class OtherQuery(EphemerisQueryTask):
        _DefaultName = "other"

    cfg = SsSingleFrameAssociationConfig()
    cfg.ephemerisQuery.storePath = "/tmp/store"
    assert cfg.ephemerisQuery.value.storePath == "/tmp/store"
    cfg.ephemerisQuery.retarget(OtherQuery)
    task = SsSingleFrameAssociationTask(config=cfg)
    assert type(task.ephemerisQuery) is OtherQuery
    assert task.ephemerisQuery.getFullName() == "ssSingleFrameAssociation.ephemerisQuery"


def test_make_field_and_make_subtask_on_a_custom_task():
    class Leaf(Task):
        _DefaultName = "leaf"

    class ParentConfig(TaskConfig):
        leaf: object = Leaf.makeField("a leaf")

    class Parent(Task):
        ConfigClass = ParentConfig
        _DefaultName = "parent"

    parent = Parent()
    leaf = parent.makeSubtask("leaf")
    assert parent.leaf is leaf and leaf.getFullName() == "parent.leaf"
    leaf.metadata["count"] = 3
    assert parent.getFullMetadata()["parent:leaf.count"] == 3
    parent.emptyMetadata()
    assert "count" not in leaf.metadata


def test_metadata_counts_and_timers():
    exposure = exposure_at(30.0, 5.0)
    task = SsSingleFrameAssociationTask()
    task.ephemerisQuery.metadata["probe"] = 1
    task.run(
        exposure,
        sources_table([30.0, 30.001], [5.0, 5.0]),
        band="r",
        solarSystemObjectTable=objects_table([30.0], [5.0]),
    )
    md = task.getFullMetadata()
    for key, value in {
        "nSources": 2,
        "nBadSources": 0,
        "nTotalSsObjects": 1,
        "nAssociatedSsObjects": 1,
        "nUnassociatedSsObjects": 0,
    }.items():
        assert md[f"ssSingleFrameAssociation.{key}"] == value
    assert "ssSingleFrameAssociation:ephemerisQuery.probe" not in md  # reset per run
    for timer in ("run", "associate", "footprint", "matching", "derivedColumns"):
        assert md[f"ssSingleFrameAssociation.{timer}EndCpuTime"] >= md[f"ssSingleFrameAssociation.{timer}StartCpuTime"]
        assert md[f"ssSingleFrameAssociation.{timer}DurationSeconds"] >= 0
        assert md[f"ssSingleFrameAssociation.{timer}StartUtc"] <= md[f"ssSingleFrameAssociation.{timer}EndUtc"]
    flat = md.to_dict()
    assert flat["ssSingleFrameAssociation.nSources"] == 2


def test_timer_logs_at_requested_level(caplog):
    task = SsSingleFrameAssociationTask()
    with caplog.at_level(logging.INFO, logger="ssassoc"), task.timer("probe", logLevel=logging.INFO):
        pass
    assert any("probe" in rec.getMessage() for rec in caplog.records)


def test_exposure_validation():
    wcs = make_tan_wcs(10.0, 20.0, 100, 100)
    with pytest.raises(ExposureError, match="width"):
        Exposure(wcs=wcs, width=0, height=100, midpointMjdTai=60000.0)
    with pytest.raises(ExposureError, match="midpointMjdTai"):
        Exposure(wcs=wcs, width=100, height=100, midpointMjdTai=float("nan"))
    with pytest.raises(ExposureError, match="observatory"):
        Exposure(wcs=wcs, width=100, height=100, midpointMjdTai=60000.0, observatory="Rubin")
    with pytest.raises(ExposureError, match="wcs"):
        Exposure(wcs="not a wcs", width=100, height=100, midpointMjdTai=60000.0)  # type: ignore[arg-type]
    broken = make_tan_wcs(10.0, 20.0, 100, 100)
    broken.wcs.cd = np.zeros((2, 2))
    with pytest.raises(ExposureError):
        Exposure(wcs=broken, width=100, height=100, midpointMjdTai=60000.0)


def test_exposure_from_fits_header():
    header = make_tan_wcs(150.0, -20.0, 4072, 4000).to_header()
    header["NAXIS1"], header["NAXIS2"] = 4072, 4000
    header["MJD-BEG"], header["MJD-END"] = 60800.0, 60800.0 + 30 / 86400
    header["TIMESYS"] = "TAI"
    header["OBSCODE"], header["VISIT"], header["DETECTOR"] = "X05", 12, 42
    exposure = Exposure.from_fits_header(header)
    assert (exposure.width, exposure.height, exposure.visit, exposure.detector) == (4072, 4000, 12, 42)
    assert exposure.midpointMjdTai == pytest.approx(60800.0 + 15 / 86400, abs=1e-9)
    assert exposure.centre_deg[0] == pytest.approx(150.0, abs=1e-4)
    assert exposure.pixel_scale_arcsec == pytest.approx(0.2, rel=1e-4)
    # As text cards, with a UTC midpoint converted to TAI (+37 s).
    text = header.tostring(sep="\n")
    utc = fits.Header.fromstring(text, sep="\n")
    utc["TIMESYS"] = "UTC"
    converted = Exposure.from_fits_header(utc.tostring(sep="\n"))
    assert (converted.midpointMjdTai - exposure.midpointMjdTai) * 86400 == pytest.approx(37.0, abs=1e-3)
    del header["NAXIS1"]
    with pytest.raises(ExposureError, match="NAXIS1"):
        Exposure.from_fits_header(header)
    assert Exposure.from_fits_header(header, width=100).width == 100
